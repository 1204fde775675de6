//! The queues behind the senders (the email outbox and the webhook deliveries): what is due,
//! taking one with a lease and a fencing token, opening what was sealed, and recording how the
//! sending went. `jobs` runs the loops and speaks SMTP and HTTP; every read and write of the
//! queues is here.

use secrecy::{ExposeSecret, SecretString};
use sqlx::AnyPool;

use crate::auth::vault::{Binding, SealError, Vault};
use crate::error::AppResult;
use crate::mail::Email;
use crate::service::repo::{outbox, queue, secret_keys, webhooks};

pub use crate::service::repo::queue::Queue;

/// A taken message: its lease's fencing token. Only the holder of the current claim may record
/// an outcome; a sender whose lease ran out finds its write refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim(String);

/// What taking a message gave.
pub enum Taken<T> {
    /// Ours to send, under this claim.
    Ready(Claim, T),
    /// It could not be prepared (a sealed body or signing key that does not open) and was
    /// recorded as failed: there is nothing to send.
    Failed,
}

/// The IDs of up to `limit` messages of `queue` due at `now` and not leased.
pub async fn due(pool: &AnyPool, queue: Queue, now: i64, limit: i64) -> AppResult<Vec<String>> {
    let mut conn = pool.acquire().await?;
    Ok(queue::due(&mut conn, queue, now, limit).await?)
}

/// Leases message `id` until `lease_until`; `None` when another sender has it or it is done.
async fn claim(
    conn: &mut sqlx::AnyConnection,
    queue: Queue,
    id: &str,
    now: i64,
    lease_until: i64,
) -> AppResult<Option<Claim>> {
    Ok(queue::claim(conn, queue, id, now, lease_until)
        .await?
        .map(Claim))
}

/// An email ready for the mailer.
pub struct EmailToSend {
    pub id: String,
    pub email: Email,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// Takes email `id` for sending: leases it and opens its sealed body. `None` when another
/// sender has it.
pub async fn take_email(
    pool: &AnyPool,
    vault: &Vault,
    id: &str,
    now: i64,
    lease_until: i64,
) -> AppResult<Option<Taken<EmailToSend>>> {
    let mut conn = pool.acquire().await?;
    let Some(claim) = claim(&mut conn, Queue::Outbox, id, now, lease_until).await? else {
        return Ok(None);
    };
    let Some(row) = outbox::find(&mut conn, id).await? else {
        return Ok(None);
    };
    let bodies = if row.sealed == 1 {
        let text = vault.open_sealed(Binding::email_text(&row.id), &row.body_text);
        let html = vault.open_sealed(Binding::email_html(&row.id), &row.body_html);
        text.and_then(|t| html.map(|h| (t, h)))
            .map(|(t, h)| (exposed(&t), exposed(&h)))
    } else {
        Ok((row.body_text.clone(), row.body_html.clone()))
    };
    let (text, html) = match bodies {
        Ok(bodies) => bodies,
        Err(e) => {
            let message = format!("the body cannot be opened: {e}");
            let written =
                outbox::mark_failed_attempt(&mut conn, id, &claim.0, &message, None).await?;
            return Ok(written.then_some(Taken::Failed));
        }
    };
    let email = Email {
        to: row.recipient,
        subject: row.subject,
        text,
        html,
    };
    Ok(Some(Taken::Ready(
        claim,
        EmailToSend {
            id: row.id,
            email,
            attempts: row.attempts,
        },
    )))
}

fn exposed(secret: &SecretString) -> String {
    secret.expose_secret().to_string()
}

/// Records that email `id` was accepted by the mail server with `response`; false when the
/// claim is no longer current (another sender took the email over, or it was finished).
pub async fn email_sent(
    pool: &AnyPool,
    id: &str,
    claim: &Claim,
    at: i64,
    response: &str,
) -> AppResult<bool> {
    let mut conn = pool.acquire().await?;
    Ok(outbox::mark_sent(&mut conn, id, &claim.0, at, response).await?)
}

/// Records a failed attempt at email `id`: due again at `retry_at`, or failed for good without
/// one; false when the claim is no longer current.
pub async fn email_failed(
    pool: &AnyPool,
    id: &str,
    claim: &Claim,
    error: &str,
    retry_at: Option<i64>,
) -> AppResult<bool> {
    let mut conn = pool.acquire().await?;
    Ok(outbox::mark_failed_attempt(&mut conn, id, &claim.0, error, retry_at).await?)
}

/// A webhook delivery ready to be signed and posted.
pub struct DeliveryToSend {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub url: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub signing_key_id: String,
    /// The endpoint's signing secret, opened.
    pub secret: SecretString,
}

/// Takes delivery `id` for sending: leases it and opens its endpoint's signing key. `None`
/// when another sender has it, or when its endpoint was disabled before it went out (it is
/// cancelled then; a test event still goes).
pub async fn take_delivery(
    pool: &AnyPool,
    vault: &Vault,
    id: &str,
    now: i64,
    lease_until: i64,
) -> AppResult<Option<Taken<DeliveryToSend>>> {
    let mut conn = pool.acquire().await?;
    let Some(claim) = claim(&mut conn, Queue::WebhookDeliveries, id, now, lease_until).await?
    else {
        return Ok(None);
    };
    let Some(d) = webhooks::find_to_send(&mut conn, id).await? else {
        return Ok(None);
    };
    if d.enabled == 0 && d.event_type != "ping" {
        let reason = "the endpoint was disabled before it was sent";
        webhooks::cancel(&mut conn, id, reason).await?;
        return Ok(None);
    }
    let secret = match d.sealed_secret.as_deref() {
        Some(sealed) => vault.open_sealed(Binding::signing_key(&d.signing_key_id), sealed),
        None => Err(SealError::Malformed),
    };
    let secret = match secret {
        Ok(secret) => secret,
        Err(e) => {
            let error = format!("the signing key cannot be read: {e}");
            let attempt = Attempt {
                delivery_id: id,
                endpoint_id: &d.endpoint_id,
                at: now,
                status: None,
                latency_ms: 0,
                error: Some(&error),
            };
            let written =
                webhooks::record_attempt(&mut conn, &attempt, &claim.0, false, None).await?;
            tracing::warn!(delivery = %id, error = %error, "a webhook could not be signed");
            return Ok(written.then_some(Taken::Failed));
        }
    };
    Ok(Some(Taken::Ready(
        claim,
        DeliveryToSend {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            body: d.body,
            url: d.url,
            attempts: d.attempts,
            signing_key_id: d.signing_key_id,
            secret,
        },
    )))
}

/// One attempt at a delivery, for its endpoint's delivery log.
pub use super::repo::webhooks::Attempt;

/// Logs an attempt signed with `signing_key_id` (which is marked used) and, under `claim`, the
/// delivery's outcome: delivered, due again at `retry_at`, or failed for good. False when the
/// claim is no longer current: the attempt is logged, its outcome is not.
pub async fn delivery_attempted(
    pool: &AnyPool,
    attempt: &Attempt<'_>,
    signing_key_id: &str,
    claim: &Claim,
    delivered: bool,
    retry_at: Option<i64>,
) -> AppResult<bool> {
    // The attempt and the delivery's new state together: a reader never sees one without the
    // other (the endpoint page reads its log, then its deliveries).
    let mut tx = crate::db::begin_write(pool).await?;
    secret_keys::touch_used(&mut tx, signing_key_id, attempt.at).await?;
    let current = webhooks::record_attempt(&mut tx, attempt, &claim.0, delivered, retry_at).await?;
    tx.commit().await?;
    Ok(current)
}
