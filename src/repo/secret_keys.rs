//! The `secret_keys` table: webhook signing keys (secret sealed) and the bridge key (secret
//! hashed). Neither column ever holds a secret in plain text.

use sqlx::AnyConnection;

/// The bridge key's row ID: one per tenant.
pub const BRIDGE_ID: &str = "sk_bridge";
/// Kinds of secret key.
pub const WEBHOOK: &str = "webhook";
pub const BRIDGE: &str = "bridge";

/// A stored secret key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecretKeyRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub client_id: Option<String>,
    pub secret_hash: Option<String>,
    pub sealed_secret: Option<String>,
    pub created_at: i64,
    pub created_by: String,
    pub regenerated_at: Option<i64>,
    pub regenerated_by: Option<String>,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, kind, name, client_id, secret_hash, sealed_secret, created_at, \
     created_by, regenerated_at, regenerated_by, last_used_at";

/// Every secret key: the bridge first, then signing keys by name.
pub async fn list(conn: &mut AnyConnection) -> sqlx::Result<Vec<SecretKeyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM secret_keys \
         ORDER BY CASE WHEN kind = 'bridge' THEN 0 ELSE 1 END, name, id"
    )))
    .fetch_all(conn)
    .await
}

/// One secret key by ID.
pub async fn find(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<SecretKeyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM secret_keys WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The bridge key by its client ID.
pub async fn find_bridge(
    conn: &mut AnyConnection,
    client_id: &str,
) -> sqlx::Result<Option<SecretKeyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM secret_keys WHERE client_id = $1 AND kind = 'bridge'"
    )))
    .bind(client_id)
    .fetch_optional(conn)
    .await
}

/// Whether a secret key of that name exists.
pub async fn name_taken(conn: &mut AnyConnection, name: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_keys WHERE name = $1")
        .bind(name)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Creates the bridge key, without a secret, unless it exists.
pub async fn insert_bridge_if_absent(
    conn: &mut AnyConnection,
    client_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO secret_keys (id, kind, name, client_id, created_at, created_by) \
         VALUES ($1, 'bridge', 'Bridge key', $2, $3, 'keyward') ON CONFLICT (id) DO NOTHING",
    )
    .bind(BRIDGE_ID)
    .bind(client_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a new webhook signing key with its sealed secret.
pub async fn insert_signing_key(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    sealed_secret: &str,
    now: i64,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO secret_keys (id, kind, name, sealed_secret, created_at, created_by) \
         VALUES ($1, 'webhook', $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(name)
    .bind(sealed_secret)
    .bind(now)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a key's secret (hash for the bridge, sealed value for a signing key).
pub async fn replace_secret(
    conn: &mut AnyConnection,
    id: &str,
    secret_hash: Option<&str>,
    sealed_secret: Option<&str>,
    now: i64,
    by: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE secret_keys SET secret_hash = $1, sealed_secret = $2, regenerated_at = $3, \
         regenerated_by = $4 WHERE id = $5",
    )
    .bind(secret_hash)
    .bind(sealed_secret)
    .bind(now)
    .bind(by)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Deletes a secret key; false when it was already gone.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query("DELETE FROM secret_keys WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// Records use, at most once a minute so that busy keys cost no write per request.
pub async fn touch_used(conn: &mut AnyConnection, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE secret_keys SET last_used_at = $1 WHERE id = $2 \
         AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - 60)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many webhook endpoints sign with a key.
pub async fn endpoints_using(conn: &mut AnyConnection, id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE signing_key_id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
}
