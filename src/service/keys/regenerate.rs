//! A new secret for a key. The key ID stays; the old secret stops at once or after a grace
//! period; a new secret ends a lock. System keys and other people's personal keys refuse.

use sqlx::AnyConnection;

use super::{
    Confirm, Keyring, MAX_GRACE_SECS, OneTimeSecret, Scope, entry, load_for_write, payload_of,
    personal_key_refusal, refuse_system_key, require_current_secret,
};
use crate::domain::{Actor, Secret};
use crate::error::AppError;
use crate::service::audit;
use crate::service::grants::{self, Decider};
use crate::service::once::{FormOnce, SECRET_ALREADY_GENERATED};
use crate::service::repo::keys::{self as repo, KeyRow};
use crate::service::repo::replaced_secrets;
use crate::service::webhooks::{self, EventType};

/// Replaces a key's secret. The old one stops at once, or after `grace_secs` (one of
/// [`super::GRACE_PERIODS`]). Regenerating also ends a lock. System keys refuse. `once` is the
/// form's single-use token: a second post of the same form changes nothing.
pub async fn regenerate(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    scope: Scope,
    id: &str,
    grace_secs: i64,
    once: &FormOnce,
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
    let backend = crate::db::Backend::of_pool(pool);
    let decider = may_regenerate(&mut tx, backend, ring, actor, &key).await?;
    refuse_out_of_policy(&mut tx, &key, now).await?;
    let secret = Secret::generate();
    let previous = (grace_secs > 0).then(|| (key.secret_hash.as_str(), now + grace_secs));
    // A new secret ends a lock, except one an administrator set on someone else's key.
    let unlock = key.owner_user_id.is_none() || decider.may_reverse(key.locked_by.as_deref());
    let hash = ring.hasher.hash(&secret);
    once.spend(&mut tx, &actor.user_id, id, now, SECRET_ALREADY_GENERATED)
        .await?;
    repo::replace_secret(&mut tx, id, &hash, previous, now, unlock || key.locked == 0).await?;
    // Remembered (its HMAC) as long as the key exists, for the replaced-secret tripwire.
    replaced_secrets::keep(&mut tx, id, &key.secret_hash, now).await?;
    repo::touch(&mut tx, id, now, Some(&actor.user_id), &actor.label).await?;
    let details = if grace_secs > 0 {
        let until = crate::clock::format_utc(now + grace_secs);
        format!("old secret works until {until}")
    } else {
        "old secret stopped at once".to_string()
    };
    let entry = entry(actor, "key.secret_regenerated", id, &key.name, &details);
    audit::record(&mut tx, now, entry).await?;
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
        namesakes: 0,
    })
}

/// A key the key policy no longer allows (it lasts longer, or never expires) gets no new
/// secret until its expiry is brought into policy: a new secret would give it a new life.
async fn refuse_out_of_policy(
    conn: &mut AnyConnection,
    key: &KeyRow,
    now: i64,
) -> Result<(), AppError> {
    let policy = crate::service::key_policy::load(conn).await?;
    let key_type =
        crate::domain::KeyType::parse(&key.key_type).unwrap_or(crate::domain::KeyType::Access);
    match policy.breach(key_type, key.expires_at, now) {
        Some(reason) => Err(AppError::Conflict(format!(
            "This key is out of policy. {reason} Bring it into policy, or set an earlier expiry \
             in its details, then generate a new secret."
        ))),
        None => Ok(()),
    }
}

/// Whether the actor may obtain a new secret for `key`: not for a system key, not for someone
/// else's personal key, and for a tenant key only when holding everything the key may do (a
/// new secret hands its holder all of it). Returns who is deciding.
async fn may_regenerate(
    conn: &mut AnyConnection,
    backend: crate::db::Backend,
    ring: &Keyring<'_>,
    actor: &Actor,
    key: &KeyRow,
) -> Result<Decider, AppError> {
    refuse_system_key(&key.name, ring.tenant_id, Confirm::Regenerate.system_key())?;
    let decider = Decider::of(actor, key);
    if key.owner_user_id.is_some() && decider == Decider::Administrator {
        return Err(personal_key_refusal("generate a new secret for"));
    }
    if key.owner_user_id.is_none() && actor.acting_key.as_deref() != Some(key.id.as_str()) {
        let held = repo::find_for_auth(conn, backend, &[key.id.as_str()]).await?;
        if let Some(found) = held.first() {
            grants::require_holds_all(actor, &found.permissions)?;
        }
    }
    Ok(decider)
}
