//! What the expiry scan reads of a key at the moment it records a notice.

use sqlx::AnyConnection;

/// A key's current expiry and whether it is active, under the write transaction that records
/// its notice (the scan read it earlier, and it may have changed since).
pub async fn current_expiry(
    conn: &mut AnyConnection,
    key_id: &str,
) -> sqlx::Result<Option<(Option<i64>, bool)>> {
    let row: Option<(Option<i64>, i64)> =
        sqlx::query_as("SELECT expires_at, active FROM access_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(expires_at, active)| (expires_at, active == 1)))
}
