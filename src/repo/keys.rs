//! SQL for access keys and their group and role assignments.

use sqlx::{AnyConnection, AssertSqlSafe};

use crate::repo::audit::escape_like;

/// An access key row. `secret_hash` is a keyed hash, never the secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub key_type: String,
    pub owner_user_id: Option<String>,
    pub owner_name: Option<String>,
    /// 1 when the owner of a personal key is enabled; `None` for tenant keys.
    pub owner_active: Option<i64>,
    pub secret_hash: String,
    pub previous_secret_hash: Option<String>,
    pub previous_valid_until: Option<i64>,
    pub secret_regenerated_at: Option<i64>,
    pub active: i64,
    pub locked: i64,
    pub failed_attempts: i64,
    pub expires_at: Option<i64>,
    pub allowed_networks: String,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub created_by_label: String,
    pub modified_at: i64,
    pub modified_by: Option<String>,
    pub modified_by_label: String,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub last_used_agent: Option<String>,
    /// Who made the key inactive: `owner` or `administrator` (see `Decider`).
    pub deactivated_by: Option<String>,
    /// Who locked it: `owner`, `administrator` or `lockout`.
    pub locked_by: Option<String>,
}

/// The columns of `KeyRow`, from `access_keys k LEFT JOIN users u`.
macro_rules! select_columns {
    () => {
        concat!(
            "SELECT k.id, k.name, k.description, k.key_type, k.owner_user_id, u.name AS owner_name, u.active AS owner_active, ",
            "k.secret_hash, k.previous_secret_hash, k.previous_valid_until, k.secret_regenerated_at, ",
            "k.active, k.locked, k.failed_attempts, k.expires_at, k.allowed_networks, k.created_at, ",
            "k.created_by, k.created_by_label, k.modified_at, k.modified_by, k.modified_by_label, ",
            "k.last_used_at, k.last_used_ip, k.last_used_agent, k.deactivated_by, k.locked_by"
        )
    };
}

macro_rules! select_keys {
    ($tail:literal) => {
        concat!(
            select_columns!(),
            " FROM access_keys k LEFT JOIN users u ON u.id = k.owner_user_id ",
            $tail
        )
    };
}

/// What a new key row holds.
pub struct NewKeyRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub key_type: &'a str,
    pub owner_user_id: Option<&'a str>,
    pub secret_hash: &'a str,
    pub expires_at: Option<i64>,
    pub actor_id: Option<&'a str>,
    pub actor_label: &'a str,
    pub now: i64,
}

/// Inserts a key.
pub async fn insert(conn: &mut AnyConnection, k: &NewKeyRow<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO access_keys (id, name, key_type, owner_user_id, secret_hash, expires_at, \
         created_at, created_by, created_by_label, modified_at, modified_by, modified_by_label, search_name, \
         expiry_set_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $7, $8, $9, $10, $7)",
    )
    .bind(k.id)
    .bind(k.name)
    .bind(k.key_type)
    .bind(k.owner_user_id)
    .bind(k.secret_hash)
    .bind(k.expires_at)
    .bind(k.now)
    .bind(k.actor_id)
    .bind(k.actor_label)
    .bind(k.name.to_lowercase())
    .execute(conn)
    .await?;
    Ok(())
}

tokio::task_local! {
    /// Statements the key reads below have sent in the current task, while a test counts them
    /// (`count_round_trips`).
    static ROUND_TRIPS: std::cell::Cell<u32>;
}

/// Notes one statement sent to the database, when a test counts them; nothing otherwise.
fn round_trip() {
    let _ = ROUND_TRIPS.try_with(|n| n.set(n.get() + 1));
}

/// Runs `work` and counts the statements the key reads send inside it (tests use it to show
/// that a list costs the same number of queries whatever its size).
pub async fn count_round_trips<T>(work: impl std::future::Future<Output = T>) -> (T, u32) {
    ROUND_TRIPS
        .scope(std::cell::Cell::new(0), async {
            let out = work.await;
            (out, ROUND_TRIPS.with(std::cell::Cell::get))
        })
        .await
}

/// A key by ID.
pub async fn find(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<KeyRow>> {
    round_trip();
    sqlx::query_as(select_keys!("WHERE k.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

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
            .any(|g| g == crate::repo::groups::ADMINISTRATORS);
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
        };
        Ok(AuthLookup {
            key,
            group_ids: split_list(row.get(27)?),
            role_ids: split_list(row.get(28)?),
            owner_group_ids: split_list(row.get(29)?),
            access_version: row.get(30)?,
        })
    })?;
    rows.collect()
}

/// Locks a key's row for the rest of the transaction (PostgreSQL; SQLite write transactions
/// are already exclusive), so that two changes to one key run one after the other.
pub async fn lock(conn: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET modified_at = modified_at WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes one of the owner's two personal-key places; false when both are taken. The conditional
/// UPDATE locks the user row, so concurrent creators queue and the count cannot pass the limit.
pub async fn take_personal_slot(
    conn: &mut AnyConnection,
    user_id: &str,
    limit: i64,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE users SET personal_key_count = personal_key_count + 1 \
         WHERE id = $1 AND personal_key_count < $2",
    )
    .bind(user_id)
    .bind(limit)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Gives a personal-key place back (the key was deleted).
pub async fn release_personal_slot(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET personal_key_count = personal_key_count - 1 \
         WHERE id = $1 AND personal_key_count > 0",
    )
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records who changed a key and when.
pub async fn touch(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
    actor_id: Option<&str>,
    actor_label: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET modified_at = $1, modified_by = $2, modified_by_label = $3 WHERE id = $4")
        .bind(now)
        .bind(actor_id)
        .bind(actor_label)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Renames a key.
pub async fn set_name(conn: &mut AnyConnection, id: &str, name: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET name = $1, search_name = $2 WHERE id = $3")
        .bind(name)
        .bind(name.to_lowercase())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts `n` wrong secrets and locks the key when the count reaches `threshold` (0: never).
/// `None` when the key is gone.
pub async fn record_failures(
    conn: &mut AnyConnection,
    id: &str,
    n: i64,
    threshold: i64,
) -> sqlx::Result<Option<Failure>> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE access_keys SET failed_attempts = failed_attempts + $2 \
         WHERE id = $1 RETURNING failed_attempts, locked",
    )
    .bind(id)
    .bind(n)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((count, locked)) = row else {
        return Ok(None);
    };
    // The lock is a second statement so that only the request that set it announces it.
    let now_locked = locked == 0
        && threshold > 0
        && count >= threshold
        && sqlx::query(
            "UPDATE access_keys SET locked = 1, locked_by = 'lockout' WHERE id = $1 AND locked = 0",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
    Ok(Some(Failure { count, now_locked }))
}

/// Counted wrong secrets.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    /// Wrong secrets in a row, these included.
    pub count: i64,
    /// Whether these failures locked the key.
    pub now_locked: bool,
}

/// Forgets failed attempts after a correct secret.
pub async fn reset_failures(conn: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET failed_attempts = 0 WHERE id = $1 AND failed_attempts > 0")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a use, at most once a minute per key so the hot path stays cheap.
pub async fn touch_last_used(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
    ip: &str,
    agent: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE access_keys SET last_used_at = $1, last_used_ip = $2, last_used_agent = $3 \
         WHERE id = $4 AND (last_used_at IS NULL OR last_used_at <= $5)",
    )
    .bind(now)
    .bind(ip)
    .bind(agent)
    .bind(id)
    .bind(now - 60)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the allowed networks (CIDR ranges separated by commas; empty: anywhere).
pub async fn set_allowed_networks(
    conn: &mut AnyConnection,
    id: &str,
    networks: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET allowed_networks = $1 WHERE id = $2")
        .bind(networks)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the description.
pub async fn set_description(
    conn: &mut AnyConnection,
    id: &str,
    description: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET description = $1 WHERE id = $2")
        .bind(description)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks a key by hand, noting who decided it (`owner` or `administrator`).
pub async fn set_locked(conn: &mut AnyConnection, id: &str, by: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET locked = 1, locked_by = $2 WHERE id = $1")
        .bind(id)
        .bind(by)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets (or clears) the expiry, noting when, so that notice stages already past are not sent.
pub async fn set_expiry(
    conn: &mut AnyConnection,
    id: &str,
    expires_at: Option<i64>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET expires_at = $1, expiry_set_at = $2 WHERE id = $3")
        .bind(expires_at)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Activates or deactivates, noting who deactivated it (`owner` or `administrator`).
pub async fn set_active(
    conn: &mut AnyConnection,
    id: &str,
    active: bool,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE access_keys SET active = $1, deactivated_by = $3 WHERE id = $2")
        .bind(i64::from(active))
        .bind(id)
        .bind((!active).then_some(by))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a lock and forgets failed attempts.
pub async fn unlock(conn: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE access_keys SET locked = 0, locked_by = NULL, failed_attempts = 0 WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the secret hash; the old one keeps working until `previous_valid_until` (if any).
/// Ends a lock unless it was an administrator's (`unlock` false then), and forgets failures.
pub async fn replace_secret(
    conn: &mut AnyConnection,
    id: &str,
    new_hash: &str,
    previous: Option<(&str, i64)>,
    now: i64,
    unlock: bool,
) -> sqlx::Result<()> {
    let sql = if unlock {
        "UPDATE access_keys SET secret_hash = $1, previous_secret_hash = $2, previous_valid_until = $3, \
         secret_regenerated_at = $4, locked = 0, locked_by = NULL, failed_attempts = 0 WHERE id = $5"
    } else {
        "UPDATE access_keys SET secret_hash = $1, previous_secret_hash = $2, previous_valid_until = $3, \
         secret_regenerated_at = $4, failed_attempts = 0 WHERE id = $5"
    };
    sqlx::query(sql)
        .bind(new_hash)
        .bind(previous.map(|p| p.0))
        .bind(previous.map(|p| p.1))
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a key (its assignments go with it).
pub async fn delete(conn: &mut AnyConnection, id: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query("DELETE FROM access_keys WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// The group IDs assigned to a key.
pub async fn group_ids(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT group_id FROM key_groups WHERE key_id = $1 ORDER BY group_id")
        .bind(id)
        .fetch_all(conn)
        .await
}

/// The role IDs assigned to a key.
pub async fn role_ids(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT role_id FROM key_roles WHERE key_id = $1 ORDER BY role_id")
        .bind(id)
        .fetch_all(conn)
        .await
}

/// Replaces a key's group assignments.
pub async fn set_groups(
    conn: &mut AnyConnection,
    id: &str,
    group_ids: &[String],
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM key_groups WHERE key_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for g in group_ids {
        sqlx::query("INSERT INTO key_groups (key_id, group_id) VALUES ($1, $2)")
            .bind(id)
            .bind(g)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Replaces a key's role assignments.
pub async fn set_roles(
    conn: &mut AnyConnection,
    id: &str,
    role_ids: &[String],
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM key_roles WHERE key_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for r in role_ids {
        sqlx::query("INSERT INTO key_roles (key_id, role_id) VALUES ($1, $2)")
            .bind(id)
            .bind(r)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Which keys to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this owner's keys (the personal-key page).
    pub owner: Option<String>,
    /// Case-insensitive part of the name, or the start of the ID.
    pub search: String,
    /// "active", "inactive", "expired", "locked" or empty.
    pub status: String,
    /// "access", "api" or empty.
    pub key_type: String,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// Columns the list can be sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Created,
    Name,
    Expires,
    LastUsed,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::Created => "k.created_at",
            SortKey::Name => "k.name",
            SortKey::Expires => "k.expires_at",
            SortKey::LastUsed => "k.last_used_at",
        }
    }
}

/// A bound value of the list query.
enum Arg {
    Text(String),
    Int(i64),
}

/// The WHERE clause of a list filter, with only the conditions in use, so that an unfiltered
/// page reads the index of its sort column instead of testing every row.
fn list_where(f: &ListFilter, now: i64) -> (String, Vec<Arg>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let mut push = |cond: &str, values: Vec<Arg>| {
        let mut cond = cond.to_string();
        for v in values {
            args.push(v);
            cond = cond.replacen('?', &format!("${}", args.len()), 1);
        }
        conds.push(cond);
    };
    if let Some(owner) = &f.owner {
        push("k.owner_user_id = ?", vec![Arg::Text(owner.clone())]);
    }
    let search = f.search.trim();
    if !search.is_empty() {
        push(
            "(k.search_name LIKE ? ESCAPE '\\' OR k.id LIKE ? ESCAPE '\\')",
            vec![
                Arg::Text(format!("%{}%", escape_like(&search.to_lowercase()))),
                Arg::Text(format!("{}%", escape_like(&search.to_uppercase()))),
            ],
        );
    }
    if !f.key_type.is_empty() {
        push("k.key_type = ?", vec![Arg::Text(f.key_type.clone())]);
    }
    match f.status.as_str() {
        "inactive" => push("k.active = 0", vec![]),
        "locked" => push("k.active = 1 AND k.locked = 1", vec![]),
        "expired" => push(
            "k.active = 1 AND k.locked = 0 AND k.expires_at IS NOT NULL AND k.expires_at <= ?",
            vec![Arg::Int(now)],
        ),
        "active" => push(
            "k.active = 1 AND k.locked = 0 AND (k.expires_at IS NULL OR k.expires_at > ?)",
            vec![Arg::Int(now)],
        ),
        _ => {}
    }
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    (clause, args)
}

fn bind_all<'q, O>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    args: &[Arg],
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.clone()),
            Arg::Int(i) => q.bind(*i),
        };
    }
    q
}

/// One page of keys and the number of keys matching the filter.
pub async fn list(
    conn: &mut AnyConnection,
    f: &ListFilter,
    now: i64,
) -> sqlx::Result<(Vec<KeyRow>, i64)> {
    let (clause, args) = list_where(f, now);
    let direction = if f.descending { "DESC" } else { "ASC" };
    // "Never" (no expiry) and never-used sort last whichever the direction.
    let nulls = match f.sort {
        SortKey::Expires | SortKey::LastUsed => " NULLS LAST",
        SortKey::Created | SortKey::Name => "",
    };
    let column = f.sort.column();
    let sql = format!(
        "{} {clause} ORDER BY {column} {direction}{nulls}, k.id {direction} LIMIT {} OFFSET {}",
        select_keys!(""),
        f.limit.clamp(1, 500),
        f.offset.max(0)
    );
    round_trip();
    let rows: Vec<KeyRow> = bind_all(sqlx::query_as(AssertSqlSafe(sql)), &args)
        .fetch_all(&mut *conn)
        .await?;
    round_trip();
    let count_sql = format!("SELECT COUNT(*) FROM access_keys k {clause}");
    let (total,): (i64,) = bind_all(sqlx::query_as(AssertSqlSafe(count_sql)), &args)
        .fetch_one(conn)
        .await?;
    Ok((rows, total))
}

/// How many personal keys each user holds: (user id, count).
pub async fn personal_counts(conn: &mut AnyConnection) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT id, personal_key_count FROM users")
        .fetch_all(conn)
        .await
}
