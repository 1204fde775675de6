//! What the API Access screens read: the page's secret keys and endpoints, one endpoint, and
//! an endpoint with its deliveries and delivery log.

use sqlx::AnyPool;

use super::EventType;
use super::endpoints::{load, redacted};
use crate::error::AppResult;
use crate::service::repo::webhooks::{self as repo, AttemptRow, DeliveryRow, EndpointRow};
use crate::service::secret_keys::{self, SecretKey, SecretKeyKind};

/// An endpoint as the console shows it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    /// The whole URL, for the endpoint's own page only: elsewhere `shown_url`.
    pub url: String,
    pub events: Vec<EventType>,
    pub enabled: bool,
    pub signing_key_id: String,
    /// How its latest deliveries went (read for the API Access list; empty elsewhere).
    pub health: Health,
}

/// How an endpoint's latest attempts went, newest first: what the list shows beside it.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// The newest attempt, if any was made.
    pub last: Option<Attempt>,
    /// Failed attempts since the last success (of the newest [`HEALTH_WINDOW`]).
    pub failures_in_a_row: usize,
}

/// How many of an endpoint's newest attempts its health is judged from.
pub const HEALTH_WINDOW: i64 = 20;

impl Health {
    /// Judges the newest attempts, newest first.
    pub fn of(newest_first: Vec<Attempt>) -> Self {
        let failures_in_a_row = newest_first.iter().take_while(|a| !a.succeeded()).count();
        Health {
            last: newest_first.into_iter().next(),
            failures_in_a_row,
        }
    }

    /// Whether its newest attempt failed.
    pub fn failing(&self) -> bool {
        self.failures_in_a_row > 0
    }
}

impl Endpoint {
    /// The URL as shown outside the endpoint's own page: without its query string, which may
    /// carry the receiver's token.
    pub fn shown_url(&self) -> String {
        redacted(&self.url)
    }
}

impl From<EndpointRow> for Endpoint {
    fn from(row: EndpointRow) -> Self {
        Endpoint {
            events: row
                .event_list()
                .into_iter()
                .filter_map(EventType::parse)
                .collect(),
            enabled: row.enabled == 1,
            id: row.id,
            url: row.url,
            signing_key_id: row.signing_key_id,
            health: Health::default(),
        }
    }
}

/// The API Access page: every secret key (the bridge first) and every endpoint.
#[derive(Debug, Clone)]
pub struct ApiAccess {
    pub keys: Vec<SecretKey>,
    pub endpoints: Vec<Endpoint>,
}

impl ApiAccess {
    /// The name of the key an endpoint signs with (its ID should it be missing).
    pub fn signing_key_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .map_or(id, |k| k.name.as_str())
    }

    /// Whether an endpoint could be added: it needs a signing key.
    pub fn has_signing_keys(&self) -> bool {
        self.keys
            .iter()
            .any(|k| k.kind == SecretKeyKind::WebhookSigning)
    }
}

/// What the API Access page shows.
pub async fn api_access(pool: &AnyPool) -> AppResult<ApiAccess> {
    let mut conn = pool.acquire().await?;
    let keys = secret_keys::list(&mut conn).await?;
    let mut endpoints: Vec<Endpoint> = repo::list_endpoints(&mut conn)
        .await?
        .into_iter()
        .map(Endpoint::from)
        .collect();
    // One small read per endpoint: a tenant has a handful of them.
    for endpoint in &mut endpoints {
        let newest = repo::attempts(&mut conn, &endpoint.id, HEALTH_WINDOW).await?;
        endpoint.health = Health::of(newest.into_iter().map(Attempt::from).collect());
    }
    Ok(ApiAccess { keys, endpoints })
}

/// One endpoint; `Gone` when it was deleted meanwhile.
pub async fn endpoint(pool: &AnyPool, id: &str) -> AppResult<Endpoint> {
    let mut conn = pool.acquire().await?;
    Ok(load(&mut conn, id).await?.into())
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Queued,
    Delivered,
    /// Out of attempts: it may be sent again by hand.
    Failed,
    /// Not sent (its endpoint or signing key went away).
    Cancelled,
}

impl DeliveryState {
    fn from_stored(raw: &str) -> Self {
        match raw {
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            "cancelled" => DeliveryState::Cancelled,
            _ => DeliveryState::Queued,
        }
    }

    /// The state's name: `queued`, `delivered`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
        }
    }
}

/// One event on its way to an endpoint.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    /// `None` for an event this version does not know.
    pub event: Option<EventType>,
    pub state: DeliveryState,
    pub attempts: i64,
    /// When it is tried next, while it is queued.
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl From<DeliveryRow> for Delivery {
    fn from(d: DeliveryRow) -> Self {
        let state = DeliveryState::from_stored(&d.state);
        Delivery {
            event: EventType::from_stored(&d.event_type),
            next_attempt_at: (state == DeliveryState::Queued).then_some(d.next_attempt_at),
            state,
            id: d.id,
            event_id: d.event_id,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// One attempt of the delivery log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: i64,
    pub event_id: String,
    /// `None` for an event this version does not know.
    pub event: Option<EventType>,
    /// The receiver's HTTP status; `None` when it did not answer.
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

impl Attempt {
    /// Whether the receiver took the event (a 2xx answer).
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl From<AttemptRow> for Attempt {
    fn from(a: AttemptRow) -> Self {
        Attempt {
            at: a.attempted_at,
            event: EventType::from_stored(&a.event_type),
            event_id: a.event_id,
            status: a.status,
            latency_ms: a.latency_ms,
            error: a.error,
        }
    }
}

/// An endpoint's page: its settings, the signing keys it may choose, its newest deliveries
/// and its newest attempts.
#[derive(Debug, Clone)]
pub struct EndpointLog {
    pub endpoint: Endpoint,
    pub signing_keys: Vec<SecretKey>,
    pub deliveries: Vec<Delivery>,
    pub attempts: Vec<Attempt>,
}

/// What an endpoint's page shows, `rows` deliveries and attempts at most; `Gone` when the
/// endpoint was deleted meanwhile.
pub async fn endpoint_log(pool: &AnyPool, id: &str, rows: i64) -> AppResult<EndpointLog> {
    let mut conn = pool.acquire().await?;
    let endpoint = load(&mut conn, id).await?.into();
    // The log first: an attempt and its delivery's new state are written together, so the
    // deliveries read after it are at least as new, and the page never contradicts its log.
    let attempts = repo::attempts(&mut conn, id, rows).await?;
    let deliveries = repo::deliveries(&mut conn, id, rows).await?;
    Ok(EndpointLog {
        endpoint,
        signing_keys: secret_keys::signing_keys_in(&mut conn).await?,
        deliveries: deliveries.into_iter().map(Delivery::from).collect(),
        attempts: attempts.into_iter().map(Attempt::from).collect(),
    })
}
