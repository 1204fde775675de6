//! Time as a dependency: rules ask a `Clock`, so tests move time instead of waiting for it.

use std::sync::Mutex;

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

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

/// A Unix time as the API writes it: RFC 3339 in UTC to the second (`2026-12-04T10:00:00Z`);
/// `None` outside the times chrono represents.
pub fn rfc3339(secs: i64) -> Option<String> {
    let t = Utc.timestamp_opt(secs, 0).single()?;
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Signed and longer years: chrono's own formatting.
        return Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    // Four-digit years (every time the API meets in practice), written digit by digit:
    // chrono's formatter costs several times as much, and an answer writes up to four.
    let mut text = [0u8; 20];
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (at..at + width).rev() {
            text[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year as u32, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    for (at, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ] {
        text[at] = sep;
    }
    // ASCII digits and separators: always UTF-8.
    String::from_utf8(text.to_vec()).ok()
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
    fn times_are_written_as_chrono_writes_them() {
        let chrono = |secs: i64| {
            Utc.timestamp_opt(secs, 0)
                .single()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        let mut times = vec![
            0,
            -1,
            1,
            951_782_400, // 2000-02-29
            1_796_378_400,
            253_402_300_799, // 9999-12-31T23:59:59
            253_402_300_800, // 10000-01-01
            -62_167_219_200, // 0000-01-01
            -62_167_219_201, // -0001-12-31T23:59:59
            i64::MAX,
            i64::MIN,
        ];
        // Every day of a leap year and then some, at varied times of day.
        times.extend((0..800).map(|d| 946_684_800 + d * 86_400 + (d * 3_797) % 86_400));
        for secs in times {
            assert_eq!(rfc3339(secs), chrono(secs), "{secs}");
        }
    }

    #[test]
    fn utc_format_is_absolute() {
        assert_eq!(format_utc(1_795_514_400), "2026-11-24 10:00 UTC");
    }
}
