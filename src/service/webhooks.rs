//! Webhooks (SPEC §2.4): endpoints that hear about key events, and the events themselves,
//! queued as deliveries in the transaction that made the change, so that an event is sent if
//! and only if its change committed. `jobs::webhooks` signs and sends them.

pub mod address;
mod endpoints;
mod views;

use serde::Serialize;
use sqlx::AnyConnection;

use crate::service::repo::webhooks::{self as repo, NewDelivery};

pub use address::AddressRule;
pub use endpoints::{
    ENDPOINT_GONE, EndpointInput, check_url, create, delete, redacted, redeliver, send_test, update,
};
pub use views::{
    ApiAccess, Attempt, Delivery, DeliveryState, Endpoint, EndpointLog, HEALTH_WINDOW, Health,
    api_access, endpoint, endpoint_log,
};

/// What a webhook tells about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    KeyCreated,
    SecretRegenerated,
    KeyExpiring,
    KeyExpired,
    KeyLocked,
    KeyDeleted,
    /// A replaced secret was presented again (the tripwire).
    ReplacedSecretUsed,
    /// A key has gone unused and will be deactivated by the key policy.
    InactiveWarning,
    /// The key policy deactivated a key that went unused.
    DeactivatedInactive,
    /// The key policy changed (its body carries the policy, not a key).
    KeyPolicyChanged,
    /// A secret of the key was reported exposed (by the API or secret scanning).
    KeyExposed,
    /// Sent by the "Send test event" button only.
    Ping,
}

impl EventType {
    /// The events an endpoint can subscribe to.
    pub const SUBSCRIBABLE: [EventType; 11] = [
        EventType::KeyCreated,
        EventType::SecretRegenerated,
        EventType::KeyExpiring,
        EventType::KeyExpired,
        EventType::KeyLocked,
        EventType::KeyDeleted,
        EventType::ReplacedSecretUsed,
        EventType::InactiveWarning,
        EventType::DeactivatedInactive,
        EventType::KeyPolicyChanged,
        EventType::KeyExposed,
    ];

    /// The `type` of the event body.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::KeyCreated => "key.created",
            EventType::SecretRegenerated => "key.secret_regenerated",
            EventType::KeyExpiring => "key.expiring",
            EventType::KeyExpired => "key.expired",
            EventType::KeyLocked => "key.locked",
            EventType::KeyDeleted => "key.deleted",
            EventType::ReplacedSecretUsed => "key.replaced_secret_used",
            EventType::InactiveWarning => "key.inactive_warning",
            EventType::DeactivatedInactive => "key.deactivated_inactive",
            EventType::KeyPolicyChanged => "key_policy.changed",
            EventType::KeyExposed => "key.exposed",
            EventType::Ping => "ping",
        }
    }

    /// What the console calls it.
    pub fn label(self) -> &'static str {
        match self {
            EventType::KeyCreated => "Key created",
            EventType::SecretRegenerated => "Secret regenerated",
            EventType::KeyExpiring => "Key expiring",
            EventType::KeyExpired => "Key expired",
            EventType::KeyLocked => "Key locked",
            EventType::KeyDeleted => "Key deleted",
            EventType::ReplacedSecretUsed => "Replaced secret used",
            EventType::InactiveWarning => "Key unused, to be deactivated",
            EventType::DeactivatedInactive => "Key deactivated as unused",
            EventType::KeyPolicyChanged => "Key policy changed",
            EventType::KeyExposed => "Secret exposed",
            EventType::Ping => "Test event",
        }
    }

    /// The subscribable event of that name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::SUBSCRIBABLE.into_iter().find(|e| e.as_str() == raw)
    }

    /// The event a stored delivery names, the test event included.
    pub fn from_stored(raw: &str) -> Option<Self> {
        if raw == EventType::Ping.as_str() {
            Some(EventType::Ping)
        } else {
            Self::parse(raw)
        }
    }
}

/// The key an event is about, as its body describes it. Never a secret.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct KeyPayload<'a> {
    pub id: &'a str,
    pub name: &'a str,
    #[serde(rename = "type")]
    pub key_type: &'a str,
    pub owner_user_id: Option<&'a str>,
    /// Unix seconds; `null` for a key that never expires.
    pub expires_at: Option<i64>,
}

#[derive(Serialize)]
struct Body<'a, D: Serialize> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    created_at: i64,
    tenant_id: &'a str,
    data: D,
}

#[derive(Serialize)]
struct KeyData<'a> {
    key: KeyPayload<'a>,
}

#[derive(Serialize)]
struct PingData<'a> {
    message: &'a str,
}

/// An event's JSON body.
fn body<D: Serialize>(event_id: &str, event: EventType, now: i64, tenant: &str, data: D) -> String {
    serde_json::to_string(&Body {
        id: event_id,
        event_type: event.as_str(),
        created_at: now,
        tenant_id: tenant,
        data,
    })
    .expect("an event body serialises")
}

/// The tenant the events come from, as their bodies name it.
async fn tenant_id(conn: &mut AnyConnection) -> sqlx::Result<String> {
    Ok(crate::auth::store::settings::get(conn, "tenant_id")
        .await?
        .unwrap_or_default())
}

/// The `Keyward-Signature` header of `body` sent at `t` (unix seconds):
/// `t=<t>,v1=<hex of HMAC-SHA256 over "<t>.<body>" keyed with the secret>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("t={t},v1={}", crate::auth::session_store::hex(&digest))
}

/// Queues `event` about `key` for every enabled endpoint subscribed to it, in the caller's
/// transaction. Returns how many deliveries were queued.
pub async fn emit(
    conn: &mut AnyConnection,
    now: i64,
    event: EventType,
    key: &KeyPayload<'_>,
) -> sqlx::Result<usize> {
    emit_data(conn, now, event, KeyData { key: *key }).await
}

/// Queues `event` with `data` as its body's `data` for every enabled endpoint subscribed to
/// it, in the caller's transaction (events about something other than one key).
pub async fn emit_data<D: Serialize>(
    conn: &mut AnyConnection,
    now: i64,
    event: EventType,
    data: D,
) -> sqlx::Result<usize> {
    let endpoints = repo::subscribed(conn, event.as_str()).await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let event_id = crate::service::repo::new_id("evt");
    let tenant = tenant_id(conn).await?;
    let body = body(&event_id, event, now, &tenant, data);
    for endpoint_id in &endpoints {
        let delivery = NewDelivery {
            endpoint_id,
            event_id: &event_id,
            event_type: event.as_str(),
            body: &body,
        };
        repo::insert_delivery(conn, &delivery, now).await?;
    }
    Ok(endpoints.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_documented_recipe() {
        // HMAC-SHA256("whsec", "1700000000.{}") computed independently with Python's hmac.
        assert_eq!(
            signature("whsec", 1_700_000_000, "{}"),
            "t=1700000000,v1=7d44587dddbaf4c7f70fef20f48cd594834ffea1641e3ac227b84408298738af"
        );
    }

    #[test]
    fn event_names_round_trip_and_ping_is_not_subscribable() {
        for e in EventType::SUBSCRIBABLE {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
        }
        assert_eq!(EventType::parse("ping"), None);
    }
}
