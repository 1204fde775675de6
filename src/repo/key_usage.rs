//! Usage counts per key, hour and outcome (SPEC §10).

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AssertSqlSafe};

/// One counted cell: a key's presentations with one outcome in one hour.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageCell {
    /// Unix seconds at the start of the UTC hour.
    pub hour: i64,
    /// `accepted`, or a refusal reason (see `service::usage::Outcome`).
    pub outcome: String,
    pub count: i64,
}

/// One count to add: (key ID, hour in unix seconds, outcome, count).
pub type Added<'a> = (&'a str, i64, &'a str, i64);

/// Adds each count to its key's hour and to the hour's day, when the key still exists (a key
/// deleted since it was used has nothing to keep). Additive: another instance adding to the same
/// cells loses nothing. A few hundred cells to a statement, each table's in the order of its
/// primary key, so that two instances flushing the same keys at once on PostgreSQL take their
/// row locks in one order and never deadlock.
pub async fn add_many(conn: &mut AnyConnection, counts: &[Added<'_>]) -> sqlx::Result<()> {
    let mut hours = BTreeMap::new();
    let mut days = BTreeMap::new();
    for &(key_id, hour, outcome, n) in counts {
        *hours.entry((key_id, hour, outcome)).or_insert(0) += n;
        *days.entry((key_id, day_of(hour), outcome)).or_insert(0) += n;
    }
    upsert(conn, "key_usage", "hour", &hours).await?;
    upsert(conn, "key_usage_daily", "day", &days).await
}

/// Adds `counts` ((key ID, start of the hour or day, outcome) → count) to `table`.
async fn upsert(
    conn: &mut AnyConnection,
    table: &str,
    unit: &str,
    counts: &BTreeMap<(&str, i64, &str), i64>,
) -> sqlx::Result<()> {
    const ROWS: usize = 250;
    let numbered = super::numbered(conn);
    let counts: Vec<_> = counts.iter().collect();
    for chunk in counts.chunks(ROWS) {
        // SQLite needs the WHERE to tell the upsert's ON from a join's. The ORDER BY keeps the
        // rows in key order whatever join the planner picks (the locks follow it).
        let sql = format!(
            "INSERT INTO {table} (key_id, {unit}, outcome, count) \
             SELECT k.id, v.column2, v.column3, v.column4 \
             FROM (VALUES {}) AS v JOIN access_keys k ON k.id = v.column1 WHERE true \
             ORDER BY v.column1, v.column2, v.column3 \
             ON CONFLICT (key_id, {unit}, outcome) \
             DO UPDATE SET count = {table}.count + excluded.count",
            super::values_rows(numbered, chunk.len(), 4)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for &(&(key_id, at, outcome), &n) in chunk {
            query = query.bind(key_id).bind(at).bind(outcome).bind(n);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

const DAY: i64 = 86_400;

/// The start of the UTC day of `at` (unix seconds).
fn day_of(at: i64) -> i64 {
    at - at.rem_euclid(DAY)
}

/// The first whole day from `since` on: `since` itself when a day starts there.
fn first_whole_day(since: i64) -> i64 {
    let day = day_of(since);
    if day == since { day } else { day + DAY }
}

/// The usage with outcomes matching `outcomes` (an SQL condition on `outcome`) from hour
/// `since` on, as the rows to add up: whole days from the daily counts, the hours before the
/// first whole day from the hourly ones (`$1`: `since`, `$2`: the first whole day). Reads a
/// key used every hour of a week as 8 rows, not 168. (The condition is in each half, where
/// SQLite's index on it serves best.)
fn usage_since(outcomes: &str) -> String {
    format!(
        "SELECT key_id, outcome, count FROM key_usage_daily WHERE {outcomes} AND day >= $2 \
         UNION ALL \
         SELECT key_id, outcome, count FROM key_usage \
         WHERE {outcomes} AND hour >= $1 AND hour < $2"
    )
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

/// Deletes the cells of hours before the day of `before` (retention), and those days' daily
/// counts: both tables always hold the same days, so no count outlives its hours (at most a
/// day more than the retention is kept). How many hourly cells went.
pub async fn delete_before(conn: &mut AnyConnection, before: i64) -> sqlx::Result<u64> {
    let before = day_of(before);
    let hours = sqlx::query("DELETE FROM key_usage WHERE hour < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM key_usage_daily WHERE day < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(hours)
}

/// One of the busiest keys: its ID, name and accepted presentations.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BusyKey {
    pub id: String,
    pub name: String,
    pub accepted: i64,
}

/// The `limit` keys with the most accepted presentations in the hours from `since` on, most
/// first (ties by ID). One statement over whole days and the first day's hours (see
/// [`usage_since`]); usage rows go with their key, so the keys found all exist.
pub async fn busiest(
    conn: &mut AnyConnection,
    since: i64,
    limit: i64,
) -> sqlx::Result<Vec<BusyKey>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT k.id, k.name, t.accepted FROM \
         (SELECT key_id, CAST(SUM(count) AS BIGINT) AS accepted FROM ({}) u \
          GROUP BY key_id ORDER BY accepted DESC, key_id LIMIT {}) t \
         JOIN access_keys k ON k.id = t.key_id \
         ORDER BY t.accepted DESC, k.id",
        usage_since("outcome = 'accepted'"),
        limit.clamp(1, 100)
    )))
    .bind(since)
    .bind(first_whole_day(since))
    .fetch_all(conn)
    .await
}

/// Refusals in the hours from `since` on, by reason: the reason (a stored outcome), how many
/// presentations were refused for it and of how many keys. One statement.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusalTotal {
    pub outcome: String,
    pub refused: i64,
    pub keys: i64,
}

/// See [`RefusalTotal`]; `outcomes` are the refusal reasons to count (each found through the
/// index on (outcome, hour, key_id, count) without reading the accepted rows).
pub async fn refusals_since(
    conn: &mut AnyConnection,
    since: i64,
    outcomes: &[&str],
) -> sqlx::Result<Vec<RefusalTotal>> {
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (0..outcomes.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT outcome, CAST(SUM(count) AS BIGINT) AS refused, COUNT(DISTINCT key_id) AS keys \
         FROM ({}) u GROUP BY outcome ORDER BY outcome",
        usage_since(&format!("outcome IN ({})", marks.join(", ")))
    );
    let mut q = sqlx::query_as(AssertSqlSafe(sql))
        .bind(since)
        .bind(first_whole_day(since));
    for o in outcomes {
        q = q.bind(o.to_string());
    }
    q.fetch_all(conn).await
}
