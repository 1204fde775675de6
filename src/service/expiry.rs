//! The expiry scan: which keys are told about now, and at which stage.
//!
//! A key is noticed once per expiry time and stage. Only the latest stage whose window holds
//! the key counts, and a stage whose moment came before the expiry was set is stale and skipped
//! (a key made three days before it expires hears at two days, not at seven and fourteen at
//! once), except the last stage, which always fires. An expired key is told once more.

use sqlx::AnyPool;

use crate::error::AppResult;
use crate::service::notices::{self, KeyEvent, KeyFacts};
use crate::service::repo::expiry_notices;
use crate::service::repo::outbox::{self, ExpiringKey};

const DAY: i64 = 86_400;
/// How far back the scan looks for keys that expired (while keyward was down, say).
const EXPIRED_LOOKBACK: i64 = 7 * DAY;
/// The stage recorded for the "has expired" notice.
pub const EXPIRED_STAGE: i64 = 0;

/// The stage at which a key is due a notice now, if any.
pub fn due_stage(stages: &[u32], key: &ExpiringKey, now: i64) -> Option<i64> {
    let noticed: Vec<i64> = key
        .noticed
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    if key.expires_at <= now {
        return (!noticed.contains(&EXPIRED_STAGE)).then_some(EXPIRED_STAGE);
    }
    let remaining = key.expires_at - now;
    let last = i64::from(*stages.iter().min()?);
    let stage = stages
        .iter()
        .map(|d| i64::from(*d))
        .filter(|d| d * DAY >= remaining)
        .min()?;
    if noticed.iter().any(|n| *n <= stage && *n != EXPIRED_STAGE) {
        return None;
    }
    let moment = key.expires_at - stage * DAY;
    (stage == last || moment >= key.expiry_set_at).then_some(stage)
}

/// Finds the keys due a notice at `now` (`stages` in days before expiry) and tells their
/// people, one transaction per key; links in emails start with `public_url`. Returns how many
/// keys were noticed by this run (another instance scanning at once notices the others).
pub async fn scan(pool: &AnyPool, stages: &[u32], public_url: &str, now: i64) -> AppResult<usize> {
    let Some(furthest) = stages.iter().max() else {
        return Ok(0);
    };
    let backend = crate::db::Backend::of_pool(pool);
    let candidates = {
        let mut conn = pool.acquire().await?;
        outbox::expiring(
            &mut conn,
            backend,
            now - EXPIRED_LOOKBACK,
            now + i64::from(*furthest) * DAY,
        )
        .await?
    };
    let mut noticed = 0;
    for key in &candidates {
        let Some(stage) = due_stage(stages, key, now) else {
            continue;
        };
        if notice(pool, public_url, key, stage, now).await? {
            noticed += 1;
        }
    }
    Ok(noticed)
}

/// Records one notice and queues its emails and bell notifications together; false when
/// another runner recorded it first.
async fn notice(
    pool: &AnyPool,
    public_url: &str,
    key: &ExpiringKey,
    stage: i64,
    now: i64,
) -> AppResult<bool> {
    let mut tx = crate::db::begin_write(pool).await?;
    // The key may have changed since the scan read it: only its current expiry counts.
    let current = expiry_notices::current_expiry(&mut tx, &key.id).await?;
    if current != Some((Some(key.expires_at), true)) {
        return Ok(false);
    }
    if !outbox::record_notice(&mut tx, &key.id, key.expires_at, stage, now).await? {
        return Ok(false);
    }
    let facts = KeyFacts {
        id: &key.id,
        name: &key.name,
        key_type: &key.key_type,
        owner_user_id: key.owner_user_id.as_deref(),
        created_by: key.created_by.as_deref(),
        modified_by: key.modified_by.as_deref(),
        expires_at: Some(key.expires_at),
    };
    let event = if stage == EXPIRED_STAGE {
        KeyEvent::Expired
    } else {
        KeyEvent::Expiring
    };
    notices::tell(&mut tx, now, public_url, &facts, event).await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(expires_in: i64, set_ago: i64, noticed: &str) -> ExpiringKey {
        ExpiringKey {
            id: "AK".into(),
            name: "k".into(),
            key_type: "access".into(),
            owner_user_id: None,
            expires_at: 1_000_000 + expires_in,
            expiry_set_at: 1_000_000 - set_ago,
            created_by: None,
            modified_by: None,
            noticed: (!noticed.is_empty()).then(|| noticed.to_string()),
        }
    }

    #[test]
    fn the_latest_open_stage_is_due_once() {
        let now = 1_000_000;
        let stages = [14, 7, 2];
        assert_eq!(
            due_stage(&stages, &key(47 * 3600, 30 * DAY, ""), now),
            Some(2)
        );
        assert_eq!(
            due_stage(&stages, &key(6 * DAY, 30 * DAY, ""), now),
            Some(7)
        );
        assert_eq!(
            due_stage(&stages, &key(6 * DAY, 30 * DAY, "14,7"), now),
            None
        );
        assert_eq!(
            due_stage(&stages, &key(DAY, 30 * DAY, "14,7"), now),
            Some(2)
        );
        assert_eq!(due_stage(&stages, &key(DAY, 30 * DAY, "14,7,2"), now), None);
    }

    #[test]
    fn stages_that_passed_before_the_expiry_was_set_are_skipped() {
        let now = 1_000_000;
        let stages = [14, 7, 2];
        // Made three days before it expires: seven and fourteen days are stale.
        assert_eq!(due_stage(&stages, &key(3 * DAY, 0, ""), now), None);
        // The last stage always fires, even for a key made inside it.
        assert_eq!(due_stage(&stages, &key(47 * 3600, 0, ""), now), Some(2));
        assert_eq!(due_stage(&[2], &key(47 * 3600, 0, ""), now), Some(2));
    }

    #[test]
    fn an_expired_key_is_told_once() {
        let now = 1_000_000;
        assert_eq!(due_stage(&[2], &key(-60, 30 * DAY, "2"), now), Some(0));
        assert_eq!(due_stage(&[2], &key(-60, 30 * DAY, "2,0"), now), None);
        assert_eq!(due_stage(&[2], &key(49 * 3600, 30 * DAY, ""), now), None);
    }
}
