//! Passkeys, the WebAuthn user handle of each person, and the ceremonies under way.

use sqlx::AnyConnection;

/// A stored passkey.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// webauthn-rs's record of the passkey, as JSON.
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A new passkey to store.
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub credential: &'a str,
    pub now: i64,
}

/// A ceremony's stored state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CeremonyRow {
    pub user_id: String,
    pub name: String,
    pub state: String,
}

const COLUMNS: &str = "id, user_id, name, credential, created_at, last_used_at";

/// The person's WebAuthn user handle, if they were ever given one.
pub async fn handle_of(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT handle FROM passkey_handles WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// Gives the person a handle (once; a second call keeps the first).
pub async fn insert_handle(
    conn: &mut AnyConnection,
    user_id: &str,
    handle: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO passkey_handles (user_id, handle) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(handle)
    .execute(conn)
    .await?;
    Ok(())
}

/// The person a handle belongs to.
pub async fn user_of_handle(
    conn: &mut AnyConnection,
    handle: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT user_id FROM passkey_handles WHERE handle = $1")
        .bind(handle)
        .fetch_optional(conn)
        .await
}

/// The person's passkeys, oldest first.
pub async fn list_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> sqlx::Result<Vec<PasskeyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
    )))
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// A passkey by its credential ID (base64url).
pub async fn find_by_credential(
    conn: &mut AnyConnection,
    credential_id: &str,
) -> sqlx::Result<Option<PasskeyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"
    )))
    .bind(credential_id)
    .fetch_optional(conn)
    .await
}

/// One of the person's passkeys; another person's is not found.
pub async fn find_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    id: &str,
) -> sqlx::Result<Option<PasskeyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM passkeys WHERE id = $1 AND user_id = $2"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// Stores a new passkey; false when its credential is already stored (for anyone).
pub async fn insert(conn: &mut AnyConnection, new: &NewPasskey<'_>) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO passkeys (id, user_id, credential_id, name, credential, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING",
    )
    .bind(new.id)
    .bind(new.user_id)
    .bind(new.credential_id)
    .bind(new.name)
    .bind(new.credential)
    .bind(new.now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Renames one of the person's passkeys; false when they have no such passkey.
pub async fn rename(
    conn: &mut AnyConnection,
    user_id: &str,
    id: &str,
    name: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3")
        .bind(name)
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes one of the person's passkeys; false when they have no such passkey.
pub async fn delete(conn: &mut AnyConnection, user_id: &str, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a sign-in with a passkey and its updated record.
pub async fn record_use(
    conn: &mut AnyConnection,
    id: &str,
    credential: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3")
        .bind(credential)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a ceremony's state under the hash of its token, and forgets expired ones.
pub async fn insert_ceremony(
    conn: &mut AnyConnection,
    token_hash: &str,
    purpose: &str,
    ceremony: &CeremonyRow,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO passkey_ceremonies (token_hash, purpose, user_id, name, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash)
    .bind(purpose)
    .bind(&ceremony.user_id)
    .bind(&ceremony.name)
    .bind(&ceremony.state)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes a ceremony's state for `purpose` once: the row is deleted, and a second caller (or an
/// expired ceremony) finds nothing.
pub async fn take_ceremony(
    conn: &mut AnyConnection,
    token_hash: &str,
    purpose: &str,
    now: i64,
) -> sqlx::Result<Option<CeremonyRow>> {
    let row: Option<CeremonyRow> = sqlx::query_as(
        "SELECT user_id, name, state FROM passkey_ceremonies \
         WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(purpose)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if row.is_none() {
        return Ok(None);
    }
    let done = sqlx::query("DELETE FROM passkey_ceremonies WHERE token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await?;
    Ok(row.filter(|_| done.rows_affected() == 1))
}

/// Removes every passkey of a person (an administrator removed their second factors).
pub async fn delete_all(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?
        .rows_affected())
}
