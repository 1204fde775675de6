//! Adding, changing and deleting webhook endpoints, sending one a test event and sending a
//! failed delivery again: each one transaction with its audit entry (the URL audited without
//! its query string, which may carry the receiver's token).

use sqlx::AnyConnection;

use super::address::{self, AddressRule};
use super::{EventType, PingData, body, tenant_id};
use crate::clock::Clock;
use crate::domain::{Actor, Permission};
use crate::error::AppError;
use crate::service::audit;
use crate::service::repo::secret_keys as keys_repo;
use crate::service::repo::webhooks::{self as repo, EndpointFields, EndpointRow, NewDelivery};
use crate::service::{FieldErrors, FormError};

/// An endpoint as submitted from its form.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub signing_key_id: String,
}

/// The longest endpoint URL accepted.
const URL_MAX: usize = 2_000;

/// Checks an endpoint URL: http or https, a host, no credentials, no fragment.
pub fn check_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("Enter the URL keyward should send events to.".into());
    }
    if raw.len() > URL_MAX {
        return Err(format!("Use a URL of at most {URL_MAX} characters."));
    }
    let url = url::Url::parse(raw)
        .map_err(|_| "Enter a full URL, such as https://example.com/hooks/keyward.".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("Use an http:// or https:// URL.".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("The URL needs a host name.".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "Leave credentials out of the URL: receivers check the Keyward-Signature header \
             instead."
                .into(),
        );
    }
    if url.fragment().is_some() {
        return Err("Remove the #fragment: it is never sent to the server.".into());
    }
    Ok(url.to_string())
}

/// An endpoint URL as shown outside the endpoint's own page, and as audited: without its query
/// string, which may carry a token the receiver expects (`?…` says that there was one).
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let had_query = parsed.query().is_some_and(|q| !q.is_empty());
            parsed.set_query(None);
            parsed.set_fragment(None);
            let mut shown = parsed.to_string();
            if had_query {
                shown.push_str("?…");
            }
            shown
        }
        // Never stored (URLs are checked on the way in); cut by hand all the same.
        Err(_) => match url.split_once(['?', '#']) {
            Some((head, _)) => format!("{head}?…"),
            None => url.to_string(),
        },
    }
}

/// Why the URL's receiver may not be used, checked before the write transaction starts
/// (resolving a name may take seconds); `None` when it may, or when the URL itself is wrong
/// (`check_input` says so).
async fn receiver_refusal(input: &EndpointInput, rule: AddressRule) -> Option<String> {
    let url = url::Url::parse(&check_url(&input.url).ok()?).ok()?;
    address::check_receiver(&url, rule).await.err()
}

fn require(actor: &Actor) -> Result<(), AppError> {
    Ok(actor.require(Permission::ConfigWrite)?)
}

/// The audit entry of an action on endpoint `id`, named by its URL without the query string.
struct Audited<'a> {
    action: &'a str,
    id: &'a str,
    url: &'a str,
    details: &'a str,
}

/// Writes the audit entry of an action by `actor` on an endpoint.
async fn record(
    conn: &mut AnyConnection,
    now: i64,
    actor: &Actor,
    a: Audited<'_>,
) -> sqlx::Result<()> {
    let shown = redacted(a.url);
    let entry = audit::success(actor, a.action, "webhook_endpoint", a.id, &shown, a.details);
    audit::record(conn, now, entry).await
}

async fn check_input(
    conn: &mut AnyConnection,
    input: &EndpointInput,
    refusal: Option<String>,
) -> Result<(String, String), FormError> {
    let mut errors = FieldErrors::default();
    let url = match (check_url(&input.url), refusal) {
        (Ok(url), None) => Some(url),
        (Err(m), _) | (Ok(_), Some(m)) => {
            errors.add("url", m);
            None
        }
    };
    let mut events: Vec<&'static str> = Vec::new();
    for raw in &input.events {
        match EventType::parse(raw) {
            Some(e) if !events.contains(&e.as_str()) => events.push(e.as_str()),
            Some(_) => {}
            None => errors.add("events", format!("“{raw}” is not an event keyward sends.")),
        }
    }
    if input.events.is_empty() {
        errors.add("events", "Choose at least one event.");
    }
    match keys_repo::find(conn, &input.signing_key_id).await? {
        Some(k) if k.kind == keys_repo::WEBHOOK => {}
        _ if input.signing_key_id.is_empty() => {
            errors.add(
                "signing_key_id",
                "Choose the signing key for this endpoint.",
            );
        }
        _ => errors.add(
            "signing_key_id",
            "That signing key no longer exists; choose another.",
        ),
    }
    match (url, errors.is_empty()) {
        (Some(url), true) => Ok((url, events.join(" "))),
        _ => Err(FormError::Invalid(errors)),
    }
}

/// The signing key was deleted between the check and the write (possible on PostgreSQL).
fn key_gone(e: sqlx::Error) -> FormError {
    if crate::db::is_foreign_key_violation(&e) {
        let mut errors = FieldErrors::default();
        errors.add(
            "signing_key_id",
            "That signing key no longer exists; choose another.",
        );
        FormError::Invalid(errors)
    } else {
        e.into()
    }
}

/// Adds an endpoint whose receiver `rule` allows. Audited as `webhook.created`, without the
/// URL's query string.
pub async fn create(
    pool: &sqlx::AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    input: &EndpointInput,
    rule: AddressRule,
) -> Result<String, FormError> {
    require(actor)?;
    let refusal = receiver_refusal(input, rule).await;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let (url, events) = check_input(&mut tx, input, refusal).await?;
    let id = crate::service::repo::new_id("whe");
    let fields = EndpointFields {
        url: &url,
        events: &events,
        enabled: input.enabled,
        signing_key_id: &input.signing_key_id,
    };
    repo::insert_endpoint(&mut tx, &id, &fields, now, &actor.label)
        .await
        .map_err(key_gone)?;
    let details = format!("events: {events}; signed with {}", input.signing_key_id);
    let audited = Audited {
        action: "webhook.created",
        id: &id,
        url: &url,
        details: &details,
    };
    record(&mut tx, now, actor, audited).await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes an endpoint; its receiver must be one `rule` allows. Audited as `webhook.updated`,
/// without the URL's query string.
pub async fn update(
    pool: &sqlx::AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    id: &str,
    input: &EndpointInput,
    rule: AddressRule,
) -> Result<(), FormError> {
    require(actor)?;
    let refusal = receiver_refusal(input, rule).await;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    load(&mut tx, id).await?;
    let (url, events) = check_input(&mut tx, input, refusal).await?;
    let fields = EndpointFields {
        url: &url,
        events: &events,
        enabled: input.enabled,
        signing_key_id: &input.signing_key_id,
    };
    repo::update_endpoint(&mut tx, id, &fields, now)
        .await
        .map_err(key_gone)?;
    let details = format!(
        "{}; events: {events}; signed with {}",
        if input.enabled { "enabled" } else { "disabled" },
        input.signing_key_id
    );
    let audited = Audited {
        action: "webhook.updated",
        id,
        url: &url,
        details: &details,
    };
    record(&mut tx, now, actor, audited).await?;
    tx.commit().await?;
    Ok(())
}

/// Said when an endpoint was deleted meanwhile.
pub const ENDPOINT_GONE: &str = "This webhook endpoint no longer exists.";

/// One stored endpoint; `Gone` when it was deleted meanwhile.
pub(super) async fn load(conn: &mut AnyConnection, id: &str) -> Result<EndpointRow, AppError> {
    repo::find_endpoint(conn, id)
        .await?
        .ok_or(AppError::Gone(ENDPOINT_GONE))
}

/// Deletes an endpoint with its deliveries and log. Audited as `webhook.deleted`. Returns its
/// URL as shown outside its own page (without the query string).
pub async fn delete(
    pool: &sqlx::AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    id: &str,
) -> Result<String, AppError> {
    require(actor)?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let endpoint = load(&mut tx, id).await?;
    repo::delete_endpoint(&mut tx, id).await?;
    let audited = Audited {
        action: "webhook.deleted",
        id,
        url: &endpoint.url,
        details: "",
    };
    record(&mut tx, now, actor, audited).await?;
    tx.commit().await?;
    Ok(redacted(&endpoint.url))
}

/// Queues a test event (`ping`) for one endpoint, enabled or not. Audited as
/// `webhook.test_sent`. Returns the event ID.
pub async fn send_test(
    pool: &sqlx::AnyPool,
    clock: &dyn Clock,
    sender: &tokio::sync::Notify,
    actor: &Actor,
    id: &str,
) -> Result<String, AppError> {
    require(actor)?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let endpoint = load(&mut tx, id).await?;
    let event_id = crate::service::repo::new_id("evt");
    let tenant = tenant_id(&mut tx).await?;
    // Nothing about who pressed the button leaves keyward; the audit log says that.
    let message = "A test event sent from the keyward console.".to_string();
    let body = body(
        &event_id,
        EventType::Ping,
        now,
        &tenant,
        PingData { message: &message },
    );
    let delivery = NewDelivery {
        endpoint_id: id,
        event_id: &event_id,
        event_type: EventType::Ping.as_str(),
        body: &body,
    };
    repo::insert_delivery(&mut tx, &delivery, now).await?;
    let audited = Audited {
        action: "webhook.test_sent",
        id,
        url: &endpoint.url,
        details: &event_id,
    };
    record(&mut tx, now, actor, audited).await?;
    tx.commit().await?;
    sender.notify_one();
    Ok(event_id)
}

/// Sends a failed delivery again. Audited as `webhook.redelivered`.
pub async fn redeliver(
    pool: &sqlx::AnyPool,
    clock: &dyn Clock,
    sender: &tokio::sync::Notify,
    actor: &Actor,
    endpoint_id: &str,
    delivery_id: &str,
) -> Result<bool, AppError> {
    require(actor)?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let endpoint = load(&mut tx, endpoint_id).await?;
    let done = repo::redeliver(&mut tx, endpoint_id, delivery_id, now).await?;
    if done {
        let audited = Audited {
            action: "webhook.redelivered",
            id: endpoint_id,
            url: &endpoint.url,
            details: delivery_id,
        };
        record(&mut tx, now, actor, audited).await?;
    }
    tx.commit().await?;
    sender.notify_one();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_without_credentials_are_accepted() {
        assert_eq!(
            check_url(" https://hooks.example.com/keyward?x=1 ").as_deref(),
            Ok("https://hooks.example.com/keyward?x=1")
        );
        assert!(check_url("http://127.0.0.1:9000/h").is_ok());
        for bad in [
            "",
            "hooks.example.com/keyward",
            "ftp://example.com/h",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://user:pass@example.com/h",
            "https://user@example.com/h",
            "https://example.com/h#frag",
        ] {
            assert!(check_url(bad).is_err(), "{bad} refused");
        }
        assert!(check_url(&format!("https://example.com/{}", "a".repeat(2_000))).is_err());
    }

    #[test]
    fn urls_are_shown_without_their_query_string() {
        assert_eq!(
            redacted("https://hooks.example.com/in?token=s3cret&x=1"),
            "https://hooks.example.com/in?…"
        );
        assert_eq!(
            redacted("https://hooks.example.com/in"),
            "https://hooks.example.com/in"
        );
        assert_eq!(redacted("not a url?token=s3cret"), "not a url?…");
    }
}
