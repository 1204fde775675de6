use sqlx::AnyConnection;

/// Counts one hit in a bucket's window and returns the window's total.
pub async fn hit(conn: &mut AnyConnection, bucket: &str, window_start: i64) -> sqlx::Result<i64> {
    hit_n(conn, bucket, window_start, 1).await
}

/// Counts `n` hits in a bucket's window and returns the window's total.
pub async fn hit_n(
    conn: &mut AnyConnection,
    bucket: &str,
    window_start: i64,
    n: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, $3) \
         ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + $3 \
         RETURNING hits",
    )
    .bind(bucket)
    .bind(window_start)
    .bind(n)
    .fetch_one(conn)
    .await
}

/// Forgets a bucket (after a success).
pub async fn clear(conn: &mut AnyConnection, bucket: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM rate_limits WHERE bucket = $1")
        .bind(bucket)
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops windows that started before `before`.
pub async fn purge(conn: &mut AnyConnection, before: i64) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Takes `n` hits back from a bucket's window (never below zero).
pub async fn unhit_n(
    conn: &mut AnyConnection,
    bucket: &str,
    window_start: i64,
    n: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE rate_limits SET hits = CASE WHEN hits > $3 THEN hits - $3 ELSE 0 END \
         WHERE bucket = $1 AND window_start = $2",
    )
    .bind(bucket)
    .bind(window_start)
    .bind(n)
    .execute(conn)
    .await?;
    Ok(())
}

/// A bucket's windows (start, hits) that started at or after `since`, oldest first.
pub async fn window_hits(
    conn: &mut AnyConnection,
    bucket: &str,
    since: i64,
) -> sqlx::Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT window_start, hits FROM rate_limits WHERE bucket = $1 AND window_start >= $2 \
         ORDER BY window_start",
    )
    .bind(bucket)
    .bind(since)
    .fetch_all(conn)
    .await
}
