//! What the key checks remember of keys between requests, so that a key presented again and
//! again is not read from the database each time (the hot path of every program that uses
//! keyward).
//!
//! A remembered key is trusted only while both hold:
//! - it was read less than [`FRESH_FOR`] ago (by the application's clock, so tests move it): a
//!   change made by another instance, or by a command in another process, is seen within that
//!   bound;
//! - nothing on this instance has changed keys since it was read: every change this instance
//!   makes (a console or API request that is not a plain read, the background job's inactivity
//!   rule, a key the refusal writer locked) calls [`KeyChanges::changed`], and everything read
//!   before is read again. So a key deactivated, locked, deleted or given a new secret, a user
//!   disabled, a role changed here is seen here at once.
//!
//! A moved failure count is narrower: the refusal writer sets the committed count in the
//! remembered key ([`KeyCache::set_failures`]) and nothing else is forgotten, here or elsewhere
//! (other instances read it within the bound). A read that began before such a change is not
//! remembered after it for that key, so a count never goes back.
//!
//! Unknown key IDs are not remembered (anyone can make up IDs; each costs one indexed read).

use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::service::repo::keys::AuthRow;

/// Moves on every change to keys, users, groups or roles this instance makes, and, on
/// PostgreSQL, on every change another instance announces (see [`follow_other_instances`]).
#[derive(Debug, Default)]
pub struct KeyChanges {
    generation: AtomicU64,
    /// On PostgreSQL: where changes made here are announced to the other instances.
    announce: Option<sqlx::AnyPool>,
    /// Names this instance in its announcements, so that it does not hear its own.
    instance: String,
}

impl KeyChanges {
    /// Changes that other instances on `pool` hear of when it is PostgreSQL.
    pub fn announced_on(pool: &sqlx::AnyPool) -> Self {
        let postgres = crate::db::Backend::of_pool(pool) == crate::db::Backend::Postgres;
        KeyChanges {
            generation: AtomicU64::new(0),
            announce: postgres.then(|| pool.clone()),
            instance: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// Keys (or what their permissions and state depend on) may have changed: nothing the key
    /// checks read before is trusted any more, here and (on PostgreSQL, in a moment) on the
    /// other instances.
    pub fn changed(&self) {
        self.heard();
        if let Some(pool) = self.announce.clone()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let instance = self.instance.clone();
            runtime.spawn(async move {
                if let Err(e) = crate::service::repo::keys::announce_change(&pool, &instance).await
                {
                    tracing::debug!(error = %e, "announcing a change of keys failed");
                }
            });
        }
    }

    /// A change happened elsewhere: only this instance's memory is forgotten.
    fn heard(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// On PostgreSQL: listens for the changes other instances announce and forgets what the key
/// checks remember at each, so that a key deactivated on one instance is refused on the others
/// within a round trip rather than within [`FRESH_FOR`] (which still bounds it when a
/// notification is lost: while the listener reconnects, everything is forgotten once it is
/// back). Runs until the runtime ends.
pub async fn follow_other_instances(database_url: String, changes: std::sync::Arc<KeyChanges>) {
    use sqlx::postgres::PgListener;
    let mut first = true;
    loop {
        match PgListener::connect(&database_url).await {
            Ok(mut listener) => {
                match listener
                    .listen(crate::service::repo::keys::CHANGES_CHANNEL)
                    .await
                {
                    Ok(()) => {
                        // Listening again after a break: what was announced meanwhile is
                        // unknown. (Before the first time, memory is at most FRESH_FOR old.)
                        if !std::mem::take(&mut first) {
                            changes.heard();
                        }
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(heard)) if heard.payload() == changes.instance => {}
                                Ok(Some(_)) => changes.heard(),
                                // The connection was lost (it reconnects at the next call):
                                // what was announced meanwhile is unknown.
                                Ok(None) => changes.heard(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "listening for changes of keys failed; retrying");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for changes of keys failed; retrying")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "listening for changes of keys failed; retrying")
            }
        }
        changes.heard();
        tokio::time::sleep(FRESH_FOR).await;
    }
}

/// How long another instance's change may go unseen here.
pub const FRESH_FOR: Duration = Duration::from_millis(1_000);

/// Most keys remembered; when full, everything is forgotten and the cache fills again.
const MOST: usize = 50_000;

/// Where a read of keys began: what [`KeyCache::remember`] checks the keys' changes against.
#[derive(Debug, Clone, Copy)]
pub struct ReadStart {
    generation: u64,
    edits: u64,
}

struct Remembered {
    /// The key with its permissions as resolved when it was read; shared with the checks that
    /// use it (a check clones no part of it).
    found: Arc<AuthRow>,
    /// Unix milliseconds.
    read_at: i64,
    generation: u64,
}

#[derive(Default)]
struct Memory {
    keys: HashMap<String, Remembered>,
    /// The edit at which a key's failure count last changed: reads begun before it are not
    /// remembered for that key.
    edited: HashMap<String, u64>,
}

/// Keys read recently, trusted within the rules above.
pub struct KeyCache {
    memory: RwLock<Memory>,
    changes: std::sync::Arc<KeyChanges>,
    /// Moves at each [`KeyCache::set_failures`].
    edits: AtomicU64,
    /// Milliseconds.
    fresh_for: i64,
}

impl KeyCache {
    /// A cache whose entries are trusted for `fresh_for` and until `changes` moves.
    pub fn new(changes: std::sync::Arc<KeyChanges>, fresh_for: Duration) -> Self {
        KeyCache {
            memory: RwLock::default(),
            changes,
            edits: AtomicU64::new(0),
            fresh_for: i64::try_from(fresh_for.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Where a read starts: pass it to [`KeyCache::remember`] with what was read, so a change
    /// that commits during the read makes the result stale at once.
    pub fn start_read(&self) -> ReadStart {
        ReadStart {
            generation: self.changes.generation(),
            edits: self.edits.load(Ordering::Acquire),
        }
    }

    /// The key `id` as read recently, when it can still be trusted at `now_ms`.
    pub fn get(&self, id: &str, now_ms: i64) -> Option<Arc<AuthRow>> {
        let generation = self.changes.generation();
        let memory = self.memory.read().ok()?;
        let r = memory.keys.get(id)?;
        let age = now_ms - r.read_at;
        (r.generation == generation && (0..self.fresh_for).contains(&age)).then(|| r.found.clone())
    }

    /// Remembers keys read at `now_ms` by a read that began at `start`.
    pub fn remember(&self, start: ReadStart, found: &[Arc<AuthRow>], now_ms: i64) {
        let generation = start.generation;
        if found.is_empty() {
            return;
        }
        let Ok(mut memory) = self.memory.write() else {
            return;
        };
        if generation != self.changes.generation() {
            return;
        }
        if memory.keys.len() + found.len() > MOST {
            memory.keys.clear();
        }
        let read_at = now_ms;
        for f in found {
            if memory
                .edited
                .get(&f.key.id)
                .is_some_and(|&at| at > start.edits)
            {
                continue;
            }
            memory.keys.insert(
                f.key.id.clone(),
                Remembered {
                    found: f.clone(),
                    read_at,
                    generation,
                },
            );
        }
    }

    /// Changes a remembered key as the check itself just wrote it (its last use, its failure
    /// count reset), so the next presentation does not write it again.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut AuthRow)) {
        if let Ok(mut memory) = self.memory.write()
            && let Some(r) = memory.keys.get_mut(id)
        {
            // Checks holding the key as it was keep their copy.
            change(Arc::make_mut(&mut r.found));
        }
    }

    /// The refusal writer committed wrong secrets of key `id`, whose failure count is now
    /// `count`: the remembered key shows it, and a read begun before is not remembered for it.
    pub fn set_failures(&self, id: &str, count: i64) {
        let Ok(mut memory) = self.memory.write() else {
            return;
        };
        let at = self.edits.fetch_add(1, Ordering::AcqRel) + 1;
        if memory.edited.len() >= MOST {
            // Forgetting which keys changed when: nothing read before is trusted any more.
            memory.edited.clear();
            memory.keys.clear();
            self.changes.heard();
        }
        memory.edited.insert(id.to_string(), at);
        if let Some(r) = memory.keys.get_mut(id) {
            Arc::make_mut(&mut r.found).key.failed_attempts = count;
        }
    }
}
