//! The key list: search, filters, sort and pages, in two statements (the page and its count).

use sqlx::{AnyConnection, AssertSqlSafe};

use super::super::audit::escape_like;
use super::{KeyRow, round_trip};

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
    /// Only keys out of the key policy: for each limited key type, the latest expiry it
    /// allows (`None`: only an expiry is required); `Some(vec![])` matches nothing.
    pub out_of_policy: Option<Vec<(String, Option<i64>)>>,
    /// Only keys not yet expired whose expiry is at or before this time.
    pub expires_by: Option<i64>,
    /// Only keys never accepted.
    pub never_used: bool,
    /// Only keys last accepted before this time (used once, not since).
    pub last_used_before: Option<i64>,
    /// Only keys refused in the hours from this one on, for one of these reasons (`key_usage`
    /// outcomes; an empty list matches nothing).
    pub refused_since: Option<(i64, Vec<String>)>,
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
    if let Some(limits) = &f.out_of_policy {
        if limits.is_empty() {
            push("1 = 0", vec![]);
        } else {
            let mut parts = Vec::new();
            let mut values = Vec::new();
            for (key_type, latest) in limits {
                values.push(Arg::Text(key_type.clone()));
                match latest {
                    Some(t) => {
                        values.push(Arg::Int(*t));
                        parts.push(
                            "(k.key_type = ? AND (k.expires_at IS NULL OR k.expires_at > ?))",
                        );
                    }
                    None => parts.push("(k.key_type = ? AND k.expires_at IS NULL)"),
                }
            }
            push(&format!("({})", parts.join(" OR ")), values);
        }
    }
    if let Some(by) = f.expires_by {
        push(
            "k.expires_at > ? AND k.expires_at <= ?",
            vec![Arg::Int(now), Arg::Int(by)],
        );
    }
    if f.never_used {
        push("k.last_used_at IS NULL", vec![]);
    }
    if let Some(before) = f.last_used_before {
        push("k.last_used_at < ?", vec![Arg::Int(before)]);
    }
    // The usage table's index on (outcome, hour, key_id) finds the keys refused in the
    // window; each is then looked up by its primary key.
    if let Some((since, outcomes)) = &f.refused_since {
        if outcomes.is_empty() {
            push("1 = 0", vec![]);
        } else {
            let marks = vec!["?"; outcomes.len()].join(", ");
            let mut values = vec![Arg::Int(*since)];
            values.extend(outcomes.iter().cloned().map(Arg::Text));
            push(
                &format!(
                    "k.id IN (SELECT r.key_id FROM key_usage r WHERE r.hour >= ? AND r.outcome IN ({marks}))"
                ),
                values,
            );
        }
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

/// How many keys match the filter (its sort and page aside).
pub async fn count(conn: &mut AnyConnection, f: &ListFilter, now: i64) -> sqlx::Result<i64> {
    let (clause, args) = list_where(f, now);
    round_trip();
    let sql = format!("SELECT COUNT(*) FROM access_keys k {clause}");
    let (total,): (i64,) = bind_all(sqlx::query_as(AssertSqlSafe(sql)), &args)
        .fetch_one(conn)
        .await?;
    Ok(total)
}

/// Up to `limit` keys matching the filter (its sort and page aside) whose ID follows `after`,
/// in ID order: a keyset page, which costs the same at the millionth key as at the first
/// (OFFSET would read every skipped row) and neither repeats nor skips a key that exists
/// throughout while others are added or deleted.
pub async fn after(
    conn: &mut AnyConnection,
    f: &ListFilter,
    now: i64,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<KeyRow>> {
    let (mut clause, mut args) = list_where(f, now);
    if let Some(id) = after {
        args.push(Arg::Text(id.to_string()));
        let cond = format!("k.id > ${}", args.len());
        clause = if clause.is_empty() {
            format!("WHERE {cond}")
        } else {
            format!("{clause} AND {cond}")
        };
    }
    let sql = format!(
        "{} {clause} ORDER BY k.id LIMIT {}",
        select_keys!(""),
        limit.clamp(1, 1000)
    );
    round_trip();
    bind_all(sqlx::query_as(AssertSqlSafe(sql)), &args)
        .fetch_all(conn)
        .await
}
