//! Fixed-window failure counters kept in the database, so every instance sees the same counts.

use sqlx::AnyConnection;

use crate::repo::rate_limits;

/// A limit: at most `max` failures per `window_secs`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: i64,
    pub window_secs: i64,
}

/// Failed sign-ins allowed per account from one address group in 15 minutes: one address can
/// never use up more of an account's budget than this.
pub const SIGN_IN_PER_ACCOUNT_AND_CLIENT: Limit = Limit {
    max: 5,
    window_secs: 900,
};
/// Failed sign-ins allowed per client address group in 15 minutes, whatever the accounts.
pub const SIGN_IN_PER_CLIENT: Limit = Limit {
    max: 20,
    window_secs: 900,
};
/// Failed sign-ins allowed per account from all addresses together in 15 minutes. It bounds
/// guessing spread over many addresses; reaching it takes at least 20 address groups (each
/// gives at most [`SIGN_IN_PER_ACCOUNT_AND_CLIENT`]).
pub const SIGN_IN_PER_ACCOUNT: Limit = Limit {
    max: 100,
    window_secs: 900,
};
/// Wrong current passwords allowed per user from one address group in 15 minutes (the
/// password change form).
pub const PASSWORD_CHECK_PER_USER_AND_CLIENT: Limit = Limit {
    max: 5,
    window_secs: 900,
};
/// Wrong current passwords allowed per user from all addresses in 15 minutes: a stolen session
/// used from many addresses still gets few guesses.
pub const PASSWORD_CHECK_PER_USER: Limit = Limit {
    max: 20,
    window_secs: 900,
};

/// One attempt counted in a bucket.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    /// Attempts in the window so far, this one included.
    pub hits: i64,
    /// Seconds until the window ends, when this attempt is over the limit.
    pub retry_after: Option<i64>,
    max: i64,
}

impl Count {
    /// Whether this attempt is over the limit.
    pub fn is_over(&self) -> bool {
        self.retry_after.is_some()
    }

    /// Whether this is the first attempt over the limit in its window (exactly one attempt
    /// is, however many race).
    pub fn is_first_over(&self) -> bool {
        self.hits == self.max + 1
    }
}

/// The group of addresses whose failures count together: an IPv4 address on its own, an IPv6
/// address by its /64 (one subscriber usually holds a whole /64 and could rotate through it),
/// an IPv4-mapped IPv6 address as the IPv4 address. Anything that is not an address is its own
/// group.
pub fn address_group(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>().map(|a| a.to_canonical()) {
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Ok(std::net::IpAddr::V6(v6)) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
        Err(_) => ip.to_string(),
    }
}

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
    Ok(count(conn, bucket, limit, now).await?.retry_after)
}

/// Counts an attempt before it is checked, as [`reserve`] does, and tells how many there were.
pub async fn count(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> sqlx::Result<Count> {
    let start = window_start(now, limit);
    let hits = rate_limits::hit(conn, bucket, start).await?;
    Ok(Count {
        hits,
        retry_after: (hits > limit.max).then(|| start + limit.window_secs - now),
        max: limit.max,
    })
}

/// Marks `bucket` in the current window of `window_secs`: true for exactly one caller per
/// window, however many race. Lets something happen once per window (one audit entry for a
/// throttled address, not one per refused attempt).
pub async fn first_in_window(
    conn: &mut AnyConnection,
    bucket: &str,
    window_secs: i64,
    now: i64,
) -> sqlx::Result<bool> {
    let start = now - now.rem_euclid(window_secs);
    Ok(rate_limits::hit(conn, bucket, start).await? == 1)
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

    #[test]
    fn ipv6_addresses_are_grouped_by_64_and_ipv4_stays_whole() {
        assert_eq!(address_group("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_group("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            address_group("2001:db8:1:2:aaaa::1"),
            address_group("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(address_group("2001:db8:1:2::9"), "2001:db8:1:2::/64");
        assert_ne!(
            address_group("2001:db8:1:2::1"),
            address_group("2001:db8:1:3::1")
        );
        assert_eq!(address_group(""), "");
    }
}
