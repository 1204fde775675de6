//! The audit log: entries written in the transaction of the action they record, and read back,
//! filtered, for the Audit log page. Entries name who, what, which target, when, from where and
//! the outcome; never a secret or a password.

use chrono::NaiveDate;
use sqlx::{AnyConnection, AnyPool};

use crate::domain::Actor;
use crate::error::AppResult;
use crate::service::repo::audit::{EntryRow, Filter};

pub use crate::service::repo::audit::NewEntry;

/// Outcome of an audited action.
pub const SUCCESS: &str = "success";
/// Outcome of a refused or failed action.
pub const FAILURE: &str = "failure";

/// A successful change by `actor` to one target.
pub fn success<'a>(
    actor: &'a Actor,
    action: &'a str,
    target_type: &'a str,
    id: &'a str,
    label: &'a str,
    details: &'a str,
) -> NewEntry<'a> {
    NewEntry {
        actor_id: Some(&actor.user_id),
        actor_label: &actor.label,
        action,
        target_type,
        target_id: id,
        target_label: label,
        client_ip: &actor.client_ip,
        outcome: SUCCESS,
        details,
    }
}

/// Appends an entry at `now`.
pub async fn record(conn: &mut AnyConnection, now: i64, entry: NewEntry<'_>) -> sqlx::Result<()> {
    crate::service::repo::audit::insert(conn, now, &entry).await
}

/// Deletes entries older than `retention_days` days before `now`; `0` keeps them for ever.
pub async fn purge_expired(
    conn: &mut AnyConnection,
    now: i64,
    retention_days: u32,
) -> sqlx::Result<u64> {
    if retention_days == 0 {
        return Ok(0);
    }
    crate::service::repo::audit::purge(conn, now - i64::from(retention_days) * 86_400).await
}

/// How many entries a page of the audit log shows.
pub const PAGE: i64 = 50;

/// What to look for in the audit log: prefixes of the actor, action and target, whole UTC days
/// from and to, and where the previous page ended.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Entries older than this ID (the next page).
    pub before: Option<i64>,
}

impl Search {
    /// The search the page's filters ask for: text trimmed, dates as `YYYY-MM-DD` (empty for
    /// any); a date that is not one gives the message to show.
    pub fn parse(
        actor: &str,
        action: &str,
        target: &str,
        from: &str,
        to: &str,
        before: Option<i64>,
    ) -> Result<Self, String> {
        let (from, to) = match (parse_day(from, false), parse_day(to, true)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        if let (Some(start), Some(end)) = (from, to)
            && start > end
        {
            return Err(
                "The From date is after the To date: no entry could match. Swap them, or \
                 clear one."
                    .to_string(),
            );
        }
        Ok(Search {
            actor: actor.trim().to_string(),
            action: action.trim().to_string(),
            target: target.trim().to_string(),
            from,
            to,
            before,
        })
    }
}

/// The first (or, at `end_of_day`, the last) second of a typed day; `None` when none is typed.
fn parse_day(raw: &str, end_of_day: bool) -> Result<Option<i64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("“{raw}” is not a date: use YYYY-MM-DD."))?;
    let t = if end_of_day {
        day.and_hms_opt(23, 59, 59)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    Ok(t.map(|t| t.and_utc().timestamp()))
}

/// An entry as the Audit log page shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    /// The target's label, or its ID when it has none.
    pub target: String,
    pub client_ip: String,
    pub succeeded: bool,
    pub details: String,
}

impl From<EntryRow> for Entry {
    fn from(r: EntryRow) -> Self {
        Entry {
            id: r.id,
            at: r.at,
            actor: r.actor_label,
            action: r.action,
            target: if r.target_label.is_empty() {
                r.target_id
            } else {
                r.target_label
            },
            client_ip: r.client_ip,
            succeeded: r.outcome == SUCCESS,
            details: r.details,
        }
    }
}

/// A page of the entries `search` finds, newest first, [`PAGE`] at most.
pub async fn search(pool: &AnyPool, search: &Search) -> AppResult<Vec<Entry>> {
    let filter = Filter {
        actor: search.actor.clone(),
        action: search.action.clone(),
        target: search.target.clone(),
        from: search.from,
        to: search.to,
        before_id: search.before,
        limit: PAGE,
    };
    let mut conn = pool.acquire().await?;
    let rows = crate::service::repo::audit::list(&mut conn, &filter).await?;
    Ok(rows.into_iter().map(Entry::from).collect())
}
