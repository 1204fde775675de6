//! The mail log: every email in the outbox with where it stands, and putting a failed one back
//! in the queue.

use sqlx::AnyPool;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::db::begin_write;
use crate::domain::{Actor, Permission};
use crate::error::{AppError, AppResult};
use crate::service::audit;
use crate::service::repo::outbox::{self, CANCELLED, FAILED, OutboxRow, QUEUED, SENT};

/// Where an email stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    /// Waiting for its first or next attempt.
    Queued,
    Sent,
    /// Out of attempts: it may be retried by hand.
    Failed,
    /// Not sent because what it was about changed (a key's expiry was extended).
    Cancelled,
}

impl MailState {
    /// Every state, in the order the mail log's tabs show them.
    pub const ALL: [MailState; 4] = [
        MailState::Queued,
        MailState::Sent,
        MailState::Failed,
        MailState::Cancelled,
    ];

    /// The state's name: `queued`, `sent`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Queued => QUEUED,
            MailState::Sent => SENT,
            MailState::Failed => FAILED,
            MailState::Cancelled => CANCELLED,
        }
    }

    /// What the mail log's tab calls it.
    pub fn label(self) -> &'static str {
        match self {
            MailState::Queued => "Queued",
            MailState::Sent => "Sent",
            MailState::Failed => "Failed",
            MailState::Cancelled => "Cancelled",
        }
    }

    /// The state of that name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// An email as the mail log shows it: never its body.
#[derive(Debug, Clone)]
pub struct Email {
    pub id: String,
    pub recipient: String,
    pub recipient_name: String,
    pub subject: String,
    pub state: MailState,
    pub attempts: i64,
    /// When it is tried again, for a queued email that was tried before.
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    /// The mail server's answer to the last attempt.
    pub server_response: Option<String>,
    pub queued_at: i64,
    pub sent_at: Option<i64>,
}

impl From<OutboxRow> for Email {
    fn from(r: OutboxRow) -> Self {
        let state = MailState::parse(&r.state).unwrap_or(MailState::Queued);
        Email {
            next_attempt_at: (state == MailState::Queued && r.attempts > 0)
                .then_some(r.next_attempt_at),
            state,
            id: r.id,
            recipient: r.recipient,
            recipient_name: r.recipient_name,
            subject: r.subject,
            attempts: r.attempts,
            last_error: r.last_error,
            server_response: r.server_response,
            queued_at: r.created_at,
            sent_at: r.sent_at,
        }
    }
}

/// How many emails a page of the mail log shows.
pub const PAGE: i64 = 50;

/// A page of the mail log and how many emails there are in each state.
#[derive(Debug, Clone)]
pub struct MailLog {
    pub emails: Vec<Email>,
    counts: Vec<(String, i64)>,
}

impl MailLog {
    /// How many emails are in a state, or in all of them.
    pub fn count(&self, state: Option<MailState>) -> i64 {
        self.counts
            .iter()
            .filter(|(s, _)| state.is_none_or(|state| s == state.as_str()))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Page `page` (from 1) of the emails in `state` (or all), newest first, [`PAGE`] at most.
pub async fn page(pool: &AnyPool, state: Option<MailState>, page: i64) -> AppResult<MailLog> {
    let mut conn = pool.acquire().await?;
    let counts = outbox::counts(&mut conn).await?;
    let rows = outbox::list(
        &mut conn,
        state.map(MailState::as_str),
        PAGE,
        (page - 1) * PAGE,
    )
    .await?;
    Ok(MailLog {
        emails: rows.into_iter().map(Email::from).collect(),
        counts,
    })
}

/// Puts a failed email back in the queue, with its audit entry, in one transaction; wakes the
/// sender after the commit. Needs `config:write` (SPEC §7).
pub async fn retry(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    sender: &Notify,
    id: &str,
) -> Result<(), AppError> {
    actor.require(Permission::ConfigWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let row = outbox::find(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    if !outbox::retry(&mut tx, id, now).await? {
        return Err(AppError::Conflict(format!(
            "Only a failed email can be retried; this one is {}.",
            row.state
        )));
    }
    let details = format!("to {}: {}", row.recipient, row.subject);
    let entry = audit::success(
        actor,
        "mail.retried",
        "email",
        &row.id,
        &row.subject,
        &details,
    );
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    sender.notify_one();
    Ok(())
}
