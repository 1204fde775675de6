//! Creating a key: a tenant key, or one of a person's two personal keys (the place taken in
//! the same transaction, so concurrent requests cannot pass the limit).

use sqlx::AnyConnection;

use super::assignments::{AssignmentChange, check_assignments};
use super::expiry::expiry_phrase;
use super::{
    ExpiryChoice, Keyring, OneTimeSecret, PERSONAL_KEY_LIMIT, Scope, entry, require,
    require_current_secret,
};
use crate::domain::rate_limit::RateLimitError;
use crate::domain::{Actor, KeyId, KeyName, KeyType, Permission, RateLimit, Secret};
use crate::error::AppError;
use crate::service::audit;
use crate::service::once::{FormOnce, KEY_ALREADY_CREATED};
use crate::service::repo::keys::{self as repo, NewKeyRow};
use crate::service::webhooks::{self, EventType, KeyPayload};
use crate::service::{FieldErrors, FormError};

/// A new key as submitted.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub key_type: String,
    /// The chosen expiry, or why the choice could not be read.
    pub expiry: Result<ExpiryChoice, String>,
    pub group_ids: Vec<String>,
    pub role_ids: Vec<String>,
    /// Its rate limit (`None`: no limit), or why the one asked for could not be read.
    pub rate_limit: Result<Option<RateLimit>, RateLimitError>,
    /// The form's single-use token: a second post of the same form creates nothing.
    pub once: FormOnce,
}

/// A new key's parts, each checked.
struct Checked {
    name: KeyName,
    key_type: KeyType,
    expires_at: Option<i64>,
    group_ids: Vec<String>,
    role_ids: Vec<String>,
    rate_limit: Option<RateLimit>,
    once: FormOnce,
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
    let mut tx = crate::db::begin_write(pool).await?;
    let checked = validate(&mut tx, ring, actor, scope, input, now).await?;
    let owner = take_place(&mut tx, actor, scope).await?;
    let created = insert(&mut tx, ring, actor, owner, checked, now).await?;
    tx.commit().await?;
    ring.committed();
    Ok(created)
}

/// Checks every part of a new key, with a message for each part that is wrong.
async fn validate(
    conn: &mut AnyConnection,
    ring: &Keyring<'_>,
    actor: &Actor,
    scope: Scope,
    input: NewKey,
    now: i64,
) -> Result<Checked, FormError> {
    let mut errors = FieldErrors::default();
    let name = KeyName::parse(&input.name)
        .map_err(|m| errors.add("name", m))
        .ok();
    if name.as_ref().is_some_and(|n| n.is_system(ring.tenant_id)) {
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
    let policy = crate::service::key_policy::load(conn).await?;
    let expires_at = input
        .expiry
        .map(|c| match (c, key_type) {
            // A request that names no expiry gets what the policy offers first for its type.
            (ExpiryChoice::PolicyDefault, Some(t)) => {
                ExpiryChoice::Days(policy.first_choice(&policy.offered_days(&[t])))
            }
            (c, _) => c,
        })
        .and_then(|c| match (&c, key_type) {
            (ExpiryChoice::Days(d), Some(t)) if !policy.accepts_days(t, *d) => {
                Err("Choose how long the key is valid.".to_string())
            }
            _ => Ok(c),
        })
        .and_then(|c| c.resolve(now))
        .and_then(|at| match key_type {
            Some(t) => policy.check_expiry(t, at, now).map(|()| at),
            None => Ok(at),
        })
        .map_err(|m| errors.add("validity", m))
        .ok();
    if scope == Scope::Personal && (!input.group_ids.is_empty() || !input.role_ids.is_empty()) {
        errors.add(
            "groups",
            "Personal keys act with your own permissions; they take no groups or roles.",
        );
    }
    let change = AssignmentChange {
        old_groups: &[],
        old_roles: &[],
        group_ids: &input.group_ids,
        role_ids: &input.role_ids,
        key_id: None,
    };
    let (group_ids, role_ids) = check_assignments(conn, actor, change, &mut errors).await?;
    let rate_limit = input
        .rate_limit
        .map_err(|e| errors.add(e.field, e.message))
        .unwrap_or_default();
    match (name, key_type, expires_at, errors.is_empty()) {
        (Some(name), Some(key_type), Some(expires_at), true) => Ok(Checked {
            name,
            key_type,
            expires_at,
            group_ids,
            role_ids,
            rate_limit,
            once: input.once,
        }),
        _ => Err(FormError::Invalid(errors)),
    }
}

/// The owner of the new key: the actor for a personal key, once one of their places is taken;
/// nobody for a tenant key.
async fn take_place<'a>(
    conn: &mut AnyConnection,
    actor: &'a Actor,
    scope: Scope,
) -> Result<Option<&'a str>, FormError> {
    match scope {
        Scope::Personal => {
            if !repo::take_personal_slot(conn, &actor.user_id, PERSONAL_KEY_LIMIT).await? {
                return Err(FormError::Other(AppError::Conflict(format!(
                    "You already have {PERSONAL_KEY_LIMIT} personal access keys, the most a user can hold. \
                     Delete one to create another."
                ))));
            }
            Ok(Some(actor.user_id.as_str()))
        }
        Scope::Tenant => Ok(None),
        Scope::OwnKey => Err(FormError::Other(AppError::Forbidden)),
    }
}

/// Writes the key with the hash of a new secret, its assignments, its webhook event and its
/// audit entry; returns the secret for its one showing.
async fn insert(
    conn: &mut AnyConnection,
    ring: &Keyring<'_>,
    actor: &Actor,
    owner: Option<&str>,
    key: Checked,
    now: i64,
) -> Result<OneTimeSecret, FormError> {
    let id = KeyId::generate();
    let secret = Secret::generate();
    let (name, key_type, expires_at) = (key.name.as_str(), key.key_type.as_str(), key.expires_at);
    let row = NewKeyRow {
        id: id.as_str(),
        name,
        key_type,
        owner_user_id: owner,
        secret_hash: &ring.hasher.hash(&secret),
        expires_at,
        actor_id: Some(&actor.user_id),
        actor_label: &actor.label,
        now,
    };
    repo::insert(conn, &row).await?;
    key.once
        .spend(conn, &actor.user_id, id.as_str(), now, KEY_ALREADY_CREATED)
        .await?;
    repo::set_groups(conn, id.as_str(), &key.group_ids).await?;
    repo::set_roles(conn, id.as_str(), &key.role_ids).await?;
    if key.rate_limit.is_some() {
        repo::set_rate_limit(conn, id.as_str(), key.rate_limit).await?;
    }
    let payload = KeyPayload {
        id: id.as_str(),
        name,
        key_type,
        owner_user_id: owner,
        expires_at,
    };
    webhooks::emit(conn, now, EventType::KeyCreated, &payload).await?;
    let namesakes = repo::count_namesakes(conn, id.as_str(), name, owner).await?;
    let mut details = format!(
        "type {}, {}",
        key.key_type.label(),
        expiry_phrase(expires_at)
    );
    if key.rate_limit.is_some() {
        details = format!("{details}, {}", RateLimit::describe(key.rate_limit));
    }
    let entry = entry(actor, "key.created", id.as_str(), name, &details);
    audit::record(conn, now, entry).await?;
    Ok(OneTimeSecret {
        key_id: id.to_string(),
        name: name.to_string(),
        secret,
        tenant_id: ring.tenant_id.to_string(),
        namesakes,
    })
}
