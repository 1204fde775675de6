//! Writing the audit log. Entries name who, what, which target, when, from where and the outcome;
//! never a secret or a password.

use sqlx::AnyConnection;

pub use crate::repo::audit::NewEntry;

/// Outcome of an audited action.
pub const SUCCESS: &str = "success";
/// Outcome of a refused or failed action.
pub const FAILURE: &str = "failure";

/// Appends an entry at `now`.
pub async fn record(conn: &mut AnyConnection, now: i64, entry: NewEntry<'_>) -> sqlx::Result<()> {
    crate::repo::audit::insert(conn, now, &entry).await
}
