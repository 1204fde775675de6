//! This instance's wrong secrets handed to the refusal writer and not yet committed, per key.
//!
//! A refusal whose answer cannot depend on what the writer decides (no per-client limit
//! applies) is answered at once, without waiting for the commit, unless it could be the one
//! that locks its key: then the key's failure count as the check read it, plus this
//! instance's uncommitted wrong secrets, plus this one reach the threshold, and the check
//! waits for the commit as before. A right secret presented while wrong ones are uncommitted
//! waits for them before it resets the count, so the reset is not lost.
//!
//! The count a check read may be older than a commit that happened during the check (the
//! writer sets it in the key checks' memory before it tells this book): each commit has a
//! number, and a check that began before a key's last commit takes the count that commit
//! returned instead, when it is higher.

use foldhash::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most keys followed; beyond, keys without uncommitted refusals are dropped.
const MOST: usize = 10_000;

#[derive(Default)]
pub(super) struct Uncommitted {
    /// The number of the last batch the writer settled.
    commits: AtomicU64,
    keys: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    per_key: HashMap<String, Entry>,
    /// The batch at which keys were last dropped: a check begun before does not know whether
    /// its key was among them.
    dropped_at: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    /// Wrong secrets handed to the writer and not yet settled.
    uncommitted: i64,
    /// The key's failure count as its last commit returned it, and that batch's number.
    committed: i64,
    committed_at: u64,
}

/// When a check read its keys: the number of the last batch settled before.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen(u64);

/// What an accepted check must do about the key's failure count.
#[derive(Debug, Clone, Copy)]
pub(super) struct BeforeReset {
    /// This instance has wrong secrets of the key not yet committed: wait for them first.
    pub wait: bool,
    /// The count may be above zero although the check read zero.
    pub maybe_failures: bool,
}

impl Uncommitted {
    /// Taken before a check reads its keys.
    pub fn seen(&self) -> Seen {
        Seen(self.commits.load(Ordering::Acquire))
    }

    /// Counts one wrong secret of `key_id` handed to the writer, by a check that read the
    /// key's failure count `read` at `seen`. Whether it may be answered before it is committed
    /// as far as the lockout goes: it cannot be the one that reaches `threshold` (0: never).
    pub fn hand_wrong(&self, key_id: &str, read: i64, seen: Seen, threshold: i64) -> bool {
        let Ok(mut keys) = self.keys.lock() else {
            return false;
        };
        let dropped_at = keys.dropped_at;
        let entry = keys.per_key.entry(key_id.to_string()).or_default();
        let known = if entry.committed_at > seen.0 {
            Some(read.max(entry.committed))
        } else if entry.committed_at == 0 && dropped_at > seen.0 {
            None
        } else {
            Some(read)
        };
        let at_once =
            threshold <= 0 || known.is_some_and(|count| count + entry.uncommitted + 1 < threshold);
        entry.uncommitted += 1;
        at_once
    }

    /// A wrong secret counted by `hand_wrong` never reached the writer.
    pub fn withdraw(&self, key_id: &str) {
        if let Ok(mut keys) = self.keys.lock()
            && let Some(entry) = keys.per_key.get_mut(key_id)
        {
            entry.uncommitted -= 1;
        }
    }

    /// What an accepted check of `key_id` that read its keys at `seen` must do before it
    /// resets the failure count.
    pub fn before_reset(&self, key_id: &str, seen: Seen) -> BeforeReset {
        let Ok(keys) = self.keys.lock() else {
            return BeforeReset {
                wait: true,
                maybe_failures: true,
            };
        };
        match keys.per_key.get(key_id) {
            Some(entry) => BeforeReset {
                wait: entry.uncommitted > 0,
                maybe_failures: entry.uncommitted > 0
                    || (entry.committed_at > seen.0 && entry.committed > 0),
            },
            None => BeforeReset {
                wait: false,
                maybe_failures: keys.dropped_at > seen.0,
            },
        }
    }

    /// The writer settled a batch (committed, or failed to write it): `handed` wrong secrets
    /// per key are no longer uncommitted; `counts` are the failure counts it committed.
    pub fn settled(&self, handed: &[(&str, i64)], counts: &[(String, i64)]) {
        let Ok(mut keys) = self.keys.lock() else {
            return;
        };
        let number = self.commits.fetch_add(1, Ordering::AcqRel) + 1;
        for (key_id, n) in handed {
            if let Some(entry) = keys.per_key.get_mut(*key_id) {
                entry.uncommitted -= n;
            }
        }
        for (key_id, count) in counts {
            let entry = keys.per_key.entry(key_id.clone()).or_default();
            entry.committed = *count;
            entry.committed_at = number;
        }
        if keys.per_key.len() > MOST {
            keys.per_key.retain(|_, e| e.uncommitted > 0);
            keys.dropped_at = number;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_wrong_secret_that_can_lock() {
        let book = Uncommitted::default();
        let seen = book.seen();
        assert!(book.hand_wrong("k", 0, seen, 3));
        assert!(book.hand_wrong("k", 0, seen, 3));
        assert!(!book.hand_wrong("k", 0, seen, 3), "the third can lock");
        assert!(book.hand_wrong("other", 0, seen, 3));
        assert!(book.hand_wrong("k", 7, seen, 0), "no lockout: never waits");
    }

    #[test]
    fn a_commit_during_the_check_counts() {
        let book = Uncommitted::default();
        let seen = book.seen();
        assert!(book.hand_wrong("k", 0, seen, 3));
        assert!(book.hand_wrong("k", 0, seen, 3));
        book.settled(&[("k", 2)], &[("k".into(), 2)]);
        // The check read 0 before the commit; the commit said 2.
        assert!(!book.hand_wrong("k", 0, seen, 3));
        let after = book.seen();
        book.settled(&[("k", 1)], &[]);
        let reset = book.before_reset("k", after);
        assert!(!reset.wait && !reset.maybe_failures);
        let reset = book.before_reset("k", seen);
        assert!(!reset.wait && reset.maybe_failures);
    }

    #[test]
    fn uncommitted_wrong_secrets_make_a_reset_wait() {
        let book = Uncommitted::default();
        let seen = book.seen();
        book.hand_wrong("k", 0, seen, 0);
        let reset = book.before_reset("k", seen);
        assert!(reset.wait && reset.maybe_failures);
        book.withdraw("k");
        assert!(!book.before_reset("k", seen).wait);
    }
}
