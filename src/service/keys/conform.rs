//! Bringing keys into policy (SPEC §9): for a selection of keys, what would change (shown to
//! the administrator first), then the change, each key through `update` like an expiry set by
//! hand, so its audit entry, notices and refusals are the usual ones. Only the expiry changes:
//! to the latest the policy allows from today.

use super::{Keyring, Scope, load, require};
use crate::domain::{Actor, KeyType, Permission};
use crate::error::AppError;
use crate::service::FormError;
use crate::service::key_policy;
use crate::service::keys::{ExpiryChoice, KeyChanges, update};

/// The most keys one action brings into policy.
pub const MOST_AT_ONCE: usize = 500;

/// One key's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mend {
    pub key_id: String,
    pub name: String,
    pub key_type: KeyType,
    /// Its expiry now (`None`: never).
    pub from: Option<i64>,
    /// The expiry it gets.
    pub to: i64,
    /// Why it is out of policy.
    pub reason: String,
}

/// What bringing a selection into policy would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub mends: Vec<Mend>,
    /// Selected keys already in policy (names).
    pub in_policy: Vec<String>,
    /// Selected keys that no longer exist, or are not the actor's to see.
    pub missing: usize,
}

/// What bringing a selection into policy would do now (needs `keys:write`).
pub async fn plan(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    ids: &[String],
) -> Result<Plan, AppError> {
    require(actor, Scope::Tenant, Permission::KeysWrite)?;
    if ids.len() > MOST_AT_ONCE {
        return Err(AppError::invalid(
            "ids",
            format!("Choose at most {MOST_AT_ONCE} keys at once."),
        ));
    }
    let now = ring.clock.unix();
    let mut conn = pool.acquire().await?;
    let policy = key_policy::load(&mut conn).await?;
    let mut plan = Plan::default();
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let Ok(key) = load(&mut conn, actor, Scope::Tenant, id).await else {
            plan.missing += 1;
            continue;
        };
        let key_type = KeyType::parse(&key.key_type).unwrap_or(KeyType::Access);
        match (
            policy.breach(key_type, key.expires_at, now),
            policy.compliant_expiry(key_type, key.expires_at, now),
        ) {
            (Some(reason), Some(to)) => plan.mends.push(Mend {
                key_id: key.id,
                name: key.name,
                key_type,
                from: key.expires_at,
                to,
                reason,
            }),
            _ => plan.in_policy.push(key.name),
        }
    }
    Ok(plan)
}

/// The outcome of bringing a selection into policy.
#[derive(Debug, Clone, Default)]
pub struct Conformed {
    /// Names of the keys whose expiry changed.
    pub changed: Vec<String>,
    /// Keys that could not be changed, with why.
    pub refused: Vec<(String, String)>,
}

/// Brings the selected keys into policy: each key out of policy now gets the latest expiry the
/// policy allows, as if set by hand on its details (audited as `key.expiry_changed`). Keys
/// are changed one by one; one that cannot be changed (deleted meanwhile, a system key) is
/// reported and does not stop the others.
pub async fn conform(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    ids: &[String],
) -> Result<Conformed, AppError> {
    let plan = plan(pool, ring, actor, ids).await?;
    let mut done = Conformed::default();
    for mend in plan.mends {
        let changes = KeyChanges {
            name: None,
            description: None,
            expiry: Some(Ok(ExpiryChoice::At(mend.to))),
            group_ids: None,
            role_ids: None,
            allowed_networks: None,
            rate_limit: None,
        };
        match update(pool, ring, actor, Scope::Tenant, &mend.key_id, changes).await {
            Ok(()) => done.changed.push(mend.name),
            Err(FormError::Invalid(errors)) => {
                let why = errors
                    .get("validity")
                    .or_else(|| errors.get("name"))
                    .unwrap_or("it could not be changed")
                    .to_string();
                done.refused.push((mend.name, why));
            }
            Err(FormError::Other(AppError::Gone(m))) => done.refused.push((mend.name, m.into())),
            Err(FormError::Other(AppError::Conflict(m) | AppError::Denied(m))) => {
                done.refused.push((mend.name, m))
            }
            Err(FormError::Other(e)) => return Err(e),
        }
    }
    Ok(done)
}
