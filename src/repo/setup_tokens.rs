use sqlx::AnyConnection;

/// Stores a new setup token's hash and voids every earlier unused one.
pub async fn replace(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM setup_tokens WHERE used_at IS NULL")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a token is unused and unexpired.
pub async fn is_valid(conn: &mut AnyConnection, token_hash: &str, now: i64) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(n == 1)
}

/// Marks a token used; true for exactly one caller, however many race.
pub async fn consume(conn: &mut AnyConnection, token_hash: &str, now: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE setup_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(token_hash)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}
