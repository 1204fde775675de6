//! The bell: a person's notices, and marking them read.

use sqlx::AnyPool;

use crate::clock::Clock;
use crate::error::{AppError, AppResult};

/// A bell notice as the Notifications page shows it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub title: String,
    pub body: String,
    /// The page it is about, or empty.
    pub link: String,
    pub unread: bool,
    pub created_at: i64,
}

/// How many notices the Notifications page shows.
const BELL_ROWS: i64 = 100;

/// A person's newest bell notices, newest first.
pub async fn bell(pool: &AnyPool, user_id: &str) -> AppResult<Vec<Notification>> {
    let mut conn = pool.acquire().await?;
    let rows = crate::service::repo::notifications::list(&mut conn, user_id, BELL_ROWS).await?;
    Ok(rows
        .into_iter()
        .map(|n| Notification {
            title: n.title,
            body: n.body,
            link: n.link,
            unread: n.read_at.is_none(),
            created_at: n.created_at,
        })
        .collect())
}

/// Marks every bell notice of a person read (one statement: all of them or none). Returns how
/// many were unread.
pub async fn mark_all_read(
    pool: &AnyPool,
    clock: &dyn Clock,
    user_id: &str,
) -> Result<u64, AppError> {
    let mut conn = pool.acquire().await?;
    Ok(
        crate::service::repo::notifications::mark_all_read(&mut conn, user_id, clock.unix())
            .await?,
    )
}
