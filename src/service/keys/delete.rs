//! Deleting a key for good. System keys refuse; a personal key gives its owner's place back.

use super::{
    Confirm, EXPIRED, EXPIRING, EXPOSED, KEY_GONE, Keyring, LOCKED, REPLACED_SECRET_USED, Scope,
    entry, load_for_write, payload_of, refuse_system_key, require_current_secret,
};
use crate::domain::Actor;
use crate::error::AppError;
use crate::service::audit;
use crate::service::repo::keys as repo;
use crate::service::webhooks::{self, EventType};

/// Deletes a key for good; returns its name. System keys refuse. A personal key gives its
/// owner's place back.
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
    refuse_system_key(&key.name, ring.tenant_id, Confirm::Delete.system_key())?;
    if !repo::delete(&mut tx, id).await? {
        return Err(AppError::Gone(KEY_GONE));
    }
    if let Some(owner) = &key.owner_user_id {
        repo::release_personal_slot(&mut tx, owner).await?;
    }
    crate::service::repo::outbox::cancel_for_key(
        &mut tx,
        id,
        &[EXPIRING, EXPIRED, LOCKED, REPLACED_SECRET_USED, EXPOSED],
    )
    .await?;
    crate::service::repo::outbox::forget_notices(&mut tx, id).await?;
    audit::record(&mut tx, now, entry(actor, "key.deleted", id, &key.name, "")).await?;
    webhooks::emit(&mut tx, now, EventType::KeyDeleted, &payload_of(&key)).await?;
    tx.commit().await?;
    ring.committed();
    Ok(key.name)
}
