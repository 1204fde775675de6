//! The key list's filters by use (issue 18): keys expiring soon, never used, unused for a
//! while, refused for a reason lately. Shared by the Access keys tab, its export, the REST list
//! and export, and the overview's tiles, whose numbers are counts of these same filters.

use crate::service::key_auth::usage::{Outcome, hour_of};
use crate::service::repo::keys::ListFilter;

/// Every refusal reason (every outcome but accepted, which `Outcome::ALL` lists first).
pub const REFUSALS: &[Outcome] = Outcome::ALL.split_at(1).1;

/// The most days a usage filter looks ahead or back.
pub const MOST_DAYS: i64 = 3650;
/// The window of `refused_for` when `refused_within` is not given.
pub const DEFAULT_REFUSED_DAYS: i64 = 7;

/// Keys by their use; every part optional, all parts given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// Not yet expired, and expiring within this many days.
    pub expires_within: Option<i64>,
    /// Never accepted.
    pub never_used: bool,
    /// Accepted once, but not in this many days.
    pub unused_for: Option<i64>,
    /// Refused (for this reason, or any reason when `None`) within `days`.
    pub refused: Option<Refused>,
}

/// Refused lately: the reason (`None`: any) and the window in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub reason: Option<Outcome>,
    pub days: i64,
}

/// A filter value that cannot be read: the query parameter and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub field: &'static str,
    pub message: String,
}

/// The query parameters, as given (empty: not given).
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageParams<'a> {
    pub expires_within: &'a str,
    pub never_used: &'a str,
    pub unused_for: &'a str,
    pub refused_for: &'a str,
    pub refused_within: &'a str,
}

fn days(field: &'static str, raw: &str) -> Result<Option<i64>, FilterError> {
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<i64>() {
        Ok(n) if (1..=MOST_DAYS).contains(&n) => Ok(Some(n)),
        _ => Err(FilterError {
            field,
            message: format!("must be a whole number of days from 1 to {MOST_DAYS}"),
        }),
    }
}

/// The first hour of a window of `days` ending with the hour holding `now` (that hour
/// included): the last `days × 24` hours of counts.
pub fn since_hour(now: i64, days: i64) -> i64 {
    hour_of(now) - (days * 24 - 1) * 3600
}

impl UsageFilter {
    /// Reads the query parameters `expires_within`, `never_used` (`true`/`false`),
    /// `unused_for`, `refused_for` (a refusal reason or `any`) and `refused_within` (days, 7 when
    /// not given; only with `refused_for`).
    pub fn parse(p: UsageParams<'_>) -> Result<Self, FilterError> {
        let never_used = match p.never_used {
            "" | "false" => false,
            "true" => true,
            _ => {
                return Err(FilterError {
                    field: "never_used",
                    message: "must be true or false".into(),
                });
            }
        };
        let reasons = || {
            REFUSALS
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let within = days("refused_within", p.refused_within)?;
        let refused = match p.refused_for {
            "" => {
                if within.is_some() {
                    return Err(FilterError {
                        field: "refused_within",
                        message: "needs refused_for (a reason, or any)".into(),
                    });
                }
                None
            }
            "any" => Some(None),
            raw => match Outcome::parse(raw).filter(|o| *o != Outcome::Accepted) {
                Some(o) => Some(Some(o)),
                None => {
                    return Err(FilterError {
                        field: "refused_for",
                        message: format!("must be any or one of {}", reasons()),
                    });
                }
            },
        };
        Ok(UsageFilter {
            expires_within: days("expires_within", p.expires_within)?,
            never_used,
            unused_for: days("unused_for", p.unused_for)?,
            refused: refused.map(|reason| Refused {
                reason,
                days: within.unwrap_or(DEFAULT_REFUSED_DAYS),
            }),
        })
    }

    /// Reads the parameters as a console link gives them: a part it cannot read is left out
    /// (the list shows as if it were not given, as with its other filters).
    pub fn lenient(p: UsageParams<'_>) -> Self {
        let part = |only: UsageParams<'_>| UsageFilter::parse(only).unwrap_or_default();
        let none = UsageParams::default();
        let mut f = part(UsageParams {
            expires_within: p.expires_within,
            ..none
        });
        f.never_used = part(UsageParams {
            never_used: p.never_used,
            ..none
        })
        .never_used;
        f.unused_for = part(UsageParams {
            unused_for: p.unused_for,
            ..none
        })
        .unused_for;
        f.refused = UsageFilter::parse(UsageParams {
            refused_for: p.refused_for,
            refused_within: p.refused_within,
            ..none
        })
        .or_else(|_| {
            UsageFilter::parse(UsageParams {
                refused_for: p.refused_for,
                ..none
            })
        })
        .unwrap_or_default()
        .refused;
        f
    }

    /// Whether any part is given.
    pub fn is_empty(&self) -> bool {
        *self == UsageFilter::default()
    }

    /// The query parameters that give this filter back (for links).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(d) = self.expires_within {
            pairs.push(("expires_within", d.to_string()));
        }
        if self.never_used {
            pairs.push(("never_used", "true".to_string()));
        }
        if let Some(d) = self.unused_for {
            pairs.push(("unused_for", d.to_string()));
        }
        if let Some(r) = self.refused {
            pairs.push((
                "refused_for",
                r.reason.map_or("any", |o| o.as_str()).to_string(),
            ));
            pairs.push(("refused_within", r.days.to_string()));
        }
        pairs
    }

    /// The filter in words, one phrase per part ("expiring within 14 days").
    pub fn phrases(&self) -> Vec<String> {
        let plural = |n: i64| if n == 1 { "" } else { "s" };
        let mut out = Vec::new();
        if let Some(d) = self.expires_within {
            out.push(format!("expiring within {d} day{}", plural(d)));
        }
        if self.never_used {
            out.push("never used".to_string());
        }
        if let Some(d) = self.unused_for {
            out.push(format!(
                "used before, but not in the last {d} day{}",
                plural(d)
            ));
        }
        if let Some(r) = self.refused {
            let why = match r.reason {
                Some(o) => format!(" ({})", o.label().to_lowercase()),
                None => String::new(),
            };
            out.push(format!(
                "refused{why} in the last {} day{}",
                r.days,
                plural(r.days)
            ));
        }
        out
    }

    /// Narrows a repository filter to these keys at `now`.
    pub(crate) fn apply(&self, filter: &mut ListFilter, now: i64) {
        filter.expires_by = self.expires_within.map(|d| now + d * 86_400);
        filter.never_used = self.never_used;
        filter.last_used_before = self.unused_for.map(|d| now - d * 86_400);
        filter.refused_since = self.refused.map(|r| {
            let reasons = match r.reason {
                Some(o) => vec![o.as_str().to_string()],
                None => REFUSALS.iter().map(|o| o.as_str().to_string()).collect(),
            };
            (since_hour(now, r.days), reasons)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<UsageFilter, FilterError> {
        let get = |k: &str| pairs.iter().find(|p| p.0 == k).map_or("", |p| p.1);
        UsageFilter::parse(UsageParams {
            expires_within: get("expires_within"),
            never_used: get("never_used"),
            unused_for: get("unused_for"),
            refused_for: get("refused_for"),
            refused_within: get("refused_within"),
        })
    }

    #[test]
    fn filters_read_back_from_their_own_links() {
        let f = parse(&[
            ("expires_within", "14"),
            ("never_used", "true"),
            ("unused_for", "30"),
            ("refused_for", "wrong_secret"),
        ])
        .unwrap();
        assert_eq!(
            f.refused,
            Some(Refused {
                reason: Some(Outcome::WrongSecret),
                days: 7
            })
        );
        let pairs = f.pairs();
        let back: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(parse(&back).unwrap(), f);
        assert!(parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (pairs, field) in [
            (vec![("expires_within", "0")], "expires_within"),
            (vec![("expires_within", "soon")], "expires_within"),
            (vec![("unused_for", "3651")], "unused_for"),
            (vec![("never_used", "yes")], "never_used"),
            (vec![("refused_for", "accepted")], "refused_for"),
            (vec![("refused_within", "7")], "refused_within"),
            (
                vec![("refused_for", "any"), ("refused_within", "-1")],
                "refused_within",
            ),
        ] {
            assert_eq!(parse(&pairs).unwrap_err().field, field, "{pairs:?}");
        }
    }

    #[test]
    fn the_refusals_are_what_a_refused_key_counts_as_and_never_accepted() {
        use crate::service::key_auth::Refusal;
        assert!(!REFUSALS.contains(&Outcome::Accepted));
        for refusal in [
            Refusal::WrongSecret,
            Refusal::Inactive,
            Refusal::Expired,
            Refusal::Locked,
            Refusal::OwnerDisabled,
            Refusal::ForbiddenNetwork,
        ] {
            let counted = Outcome::of_refusal(refusal).unwrap();
            assert!(REFUSALS.contains(&counted), "{refusal:?}");
        }
        assert!(REFUSALS.contains(&Outcome::RateLimited));
    }

    #[test]
    fn a_window_of_days_is_that_many_whole_hours_up_to_now() {
        assert_eq!(since_hour(7 * 86_400 + 1_800, 7), 3_600);
    }
}
