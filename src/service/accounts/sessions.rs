//! A person's signed-in sessions (SPEC §8): the list on `/account/security`, signing out one of
//! them or all but the current one, and an administrator signing a user out everywhere. A
//! session ended here is gone from the table, so its next request finds no session.

use sqlx::AnyPool;

use super::own_entry;
use crate::auth::store::sessions;
use crate::clock::Clock;
use crate::db::begin_write;
use crate::domain::{Actor, Permission};
use crate::error::{AppError, AppResult};
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::repo;

/// One signed-in session as the list shows it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// How forms name it (never its key).
    pub public_id: String,
    /// "Chrome on Linux"; "Unknown device" when the browser said nothing we recognise.
    pub device: String,
    pub client_ip: String,
    pub signed_in_at: i64,
    pub last_seen_at: i64,
}

/// A person's live sessions, the most recently seen first.
pub async fn list_sessions(
    pool: &AnyPool,
    clock: &dyn Clock,
    user_id: &str,
) -> AppResult<Vec<SessionInfo>> {
    let mut conn = pool.acquire().await?;
    let rows = sessions::list_for_user(&mut conn, user_id, clock.unix()).await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionInfo {
            device: if r.device.is_empty() {
                "Unknown device".to_string()
            } else {
                r.device
            },
            public_id: r.public_id,
            client_ip: r.client_ip,
            signed_in_at: r.signed_in_at,
            last_seen_at: r.last_seen_at,
        })
        .collect())
}

/// Records something a person did to their own sessions.
async fn audit_own(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    action: &str,
    details: &str,
    now: i64,
) -> sqlx::Result<()> {
    let entry = NewEntry {
        details,
        ..own_entry(
            &actor.user_id,
            &actor.label,
            action,
            &actor.client_ip,
            SUCCESS,
        )
    };
    audit::record(conn, now, entry).await
}

/// Signs out one of the actor's own sessions, named by its public ID; `NotFound` when it is not
/// one of theirs (or has ended already). Returns the device it was.
pub async fn sign_out_session(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    public_id: &str,
) -> AppResult<String> {
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let device = sessions::delete_one(&mut tx, &actor.user_id, public_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let device = if device.is_empty() {
        "Unknown device".to_string()
    } else {
        device
    };
    let details = format!("device: {device}");
    audit_own(&mut tx, actor, "session.signed_out", &details, now).await?;
    tx.commit().await?;
    Ok(device)
}

/// Signs out every session of the actor but the current one (`current`, its public ID).
/// Returns how many ended.
pub async fn sign_out_other_sessions(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    current: &str,
) -> AppResult<u64> {
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let ended = sessions::delete_others(&mut tx, &actor.user_id, current).await?;
    let details = format!("{ended} sessions signed out");
    audit_own(&mut tx, actor, "session.signed_out_others", &details, now).await?;
    tx.commit().await?;
    Ok(ended)
}

/// Signs a user out everywhere (`users:write`), audited with the administrator as actor; not
/// oneself (Account security does that, keeping the session in use). Returns how many sessions
/// ended.
pub async fn sign_out_everywhere(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    user_id: &str,
) -> AppResult<u64> {
    actor.require(Permission::UsersWrite)?;
    if actor.user_id == user_id {
        return Err(AppError::Conflict(
            "To sign yourself out of your other sessions, use Account security.".into(),
        ));
    }
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let user = repo::users::find(&mut tx, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let ended = sessions::delete_for_user(&mut tx, &user.id).await?;
    let details = format!("{ended} sessions signed out");
    let entry = audit::success(
        actor,
        "user.signed_out_everywhere",
        "user",
        &user.id,
        &user.email,
        &details,
    );
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    Ok(ended)
}
