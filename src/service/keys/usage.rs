//! A key's usage over time (SPEC §10): the hourly counts the key checks gathered, as hours or
//! UTC days, every bucket of the window present (zeros where nothing happened), for the chart
//! on key details and `GET /api/v1/apikeys/{id}/usage`.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use crate::domain::Actor;
use crate::error::AppError;
use crate::service::key_auth::usage::{Outcome, hour_of};
use crate::service::repo::key_usage;

use super::{Scope, load};

/// The size of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    /// `hour` or `day`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// Seconds in one bucket.
    pub fn seconds(self) -> i64 {
        match self {
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    /// The start of the bucket holding `at`.
    pub fn start_of(self, at: i64) -> i64 {
        at - at.rem_euclid(self.seconds())
    }

    /// Most buckets one answer holds: 31 days of hours, 400 days.
    pub fn most_buckets(self) -> i64 {
        match self {
            Granularity::Hour => 24 * 31,
            Granularity::Day => 400,
        }
    }
}

/// The counts of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Unix seconds at its start.
    pub start: i64,
    pub accepted: i64,
    /// Refusals by reason (only reasons that happened).
    pub refused: BTreeMap<Outcome, i64>,
}

impl Bucket {
    /// All refusals in the bucket.
    pub fn refused_total(&self) -> i64 {
        self.refused.values().sum()
    }
}

/// A key's usage: buckets from `from` (inclusive) to `to` (exclusive), oldest first.
#[derive(Debug, Clone)]
pub struct Usage {
    pub key_id: String,
    pub granularity: Granularity,
    pub from: i64,
    pub to: i64,
    pub buckets: Vec<Bucket>,
}

impl Usage {
    /// The sum over the window, as one bucket starting at `from`.
    pub fn total(&self) -> Bucket {
        let mut sum = Bucket {
            start: self.from,
            ..Bucket::default()
        };
        for b in &self.buckets {
            sum.accepted += b.accepted;
            for (o, n) in &b.refused {
                *sum.refused.entry(*o).or_default() += n;
            }
        }
        sum
    }
}

/// Why a usage window cannot be answered (the field at fault and what is wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError {
    pub field: &'static str,
    pub message: String,
}

/// The window `from..to` rounded out to whole buckets and checked: `to` after `from`, at most
/// [`Granularity::most_buckets`] buckets.
pub fn window(from: i64, to: i64, granularity: Granularity) -> Result<(i64, i64), WindowError> {
    let start = granularity.start_of(from);
    let step = granularity.seconds();
    let end = granularity.start_of(to.saturating_add(step - 1));
    if end <= start {
        return Err(WindowError {
            field: "to",
            message: "must be later than from".into(),
        });
    }
    if (end - start) / step > granularity.most_buckets() {
        return Err(WindowError {
            field: "from",
            message: format!(
                "the window holds more than {} buckets of one {}; ask for a shorter one or by day",
                granularity.most_buckets(),
                granularity.as_str()
            ),
        });
    }
    Ok((start, end))
}

/// The usage of a key the actor may see in this scope, over `from..to` (already whole buckets,
/// see [`window`]). Counts not yet flushed from memory are not in it (at most
/// `usage::FLUSH_EVERY` behind).
pub async fn usage(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    id: &str,
    (from, to): (i64, i64),
    granularity: Granularity,
) -> Result<Usage, AppError> {
    let key = load(conn, actor, scope, id).await?;
    let cells = key_usage::cells(conn, &key.id, hour_of(from), to).await?;
    let step = granularity.seconds();
    let mut buckets: Vec<Bucket> = (0..(to - from) / step)
        .map(|i| Bucket {
            start: from + i * step,
            ..Bucket::default()
        })
        .collect();
    for cell in cells {
        let Some(outcome) = Outcome::parse(&cell.outcome) else {
            continue;
        };
        let index = (granularity.start_of(cell.hour) - from) / step;
        let Some(bucket) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) else {
            continue;
        };
        if outcome == Outcome::Accepted {
            bucket.accepted += cell.count;
        } else {
            *bucket.refused.entry(outcome).or_default() += cell.count;
        }
    }
    Ok(Usage {
        key_id: key.id,
        granularity,
        from,
        to,
        buckets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_round_out_to_whole_buckets() {
        assert_eq!(
            window(90_000, 90_001, Granularity::Day),
            Ok((86_400, 172_800))
        );
        assert_eq!(window(3_600, 7_200, Granularity::Hour), Ok((3_600, 7_200)));
        assert_eq!(
            window(7_200, 3_600, Granularity::Hour).unwrap_err().field,
            "to"
        );
        assert_eq!(
            window(0, 32 * 86_400, Granularity::Hour).unwrap_err().field,
            "from"
        );
        assert!(window(0, 31 * 86_400, Granularity::Hour).is_ok());
    }
}
