//! SQL for access keys and their group and role assignments.

use sqlx::{AnyConnection, AssertSqlSafe};

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
    /// Its rate limit: requests per second and burst, both `None` without one.
    pub rate_per_second: Option<f64>,
    pub rate_burst: Option<i64>,
}

/// The columns of `KeyRow`, from `access_keys k LEFT JOIN users u`.
macro_rules! select_columns {
    () => {
        concat!(
            "SELECT k.id, k.name, k.description, k.key_type, k.owner_user_id, u.name AS owner_name, u.active AS owner_active, ",
            "k.secret_hash, k.previous_secret_hash, k.previous_valid_until, k.secret_regenerated_at, ",
            "k.active, k.locked, k.failed_attempts, k.expires_at, k.allowed_networks, k.created_at, ",
            "k.created_by, k.created_by_label, k.modified_at, k.modified_by, k.modified_by_label, ",
            "k.last_used_at, k.last_used_ip, k.last_used_agent, k.deactivated_by, k.locked_by, ",
            "k.rate_per_second, k.rate_burst"
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

// Declared after the column macros above, which they use.
mod auth;
mod exposed;
mod list;

pub use auth::{
    AccessMap, AuthLookup, AuthRow, CHANGES_CHANNEL, announce_change, find_for_auth,
    load_access_map, lookup_for_auth, lookup_for_auth_pg, lookup_for_auth_sqlite, with_assignments,
};
pub use exposed::{HashHit, Held, end_grace, find_by_secret_hashes, find_many};
pub use list::{ListFilter, SortKey, after, count, list, personal_counts};

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

/// How many keys other than `id` carry `name` (letter case aside) in the same place: the
/// tenant's keys when `owner` is `None`, else that person's personal keys.
pub async fn count_namesakes(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    owner: Option<&str>,
) -> sqlx::Result<i64> {
    let sql = match owner {
        Some(_) => {
            "SELECT COUNT(*) FROM access_keys WHERE search_name = $1 AND id <> $2 \
             AND owner_user_id = $3"
        }
        None => {
            "SELECT COUNT(*) FROM access_keys WHERE search_name = $1 AND id <> $2 \
             AND owner_user_id IS NULL AND $3 = ''"
        }
    };
    sqlx::query_scalar(sql)
        .bind(name.to_lowercase())
        .bind(id)
        .bind(owner.unwrap_or_default())
        .fetch_one(conn)
        .await
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

/// Sets or removes (`None`) a key's rate limit.
pub async fn set_rate_limit(
    conn: &mut AnyConnection,
    id: &str,
    limit: Option<crate::domain::RateLimit>,
) -> sqlx::Result<()> {
    // No NULL is bound: through the Any driver a NULL goes to PostgreSQL without the column's
    // type, and the statement prepared with it would refuse a number on that connection later
    // ("incorrect binary data format in bind parameter 1").
    match limit {
        Some(limit) => {
            sqlx::query(
                "UPDATE access_keys SET rate_per_second = $1, rate_burst = $2 WHERE id = $3",
            )
            .bind(limit.per_second)
            .bind(limit.burst)
            .bind(id)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query(
                "UPDATE access_keys SET rate_per_second = NULL, rate_burst = NULL WHERE id = $1",
            )
            .bind(id)
            .execute(conn)
            .await?;
        }
    }
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

/// Locks a key for keyward's own protection (as the lockout does), unless it is locked
/// already; whether this call locked it.
pub async fn lock_if_unlocked(conn: &mut AnyConnection, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE access_keys SET locked = 1, locked_by = 'lockout' WHERE id = $1 AND locked = 0",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
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

/// The people in any of these groups, each once.
pub async fn members_of_groups(
    conn: &mut AnyConnection,
    group_ids: &[String],
) -> sqlx::Result<Vec<String>> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = (1..=group_ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT DISTINCT user_id FROM group_members WHERE group_id IN ({placeholders}) ORDER BY user_id"
    );
    let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
    for g in group_ids {
        query = query.bind(g.clone());
    }
    query.fetch_all(conn).await
}
