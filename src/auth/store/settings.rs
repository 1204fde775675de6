use sqlx::AnyConnection;

/// Reads a tenant setting.
pub async fn get(conn: &mut AnyConnection, name: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await
}

/// Writes a tenant setting, replacing any earlier value.
pub async fn set(conn: &mut AnyConnection, name: &str, value: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a setting only if none is stored; returns the stored value either way.
pub async fn get_or_insert(
    conn: &mut AnyConnection,
    name: &str,
    value: &str,
) -> sqlx::Result<String> {
    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(get(conn, name).await?.unwrap_or_else(|| value.to_string()))
}

/// Whether the database answers a trivial query: the health check (it reads no table, and
/// lives with the tenant's settings for want of a table of its own).
pub async fn ping(pool: &sqlx::AnyPool) -> bool {
    sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(pool)
        .await
        .is_ok()
}

/// Every setting whose name starts with `prefix`, as (name, value), in one statement.
pub async fn with_prefix(
    conn: &mut AnyConnection,
    prefix: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT name, value FROM settings WHERE name LIKE $1 ESCAPE '\\'")
        .bind(format!("{}%", prefix.replace('%', "").replace('_', "\\_")))
        .fetch_all(conn)
        .await
}
