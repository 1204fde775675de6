//! Checking a key that a program presents (SPEC §3): checksum first (no database work for a
//! malformed secret), one indexed lookup by ID, HMAC-SHA256 and a constant-time compare, then
//! the key's state, its owner's and its allowed networks. Wrong secrets count towards the key's
//! lockout; failures also count per client address so that nobody can lock other people's keys
//! at will. Every refusal looks the same to the caller; the reason goes to the audit log.
//!
//! Both doors that take keys come through here: `authenticate` (who calls the API: an access
//! key or the bridge, in `caller`) and `verify` (the verify endpoint's rules, in `verify`).
//! Refusals are written by one task (`refusals`). What keys need beyond the database
//! (`Keyring`) is defined here, below `service::keys`, which shares it.

use std::sync::{Arc, RwLock};

use sqlx::AnyPool;

use crate::auth::key_auth::PresentedKey;
use crate::db::Reader;
use crate::domain::Permission;
use crate::error::AppError;
use tokio::sync::{mpsc, oneshot};

use crate::service::repo::keys::{self as repo, AccessMap, AuthRow, KeyRow};
use crate::service::throttle::{self, Limit};

mod addresses;
mod audit_budget;
mod cache;
mod caller;
mod keyring;
mod lookup;
pub mod rate_limit;
mod refusals;
mod tripwire;
mod uncommitted;
pub mod usage;
mod verdict;
mod verify;

pub use cache::{FRESH_FOR as KEY_CACHE_FRESH_FOR, KeyChanges, follow_other_instances};
pub use caller::{BRIDGE_ROLE, BridgeCheck, Caller, CallerCredentials, authenticate};
pub use keyring::Keyring;
use verdict::judge;
pub use verdict::{AuthError, AuthenticatedKey, Refusal, SecretUsed};
pub use verify::{VerifiedKey, VerifyAnswer, VerifyQuestion, verify};

/// The settings authentication follows.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Consecutive wrong secrets before a key locks (0: never).
    pub lockout_threshold: u32,
    /// Failed authentications per client address per minute before 429 (0: no limit).
    pub client_failure_limit: u32,
    /// Refusals of one key from one address for one reason written to the audit log one by
    /// one per second; past it they are counted in one entry (0: every one written).
    pub refusal_audit_per_second: u32,
}

/// One presentation of a key.
pub struct Attempt<'a> {
    pub presented: Option<PresentedKey>,
    /// The address the key came from: the TCP peer, or what the verify caller reports.
    pub client_ip: &'a str,
    pub user_agent: &'a str,
    /// Whether failures count against the client address (not for verify, whose caller is
    /// another service acting for many clients).
    pub limit_client: bool,
    /// Judged only when the batch's first attempt (the caller) was accepted as an access key
    /// holding this permission; otherwise it is refused without a trace, so that nobody can
    /// push a key towards its lockout without valid credentials of their own.
    pub needs_caller: Option<Permission>,
}

const CLIENT_WINDOW: i64 = 60;

/// The limit on failed authentications per client address (`None` when switched off with 0),
/// shared by key checks and the bridge.
pub fn client_limit(client_failure_limit: u32) -> Option<Limit> {
    (client_failure_limit > 0).then(|| Limit {
        max: i64::from(client_failure_limit),
        window_secs: CLIENT_WINDOW,
    })
}

/// The failure counter of one client address group (IPv6 by /64, see
/// `throttle::address_group`), so a client cannot rotate past it within its own network.
pub fn client_bucket(ip: &str) -> String {
    format!("keyauth:client:{}", throttle::address_group(ip))
}

/// Checks presented keys. Lookups run on the request; refusals (client counter, the key's
/// failure count and lock, the audit entry) go to one writer task that commits whatever has
/// queued up in a single transaction: a burst of wrong secrets costs one commit, not one per
/// request. A caller whose answer depends on the commit (a per-client limit applies, or its
/// wrong secret may lock the key) waits for it and learns its own outcome (a 429); any other
/// refusal is answered at once (see `uncommitted`).
#[derive(Clone)]
pub struct KeyChecker {
    pool: AnyPool,
    /// Lookups without the pool: on SQLite on the request's own thread, on PostgreSQL on
    /// connections of their own (see `db::Reader`).
    reader: Option<Arc<Reader>>,
    policy: Policy,
    refusals: mpsc::Sender<Job>,
    /// Told when a job someone waits for is handed: the writer stops gathering and writes.
    urgent: Arc<tokio::sync::Notify>,
    /// This instance's wrong secrets handed to the writer and not yet committed.
    uncommitted: Arc<uncommitted::Uncommitted>,
    /// Client buckets known to be over their limit (shared with the bridge's check).
    over_limit: Arc<throttle::KnownOver>,
    /// The role and group mappings behind permissions, as of the version they were read at.
    access: Arc<RwLock<Arc<AccessMap>>>,
    /// Client addresses of accepted checks, written in batches.
    addresses: Arc<addresses::AddressBook>,
    /// Usage counts per key, hour and outcome, written in batches.
    usage: Arc<usage::UsageBook>,
    /// Keys read recently (see `cache` for when they are trusted).
    cache: Arc<cache::KeyCache>,
    /// Moved by every change this instance makes to keys.
    changes: Arc<KeyChanges>,
    /// Leases of rate-limited keys' tokens.
    rates: Arc<rate_limit::RateLimiter>,
}

/// What the refusal writer is handed.
enum Job {
    Refusal(Pending),
    /// Answered once every refusal handed before it is committed (or failed).
    Barrier(oneshot::Sender<()>),
    /// A barrier that also writes the audit entries of refusals held past their budget.
    Flush(oneshot::Sender<()>),
}

/// A refusal waiting to be written, and where to send what came of it.
struct Pending {
    key_id: String,
    refusal: Refusal,
    /// For a wrong secret of a key whose secret was replaced, its HMAC: the tripwire looks it
    /// up among the key's replaced secrets.
    presented_hash: Option<String>,
    client_ip: String,
    limit_client: bool,
    now: i64,
    /// Counted among this instance's uncommitted wrong secrets of the key.
    counted: bool,
    /// Where to send what came of it; `None` when the caller was answered already.
    done: Option<oneshot::Sender<Result<Written, String>>>,
}

/// What writing a refusal decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Refused,
    Throttled { retry_after: i64 },
}

/// Most refusals one transaction writes (its statements are one per key and client address,
/// not per refusal): a flood of wrong secrets at 60k a second is written in under 100 commits a
/// second, where batches of 256 took 230 and the writer's CPU made a wrong secret slower than
/// a right one. The queue holds four batches.
const BATCH: usize = 1024;

/// The batch's positions grouped by a key, groups in order of first appearance (the refusal
/// writer's steps and the tripwire each group a batch their own way).
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

impl KeyChecker {
    /// A checker on `pool` following `policy`; starts its writer task on the current runtime.
    /// `wake` is told when a lock queued emails and webhook events, so they go out at once.
    pub fn start(
        pool: AnyPool,
        reader: Option<Reader>,
        policy: Policy,
        public_url: &str,
        wake: std::sync::Arc<tokio::sync::Notify>,
    ) -> Self {
        let (refusals, queue) = mpsc::channel(4 * BATCH);
        let urgent = Arc::new(tokio::sync::Notify::new());
        let changes = Arc::new(KeyChanges::announced_on(&pool));
        let cache = Arc::new(cache::KeyCache::new(changes.clone(), cache::FRESH_FOR));
        let uncommitted = Arc::new(uncommitted::Uncommitted::default());
        tokio::spawn(refusals::write_refusals(
            refusals::Writer {
                pool: pool.clone(),
                policy,
                public_url: public_url.to_string(),
                wake,
                changes: changes.clone(),
                cache: cache.clone(),
                uncommitted: uncommitted.clone(),
                urgent: urgent.clone(),
            },
            queue,
        ));
        let book = Arc::new(addresses::AddressBook::default());
        tokio::spawn({
            let (book, pool) = (book.clone(), pool.clone());
            async move {
                let mut every = tokio::time::interval(addresses::FLUSH_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    book.flush(&pool).await;
                }
            }
        });
        let counts = Arc::new(usage::UsageBook::default());
        tokio::spawn({
            let (counts, pool) = (counts.clone(), pool.clone());
            async move {
                let mut every = tokio::time::interval(usage::FLUSH_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    counts.flush(&pool).await;
                }
            }
        });
        KeyChecker {
            rates: Arc::new(rate_limit::RateLimiter::new(pool.clone())),
            pool,
            reader: reader.map(Arc::new),
            policy,
            refusals,
            urgent,
            uncommitted,
            over_limit: Arc::default(),
            access: Arc::default(),
            addresses: book,
            usage: counts,
            cache,
            changes,
        }
    }

    /// Writes the client addresses noted since the last flush (done every few seconds, and
    /// when the server stops).
    pub async fn flush_addresses(&self) {
        self.addresses.flush(&self.pool).await;
    }

    /// Adds the usage counts gathered since the last flush to the database (done every
    /// [`usage::FLUSH_EVERY`], and when the server stops).
    pub async fn flush_usage(&self) {
        self.usage.flush(&self.pool).await;
    }

    /// Waits until every refusal handed to the writer so far is committed (or its batch
    /// failed), with the audit entries that count refusals past their budget: refusals
    /// answered before their commit are written by then (tests, and the server's stop).
    pub async fn flush_refusals(&self) {
        let (done, answer) = oneshot::channel();
        if self.hand(Job::Flush(done), true).await {
            let _ = answer.await;
        }
    }

    /// Sends a barrier through the writer's queue and waits for it; `false` when the writer
    /// has stopped.
    async fn barrier(&self) -> bool {
        let (done, answer) = oneshot::channel();
        self.hand(Job::Barrier(done), true).await && answer.await.is_ok()
    }

    /// Hands a job to the refusal writer, waking it when someone waits for the job (`waited`);
    /// `false` when the writer has stopped.
    async fn hand(&self, job: Job, waited: bool) -> bool {
        let handed = self.refusals.send(job).await.is_ok();
        if handed && waited {
            self.urgent.notify_one();
        }
        handed
    }

    /// Keys, users, groups or roles may have changed: the next key checks read keys again.
    pub fn keys_changed(&self) {
        self.changes.changed();
    }

    /// What moves when keys change, for parts that change keys outside requests (the job).
    pub fn changes(&self) -> Arc<KeyChanges> {
        self.changes.clone()
    }

    /// Usage counts not yet written.
    pub fn usage_pending(&self) -> i64 {
        self.usage.pending()
    }

    /// Client addresses known to be over their failure limit, for other checks of the same
    /// limit (the bridge's).
    pub fn over_limit(&self) -> &throttle::KnownOver {
        &self.over_limit
    }

    /// Checks one presented key.
    pub async fn check(
        &self,
        ring: &Keyring<'_>,
        attempt: Attempt<'_>,
    ) -> Result<AuthenticatedKey, AuthError> {
        let mut outcomes = self.check_all(ring, vec![attempt]).await;
        outcomes
            .pop()
            .unwrap_or(Err(AuthError::Refused(Refusal::Malformed)))
    }

    /// Checks several presented keys with one lookup, answering each in order. On success a
    /// key comes with its permissions and assignments, and its last use is recorded (at most
    /// once a minute).
    pub async fn check_all(
        &self,
        ring: &Keyring<'_>,
        attempts: Vec<Attempt<'_>>,
    ) -> Vec<Result<AuthenticatedKey, AuthError>> {
        // One reading of the clock for the whole check.
        let now_ms = ring.clock.now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        // Malformed credentials cost no database work at all.
        let ids: Vec<&str> = attempts
            .iter()
            .filter_map(|a| a.presented.as_ref().map(|p| p.id.as_str()))
            .collect();
        // Before the keys are read: what the writer commits from here on may be missing in them.
        let seen = self.uncommitted.seen();
        let rows = match self.find(&ids, now_ms).await {
            Ok(rows) => rows,
            Err(e) => {
                let message = e.to_string();
                let unreachable = crate::error::is_unreachable(&e);
                return attempts
                    .iter()
                    .map(|_| {
                        Err(AuthError::Internal(if unreachable {
                            AppError::Unavailable(anyhow::anyhow!("reading keys: {message}"))
                        } else {
                            sqlx_failure(&message)
                        }))
                    })
                    .collect();
            }
        };
        let mut outcomes: Vec<Result<AuthenticatedKey, AuthError>> =
            Vec::with_capacity(attempts.len());
        for attempt in &attempts {
            if let Some(permission) = attempt.needs_caller
                && !outcomes.first().is_some_and(|first| {
                    first
                        .as_ref()
                        .is_ok_and(|k| k.row().key_type == "access" && k.holds(permission))
                })
            {
                outcomes.push(Err(AuthError::Refused(Refusal::Malformed)));
                continue;
            }
            let Some(presented) = attempt.presented.as_ref() else {
                outcomes.push(Err(AuthError::Refused(Refusal::Malformed)));
                continue;
            };
            let id = presented.id.as_str();
            let row = rows.iter().find(|r| r.key.id == id);
            let verdict = match row {
                None => Err(Refusal::NotFound),
                Some(row) => judge(ring, &row.key, presented, attempt.client_ip, now),
            };
            // A key that passed spends a token of its rate limit, if it has one.
            let rate = match (&verdict, row) {
                (Ok(_), Some(row)) => self.spend_token(&row.key, now_ms).await,
                _ => Ok(None),
            };
            if let Some(row) = row {
                let counted = match verdict {
                    Ok(_) if matches!(rate, Err(AuthError::RateLimited { .. })) => {
                        Some(usage::Outcome::RateLimited)
                    }
                    Ok(_) => Some(usage::Outcome::Accepted),
                    Err(refusal) => usage::Outcome::of_refusal(refusal),
                };
                if let Some(outcome) = counted {
                    self.usage.count(&row.key.id, outcome, now);
                }
            }
            outcomes.push(match (verdict, row, rate) {
                (Ok(_), Some(_), Err(limited)) => Err(limited),
                (Ok(used), Some(row), Ok(rate)) => self
                    .accepted(row.clone(), used, attempt, now, seen)
                    .await
                    .map(|key| AuthenticatedKey { rate, ..key }),
                (Err(refusal), _, _) => {
                    let wrong = match row {
                        Some(row) if refusal == Refusal::WrongSecret => Some(WrongSecret {
                            // Only a key whose secret was ever replaced has replaced secrets
                            // for the tripwire to look among.
                            hash: row
                                .key
                                .secret_regenerated_at
                                .is_some()
                                .then(|| ring.hasher.hash(&presented.secret)),
                            read_failures: row.key.failed_attempts,
                            seen,
                        }),
                        _ => None,
                    };
                    Err(self.refused(id, refusal, wrong, attempt, now).await)
                }
                (Ok(_), None, _) => Err(AuthError::Refused(Refusal::NotFound)),
            });
        }
        outcomes
    }

    /// Spends one token of a key's rate limit (`rate_limit`); `Ok(None)` for a key without one.
    async fn spend_token(
        &self,
        key: &KeyRow,
        now_ms: i64,
    ) -> Result<Option<rate_limit::RateState>, AuthError> {
        let Some(limit) =
            crate::domain::RateLimit::from_columns(key.rate_per_second, key.rate_burst)
        else {
            return Ok(None);
        };
        match self.rates.admit(&key.id, limit, now_ms).await {
            Ok(state) => Ok(Some(state)),
            Err(Ok(limited)) => Err(AuthError::RateLimited {
                retry_after_ms: limited.retry_after_ms,
                limit: limited.limit,
            }),
            Err(Err(e)) => Err(e.into()),
        }
    }

    async fn accepted(
        &self,
        row: Arc<AuthRow>,
        used: SecretUsed,
        attempt: &Attempt<'_>,
        now: i64,
        seen: uncommitted::Seen,
    ) -> Result<AuthenticatedKey, AuthError> {
        let key = &row.key;
        self.addresses
            .note(&key.id, attempt.client_ip, attempt.user_agent, now);
        // Wrong secrets of this key still on their way to the database are counted before the
        // count is reset, or the reset would be lost.
        let before = self.uncommitted.before_reset(&key.id, seen);
        if before.wait && !self.barrier().await {
            return Err(AuthError::Internal(sqlx_failure(
                "the refusal writer has stopped",
            )));
        }
        let needs_reset = key.failed_attempts > 0 || before.maybe_failures;
        let needs_touch = key.last_used_at.is_none_or(|t| t <= now - 60);
        if needs_reset || needs_touch {
            let mut conn = self.pool.acquire().await?;
            if needs_reset {
                repo::reset_failures(&mut conn, &key.id).await?;
            }
            let agent: String = attempt.user_agent.chars().take(200).collect();
            if needs_touch {
                repo::touch_last_used(&mut conn, &key.id, now, attempt.client_ip, &agent).await?;
            }
            // What was just written, in the remembered key too (its next check shows it and
            // does not write it again).
            self.cache.update(&key.id, |f| {
                f.key.failed_attempts = 0;
                if needs_touch {
                    f.key.last_used_at = Some(now);
                    f.key.last_used_ip = Some(attempt.client_ip.to_string());
                    f.key.last_used_agent = Some(agent);
                }
            });
        }
        Ok(AuthenticatedKey {
            found: row,
            previous_secret: used == SecretUsed::Previous,
            rate: None,
        })
    }

    /// Hands a refusal to the writer. The caller waits for the commit only when the answer can
    /// depend on it: a per-client limit applies (the commit decides between 401 and 429), or
    /// a wrong secret may be the one that locks the key (so that the right secret presented
    /// next is refused). Otherwise the uniform refusal goes out at once; should the batch
    /// fail, it is logged, as the caller has its answer. A client already known to be over its
    /// limit is answered 429 at once: in a fixed window over its limit a further failure
    /// changes nothing (it counts against no key and is not audited), so a flood from one
    /// address costs no writes until its window ends.
    async fn refused(
        &self,
        key_id: &str,
        refusal: Refusal,
        wrong: Option<WrongSecret>,
        attempt: &Attempt<'_>,
        now: i64,
    ) -> AuthError {
        let limit = client_limit(self.policy.client_failure_limit).filter(|_| attempt.limit_client);
        let limit_client = limit.is_some();
        // Only a limited check has a client bucket (no string built for the others).
        let bucket = limit.map(|_| client_bucket(attempt.client_ip));
        if let (Some(limit), Some(bucket)) = (limit, &bucket)
            && let Some(retry_after) = self.over_limit.retry_after(bucket, limit, now)
        {
            return AuthError::Throttled { retry_after };
        }
        let threshold = i64::from(self.policy.lockout_threshold);
        let cannot_lock = wrong.as_ref().is_none_or(|w| {
            self.uncommitted
                .hand_wrong(key_id, w.read_failures, w.seen, threshold)
        });
        let (done, answer) = if limit_client || !cannot_lock {
            let (done, answer) = oneshot::channel();
            (Some(done), Some(answer))
        } else {
            (None, None)
        };
        let counted = wrong.is_some();
        let pending = Pending {
            key_id: key_id.to_string(),
            refusal,
            presented_hash: wrong.and_then(|w| w.hash),
            client_ip: attempt.client_ip.to_string(),
            limit_client,
            now,
            counted,
            done,
        };
        let waited = pending.done.is_some();
        if !self.hand(Job::Refusal(pending), waited).await {
            if counted {
                self.uncommitted.withdraw(key_id);
            }
            return AuthError::Internal(sqlx_failure("the refusal writer has stopped"));
        }
        let Some(answer) = answer else {
            return AuthError::Refused(refusal);
        };
        match answer.await {
            Ok(Ok(Written::Refused)) => AuthError::Refused(refusal),
            Ok(Ok(Written::Throttled { retry_after })) => {
                if let Some(bucket) = &bucket {
                    self.over_limit.remember(bucket, now, retry_after);
                }
                AuthError::Throttled { retry_after }
            }
            Ok(Err(message)) => AuthError::Internal(sqlx_failure(&message)),
            Err(_) => AuthError::Internal(sqlx_failure("the refusal writer has stopped")),
        }
    }
}

/// A wrong secret of a key that exists, as its check saw it.
struct WrongSecret {
    /// Its HMAC, for the tripwire to look up among the key's replaced secrets; `None` for a
    /// key whose secret was never replaced.
    hash: Option<String>,
    /// The key's failure count as the check read it.
    read_failures: i64,
    /// When the check read it.
    seen: uncommitted::Seen,
}

fn sqlx_failure(message: &str) -> AppError {
    AppError::Unexpected(anyhow::anyhow!("recording a key check failed: {message}"))
}
