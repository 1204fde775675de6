//! A key's switches: activate, deactivate, lock by hand, unlock. The owner of a personal key
//! and the administration each reverse only their own decisions (SPEC §11).

use super::{EXPIRED, EXPIRING, Keyring, Scope, entry, load_for_write, require_current_secret};
use crate::domain::Actor;
use crate::error::AppError;
use crate::service::audit;
use crate::service::grants::Decider;
use crate::service::repo::keys::{self as repo, KeyRow};

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
) -> Result<String, AppError> {
    let now = ring.clock.unix();
    require_current_secret(pool, now, actor, "changing the key's state", id).await?;
    let mut tx = crate::db::begin_write(pool).await?;
    let key = load_for_write(&mut tx, actor, scope, id).await?;
    let decider = Decider::of(actor, &key);
    refuse_reversal(&key, decider, switch)?;
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
                crate::service::repo::outbox::cancel_for_key(&mut tx, id, &[EXPIRING, EXPIRED])
                    .await?;
            }
            Switch::Lock => repo::set_locked(&mut tx, id, decider.as_str()).await?,
            Switch::Unlock => repo::unlock(&mut tx, id).await?,
        }
        repo::touch(&mut tx, id, now, Some(&actor.user_id), &actor.label).await?;
        audit::record(&mut tx, now, entry(actor, action, id, &key.name, details)).await?;
    }
    tx.commit().await?;
    ring.committed();
    Ok(key.name)
}

/// Whoever deactivated or locked a personal key, owner or administration, reverses it; the
/// other is refused, told who can.
fn refuse_reversal(key: &KeyRow, decider: Decider, switch: Switch) -> Result<(), AppError> {
    if key.owner_user_id.is_none() {
        return Ok(());
    }
    let (recorded, verb) = match switch {
        Switch::Activate if key.active == 0 => (key.deactivated_by.as_deref(), "deactivated"),
        Switch::Unlock if key.locked == 1 => (key.locked_by.as_deref(), "locked"),
        _ => return Ok(()),
    };
    if decider.may_reverse(recorded) {
        return Ok(());
    }
    Err(AppError::Denied(match decider {
        Decider::Owner => {
            format!("An administrator {verb} this key; only an administrator can undo that.")
        }
        Decider::Administrator => format!(
            "Its owner {verb} this key (or it locked after wrong secrets); only the owner can \
             undo that."
        ),
    }))
}
