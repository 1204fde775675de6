//! Per-key rate limits (SPEC §10): a key with a limit spends one token of its bucket for each
//! presentation that passes every other check. The bucket (capacity `burst`, refilled at
//! `per_second`) is shared by every instance on the database (`key_rate_buckets`); an instance
//! takes tokens from it in small leases, one short write transaction each, and spends them
//! from memory (a lock and a lookup, no allocation for a key it already knows). So:
//! - no instance spends a token the shared bucket did not grant;
//! - a lease is at most [`chunk`] tokens (a twentieth of a second's worth, at least 1), and is
//!   given back when it is older than [`LEASE_MS`];
//! - one lease transaction at a time per key and instance: under load the next lease is taken
//!   in the background when the current one is nearly spent or three quarters of its time
//!   old, keeping a quarter chunk to spend meanwhile and giving the rest back, so a busy key
//!   never waits for a write (a request finding the lease spent waits for the transaction
//!   under way rather than starting another). At any moment the tokens outside the bucket are
//!   at most one and a quarter chunks per instance, which bounds how far several instances
//!   together can pass a limit (and how many stay unspent in an idle instance);
//! - once the bucket is found empty the instance refuses from memory until it has refilled
//!   by a token, so a flood of limited requests costs no database work either.
//!
//! Keys without a limit never come here.

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::AnyPool;

use crate::db::Backend;
use crate::domain::RateLimit;
use crate::service::repo::key_rate_buckets::{self as buckets, Bucket};

/// How long a lease may be spent from memory, in milliseconds; older, it goes back.
pub const LEASE_MS: i64 = 1_000;

/// Most keys an instance keeps leases for; beyond that, keys without a live lease are
/// forgotten first, and a key that still finds no place takes one token at a time.
const MAX_KEYS: usize = 100_000;

/// Tokens one lease asks for: a twentieth of a second's worth, at least 1, at most the burst.
pub fn chunk(limit: RateLimit) -> i64 {
    ((limit.per_second / 20.0).floor() as i64).clamp(1, limit.burst)
}

/// Where a limited key stands after a presentation that passed: for the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateState {
    pub limit: RateLimit,
    /// Requests left before the limit is reached (an estimate with several instances).
    pub remaining: i64,
    /// Seconds until the bucket is full again.
    pub reset_secs: i64,
}

/// A presentation over its key's limit: when a token will be there again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    pub limit: RateLimit,
    pub retry_after_ms: i64,
}

/// One instance's view of a key's bucket.
struct Lease {
    limit: RateLimit,
    /// Tokens granted and not yet spent.
    tokens: i64,
    /// When they were granted (unix milliseconds).
    taken_ms: i64,
    /// The bucket was found empty: refused from memory until then.
    empty_until_ms: i64,
    /// What the shared bucket held after the last lease, and when (for the headers).
    bucket: Bucket,
    /// Held while a lease transaction for this key is under way: one at a time per key and
    /// instance; requests that find the lease spent meanwhile wait for it instead of starting
    /// their own (which would queue dozens of write transactions behind each other).
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Lease {
    fn new(limit: RateLimit) -> Self {
        Lease {
            limit,
            tokens: 0,
            taken_ms: 0,
            empty_until_ms: 0,
            bucket: Bucket {
                tokens: limit.burst as f64,
                updated_ms: 0,
            },
            gate: Arc::default(),
        }
    }

    /// Keeps what a lease transaction came to; `spent` of the tokens it took go to the
    /// presentation that took it (one on a request's path, none when renewed ahead).
    fn keep(&mut self, grant: Grant, now_ms: i64, spent: i64) {
        match grant {
            Grant::Tokens { tokens, bucket } => {
                self.tokens += tokens - spent;
                self.taken_ms = now_ms;
                self.empty_until_ms = 0;
                self.bucket = bucket;
            }
            Grant::Empty { wait_ms, bucket } => {
                self.empty_until_ms = now_ms + wait_ms;
                self.bucket = bucket;
            }
        }
    }

    fn live(&self, now_ms: i64) -> bool {
        self.tokens > 0 && (self.taken_ms..self.taken_ms + LEASE_MS).contains(&now_ms)
    }

    /// Whether the next lease should be taken now, in the background, while this one still
    /// serves: it is nearly spent or nearly too old (and the bucket was not just found empty).
    fn wants_refresh(&self, now_ms: i64) -> bool {
        now_ms >= self.empty_until_ms
            && (self.tokens <= keep(self.limit) || now_ms - self.taken_ms >= REFRESH_AFTER_MS)
    }

    /// Where the key stands after spending a token at `now_ms`.
    fn state(&self, now_ms: i64) -> RateState {
        let limit = self.limit;
        let shared = refilled(self.bucket, limit, now_ms).tokens;
        let remaining = (self.tokens as f64 + shared)
            .floor()
            .min(limit.burst as f64);
        let missing = limit.burst as f64 - remaining;
        RateState {
            limit,
            remaining: remaining.max(0.0) as i64,
            reset_secs: (missing / limit.per_second).ceil().max(0.0) as i64,
        }
    }
}

/// A lease older than this is renewed in the background (its unspent tokens beyond [`keep`]
/// go back with the renewal), so that it never runs out of time under a steady load.
const REFRESH_AFTER_MS: i64 = LEASE_MS * 3 / 4;

/// Tokens a lease keeps spending while the next one is taken in the background: a quarter of
/// a chunk. So the tokens outside the bucket stay under one and a quarter chunks per instance.
fn keep(limit: RateLimit) -> i64 {
    chunk(limit) / 4
}

/// The bucket as it stands at `now_ms`: refilled for the time since it was stored, never above
/// the burst (a clock that went back refills nothing).
fn refilled(bucket: Bucket, limit: RateLimit, now_ms: i64) -> Bucket {
    let elapsed = (now_ms - bucket.updated_ms).max(0) as f64;
    Bucket {
        tokens: (bucket.tokens + elapsed * limit.per_second / 1000.0).min(limit.burst as f64),
        updated_ms: now_ms.max(bucket.updated_ms),
    }
}

/// Milliseconds until a bucket holding `tokens` (< 1) holds one.
fn wait_for_one(tokens: f64, limit: RateLimit) -> i64 {
    (((1.0 - tokens) * 1000.0 / limit.per_second).ceil() as i64).max(1)
}

/// What a lease transaction came to.
#[derive(Debug, Clone, Copy)]
enum Grant {
    /// `tokens` (at least 1) taken; the bucket left as `bucket`.
    Tokens { tokens: i64, bucket: Bucket },
    /// The bucket holds less than a token: one will be there in this many milliseconds.
    Empty { wait_ms: i64, bucket: Bucket },
}

type Admitted = Result<RateState, Result<Limited, sqlx::Error>>;

/// What a presentation does next, decided under the leases' lock.
enum Step {
    Answer(Admitted),
    /// Another request of this instance is taking a lease for the key: wait for it, look again.
    Wait(Arc<tokio::sync::Mutex<()>>),
    /// Take a lease now, giving back `returned` tokens; `held` is the key's gate (`None` when
    /// there is no place to keep a lease: one token is taken at a time).
    Take {
        returned: i64,
        held: Option<tokio::sync::OwnedMutexGuard<()>>,
    },
}

/// The leases of one instance.
pub struct RateLimiter {
    pool: AnyPool,
    backend: Backend,
    leases: Mutex<HashMap<String, Lease>>,
}

impl RateLimiter {
    /// A limiter taking its leases from `pool`.
    pub fn new(pool: AnyPool) -> Self {
        RateLimiter {
            backend: Backend::of_pool(&pool),
            pool,
            leases: Mutex::default(),
        }
    }

    /// Spends one of `key_id`'s tokens at `now_ms` under `limit`: from the instance's lease
    /// while it lasts, else from a new lease. `Err(Ok(limited))` when the key is over its
    /// limit; `Err(Err(e))` when the database failed.
    pub async fn admit(self: &Arc<Self>, key_id: &str, limit: RateLimit, now_ms: i64) -> Admitted {
        let mut waited = None;
        loop {
            match self.step(key_id, limit, now_ms, waited.take()) {
                Step::Answer(answer) => return answer,
                // Its turn comes with the gate: it looks again holding it, so that it cannot
                // find the gate taken by the next one waiting.
                Step::Wait(gate) => waited = Some(gate.lock_owned().await),
                Step::Take { returned, held } => {
                    let grant = self
                        .lease(key_id, limit, chunk(limit), returned, now_ms)
                        .await;
                    let answer = self.granted(key_id, limit, returned, now_ms, grant);
                    drop(held);
                    return answer;
                }
            }
        }
    }

    /// What a presentation does, from memory; `held` is the key's gate when it waited for it.
    fn step(
        self: &Arc<Self>,
        key_id: &str,
        limit: RateLimit,
        now_ms: i64,
        held: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Step {
        let Ok(mut leases) = self.leases.lock() else {
            return Step::Answer(Err(Err(poisoned())));
        };
        if !leases.contains_key(key_id) {
            if leases.len() >= MAX_KEYS {
                leases.retain(|_, l| l.live(now_ms) || now_ms < l.empty_until_ms);
            }
            if leases.len() >= MAX_KEYS {
                // No place to keep a lease: take one token at a time.
                return Step::Take {
                    returned: 0,
                    held: None,
                };
            }
            leases.insert(key_id.to_string(), Lease::new(limit));
        }
        let Some(lease) = leases.get_mut(key_id) else {
            return Step::Answer(Err(Err(poisoned())));
        };
        if lease.limit == limit && lease.live(now_ms) {
            lease.tokens -= 1;
            let state = lease.state(now_ms);
            if lease.wants_refresh(now_ms)
                && let Some(held) = held.or_else(|| lease.gate.clone().try_lock_owned().ok())
            {
                // Renewed ahead, in the background: no request waits for it.
                let returned = lease.tokens - lease.tokens.min(keep(limit));
                lease.tokens -= returned;
                self.refresh(key_id, limit, returned, now_ms, held);
            }
            return Step::Answer(Ok(state));
        }
        let Some(held) = held.or_else(|| lease.gate.clone().try_lock_owned().ok()) else {
            return Step::Wait(lease.gate.clone());
        };
        let returned = if lease.limit != limit {
            // The limit changed: what was taken under the old one goes back.
            let returned = lease.tokens;
            let gate = lease.gate.clone();
            *lease = Lease::new(limit);
            lease.gate = gate;
            returned
        } else if now_ms < lease.empty_until_ms {
            return Step::Answer(Err(Ok(Limited {
                limit,
                retry_after_ms: lease.empty_until_ms - now_ms,
            })));
        } else {
            std::mem::take(&mut lease.tokens)
        };
        Step::Take {
            returned,
            held: Some(held),
        }
    }

    /// Takes the next lease of a key in the background, holding its gate until it is kept.
    fn refresh(
        self: &Arc<Self>,
        key_id: &str,
        limit: RateLimit,
        returned: i64,
        now_ms: i64,
        held: tokio::sync::OwnedMutexGuard<()>,
    ) {
        let (this, key_id) = (self.clone(), key_id.to_string());
        tokio::spawn(async move {
            let grant = this
                .lease(&key_id, limit, chunk(limit), returned, now_ms)
                .await;
            if let Ok(mut leases) = this.leases.lock()
                && let Some(lease) = leases.get_mut(&key_id)
                && lease.limit == limit
            {
                match grant {
                    Ok(grant) => lease.keep(grant, now_ms, 0),
                    Err(e) => {
                        // Nothing was given back: the tokens are still this instance's.
                        lease.tokens += returned;
                        tracing::warn!(error = %e, "renewing a rate limit lease failed");
                    }
                }
            }
            drop(held);
        });
    }

    /// Keeps what a lease transaction taken on the request's path came to, and answers.
    fn granted(
        &self,
        key_id: &str,
        limit: RateLimit,
        returned: i64,
        now_ms: i64,
        grant: sqlx::Result<Grant>,
    ) -> Admitted {
        let Ok(mut leases) = self.leases.lock() else {
            return Err(Err(poisoned()));
        };
        let lease = leases.get_mut(key_id).filter(|l| l.limit == limit);
        let grant = match grant {
            Ok(grant) => grant,
            Err(e) => {
                if let Some(lease) = lease {
                    // Nothing was given back: the tokens are still this instance's.
                    lease.tokens += returned;
                }
                return Err(Err(e));
            }
        };
        let Some(lease) = lease else {
            // No place to keep a lease: this presentation spends what it took.
            return match grant {
                Grant::Tokens { bucket, .. } => {
                    let mut lease = Lease::new(limit);
                    lease.bucket = bucket;
                    Ok(lease.state(now_ms))
                }
                Grant::Empty { wait_ms, .. } => Err(Ok(Limited {
                    limit,
                    retry_after_ms: wait_ms,
                })),
            };
        };
        lease.keep(grant, now_ms, 1);
        match grant {
            Grant::Tokens { .. } => Ok(lease.state(now_ms)),
            Grant::Empty { wait_ms, .. } => Err(Ok(Limited {
                limit,
                retry_after_ms: wait_ms,
            })),
        }
    }

    /// Takes up to `want` tokens from the shared bucket in one write transaction, giving back
    /// `returned` unspent ones first.
    async fn lease(
        &self,
        key_id: &str,
        limit: RateLimit,
        want: i64,
        returned: i64,
        now_ms: i64,
    ) -> sqlx::Result<Grant> {
        let mut tx = crate::db::begin_write(&self.pool).await?;
        let stored = match buckets::lock(&mut tx, self.backend, key_id).await? {
            Some(bucket) => Some(bucket),
            None => {
                buckets::create(&mut tx, key_id, limit.burst as f64, now_ms).await?;
                buckets::lock(&mut tx, self.backend, key_id).await?
            }
        };
        let Some(stored) = stored else {
            // The key was deleted since it was read: nothing to limit any more.
            tx.rollback().await?;
            return Ok(Grant::Tokens {
                tokens: 1,
                bucket: Bucket {
                    tokens: limit.burst as f64,
                    updated_ms: now_ms,
                },
            });
        };
        let mut bucket = refilled(stored, limit, now_ms);
        bucket.tokens = (bucket.tokens + returned as f64).min(limit.burst as f64);
        let tokens = (bucket.tokens.floor() as i64).min(want);
        let grant = if tokens >= 1 {
            bucket.tokens -= tokens as f64;
            Grant::Tokens { tokens, bucket }
        } else {
            Grant::Empty {
                wait_ms: wait_for_one(bucket.tokens, limit),
                bucket,
            }
        };
        if tokens >= 1 || returned > 0 {
            buckets::save(&mut tx, key_id, bucket).await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(grant)
    }
}

fn poisoned() -> sqlx::Error {
    sqlx::Error::Protocol("rate limit leases poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: f64, burst: f64) -> RateLimit {
        RateLimit::new(per_second, Some(burst)).unwrap()
    }

    #[test]
    fn leases_are_a_twentieth_of_a_second() {
        assert_eq!(chunk(limit(5.0, 5.0)), 1);
        assert_eq!(chunk(limit(0.5, 1.0)), 1);
        assert_eq!(chunk(limit(1000.0, 2000.0)), 50);
        assert_eq!(chunk(limit(1000.0, 10.0)), 10);
    }

    #[test]
    fn buckets_refill_up_to_the_burst() {
        let l = limit(10.0, 20.0);
        let b = Bucket {
            tokens: 0.0,
            updated_ms: 1_000,
        };
        assert_eq!(refilled(b, l, 1_500).tokens, 5.0);
        assert_eq!(refilled(b, l, 10_000).tokens, 20.0);
        // A clock that went back refills nothing and keeps the later moment.
        assert_eq!(refilled(b, l, 500), b);
        assert_eq!(wait_for_one(0.0, l), 100);
        assert_eq!(wait_for_one(0.5, l), 50);
    }
}
