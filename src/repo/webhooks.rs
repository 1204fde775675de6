//! Webhook endpoints, their deliveries (an outbox claimed with a lease, like the mail one) and
//! one row per delivery attempt, which is the endpoint's delivery log.

use sqlx::AnyConnection;

/// A stored endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    /// Event types, space-separated.
    pub events: String,
    pub enabled: i64,
    pub signing_key_id: String,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

impl EndpointRow {
    /// The subscribed event types.
    pub fn event_list(&self) -> Vec<&str> {
        self.events.split_whitespace().collect()
    }
}

const ENDPOINT_COLUMNS: &str =
    "id, url, events, enabled, signing_key_id, created_at, created_by, updated_at";

/// What an endpoint is set to.
#[derive(Debug, Clone, Copy)]
pub struct EndpointFields<'a> {
    pub url: &'a str,
    pub events: &'a str,
    pub enabled: bool,
    pub signing_key_id: &'a str,
}

/// Every endpoint, oldest first.
pub async fn list_endpoints(conn: &mut AnyConnection) -> sqlx::Result<Vec<EndpointRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
    )))
    .fetch_all(conn)
    .await
}

/// One endpoint by ID.
pub async fn find_endpoint(
    conn: &mut AnyConnection,
    id: &str,
) -> sqlx::Result<Option<EndpointRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Stores a new endpoint.
pub async fn insert_endpoint(
    conn: &mut AnyConnection,
    id: &str,
    fields: &EndpointFields<'_>,
    now: i64,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints \
         (id, url, events, enabled, signing_key_id, created_at, created_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6)",
    )
    .bind(id)
    .bind(fields.url)
    .bind(fields.events)
    .bind(i64::from(fields.enabled))
    .bind(fields.signing_key_id)
    .bind(now)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Changes an endpoint; false when it is gone.
pub async fn update_endpoint(
    conn: &mut AnyConnection,
    id: &str,
    fields: &EndpointFields<'_>,
    now: i64,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, events = $2, enabled = $3, signing_key_id = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(fields.url)
    .bind(fields.events)
    .bind(i64::from(fields.enabled))
    .bind(fields.signing_key_id)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Deletes an endpoint with its deliveries and their log; false when it was already gone.
pub async fn delete_endpoint(conn: &mut AnyConnection, id: &str) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM webhook_attempts WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// IDs of the enabled endpoints subscribed to an event type.
pub async fn subscribed(conn: &mut AnyConnection, event_type: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM webhook_endpoints WHERE enabled = 1 \
         AND (' ' || events || ' ') LIKE $1 ORDER BY id",
    )
    .bind(format!("% {event_type} %"))
    .fetch_all(conn)
    .await
}

/// A delivery to queue.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub endpoint_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
}

/// Queues a delivery, due now; returns its ID.
pub async fn insert_delivery(
    conn: &mut AnyConnection,
    d: &NewDelivery<'_>,
    now: i64,
) -> sqlx::Result<String> {
    let id = super::new_id("whd");
    sqlx::query(
        "INSERT INTO webhook_deliveries \
         (id, endpoint_id, event_id, event_type, body, state, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $6)",
    )
    .bind(&id)
    .bind(d.endpoint_id)
    .bind(d.event_id)
    .bind(d.event_type)
    .bind(d.body)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// A delivery with what sending it needs from its endpoint and signing key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryToSend {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub attempts: i64,
    pub url: String,
    pub enabled: i64,
    pub signing_key_id: String,
    pub sealed_secret: Option<String>,
}

/// A claimed delivery, joined to its endpoint and signing key.
pub async fn find_to_send(
    conn: &mut AnyConnection,
    id: &str,
) -> sqlx::Result<Option<DeliveryToSend>> {
    sqlx::query_as(
        "SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.body, d.attempts, e.url, \
         e.enabled, e.signing_key_id, k.sealed_secret \
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         LEFT JOIN secret_keys k ON k.id = e.signing_key_id WHERE d.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One attempt as the delivery log shows it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub delivery_id: &'a str,
    pub endpoint_id: &'a str,
    pub at: i64,
    /// The receiver's status code, when it answered.
    pub status: Option<i64>,
    pub latency_ms: i64,
    /// Why it did not count as delivered.
    pub error: Option<&'a str>,
}

/// Writes an attempt to the log and the delivery's outcome: delivered, due again at
/// `retry_at`, or failed for good. The attempt is logged whatever happens (it was made); the
/// outcome only under the claim `claim` of a delivery still queued: false when the lease ran
/// out and another sender took it over, or it is finished.
pub async fn record_attempt(
    conn: &mut AnyConnection,
    a: &Attempt<'_>,
    claim: &str,
    delivered: bool,
    retry_at: Option<i64>,
) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO webhook_attempts \
         (delivery_id, endpoint_id, attempted_at, status, latency_ms, error) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(a.delivery_id)
    .bind(a.endpoint_id)
    .bind(a.at)
    .bind(a.status)
    .bind(a.latency_ms)
    .bind(a.error)
    .execute(&mut *conn)
    .await?;
    let state = if delivered {
        "delivered"
    } else if retry_at.is_some() {
        "queued"
    } else {
        "failed"
    };
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, state = $1, lease_until = NULL, \
         lease_token = NULL, last_status = $2, last_error = $3, \
         next_attempt_at = CASE WHEN $4 = 1 THEN $5 ELSE next_attempt_at END, \
         delivered_at = CASE WHEN $6 = 1 THEN $7 ELSE delivered_at END \
         WHERE id = $8 AND lease_token = $9 AND state = 'queued'",
    )
    .bind(state)
    .bind(a.status)
    .bind(a.error)
    .bind(i64::from(retry_at.is_some()))
    .bind(retry_at.unwrap_or(0))
    .bind(i64::from(delivered))
    .bind(a.at)
    .bind(a.delivery_id)
    .bind(claim)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Ends a delivery that will not be sent, with the reason.
pub async fn cancel(conn: &mut AnyConnection, id: &str, reason: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'cancelled', lease_until = NULL, \
         lease_token = NULL, last_error = $1 WHERE id = $2 AND state = 'queued'",
    )
    .bind(reason)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a failed delivery of an endpoint back in the queue, due now, with a fresh set of
/// attempts (its log keeps the earlier ones); false unless it had failed.
pub async fn redeliver(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    id: &str,
    now: i64,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET state = 'queued', next_attempt_at = $1, lease_until = NULL, \
         attempts = 0 WHERE id = $2 AND endpoint_id = $3 AND state = 'failed'",
    )
    .bind(now)
    .bind(id)
    .bind(endpoint_id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// A delivery as the endpoint's page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// An endpoint's newest deliveries.
pub async fn deliveries(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(
        "SELECT id, endpoint_id, event_id, event_type, state, attempts, next_attempt_at, \
         last_status, last_error, created_at, delivered_at FROM webhook_deliveries \
         WHERE endpoint_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One logged attempt with its event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempted_at: i64,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// An endpoint's newest attempts, newest first: its delivery log.
pub async fn attempts(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as(
        "SELECT a.delivery_id, d.event_id, d.event_type, a.attempted_at, a.status, a.latency_ms, \
         a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
         WHERE a.endpoint_id = $1 ORDER BY a.id DESC LIMIT $2",
    )
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
