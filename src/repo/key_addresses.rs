//! The last used addresses of keys.

use sqlx::AnyConnection;

/// How many distinct addresses a key keeps.
pub const KEPT: i64 = 5;

/// One address a key was used from.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyAddress {
    pub address: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub user_agent: String,
    pub uses: i64,
}

/// Adds sightings of `key_id` from `address` (first and last seen, latest agent, uses).
pub async fn add(conn: &mut AnyConnection, key_id: &str, seen: &KeyAddress) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO key_addresses (key_id, address, first_seen, last_seen, user_agent, uses) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (key_id, address) DO UPDATE SET \
         first_seen = CASE WHEN excluded.first_seen < key_addresses.first_seen \
             THEN excluded.first_seen ELSE key_addresses.first_seen END, \
         last_seen = CASE WHEN excluded.last_seen > key_addresses.last_seen \
             THEN excluded.last_seen ELSE key_addresses.last_seen END, \
         user_agent = CASE WHEN excluded.last_seen >= key_addresses.last_seen \
             THEN excluded.user_agent ELSE key_addresses.user_agent END, \
         uses = key_addresses.uses + excluded.uses",
    )
    .bind(key_id)
    .bind(&seen.address)
    .bind(seen.first_seen)
    .bind(seen.last_seen)
    .bind(&seen.user_agent)
    .bind(seen.uses)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps only the [`KEPT`] most recently seen addresses of `key_id`.
pub async fn prune(conn: &mut AnyConnection, key_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM key_addresses WHERE key_id = $1 AND address NOT IN \
         (SELECT address FROM key_addresses WHERE key_id = $1 \
          ORDER BY last_seen DESC, address LIMIT $2)",
    )
    .bind(key_id)
    .bind(KEPT)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the key `id` still exists.
pub async fn existing(conn: &mut AnyConnection, id: &str) -> sqlx::Result<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM access_keys WHERE id = $1")
            .bind(id)
            .fetch_one(conn)
            .await?
            > 0,
    )
}

/// A key's addresses, most recently seen first.
pub async fn of_key(conn: &mut AnyConnection, key_id: &str) -> sqlx::Result<Vec<KeyAddress>> {
    sqlx::query_as(
        "SELECT address, first_seen, last_seen, user_agent, uses FROM key_addresses \
         WHERE key_id = $1 ORDER BY last_seen DESC, address LIMIT $2",
    )
    .bind(key_id)
    .bind(KEPT)
    .fetch_all(conn)
    .await
}

/// The most recently seen address of each of `key_ids` that has one: (key ID, address, last
/// seen), in one statement.
pub async fn latest_of(
    conn: &mut AnyConnection,
    key_ids: &[String],
) -> sqlx::Result<Vec<(String, String, i64)>> {
    if key_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = (1..=key_ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // At most five rows a key (KEPT), so reading them all and keeping the latest in Rust is
    // cheaper than a window function and the same on both backends.
    let sql = format!(
        "SELECT key_id, address, last_seen FROM key_addresses WHERE key_id IN ({placeholders})"
    );
    let mut query = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql));
    for id in key_ids {
        query = query.bind(id.clone());
    }
    query.fetch_all(conn).await
}
