//! The tenant's policy: who must have a second factor.

use sqlx::{AnyConnection, AnyPool};

use crate::auth::store::settings;
use crate::clock::Clock;
use crate::domain::{Actor, Permission};
use crate::error::{AppError, AppResult};
use crate::service::accounts::NextStep;
use crate::service::audit;
use crate::service::repo;

/// The settings row that holds the policy.
const SETTING: &str = "second_factor_policy";

/// Who must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// No one (the default): a second factor is each person's choice.
    NoOne,
    /// Holders of any write permission (`keys:write`, `users:write`, …).
    Writers,
    /// Everyone.
    Everyone,
}

impl Policy {
    /// Every choice, in the order the form lists them.
    pub const ALL: [Policy; 3] = [Policy::NoOne, Policy::Writers, Policy::Everyone];

    /// The stored and posted value.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::NoOne => "none",
            Policy::Writers => "writers",
            Policy::Everyone => "everyone",
        }
    }

    /// What the choice means, for the form.
    pub fn label(self) -> &'static str {
        match self {
            Policy::NoOne => "No one",
            Policy::Writers => "Holders of write permissions",
            Policy::Everyone => "Everyone",
        }
    }

    /// The policy of a stored or posted value.
    pub fn parse(raw: &str) -> Option<Policy> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// Whether the policy asks a person holding `permissions` for a second factor.
    pub fn covers(self, permissions: &[String]) -> bool {
        match self {
            Policy::NoOne => false,
            Policy::Writers => permissions.iter().any(|p| p.ends_with(":write")),
            Policy::Everyone => true,
        }
    }
}

/// The stored policy (no one, when none was ever set).
pub(super) async fn read(conn: &mut AnyConnection) -> sqlx::Result<Policy> {
    let stored = settings::get(conn, SETTING).await?;
    Ok(stored
        .as_deref()
        .and_then(Policy::parse)
        .unwrap_or(Policy::NoOne))
}

/// The tenant's policy.
pub async fn policy(pool: &AnyPool) -> AppResult<Policy> {
    let mut conn = pool.acquire().await?;
    Ok(read(&mut conn).await?)
}

/// Sets the policy (needs `config:write`); audited as `settings.second_factor_policy`.
pub async fn set_policy(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    raw: &str,
) -> AppResult<()> {
    actor.require(Permission::ConfigWrite)?;
    let chosen =
        Policy::parse(raw).ok_or_else(|| AppError::invalid("policy", "Choose who needs one."))?;
    let mut tx = crate::db::begin_write(pool).await?;
    write_policy(&mut tx, actor, clock.unix(), chosen).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes the policy in the caller's transaction when it differs from the stored one, audited;
/// whether it changed. The caller has checked `config:write`.
pub async fn write_policy(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: i64,
    chosen: Policy,
) -> sqlx::Result<bool> {
    if read(conn).await? == chosen {
        return Ok(false);
    }
    settings::set(conn, SETTING, chosen.as_str()).await?;
    let action = "settings.second_factor_policy";
    let entry = audit::success(
        actor,
        action,
        "settings",
        SETTING,
        "Second factor",
        chosen.as_str(),
    );
    audit::record(conn, now, entry).await?;
    Ok(true)
}

/// Whether the policy covers the person and they have no second factor yet: only the
/// enrolment pages open for them.
pub(crate) async fn must_enrol(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<bool> {
    let policy = read(conn).await?;
    if policy == Policy::NoOne {
        return Ok(false);
    }
    let permissions = repo::roles::user_permissions(conn, user_id).await?;
    Ok(policy.covers(&permissions) && !super::has_second_factor(conn, user_id).await?)
}

/// What comes after the right password of this person.
pub(crate) async fn next_step(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<NextStep> {
    Ok(if super::has_second_factor(conn, user_id).await? {
        NextStep::SecondFactor
    } else if must_enrol(conn, user_id).await? {
        NextStep::Enrol
    } else {
        NextStep::Done
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_are_holders_of_any_write_permission() {
        let reader = vec!["keys:read".to_string(), "audit:read".to_string()];
        let writer = vec!["keys:read".to_string(), "users:write".to_string()];
        assert!(!Policy::Writers.covers(&reader));
        assert!(Policy::Writers.covers(&writer));
        assert!(Policy::Everyone.covers(&reader));
        assert!(!Policy::NoOne.covers(&writer));
        for p in Policy::ALL {
            assert_eq!(Policy::parse(p.as_str()), Some(p));
        }
    }
}
