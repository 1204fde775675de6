//! Time as a dependency: rules ask a `Clock`, so tests move time instead of waiting for it.

use std::sync::Mutex;

use chrono::{DateTime, Duration, TimeZone, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// The current instant as unix seconds, the form stored in the database.
    fn unix(&self) -> i64 {
        self.now().timestamp()
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move; for tests and for replaying events.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A clock stopped at the given unix second.
    pub fn at_unix(secs: i64) -> Self {
        Self::new(Utc.timestamp_opt(secs, 0).single().unwrap_or_default())
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Sets the clock to an instant.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Formats unix seconds as `2026-11-24 10:00 UTC`.
pub fn format_utc(secs: i64) -> String {
    match Utc.timestamp_opt(secs, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => String::from("—"),
    }
}

/// A short relative hint such as "in 2 days" or "5 minutes ago", computed when the page is
/// rendered. Whole units, rounded down, except that a unit short by less than the next smaller
/// unit counts as whole: a key made for 90 days reads "in 90 days" a few minutes later, not
/// "in 89 days".
pub fn relative(secs: i64, now: i64) -> String {
    let delta = secs - now;
    let abs = delta.unsigned_abs();
    let (n, unit) = if abs < 60 {
        return String::from("just now");
    } else if abs < 3600 {
        ((abs + 1) / 60, "minute")
    } else if abs < 86_400 {
        ((abs + 59) / 3600, "hour")
    } else {
        ((abs + 3599) / 86_400, "day")
    };
    let plural = if n == 1 { "" } else { "s" };
    if delta > 0 {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_hints_read_naturally() {
        assert_eq!(relative(1000 + 2 * 86_400, 1000), "in 2 days");
        assert_eq!(relative(1000 - 300, 1000), "5 minutes ago");
        assert_eq!(relative(1000 + 3600, 1000), "in 1 hour");
        assert_eq!(relative(1010, 1000), "just now");
        // A 90-day key viewed minutes after it was made: 90 days, not 89.
        assert_eq!(relative(1000 + 90 * 86_400 - 600, 1000), "in 90 days");
        assert_eq!(relative(1000 + 90 * 86_400 - 2 * 3600, 1000), "in 89 days");
        assert_eq!(relative(1000 + 3 * 3600 - 30, 1000), "in 3 hours");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_unix(1_000_000);
        assert_eq!(clock.unix(), 1_000_000);
        clock.advance(Duration::minutes(31));
        assert_eq!(clock.unix(), 1_000_000 + 31 * 60);
    }

    #[test]
    fn utc_format_is_absolute() {
        assert_eq!(format_utc(1_795_514_400), "2026-11-24 10:00 UTC");
    }
}
