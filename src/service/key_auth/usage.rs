//! Usage counts (SPEC §10): every judged presentation of an existing key is counted in memory
//! by key, hour and outcome (a lock and a lookup; an allocation only for a key not yet counted
//! since the last flush), and a flush adds what was counted to the database in one
//! transaction, every [`FLUSH_EVERY`] and when the server stops. Adding (never overwriting)
//! lets several instances count the same key; a failed flush keeps its counts for the next.

use foldhash::HashMap;
use std::sync::Mutex;

use sqlx::AnyPool;

use super::Refusal;
use crate::service::repo::key_usage;

/// How often counts are written (SPEC §10: at least once a minute).
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Most keys counted between flushes; presentations of further keys are not counted until the
/// next flush (memory stays bounded whatever a flood of distinct key IDs does: only existing
/// keys are counted at all).
const MAX_KEYS: usize = 100_000;

/// What became of one presentation of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Accepted,
    WrongSecret,
    Inactive,
    Expired,
    Locked,
    OwnerDisabled,
    ForbiddenNetwork,
    RateLimited,
}

impl Outcome {
    /// Every outcome, accepted first, in the order charts stack them.
    pub const ALL: [Outcome; 8] = [
        Outcome::Accepted,
        Outcome::WrongSecret,
        Outcome::Inactive,
        Outcome::Expired,
        Outcome::Locked,
        Outcome::OwnerDisabled,
        Outcome::ForbiddenNetwork,
        Outcome::RateLimited,
    ];

    /// The name stored and answered by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::WrongSecret => "wrong_secret",
            Outcome::Inactive => "inactive",
            Outcome::Expired => "expired",
            Outcome::Locked => "locked",
            Outcome::OwnerDisabled => "owner_disabled",
            Outcome::ForbiddenNetwork => "forbidden_network",
            Outcome::RateLimited => "rate_limited",
        }
    }

    /// The outcome stored as `name`.
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// How a person reads it.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "Accepted",
            Outcome::WrongSecret => "Wrong secret",
            Outcome::Inactive => "Inactive",
            Outcome::Expired => "Expired",
            Outcome::Locked => "Locked",
            Outcome::OwnerDisabled => "Owner disabled",
            Outcome::ForbiddenNetwork => "Outside allowed networks",
            Outcome::RateLimited => "Rate limited",
        }
    }

    /// The outcome a refusal of an existing key counts as (`None`: no key to count against).
    pub fn of_refusal(refusal: Refusal) -> Option<Outcome> {
        match refusal {
            Refusal::Malformed | Refusal::NotFound => None,
            Refusal::WrongSecret => Some(Outcome::WrongSecret),
            Refusal::Inactive => Some(Outcome::Inactive),
            Refusal::Expired => Some(Outcome::Expired),
            Refusal::Locked => Some(Outcome::Locked),
            Refusal::OwnerDisabled => Some(Outcome::OwnerDisabled),
            Refusal::ForbiddenNetwork => Some(Outcome::ForbiddenNetwork),
        }
    }
}

/// The start of the UTC hour holding `at` (unix seconds).
pub fn hour_of(at: i64) -> i64 {
    at - at.rem_euclid(3600)
}

/// One key's counts: (hour, outcome, count).
type Cells = Vec<(i64, Outcome, i64)>;

/// Counts since the last flush: per key, (hour, outcome) → count.
#[derive(Default)]
pub struct UsageBook {
    counted: Mutex<HashMap<String, Cells>>,
}

impl UsageBook {
    /// Counts one presentation of `key_id` at `now` with `outcome`.
    pub fn count(&self, key_id: &str, outcome: Outcome, now: i64) {
        let hour = hour_of(now);
        let Ok(mut counted) = self.counted.lock() else {
            return;
        };
        if let Some(cells) = counted.get_mut(key_id) {
            add(cells, hour, outcome, 1);
        } else if counted.len() < MAX_KEYS {
            counted.insert(key_id.to_string(), vec![(hour, outcome, 1)]);
        }
    }

    /// Adds what was counted to the database and forgets it; on failure the counts are kept
    /// for the next flush (logged).
    pub async fn flush(&self, pool: &AnyPool) {
        let taken = match self.counted.lock() {
            Ok(mut counted) => std::mem::take(&mut *counted),
            Err(_) => return,
        };
        if taken.is_empty() {
            return;
        }
        if let Err(e) = write(pool, &taken).await {
            tracing::warn!(error = %e, "writing the usage counts of keys failed; kept for the next flush");
            if let Ok(mut counted) = self.counted.lock() {
                for (key_id, cells) in taken {
                    let mine = counted.entry(key_id).or_default();
                    for (hour, outcome, n) in cells {
                        add(mine, hour, outcome, n);
                    }
                }
            }
        }
    }

    /// The counts not yet written, summed over keys and hours (for tests and metrics).
    pub fn pending(&self) -> i64 {
        self.counted
            .lock()
            .map(|c| c.values().flatten().map(|(_, _, n)| n).sum())
            .unwrap_or(0)
    }
}

fn add(cells: &mut Cells, hour: i64, outcome: Outcome, n: i64) {
    match cells
        .iter_mut()
        .find(|(h, o, _)| *h == hour && *o == outcome)
    {
        Some(cell) => cell.2 += n,
        None => cells.push((hour, outcome, n)),
    }
}

async fn write(pool: &AnyPool, counted: &HashMap<String, Cells>) -> sqlx::Result<()> {
    let counts: Vec<key_usage::Added> = counted
        .iter()
        .flat_map(|(key_id, cells)| {
            cells
                .iter()
                .map(|(hour, outcome, n)| (key_id.as_str(), *hour, outcome.as_str(), *n))
        })
        .collect();
    let mut tx = crate::db::begin_write(pool).await?;
    key_usage::add_many(&mut tx, &counts).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_key_hour_and_outcome() {
        let book = UsageBook::default();
        book.count("k1", Outcome::Accepted, 7_200);
        book.count("k1", Outcome::Accepted, 10_799);
        book.count("k1", Outcome::Accepted, 10_800);
        book.count("k1", Outcome::WrongSecret, 7_300);
        book.count("k2", Outcome::Accepted, 7_300);
        let counted = book.counted.lock().unwrap();
        assert_eq!(
            counted["k1"],
            vec![
                (7_200, Outcome::Accepted, 2),
                (10_800, Outcome::Accepted, 1),
                (7_200, Outcome::WrongSecret, 1)
            ]
        );
        assert_eq!(counted["k2"], vec![(7_200, Outcome::Accepted, 1)]);
        drop(counted);
        assert_eq!(book.pending(), 5);
    }

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(hour_of(-1), -3600);
    }
}
