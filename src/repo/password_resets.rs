//! Password reset links: only a hash of each link's token is stored. A request's writes run
//! inside a savepoint, so that a request for an unknown address does the same statements as one
//! for a known address and then rolls them back.

use sqlx::AnyConnection;

/// A stored reset link as its checks need it.
#[derive(Debug, sqlx::FromRow)]
pub struct ResetRow {
    pub user_id: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub superseded_at: Option<i64>,
}

/// Opens the savepoint a request's writes run in.
pub async fn savepoint(conn: &mut AnyConnection) -> sqlx::Result<()> {
    sqlx::query("SAVEPOINT password_reset")
        .execute(conn)
        .await?;
    Ok(())
}

/// Keeps the savepoint's writes (`true`) or undoes them (`false`), closing it either way.
pub async fn end_savepoint(conn: &mut AnyConnection, keep: bool) -> sqlx::Result<()> {
    if !keep {
        sqlx::query("ROLLBACK TO SAVEPOINT password_reset")
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("RELEASE SAVEPOINT password_reset")
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a new link for `user_id` (none for an unknown address) and supersedes that person's
/// earlier unused links.
pub async fn replace(
    conn: &mut AnyConnection,
    user_id: Option<&str>,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE password_resets SET superseded_at = $1 \
         WHERE user_id = $2 AND used_at IS NULL AND superseded_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored link with this token hash, whatever its state.
pub async fn find(conn: &mut AnyConnection, token_hash: &str) -> sqlx::Result<Option<ResetRow>> {
    sqlx::query_as(
        "SELECT user_id, expires_at, used_at, superseded_at FROM password_resets \
         WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// Marks a live link used; whether it was (a link works once, however many race).
pub async fn use_once(conn: &mut AnyConnection, token_hash: &str, now: i64) -> sqlx::Result<bool> {
    let used = sqlx::query(
        "UPDATE password_resets SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
         AND superseded_at IS NULL AND expires_at > $1 AND user_id IS NOT NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(used == 1)
}

/// Forgets links older than `before` (housekeeping).
pub async fn purge(conn: &mut AnyConnection, before: i64) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM password_resets WHERE created_at < $1")
            .bind(before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
