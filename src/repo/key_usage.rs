//! Usage counts per key, hour and outcome (SPEC §10).

use sqlx::AnyConnection;

/// One counted cell: a key's presentations with one outcome in one hour.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageCell {
    /// Unix seconds at the start of the UTC hour.
    pub hour: i64,
    /// `accepted`, or a refusal reason (see `service::usage::Outcome`).
    pub outcome: String,
    pub count: i64,
}

/// Adds `count` to a key's cell, when the key still exists (a key deleted since it was used
/// has nothing to keep). Additive: another instance adding to the same cell loses nothing.
pub async fn add(
    conn: &mut AnyConnection,
    key_id: &str,
    hour: i64,
    outcome: &str,
    count: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO key_usage (key_id, hour, outcome, count) \
         SELECT id, $2, $3, $4 FROM access_keys WHERE id = $1 \
         ON CONFLICT (key_id, hour, outcome) DO UPDATE SET count = key_usage.count + excluded.count",
    )
    .bind(key_id)
    .bind(hour)
    .bind(outcome)
    .bind(count)
    .execute(conn)
    .await?;
    Ok(())
}

/// A key's cells in the hours `from..to` (unix seconds, `to` excluded), oldest first.
pub async fn cells(
    conn: &mut AnyConnection,
    key_id: &str,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<UsageCell>> {
    sqlx::query_as(
        "SELECT hour, outcome, count FROM key_usage \
         WHERE key_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour, outcome",
    )
    .bind(key_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// Deletes the cells of hours before `before` (retention); how many went.
pub async fn delete_before(conn: &mut AnyConnection, before: i64) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM key_usage WHERE hour < $1")
        .bind(before)
        .execute(conn)
        .await?
        .rows_affected())
}
