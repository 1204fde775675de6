//! Exposed secrets (SPEC §9): a secret reported as exposed, pasted in the console, sent to the
//! API or found by GitHub's secret scanning. It comes without its key ID, so its key is found by
//! the stored HMAC alone (the current secret, the previous one inside its grace period, or a
//! replaced one). The secret itself is never stored, logged or written to the audit log: the
//! audit names the key, who reported it and where it was found.
//!
//! The console shows the key and lets the person choose (new secret, deactivate); the API and
//! secret scanning apply the key policy's `key_policy.exposure` (lock by default) and tell the
//! key's people (bell, email, webhook event `key.exposed`).

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use super::{EXPIRED, EXPIRING, KeyDetails, Keyring, Scope};
use crate::domain::{Actor, Permission, Secret};
use crate::error::AppError;
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::grants::{self, Decider};
use crate::service::notices::{self, Exposure, KeyFacts};
use crate::service::repo::keys::{self as repo, HashHit, Held, KeyRow};
use crate::service::webhooks::{self, EventType};

/// The settings row that says what an exposed secret does to its key (`lock`, `deactivate` or
/// `record`; lock when unset), and the rule itself: both are the key policy's.
pub use crate::service::key_policy::{EXPOSURE as EXPOSURE_POLICY, OnExposed as ExposurePolicy};

/// The tenant's exposure policy (lock when unset or unreadable as a policy), as the key policy
/// reads it.
pub async fn exposure_policy(conn: &mut AnyConnection) -> sqlx::Result<ExposurePolicy> {
    Ok(crate::service::key_policy::load(conn).await?.exposure)
}

/// What was done about an exposed secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExposureAction {
    Locked,
    Deactivated,
    Recorded,
}

impl ExposureAction {
    /// The API's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExposureAction::Locked => "locked",
            ExposureAction::Deactivated => "deactivated",
            ExposureAction::Recorded => "recorded",
        }
    }
}

/// Which of its key's secrets an exposed secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichSecret {
    /// The key's current secret.
    Current,
    /// Its previous secret, still working inside a grace period.
    Previous,
    /// A secret it had before, replaced at that time: it no longer works.
    Replaced { replaced_at: i64 },
}

impl WhichSecret {
    /// Whether the secret still authenticates (its key's state aside).
    pub fn works(self) -> bool {
        !matches!(self, WhichSecret::Replaced { .. })
    }

    /// As the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            WhichSecret::Current => "current",
            WhichSecret::Previous => "previous",
            WhichSecret::Replaced { .. } => "replaced",
        }
    }

    /// In words, for the audit log.
    fn words(self) -> String {
        match self {
            WhichSecret::Current => "its current secret".into(),
            WhichSecret::Previous => "its previous secret, inside its grace period".into(),
            WhichSecret::Replaced { replaced_at } => format!(
                "a secret replaced at {} (it no longer works)",
                crate::clock::format_utc(replaced_at)
            ),
        }
    }

    fn of(held: Held) -> Self {
        match held {
            Held::Current => WhichSecret::Current,
            Held::Previous => WhichSecret::Previous,
            Held::Replaced { replaced_at } => WhichSecret::Replaced { replaced_at },
        }
    }

    /// The most alive of two: current, then previous, then the latest replaced.
    fn rank(self) -> (u8, i64) {
        match self {
            WhichSecret::Current => (2, 0),
            WhichSecret::Previous => (1, 0),
            WhichSecret::Replaced { replaced_at } => (0, replaced_at),
        }
    }
}

/// What the console shows about a secret pasted as exposed.
#[derive(Debug, Clone)]
pub struct FoundSecret {
    pub key: KeyDetails,
    pub which: WhichSecret,
}

/// What the API answers about a secret reported exposed.
#[derive(Debug, Clone)]
pub struct Reported {
    pub key_id: String,
    pub which: WhichSecret,
    pub action: ExposureAction,
}

/// The form field and the messages of a pasted secret.
const FIELD: &str = "secret";
const EMPTY: &str = "Paste the secret key that was exposed.";
const MALFORMED: &str = "This is not a keyward secret key. Secret keys start with kws_ and are \
    50 characters long, ending in a checksum that does not match here: check that the whole \
    secret was copied, without spaces.";
/// A well-formed secret that no key has (said the same in the console and the API).
pub const NO_SUCH_SECRET: &str = "No access key has this secret. It may belong to a key that was \
    deleted, or to another keyward installation. Nothing was changed.";

/// The secret pasted or sent, checked for its form and checksum (no database work otherwise).
fn parse(raw: &str) -> Result<Secret, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(AppError::invalid(FIELD, EMPTY));
    }
    Secret::parse(raw).ok_or_else(|| AppError::invalid(FIELD, MALFORMED))
}

/// The key holding a secret hash, and which of its secrets it is.
async fn holder_of(
    conn: &mut AnyConnection,
    hash: String,
    now: i64,
) -> sqlx::Result<Option<(String, WhichSecret)>> {
    let hits = repo::find_by_secret_hashes(conn, &[hash], now).await?;
    Ok(best_hits(hits).into_values().next())
}

/// For each hash, the key holding it and its most alive form.
fn best_hits(hits: Vec<HashHit>) -> BTreeMap<String, (String, WhichSecret)> {
    let mut best: BTreeMap<String, (String, WhichSecret)> = BTreeMap::new();
    for hit in hits {
        let which = WhichSecret::of(hit.held);
        match best.get(&hit.secret_hash) {
            Some((_, known)) if known.rank() >= which.rank() => {}
            _ => {
                best.insert(hit.secret_hash, (hit.key_id, which));
            }
        }
    }
    best
}

/// The console: finds the key of a pasted secret and records the report (`key.exposure_reported`);
/// the person then chooses what to do. Needs `keys:write`. A malformed or unknown secret is a
/// message on the form's `secret` field.
pub async fn find_exposed(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    raw: &str,
) -> Result<FoundSecret, AppError> {
    actor.require(Permission::KeysWrite)?;
    let secret = parse(raw)?;
    let hash = ring.hasher.hash(&secret);
    drop(secret);
    let now = ring.clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let Some((key_id, which)) = holder_of(&mut tx, hash, now).await? else {
        return Err(AppError::invalid(FIELD, NO_SUCH_SECRET));
    };
    let key = super::read::details(&mut tx, actor, Scope::Tenant, &key_id, ring).await?;
    let details = format!("{} was reported exposed in the console", which.words());
    let entry = audit::success(
        actor,
        "key.exposure_reported",
        "access_key",
        &key.id,
        &key.name,
        &details,
    );
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    Ok(FoundSecret { key, which })
}

/// The API: finds the key of a secret reported exposed and applies the exposure policy to it,
/// telling the key's people. Needs `keys:write` (and a caller's current secret). A well-formed
/// secret no key has is 404; a replaced secret is only recorded, since it no longer works.
pub async fn report_exposed(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    public_url: &str,
    actor: &Actor,
    raw: &str,
) -> Result<Reported, AppError> {
    actor.require(Permission::KeysWrite)?;
    grants::require_current_secret(actor)?;
    let secret = parse(raw)?;
    let hash = ring.hasher.hash(&secret);
    drop(secret);
    let now = ring.clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let Some((key_id, which)) = holder_of(&mut tx, hash, now).await? else {
        return Err(AppError::Gone(NO_SUCH_SECRET));
    };
    repo::lock(&mut tx, &key_id).await?;
    let key = repo::find(&mut tx, &key_id)
        .await?
        .ok_or(AppError::Gone(NO_SUCH_SECRET))?;
    let policy = exposure_policy(&mut tx).await?;
    let report = Report {
        reporter: Reporter::Person(actor),
        which,
        places: &[],
        now,
    };
    let action = apply(&mut tx, public_url, policy, &key, &report).await?;
    tx.commit().await?;
    ring.committed();
    Ok(Reported {
        key_id: key.id,
        which,
        action,
    })
}

/// A token secret scanning found, and where.
#[derive(Debug, Clone, Copy)]
pub struct FoundToken<'a> {
    pub token: &'a str,
    /// The public URL it was found at, when known.
    pub url: Option<&'a str>,
}

/// The name secret scanning reports under, in the audit log and the notices.
pub const GITHUB: &str = "GitHub secret scanning";

/// Secret scanning (`POST /api/v1/secret-scanning/github`, already authenticated by its
/// signature): for each token whether it is a live keyward secret (the current secret of a key,
/// or its previous one inside a grace period). Each live one gets the exposure policy, an audit
/// entry and notices naming where it was found; a replaced one is only audited. One HMAC per
/// distinct token, a few reads for the whole batch, one transaction.
pub async fn report_found(
    pool: &sqlx::AnyPool,
    ring: &Keyring<'_>,
    public_url: &str,
    client_ip: &str,
    found: &[FoundToken<'_>],
) -> Result<Vec<bool>, AppError> {
    let now = ring.clock.unix();
    // One HMAC per distinct well-formed token; the rest are false positives without a lookup.
    let mut hash_of: BTreeMap<&str, String> = BTreeMap::new();
    for f in found {
        if hash_of.contains_key(f.token) {
            continue;
        }
        if let Some(secret) = Secret::parse(f.token) {
            hash_of.insert(f.token, ring.hasher.hash(&secret));
        }
    }
    if hash_of.is_empty() {
        return Ok(vec![false; found.len()]);
    }
    let hashes: Vec<String> = hash_of.values().cloned().collect();
    let mut tx = crate::db::begin_write(pool).await?;
    let best = best_hits(repo::find_by_secret_hashes(&mut tx, &hashes, now).await?);
    let holder = |token: &str| hash_of.get(token).and_then(|h| best.get(h));
    let labels: Vec<bool> = found
        .iter()
        .map(|f| holder(f.token).is_some_and(|(_, which)| which.works()))
        .collect();
    // Each key once, with every place its secrets were found and its most alive secret.
    let mut by_key: BTreeMap<&str, (WhichSecret, Vec<String>)> = BTreeMap::new();
    for f in found {
        let Some((key_id, which)) = holder(f.token) else {
            continue;
        };
        let entry = by_key
            .entry(key_id.as_str())
            .or_insert_with(|| (*which, Vec::new()));
        if which.rank() > entry.0.rank() {
            entry.0 = *which;
        }
        if let Some(url) = f.url.map(str::trim).filter(|u| !u.is_empty()) {
            let url: String = url.chars().take(500).collect();
            if !entry.1.contains(&url) {
                entry.1.push(url);
            }
        }
    }
    if by_key.is_empty() {
        return Ok(labels);
    }
    let ids: Vec<&str> = by_key.keys().copied().collect();
    let keys = repo::find_many(&mut tx, &ids).await?;
    let policy = exposure_policy(&mut tx).await?;
    for key in &keys {
        let Some((which, places)) = by_key.get(key.id.as_str()) else {
            continue;
        };
        let report = Report {
            reporter: Reporter::Scanner {
                name: GITHUB,
                client_ip,
            },
            which: *which,
            places,
            now,
        };
        apply(&mut tx, public_url, policy, key, &report).await?;
    }
    tx.commit().await?;
    ring.committed();
    Ok(labels)
}

/// Who reported an exposed secret.
#[derive(Debug, Clone, Copy)]
enum Reporter<'a> {
    /// A person in the console, or a program through the API.
    Person(&'a Actor),
    /// A secret scanning service, from this address.
    Scanner {
        name: &'static str,
        client_ip: &'a str,
    },
}

impl Reporter<'_> {
    fn label(&self) -> &str {
        match self {
            Reporter::Person(actor) => &actor.label,
            Reporter::Scanner { name, .. } => name,
        }
    }

    /// An audit entry about `key` made by this reporter.
    fn entry<'a>(&'a self, action: &'a str, key: &'a KeyRow, details: &'a str) -> NewEntry<'a> {
        match self {
            Reporter::Person(actor) => {
                audit::success(actor, action, "access_key", &key.id, &key.name, details)
            }
            Reporter::Scanner { name, client_ip } => NewEntry {
                actor_id: None,
                actor_label: name,
                action,
                target_type: "access_key",
                target_id: &key.id,
                target_label: &key.name,
                client_ip,
                outcome: SUCCESS,
                details,
            },
        }
    }

    /// Who decides a lock or deactivation, as stored: a person as the owner or the
    /// administration; keyward itself for a scanner (its locks are the owner's to end, like
    /// the lockout's).
    fn decided_by(&self, key: &KeyRow) -> &'static str {
        match self {
            Reporter::Person(actor) => Decider::of(actor, key).as_str(),
            Reporter::Scanner { .. } => "lockout",
        }
    }
}

/// One exposure of one key's secret.
struct Report<'a> {
    reporter: Reporter<'a>,
    which: WhichSecret,
    places: &'a [String],
    now: i64,
}

/// Applies the policy to `key` for `report` in the caller's transaction: a working secret locks
/// or deactivates the key (and ends the grace of an exposed previous secret), is audited and
/// told; a replaced secret is only audited. What was done.
async fn apply(
    conn: &mut AnyConnection,
    public_url: &str,
    policy: ExposurePolicy,
    key: &KeyRow,
    report: &Report<'_>,
) -> Result<ExposureAction, AppError> {
    let now = report.now;
    let reporter = &report.reporter;
    let found = match report.places {
        [] => String::new(),
        places => format!(", found at {}", places.join(", ")),
    };
    if !report.which.works() {
        let details = format!(
            "{} was reported exposed by {}{found}; nothing to change",
            report.which.words(),
            reporter.label()
        );
        let entry = reporter.entry("key.exposure_reported", key, &details);
        audit::record(conn, now, entry).await?;
        return Ok(ExposureAction::Recorded);
    }
    let by = reporter.decided_by(key);
    let (action, changed) = match policy {
        ExposurePolicy::Lock => {
            let changed = key.locked == 0;
            if changed {
                repo::set_locked(conn, &key.id, by).await?;
            }
            (ExposureAction::Locked, changed)
        }
        ExposurePolicy::Deactivate => {
            let changed = key.active == 1;
            if changed {
                repo::set_active(conn, &key.id, false, by).await?;
                crate::service::repo::outbox::cancel_for_key(conn, &key.id, &[EXPIRING, EXPIRED])
                    .await?;
            }
            (ExposureAction::Deactivated, changed)
        }
        ExposurePolicy::Record => (ExposureAction::Recorded, false),
    };
    let grace_ended = report.which == WhichSecret::Previous && policy != ExposurePolicy::Record;
    if grace_ended {
        repo::end_grace(conn, &key.id).await?;
    }
    if changed || grace_ended {
        let (actor_id, label) = match reporter {
            Reporter::Person(actor) => (Some(actor.user_id.as_str()), actor.label.as_str()),
            Reporter::Scanner { name, .. } => (None, *name),
        };
        repo::touch(conn, &key.id, now, actor_id, label).await?;
    }
    let mut details = format!(
        "{} was reported exposed by {}{found}",
        report.which.words(),
        reporter.label()
    );
    details.push_str(match (action, changed) {
        (ExposureAction::Locked, true) => "; the key was locked, as the key policy asks",
        (ExposureAction::Locked, false) => "; the key was already locked",
        (ExposureAction::Deactivated, true) => "; the key was deactivated, as the key policy asks",
        (ExposureAction::Deactivated, false) => "; the key was already inactive",
        (ExposureAction::Recorded, _) => "; nothing was changed, as the key policy asks",
    });
    if grace_ended {
        details.push_str("; its grace period was ended");
    }
    audit::record(
        conn,
        now,
        reporter.entry("key.exposure_reported", key, &details),
    )
    .await?;
    if changed {
        let (what, words) = match action {
            ExposureAction::Locked => ("key.locked", "locked: its secret was reported exposed"),
            _ => (
                "key.deactivated",
                "deactivated: its secret was reported exposed",
            ),
        };
        audit::record(conn, now, reporter.entry(what, key, words)).await?;
        if action == ExposureAction::Locked {
            webhooks::emit(conn, now, EventType::KeyLocked, &super::payload_of(key)).await?;
        }
    }
    let facts = KeyFacts {
        id: &key.id,
        name: &key.name,
        key_type: &key.key_type,
        owner_user_id: key.owner_user_id.as_deref(),
        created_by: key.created_by.as_deref(),
        modified_by: key.modified_by.as_deref(),
        expires_at: key.expires_at,
    };
    let exposure = Exposure {
        reported_by: reporter.label(),
        places: report.places,
        outcome: match (action, changed) {
            (ExposureAction::Locked, false) => "already locked",
            (ExposureAction::Deactivated, false) => "already inactive",
            _ => action.as_str(),
        },
        previous: report.which == WhichSecret::Previous,
    };
    notices::tell_exposed(conn, now, public_url, &facts, &exposure).await?;
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_and_lock_is_the_default() {
        for p in ExposurePolicy::ALL {
            assert_eq!(ExposurePolicy::parse(p.as_str()), Some(p));
        }
        assert_eq!(ExposurePolicy::parse("revoke"), None);
        assert_eq!(
            crate::service::key_policy::KeyPolicy::default().exposure,
            ExposurePolicy::Lock
        );
    }

    #[test]
    fn the_most_alive_form_of_a_secret_wins() {
        let hit = |held| HashHit {
            secret_hash: "h".into(),
            key_id: "k".into(),
            held,
        };
        let best = best_hits(vec![
            hit(Held::Replaced { replaced_at: 5 }),
            hit(Held::Previous),
            hit(Held::Replaced { replaced_at: 9 }),
        ]);
        assert_eq!(best["h"].1, WhichSecret::Previous);
        assert!(parse("").is_err());
        assert!(parse("kws_nope").is_err());
        assert!(parse(&format!(" {} ", Secret::generate().expose())).is_ok());
    }
}
