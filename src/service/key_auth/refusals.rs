//! The refusal writer: wrong secrets and other refusals of key checks, written in batches by
//! one task (client counters, the key's failure count and lock, audit entries, lock notices).

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::mpsc;

use super::{BATCH, Pending, Policy, Refusal, Written, client_bucket, client_limit};
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::notices::{self, KeyEvent, KeyFacts};
use crate::service::repo::keys as repo;
use crate::service::repo::replaced_secrets;
use crate::service::throttle;
use crate::service::webhooks::{self, EventType, KeyPayload};

/// The writer task: takes every refusal that has queued up, writes them in one transaction,
/// answers each. Ends when the checker is dropped.
pub(super) async fn write_refusals(
    pool: AnyPool,
    policy: Policy,
    public_url: String,
    mut queue: mpsc::Receiver<Pending>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    changes: std::sync::Arc<super::KeyChanges>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        match write_batch(&pool, policy, &public_url, &batch).await {
            Ok((written, locked)) => {
                // Failure counts and locks changed: key checks read those keys again.
                changes.changed();
                if locked {
                    wake.notify_one();
                }
                for (pending, outcome) in batch.drain(..).zip(written) {
                    let _ = pending.done.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "recording refused key checks failed");
                let message = e.to_string();
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Writes a batch with a handful of statements whatever its size: one counter update per
/// client address, one failure count per key, one insert for every audit entry.
async fn write_batch(
    pool: &AnyPool,
    policy: Policy,
    public_url: &str,
    batch: &[Pending],
) -> Result<(Vec<Written>, bool), sqlx::Error> {
    let mut tx = crate::db::begin_write(pool).await?;
    let mut written = vec![Written::Refused; batch.len()];
    // The client's counter first: over its limit, the key's own counter does not move.
    count_clients(&mut tx, policy, batch, &mut written).await?;
    let mut reasons: Vec<String> = batch.iter().map(|p| p.refusal.reason().into()).collect();
    let told = tripwire(&mut tx, public_url, batch, &written, &mut reasons).await?;
    let locked =
        count_wrong_secrets(&mut tx, policy, public_url, batch, &written, &mut reasons).await?;
    let locked = locked || told;
    audit_refusals(&mut tx, batch, &written, &reasons).await?;
    tx.commit().await?;
    Ok((written, locked))
}

/// Counts the batch's failures against their client addresses; those over the limit are
/// throttled.
async fn count_clients(
    conn: &mut AnyConnection,
    policy: Policy,
    batch: &[Pending],
    written: &mut [Written],
) -> Result<(), sqlx::Error> {
    let Some(limit) = client_limit(policy.client_failure_limit) else {
        return Ok(());
    };
    let clients = group_by(batch, |p| p.limit_client.then_some(p.client_ip.as_str()));
    for (ip, members) in clients {
        let bucket = client_bucket(ip);
        let now = batch[members[0]].now;
        let verdicts =
            throttle::reserve_many(conn, &bucket, limit, now, members.len() as i64).await?;
        for (&i, verdict) in members.iter().zip(verdicts) {
            if let Some(retry_after) = verdict {
                written[i] = Written::Throttled { retry_after };
            }
        }
    }
    Ok(())
}

/// Counts wrong secrets towards their key's lockout, in order of arrival, noting the count in
/// each reason; announces a lock. Whether any key locked.
async fn count_wrong_secrets(
    conn: &mut AnyConnection,
    policy: Policy,
    public_url: &str,
    batch: &[Pending],
    written: &[Written],
    reasons: &mut [String],
) -> Result<bool, sqlx::Error> {
    let mut locked = false;
    let wrong = group_by(batch, |p| {
        (p.refusal == Refusal::WrongSecret).then_some(p.key_id.as_str())
    });
    for (key_id, members) in wrong {
        let members: Vec<usize> = members
            .into_iter()
            .filter(|&i| matches!(written[i], Written::Refused))
            .collect();
        let n = members.len() as i64;
        if n == 0 {
            continue;
        }
        let threshold = i64::from(policy.lockout_threshold);
        let Some(failure) = repo::record_failures(conn, key_id, n, threshold).await? else {
            continue;
        };
        let before = failure.count - n;
        for (k, &i) in members.iter().enumerate() {
            reasons[i] = format!("{} ({} in a row)", reasons[i], before + k as i64 + 1);
        }
        if failure.now_locked {
            // The failure that reached the threshold is the one that locked the key.
            let at = threshold.max(before + 1);
            let first = &batch[members[(at - before - 1) as usize]];
            announce_lock(conn, public_url, key_id, at, first.now, &first.client_ip).await?;
            locked = true;
        }
    }
    Ok(locked)
}

/// The settings row that says what a replaced secret presented again does: `lock` locks the
/// key; anything else (the default, `record`) only records and tells.
pub const REPLACED_SECRET_POLICY: &str = crate::service::key_policy::REPLACED_SECRET;

/// People are told about one replaced secret at most once an hour: a program that keeps
/// presenting it does not flood their inbox (each presentation is still audited and counted).
const TRIPWIRE_QUIET_SECS: i64 = 3600;

/// The replaced-secret tripwire (SPEC §9): of the wrong secrets, those that are one of their
/// key's replaced secrets are noted in the reason, counted on the replaced secret, audited as
/// `key.replaced_secret_used`, told to the key's people with a webhook event, and lock the key
/// when the policy says so. The caller's answer does not change. Whether anything was queued.
async fn tripwire(
    conn: &mut AnyConnection,
    public_url: &str,
    batch: &[Pending],
    written: &[Written],
    reasons: &mut [String],
) -> Result<bool, sqlx::Error> {
    let mut queued = false;
    let mut lock_policy: Option<bool> = None;
    for (i, p) in batch.iter().enumerate() {
        let (Some(hash), Written::Refused) = (p.presented_hash.as_deref(), written[i]) else {
            continue;
        };
        let Some(hit) =
            replaced_secrets::presented(conn, &p.key_id, hash, p.now, TRIPWIRE_QUIET_SECS).await?
        else {
            continue;
        };
        reasons[i] = "replaced secret presented".into();
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
            queued = true;
        }
    }
    Ok(queued)
}

/// One audit entry per refusal that was not throttled, in one statement.
async fn audit_refusals(
    conn: &mut AnyConnection,
    batch: &[Pending],
    written: &[Written],
    reasons: &[String],
) -> Result<(), sqlx::Error> {
    let entries: Vec<(i64, NewEntry<'_>)> = batch
        .iter()
        .zip(written)
        .zip(reasons)
        .filter(|((_, w), _)| matches!(w, Written::Refused))
        .map(|((p, _), reason)| {
            (
                p.now,
                NewEntry {
                    actor_id: None,
                    actor_label: &p.client_ip,
                    action: "key.auth_refused",
                    target_type: "access_key",
                    target_id: &p.key_id,
                    target_label: "",
                    client_ip: &p.client_ip,
                    outcome: FAILURE,
                    details: reason,
                },
            )
        })
        .collect();
    crate::service::repo::audit::insert_many(conn, &entries).await
}

/// The batch's positions grouped by a key, groups in order of first appearance.
fn group_by<'a>(
    batch: &'a [Pending],
    key: impl Fn(&'a Pending) -> Option<&'a str>,
) -> Vec<(&'a str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, p) in batch.iter().enumerate() {
        let Some(k) = key(p) else { continue };
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    groups
}

/// Audit entry, emails and bell notices when a key locks: the people responsible for it and
/// its owner are told.
async fn announce_lock(
    conn: &mut AnyConnection,
    public_url: &str,
    key_id: &str,
    count: i64,
    now: i64,
    client_ip: &str,
) -> Result<(), sqlx::Error> {
    let Some(key) = repo::find(conn, key_id).await? else {
        return Ok(());
    };
    let details = format!("locked after {count} wrong secrets in a row");
    audit::record(
        conn,
        now,
        NewEntry {
            actor_id: None,
            actor_label: "keyward",
            action: "key.locked",
            target_type: "access_key",
            target_id: key_id,
            target_label: &key.name,
            client_ip,
            outcome: SUCCESS,
            details: &details,
        },
    )
    .await?;
    let facts = KeyFacts {
        id: &key.id,
        name: &key.name,
        key_type: &key.key_type,
        owner_user_id: key.owner_user_id.as_deref(),
        created_by: key.created_by.as_deref(),
        modified_by: key.modified_by.as_deref(),
        expires_at: key.expires_at,
    };
    notices::tell(conn, now, public_url, &facts, KeyEvent::Locked { count }).await?;
    Ok(())
}
