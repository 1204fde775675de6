//! What the key policy's inactivity rule reads and records: keys unused for a while, and the
//! notices each got (one per key, stage and `since`).

use sqlx::AnyConnection;

/// An active key that may have gone unused long enough for the inactivity rule.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnusedKey {
    pub id: String,
    pub name: String,
    pub key_type: String,
    pub owner_user_id: Option<String>,
    pub created_by: Option<String>,
    pub modified_by: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub modified_at: i64,
    pub last_used_at: Option<i64>,
    /// When its warning for the current `since` was recorded, if it was.
    pub warned_at: Option<i64>,
}

impl UnusedKey {
    /// Since when the key counts as unused: the latest of its creation, last use and last change.
    pub fn since(&self) -> i64 {
        self.created_at
            .max(self.modified_at)
            .max(self.last_used_at.unwrap_or(0))
    }
}

/// Active keys neither created, used nor changed after `cutoff`, with their warning if any.
pub async fn unused_since(conn: &mut AnyConnection, cutoff: i64) -> sqlx::Result<Vec<UnusedKey>> {
    // `since` is the greatest of three columns; the warning joined is the one for that `since`.
    sqlx::query_as(
        "SELECT k.id, k.name, k.key_type, k.owner_user_id, k.created_by, k.modified_by, \
                k.expires_at, k.created_at, k.modified_at, k.last_used_at, n.noticed_at AS warned_at \
         FROM access_keys k \
         LEFT JOIN inactivity_notices n ON n.key_id = k.id AND n.stage = 'warning' \
              AND n.since = CASE \
                  WHEN COALESCE(k.last_used_at, 0) >= k.created_at AND COALESCE(k.last_used_at, 0) >= k.modified_at THEN k.last_used_at \
                  WHEN k.modified_at >= k.created_at THEN k.modified_at \
                  ELSE k.created_at END \
         WHERE k.active = 1 AND k.created_at <= $1 AND k.modified_at <= $1 \
           AND (k.last_used_at IS NULL OR k.last_used_at <= $1) \
         ORDER BY k.id",
    )
    .bind(cutoff)
    .fetch_all(conn)
    .await
}

/// Records a notice; false when it was recorded already (by this or another instance).
pub async fn record(
    conn: &mut AnyConnection,
    key_id: &str,
    stage: &str,
    since: i64,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO inactivity_notices (key_id, stage, since, noticed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_id, stage, since) DO NOTHING",
    )
    .bind(key_id)
    .bind(stage)
    .bind(since)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The key's activity columns and whether it is active, read again under the write
/// transaction that acts on it: (created, modified, last used, active).
pub async fn current(
    conn: &mut AnyConnection,
    key_id: &str,
) -> sqlx::Result<Option<(i64, i64, Option<i64>, bool)>> {
    let row: Option<(i64, i64, Option<i64>, i64)> = sqlx::query_as(
        "SELECT created_at, modified_at, last_used_at, active FROM access_keys WHERE id = $1",
    )
    .bind(key_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(c, m, u, a)| (c, m, u, a == 1)))
}
