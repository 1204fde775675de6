//! The inactivity rule, run by the job at every pass: a key unused for the policy's days is
//! deactivated (never deleted), its people warned first, exactly once per key and stage. A key
//! counts as unused since the latest of its creation, its last use and its last change (a
//! person who just changed or reactivated a key is taken to want it); a use or a change re-arms
//! both notices. The deactivation comes no sooner than the warning's days after the warning,
//! so a policy switched on over keys long unused warns before it deactivates.

use sqlx::AnyPool;

use super::load;
use crate::error::AppResult;
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::notices::{self, KeyEvent, KeyFacts};
use crate::service::repo::inactivity::{self, UnusedKey};
use crate::service::repo::keys as key_repo;

const DAY: i64 = 86_400;
/// The stages recorded in `inactivity_notices`.
const WARNING: &str = "warning";
const DEACTIVATED: &str = "deactivated";

/// What one scan did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub warned: usize,
    pub deactivated: usize,
}

/// Warns and deactivates the keys the inactivity rule reaches at `now`, one transaction per
/// key; links in emails start with `public_url`. Another instance scanning at once does each
/// notice only once between them.
pub async fn scan(pool: &AnyPool, public_url: &str, now: i64) -> AppResult<Swept> {
    let policy = {
        let mut conn = pool.acquire().await?;
        load(&mut conn).await?
    };
    let Some(days) = policy.inactive_days else {
        return Ok(Swept::default());
    };
    let warn = policy.inactive_warn_days.min(days - 1).max(0);
    let candidates = {
        let mut conn = pool.acquire().await?;
        inactivity::unused_since(&mut conn, now - (days - warn) * DAY).await?
    };
    let mut swept = Swept::default();
    for key in &candidates {
        let since = key.since();
        let due = since + days * DAY;
        match key.warned_at {
            None if warn > 0 => {
                let deactivate_at = due.max(now + warn * DAY);
                if act(pool, public_url, key, Stage::Warn { deactivate_at }, now).await? {
                    swept.warned += 1;
                }
            }
            warned => {
                let after_warning = warned.map_or(0, |w| w + warn * DAY);
                if now >= due.max(after_warning)
                    && act(pool, public_url, key, Stage::Deactivate, now).await?
                {
                    swept.deactivated += 1;
                }
            }
        }
    }
    Ok(swept)
}

enum Stage {
    Warn { deactivate_at: i64 },
    Deactivate,
}

/// Records one notice and does what it says, in one transaction; false when the key changed
/// since the scan read it or another runner recorded the notice first.
async fn act(
    pool: &AnyPool,
    public_url: &str,
    key: &UnusedKey,
    stage: Stage,
    now: i64,
) -> AppResult<bool> {
    let since = key.since();
    let mut tx = crate::db::begin_write(pool).await?;
    key_repo::lock(&mut tx, &key.id).await?;
    // Used, changed or deactivated since the scan read it: nothing to do.
    let current = inactivity::current(&mut tx, &key.id).await?;
    let still =
        current.is_some_and(|(c, m, u, active)| active && c.max(m).max(u.unwrap_or(0)) == since);
    if !still {
        return Ok(false);
    }
    let stage_name = match stage {
        Stage::Warn { .. } => WARNING,
        Stage::Deactivate => DEACTIVATED,
    };
    if !inactivity::record(&mut tx, &key.id, stage_name, since, now).await? {
        return Ok(false);
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
    let event = match stage {
        Stage::Warn { deactivate_at } => KeyEvent::InactiveWarning {
            unused_since: since,
            deactivate_at,
        },
        Stage::Deactivate => {
            key_repo::set_active(&mut tx, &key.id, false, "inactivity").await?;
            let details = format!(
                "deactivated by the key policy: unused since {}",
                crate::clock::format_utc(since)
            );
            let entry = NewEntry {
                actor_id: None,
                actor_label: "key policy",
                action: "key.deactivated_inactive",
                target_type: "access_key",
                target_id: &key.id,
                target_label: &key.name,
                client_ip: "",
                outcome: SUCCESS,
                details: &details,
            };
            audit::record(&mut tx, now, entry).await?;
            KeyEvent::DeactivatedInactive {
                unused_since: since,
            }
        }
    };
    notices::tell(&mut tx, now, public_url, &facts, event).await?;
    tx.commit().await?;
    Ok(true)
}
