use sqlx::AnyConnection;

/// What a session row says about who it belongs to and where it was signed in, as the sessions
/// list shows it. Read from the session's state by the store on every write.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts {
    pub user_id: Option<String>,
    /// The session's public name in forms (never its key); empty before sign-in.
    pub public_id: String,
    pub device: String,
    pub client_ip: String,
    pub signed_in_at: i64,
}

/// Stores a new session state under the hash of its key.
pub async fn insert(
    conn: &mut AnyConnection,
    id_hash: &str,
    state: &str,
    facts: &SessionFacts,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, state, user_id, created_at, expires_at, public_id, \
         device, client_ip, signed_in_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $4)",
    )
    .bind(id_hash)
    .bind(state)
    .bind(facts.user_id.as_deref())
    .bind(now)
    .bind(expires_at)
    .bind(&facts.public_id)
    .bind(&facts.device)
    .bind(&facts.client_ip)
    .bind(facts.signed_in_at)
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
    facts: &SessionFacts,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET state = $1, user_id = $2, expires_at = $3, public_id = $6, \
         device = $7, client_ip = $8, signed_in_at = $9, last_seen_at = $5 \
         WHERE id_hash = $4 AND expires_at > $5",
    )
    .bind(state)
    .bind(facts.user_id.as_deref())
    .bind(expires_at)
    .bind(id_hash)
    .bind(now)
    .bind(&facts.public_id)
    .bind(&facts.device)
    .bind(&facts.client_ip)
    .bind(facts.signed_in_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How often a session's last use is written: at most once a minute, not on every request.
pub const LAST_SEEN_EVERY_SECS: i64 = 60;

/// Pushes a live session's expiry forward and records it seen, at most once a minute (a
/// request within the minute writes nothing, so the idle timeout counts from the minute's
/// first request).
pub async fn touch(
    conn: &mut AnyConnection,
    id_hash: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sessions SET expires_at = $1, last_seen_at = $3 \
         WHERE id_hash = $2 AND expires_at > $3 AND last_seen_at <= $4",
    )
    .bind(expires_at)
    .bind(id_hash)
    .bind(now)
    .bind(now - LAST_SEEN_EVERY_SECS)
    .execute(conn)
    .await?;
    Ok(())
}

/// A signed-in session as the sessions list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub public_id: String,
    pub device: String,
    pub client_ip: String,
    pub signed_in_at: i64,
    pub last_seen_at: i64,
}

/// A user's live sessions, the most recently seen first.
pub async fn list_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> sqlx::Result<Vec<SessionRow>> {
    sqlx::query_as(
        "SELECT public_id, device, client_ip, signed_in_at, last_seen_at FROM sessions \
         WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC, signed_in_at DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Ends one of a user's sessions, named by its public ID; the device it was, when it existed.
pub async fn delete_one(
    conn: &mut AnyConnection,
    user_id: &str,
    public_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "DELETE FROM sessions WHERE user_id = $1 AND public_id = $2 AND public_id <> '' \
         RETURNING device",
    )
    .bind(user_id)
    .bind(public_id)
    .fetch_optional(conn)
    .await
}

/// Ends every session of a user but the one named `keep`.
pub async fn delete_others(
    conn: &mut AnyConnection,
    user_id: &str,
    keep: &str,
) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND public_id <> $2")
            .bind(user_id)
            .bind(keep)
            .execute(conn)
            .await?
            .rows_affected(),
    )
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
