//! The webhook sender: claims due deliveries with a lease, signs each with its endpoint's
//! signing key at the moment of sending, POSTs it, and logs the attempt with the status code and
//! latency. A 2xx answer delivers it; anything else (another status, a timeout, a refused
//! connection) retries with the mail sender's backoff until the configured number of attempts.
//! Redirects are not followed: a receiver that moved must be updated in the console.

use std::time::{Duration, Instant};

use crate::auth::vault::Purpose;
use crate::jobs::sender::backoff;
use crate::jobs::{Jobs, in_rounds};
use crate::repo::queue::{self, Queue};
use crate::repo::webhooks::{self as repo, Attempt, DeliveryToSend};
use crate::service::webhooks::signature;

/// Deliveries claimed per round.
const ROUND: i64 = 50;

/// What a delivering pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// The HTTP client of the webhook sender: a timeout per request, no redirects.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    // One process-wide TLS provider: ring, which lettre already brings in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION"), " webhooks"))
        .build()?)
}

enum Outcome {
    Delivered,
    Retrying,
    Failed,
}

impl Jobs {
    /// How long a claimed delivery is reserved for its sender: longer than a request may take.
    fn webhook_lease(&self) -> i64 {
        self.webhook_timeout.as_secs() as i64 * 2 + 60
    }

    /// Sends every due delivery, round after round, until none is left.
    pub async fn deliver_due(&self) -> anyhow::Result<Delivered> {
        let due = || async {
            let mut conn = self.pool.acquire().await?;
            Ok(queue::due(
                &mut conn,
                Queue::WebhookDeliveries,
                self.clock.unix(),
                ROUND,
            )
            .await?)
        };
        let one = |id: String| {
            let jobs = self.clone();
            async move { jobs.deliver_one(&id).await }
        };
        let mut total = Delivered::default();
        for outcome in in_rounds(due, one).await? {
            match outcome {
                Outcome::Delivered => total.delivered += 1,
                Outcome::Retrying => total.retrying += 1,
                Outcome::Failed => total.failed += 1,
            }
        }
        Ok(total)
    }

    /// Claims and sends one delivery; `None` when another sender has it.
    async fn deliver_one(&self, id: &str) -> anyhow::Result<Option<Outcome>> {
        let now = self.clock.unix();
        let mut conn = self.pool.acquire().await?;
        let lease_until = now + self.webhook_lease();
        if !queue::claim(&mut conn, Queue::WebhookDeliveries, id, now, lease_until).await? {
            return Ok(None);
        }
        let Some(d) = repo::find_to_send(&mut conn, id).await? else {
            return Ok(None);
        };
        if d.enabled == 0 && d.event_type != "ping" {
            repo::cancel(
                &mut conn,
                id,
                "the endpoint was disabled before it was sent",
            )
            .await?;
            return Ok(None);
        }
        let secret = match d.sealed_secret.as_deref() {
            Some(sealed) => self.vault.open_sealed(Purpose::SecretKey, sealed),
            None => Err(crate::auth::vault::SealError::Malformed),
        };
        let secret = match secret {
            Ok(s) => s,
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
                repo::record_attempt(&mut conn, &attempt, false, None).await?;
                tracing::warn!(delivery = %id, error = %error, "a webhook could not be signed");
                return Ok(Some(Outcome::Failed));
            }
        };
        drop(conn);
        let started = Instant::now();
        let result = self.post(&d, &secret).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        let done = self.clock.unix();
        let (status, error) = match result {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) if (300..400).contains(&status) => (
                Some(status),
                Some(format!(
                    "the receiver answered {status}; keyward does not follow redirects, so \
                     update the endpoint URL"
                )),
            ),
            Ok(status) => (
                Some(status),
                Some(format!("the receiver answered {status}")),
            ),
            Err(message) => (None, Some(message)),
        };
        let delivered = error.is_none();
        let attempts = d.attempts + 1;
        let give_up = !delivered && attempts >= i64::from(self.webhook_max_attempts);
        let retry_at = (!delivered && !give_up).then(|| done + backoff(attempts));
        let attempt = Attempt {
            delivery_id: id,
            endpoint_id: &d.endpoint_id,
            at: done,
            status: status.map(i64::from),
            latency_ms,
            error: error.as_deref(),
        };
        let mut conn = self.pool.acquire().await?;
        repo::record_attempt(&mut conn, &attempt, delivered, retry_at).await?;
        crate::repo::secret_keys::touch_used(&mut conn, &d.signing_key_id, done).await?;
        Ok(Some(if delivered {
            Outcome::Delivered
        } else if give_up {
            tracing::warn!(delivery = %id, attempts, error = ?error, "a webhook delivery failed for good");
            Outcome::Failed
        } else {
            Outcome::Retrying
        }))
    }

    /// POSTs a delivery, signed now; the status code, or why there was none.
    async fn post(&self, d: &DeliveryToSend, secret: &str) -> Result<u16, String> {
        let t = self.clock.unix();
        let response = self
            .http
            .post(&d.url)
            .header("Content-Type", "application/json")
            .header("Keyward-Event-Id", &d.event_id)
            .header("Keyward-Event-Type", &d.event_type)
            .header("Keyward-Delivery-Id", &d.id)
            .header("Keyward-Signature", signature(secret, t, &d.body))
            .body(d.body.clone())
            .send()
            .await
            .map_err(|e| describe(&e, self.webhook_timeout))?;
        Ok(response.status().as_u16())
    }
}

/// Why a request got no answer, in words for the delivery log.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", timeout.as_secs())
    } else if e.is_connect() {
        "could not connect to the receiver".to_string()
    } else {
        // Without the URL: its query string may carry a token the receiver expects.
        let mut message = "the request failed".to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        message
    }
}
