//! The webhook endpoints of API Access: adding one, its page (settings, test event, deliveries
//! and delivery log), sending a failed delivery again, and deleting it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{BASE, address_rule};
use crate::error::AppError;
use crate::service::secret_keys::{self, SecretKey};
use crate::service::webhooks::{self, Attempt, Delivery, EndpointInput, EventType};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::granted::{ConfigWrite, Granted};
use crate::web::pages::When;
use crate::web::{Frame, html, see_other};

/// An endpoint form as shown.
struct EndpointForm {
    url: String,
    events: Vec<String>,
    enabled: bool,
    signing_key_id: String,
    errors: FieldErrors,
}

impl EndpointForm {
    fn parse(body: &[u8]) -> Self {
        let mut form = EndpointForm {
            url: String::new(),
            events: Vec::new(),
            enabled: false,
            signing_key_id: String::new(),
            errors: FieldErrors::default(),
        };
        for (name, value) in url::form_urlencoded::parse(body) {
            match name.as_ref() {
                "url" => form.url = value.into_owned(),
                "events" => form.events.push(value.into_owned()),
                "enabled" => form.enabled = true,
                "signing_key_id" => form.signing_key_id = value.into_owned(),
                _ => {}
            }
        }
        form
    }

    fn input(&self) -> EndpointInput {
        EndpointInput {
            url: self.url.clone(),
            events: self.events.clone(),
            enabled: self.enabled,
            signing_key_id: self.signing_key_id.clone(),
        }
    }

    fn error(&self, field: &str) -> &str {
        self.errors.get(field).unwrap_or_default()
    }

    fn has(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

/// An event checkbox.
struct EventChoice {
    value: &'static str,
    label: &'static str,
}

fn event_choices() -> Vec<EventChoice> {
    EventType::SUBSCRIBABLE
        .iter()
        .map(|e| EventChoice {
            value: e.as_str(),
            label: e.label(),
        })
        .collect()
}

/// A signing key option.
struct KeyOption {
    id: String,
    name: String,
}

fn key_options(keys: Vec<SecretKey>) -> Vec<KeyOption> {
    keys.into_iter()
        .map(|k| KeyOption {
            id: k.id,
            name: k.name,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "configuration/endpoint_new.html")]
struct NewEndpointPage {
    frame: Frame,
    form: EndpointForm,
    choices: Vec<EventChoice>,
    keys: Vec<KeyOption>,
}

/// GET the form for a new endpoint: every event, enabled, the only signing key preselected.
pub async fn new_endpoint_form(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let keys = key_options(secret_keys::signing_keys(&state.pool).await?);
    let form = EndpointForm {
        url: String::new(),
        events: EventType::SUBSCRIBABLE
            .iter()
            .map(|e| e.as_str().to_string())
            .collect(),
        enabled: true,
        signing_key_id: keys.first().map(|k| k.id.clone()).unwrap_or_default(),
        errors: FieldErrors::default(),
    };
    Ok(html(
        StatusCode::OK,
        NewEndpointPage {
            frame: Frame::new(&user, "api-access"),
            form,
            choices: event_choices(),
            keys,
        },
    ))
}

/// POST a new endpoint.
pub async fn create_endpoint(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let mut form = EndpointForm::parse(&body);
    match webhooks::create(
        &state.pool,
        state.clock.as_ref(),
        &user.actor(),
        &form.input(),
        address_rule(&state),
    )
    .await
    {
        Ok(id) => Ok(see_other(&format!("{BASE}/webhooks/{id}?created=1"))),
        Err(FormError::Invalid(errors)) => {
            form.errors = errors;
            Ok(html(
                StatusCode::UNPROCESSABLE_ENTITY,
                NewEndpointPage {
                    frame: Frame::new(&user, "api-access"),
                    form,
                    choices: event_choices(),
                    keys: key_options(secret_keys::signing_keys(&state.pool).await?),
                },
            ))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

/// One delivery as the endpoint page lists it.
struct DeliveryView {
    id: String,
    event_id: String,
    event: &'static str,
    state: &'static str,
    attempts: i64,
    last_status: String,
    last_error: String,
    created: When,
    delivered: Option<When>,
    next_attempt: Option<When>,
}

/// One attempt of the delivery log.
struct AttemptView {
    at: When,
    event: &'static str,
    event_id: String,
    status: String,
    ok: bool,
    latency_ms: i64,
    error: String,
}

/// What the log calls an event.
fn event_label(event: Option<EventType>) -> &'static str {
    event.map_or("Event", EventType::label)
}

impl DeliveryView {
    fn of(d: Delivery, now: i64) -> Self {
        DeliveryView {
            event: event_label(d.event),
            last_status: d.last_status.map(|s| s.to_string()).unwrap_or_default(),
            last_error: d.last_error.unwrap_or_default(),
            created: When::at(d.created_at, now),
            delivered: d.delivered_at.map(|t| When::at(t, now)),
            next_attempt: d.next_attempt_at.map(|t| When::at(t, now)),
            id: d.id,
            event_id: d.event_id,
            state: d.state.as_str(),
            attempts: d.attempts,
        }
    }
}

impl AttemptView {
    fn of(a: Attempt, now: i64) -> Self {
        AttemptView {
            at: When::at(a.at, now),
            event: event_label(a.event),
            ok: a.succeeded(),
            status: a
                .status
                .map_or_else(|| "No answer".to_string(), |s| s.to_string()),
            event_id: a.event_id,
            latency_ms: a.latency_ms,
            error: a.error.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "configuration/endpoint.html")]
struct EndpointPage {
    frame: Frame,
    id: String,
    form: EndpointForm,
    choices: Vec<EventChoice>,
    keys: Vec<KeyOption>,
    deliveries: Vec<DeliveryView>,
    attempts: Vec<AttemptView>,
    retention: String,
    notice: String,
}

#[derive(Deserialize, Default)]
pub struct EndpointNotice {
    #[serde(default)]
    created: String,
    #[serde(default)]
    saved: String,
    #[serde(default)]
    tested: String,
    #[serde(default)]
    redelivered: String,
}

/// How many deliveries and attempts the endpoint page shows.
const LOG_ROWS: i64 = 50;

async fn endpoint_view(
    user: &Granted<ConfigWrite>,
    state: &AppState,
    id: &str,
    edited: Option<EndpointForm>,
    notice: String,
) -> Result<EndpointPage, AppError> {
    let now = state.clock.unix();
    let log = webhooks::endpoint_log(&state.pool, id, LOG_ROWS).await?;
    let endpoint = log.endpoint;
    let form = edited.unwrap_or_else(|| EndpointForm {
        events: endpoint
            .events
            .iter()
            .map(|e| e.as_str().to_string())
            .collect(),
        url: endpoint.url,
        enabled: endpoint.enabled,
        signing_key_id: endpoint.signing_key_id,
        errors: FieldErrors::default(),
    });
    Ok(EndpointPage {
        frame: Frame::new(user, "api-access"),
        id: endpoint.id,
        form,
        choices: event_choices(),
        keys: key_options(log.signing_keys),
        deliveries: log
            .deliveries
            .into_iter()
            .map(|d| DeliveryView::of(d, now))
            .collect(),
        attempts: log
            .attempts
            .into_iter()
            .map(|a| AttemptView::of(a, now))
            .collect(),
        retention: crate::web::retention_note(
            &state.settings,
            "Delivered, failed and cancelled deliveries and their attempts",
        ),
        notice,
    })
}

/// GET an endpoint: its settings, the test button and its delivery log.
pub async fn endpoint_page(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<EndpointNotice>,
) -> Result<HttpResponse, AppError> {
    let notice = if !q.created.is_empty() {
        "The endpoint was added. Send a test event to check that it receives and verifies them."
            .to_string()
    } else if !q.saved.is_empty() {
        "Changes saved.".to_string()
    } else if !q.tested.is_empty() {
        format!(
            "A test event ({}) was queued; its delivery appears below.",
            q.tested
        )
    } else if !q.redelivered.is_empty() {
        "The delivery was queued again.".to_string()
    } else {
        String::new()
    };
    let page = endpoint_view(&user, &state, &id, None, notice).await?;
    Ok(html(StatusCode::OK, page))
}

/// POST changes to an endpoint.
pub async fn update_endpoint(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let mut form = EndpointForm::parse(&body);
    match webhooks::update(
        &state.pool,
        state.clock.as_ref(),
        &user.actor(),
        &id,
        &form.input(),
        address_rule(&state),
    )
    .await
    {
        Ok(()) => Ok(see_other(&format!("{BASE}/webhooks/{id}?saved=1"))),
        Err(FormError::Invalid(errors)) => {
            form.errors = errors;
            let page = endpoint_view(&user, &state, &id, Some(form), String::new()).await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

/// POST: queues a test event for the endpoint and sends it at once.
pub async fn send_test(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let event_id = webhooks::send_test(
        &state.pool,
        state.clock.as_ref(),
        &state.sender,
        &user.actor(),
        &id,
    )
    .await?;
    Ok(see_other(&format!(
        "{BASE}/webhooks/{id}?tested={event_id}"
    )))
}

/// POST: sends a failed delivery again.
pub async fn redeliver(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, delivery) = path.into_inner();
    let queued = webhooks::redeliver(
        &state.pool,
        state.clock.as_ref(),
        &state.sender,
        &user.actor(),
        &id,
        &delivery,
    )
    .await?;
    if !queued {
        return Err(AppError::Conflict(
            "That delivery has not failed, so there is nothing to send again.".into(),
        ));
    }
    Ok(see_other(&format!("{BASE}/webhooks/{id}?redelivered=1")))
}

#[derive(Template)]
#[template(path = "configuration/endpoint_delete.html")]
struct DeleteEndpointPage {
    frame: Frame,
    id: String,
    url: String,
}

/// GET the confirmation before an endpoint is deleted.
pub async fn delete_endpoint_confirm(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let endpoint = webhooks::endpoint(&state.pool, &id).await?;
    Ok(html(
        StatusCode::OK,
        DeleteEndpointPage {
            frame: Frame::new(&user, "api-access"),
            url: endpoint.shown_url(),
            id: endpoint.id,
        },
    ))
}

/// POST: deletes an endpoint with its deliveries.
pub async fn delete_endpoint(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    webhooks::delete(&state.pool, state.clock.as_ref(), &user.actor(), &id).await?;
    Ok(see_other(&format!("{BASE}?endpoint_deleted=1")))
}
