//! Changing a key's details: name, description, expiry, allowed networks, rate limit and
//! (tenant keys) assignments. Each part is checked first (`validate`), then whether this actor may make the
//! change at all (`decide`), then what changed is written with its audit entries
//! (`Change::apply`).

use sqlx::AnyConnection;

use super::assignments::{AssignmentChange, check_assignments, describe, notify_assignment_change};
use super::expiry::expiry_phrase;
use super::{
    EXPIRED, EXPIRING, ExpiryChoice, Keyring, Scope, entry, load_for_write, personal_key_refusal,
    require_current_secret,
};
use crate::domain::networks::{networks_narrow, parse_networks};
use crate::domain::rate_limit::{PER_SECOND_FIELD, RateLimitError};
use crate::domain::{Actor, KeyName, KeyType, RateLimit};
use crate::service::audit;
use crate::service::grants::Decider;
use crate::service::repo::keys::{self as repo, KeyRow};
use crate::service::{FieldErrors, FormError};

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
    /// A new rate limit (`Ok(None)` removes it), or why the one asked for could not be read.
    pub rate_limit: Option<Result<Option<RateLimit>, RateLimitError>>,
}

/// The key's group and role assignments before the change.
struct Assigned {
    groups: Vec<String>,
    roles: Vec<String>,
}

/// The key as the changes would leave it, every part checked.
struct Wanted {
    name: KeyName,
    description: String,
    expires_at: Option<i64>,
    networks: String,
    rate_limit: Option<RateLimit>,
    group_ids: Vec<String>,
    role_ids: Vec<String>,
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
    let old = Assigned {
        groups: repo::group_ids(&mut tx, id).await?,
        roles: repo::role_ids(&mut tx, id).await?,
    };
    let wanted = validate(&mut tx, ring, actor, &key, &old, changes, now).await?;
    decide(actor, &key, &wanted)?;
    let change = Change {
        actor,
        key: &key,
        old: &old,
        wanted: &wanted,
        now,
    };
    change.apply(&mut tx).await?;
    tx.commit().await?;
    ring.committed();
    Ok(())
}

/// Checks every part of the changes against the key as it is, with a message for each part
/// that is wrong.
async fn validate(
    conn: &mut AnyConnection,
    ring: &Keyring<'_>,
    actor: &Actor,
    key: &KeyRow,
    old: &Assigned,
    changes: KeyChanges,
    now: i64,
) -> Result<Wanted, FormError> {
    let mut errors = FieldErrors::default();
    let name = checked_name(changes.name.as_deref(), key, ring.tenant_id, &mut errors);
    let description = checked_description(changes.description.as_deref(), key, &mut errors);
    let expires_at = match &changes.expiry {
        None => Ok(key.expires_at),
        Some(choice) => {
            let policy = crate::service::key_policy::load(conn).await?;
            let key_type = KeyType::parse(&key.key_type).unwrap_or(KeyType::Access);
            choice
                .clone()
                .and_then(|c| match c {
                    ExpiryChoice::Days(d) if !policy.accepts_days(key_type, d) => {
                        Err("Choose how long the key is valid.".to_string())
                    }
                    c => Ok(c),
                })
                .and_then(|c| c.resolve(now))
                .and_then(|at| match at {
                    // Keeping the expiry it has, or shortening it, is always allowed: a key
                    // out of policy must be able to come closer to it.
                    Some(t) if key.expires_at.is_some_and(|old| t <= old) => Ok(at),
                    _ => policy.check_expiry(key_type, at, now).map(|()| at),
                })
        }
    }
    .map_err(|m| errors.add("validity", m))
    .ok();
    let (group_ids, role_ids) =
        checked_assignments(conn, actor, key, old, &changes, &mut errors).await?;
    let networks = checked_networks(changes.allowed_networks.as_deref(), actor, key, &mut errors);
    let rate_limit = checked_rate_limit(changes.rate_limit, actor, key, &mut errors);
    match (name, expires_at, networks, errors.is_empty()) {
        (Some(name), Some(expires_at), Some(networks), true) => Ok(Wanted {
            name,
            description,
            expires_at,
            networks,
            rate_limit,
            group_ids,
            role_ids,
        }),
        _ => Err(FormError::Invalid(errors)),
    }
}

/// The new name: a valid one, and neither a system key's renamed nor a system name taken.
fn checked_name(
    asked: Option<&str>,
    key: &KeyRow,
    tenant_id: &str,
    errors: &mut FieldErrors,
) -> Option<KeyName> {
    let name = KeyName::parse(asked.unwrap_or(&key.name))
        .map_err(|m| errors.add("name", m))
        .ok()?;
    let system = crate::domain::is_system_key_name(&key.name, tenant_id);
    if name.as_str() != key.name && (system || name.is_system(tenant_id)) {
        errors.add("name", "System key names cannot be changed or taken.");
    }
    Some(name)
}

/// The new description: at most 500 characters, without control characters.
fn checked_description(asked: Option<&str>, key: &KeyRow, errors: &mut FieldErrors) -> String {
    let description = asked
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|| key.description.clone());
    if description.chars().count() > 500 || description.chars().any(char::is_control) {
        errors.add(
            "description",
            "A description can be at most 500 characters, without control characters.",
        );
    }
    description
}

/// The new assignments: none for a personal key (which refuses any), else the chosen ones,
/// checked (`check_assignments`).
async fn checked_assignments(
    conn: &mut AnyConnection,
    actor: &Actor,
    key: &KeyRow,
    old: &Assigned,
    changes: &KeyChanges,
    errors: &mut FieldErrors,
) -> Result<(Vec<String>, Vec<String>), FormError> {
    if key.owner_user_id.is_some() {
        let wants_assignments = changes.group_ids.as_ref().is_some_and(|g| !g.is_empty())
            || changes.role_ids.as_ref().is_some_and(|r| !r.is_empty());
        if wants_assignments {
            errors.add(
                "groups",
                "Personal keys act with their owner's permissions; they take no groups or roles.",
            );
        }
        return Ok((Vec::new(), Vec::new()));
    }
    let change = AssignmentChange {
        old_groups: &old.groups,
        old_roles: &old.roles,
        group_ids: changes.group_ids.as_deref().unwrap_or(&old.groups),
        role_ids: changes.role_ids.as_deref().unwrap_or(&old.roles),
        key_id: Some(&key.id),
    };
    Ok(check_assignments(conn, actor, change, errors).await?)
}

/// The new allowed networks, normalised; a key changing itself may only narrow them.
fn checked_networks(
    asked: Option<&str>,
    actor: &Actor,
    key: &KeyRow,
    errors: &mut FieldErrors,
) -> Option<String> {
    let networks = match asked {
        None => Ok(key.allowed_networks.clone()),
        Some(raw) => parse_networks(raw),
    }
    .map_err(|m| errors.add("allowed_networks", m))
    .ok()?;
    if actor.acting_key.as_deref() == Some(key.id.as_str())
        && !networks_narrow(&key.allowed_networks, &networks)
    {
        errors.add(
            "allowed_networks",
            "A key cannot widen its own allowed networks; it may only narrow them.",
        );
    }
    Some(networks)
}

/// The key's limit as stored.
fn rate_limit_of(key: &KeyRow) -> Option<RateLimit> {
    RateLimit::from_columns(key.rate_per_second, key.rate_burst)
}

/// The new rate limit; a key changing itself may only lower it (or take one on).
fn checked_rate_limit(
    asked: Option<Result<Option<RateLimit>, RateLimitError>>,
    actor: &Actor,
    key: &KeyRow,
    errors: &mut FieldErrors,
) -> Option<RateLimit> {
    let current = rate_limit_of(key);
    let wanted = match asked {
        None => return current,
        Some(Ok(wanted)) => wanted,
        Some(Err(e)) => {
            errors.add(e.field, e.message);
            return current;
        }
    };
    if actor.acting_key.as_deref() == Some(key.id.as_str()) && !RateLimit::narrows(current, wanted)
    {
        errors.add(
            PER_SECOND_FIELD,
            "A key cannot raise or remove its own rate limit; it may only lower it.",
        );
    }
    wanted
}

/// Whether the actor may make these changes: the administration may only shorten a personal
/// key's life and tighten its rate limit (SPEC §11); everything else is its owner's.
fn decide(actor: &Actor, key: &KeyRow, wanted: &Wanted) -> Result<(), FormError> {
    if key.owner_user_id.is_none() || Decider::of(actor, key) == Decider::Owner {
        return Ok(());
    }
    let shortens = match (wanted.expires_at, key.expires_at) {
        (new, old) if new == old => true,
        (Some(new), Some(old)) => new < old,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if wanted.name.as_str() != key.name
        || wanted.description != key.description
        || wanted.networks != key.allowed_networks
        || !RateLimit::narrows(rate_limit_of(key), wanted.rate_limit)
        || !shortens
    {
        return Err(FormError::Other(personal_key_refusal(
            "rename, extend or otherwise change",
        )));
    }
    Ok(())
}

/// A change about to be written: who makes it, the key as it was and as wanted, and when.
struct Change<'a> {
    actor: &'a Actor,
    key: &'a KeyRow,
    old: &'a Assigned,
    wanted: &'a Wanted,
    now: i64,
}

impl Change<'_> {
    /// Writes each part that changed with its audit entry, and who changed the key when
    /// anything did.
    async fn apply(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let (key, old, wanted) = (self.key, self.old, self.wanted);
        let mut changed = self.write_text(conn).await?;
        if wanted.expires_at != key.expires_at {
            self.write_expiry(conn).await?;
            changed = true;
        }
        if wanted.rate_limit != rate_limit_of(key) {
            self.write_rate_limit(conn).await?;
            changed = true;
        }
        let assignments_changed = old.groups != wanted.group_ids || old.roles != wanted.role_ids;
        if key.owner_user_id.is_none() && assignments_changed {
            self.write_assignments(conn).await?;
            changed = true;
        }
        if changed {
            let actor = self.actor;
            repo::touch(conn, &key.id, self.now, Some(&actor.user_id), &actor.label).await?;
        }
        Ok(())
    }

    /// Records one audit entry about the key, under its new name.
    async fn audit(
        &self,
        conn: &mut AnyConnection,
        action: &str,
        details: &str,
    ) -> Result<(), sqlx::Error> {
        let (id, name) = (self.key.id.as_str(), self.wanted.name.as_str());
        audit::record(conn, self.now, entry(self.actor, action, id, name, details)).await
    }

    /// Writes new allowed networks, description and name; whether any of them changed.
    async fn write_text(&self, conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
        let (key, wanted) = (self.key, self.wanted);
        let id = key.id.as_str();
        let name = wanted.name.as_str();
        if wanted.networks != key.allowed_networks {
            repo::set_allowed_networks(conn, id, &wanted.networks).await?;
            let details = if wanted.networks.is_empty() {
                "anywhere"
            } else {
                &wanted.networks
            };
            self.audit(conn, "key.networks_changed", details).await?;
        }
        if wanted.description != key.description {
            repo::set_description(conn, id, &wanted.description).await?;
            self.audit(conn, "key.description_changed", "").await?;
        }
        if name != key.name {
            repo::set_name(conn, id, name).await?;
            let details = format!("from “{}”", key.name);
            self.audit(conn, "key.renamed", &details).await?;
        }
        Ok(wanted.networks != key.allowed_networks
            || wanted.description != key.description
            || name != key.name)
    }

    /// Writes a new expiry. A new expiry is noticed afresh: notices about the old one are void.
    async fn write_expiry(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let id = self.key.id.as_str();
        repo::set_expiry(conn, id, self.wanted.expires_at, self.now).await?;
        crate::service::repo::outbox::forget_notices(conn, id).await?;
        crate::service::repo::outbox::cancel_for_key(conn, id, &[EXPIRING, EXPIRED]).await?;
        let details = expiry_phrase(self.wanted.expires_at);
        self.audit(conn, "key.expiry_changed", &details).await
    }

    /// Writes a new rate limit (or its removal). The key's bucket carries on: a new limit
    /// applies to the tokens it holds, so changing a limit never hands out a fresh burst.
    async fn write_rate_limit(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let limit = self.wanted.rate_limit;
        repo::set_rate_limit(conn, &self.key.id, limit).await?;
        let details = RateLimit::describe(limit);
        self.audit(conn, "key.rate_limit_changed", &details).await
    }

    /// Writes new assignments and tells the people they affect.
    async fn write_assignments(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let (key, wanted) = (self.key, self.wanted);
        repo::set_groups(conn, &key.id, &wanted.group_ids).await?;
        repo::set_roles(conn, &key.id, &wanted.role_ids).await?;
        let details = format!(
            "groups: {}; roles: {}",
            describe(&wanted.group_ids),
            describe(&wanted.role_ids)
        );
        self.audit(conn, "key.assignments_changed", &details)
            .await?;
        let (old, new) = (&self.old.groups, &wanted.group_ids);
        notify_assignment_change(conn, key, wanted.name.as_str(), old, new, self.now).await
    }
}
