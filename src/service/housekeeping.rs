//! Housekeeping between passes of the job: ended sessions, old throttle windows and spent form
//! tokens, finished messages past their retention, and audit entries past theirs.

use sqlx::AnyPool;

use crate::auth::store::sessions;
use crate::error::AppResult;
use crate::service::dispatch::Queue;
use crate::service::repo::{form_submissions, queue, rate_limits};

/// How long what is finished is kept, in days; 0 keeps it for ever.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// `KEYWARD_MESSAGE_RETENTION_DAYS`: sent, failed and cancelled emails and deliveries.
    pub messages_days: u32,
    /// `KEYWARD_AUDIT_RETENTION_DAYS`.
    pub audit_days: u32,
    /// `KEYWARD_USAGE_RETENTION_DAYS`: hourly usage counts of keys.
    pub usage_days: u32,
}

/// What one round of housekeeping removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    /// Throttle windows older than a day (no limit looks further back).
    pub windows: u64,
    pub messages: u64,
    pub audit: u64,
    /// Hourly usage cells past their retention.
    pub usage: u64,
}

/// Removes at `now` what has ended or is past its retention.
pub async fn purge(pool: &AnyPool, now: i64, retention: Retention) -> AppResult<Purged> {
    let mut conn = pool.acquire().await?;
    let sessions = sessions::purge_expired(&mut conn, now).await?;
    let windows = rate_limits::purge(&mut conn, now - 86_400).await?;
    form_submissions::purge(&mut conn, now - crate::service::once::REMEMBERED_SECS).await?;
    // Reset links work for an hour; a day later they are of no use to anyone.
    crate::service::repo::password_resets::purge(&mut conn, now - 86_400).await?;
    let mut messages = 0;
    if retention.messages_days > 0 {
        let before = now - i64::from(retention.messages_days) * 86_400;
        for queue in [Queue::Outbox, Queue::WebhookDeliveries] {
            messages += queue::purge_finished(&mut conn, queue, before).await?;
        }
    }
    let audit = crate::service::audit::purge_expired(&mut conn, now, retention.audit_days).await?;
    let usage = if retention.usage_days > 0 {
        let before = now - i64::from(retention.usage_days) * 86_400;
        crate::service::repo::key_usage::delete_before(&mut conn, before).await?
    } else {
        0
    };
    Ok(Purged {
        usage,
        sessions,
        windows,
        messages,
        audit,
    })
}
