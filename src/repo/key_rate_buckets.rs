//! The shared token buckets of rate-limited keys (`key_rate_buckets`): one row per key, the
//! tokens left at a moment in unix milliseconds. Read and written inside one short write
//! transaction per lease (`service::key_auth::rate_limit`).

use sqlx::AnyConnection;

use crate::db::Backend;

/// A bucket as stored: the tokens it held at `updated_ms`.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct Bucket {
    pub tokens: f64,
    pub updated_ms: i64,
}

/// A key's bucket, locked for the rest of the transaction (`FOR UPDATE` on PostgreSQL; a
/// SQLite write transaction is already exclusive); `None` when it has none yet.
pub async fn lock(
    conn: &mut AnyConnection,
    backend: Backend,
    key_id: &str,
) -> sqlx::Result<Option<Bucket>> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT tokens, updated_ms FROM key_rate_buckets WHERE key_id = $1 FOR UPDATE"
        }
        Backend::Sqlite => "SELECT tokens, updated_ms FROM key_rate_buckets WHERE key_id = $1",
    };
    sqlx::query_as(sql).bind(key_id).fetch_optional(conn).await
}

/// Makes a full bucket for a key that has none (and still exists); a bucket made meanwhile by
/// another instance is kept.
pub async fn create(
    conn: &mut AnyConnection,
    key_id: &str,
    tokens: f64,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO key_rate_buckets (key_id, tokens, updated_ms) \
         SELECT id, $2, $3 FROM access_keys WHERE id = $1 \
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(key_id)
    .bind(tokens)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores what a key's bucket holds now.
pub async fn save(conn: &mut AnyConnection, key_id: &str, bucket: Bucket) -> sqlx::Result<()> {
    sqlx::query("UPDATE key_rate_buckets SET tokens = $1, updated_ms = $2 WHERE key_id = $3")
        .bind(bucket.tokens)
        .bind(bucket.updated_ms)
        .bind(key_id)
        .execute(conn)
        .await?;
    Ok(())
}
