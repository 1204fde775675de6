//! Sliding-window failure counters kept in the database, so every instance sees the same counts.
//! A window runs back from each attempt, not from the clock's quarter hour: failures are kept
//! in slots of a fifteenth of the window, and an attempt counts every slot that began within
//! the window before it (so a failure is remembered for at most one slot longer than the
//! window, never shorter). Attempts refused as over the limit are not counted: whoever waits
//! the `Retry-After` they were told gets their attempt.

use sqlx::AnyConnection;

use crate::service::repo::rate_limits;

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

/// Wrong second factors (authenticator codes, recovery codes) allowed per person from one
/// address group in 15 minutes.
pub const SECOND_FACTOR_PER_ACCOUNT_AND_CLIENT: Limit = Limit {
    max: 5,
    window_secs: 900,
};
/// Wrong second factors allowed per client address group in 15 minutes, whoever's.
pub const SECOND_FACTOR_PER_CLIENT: Limit = Limit {
    max: 20,
    window_secs: 900,
};
/// Wrong second factors allowed per person from all addresses in 15 minutes. Whoever gets
/// here knows the password; ten guesses at a 6-digit code (three steps valid) succeed once in
/// some 33,000 windows.
pub const SECOND_FACTOR_PER_ACCOUNT: Limit = Limit {
    max: 10,
    window_secs: 900,
};
/// Password reset requests answered per email address in 15 minutes (whoever asks): enough for a
/// person who lost the first email, too few to flood anyone's inbox.
pub const RESET_REQUESTS_PER_ADDRESS: Limit = Limit {
    max: 3,
    window_secs: 900,
};
/// Password reset requests per client address group in 15 minutes, whatever the addresses.
pub const RESET_REQUESTS_PER_CLIENT: Limit = Limit {
    max: 10,
    window_secs: 900,
};

/// One attempt counted in a bucket.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    /// Attempts in the window so far, this one included when it was allowed.
    pub hits: i64,
    /// Seconds until an attempt would be allowed again, when this one is over the limit.
    pub retry_after: Option<i64>,
}

impl Count {
    /// Whether this attempt is over the limit.
    pub fn is_over(&self) -> bool {
        self.retry_after.is_some()
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

/// The length of one slot of a window.
fn slot_secs(limit: Limit) -> i64 {
    (limit.window_secs / 15).max(1)
}

/// The start of the slot `now` falls in.
fn slot_start(now: i64, limit: Limit) -> i64 {
    now - now.rem_euclid(slot_secs(limit))
}

/// The earliest slot start still inside the window that ends at `now`.
fn oldest_counted(now: i64, limit: Limit) -> i64 {
    now - limit.window_secs - slot_secs(limit) + 1
}

/// Seconds until the oldest failures have left the window far enough for one more attempt:
/// `slots` (start, hits), oldest first, hold at least `limit.max` failures.
fn wait_for_room(slots: &[(i64, i64)], limit: Limit, now: i64) -> i64 {
    let mut remaining: i64 = slots.iter().map(|(_, hits)| hits).sum();
    let mut at = now;
    for (start, hits) in slots {
        if remaining < limit.max {
            break;
        }
        remaining -= hits;
        at = start + slot_secs(limit) + limit.window_secs;
    }
    (at - now).max(1)
}

/// Counts an attempt before it is checked and says whether it may go ahead: `None` while the
/// bucket is within its limit, else the seconds to wait. Counting first means a burst of
/// parallel attempts cannot all slip past a check made before any of them failed.
pub async fn reserve(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    Ok(count(conn, bucket, limit, now).await?.retry_after)
}

/// Counts an attempt before it is checked, as [`reserve`] does, and tells how many there were.
/// An attempt over the limit is taken back (refused attempts do not extend the wait).
pub async fn count(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> sqlx::Result<Count> {
    let (verdicts, hits) = reserve_counted(conn, bucket, limit, now, 1).await?;
    Ok(Count {
        hits,
        retry_after: verdicts.first().copied().flatten(),
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
/// order, whether it is over the limit: `Some(seconds to wait)` when it is. Those over it are
/// taken back.
///
/// The earlier slots of the window are read first and the current slot is counted up with one
/// atomic statement that returns its new total: attempts racing in one slot each see a distinct
/// total, so exactly as many pass as the limit leaves room for (an attempt over the limit is
/// only ever counted once the limit is full, and is taken back).
pub async fn reserve_many(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
    n: i64,
) -> sqlx::Result<Vec<Option<i64>>> {
    Ok(reserve_counted(conn, bucket, limit, now, n).await?.0)
}

/// [`reserve_many`], also telling the attempts in the window afterwards.
async fn reserve_counted(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
    n: i64,
) -> sqlx::Result<(Vec<Option<i64>>, i64)> {
    let slot = slot_start(now, limit);
    let mut slots = rate_limits::window_hits(conn, bucket, oldest_counted(now, limit)).await?;
    slots.retain(|(start, _)| *start < slot);
    let earlier: i64 = slots.iter().map(|(_, h)| h).sum();
    let current = rate_limits::hit_n(conn, bucket, slot, n).await?;
    let over = (earlier + current - limit.max).clamp(0, n);
    if over == 0 {
        return Ok((vec![None; n as usize], earlier + current));
    }
    rate_limits::unhit_n(conn, bucket, slot, over).await?;
    slots.push((slot, current - over));
    let retry_after = wait_for_room(&slots, limit, now);
    let verdicts = (1..=n)
        .map(|k| (k > n - over).then_some(retry_after))
        .collect();
    Ok((verdicts, earlier + current - over))
}

/// Gives back an attempt that succeeded, so that successes never use up the limit.
pub async fn release(
    conn: &mut AnyConnection,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> sqlx::Result<()> {
    rate_limits::unhit_n(conn, bucket, slot_start(now, limit), 1).await
}

/// Forgets a bucket's failures (after a success).
pub async fn reset(conn: &mut AnyConnection, bucket: &str) -> sqlx::Result<()> {
    rate_limits::clear(conn, bucket).await
}

/// Buckets known to be over their limit, each until it has room again, kept in memory. Attempts
/// over the limit are not counted, so until then a further failure there changes nothing:
/// whoever checks this first can answer 429 without a database write. Only ever a shortcut:
/// forgetting costs the next failure one write, which tells again.
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
        // Room comes at most a window and a slot from now; anything else is stale (the clock
        // moved).
        (ends > now && ends - now <= limit.window_secs + slot_secs(limit)).then_some(ends - now)
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

    const QUARTER: Limit = Limit {
        max: 5,
        window_secs: 900,
    };

    #[test]
    fn slots_are_a_fifteenth_of_the_window() {
        assert_eq!(slot_secs(QUARTER), 60);
        assert_eq!(slot_start(1_859, QUARTER), 1_800);
        assert_eq!(oldest_counted(1_859, QUARTER), 900);
        let minute = Limit {
            max: 30,
            window_secs: 60,
        };
        assert_eq!(slot_secs(minute), 4);
    }

    #[test]
    fn room_comes_when_the_oldest_failures_leave_the_window() {
        // Five failures at 04:28 (one slot): room at 04:28 + a slot + 15 minutes.
        assert_eq!(
            wait_for_room(&[(1_680, 5)], QUARTER, 1_700),
            1_680 + 60 + 900 - 1_700
        );
        // Two slots: the older one leaving is enough to get under five.
        assert_eq!(
            wait_for_room(&[(1_000, 1), (1_600, 4)], QUARTER, 1_700),
            1_000 + 960 - 1_700
        );
        assert_eq!(
            wait_for_room(&[(1_000, 2), (1_600, 4)], QUARTER, 1_700),
            1_000 + 960 - 1_700
        );
        assert_eq!(
            wait_for_room(&[(1_000, 1), (1_600, 5)], QUARTER, 1_700),
            1_600 + 960 - 1_700
        );
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
