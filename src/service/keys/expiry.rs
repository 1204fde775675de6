//! How long a key lasts: the choices a form or the API offers, and the instant they resolve to.

use chrono::NaiveDate;

use crate::service::key_policy::LONGEST_DAYS;

/// The latest expiry accepted: the end of 2099.
const LATEST_EXPIRY: i64 = 4_102_444_799;

/// How long a key should last, as chosen in a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryChoice {
    Days(i64),
    Date(String),
    /// An exact instant (unix seconds), as the API gives it.
    At(i64),
    Never,
    /// What the key policy offers first (an API request that names no expiry).
    PolicyDefault,
}

impl ExpiryChoice {
    /// Reads the `validity` field (`30`…`365`, `custom`, `never`) and the custom date.
    /// A date typed while another choice is selected is an error, never silently dropped.
    pub fn from_form(validity: &str, custom_date: &str) -> Result<Self, String> {
        let typed = custom_date.trim();
        if validity != "custom" && !typed.is_empty() {
            let chosen = match validity {
                "keep" => "Keep".to_string(),
                "never" => "Never expire".to_string(),
                days if days.parse::<i64>().is_ok() => format!("{days} days"),
                _ => "another expiry".to_string(),
            };
            return Err(format!(
                "You typed the date {typed}, but “{chosen}” is chosen. Choose “Custom date” to \
                 use the date, or clear it."
            ));
        }
        match validity {
            "never" => Ok(ExpiryChoice::Never),
            "custom" => Ok(ExpiryChoice::Date(custom_date.trim().to_string())),
            other => other
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=LONGEST_DAYS).contains(d))
                .map(ExpiryChoice::Days)
                .ok_or_else(|| "Choose how long the key is valid.".to_string()),
        }
    }

    /// The expiry instant (unix seconds), `None` for never. A custom date lasts to the end of
    /// that day (UTC) and must lie in the future.
    pub fn resolve(&self, now: i64) -> Result<Option<i64>, String> {
        match self {
            ExpiryChoice::Never => Ok(None),
            ExpiryChoice::Days(d) => Ok(Some(now + d * 86_400)),
            ExpiryChoice::PolicyDefault => Ok(Some(
                now + crate::service::key_policy::DEFAULT_VALIDITY_DAYS * 86_400,
            )),
            ExpiryChoice::At(t) => {
                if *t <= now {
                    Err("Choose an expiry in the future.".into())
                } else if *t > LATEST_EXPIRY {
                    Err("Choose an expiry before 2100.".into())
                } else {
                    Ok(Some(*t))
                }
            }
            ExpiryChoice::Date(raw) => end_of_day(raw, now).map(Some),
        }
    }
}

/// The last second (UTC) of a typed `YYYY-MM-DD` date, which must lie in the future.
fn end_of_day(raw: &str, now: i64) -> Result<i64, String> {
    if raw.is_empty() {
        return Err("Enter the date the key expires.".into());
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("“{raw}” is not a date: use YYYY-MM-DD."))?;
    let end = day
        .and_hms_opt(23, 59, 59)
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| "That date cannot be used.".to_string())?;
    if end <= now {
        return Err("Choose a date in the future.".into());
    }
    if end > LATEST_EXPIRY {
        return Err("Choose a date before 2100.".into());
    }
    Ok(end)
}

/// An expiry in words, for the audit log.
pub(super) fn expiry_phrase(expires_at: Option<i64>) -> String {
    match expires_at {
        Some(t) => format!("expires {}", crate::clock::format_utc(t)),
        None => "never expires".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_428_000; // 2026-11-23 10:00 UTC

    #[test]
    fn validity_choices_resolve_against_now() {
        assert_eq!(
            ExpiryChoice::from_form("90", "")
                .unwrap()
                .resolve(NOW)
                .unwrap(),
            Some(NOW + 90 * 86_400)
        );
        assert_eq!(
            ExpiryChoice::from_form("never", "")
                .unwrap()
                .resolve(NOW)
                .unwrap(),
            None
        );
        // Any number of days up to ten years is read (the key policy's limit may be offered
        // when it is not among the usual choices; the key's rules decide); nothing else.
        assert_eq!(
            ExpiryChoice::from_form("45", "").unwrap(),
            ExpiryChoice::Days(45)
        );
        assert!(ExpiryChoice::from_form("0", "").is_err());
        assert!(ExpiryChoice::from_form("3651", "").is_err());
        assert!(ExpiryChoice::from_form("", "").is_err());
    }

    #[test]
    fn custom_dates_last_to_the_end_of_the_day_and_must_be_in_the_future() {
        let c = ExpiryChoice::from_form("custom", "2026-12-31").unwrap();
        assert_eq!(c.resolve(NOW).unwrap(), Some(1_798_761_599));
        assert_eq!(
            ExpiryChoice::from_form("custom", "2026-11-23")
                .unwrap()
                .resolve(NOW)
                .unwrap(),
            Some(NOW + 14 * 3600 - 1)
        );
        for (raw, message) in [
            ("2026-11-22", "future"),
            ("2026-02-30", "not a date"),
            ("tomorrow", "not a date"),
            ("", "Enter the date"),
            ("2100-01-01", "before 2100"),
        ] {
            let err = ExpiryChoice::from_form("custom", raw)
                .unwrap()
                .resolve(NOW)
                .unwrap_err();
            assert!(err.contains(message), "{raw}: {err}");
        }
    }
}
