//! The background job (SPEC §4): every `KEYWARD_JOB_INTERVAL_SECS` each instance purges old
//! sessions, rate-limit windows, and finished messages and audit entries past their retention,
//! scans for keys whose expiry notice is due, and sends what the outbox holds and the webhook
//! deliveries that are due. `keyward jobs run-once` runs one pass. Several instances may run at once: notices
//! are unique per key, expiry and stage, and emails are claimed with a lease.

pub mod expiry;
pub mod sender;
pub mod webhooks;

use std::sync::Arc;

use sqlx::AnyPool;
use tokio::sync::Notify;

use crate::auth::vault::Vault;
use crate::clock::Clock;
use crate::mail::Mailer;
use crate::service::housekeeping::{self, Retention};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sessions_purged: u64,
    pub windows_purged: u64,
    /// Sent, failed and cancelled emails and webhook deliveries past their retention.
    pub messages_purged: u64,
    /// Audit entries past `KEYWARD_AUDIT_RETENTION_DAYS`.
    pub audit_purged: u64,
    pub keys_noticed: usize,
    /// Keys warned, and keys deactivated, by the key policy's inactivity rule.
    pub keys_warned_inactive: usize,
    pub keys_deactivated_inactive: usize,
    pub emails_sent: usize,
    pub emails_retrying: usize,
    pub emails_failed: usize,
    pub webhooks_delivered: usize,
    pub webhooks_retrying: usize,
    pub webhooks_failed: usize,
}

impl Pass {
    /// The messages this pass handled, as (channel, outcome, how many), for the metrics.
    pub fn message_counts(&self) -> [(&'static str, &'static str, usize); 6] {
        [
            ("email", "sent", self.emails_sent),
            ("email", "retrying", self.emails_retrying),
            ("email", "failed", self.emails_failed),
            ("webhook", "delivered", self.webhooks_delivered),
            ("webhook", "retrying", self.webhooks_retrying),
            ("webhook", "failed", self.webhooks_failed),
        ]
    }
}

/// Everything the job needs; cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    pub pool: AnyPool,
    pub clock: Arc<dyn Clock>,
    pub mailer: Mailer,
    /// Opens sealed email bodies and webhook signing secrets.
    pub vault: Vault,
    /// Notice stages in days before expiry, largest first.
    pub stages: Vec<u32>,
    pub public_url: String,
    /// Attempts before an email is given up as failed.
    pub max_attempts: u32,
    /// The longest one SMTP conversation may take (`KEYWARD_SMTP_TIMEOUT_SECS`), well inside
    /// the lease on the email.
    pub send_deadline: std::time::Duration,
    /// Sends webhooks: a timeout per request, no redirects, public receivers only unless allowed.
    pub http: reqwest::Client,
    /// Which receivers webhooks may reach (`KEYWARD_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_rule: webhooks::AddressRule,
    pub webhook_timeout: std::time::Duration,
    /// Attempts before a webhook delivery is given up as failed.
    pub webhook_max_attempts: u32,
    /// Days finished messages are kept; 0 keeps them for ever.
    pub retention_days: u32,
    /// Days audit entries are kept; 0 keeps them for ever.
    pub audit_retention_days: u32,
    /// Days hourly usage counts are kept; 0 keeps them for ever.
    pub usage_retention_days: u32,
    /// Told when the job changes keys, so this instance's key checks read them again.
    pub key_changes: Option<Arc<crate::service::key_auth::KeyChanges>>,
    wake: Arc<Notify>,
}

impl Jobs {
    /// The job over `pool`.
    pub fn new(
        pool: AnyPool,
        clock: Arc<dyn Clock>,
        mailer: Mailer,
        vault: Vault,
        settings: &crate::config::Settings,
    ) -> anyhow::Result<Self> {
        let webhook_timeout = std::time::Duration::from_secs(settings.webhook_timeout_secs);
        let webhook_rule =
            webhooks::AddressRule::from_allow_private(settings.webhook_allow_private);
        Ok(Jobs {
            pool,
            clock,
            mailer,
            vault,
            stages: settings.expiry_notice_days.clone(),
            public_url: settings.public_url.clone(),
            max_attempts: settings.mail_max_attempts,
            send_deadline: std::time::Duration::from_secs(settings.smtp_timeout_secs),
            http: webhooks::http_client(webhook_timeout, webhook_rule)?,
            webhook_rule,
            webhook_timeout,
            webhook_max_attempts: settings.webhook_max_attempts,
            retention_days: settings.message_retention_days,
            audit_retention_days: settings.audit_retention_days,
            usage_retention_days: settings.usage_retention_days,
            key_changes: None,
            wake: Arc::new(Notify::new()),
        })
    }

    /// The job as the settings configure it: their mail transport and notice stages, sealed
    /// values opened by `vault`.
    pub fn from_settings(
        pool: AnyPool,
        clock: Arc<dyn Clock>,
        vault: &Vault,
        settings: &crate::config::Settings,
    ) -> anyhow::Result<Self> {
        let mailer = Mailer::new(
            &settings.data_dir,
            &settings.mail_from,
            settings.smtp_url.as_ref(),
        )?;
        Self::new(pool, clock, mailer, vault.clone(), settings)
    }

    /// Asks the running loop to send now (something was just queued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What wakes the loop, for parts that queue messages without holding the job.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Sends the email outbox and the webhook deliveries that are due.
    pub async fn send_all(&self) -> anyhow::Result<(sender::Sent, webhooks::Delivered)> {
        let (mail, hooks) = tokio::join!(self.send_due(), self.deliver_due());
        Ok((mail?, hooks?))
    }

    /// One pass: housekeeping, the expiry scan, the inactivity rule, then the outbox.
    pub async fn run_once(&self) -> anyhow::Result<Pass> {
        let retention = Retention {
            messages_days: self.retention_days,
            audit_days: self.audit_retention_days,
            usage_days: self.usage_retention_days,
        };
        let purged = housekeeping::purge(&self.pool, self.clock.unix(), retention).await?;
        let keys_noticed = self.scan().await?;
        let swept = self.sweep_inactive().await?;
        let (sent, hooks) = self.send_all().await?;
        Ok(Pass {
            sessions_purged: purged.sessions,
            windows_purged: purged.windows,
            messages_purged: purged.messages,
            audit_purged: purged.audit,
            keys_noticed,
            keys_warned_inactive: swept.warned,
            keys_deactivated_inactive: swept.deactivated,
            emails_sent: sent.sent,
            emails_retrying: sent.retrying,
            emails_failed: sent.failed,
            webhooks_delivered: hooks.delivered,
            webhooks_retrying: hooks.retrying,
            webhooks_failed: hooks.failed,
        })
    }

    /// Runs a pass every `interval`, and sends at once when woken; counts runs in `metrics`.
    pub async fn run_forever(
        self,
        interval: std::time::Duration,
        metrics: Option<crate::metrics::Metrics>,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let full = tokio::select! {
                _ = tick.tick() => true,
                _ = self.wake.notified() => false,
            };
            let result = if full {
                self.run_once().await
            } else {
                self.send_all().await.map(|(mail, hooks)| Pass {
                    emails_sent: mail.sent,
                    emails_retrying: mail.retrying,
                    emails_failed: mail.failed,
                    webhooks_delivered: hooks.delivered,
                    webhooks_retrying: hooks.retrying,
                    webhooks_failed: hooks.failed,
                    ..Pass::default()
                })
            };
            let outcome = if result.is_ok() { "ok" } else { "failed" };
            if let Some(m) = &metrics {
                m.job_runs
                    .with_label_values(&[if full { "pass" } else { "send" }, outcome])
                    .inc();
                if let Ok(p) = &result {
                    m.count_messages(&p.message_counts());
                }
            }
            if let Err(e) = result {
                tracing::warn!(error = %e, "background job failed");
            }
        }
    }
}

/// Messages handled at the same time: each waits mostly on the far side.
const AT_ONCE: usize = 8;

/// Runs `one` on every ID `due` names, a few at a time, until nothing due is left that this
/// pass has not handled yet (`one` answers `None` for a message another sender holds). Up to
/// AT_ONCE are in flight and the next starts as soon as one ends; when the IDs in hand run out,
/// `due` is asked again at once, so a stalled server connection holds one place until its
/// deadline and never the messages behind it. Returns what each handled message came to.
async fn in_rounds<K, Due, DueFut, One, OneFut>(due: Due, one: One) -> anyhow::Result<Vec<K>>
where
    Due: Fn() -> DueFut,
    DueFut: std::future::Future<Output = anyhow::Result<Vec<String>>>,
    One: Fn(String) -> OneFut,
    OneFut: std::future::Future<Output = anyhow::Result<Option<K>>> + Send + 'static,
    K: Send + 'static,
{
    let mut outcomes = Vec::new();
    // Each message once per pass: one tried and due again (or held by a dead sender's lease
    // that ran out meanwhile) waits for the next pass.
    let mut seen = std::collections::HashSet::new();
    let mut waiting = std::collections::VecDeque::new();
    let mut running = tokio::task::JoinSet::new();
    let mut exhausted = false;
    loop {
        while running.len() < AT_ONCE {
            if let Some(id) = waiting.pop_front() {
                running.spawn(one(id));
            } else if !exhausted {
                let fresh: Vec<String> = due()
                    .await?
                    .into_iter()
                    .filter(|id| seen.insert(id.clone()))
                    .collect();
                exhausted = fresh.is_empty();
                waiting.extend(fresh);
            } else {
                break;
            }
        }
        let Some(joined) = running.join_next().await else {
            return Ok(outcomes);
        };
        match joined? {
            Ok(Some(outcome)) => outcomes.push(outcome),
            Ok(None) => {}
            // One message's trouble (its endpoint deleted mid-send, a lost connection) does
            // not stop the others; its lease runs out and it is tried again.
            Err(e) => tracing::warn!(error = %e, "a message could not be handled"),
        }
    }
}
