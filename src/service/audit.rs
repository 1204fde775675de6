//! Writing the audit log. Entries name who, what, which target, when, from where and the outcome;
//! never a secret or a password.

use sqlx::AnyConnection;

pub use crate::repo::audit::NewEntry;

/// Outcome of an audited action.
pub const SUCCESS: &str = "success";
/// Outcome of a refused or failed action.
pub const FAILURE: &str = "failure";

/// A successful change by `actor` to one target.
pub fn success<'a>(
    actor: &'a crate::service::keys::Actor,
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
    crate::repo::audit::insert(conn, now, &entry).await
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
    crate::repo::audit::purge(conn, now - i64::from(retention_days) * 86_400).await
}
