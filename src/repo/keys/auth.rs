//! Reading keys for authentication and for the views that show what a key may do: the key
//! with its assignments, and the role and group mappings that turn them into permissions.

use sqlx::{AnyConnection, AssertSqlSafe};

use super::{KeyRow, round_trip};

/// A key with what the API shows beside it.
#[derive(Debug, Clone)]
pub struct AuthRow {
    pub key: KeyRow,
    /// The permissions the key acts with, sorted.
    pub permissions: Vec<String>,
    /// The key's own group and role assignments (tenant keys), sorted.
    pub group_ids: Vec<String>,
    pub role_ids: Vec<String>,
    /// Whether the key acts as an administrator: a personal key whose owner is in the
    /// Administrators group, or a tenant key assigned that group.
    pub administrator: bool,
}

/// A key as the auth lookup reads it: the row, its own groups and roles, its owner's groups,
/// and the version of the role and group mappings at that moment. Permissions come from those
/// mappings (`AccessMap`), kept in memory and reloaded when the version moves.
#[derive(Debug, Clone)]
pub struct AuthLookup {
    pub key: KeyRow,
    pub group_ids: Vec<String>,
    pub role_ids: Vec<String>,
    pub owner_group_ids: Vec<String>,
    pub access_version: String,
}

/// The role and group mappings behind every key's permissions, as of `version`
/// (`settings.access_version`, bumped by triggers on `role_permissions` and `group_roles`).
#[derive(Debug, Default)]
pub struct AccessMap {
    pub version: String,
    group_roles: std::collections::HashMap<String, Vec<String>>,
    role_permissions: std::collections::HashMap<String, Vec<String>>,
}

impl AccessMap {
    /// A map from its parts, for unit tests of the rules that read it.
    #[cfg(test)]
    pub(crate) fn from_parts(
        group_roles: &[(&str, &str)],
        role_permissions: &[(&str, &str)],
    ) -> Self {
        let mut map = AccessMap::default();
        for (g, r) in group_roles {
            map.group_roles
                .entry(g.to_string())
                .or_default()
                .push(r.to_string());
        }
        for (r, p) in role_permissions {
            map.role_permissions
                .entry(r.to_string())
                .or_default()
                .push(p.to_string());
        }
        map
    }

    /// The permissions a role grants.
    pub fn role_permissions(&self, role_id: &str) -> Vec<String> {
        self.role_permissions
            .get(role_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The permissions a group grants through its roles, sorted.
    pub fn group_permissions(&self, group_id: &str) -> Vec<String> {
        let mut permissions: Vec<String> = self
            .group_roles
            .get(group_id)
            .into_iter()
            .flatten()
            .flat_map(|r| self.role_permissions(r))
            .collect();
        permissions.sort();
        permissions.dedup();
        permissions
    }

    /// A key with its permissions: a tenant key's own roles and its groups' roles; a personal
    /// key's owner's groups' roles.
    pub fn resolve(&self, found: AuthLookup) -> AuthRow {
        let AuthLookup {
            key,
            group_ids,
            role_ids,
            owner_group_ids,
            ..
        } = found;
        let (roles, groups): (&[String], &[String]) = if key.owner_user_id.is_some() {
            (&[], &owner_group_ids)
        } else {
            (&role_ids, &group_ids)
        };
        let mut permissions: Vec<String> = roles
            .iter()
            .chain(
                groups
                    .iter()
                    .filter_map(|g| self.group_roles.get(g))
                    .flatten(),
            )
            .filter_map(|r| self.role_permissions.get(r))
            .flatten()
            .cloned()
            .collect();
        permissions.sort();
        permissions.dedup();
        let administrator = groups
            .iter()
            .any(|g| g == super::super::groups::ADMINISTRATORS);
        AuthRow {
            key,
            permissions,
            group_ids,
            role_ids,
            administrator,
        }
    }
}

/// Reads the role and group mappings and their version in one statement (one snapshot).
pub async fn load_access_map(conn: &mut AnyConnection) -> sqlx::Result<AccessMap> {
    use sqlx::Row;
    round_trip();
    let rows = sqlx::query(
        "SELECT 'v' AS kind, '' AS a, '' AS b, value AS version FROM settings \
         WHERE name = 'access_version' \
         UNION ALL SELECT 'g', group_id, role_id, '' FROM group_roles \
         UNION ALL SELECT 'r', role_id, permission, '' FROM role_permissions",
    )
    .fetch_all(conn)
    .await?;
    let mut map = AccessMap::default();
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let a: String = row.try_get("a")?;
        let b: String = row.try_get("b")?;
        match kind.as_str() {
            "v" => map.version = row.try_get("version")?,
            "g" => map.group_roles.entry(a).or_default().push(b),
            _ => map.role_permissions.entry(a).or_default().push(b),
        }
    }
    Ok(map)
}

/// The lookup of keys by ID for authentication, one `UNION ALL` branch per ID (an `IN` list
/// would make SQLite build a temporary index each time). Built once for the usual one or two
/// IDs. The aggregate is the one thing the two databases spell differently.
fn auth_sql(backend: crate::db::Backend, ids: usize) -> std::borrow::Cow<'static, str> {
    use crate::db::Backend::{Postgres, Sqlite};
    use std::sync::LazyLock;
    fn build(backend: crate::db::Backend, ids: usize) -> String {
        let aggregate = |column: &str, source: &str| {
            let agg = match backend {
                Sqlite => "group_concat",
                Postgres => "string_agg",
            };
            format!("COALESCE((SELECT {agg}({column}, ',') {source}), '')")
        };
        let one = format!(
            "{}, {} AS group_ids, {} AS role_ids, {} AS owner_group_ids, \
             (SELECT value FROM settings WHERE name = 'access_version') AS access_version \
             FROM access_keys k LEFT JOIN users u ON u.id = k.owner_user_id WHERE k.id = ",
            select_columns!(),
            aggregate("group_id", "FROM key_groups WHERE key_id = k.id"),
            aggregate("role_id", "FROM key_roles WHERE key_id = k.id"),
            aggregate(
                "group_id",
                "FROM group_members WHERE user_id = k.owner_user_id"
            ),
        );
        (1..=ids)
            .map(|i| format!("{one}${i}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }
    static BUILT: LazyLock<[String; 4]> = LazyLock::new(|| {
        [
            build(Sqlite, 1),
            build(Sqlite, 2),
            build(Postgres, 1),
            build(Postgres, 2),
        ]
    });
    match (backend, ids) {
        (Sqlite, 1) => BUILT[0].as_str().into(),
        (Sqlite, 2) => BUILT[1].as_str().into(),
        (Postgres, 1) => BUILT[2].as_str().into(),
        (Postgres, 2) => BUILT[3].as_str().into(),
        _ => build(backend, ids).into(),
    }
}

/// A comma-joined aggregate as a sorted list without duplicates.
fn split_list(joined: Option<String>) -> Vec<String> {
    let mut items: Vec<String> = joined
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    items.sort();
    items.dedup();
    items
}

/// One row of the authentication lookup, from either driver.
fn auth_lookup_of<'r, R>(row: &'r R) -> sqlx::Result<AuthLookup>
where
    R: sqlx::Row,
    KeyRow: sqlx::FromRow<'r, R>,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    use sqlx::FromRow;
    Ok(AuthLookup {
        key: KeyRow::from_row(row)?,
        group_ids: split_list(row.try_get("group_ids")?),
        role_ids: split_list(row.try_get("role_ids")?),
        owner_group_ids: split_list(row.try_get("owner_group_ids")?),
        access_version: row.try_get("access_version")?,
    })
}

/// Keys by ID for authentication: the hot path, one query whatever the number of IDs (the
/// verify endpoint reads its caller's key and the presented one together).
pub async fn lookup_for_auth(
    conn: &mut AnyConnection,
    backend: crate::db::Backend,
    ids: &[&str],
) -> sqlx::Result<Vec<AuthLookup>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    round_trip();
    let mut query = sqlx::query(AssertSqlSafe(auth_sql(backend, ids.len())));
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(auth_lookup_of).collect()
}

/// Keys as listed, with their own groups and roles and their owners' groups, read in one
/// statement whatever their number (a list page reads its keys first, then this). The result
/// is in the order of `keys`; its `access_version` is left empty.
pub async fn with_assignments(
    conn: &mut AnyConnection,
    keys: Vec<KeyRow>,
) -> sqlx::Result<Vec<AuthLookup>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = (1..=keys.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT key_id, 'g' AS kind, group_id AS item FROM key_groups WHERE key_id IN ({placeholders}) \
         UNION ALL SELECT key_id, 'r', role_id FROM key_roles WHERE key_id IN ({placeholders}) \
         UNION ALL SELECT k.id, 'o', m.group_id FROM access_keys k \
         JOIN group_members m ON m.user_id = k.owner_user_id WHERE k.id IN ({placeholders})"
    );
    let mut query = sqlx::query_as::<_, (String, String, String)>(AssertSqlSafe(sql));
    for key in &keys {
        query = query.bind(key.id.clone());
    }
    round_trip();
    let rows = query.fetch_all(conn).await?;
    let mut found: Vec<AuthLookup> = keys
        .into_iter()
        .map(|key| AuthLookup {
            key,
            group_ids: Vec::new(),
            role_ids: Vec::new(),
            owner_group_ids: Vec::new(),
            access_version: String::new(),
        })
        .collect();
    let position: std::collections::HashMap<String, usize> = found
        .iter()
        .enumerate()
        .map(|(i, f)| (f.key.id.clone(), i))
        .collect();
    for (key_id, kind, item) in rows {
        let Some(&i) = position.get(&key_id) else {
            continue;
        };
        let entry = &mut found[i];
        match kind.as_str() {
            "g" => entry.group_ids.push(item),
            "r" => entry.role_ids.push(item),
            _ => entry.owner_group_ids.push(item),
        }
    }
    for entry in &mut found {
        for list in [
            &mut entry.group_ids,
            &mut entry.role_ids,
            &mut entry.owner_group_ids,
        ] {
            list.sort();
            list.dedup();
        }
    }
    Ok(found)
}

/// Keys by ID with their permissions, the mappings read afresh (the console's view of a key;
/// key checks keep the mappings in memory instead).
pub async fn find_for_auth(
    conn: &mut AnyConnection,
    backend: crate::db::Backend,
    ids: &[&str],
) -> sqlx::Result<Vec<AuthRow>> {
    let found = lookup_for_auth(conn, backend, ids).await?;
    let map = load_access_map(conn).await?;
    Ok(found.into_iter().map(|f| map.resolve(f)).collect())
}

/// `lookup_for_auth` on a PostgreSQL connection of the key checks' own (`db::PgReader`): the
/// same SQL and the same rows, decoded without the `Any` driver's conversion.
pub async fn lookup_for_auth_pg(
    conn: &mut sqlx::PgConnection,
    ids: &[&str],
) -> sqlx::Result<Vec<AuthLookup>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    round_trip();
    let mut query = sqlx::query(AssertSqlSafe(auth_sql(
        crate::db::Backend::Postgres,
        ids.len(),
    )));
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(auth_lookup_of).collect()
}

/// `lookup_for_auth` on a SQLite connection of the request's own thread
/// (`db::sqlite_reader`): the same SQL and the same rows.
pub fn lookup_for_auth_sqlite(
    conn: &rusqlite::Connection,
    ids: &[&str],
) -> rusqlite::Result<Vec<AuthLookup>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    round_trip();
    let mut statement = conn.prepare_cached(&auth_sql(crate::db::Backend::Sqlite, ids.len()))?;
    let rows = statement.query_map(rusqlite::params_from_iter(ids), |row| {
        // The columns in the order of `select_columns!`, then the three lists and the version.
        let key = KeyRow {
            id: row.get(0)?,
            name: row.get(1)?,
            description: row.get(2)?,
            key_type: row.get(3)?,
            owner_user_id: row.get(4)?,
            owner_name: row.get(5)?,
            owner_active: row.get(6)?,
            secret_hash: row.get(7)?,
            previous_secret_hash: row.get(8)?,
            previous_valid_until: row.get(9)?,
            secret_regenerated_at: row.get(10)?,
            active: row.get(11)?,
            locked: row.get(12)?,
            failed_attempts: row.get(13)?,
            expires_at: row.get(14)?,
            allowed_networks: row.get(15)?,
            created_at: row.get(16)?,
            created_by: row.get(17)?,
            created_by_label: row.get(18)?,
            modified_at: row.get(19)?,
            modified_by: row.get(20)?,
            modified_by_label: row.get(21)?,
            last_used_at: row.get(22)?,
            last_used_ip: row.get(23)?,
            last_used_agent: row.get(24)?,
            deactivated_by: row.get(25)?,
            locked_by: row.get(26)?,
            rate_per_second: row.get(27)?,
            rate_burst: row.get(28)?,
        };
        Ok(AuthLookup {
            key,
            group_ids: split_list(row.get(29)?),
            role_ids: split_list(row.get(30)?),
            owner_group_ids: split_list(row.get(31)?),
            access_version: row.get(32)?,
        })
    })?;
    rows.collect()
}

/// The PostgreSQL notification channel on which instances announce changes of keys (see
/// `service::key_auth`'s cache).
pub const CHANGES_CHANNEL: &str = "keyward_key_changes";

/// Tells the other instances on this PostgreSQL database that keys changed (`instance`, the
/// payload, names the one that did).
pub async fn announce_change(pool: &sqlx::AnyPool, instance: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(instance)
        .execute(pool)
        .await
        .map(|_| ())
}
