//! How many refusals are written to the audit log one by one. A program (or an attacker)
//! presenting the same key from the same address for the same reason thousands of times a
//! second would bury the log and make every refusal cost an audit row; so each key, client
//! address and reason has a budget of entries per second (`KEYWARD_REFUSAL_AUDIT_PER_SECOND`,
//! 50 by default, 0 for no budget). Past it, refusals are counted, and one entry per key,
//! address and reason says how many more there were, written when the second is over (by the
//! refusal writer's next batch, its own timer, or a flush). Usage counts and metrics still
//! count every refusal; a replaced secret presented again is always written.

use std::time::Duration;

use foldhash::HashMap;
use tokio::time::Instant;

use super::Refusal;

/// How long a budget lasts before it starts again.
pub(super) const WINDOW: Duration = Duration::from_secs(1);

/// The refusal writer's budgets (one task owns it: no lock).
pub(super) struct AuditBudget {
    per_window: u32,
    started: Instant,
    groups: HashMap<Group, Spent>,
    /// How many groups hold refusals past their budget.
    holding: usize,
    /// Summaries of windows that are over, to be written with the next batch; kept until a
    /// batch that holds them commits.
    unwritten: Vec<Summary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Group {
    key_id: String,
    client_ip: String,
    refusal: Refusal,
}

#[derive(Debug, Default)]
struct Spent {
    written: u32,
    held: Option<Held>,
}

/// Refusals of one group past its budget.
#[derive(Debug, Clone, Copy)]
struct Held {
    count: u64,
    first_at: i64,
    last_at: i64,
    /// For wrong secrets, how many in a row the last one was.
    last_in_row: Option<i64>,
}

/// One entry that stands for refusals past the budget.
#[derive(Debug, Clone)]
pub(super) struct Summary {
    pub at: i64,
    pub key_id: String,
    pub client_ip: String,
    pub details: String,
}

impl AuditBudget {
    pub fn new(per_window: u32, now: Instant) -> Self {
        AuditBudget {
            per_window,
            started: now,
            groups: HashMap::default(),
            holding: 0,
            unwritten: Vec::new(),
        }
    }

    /// Whether this refusal gets an entry of its own; if not, it is counted for the summary.
    /// `at` is when it was presented (the service's clock), `in_row` how many wrong secrets
    /// in a row it was.
    pub fn admit(
        &mut self,
        key_id: &str,
        client_ip: &str,
        refusal: Refusal,
        at: i64,
        in_row: Option<i64>,
    ) -> bool {
        if self.per_window == 0 {
            return true;
        }
        let group = Group {
            key_id: key_id.to_string(),
            client_ip: client_ip.to_string(),
            refusal,
        };
        let spent = self.groups.entry(group).or_default();
        if spent.written < self.per_window {
            spent.written += 1;
            return true;
        }
        let held = spent.held.get_or_insert_with(|| {
            self.holding += 1;
            Held {
                count: 0,
                first_at: at,
                last_at: at,
                last_in_row: None,
            }
        });
        held.count += 1;
        held.first_at = held.first_at.min(at);
        held.last_at = held.last_at.max(at);
        if in_row.is_some() {
            held.last_in_row = in_row;
        }
        false
    }

    /// When the window ends, if anything waits to be written then.
    pub fn deadline(&self) -> Option<Instant> {
        let waiting = !self.unwritten.is_empty() || self.holding > 0;
        waiting.then_some(self.started + WINDOW)
    }

    /// Ends the window if it is over (or at once with `force`): its counts become summaries
    /// and every group starts again.
    pub fn turn(&mut self, now: Instant, force: bool) {
        if !force && now < self.started + WINDOW {
            return;
        }
        self.started = now;
        self.holding = 0;
        let per_window = self.per_window;
        for (group, spent) in self.groups.drain() {
            if let Some(held) = spent.held {
                self.unwritten.push(summary(group, held, per_window));
            }
        }
    }

    /// The summaries to write with the next batch.
    pub fn unwritten(&self) -> &[Summary] {
        &self.unwritten
    }

    /// The first `n` summaries were committed.
    pub fn written(&mut self, n: usize) {
        self.unwritten.drain(..n.min(self.unwritten.len()));
    }
}

fn summary(group: Group, held: Held, per_window: u32) -> Summary {
    let mut reason = group.refusal.reason().to_string();
    if let Some(n) = held.last_in_row {
        reason.push_str(&format!(" (the last {n} in a row)"));
    }
    let times = if held.first_at / 60 == held.last_at / 60 {
        crate::clock::format_utc(held.first_at)
    } else {
        format!(
            "{} to {}",
            crate::clock::format_utc(held.first_at),
            crate::clock::format_utc(held.last_at)
        )
    };
    let more = if held.count == 1 {
        "1 more refusal".to_string()
    } else {
        format!("{} more refusals", held.count)
    };
    Summary {
        at: held.last_at,
        key_id: group.key_id,
        client_ip: group.client_ip,
        details: format!(
            "{reason}: {more} at {times}, counted in this one entry (past {per_window} a \
             second for one key, address and reason)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(per_window: u32) -> (AuditBudget, Instant) {
        let t0 = Instant::now();
        (AuditBudget::new(per_window, t0), t0)
    }

    #[test]
    fn past_the_budget_refusals_are_counted_into_one_summary_per_key_address_and_reason() {
        let (mut b, t0) = budget(2);
        let wrong = |b: &mut AuditBudget, key: &str, ip: &str, n: i64| {
            b.admit(key, ip, Refusal::WrongSecret, 1_000 + n, Some(n))
        };
        assert!(wrong(&mut b, "k1", "10.0.0.1", 1));
        assert!(wrong(&mut b, "k1", "10.0.0.1", 2));
        assert!(!wrong(&mut b, "k1", "10.0.0.1", 3));
        assert!(!wrong(&mut b, "k1", "10.0.0.1", 4));
        // Another address, another key, another reason: budgets of their own.
        assert!(wrong(&mut b, "k1", "10.0.0.2", 5));
        assert!(wrong(&mut b, "k2", "10.0.0.1", 1));
        assert!(b.admit("k1", "10.0.0.1", Refusal::Locked, 1_010, None));
        assert_eq!(b.deadline(), Some(t0 + WINDOW));

        b.turn(t0 + WINDOW / 2, false);
        assert!(b.unwritten().is_empty(), "the window is not over");
        assert!(!wrong(&mut b, "k1", "10.0.0.1", 6));

        b.turn(t0 + WINDOW, false);
        let s = b.unwritten();
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].key_id.as_str(), s[0].client_ip.as_str()),
            ("k1", "10.0.0.1")
        );
        assert_eq!(s[0].at, 1_006);
        assert!(
            s[0].details.starts_with(
                "wrong secret (the last 6 in a row): 3 more refusals at 1970-01-01 00:16 UTC"
            ),
            "{}",
            s[0].details
        );
        // A new window: the group writes again.
        assert!(wrong(&mut b, "k1", "10.0.0.1", 7));
        b.written(1);
        assert!(b.unwritten().is_empty());
        assert_eq!(b.deadline(), None, "nothing held");
    }

    #[test]
    fn a_summary_stays_until_written_and_a_forced_turn_ends_the_window_early() {
        let (mut b, t0) = budget(1);
        assert!(b.admit("k", "::1", Refusal::Inactive, 5, None));
        assert!(!b.admit("k", "::1", Refusal::Inactive, 200, None));
        b.turn(t0, true);
        assert_eq!(b.unwritten().len(), 1);
        assert!(
            b.unwritten()[0]
                .details
                .starts_with("key inactive: 1 more refusal at 1970-01-01 00:03 UTC"),
            "{}",
            b.unwritten()[0].details
        );
        // Not committed: still there at the next turn, beside the new window's.
        assert!(b.admit("k", "::1", Refusal::Inactive, 300, None));
        assert!(!b.admit("k", "::1", Refusal::Inactive, 301, None));
        b.turn(t0 + WINDOW, false);
        assert_eq!(b.unwritten().len(), 2);
        b.written(2);
        assert!(b.unwritten().is_empty());
    }

    #[test]
    fn a_budget_of_zero_writes_every_refusal() {
        let (mut b, _) = budget(0);
        for n in 0..1_000 {
            assert!(b.admit("k", "::1", Refusal::WrongSecret, n, Some(n)));
        }
        assert_eq!(b.deadline(), None);
    }
}
