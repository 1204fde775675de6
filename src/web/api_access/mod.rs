//! Configuration > API Access (SPEC §2.4, seed 000): the Secret Keys section with its
//! three-dot menus, the warning before a new secret, the one-time Generate Secret Key dialog
//! (with the bridge's client credentials), and the webhook endpoints with their delivery logs.

mod signing_keys;
mod webhooks;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::service::secret_keys::{SecretKey, SecretKeyKind, Tools};
use crate::service::webhooks::{self as service, AddressRule, EventType};
use crate::state::AppState;
use crate::web::granted::{ConfigWrite, Granted};
use crate::web::pages::When;
use crate::web::{Frame, html};

const BASE: &str = "/configuration/api-access";

/// The page's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(page))
        .route(
            "/configuration/api-access/secret-keys/new",
            web::get().to(signing_keys::new_key_form),
        )
        .route(
            "/configuration/api-access/secret-keys",
            web::post().to(signing_keys::create_key),
        )
        .route(
            "/configuration/api-access/secret-keys/{id}/generate",
            web::get().to(signing_keys::generate_warning),
        )
        .route(
            "/configuration/api-access/secret-keys/{id}/generate",
            web::post().to(signing_keys::generate),
        )
        .route(
            "/configuration/api-access/secret-keys/{id}/delete",
            web::get().to(signing_keys::delete_key_confirm),
        )
        .route(
            "/configuration/api-access/secret-keys/{id}/delete",
            web::post().to(signing_keys::delete_key),
        )
        .route(
            "/configuration/api-access/webhooks/new",
            web::get().to(webhooks::new_endpoint_form),
        )
        .route(
            "/configuration/api-access/webhooks",
            web::post().to(webhooks::create_endpoint),
        )
        .route(
            "/configuration/api-access/webhooks/{id}",
            web::get().to(webhooks::endpoint_page),
        )
        .route(
            "/configuration/api-access/webhooks/{id}",
            web::post().to(webhooks::update_endpoint),
        )
        .route(
            "/configuration/api-access/webhooks/{id}/test",
            web::post().to(webhooks::send_test),
        )
        .route(
            "/configuration/api-access/webhooks/{id}/deliveries/{delivery}/redeliver",
            web::post().to(webhooks::redeliver),
        )
        .route(
            "/configuration/api-access/webhooks/{id}/delete",
            web::get().to(webhooks::delete_endpoint_confirm),
        )
        .route(
            "/configuration/api-access/webhooks/{id}/delete",
            web::post().to(webhooks::delete_endpoint),
        );
}

/// A secret key as its row shows it.
struct KeyView {
    id: String,
    name: String,
    kind: &'static str,
    is_bridge: bool,
    client_id: String,
    created: When,
    regenerated: Option<When>,
    last_used: Option<When>,
    has_secret: bool,
}

impl KeyView {
    fn of(key: &SecretKey, now: i64) -> Self {
        KeyView {
            id: key.id.clone(),
            name: key.name.clone(),
            kind: key.kind.label(),
            is_bridge: key.kind == SecretKeyKind::Bridge,
            client_id: key.client_id.clone().unwrap_or_default(),
            created: When::at(key.created_at, now),
            regenerated: key.regenerated_at.map(|t| When::at(t, now)),
            last_used: key.last_used_at.map(|t| When::at(t, now)),
            has_secret: key.has_secret,
        }
    }
}

/// An endpoint as its row shows it.
struct EndpointView {
    id: String,
    /// Without the query string, which may carry the receiver's token.
    url: String,
    events: String,
    enabled: bool,
    signing_key: String,
    /// How its latest deliveries went, in words; `failing` when the newest attempt failed.
    health: String,
    failing: bool,
}

/// An endpoint's health in words: its newest answer, and the failures since the last success.
fn health_words(health: &service::Health, now: i64) -> String {
    let Some(last) = &health.last else {
        return "No deliveries yet".to_string();
    };
    let when = When::at(last.at, now).relative;
    let answer = match last.status {
        Some(status) => format!("answered {status}"),
        None => "no answer".to_string(),
    };
    match health.failures_in_a_row {
        0 => format!("Last delivery {when}: {answer}"),
        1 => format!("Last attempt failed {when}: {answer}"),
        n if i64::try_from(n).is_ok_and(|n| n >= service::HEALTH_WINDOW) => {
            format!("Failing: {n} or more attempts in a row; last {when}: {answer}")
        }
        n => format!("Failing: {n} attempts in a row; last {when}: {answer}"),
    }
}

#[derive(Template)]
#[template(path = "configuration/api_access.html")]
struct ApiAccessPage {
    frame: Frame,
    keys: Vec<KeyView>,
    endpoints: Vec<EndpointView>,
    has_signing_keys: bool,
    notice: String,
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    deleted: String,
    #[serde(default)]
    endpoint_deleted: String,
}

/// Where endpoints may send, as the settings say.
fn address_rule(state: &AppState) -> AddressRule {
    AddressRule::from_allow_private(state.settings.webhook_allow_private)
}

/// What generating a secret needs from the application.
fn tools(state: &AppState) -> Tools<'_> {
    Tools {
        clock: state.clock.as_ref(),
        vault: &state.vault,
        hasher: &state.key_hasher,
    }
}

/// GET /configuration/api-access
pub async fn page(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    q: web::Query<Notice>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.unix();
    let access = service::api_access(&state.pool).await?;
    let endpoints = access
        .endpoints
        .iter()
        .map(|e| EndpointView {
            id: e.id.clone(),
            url: e.shown_url(),
            events: events_label(&e.events),
            enabled: e.enabled,
            signing_key: access.signing_key_name(&e.signing_key_id).to_string(),
            health: health_words(&e.health, now),
            failing: e.health.failing(),
        })
        .collect();
    let notice = if !q.deleted.is_empty() {
        format!("The secret key “{}” was deleted.", q.deleted)
    } else if !q.endpoint_deleted.is_empty() {
        // No URL in the redirect: its query string may carry the receiver's token.
        "The webhook endpoint was deleted with its delivery log.".to_string()
    } else {
        String::new()
    };
    Ok(html(
        StatusCode::OK,
        ApiAccessPage {
            frame: Frame::new(&user, "api-access"),
            has_signing_keys: access.has_signing_keys(),
            keys: access.keys.iter().map(|k| KeyView::of(k, now)).collect(),
            endpoints,
            notice,
        },
    ))
}

/// The events of an endpoint, as its row names them.
fn events_label(events: &[EventType]) -> String {
    let labels: Vec<&str> = EventType::SUBSCRIBABLE
        .iter()
        .filter(|e| events.contains(e))
        .map(|e| e.label())
        .collect();
    if labels.len() == EventType::SUBSCRIBABLE.len() {
        "All key events".into()
    } else {
        labels.join(", ")
    }
}
