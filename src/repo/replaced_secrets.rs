//! The HMACs of the secrets keys had before their current ones (the replaced-secret tripwire).

use sqlx::AnyConnection;

/// Keeps the HMAC of a secret `key_id` no longer has as its current one.
pub async fn keep(
    conn: &mut AnyConnection,
    key_id: &str,
    secret_hash: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO replaced_secrets (key_id, secret_hash, replaced_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key_id, secret_hash) DO NOTHING",
    )
    .bind(key_id)
    .bind(secret_hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The HMACs of `key_id`'s replaced secrets (the tripwire matches a batch's wrong secrets
/// against them in memory, one read per key).
pub async fn hashes(conn: &mut AnyConnection, key_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT secret_hash FROM replaced_secrets WHERE key_id = $1")
        .bind(key_id)
        .fetch_all(conn)
        .await
}

/// A replaced secret that was presented again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    /// How many times it has been presented since it was replaced, this time included.
    pub count: i64,
    /// When it was replaced.
    pub replaced_at: i64,
    /// Whether the key's people should be told now (not told within `quiet_secs`).
    pub tell: bool,
}

/// Records that `secret_hash` was presented for `key_id` at `now`, if it is one of the key's
/// replaced secrets; `None` when it is not (an ordinary wrong secret).
pub async fn presented(
    conn: &mut AnyConnection,
    key_id: &str,
    secret_hash: &str,
    now: i64,
    quiet_secs: i64,
) -> sqlx::Result<Option<Presented>> {
    let row: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
        "UPDATE replaced_secrets SET presented_count = presented_count + 1, \
         last_presented_at = $3 WHERE key_id = $1 AND secret_hash = $2 \
         RETURNING presented_count, replaced_at, told_at",
    )
    .bind(key_id)
    .bind(secret_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((count, replaced_at, told_at)) = row else {
        return Ok(None);
    };
    // Claimed like a job: of two instances seeing the same secret at once, one tells.
    let tell = told_at.is_none_or(|t| t <= now - quiet_secs)
        && sqlx::query(
            "UPDATE replaced_secrets SET told_at = $3 WHERE key_id = $1 AND secret_hash = $2 \
             AND (told_at IS NULL OR told_at <= $4)",
        )
        .bind(key_id)
        .bind(secret_hash)
        .bind(now)
        .bind(now - quiet_secs)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
    Ok(Some(Presented {
        count,
        replaced_at,
        tell,
    }))
}
