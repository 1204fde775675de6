//! Spent single-use form tokens (by their hash).

use sqlx::AnyConnection;

/// Records a token as spent for the key it made; false when it was spent already.
pub async fn spend(
    conn: &mut AnyConnection,
    token_hash: &str,
    user_id: &str,
    key_id: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO form_submissions (token_hash, user_id, key_id, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (token_hash) DO NOTHING",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(key_id)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Forgets tokens spent before `before`.
pub async fn purge(conn: &mut AnyConnection, before: i64) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM form_submissions WHERE created_at < $1")
            .bind(before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
