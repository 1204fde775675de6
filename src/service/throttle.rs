//! Fixed-window failure counters kept in the database, so every instance sees the same counts.

use sqlx::AnyConnection;

use crate::repo::rate_limits;

/// A limit: at most `max` failures per `window_secs`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: i64,
    pub window_secs: i64,
}

/// Failed sign-ins allowed per account in 15 minutes.
pub const SIGN_IN_PER_ACCOUNT: Limit = Limit {
    max: 5,
    window_secs: 900,
};
/// Failed sign-ins allowed per client address in 15 minutes.
pub const SIGN_IN_PER_CLIENT: Limit = Limit {
    max: 20,
    window_secs: 900,
};

fn window_start(now: i64, limit: Limit) -> i64 {
    now - now.rem_euclid(limit.window_secs)
}

/// Counts an attempt before it is checked and says whether it may go ahead: `None` while the
/// bucket is within its limit, else the seconds until its window ends. Counting first means a
/// burst of parallel attempts cannot all slip past a check made before any of them failed.
pub async fn reserve(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    let start = window_start(now, limit);
    let hits = rate_limits::hit(conn, bucket, start).await?;
    Ok((hits > limit.max).then(|| start + limit.window_secs - now))
}

/// Counts `n` attempts in one go (a batch of failures from one client) and says, for each in
/// order, whether it is over the limit: `Some(seconds until the window ends)` when it is.
pub async fn reserve_many(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
    n: i64,
) -> sqlx::Result<Vec<Option<i64>>> {
    let start = window_start(now, limit);
    let total = rate_limits::hit_n(conn, bucket, start, n).await?;
    let retry_after = start + limit.window_secs - now;
    Ok((1..=n)
        .map(|k| (total - n + k > limit.max).then_some(retry_after))
        .collect())
}

/// Gives back an attempt that succeeded, so that successes never use up the limit.
pub async fn release(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> sqlx::Result<()> {
    rate_limits::unhit(conn, bucket, window_start(now, limit)).await
}

/// Forgets a bucket's failures (after a success).
pub async fn reset(conn: &mut AnyConnection, bucket: &str) -> sqlx::Result<()> {
    rate_limits::clear(conn, bucket).await
}

/// Buckets known to be over their limit, each until its window ends, kept in memory. In a fixed
/// window a bucket over its limit stays over it, so a further failure there changes nothing:
/// whoever checks this first can answer 429 without counting (a database write) again. Only
/// ever a shortcut: forgetting costs the next failure one write, which tells again.
#[derive(Debug, Default)]
pub struct KnownOver {
    ends: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

/// Most buckets remembered; past it, ended windows are dropped first, then all.
const MAX_KNOWN_OVER: usize = 10_000;

impl KnownOver {
    /// Seconds until the window ends, when `bucket` is known to be over `limit`.
    pub fn retry_after(&self, bucket: &str, limit: Limit, now: i64) -> Option<i64> {
        let ends = *self.lock().get(bucket)?;
        // A window ends at most a window from now; anything else is stale (the clock moved).
        (ends > now && ends - now <= limit.window_secs).then_some(ends - now)
    }

    /// Remembers that `bucket` is over its limit for `retry_after` more seconds.
    pub fn remember(&self, bucket: &str, now: i64, retry_after: i64) {
        let mut ends = self.lock();
        if ends.len() >= MAX_KNOWN_OVER {
            ends.retain(|_, end| *end > now);
            if ends.len() >= MAX_KNOWN_OVER {
                ends.clear();
            }
        }
        ends.insert(bucket.to_string(), now + retry_after);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.ends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned() {
        let l = Limit {
            max: 1,
            window_secs: 900,
        };
        assert_eq!(window_start(1800, l), 1800);
        assert_eq!(window_start(2699, l), 1800);
    }
}
