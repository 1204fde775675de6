//! The replaced-secret tripwire (SPEC §9), run by the refusal writer in each batch's
//! transaction: wrong secrets that are one of their key's replaced secrets.

use sqlx::AnyConnection;

use super::{Pending, Written, group_by};
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::notices::{self, KeyEvent, KeyFacts};
use crate::service::repo::keys as repo;
use crate::service::repo::replaced_secrets;
use crate::service::webhooks::{self, EventType, KeyPayload};

/// The settings row that says what a replaced secret presented again does: `lock` locks the
/// key; anything else (the default, `record`) only records and tells.
const REPLACED_SECRET_POLICY: &str = crate::service::key_policy::REPLACED_SECRET;

/// People are told about one replaced secret at most once an hour: a program that keeps
/// presenting it does not flood their inbox (each presentation is still audited and counted).
const TRIPWIRE_QUIET_SECS: i64 = 3600;

/// The replaced-secret tripwire (SPEC §9): of the wrong secrets, those that are one of their
/// key's replaced secrets are noted in the reason, counted on the replaced secret, audited as
/// `key.replaced_secret_used`, told to the key's people with a webhook event, and lock the key
/// when the policy says so. The caller's answer does not change. One read per key of the
/// batch finds its replaced secrets; only those presented are written.
pub(super) async fn tripwire(
    conn: &mut AnyConnection,
    public_url: &str,
    batch: &[Pending],
    written: &[Written],
) -> Result<Tripped, sqlx::Error> {
    let mut tripped = Tripped::default();
    let mut lock_policy: Option<bool> = None;
    let keys = group_by(batch, |p| {
        (p.presented_hash.is_some()).then_some(p.key_id.as_str())
    });
    let mut presented: Vec<(usize, &str)> = Vec::new();
    for (key_id, members) in keys {
        let members: Vec<usize> = members
            .into_iter()
            .filter(|&i| matches!(written[i], Written::Refused))
            .collect();
        if members.is_empty() {
            continue;
        }
        let replaced = replaced_secrets::hashes(conn, key_id).await?;
        if replaced.is_empty() {
            continue;
        }
        for i in members {
            if let Some(hash) = batch[i].presented_hash.as_deref()
                && replaced.iter().any(|r| r == hash)
            {
                presented.push((i, hash));
            }
        }
    }
    // In order of arrival, as each was presented.
    presented.sort_by_key(|(i, _)| *i);
    for (i, hash) in presented {
        let p = &batch[i];
        let Some(hit) =
            replaced_secrets::presented(conn, &p.key_id, hash, p.now, TRIPWIRE_QUIET_SECS).await?
        else {
            continue;
        };
        tripped.hits.push(i);
        let lock = match lock_policy {
            Some(lock) => lock,
            None => {
                let value = crate::auth::store::settings::get(conn, REPLACED_SECRET_POLICY).await?;
                *lock_policy.insert(value.as_deref() == Some("lock"))
            }
        };
        let Some(key) = repo::find(conn, &p.key_id).await? else {
            continue;
        };
        let locked = lock && key.locked == 0 && repo::lock_if_unlocked(conn, &key.id).await?;
        tripped.locked |= locked;
        let mut details = format!(
            "a secret replaced at {} was presented ({} times since)",
            crate::clock::format_utc(hit.replaced_at),
            hit.count
        );
        if locked {
            details.push_str("; the key was locked, as the key policy asks");
        }
        audit::record(
            conn,
            p.now,
            NewEntry {
                actor_id: None,
                actor_label: &p.client_ip,
                action: "key.replaced_secret_used",
                target_type: "access_key",
                target_id: &key.id,
                target_label: &key.name,
                client_ip: &p.client_ip,
                outcome: FAILURE,
                details: &details,
            },
        )
        .await?;
        if locked {
            let entry = NewEntry {
                actor_id: None,
                actor_label: "keyward",
                action: "key.locked",
                target_type: "access_key",
                target_id: &key.id,
                target_label: &key.name,
                client_ip: &p.client_ip,
                outcome: SUCCESS,
                details: "locked: a replaced secret was presented",
            };
            audit::record(conn, p.now, entry).await?;
            let payload = KeyPayload {
                id: &key.id,
                name: &key.name,
                key_type: &key.key_type,
                owner_user_id: key.owner_user_id.as_deref(),
                expires_at: key.expires_at,
            };
            webhooks::emit(conn, p.now, EventType::KeyLocked, &payload).await?;
        }
        if hit.tell || locked {
            let facts = KeyFacts {
                id: &key.id,
                name: &key.name,
                key_type: &key.key_type,
                owner_user_id: key.owner_user_id.as_deref(),
                created_by: key.created_by.as_deref(),
                modified_by: key.modified_by.as_deref(),
                expires_at: key.expires_at,
            };
            let event = KeyEvent::ReplacedSecretUsed {
                replaced_at: hit.replaced_at,
                locked,
            };
            notices::tell(conn, p.now, public_url, &facts, event).await?;
            tripped.queued = true;
        }
    }
    Ok(tripped)
}

/// What the tripwire did.
#[derive(Debug, Default)]
pub(super) struct Tripped {
    /// The batch's positions of replaced secrets presented again.
    pub hits: Vec<usize>,
    /// Whether it queued emails or webhook events.
    pub queued: bool,
    /// Whether it locked a key.
    pub locked: bool,
}
