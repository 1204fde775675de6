//! A key's rate limit (SPEC §10): a token bucket that holds `burst` requests and refills at
//! `per_second` requests a second. Optional; the rules of what a limit may be live here, for
//! the console and the API alike.

/// Fewest requests per second a limit may allow (one request every 100 seconds).
pub const MIN_PER_SECOND: f64 = 0.01;
/// Most requests per second, and the largest burst, a limit may name.
pub const MAX_RATE: f64 = 1_000_000.0;

/// A key's rate limit (serialised as the API writes it: `{per_second, burst}`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RateLimit {
    /// Requests per second the bucket refills with: 0.01 to 1,000,000, at most two decimals.
    pub per_second: f64,
    /// The most requests at once (the bucket's size): 1 to 1,000,000.
    pub burst: i64,
}

/// What is wrong with a rate limit as asked, and which of its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitError {
    /// `rate_per_second` or `rate_burst`.
    pub field: &'static str,
    pub message: String,
}

/// The field name of the rate in errors (the API calls it `rate_limit.per_second`).
pub const PER_SECOND_FIELD: &str = "rate_per_second";
/// The field name of the burst in errors (the API calls it `rate_limit.burst`).
pub const BURST_FIELD: &str = "rate_burst";

fn wrong(field: &'static str, message: &str) -> RateLimitError {
    RateLimitError {
        field,
        message: message.to_string(),
    }
}

impl RateLimit {
    /// A limit from numbers; a missing burst is the rate rounded up (at least 1).
    pub fn new(per_second: f64, burst: Option<f64>) -> Result<Self, RateLimitError> {
        let rate_message = "Requests per second must be a number from 0.01 to 1,000,000, with at most two decimals.";
        if !per_second.is_finite()
            || !(MIN_PER_SECOND..=MAX_RATE).contains(&per_second)
            || ((per_second * 100.0).round() - per_second * 100.0).abs() > 1e-6
        {
            return Err(wrong(PER_SECOND_FIELD, rate_message));
        }
        let per_second = (per_second * 100.0).round() / 100.0;
        let burst = burst.unwrap_or_else(|| per_second.ceil().max(1.0));
        if !burst.is_finite() || burst.fract() != 0.0 || !(1.0..=MAX_RATE).contains(&burst) {
            return Err(wrong(
                BURST_FIELD,
                "Burst must be a whole number from 1 to 1,000,000.",
            ));
        }
        Ok(RateLimit {
            per_second,
            burst: burst as i64,
        })
    }

    /// A limit from the console's two fields: both empty is no limit; an empty burst is the
    /// rate rounded up.
    pub fn from_form(per_second: &str, burst: &str) -> Result<Option<Self>, RateLimitError> {
        let (per_second, burst) = (per_second.trim(), burst.trim());
        if per_second.is_empty() {
            return if burst.is_empty() {
                Ok(None)
            } else {
                Err(wrong(
                    PER_SECOND_FIELD,
                    "Enter requests per second too, or leave both fields empty for no limit.",
                ))
            };
        }
        let number = |raw: &str| {
            raw.replace([',', '_'], "")
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
        };
        let rate = number(per_second).ok_or_else(|| {
            wrong(
                PER_SECOND_FIELD,
                "Requests per second must be a number such as 10 or 0.5.",
            )
        })?;
        let burst =
            match burst {
                "" => None,
                raw => Some(number(raw).ok_or_else(|| {
                    wrong(BURST_FIELD, "Burst must be a whole number such as 20.")
                })?),
            };
        Self::new(rate, burst).map(Some)
    }

    /// The stored form: two nullable columns.
    pub fn from_columns(per_second: Option<f64>, burst: Option<i64>) -> Option<Self> {
        match (per_second, burst) {
            (Some(per_second), Some(burst)) if per_second > 0.0 && burst >= 1 => {
                Some(RateLimit { per_second, burst })
            }
            _ => None,
        }
    }

    /// Whether `new` lets through no more than `old` does (`None`: no limit). Adding a limit,
    /// or lowering the rate or the burst, narrows; raising either or removing the limit widens.
    pub fn narrows(old: Option<RateLimit>, new: Option<RateLimit>) -> bool {
        match (old, new) {
            (_, None) => old.is_none(),
            (None, Some(_)) => true,
            (Some(o), Some(n)) => n.per_second <= o.per_second && n.burst <= o.burst,
        }
    }

    /// The rate as people write it: `5`, `0.5`, `12.25`.
    pub fn rate_text(&self) -> String {
        let text = format!("{:.2}", self.per_second);
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }

    /// In words, for audit entries and pages: `5 requests per second, burst 10`.
    pub fn describe(limit: Option<RateLimit>) -> String {
        match limit {
            None => "no rate limit".to_string(),
            Some(l) => format!(
                "{} request{} per second, burst {}",
                l.rate_text(),
                if l.per_second == 1.0 { "" } else { "s" },
                l.burst
            ),
        }
    }

    /// Seconds the bucket takes to fill from empty (at least 1): the window of the
    /// `RateLimit-Policy` header, whose quota is the burst.
    pub fn window_secs(&self) -> i64 {
        ((self.burst as f64 / self.per_second).ceil() as i64).max(1)
    }
}

/// `Retry-After` seconds for a wait in milliseconds: rounded up, at least 1.
pub fn retry_after_secs(retry_after_ms: i64) -> u64 {
    u64::try_from((retry_after_ms + 999) / 1000)
        .unwrap_or(0)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_defaults_to_the_rate_rounded_up() {
        assert_eq!(RateLimit::new(5.0, None).unwrap().burst, 5);
        assert_eq!(RateLimit::new(0.5, None).unwrap().burst, 1);
        assert_eq!(RateLimit::new(2.25, None).unwrap().burst, 3);
        assert_eq!(RateLimit::new(5.0, Some(20.0)).unwrap().burst, 20);
    }

    #[test]
    fn bad_values_name_their_field() {
        for rate in [0.0, -1.0, 0.001, 1_000_001.0, f64::NAN, 1.234] {
            assert_eq!(
                RateLimit::new(rate, None).unwrap_err().field,
                PER_SECOND_FIELD,
                "{rate}"
            );
        }
        for burst in [0.0, 1.5, 2_000_000.0, -3.0] {
            assert_eq!(
                RateLimit::new(5.0, Some(burst)).unwrap_err().field,
                BURST_FIELD
            );
        }
    }

    #[test]
    fn form_fields_read_as_people_type_them() {
        assert_eq!(RateLimit::from_form("", ""), Ok(None));
        assert_eq!(
            RateLimit::from_form(" 1,000 ", "").unwrap().unwrap().burst,
            1000
        );
        assert_eq!(
            RateLimit::from_form("", "5").unwrap_err().field,
            PER_SECOND_FIELD
        );
        assert_eq!(
            RateLimit::from_form("ten", "").unwrap_err().field,
            PER_SECOND_FIELD
        );
        assert_eq!(
            RateLimit::from_form("5", "x").unwrap_err().field,
            BURST_FIELD
        );
    }

    #[test]
    fn only_lower_limits_narrow() {
        let l = |r, b| Some(RateLimit::new(r, Some(b)).unwrap());
        assert!(RateLimit::narrows(None, l(5.0, 5.0)));
        assert!(RateLimit::narrows(l(5.0, 5.0), l(2.0, 5.0)));
        assert!(RateLimit::narrows(None, None));
        assert!(!RateLimit::narrows(l(5.0, 5.0), None));
        assert!(!RateLimit::narrows(l(5.0, 5.0), l(6.0, 5.0)));
        assert!(!RateLimit::narrows(l(5.0, 5.0), l(5.0, 6.0)));
    }

    #[test]
    fn described_in_words() {
        let l = RateLimit::new(0.5, Some(3.0)).unwrap();
        assert_eq!(l.rate_text(), "0.5");
        assert_eq!(
            RateLimit::describe(Some(l)),
            "0.5 requests per second, burst 3"
        );
        assert_eq!(l.window_secs(), 6);
        assert_eq!(RateLimit::describe(None), "no rate limit");
    }
}
