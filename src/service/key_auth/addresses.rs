//! Last used addresses (SPEC §9): each accepted key check notes its client address in memory
//! (a lock and a lookup; an allocation only for an address not yet noted), and a flush writes
//! what was noted in one transaction, at most every [`FLUSH_EVERY`] and when the server stops.
//! A crash loses at most one interval of sightings; the last-used time is written separately.

use foldhash::HashMap;
use std::sync::Mutex;

use sqlx::AnyPool;

use crate::service::repo::key_addresses::{self, KeyAddress};

/// How often noted addresses are written.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Most (key, address) pairs held between flushes: a key presented from an unbounded number
/// of addresses (a spray of IPv6 addresses) cannot grow memory; pairs beyond are not noted.
const MAX_PAIRS: usize = 50_000;

/// Addresses noted since the last flush, per key.
#[derive(Default)]
pub struct AddressBook {
    noted: Mutex<Noted>,
}

#[derive(Default)]
struct Noted {
    keys: HashMap<String, Vec<KeyAddress>>,
    pairs: usize,
}

impl AddressBook {
    /// Notes that `key_id` was accepted from `address` with `agent` at `now`.
    pub fn note(&self, key_id: &str, address: &str, agent: &str, now: i64) {
        let Ok(mut noted) = self.noted.lock() else {
            return;
        };
        let noted = &mut *noted;
        if let Some(seen) = noted.keys.get_mut(key_id) {
            if let Some(one) = seen.iter_mut().find(|a| a.address == address) {
                one.last_seen = one.last_seen.max(now);
                one.uses += 1;
                if one.user_agent != agent {
                    one.user_agent = agent.chars().take(200).collect();
                }
                return;
            }
            if noted.pairs >= MAX_PAIRS {
                return;
            }
            seen.push(sighting(address, agent, now));
        } else {
            if noted.pairs >= MAX_PAIRS {
                return;
            }
            noted
                .keys
                .insert(key_id.to_string(), vec![sighting(address, agent, now)]);
        }
        noted.pairs += 1;
    }

    /// Writes what was noted and forgets it. On failure it is dropped (logged): the sightings
    /// of one interval are not worth holding up the next.
    pub async fn flush(&self, pool: &AnyPool) {
        let taken = match self.noted.lock() {
            Ok(mut noted) => std::mem::take(&mut *noted),
            Err(_) => return,
        };
        if taken.keys.is_empty() {
            return;
        }
        if let Err(e) = write(pool, taken.keys).await {
            tracing::warn!(error = %e, "writing the last used addresses of keys failed");
        }
    }
}

fn sighting(address: &str, agent: &str, now: i64) -> KeyAddress {
    KeyAddress {
        address: address.to_string(),
        first_seen: now,
        last_seen: now,
        user_agent: agent.chars().take(200).collect(),
        uses: 1,
    }
}

async fn write(pool: &AnyPool, keys: HashMap<String, Vec<KeyAddress>>) -> sqlx::Result<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    for (key_id, seen) in &keys {
        // A key deleted since it was used: nothing to keep.
        if !key_addresses::existing(&mut tx, key_id).await? {
            continue;
        }
        // More than five new addresses: only the five seen last can be kept.
        let mut seen: Vec<&KeyAddress> = seen.iter().collect();
        seen.sort_by_key(|a| std::cmp::Reverse(a.last_seen));
        for one in seen.into_iter().take(key_addresses::KEPT as usize) {
            key_addresses::add(&mut tx, key_id, one).await?;
        }
        key_addresses::prune(&mut tx, key_id).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_each_address_once_per_key_and_counts_uses() {
        let book = AddressBook::default();
        book.note("k1", "10.0.0.1", "curl", 100);
        book.note("k1", "10.0.0.1", "curl/8", 160);
        book.note("k1", "10.0.0.2", "curl", 120);
        book.note("k2", "10.0.0.1", "curl", 130);
        let noted = book.noted.lock().unwrap();
        assert_eq!(noted.pairs, 3);
        let k1 = &noted.keys["k1"];
        assert_eq!(k1.len(), 2);
        assert_eq!(k1[0].uses, 2);
        assert_eq!((k1[0].first_seen, k1[0].last_seen), (100, 160));
        assert_eq!(k1[0].user_agent, "curl/8");
    }

    #[test]
    fn holds_a_bounded_number_of_pairs() {
        let book = AddressBook::default();
        for i in 0..(MAX_PAIRS + 10) {
            book.note("k1", &format!("2001:db8::{i:x}"), "", 1);
        }
        assert_eq!(book.noted.lock().unwrap().pairs, MAX_PAIRS);
    }
}
