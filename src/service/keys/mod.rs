//! Access keys: every rule and write (SPEC §2.1, §2.3). The console's Access keys tab, the
//! personal-key page and the REST API all come through here, one module per capability:
//! reading (`read`), creating (`create`), changing details (`update`) and switches (`switch`),
//! new secrets (`regenerate`), deleting (`delete`), the checks before either (`confirm`);
//! expiry choices (`expiry`) and assignments (`assignments`) are shared by several of them.

use sqlx::AnyConnection;

use crate::domain::{Permission, Secret, is_system_key_name};
use crate::error::AppError;
use crate::service::audit::{self, FAILURE, NewEntry};
use crate::service::grants;
use crate::service::repo::keys::{self as repo, KeyRow};
use crate::service::webhooks::KeyPayload;

mod assignments;
pub mod compliance;
mod confirm;
mod conform;
mod create;
mod delete;
mod expiry;
mod export;
mod exposed;
mod read;
mod regenerate;
mod switch;
mod update;
pub mod usage;
mod usage_filter;

pub use assignments::{Choices, choices};
pub use compliance::{Compliance, KeyPolicy, compliance};
pub use confirm::{Confirm, before};
pub use conform::{Conformed, MOST_AT_ONCE, Mend, Plan, conform, plan};
pub use create::{NewKey, create};
pub use delete::delete;
pub use expiry::ExpiryChoice;
pub use export::{
    BATCH as EXPORT_BATCH, CSV_HEADER, Export, ExportFormat, ExportedKey, export, export_in_batches,
};
pub use exposed::{
    EXPOSURE_POLICY, ExposureAction, ExposurePolicy, FoundSecret, FoundToken, GITHUB,
    NO_SUCH_SECRET, Reported, WhichSecret, exposure_policy, find_exposed, report_exposed,
    report_found,
};
pub use read::{
    KeyPage, KeyQuery, KeySort, count, count_round_trips, details, last_addresses, list,
    list_details, out_of_policy_count, out_of_policy_ids, own_details,
};
pub use regenerate::regenerate;
pub use switch::{Switch, switch};
pub use update::{KeyChanges, update};
pub use usage_filter::{FilterError, REFUSALS, Refused, UsageFilter, UsageParams, since_hour};

/// Who is acting (defined below service, where the request edge builds it). Kept here for
/// the code that still names it through this module; new code imports `crate::domain::Actor`.
pub use crate::domain::Actor;
/// Kinds of email about a key, as the outbox records them (defined in `domain`).
pub use crate::domain::key_mail::{EXPIRED, EXPIRING, EXPOSED, LOCKED, REPLACED_SECRET_USED};
/// A key as screens and the API show it, and its parts (defined in `domain`).
pub use crate::domain::{KeyDetails, KeyOwner, KeyStatus, LastUse};
/// What keys need beyond the database (shared with the key checks, which define it).
pub use crate::service::key_auth::Keyring;

/// A user may hold at most this many personal keys.
pub const PERSONAL_KEY_LIMIT: i64 = 2;
/// Validity choices offered when a key is created, in days (the key policy may offer fewer).
pub use crate::service::key_policy::VALIDITY_DAYS;
/// The longest grace period for an old secret: 7 days.
pub const MAX_GRACE_SECS: i64 = 7 * 86_400;
/// Grace periods offered when a secret is regenerated, in seconds.
pub const GRACE_PERIODS: [i64; 3] = [3600, 86_400, 7 * 86_400];

/// What a person is told about a key that does not exist, or is not theirs to see.
pub const KEY_GONE: &str =
    "This access key does not exist: it may have been deleted. Nothing was changed.";

/// Where a request manages keys from: every key of the tenant (administrators), or the actor's
/// own personal keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    Personal,
    /// The calling key itself (`/api/v1/apikeys/current`).
    OwnKey,
}

/// A key just created or regenerated: the only moment its secret exists outside the caller.
#[derive(Debug, Clone)]
pub struct OneTimeSecret {
    pub key_id: String,
    pub name: String,
    pub secret: Secret,
    pub tenant_id: String,
    /// Other keys in the same place with the same name (letter case aside) when this one was
    /// created: allowed, since programs may name keys alike, but worth a word to a person.
    pub namesakes: i64,
}

/// Managing tenant keys needs `keys:read` to look and `keys:write` to change; a person's own
/// personal keys need nothing beyond being theirs.
fn require(actor: &Actor, scope: Scope, permission: Permission) -> Result<(), AppError> {
    if scope == Scope::Tenant && !actor.may(permission) {
        return Err(AppError::Forbidden);
    }
    Ok(())
}

/// Loads a key the actor may manage in this scope and, inside a write transaction, locks its
/// row; any other key is "not found", so guessing IDs reveals nothing.
async fn load_for_write(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    id: &str,
) -> Result<KeyRow, AppError> {
    require(actor, scope, Permission::KeysWrite)?;
    repo::lock(conn, id).await?;
    fetch(conn, actor, scope, id).await
}

/// Loads a key the actor may see in this scope; any other key is "not found", so guessing IDs
/// reveals nothing.
async fn load(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    id: &str,
) -> Result<KeyRow, AppError> {
    require(actor, scope, Permission::KeysRead)?;
    fetch(conn, actor, scope, id).await
}

async fn fetch(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    id: &str,
) -> Result<KeyRow, AppError> {
    let row = repo::find(conn, id)
        .await?
        .ok_or(AppError::Gone(KEY_GONE))?;
    let visible = match scope {
        Scope::Tenant => true,
        Scope::Personal => row.owner_user_id.as_deref() == Some(actor.user_id.as_str()),
        Scope::OwnKey => actor.acting_key.as_deref() == Some(row.id.as_str()),
    };
    if !visible {
        return Err(AppError::Gone(KEY_GONE));
    }
    Ok(row)
}

/// Refuses every change made with a replaced secret, and records the attempt (in a
/// transaction of its own: the change itself writes nothing).
async fn require_current_secret(
    pool: &sqlx::AnyPool,
    now: i64,
    actor: &Actor,
    action: &str,
    key_id: &str,
) -> Result<(), AppError> {
    let Err(refusal) = grants::require_current_secret(actor) else {
        return Ok(());
    };
    let mut tx = crate::db::begin_write(pool).await?;
    let details = format!("{action} refused: the key's previous secret was used");
    let entry = NewEntry {
        outcome: FAILURE,
        ..entry(actor, "key.change_refused", key_id, "", &details)
    };
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    Err(refusal)
}

/// What the administration may not do to a personal key: only its owner changes it, obtains a
/// secret for it, or reverses the owner's decisions.
fn personal_key_refusal(what: &str) -> AppError {
    AppError::Denied(format!(
        "Only its owner can {what} a personal key. Administrators can deactivate, lock, shorten \
         the expiry of or delete it."
    ))
}

/// Refuses to touch a system key (named `<tenant ID>@…`), saying what cannot be done to it.
fn refuse_system_key(name: &str, tenant_id: &str, what: &str) -> Result<(), AppError> {
    if is_system_key_name(name, tenant_id) {
        return Err(AppError::Conflict(format!(
            "“{name}” is a system key managed by keyward; {what}."
        )));
    }
    Ok(())
}

/// An audit entry about a key.
fn entry<'a>(
    actor: &'a Actor,
    action: &'a str,
    key_id: &'a str,
    key_name: &'a str,
    details: &'a str,
) -> NewEntry<'a> {
    audit::success(actor, action, "access_key", key_id, key_name, details)
}

/// What a webhook says about a key.
fn payload_of(key: &KeyRow) -> KeyPayload<'_> {
    KeyPayload {
        id: &key.id,
        name: &key.name,
        key_type: &key.key_type,
        owner_user_id: key.owner_user_id.as_deref(),
        expires_at: key.expires_at,
    }
}
