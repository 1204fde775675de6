use sqlx::AnyConnection;

/// Stores a new session state under the hash of its key.
pub async fn insert(
    conn: &mut AnyConnection,
    id_hash: &str,
    state: &str,
    user_id: Option<&str>,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, state, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(state)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The state of a session that has not expired.
pub async fn load(
    conn: &mut AnyConnection,
    id_hash: &str,
    now: i64,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT state FROM sessions WHERE id_hash = $1 AND expires_at > $2")
        .bind(id_hash)
        .bind(now)
        .fetch_optional(conn)
        .await
}

/// Replaces the state of a live session; false when it no longer exists or has expired.
pub async fn update(
    conn: &mut AnyConnection,
    id_hash: &str,
    state: &str,
    user_id: Option<&str>,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET state = $1, user_id = $2, expires_at = $3 \
         WHERE id_hash = $4 AND expires_at > $5",
    )
    .bind(state)
    .bind(user_id)
    .bind(expires_at)
    .bind(id_hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Pushes a live session's expiry forward.
pub async fn touch(
    conn: &mut AnyConnection,
    id_hash: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET expires_at = $1 WHERE id_hash = $2 AND expires_at > $3")
        .bind(expires_at)
        .bind(id_hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a session.
pub async fn delete(conn: &mut AnyConnection, id_hash: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session of a user (password change, disabled account).
pub async fn delete_for_user(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Removes expired sessions.
pub async fn purge_expired(conn: &mut AnyConnection, now: i64) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected())
}
