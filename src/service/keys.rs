//! Access keys: every rule and write (SPEC §2.1, §2.3). The console's Access keys tab, the
//! personal-key page and (next) the REST API all come through here.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use sqlx::AnyConnection;

use crate::auth::key_secret::SecretHasher;
use crate::clock::Clock;
use crate::domain::{KeyId, KeyName, KeyType, Permission, Secret, is_system_key_name};
use crate::error::AppError;
use crate::repo::keys::{self as repo, KeyRow, ListFilter, NewKeyRow};
use crate::repo::{self as repos};
use crate::service::audit::{self, FAILURE, NewEntry};
use crate::service::grants::{self, Decider};
use crate::service::webhooks::{self, EventType, KeyPayload};
use crate::service::{FieldErrors, FormError};

/// A user may hold at most this many personal keys.
pub const PERSONAL_KEY_LIMIT: i64 = 2;
/// Validity choices offered when a key is created, in days.
pub const VALIDITY_DAYS: [i64; 5] = [30, 60, 90, 180, 365];
/// The longest grace period for an old secret: 7 days.
pub const MAX_GRACE_SECS: i64 = 7 * 86_400;
/// Grace periods offered when a secret is regenerated, in seconds.
pub const GRACE_PERIODS: [i64; 3] = [3600, 86_400, 7 * 86_400];
/// The latest expiry accepted: the end of 2099.
const LATEST_EXPIRY: i64 = 4_102_444_799;

/// Who is acting (defined below service, where the request edge builds it).
pub use crate::domain::Actor;

/// Where a request manages keys from: every key of the tenant (administrators), or the actor's
/// own personal keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    Personal,
    /// The calling key itself (`/api/v1/apikeys/current`).
    OwnKey,
}

/// What keys need beyond the database: the clock, the secret hasher and the tenant ID.
pub struct Keyring<'a> {
    pub clock: &'a dyn Clock,
    pub hasher: &'a SecretHasher,
    pub tenant_id: &'a str,
    /// Wakes the outbox sender: a change that committed may have queued emails or webhook
    /// deliveries ([`Keyring::committed`]).
    pub sender: &'a tokio::sync::Notify,
}

impl Keyring<'_> {
    /// Called after a change commits: what it queued goes out now rather than at the next pass.
    pub fn committed(&self) {
        self.sender.notify_one();
    }
}

/// A key's state as people see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
    Expired,
    Locked,
}

impl KeyStatus {
    /// The state of a row at `now`.
    pub fn of(row: &KeyRow, now: i64) -> Self {
        if row.active == 0 {
            KeyStatus::Inactive
        } else if row.locked == 1 {
            KeyStatus::Locked
        } else if row.expires_at.is_some_and(|t| t <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// The label shown in the console.
    pub fn label(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
            KeyStatus::Expired => "Expired",
            KeyStatus::Locked => "Locked",
        }
    }
}

/// How long a key should last, as chosen in a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryChoice {
    Days(i64),
    Date(String),
    /// An exact instant (unix seconds), as the API gives it.
    At(i64),
    Never,
}

impl ExpiryChoice {
    /// Reads the `validity` field (`30`…`365`, `custom`, `never`) and the custom date.
    pub fn from_form(validity: &str, custom_date: &str) -> Result<Self, String> {
        match validity {
            "never" => Ok(ExpiryChoice::Never),
            "custom" => Ok(ExpiryChoice::Date(custom_date.trim().to_string())),
            other => other
                .parse::<i64>()
                .ok()
                .filter(|d| VALIDITY_DAYS.contains(d))
                .map(ExpiryChoice::Days)
                .ok_or_else(|| "Choose how long the key is valid.".to_string()),
        }
    }

    /// The expiry instant (unix seconds), `None` for never. A custom date lasts to the end of
    /// that day (UTC) and must lie in the future.
    pub fn resolve(&self, now: i64) -> Result<Option<i64>, String> {
        match self {
            ExpiryChoice::Never => Ok(None),
            ExpiryChoice::Days(d) => Ok(Some(now + d * 86_400)),
            ExpiryChoice::At(t) => {
                if *t <= now {
                    Err("Choose an expiry in the future.".into())
                } else if *t > LATEST_EXPIRY {
                    Err("Choose an expiry before 2100.".into())
                } else {
                    Ok(Some(*t))
                }
            }
            ExpiryChoice::Date(raw) => {
                if raw.is_empty() {
                    return Err("Enter the date the key expires.".into());
                }
                let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                    .map_err(|_| format!("“{raw}” is not a date: use YYYY-MM-DD."))?;
                let end = day
                    .and_hms_opt(23, 59, 59)
                    .map(|t| t.and_utc().timestamp())
                    .ok_or_else(|| "That date cannot be used.".to_string())?;
                if end <= now {
                    return Err("Choose a date in the future.".into());
                }
                if end > LATEST_EXPIRY {
                    return Err("Choose a date before 2100.".into());
                }
                Ok(Some(end))
            }
        }
    }
}

/// A new key as submitted.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub key_type: String,
    /// The chosen expiry, or why the choice could not be read.
    pub expiry: Result<ExpiryChoice, String>,
    pub group_ids: Vec<String>,
    pub role_ids: Vec<String>,
}

/// A key just created or regenerated: the only moment its secret exists outside the caller.
#[derive(Debug, Clone)]
pub struct OneTimeSecret {
    pub key_id: String,
    pub name: String,
    pub secret: Secret,
    pub tenant_id: String,
}

/// Managing tenant keys needs `keys:read` to look and `keys:write` to change; a person's own
/// personal keys need nothing beyond being theirs.
fn require(actor: &Actor, scope: Scope, permission: Permission) -> Result<(), AppError> {
    if scope == Scope::Tenant && !actor.may(permission) {
        return Err(AppError::Forbidden);
    }
    Ok(())
}

/// What a person is told about a key that does not exist, or is not theirs to see.
pub const KEY_GONE: &str =
    "This access key does not exist: it may have been deleted. Nothing was changed.";

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

/// Loads a key the actor may manage in this scope; any other key is "not found", so guessing IDs
/// reveals nothing.
pub async fn load(
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

/// Assignments as they were and as asked for: checked to exist and, where added, to be the
/// actor's to give (`grants`). A key never widens its own.
struct AssignmentChange<'a> {
    old_groups: &'a [String],
    old_roles: &'a [String],
    group_ids: &'a [String],
    role_ids: &'a [String],
    /// The key being changed (`None` while it is created).
    key_id: Option<&'a str>,
}

async fn check_assignments(
    conn: &mut AnyConnection,
    actor: &Actor,
    change: AssignmentChange<'_>,
    errors: &mut FieldErrors,
) -> Result<(Vec<String>, Vec<String>), AppError> {
    let groups: BTreeSet<String> = change
        .group_ids
        .iter()
        .filter(|g| !g.is_empty())
        .cloned()
        .collect();
    let roles: BTreeSet<String> = change
        .role_ids
        .iter()
        .filter(|r| !r.is_empty())
        .cloned()
        .collect();
    let group_names: Vec<(String, String)> = repos::groups::list(conn)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let role_names: Vec<(String, String)> = repos::roles::list(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    let known_groups: BTreeSet<String> = group_names.iter().map(|(id, _)| id.clone()).collect();
    let known_roles: BTreeSet<String> = role_names.iter().map(|(id, _)| id.clone()).collect();
    let added = |chosen: &BTreeSet<String>, old: &[String], names: &[(String, String)]| {
        names
            .iter()
            .filter(|(id, _)| chosen.contains(id) && !old.contains(id))
            .cloned()
            .collect::<Vec<_>>()
    };
    let added_groups = added(&groups, change.old_groups, &group_names);
    let added_roles = added(&roles, change.old_roles, &role_names);
    let own_key = change.key_id.is_some() && change.key_id == actor.acting_key.as_deref();
    if own_key && !(added_groups.is_empty() && added_roles.is_empty()) {
        errors.add(
            "roles",
            "A key cannot widen its own roles or groups; ask someone who manages keys.",
        );
    } else if !(added_groups.is_empty() && added_roles.is_empty()) {
        let map = repo::load_access_map(conn).await?;
        for (field, message) in grants::refused_grants(&map, actor, &added_roles, &added_groups) {
            errors.add(field, message);
        }
    }
    if !groups.is_subset(&known_groups) {
        errors.add(
            "groups",
            "One of the chosen groups no longer exists. Choose again.",
        );
    }
    if !roles.is_subset(&known_roles) {
        errors.add(
            "roles",
            "One of the chosen roles no longer exists. Choose again.",
        );
    }
    Ok((groups.into_iter().collect(), roles.into_iter().collect()))
}

fn entry<'a>(
    actor: &'a Actor,
    action: &'a str,
    key_id: &'a str,
    key_name: &'a str,
    details: &'a str,
) -> NewEntry<'a> {
    audit::success(actor, action, "access_key", key_id, key_name, details)
}

/// Creates a key. In the personal scope it belongs to the actor and takes one of their two
/// places inside the same transaction; in the tenant scope it is a tenant key.
pub async fn create(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    scope: Scope,
    input: NewKey,
) -> Result<OneTimeSecret, FormError> {
    require(actor, scope, Permission::KeysWrite)?;
    let now = ring.clock.unix();
    require_current_secret(pool, now, actor, "creating a key", "").await?;
    let mut errors = FieldErrors::default();
    let name = KeyName::parse(&input.name)
        .map_err(|m| errors.add("name", m))
        .ok();
    if let Some(n) = &name
        && n.is_system(ring.tenant_id)
    {
        errors.add(
            "name",
            format!(
                "Names starting with “{}@” are reserved for system keys.",
                ring.tenant_id
            ),
        );
    }
    let key_type = KeyType::parse(&input.key_type);
    if key_type.is_none() {
        errors.add("key_type", "Choose Access key or API.");
    }
    let expires_at = input
        .expiry
        .and_then(|c| c.resolve(now))
        .map_err(|m| errors.add("validity", m))
        .ok();
    if scope == Scope::Personal && (!input.group_ids.is_empty() || !input.role_ids.is_empty()) {
        errors.add(
            "groups",
            "Personal keys act with your own permissions; they take no groups or roles.",
        );
    }
    let mut tx = crate::db::begin_write(pool).await?;
    let (group_ids, role_ids) = check_assignments(
        &mut tx,
        actor,
        AssignmentChange {
            old_groups: &[],
            old_roles: &[],
            group_ids: &input.group_ids,
            role_ids: &input.role_ids,
            key_id: None,
        },
        &mut errors,
    )
    .await?;
    let (Some(name), Some(key_type), Some(expires_at), true) =
        (name, key_type, expires_at, errors.is_empty())
    else {
        return Err(FormError::Invalid(errors));
    };
    let owner = match scope {
        Scope::Personal => {
            if !repo::take_personal_slot(&mut tx, &actor.user_id, PERSONAL_KEY_LIMIT).await? {
                return Err(FormError::Other(AppError::Conflict(format!(
                    "You already have {PERSONAL_KEY_LIMIT} personal access keys, the most a user can hold. \
                     Delete one to create another."
                ))));
            }
            Some(actor.user_id.as_str())
        }
        Scope::Tenant => None,
        Scope::OwnKey => return Err(FormError::Other(AppError::Forbidden)),
    };
    let id = KeyId::generate();
    let secret = Secret::generate();
    repo::insert(
        &mut tx,
        &NewKeyRow {
            id: id.as_str(),
            name: name.as_str(),
            key_type: key_type.as_str(),
            owner_user_id: owner,
            secret_hash: &ring.hasher.hash(&secret),
            expires_at,
            actor_id: Some(&actor.user_id),
            actor_label: &actor.label,
            now,
        },
    )
    .await?;
    repo::set_groups(&mut tx, id.as_str(), &group_ids).await?;
    repo::set_roles(&mut tx, id.as_str(), &role_ids).await?;
    let payload = KeyPayload {
        id: id.as_str(),
        name: name.as_str(),
        key_type: key_type.as_str(),
        owner_user_id: owner,
        expires_at,
    };
    webhooks::emit(&mut tx, now, EventType::KeyCreated, &payload).await?;
    let details = format!("type {}, {}", key_type.label(), expiry_phrase(expires_at));
    audit::record(
        &mut tx,
        now,
        entry(actor, "key.created", id.as_str(), name.as_str(), &details),
    )
    .await?;
    tx.commit().await?;
    ring.committed();
    Ok(OneTimeSecret {
        key_id: id.to_string(),
        name: name.as_str().to_string(),
        secret,
        tenant_id: ring.tenant_id.to_string(),
    })
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

fn expiry_phrase(expires_at: Option<i64>) -> String {
    match expires_at {
        Some(t) => format!("expires {}", crate::clock::format_utc(t)),
        None => "never expires".into(),
    }
}

/// Changes to a key's details, as submitted from the Key details pane.
#[derive(Debug, Clone)]
pub struct KeyChanges {
    /// Each `None` leaves that part of the key as it is.
    pub name: Option<String>,
    pub description: Option<String>,
    pub expiry: Option<Result<ExpiryChoice, String>>,
    pub group_ids: Option<Vec<String>>,
    pub role_ids: Option<Vec<String>>,
    /// CIDR ranges the key may be used from, comma-separated; empty: anywhere.
    pub allowed_networks: Option<String>,
}

/// Applies changes to name, expiry and (tenant keys only) assignments. Assignment changes notify
/// the people they affect.
pub async fn update(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    scope: Scope,
    id: &str,
    changes: KeyChanges,
) -> Result<(), FormError> {
    let now = ring.clock.unix();
    require_current_secret(pool, now, actor, "changing the key", id).await?;
    let mut tx = crate::db::begin_write(pool).await?;
    let key = load_for_write(&mut tx, actor, scope, id).await?;
    let system = is_system_key_name(&key.name, ring.tenant_id);
    let mut errors = FieldErrors::default();
    let name = KeyName::parse(changes.name.as_deref().unwrap_or(&key.name))
        .map_err(|m| errors.add("name", m))
        .ok();
    if let Some(n) = &name
        && n.as_str() != key.name
        && (system || n.is_system(ring.tenant_id))
    {
        errors.add("name", "System key names cannot be changed or taken.");
    }
    let description = changes
        .description
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|| key.description.clone());
    if description.chars().count() > 500 || description.chars().any(char::is_control) {
        errors.add(
            "description",
            "A description can be at most 500 characters, without control characters.",
        );
    }
    let new_expiry = match changes.expiry {
        None => Ok(key.expires_at),
        Some(choice) => choice.and_then(|c| c.resolve(now)),
    }
    .map_err(|m| errors.add("validity", m))
    .ok();
    let personal = key.owner_user_id.is_some();
    let wants_assignments = changes.group_ids.as_ref().is_some_and(|g| !g.is_empty())
        || changes.role_ids.as_ref().is_some_and(|r| !r.is_empty());
    if personal && wants_assignments {
        errors.add(
            "groups",
            "Personal keys act with their owner's permissions; they take no groups or roles.",
        );
    }
    let old_groups = repo::group_ids(&mut tx, id).await?;
    let old_roles = repo::role_ids(&mut tx, id).await?;
    let (group_ids, role_ids) = if personal {
        (Vec::new(), Vec::new())
    } else {
        let groups = changes.group_ids.unwrap_or_else(|| old_groups.clone());
        let roles = changes.role_ids.unwrap_or_else(|| old_roles.clone());
        check_assignments(
            &mut tx,
            actor,
            AssignmentChange {
                old_groups: &old_groups,
                old_roles: &old_roles,
                group_ids: &groups,
                role_ids: &roles,
                key_id: Some(id),
            },
            &mut errors,
        )
        .await?
    };
    let networks = match &changes.allowed_networks {
        None => Ok(key.allowed_networks.clone()),
        Some(raw) => crate::service::key_auth::parse_networks(raw),
    }
    .map_err(|m| errors.add("allowed_networks", m))
    .ok();
    if let Some(n) = &networks
        && actor.acting_key.as_deref() == Some(id)
        && !grants::networks_narrow(&key.allowed_networks, n)
    {
        errors.add(
            "allowed_networks",
            "A key cannot widen its own allowed networks; it may only narrow them.",
        );
    }
    let (Some(name), Some(new_expiry), Some(networks), true) =
        (name, new_expiry, networks, errors.is_empty())
    else {
        return Err(FormError::Invalid(errors));
    };
    if personal && Decider::of(actor, &key) == Decider::Administrator {
        // The administration may only shorten a personal key's life.
        let shortens = match (new_expiry, key.expires_at) {
            (_, _) if new_expiry == key.expires_at => true,
            (Some(new), Some(old)) => new < old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if name.as_str() != key.name
            || description != key.description
            || networks != key.allowed_networks
            || !shortens
        {
            return Err(FormError::Other(personal_key_refusal(
                "rename, extend or otherwise change",
            )));
        }
    }
    if networks != key.allowed_networks {
        repo::set_allowed_networks(&mut tx, id, &networks).await?;
        let details = if networks.is_empty() {
            "anywhere".to_string()
        } else {
            networks.clone()
        };
        audit::record(
            &mut tx,
            now,
            entry(actor, "key.networks_changed", id, name.as_str(), &details),
        )
        .await?;
    }
    if description != key.description {
        repo::set_description(&mut tx, id, &description).await?;
        audit::record(
            &mut tx,
            now,
            entry(actor, "key.description_changed", id, name.as_str(), ""),
        )
        .await?;
    }
    let mut changed = description != key.description || networks != key.allowed_networks;
    if name.as_str() != key.name {
        repo::set_name(&mut tx, id, name.as_str()).await?;
        let details = format!("from “{}”", key.name);
        audit::record(
            &mut tx,
            now,
            entry(actor, "key.renamed", id, name.as_str(), &details),
        )
        .await?;
        changed = true;
    }
    if new_expiry != key.expires_at {
        repo::set_expiry(&mut tx, id, new_expiry, now).await?;
        // A new expiry is noticed afresh; notices about the old one are void.
        crate::repo::outbox::forget_notices(&mut tx, id).await?;
        crate::repo::outbox::cancel_for_key(&mut tx, id, &[EXPIRING, EXPIRED]).await?;
        let details = expiry_phrase(new_expiry);
        audit::record(
            &mut tx,
            now,
            entry(actor, "key.expiry_changed", id, name.as_str(), &details),
        )
        .await?;
        changed = true;
    }
    if !personal && (old_groups != group_ids || old_roles != role_ids) {
        repo::set_groups(&mut tx, id, &group_ids).await?;
        repo::set_roles(&mut tx, id, &role_ids).await?;
        let details = format!(
            "groups: {}; roles: {}",
            describe(&group_ids),
            describe(&role_ids)
        );
        audit::record(
            &mut tx,
            now,
            entry(
                actor,
                "key.assignments_changed",
                id,
                name.as_str(),
                &details,
            ),
        )
        .await?;
        notify_assignment_change(&mut tx, &key, name.as_str(), &old_groups, &group_ids, now)
            .await?;
        changed = true;
    }
    if changed {
        repo::touch(&mut tx, id, now, Some(&actor.user_id), &actor.label).await?;
    }
    tx.commit().await?;
    ring.committed();
    Ok(())
}

fn describe(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// Bell notices to the people a change of assignments affects: the key's owner and the members
/// of every group added or removed.
async fn notify_assignment_change(
    conn: &mut AnyConnection,
    key: &KeyRow,
    name: &str,
    old_groups: &[String],
    new_groups: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    // Everyone in a group the key had or has now: a role change reaches them all.
    let groups: BTreeSet<&String> = old_groups.iter().chain(new_groups.iter()).collect();
    let mut people: BTreeSet<String> = key.owner_user_id.iter().cloned().collect();
    for group in groups {
        let members: Vec<String> =
            sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
                .bind(group)
                .fetch_all(&mut *conn)
                .await?;
        people.extend(members);
    }
    let title = format!("Assignments of access key “{name}” changed");
    let body = format!(
        "The groups or roles of key {} changed, and with them what it may do.",
        key.id
    );
    for user in people {
        repos::notifications::insert(
            conn,
            &user,
            now,
            "key.assignments_changed",
            &title,
            &body,
            "",
        )
        .await?;
    }
    Ok(())
}

/// Replaces a key's secret. The old one stops at once, or after `grace_secs` (one of
/// [`GRACE_PERIODS`]). Regenerating also ends a lock. System keys refuse.
pub async fn regenerate(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    scope: Scope,
    id: &str,
    grace_secs: i64,
) -> Result<OneTimeSecret, AppError> {
    if !(0..=MAX_GRACE_SECS).contains(&grace_secs) {
        return Err(AppError::invalid(
            "grace_seconds",
            "A grace period is between 0 seconds and 7 days.",
        ));
    }
    let now = ring.clock.unix();
    require_current_secret(pool, now, actor, "generating a new secret", id).await?;
    let mut tx = crate::db::begin_write(pool).await?;
    let key = load_for_write(&mut tx, actor, scope, id).await?;
    if is_system_key_name(&key.name, ring.tenant_id) {
        return Err(AppError::Conflict(format!(
            "“{}” is a system key managed by keyward; its secret cannot be regenerated here.",
            key.name
        )));
    }
    let decider = Decider::of(actor, &key);
    if key.owner_user_id.is_some() && decider == Decider::Administrator {
        return Err(personal_key_refusal("generate a new secret for"));
    }
    if key.owner_user_id.is_none() && actor.acting_key.as_deref() != Some(id) {
        // A new secret hands its holder everything the key may do.
        let held = repo::find_for_auth(&mut tx, crate::db::Backend::of_pool(pool), &[id]).await?;
        if let Some(found) = held.first() {
            grants::require_holds_all(actor, &found.permissions)?;
        }
    }
    let secret = Secret::generate();
    let previous = (grace_secs > 0).then(|| (key.secret_hash.as_str(), now + grace_secs));
    // A new secret ends a lock, except one an administrator set on someone else's key.
    let unlock = key.owner_user_id.is_none() || decider.may_reverse(key.locked_by.as_deref());
    repo::replace_secret(
        &mut tx,
        id,
        &ring.hasher.hash(&secret),
        previous,
        now,
        unlock || key.locked == 0,
    )
    .await?;
    repo::touch(&mut tx, id, now, Some(&actor.user_id), &actor.label).await?;
    let details = if grace_secs > 0 {
        format!(
            "old secret works until {}",
            crate::clock::format_utc(now + grace_secs)
        )
    } else {
        "old secret stopped at once".to_string()
    };
    audit::record(
        &mut tx,
        now,
        entry(actor, "key.secret_regenerated", id, &key.name, &details),
    )
    .await?;
    webhooks::emit(
        &mut tx,
        now,
        EventType::SecretRegenerated,
        &payload_of(&key),
    )
    .await?;
    tx.commit().await?;
    ring.committed();
    Ok(OneTimeSecret {
        key_id: key.id,
        name: key.name,
        secret,
        tenant_id: ring.tenant_id.to_string(),
    })
}

/// A change of a key's switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    Activate,
    Deactivate,
    /// By hand: the key stops authenticating until it is unlocked or given a new secret.
    Lock,
    /// Ends a lock and forgets failed attempts.
    Unlock,
}

/// Flips one of a key's switches; a switch already in place changes nothing and writes no
/// audit entry.
pub async fn switch(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    scope: Scope,
    id: &str,
    switch: Switch,
) -> Result<(), AppError> {
    let now = ring.clock.unix();
    require_current_secret(pool, now, actor, "changing the key's state", id).await?;
    let mut tx = crate::db::begin_write(pool).await?;
    let key = load_for_write(&mut tx, actor, scope, id).await?;
    let decider = Decider::of(actor, &key);
    if key.owner_user_id.is_some() {
        // Whoever deactivated or locked a personal key, owner or administration, reverses it.
        let reversal = match switch {
            Switch::Activate if key.active == 0 => Some(key.deactivated_by.as_deref()),
            Switch::Unlock if key.locked == 1 => Some(key.locked_by.as_deref()),
            _ => None,
        };
        if let Some(recorded) = reversal
            && !decider.may_reverse(recorded)
        {
            let verb = if switch == Switch::Activate {
                "deactivated"
            } else {
                "locked"
            };
            return Err(AppError::Denied(match decider {
                Decider::Owner => format!(
                    "An administrator {verb} this key; only an administrator can undo that."
                ),
                Decider::Administrator => format!(
                    "Its owner {verb} this key (or it locked after wrong secrets); only the owner \
                     can undo that."
                ),
            }));
        }
    }
    let (needed, action, details) = match switch {
        Switch::Activate => (key.active == 0, "key.activated", ""),
        Switch::Deactivate => (key.active == 1, "key.deactivated", ""),
        Switch::Lock => (key.locked == 0, "key.locked", "locked by hand"),
        Switch::Unlock => (key.locked == 1, "key.unlocked", ""),
    };
    if needed {
        match switch {
            Switch::Activate => repo::set_active(&mut tx, id, true, decider.as_str()).await?,
            Switch::Deactivate => {
                repo::set_active(&mut tx, id, false, decider.as_str()).await?;
                crate::repo::outbox::cancel_for_key(&mut tx, id, &[EXPIRING, EXPIRED]).await?;
            }
            Switch::Lock => repo::set_locked(&mut tx, id, decider.as_str()).await?,
            Switch::Unlock => repo::unlock(&mut tx, id).await?,
        }
        repo::touch(&mut tx, id, now, Some(&actor.user_id), &actor.label).await?;
        audit::record(&mut tx, now, entry(actor, action, id, &key.name, details)).await?;
    }
    tx.commit().await?;
    ring.committed();
    Ok(())
}

/// Kinds of email about a key, as the outbox records them.
pub const EXPIRING: &str = "key.expiring";
pub const EXPIRED: &str = "key.expired";
pub const LOCKED: &str = "key.locked";

/// Deletes a key for good. System keys refuse. A personal key gives its owner's place back.
pub async fn delete(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    scope: Scope,
    id: &str,
) -> Result<String, AppError> {
    let now = ring.clock.unix();
    require_current_secret(pool, now, actor, "deleting the key", id).await?;
    let mut tx = crate::db::begin_write(pool).await?;
    let key = load_for_write(&mut tx, actor, scope, id).await?;
    if is_system_key_name(&key.name, ring.tenant_id) {
        return Err(AppError::Conflict(format!(
            "“{}” is a system key managed by keyward; it cannot be deleted.",
            key.name
        )));
    }
    if !repo::delete(&mut tx, id).await? {
        return Err(AppError::Gone(KEY_GONE));
    }
    if let Some(owner) = &key.owner_user_id {
        repo::release_personal_slot(&mut tx, owner).await?;
    }
    crate::repo::outbox::cancel_for_key(&mut tx, id, &[EXPIRING, EXPIRED, LOCKED]).await?;
    crate::repo::outbox::forget_notices(&mut tx, id).await?;
    audit::record(&mut tx, now, entry(actor, "key.deleted", id, &key.name, "")).await?;
    webhooks::emit(&mut tx, now, EventType::KeyDeleted, &payload_of(&key)).await?;
    tx.commit().await?;
    ring.committed();
    Ok(key.name)
}

/// A key's permissions and its group and role assignments, read with the query key
/// authentication uses, so that what the console and the API show is what a check enforces.
/// `NotFound` when the key has just been deleted.
pub async fn assignments(
    conn: &mut AnyConnection,
    backend: crate::db::Backend,
    id: &str,
) -> Result<repo::AuthRow, AppError> {
    repo::find_for_auth(conn, backend, &[id])
        .await?
        .pop()
        .ok_or(AppError::NotFound)
}

/// Lists keys in a scope.
pub async fn list(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    mut filter: ListFilter,
    now: i64,
) -> Result<(Vec<KeyRow>, i64), AppError> {
    require(actor, scope, Permission::KeysRead)?;
    filter.owner = match scope {
        Scope::Personal => Some(actor.user_id.clone()),
        Scope::Tenant | Scope::OwnKey => None,
    };
    Ok(repo::list(conn, &filter, now).await?)
}

/// A key as a screen or the API shows it: its facts, its state when read, its assignments
/// and the permissions it acts with. Never carries a stored secret.
#[derive(Debug, Clone)]
pub struct KeyDetails {
    pub id: String,
    pub name: String,
    pub description: String,
    pub key_type: KeyType,
    /// The owner of a personal key; `None` for a tenant key.
    pub owner: Option<KeyOwner>,
    pub status: KeyStatus,
    pub active: bool,
    pub locked: bool,
    /// Named `<tenant ID>@…`: managed by keyward, never regenerated or deleted.
    pub system: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub modified_at: i64,
    pub modified_by: String,
    pub last_used: Option<LastUse>,
    pub failed_attempts: i64,
    /// CIDR ranges the key may be used from; empty: anywhere.
    pub allowed_networks: Vec<String>,
    /// The key's own group and role assignments (tenant keys), sorted.
    pub group_ids: Vec<String>,
    pub role_ids: Vec<String>,
    /// What the key may do, sorted: exactly what a key check grants it.
    pub permissions: Vec<String>,
}

/// The person a personal key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub id: String,
    pub name: String,
}

/// A key's last accepted use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUse {
    pub at: i64,
    pub client_ip: String,
    pub user_agent: String,
}

/// A key's details from its row and what was read beside it.
pub(crate) fn details_of(found: repo::AuthRow, now: i64, tenant_id: &str) -> KeyDetails {
    let repo::AuthRow {
        key: row,
        permissions,
        group_ids,
        role_ids,
        ..
    } = found;
    KeyDetails {
        status: KeyStatus::of(&row, now),
        system: is_system_key_name(&row.name, tenant_id),
        // The stored type is always one of the two; an unknown one can only call nothing.
        key_type: KeyType::parse(&row.key_type).unwrap_or(KeyType::Api),
        owner: match (row.owner_user_id, row.owner_name) {
            (Some(id), Some(name)) => Some(KeyOwner { id, name }),
            _ => None,
        },
        active: row.active == 1,
        locked: row.locked == 1,
        last_used: row.last_used_at.map(|at| LastUse {
            at,
            client_ip: row.last_used_ip.unwrap_or_default(),
            user_agent: row.last_used_agent.unwrap_or_default(),
        }),
        allowed_networks: row
            .allowed_networks
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        id: row.id,
        name: row.name,
        description: row.description,
        expires_at: row.expires_at,
        created_at: row.created_at,
        created_by: row.created_by_label,
        modified_at: row.modified_at,
        modified_by: row.modified_by_label,
        failed_attempts: row.failed_attempts,
        group_ids,
        role_ids,
        permissions,
    }
}

impl KeyStatus {
    /// The state as the API names it: `active`, `inactive`, `expired` or `locked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
            KeyStatus::Expired => "expired",
            KeyStatus::Locked => "locked",
        }
    }

    /// Reads the API's (and the console's filter's) name of a state.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(KeyStatus::Active),
            "inactive" => Some(KeyStatus::Inactive),
            "expired" => Some(KeyStatus::Expired),
            "locked" => Some(KeyStatus::Locked),
            _ => None,
        }
    }
}

/// Columns a key list can be sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeySort {
    #[default]
    Created,
    Name,
    Expires,
    LastUsed,
}

impl KeySort {
    /// Reads `created`, `name`, `expires` or `last_used`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "created" => Some(KeySort::Created),
            "name" => Some(KeySort::Name),
            "expires" => Some(KeySort::Expires),
            "last_used" => Some(KeySort::LastUsed),
            _ => None,
        }
    }

    /// The name `parse` reads.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySort::Created => "created",
            KeySort::Name => "name",
            KeySort::Expires => "expires",
            KeySort::LastUsed => "last_used",
        }
    }

    /// The direction when none is asked for: newest and latest used first, names A to Z,
    /// soonest expiry first.
    pub fn descending_by_default(self) -> bool {
        matches!(self, KeySort::Created | KeySort::LastUsed)
    }
}

/// What a key list asks for: search, filters, sort and page.
#[derive(Debug, Clone)]
pub struct KeyQuery {
    /// Part of the name, or the start of the key ID.
    pub search: String,
    pub status: Option<KeyStatus>,
    pub key_type: Option<KeyType>,
    pub sort: KeySort,
    /// `None`: the sort's own direction (`KeySort::descending_by_default`).
    pub descending: Option<bool>,
    /// From 1.
    pub page: i64,
    pub per_page: i64,
}

/// One page of keys and the number of keys the query matches.
#[derive(Debug, Clone)]
pub struct KeyPage {
    pub items: Vec<KeyDetails>,
    pub total: i64,
}

/// Keys with their assignments and permissions: two statements whatever their number (the
/// assignments of all of them, then the role and group mappings), none for no keys.
async fn details_of_rows(
    conn: &mut AnyConnection,
    rows: Vec<KeyRow>,
    ring: &Keyring<'_>,
) -> Result<Vec<KeyDetails>, AppError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let found = repo::with_assignments(conn, rows).await?;
    let map = repo::load_access_map(conn).await?;
    let now = ring.clock.unix();
    Ok(found
        .into_iter()
        .map(|f| details_of(map.resolve(f), now, ring.tenant_id))
        .collect())
}

/// A page of keys in a scope with their assignments and permissions, in four statements
/// whatever the page size: the page, its count, the assignments of every key on it, and the
/// role and group mappings.
pub async fn list_details(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    query: KeyQuery,
    ring: &Keyring<'_>,
) -> Result<KeyPage, AppError> {
    let per_page = query.per_page.max(1);
    let filter = ListFilter {
        owner: None,
        search: query.search,
        status: query
            .status
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        key_type: query
            .key_type
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        sort: match query.sort {
            KeySort::Created => repo::SortKey::Created,
            KeySort::Name => repo::SortKey::Name,
            KeySort::Expires => repo::SortKey::Expires,
            KeySort::LastUsed => repo::SortKey::LastUsed,
        },
        descending: query
            .descending
            .unwrap_or_else(|| query.sort.descending_by_default()),
        limit: per_page,
        offset: (query.page.max(1) - 1).saturating_mul(per_page),
    };
    let (rows, total) = list(conn, actor, scope, filter, ring.clock.unix()).await?;
    let items = details_of_rows(conn, rows, ring).await?;
    Ok(KeyPage { items, total })
}

/// One key the actor may see in this scope, with its assignments and permissions (what a key
/// check grants it); any other key is "not found".
pub async fn details(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    id: &str,
    ring: &Keyring<'_>,
) -> Result<KeyDetails, AppError> {
    let row = load(conn, actor, scope, id).await?;
    details_of_rows(conn, vec![row], ring)
        .await?
        .pop()
        .ok_or(AppError::Gone(KEY_GONE))
}

/// Runs `work` and counts the statements the key reads send inside it, for tests that hold a
/// read to a fixed number of queries.
pub async fn count_round_trips<T>(work: impl std::future::Future<Output = T>) -> (T, u32) {
    repo::count_round_trips(work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_428_000; // 2026-11-23 10:00 UTC

    #[test]
    fn validity_choices_resolve_against_now() {
        assert_eq!(
            ExpiryChoice::from_form("90", "")
                .unwrap()
                .resolve(NOW)
                .unwrap(),
            Some(NOW + 90 * 86_400)
        );
        assert_eq!(
            ExpiryChoice::from_form("never", "")
                .unwrap()
                .resolve(NOW)
                .unwrap(),
            None
        );
        assert!(ExpiryChoice::from_form("45", "").is_err());
        assert!(ExpiryChoice::from_form("", "").is_err());
    }

    #[test]
    fn custom_dates_last_to_the_end_of_the_day_and_must_be_in_the_future() {
        let c = ExpiryChoice::from_form("custom", "2026-12-31").unwrap();
        assert_eq!(c.resolve(NOW).unwrap(), Some(1_798_761_599));
        assert_eq!(
            ExpiryChoice::from_form("custom", "2026-11-23")
                .unwrap()
                .resolve(NOW)
                .unwrap(),
            Some(NOW + 14 * 3600 - 1)
        );
        for (raw, message) in [
            ("2026-11-22", "future"),
            ("2026-02-30", "not a date"),
            ("tomorrow", "not a date"),
            ("", "Enter the date"),
            ("2100-01-01", "before 2100"),
        ] {
            let err = ExpiryChoice::from_form("custom", raw)
                .unwrap()
                .resolve(NOW)
                .unwrap_err();
            assert!(err.contains(message), "{raw}: {err}");
        }
    }
}
