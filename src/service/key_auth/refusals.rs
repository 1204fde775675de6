//! The refusal writer: wrong secrets and other refusals of key checks, written in batches by
//! one task (client counters, the key's failure count and lock, audit entries, lock notices).

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::mpsc;

use std::sync::Arc;

use tokio::time::Instant;

use super::audit_budget::{self, AuditBudget};
use super::tripwire::tripwire;
use super::{BATCH, Job, Pending, Policy, Refusal, Written, client_bucket, client_limit, group_by};
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::notices::{self, KeyEvent, KeyFacts};
use crate::service::repo::keys as repo;
use crate::service::throttle;

/// What the writer works with.
pub(super) struct Writer {
    pub pool: AnyPool,
    pub policy: Policy,
    pub public_url: String,
    /// Told when a batch queued emails and webhook events, so they go out at once.
    pub wake: Arc<tokio::sync::Notify>,
    /// Moved (and announced to other instances) when a batch locked a key.
    pub changes: Arc<super::KeyChanges>,
    /// The key checks' memory, given the failure counts a batch committed.
    pub cache: Arc<super::cache::KeyCache>,
    /// Told which wrong secrets a batch settled.
    pub uncommitted: Arc<super::uncommitted::Uncommitted>,
    /// Told when a job someone waits for was handed: ends the gathering at once.
    pub urgent: Arc<tokio::sync::Notify>,
}

/// What a committed batch did, beyond each refusal's outcome.
struct Committed {
    written: Vec<Written>,
    /// The failure counts it committed, per key.
    counts: Vec<(String, i64)>,
    /// Whether it locked a key.
    locked: bool,
    /// Whether it queued emails or webhook events.
    queued: bool,
}

/// The writer task: takes every refusal that has queued up, writes them in one transaction,
/// answers those who wait. Ends when the checker is dropped.
///
/// After a commit, the key checks' memory gets the keys' new failure counts (nothing else is
/// forgotten: a moved counter is no news to other instances, which read it within the
/// memory's bound); only a lock is announced as a change of keys. A failed batch is logged,
/// and told to those who wait; callers answered at once cannot be told.
pub(super) async fn write_refusals(writer: Writer, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
    let mut barriers = Vec::new();
    let mut budget = AuditBudget::new(writer.policy.refusal_audit_per_second, Instant::now());
    let mut last_commit = Instant::now();
    loop {
        let received = match budget.deadline() {
            Some(deadline) => tokio::select! {
                n = queue.recv_many(&mut jobs, BATCH) => n,
                () = tokio::time::sleep_until(deadline) => {
                    // The window is over and no refusal came since.
                    budget.turn(Instant::now(), false);
                    write_summaries(&writer.pool, &mut budget).await;
                    continue;
                }
            },
            None => queue.recv_many(&mut jobs, BATCH).await,
        };
        if received == 0 {
            break;
        }
        let mut flush = false;
        let waited_for = take(&mut jobs, &mut batch, &mut barriers, &mut flush);
        // Nobody waits for these. Within GATHER of the last commit (a flood), the writer
        // sleeps out the rest of it without listening to the queue, so the refusals that come
        // meanwhile neither wake it one by one nor cost a commit each; then it takes what
        // came. A job someone waits for (handed with `urgent` told) ends the sleep at once.
        let until = last_commit + GATHER;
        if !waited_for && batch.len() < BATCH && Instant::now() < until {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = writer.urgent.notified() => {}
            }
            while batch.len() + jobs.len() < BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            take(&mut jobs, &mut batch, &mut barriers, &mut flush);
        }
        budget.turn(Instant::now(), false);
        if !batch.is_empty() {
            write_and_answer(&writer, &mut batch, &mut budget).await;
            last_commit = Instant::now();
        }
        if flush {
            // Everything counted so far, this batch's refusals too, is written before the
            // flush is answered.
            budget.turn(Instant::now(), true);
        }
        write_summaries(&writer.pool, &mut budget).await;
        for done in barriers.drain(..) {
            let _ = done.send(());
        }
    }
    // Stopped: what was counted is written.
    budget.turn(Instant::now(), true);
    write_summaries(&writer.pool, &mut budget).await;
}

/// How long after a commit the writer gathers refusals that nobody waits for (answered before
/// their commit) before it writes them: at most 100 commits a second in a flood. A batch that
/// someone waits for (a barrier, a flush, a refusal whose answer depends on the commit) is
/// written at once, also when it comes while the writer gathers.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// Sorts received jobs into the batch and the barriers; whether any of them waits for the
/// commit.
fn take(
    jobs: &mut Vec<Job>,
    batch: &mut Vec<Pending>,
    barriers: &mut Vec<tokio::sync::oneshot::Sender<()>>,
    flush: &mut bool,
) -> bool {
    let mut waits = false;
    for job in jobs.drain(..) {
        match job {
            Job::Refusal(pending) => {
                waits |= pending.done.is_some();
                batch.push(pending);
            }
            Job::Barrier(done) => {
                waits = true;
                barriers.push(done);
            }
            Job::Flush(done) => {
                waits = true;
                *flush = true;
                barriers.push(done);
            }
        }
    }
    waits
}

/// Writes the summaries of windows that are over, in a transaction of their own (a batch of
/// refusals never fails for them); kept for the next try if the database refuses.
async fn write_summaries(pool: &AnyPool, budget: &mut AuditBudget) {
    let summaries = budget.unwritten();
    if summaries.is_empty() {
        return;
    }
    let entries: Vec<(i64, NewEntry<'_>)> = summaries
        .iter()
        .map(|s| {
            entry(
                s.at,
                audit_budget::COUNTED_ACTION,
                &s.key_id,
                &s.client_ip,
                &s.details,
            )
        })
        .collect();
    let n = entries.len();
    let result = async {
        let mut tx = crate::db::begin_write(pool).await?;
        crate::service::repo::audit::insert_many(&mut tx, &entries).await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => budget.written(n),
        Err(e) => tracing::error!(error = %e, "writing audit entries that count refusals failed"),
    }
}

/// Writes one batch and settles it: memory, uncommitted counts, answers.
async fn write_and_answer(writer: &Writer, batch: &mut Vec<Pending>, budget: &mut AuditBudget) {
    let handed = group_by(batch, |p| p.counted.then_some(p.key_id.as_str()));
    let handed: Vec<(&str, i64)> = handed
        .into_iter()
        .map(|(key_id, members)| (key_id, members.len() as i64))
        .collect();
    let result = write_batch(
        &writer.pool,
        writer.policy,
        &writer.public_url,
        batch,
        budget,
    )
    .await;
    budget.settle(result.is_ok());
    let outcomes = match result {
        Ok(committed) => {
            for (key_id, count) in &committed.counts {
                writer.cache.set_failures(key_id, *count);
            }
            if committed.locked {
                // A lock is a change of keys: forgotten here and announced to other instances.
                writer.changes.changed();
            }
            if committed.locked || committed.queued {
                writer.wake.notify_one();
            }
            writer.uncommitted.settled(&handed, &committed.counts);
            committed.written.into_iter().map(Ok).collect()
        }
        Err(e) => {
            tracing::error!(error = %e, "recording refused key checks failed");
            writer.uncommitted.settled(&handed, &[]);
            vec![Err(e.to_string()); batch.len()]
        }
    };
    for (pending, outcome) in batch.drain(..).zip(outcomes) {
        if let Some(done) = pending.done {
            let _ = done.send(outcome);
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
    budget: &mut AuditBudget,
) -> Result<Committed, sqlx::Error> {
    let mut tx = crate::db::begin_write(pool).await?;
    let mut written = vec![Written::Refused; batch.len()];
    // The client's counter first: over its limit, the key's own counter does not move.
    count_clients(&mut tx, policy, batch, &mut written).await?;
    let tripped = tripwire(&mut tx, public_url, batch, &written).await?;
    let mut in_row = vec![None; batch.len()];
    let counted =
        count_wrong_secrets(&mut tx, policy, public_url, batch, &written, &mut in_row).await?;
    let refusals = Refusals {
        batch,
        written: &written,
        in_row: &in_row,
        tripped: &tripped.hits,
    };
    audit_refusals(&mut tx, &refusals, budget).await?;
    tx.commit().await?;
    Ok(Committed {
        written,
        counts: counted.counts,
        locked: counted.locked || tripped.locked,
        queued: counted.locked || tripped.queued,
    })
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

/// What counting wrong secrets did.
struct Counted {
    /// Each key's failure count after them.
    counts: Vec<(String, i64)>,
    /// Whether any key locked.
    locked: bool,
}

/// Counts wrong secrets towards their key's lockout, in order of arrival, noting how many in a
/// row each was; announces a lock.
async fn count_wrong_secrets(
    conn: &mut AnyConnection,
    policy: Policy,
    public_url: &str,
    batch: &[Pending],
    written: &[Written],
    in_row: &mut [Option<i64>],
) -> Result<Counted, sqlx::Error> {
    let mut locked = false;
    let mut counts = Vec::new();
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
        counts.push((key_id.to_string(), failure.count));
        let before = failure.count - n;
        for (k, &i) in members.iter().enumerate() {
            in_row[i] = Some(before + k as i64 + 1);
        }
        if failure.now_locked {
            // The failure that reached the threshold is the one that locked the key.
            let at = threshold.max(before + 1);
            let first = &batch[members[(at - before - 1) as usize]];
            announce_lock(conn, public_url, key_id, at, first.now, &first.client_ip).await?;
            locked = true;
        }
    }
    Ok(Counted { counts, locked })
}

/// A batch's refusals as the audit sees them.
struct Refusals<'a> {
    batch: &'a [Pending],
    written: &'a [Written],
    /// For wrong secrets, how many in a row each was.
    in_row: &'a [Option<i64>],
    /// Replaced secrets presented again: always written one by one.
    tripped: &'a [usize],
}

/// One audit entry per refusal that was not throttled, within its budget (a replaced secret
/// presented again always has its own); in one statement.
async fn audit_refusals(
    conn: &mut AnyConnection,
    refusals: &Refusals<'_>,
    budget: &mut AuditBudget,
) -> Result<(), sqlx::Error> {
    let mut details: Vec<(usize, String)> = Vec::new();
    for (i, p) in refusals.batch.iter().enumerate() {
        if !matches!(refusals.written[i], Written::Refused) {
            continue;
        }
        let in_row = refusals.in_row[i];
        let tripped = refusals.tripped.contains(&i);
        if tripped || budget.admit(&p.key_id, &p.client_ip, p.refusal, p.now, in_row) {
            let reason = if tripped {
                "replaced secret presented"
            } else {
                p.refusal.reason()
            };
            details.push((
                i,
                match in_row {
                    Some(n) => format!("{reason} ({n} in a row)"),
                    None => reason.to_string(),
                },
            ));
        }
    }
    let entries: Vec<(i64, NewEntry<'_>)> = details
        .iter()
        .map(|(i, d)| {
            let p = &refusals.batch[*i];
            entry(p.now, "key.auth_refused", &p.key_id, &p.client_ip, d)
        })
        .collect();
    crate::service::repo::audit::insert_many(conn, &entries).await
}

/// An entry about refusals of a key.
fn entry<'a>(
    at: i64,
    action: &'a str,
    key_id: &'a str,
    client_ip: &'a str,
    details: &'a str,
) -> (i64, NewEntry<'a>) {
    (
        at,
        NewEntry {
            actor_id: None,
            actor_label: client_ip,
            action,
            target_type: "access_key",
            target_id: key_id,
            target_label: "",
            client_ip,
            outcome: FAILURE,
            details,
        },
    )
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
