//! How many refusals are written to the audit log one by one. A program (or an attacker)
//! presenting the same key from the same address for the same reason thousands of times a
//! second would bury the log and make every refusal cost an audit row; so each key, client
//! address and reason has a budget of entries per second (`KEYWARD_REFUSAL_AUDIT_PER_SECOND`,
//! 50 by default, 0 for no budget). Past it, refusals are counted, and one entry per key,
//! address and reason (`key.auth_refused_counted`) says how many more there were, written when
//! the second is over (after the refusal writer's next batch, by its own timer, or at a flush).
//! The lockout and usage counts and metrics still count every refusal; a replaced secret
//! presented again is always written.

use std::time::Duration;

use foldhash::HashMap;
use tokio::time::Instant;

use super::Refusal;

/// How long a budget lasts before it starts again.
pub(super) const WINDOW: Duration = Duration::from_secs(1);

/// Summaries kept while they cannot be written (the database refuses); past this the oldest
/// are given up, with an error in the log that says how many.
const MOST_UNWRITTEN: usize = 10_000;

/// The audit action of a summary: not `key.auth_refused`, so that counting those entries
/// never silently undercounts refusals.
pub(super) const COUNTED_ACTION: &str = "key.auth_refused_counted";

/// The refusal writer's budgets (one task owns it: no lock).
pub(super) struct AuditBudget {
    per_window: u32,
    started: Instant,
    groups: HashMap<Group, Spent>,
    /// How many groups hold refusals past their budget.
    holding: usize,
    /// Refusals of the batch being written that are past their budget: counted only once
    /// their batch commits (a failed batch's refusals are neither counted nor audited).
    staged: Vec<(Group, i64, Option<i64>)>,
    /// Summaries of windows that are over; kept until they are written.
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
            staged: Vec::new(),
            unwritten: Vec::new(),
        }
    }

    /// Whether this refusal gets an entry of its own; if not, it is staged for the summary
    /// (see [`AuditBudget::settle`]). `at` is when it was presented (the service's clock),
    /// `in_row` how many wrong secrets in a row it was.
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
        match self.groups.get_mut(&group) {
            None => {
                self.groups.insert(
                    group,
                    Spent {
                        written: 1,
                        held: None,
                    },
                );
                true
            }
            Some(spent) if spent.written < self.per_window => {
                spent.written += 1;
                true
            }
            Some(_) => {
                self.staged.push((group, at, in_row));
                false
            }
        }
    }

    /// The batch whose refusals were admitted committed (`true`: its staged refusals count
    /// towards their summaries) or failed (`false`: they are forgotten with it).
    pub fn settle(&mut self, committed: bool) {
        if !committed {
            self.staged.clear();
            return;
        }
        for (group, at, in_row) in self.staged.drain(..) {
            let spent = self.groups.entry(group).or_default();
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
        }
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
        let used = self.groups.len();
        for (group, spent) in self.groups.drain() {
            if let Some(held) = spent.held {
                self.unwritten.push(summary(group, held, per_window));
            }
        }
        // A flood of many groups must not keep its memory for ever.
        if self.groups.capacity() > 1024 && self.groups.capacity() > 4 * used {
            self.groups.shrink_to(used);
        }
        if self.unwritten.len() > MOST_UNWRITTEN {
            let given_up = self.unwritten.len() - MOST_UNWRITTEN;
            self.unwritten.drain(..given_up);
            tracing::error!(
                given_up,
                "audit entries counting refused key checks could not be written; the oldest \
                 were given up"
            );
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
    let times = if held.first_at / 60 == held.last_at / 60 {
        format!("at {}", crate::clock::format_utc(held.first_at))
    } else {
        format!(
            "from {} to {}",
            crate::clock::format_utc(held.first_at),
            crate::clock::format_utc(held.last_at)
        )
    };
    let times_word = if held.count == 1 { "time" } else { "times" };
    let in_row = match held.last_in_row {
        Some(n) => format!(" (the last no. {n} in a row)"),
        None => String::new(),
    };
    Summary {
        at: held.last_at,
        key_id: group.key_id,
        client_ip: group.client_ip,
        details: format!(
            "{reason}, {count} more {times_word} {times}{in_row}, counted together: past \
             {per_window} a second from one address",
            reason = group.refusal.reason(),
            count = held.count,
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

    fn wrong(b: &mut AuditBudget, key: &str, ip: &str, n: i64) -> bool {
        b.admit(key, ip, Refusal::WrongSecret, 1_000 + n, Some(n))
    }

    #[test]
    fn past_the_budget_refusals_are_counted_into_one_summary_per_key_address_and_reason() {
        let (mut b, t0) = budget(2);
        assert!(wrong(&mut b, "k1", "10.0.0.1", 1));
        assert!(wrong(&mut b, "k1", "10.0.0.1", 2));
        assert!(!wrong(&mut b, "k1", "10.0.0.1", 3));
        assert!(!wrong(&mut b, "k1", "10.0.0.1", 4));
        // Another address, another key, another reason: budgets of their own.
        assert!(wrong(&mut b, "k1", "10.0.0.2", 5));
        assert!(wrong(&mut b, "k2", "10.0.0.1", 1));
        assert!(b.admit("k1", "10.0.0.1", Refusal::Locked, 1_010, None));
        assert_eq!(
            b.deadline(),
            None,
            "nothing counted before the batch commits"
        );
        b.settle(true);
        assert_eq!(b.deadline(), Some(t0 + WINDOW));

        b.turn(t0 + WINDOW / 2, false);
        assert!(b.unwritten().is_empty(), "the window is not over");
        assert!(!wrong(&mut b, "k1", "10.0.0.1", 6));
        b.settle(true);

        b.turn(t0 + WINDOW, false);
        let s = b.unwritten();
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].key_id.as_str(), s[0].client_ip.as_str()),
            ("k1", "10.0.0.1")
        );
        assert_eq!(s[0].at, 1_006);
        assert_eq!(
            s[0].details,
            "wrong secret, 3 more times at 1970-01-01 00:16 UTC (the last no. 6 in a row), \
             counted together: past 2 a second from one address"
        );
        // A new window: the group writes again.
        assert!(wrong(&mut b, "k1", "10.0.0.1", 7));
        b.written(1);
        assert!(b.unwritten().is_empty());
        assert_eq!(b.deadline(), None, "nothing held");
    }

    #[test]
    fn a_failed_batch_counts_nothing_towards_a_summary() {
        let (mut b, t0) = budget(1);
        assert!(wrong(&mut b, "k", "::1", 1));
        assert!(!wrong(&mut b, "k", "::1", 2));
        b.settle(false);
        assert!(!wrong(&mut b, "k", "::1", 3));
        b.settle(true);
        b.turn(t0 + WINDOW, false);
        assert_eq!(b.unwritten().len(), 1);
        assert!(
            b.unwritten()[0]
                .details
                .starts_with("wrong secret, 1 more time at 1970-01-01 00:16 UTC (the last no. 3"),
            "{}",
            b.unwritten()[0].details
        );
    }

    #[test]
    fn a_summary_stays_until_written_and_a_forced_turn_ends_the_window_early() {
        let (mut b, t0) = budget(1);
        assert!(b.admit("k", "::1", Refusal::Inactive, 5, None));
        assert!(!b.admit("k", "::1", Refusal::Inactive, 200, None));
        b.settle(true);
        b.turn(t0, true);
        assert_eq!(b.unwritten().len(), 1);
        assert_eq!(
            b.unwritten()[0].details,
            "key inactive, 1 more time at 1970-01-01 00:03 UTC, counted together: past 1 a \
             second from one address"
        );
        // Not written: still there at the next turn, before the new window's.
        assert!(b.admit("k", "::1", Refusal::Inactive, 300, None));
        assert!(!b.admit("k", "::1", Refusal::Inactive, 301, None));
        assert!(!b.admit("k", "::1", Refusal::Inactive, 400, None));
        b.settle(true);
        b.turn(t0 + WINDOW, false);
        assert_eq!(b.unwritten().len(), 2);
        assert!(
            b.unwritten()[1].details.starts_with(
                "key inactive, 2 more times from 1970-01-01 00:05 UTC to 1970-01-01 00:06 UTC,"
            ),
            "{}",
            b.unwritten()[1].details
        );
        // Written one: the older goes, the newer waits.
        b.written(1);
        assert_eq!(b.unwritten().len(), 1);
        assert_eq!(b.unwritten()[0].at, 400);
    }

    #[test]
    fn a_budget_of_zero_writes_every_refusal() {
        let (mut b, _) = budget(0);
        for n in 0..1_000 {
            assert!(b.admit("k", "::1", Refusal::WrongSecret, n, Some(n)));
        }
        b.settle(true);
        assert_eq!(b.deadline(), None);
    }
}
