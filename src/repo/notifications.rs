use sqlx::AnyConnection;

/// A bell notification.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub created_at: i64,
    pub title: String,
    pub body: String,
    pub link: String,
    pub read_at: Option<i64>,
}

/// Adds a notification for a user.
pub async fn insert(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
    kind: &str,
    title: &str,
    body: &str,
    link: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (user_id, created_at, kind, title, body, link) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user_id)
    .bind(now)
    .bind(kind)
    .bind(title)
    .bind(body)
    .bind(link)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many notifications a user has not read.
pub async fn unread_count(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
        .bind(user_id)
        .fetch_one(conn)
        .await
}

/// A user's most recent notifications, newest first.
pub async fn list(
    conn: &mut AnyConnection,
    user_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<NotificationRow>> {
    sqlx::query_as(
        "SELECT created_at, title, body, link, read_at FROM notifications \
         WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Marks every unread notification of a user as read.
pub async fn mark_all_read(conn: &mut AnyConnection, user_id: &str, now: i64) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
