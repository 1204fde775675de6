//! The webhook sender: claims due deliveries with a lease, signs each with its endpoint's
//! signing key at the moment of sending, POSTs it, and logs the attempt with the status code and
//! latency. A 2xx answer delivers it; anything else (another status, a timeout, a refused
//! connection) retries with the mail sender's backoff until the configured number of attempts.
//! Redirects are not followed: a receiver that moved must be updated in the console.
//!
//! Unless `KEYWARD_WEBHOOK_ALLOW_PRIVATE=true`, the client connects only to public addresses
//! (`service::webhooks::address`): its resolver refuses a name when any address it resolves to
//! is not public, and the connection goes to exactly the addresses it checked, so a name that
//! answers differently now (DNS rebinding) still reaches nothing private. Literal IP addresses
//! never reach the resolver, so they are checked before the request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::jobs::sender::backoff;
use crate::jobs::{Jobs, in_rounds};
use crate::service::dispatch::{self, Attempt, DeliveryToSend, Queue, Taken};
pub use crate::service::webhooks::address::AddressRule;
use crate::service::webhooks::address::{is_local_name, is_public};
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

/// The HTTP client of the webhook sender: a timeout per request, no redirects, and unless
/// `rule` allows any address, public receivers only.
pub fn http_client(timeout: Duration, rule: AddressRule) -> anyhow::Result<reqwest::Client> {
    // One process-wide TLS provider: ring, which lettre already brings in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION"), " webhooks"));
    let builder = match rule {
        // A proxy would resolve and connect on keyward's behalf, past the checks: none.
        AddressRule::PublicOnly => builder.dns_resolver(Arc::new(PublicOnly)).no_proxy(),
        AddressRule::Any => builder,
    };
    Ok(builder.build()?)
}

/// Why a receiver was not contacted: its address is not public. The delivery log says only
/// that, the same for every such address, and no connection was tried, so an endpoint cannot
/// tell which private ports are open.
#[derive(Debug)]
pub struct NotPublic;

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(NOT_PUBLIC)
    }
}

impl std::error::Error for NotPublic {}

/// The delivery log's words for a receiver that is not public.
const NOT_PUBLIC: &str = "not sent: the receiver's address is not public (loopback, private \
                          network, link-local or reserved), and KEYWARD_WEBHOOK_ALLOW_PRIVATE \
                          is not true";

/// Resolves receivers' names with the system resolver and answers only when every address is
/// public; the client then connects to exactly those addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            if is_local_name(&host) {
                return Err(NotPublic.into());
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let checked = only_public(found)?;
            Ok(Box::new(checked.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses, when every one is public: a name with one private address among public ones
/// is refused whole, as the endpoint form refuses it.
fn only_public(found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, NotPublic> {
    if found.iter().all(|a| is_public(a.ip())) {
        Ok(found)
    } else {
        Err(NotPublic)
    }
}

/// Whether `url` names a literal IP address that `rule` forbids (literal addresses are
/// connected to without the resolver).
fn literal_forbidden(url: &str, rule: AddressRule) -> bool {
    if rule == AddressRule::Any {
        return false;
    }
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv4(ip)) => !is_public(ip.into()),
        Some(url::Host::Ipv6(ip)) => !is_public(ip.into()),
        Some(url::Host::Domain(_)) => false,
        // Unreadable: refused rather than sent somewhere unchecked.
        None => true,
    }
}

enum Outcome {
    Delivered,
    Retrying,
    Failed,
}

/// Why a delivery got no answer.
enum Unsent {
    /// The receiver's address is not public: nothing was sent, and retrying cannot help.
    NotPublic,
    /// Anything else, in words for the delivery log.
    Failed(String),
}

impl Jobs {
    /// How long a claimed delivery is reserved for its sender: longer than a request may take.
    fn webhook_lease(&self) -> i64 {
        self.webhook_timeout.as_secs() as i64 * 2 + 60
    }

    /// Sends every due delivery, round after round, until none is left.
    pub async fn deliver_due(&self) -> anyhow::Result<Delivered> {
        let due = || async {
            let now = self.clock.unix();
            Ok(dispatch::due(&self.pool, Queue::WebhookDeliveries, now, ROUND).await?)
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
        let lease_until = now + self.webhook_lease();
        let taken = dispatch::take_delivery(&self.pool, &self.vault, id, now, lease_until).await?;
        let (claim, d) = match taken {
            None => return Ok(None),
            Some(Taken::Failed) => return Ok(Some(Outcome::Failed)),
            Some(Taken::Ready(claim, d)) => (claim, d),
        };
        let started = Instant::now();
        let result = if literal_forbidden(&d.url, self.webhook_rule) {
            Err(Unsent::NotPublic)
        } else {
            self.post(&d).await
        };
        let refused = matches!(result, Err(Unsent::NotPublic));
        // No connection was tried for a refused receiver: no time to report either.
        let latency_ms = if refused {
            0
        } else {
            started.elapsed().as_millis() as i64
        };
        let done = self.clock.unix();
        let (status, error) = answer(result);
        let delivered = error.is_none();
        let attempts = d.attempts + 1;
        let give_up = refused || (!delivered && attempts >= i64::from(self.webhook_max_attempts));
        let retry_at = (!delivered && !give_up).then(|| done + backoff(attempts));
        let attempt = Attempt {
            delivery_id: id,
            endpoint_id: &d.endpoint_id,
            at: done,
            status: status.map(i64::from),
            latency_ms,
            error: error.as_deref(),
        };
        let recorded = dispatch::delivery_attempted(
            &self.pool,
            &attempt,
            &d.signing_key_id,
            &claim,
            delivered,
            retry_at,
        )
        .await?;
        if !recorded {
            // Our lease ran out and another sender took the delivery over (or it was
            // finished meanwhile): its outcome stands.
            tracing::warn!(delivery = %id, "a webhook attempt finished after its lease; its outcome was not recorded");
            return Ok(None);
        }
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
    async fn post(&self, d: &DeliveryToSend) -> Result<u16, Unsent> {
        let secret = secrecy::ExposeSecret::expose_secret(&d.secret);
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

/// The status code to log and, unless it was a 2xx, why the attempt did not deliver.
fn answer(result: Result<u16, Unsent>) -> (Option<u16>, Option<String>) {
    match result {
        Ok(status) if (200..300).contains(&status) => (Some(status), None),
        Ok(status) if (300..400).contains(&status) => (
            Some(status),
            Some(format!(
                "the receiver answered {status}; keyward does not follow redirects, so update \
                 the endpoint URL"
            )),
        ),
        Ok(status) => (
            Some(status),
            Some(format!("the receiver answered {status}")),
        ),
        Err(Unsent::NotPublic) => (None, Some(NOT_PUBLIC.to_string())),
        Err(Unsent::Failed(message)) => (None, Some(message)),
    }
}

/// Why a request got no answer, in words for the delivery log.
fn describe(e: &reqwest::Error, timeout: Duration) -> Unsent {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<NotPublic>() {
            return Unsent::NotPublic;
        }
        source = cause.source();
    }
    Unsent::Failed(if e.is_timeout() {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_any_private_address_is_refused_whole() {
        let public: SocketAddr = "93.184.216.34:0".parse().unwrap();
        let rebound: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let metadata: SocketAddr = "[::ffff:169.254.169.254]:0".parse().unwrap();
        assert_eq!(only_public(vec![public]).unwrap(), vec![public]);
        assert!(only_public(vec![public, rebound]).is_err());
        assert!(only_public(vec![metadata]).is_err());
    }

    #[test]
    fn literal_private_addresses_are_forbidden_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/h",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:a00:1]/",
        ] {
            assert!(literal_forbidden(url, AddressRule::PublicOnly), "{url}");
            assert!(!literal_forbidden(url, AddressRule::Any), "{url}");
        }
        assert!(!literal_forbidden(
            "https://93.184.216.34/h",
            AddressRule::PublicOnly
        ));
        assert!(!literal_forbidden(
            "https://hooks.example.com/h",
            AddressRule::PublicOnly
        ));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_this_machine() {
        use reqwest::dns::Resolve;
        for name in ["localhost", "api.localhost"] {
            let answer = PublicOnly.resolve(name.parse().unwrap()).await;
            assert!(answer.is_err_and(|e| e.is::<NotPublic>()), "{name}");
        }
    }
}
