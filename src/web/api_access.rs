//! Configuration > API Access (SPEC §2.4, seed 000): the Secret Keys section with its
//! three-dot menus, the warning before a new secret, the one-time Generate Secret Key dialog,
//! and the webhook endpoints with their delivery logs.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::repo::secret_keys::{BRIDGE, SecretKeyRow};
use crate::repo::webhooks as hooks_repo;
use crate::service::secret_keys::{self, GeneratedSecret, Tools};
use crate::service::webhooks::{self, AddressRule, EndpointInput, EventType};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::granted::{ConfigWrite, Granted};
use crate::web::keys::no_store;
use crate::web::pages::When;
use crate::web::{Frame, html, see_other};

const BASE: &str = "/configuration/api-access";

/// The page's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(page))
        .route(
            "/configuration/api-access/secret-keys/new",
            web::get().to(new_key_form),
        )
        .route(
            "/configuration/api-access/secret-keys",
            web::post().to(create_key),
        )
        .route(
            "/configuration/api-access/secret-keys/{id}/generate",
            web::get().to(generate_warning),
        )
        .route(
            "/configuration/api-access/secret-keys/{id}/generate",
            web::post().to(generate),
        )
        .route(
            "/configuration/api-access/secret-keys/{id}/delete",
            web::get().to(delete_key_confirm),
        )
        .route(
            "/configuration/api-access/secret-keys/{id}/delete",
            web::post().to(delete_key),
        )
        .route(
            "/configuration/api-access/webhooks/new",
            web::get().to(new_endpoint_form),
        )
        .route(
            "/configuration/api-access/webhooks",
            web::post().to(create_endpoint),
        )
        .route(
            "/configuration/api-access/webhooks/{id}",
            web::get().to(endpoint_page),
        )
        .route(
            "/configuration/api-access/webhooks/{id}",
            web::post().to(update_endpoint),
        )
        .route(
            "/configuration/api-access/webhooks/{id}/test",
            web::post().to(send_test),
        )
        .route(
            "/configuration/api-access/webhooks/{id}/deliveries/{delivery}/redeliver",
            web::post().to(redeliver),
        )
        .route(
            "/configuration/api-access/webhooks/{id}/delete",
            web::get().to(delete_endpoint_confirm),
        )
        .route(
            "/configuration/api-access/webhooks/{id}/delete",
            web::post().to(delete_endpoint),
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
    fn of(row: &SecretKeyRow, now: i64) -> Self {
        KeyView {
            id: row.id.clone(),
            name: row.name.clone(),
            kind: secret_keys::kind_label(&row.kind),
            is_bridge: row.kind == BRIDGE,
            client_id: row.client_id.clone().unwrap_or_default(),
            created: When::at(row.created_at, now),
            regenerated: row.regenerated_at.map(|t| When::at(t, now)),
            last_used: row.last_used_at.map(|t| When::at(t, now)),
            has_secret: row.secret_hash.is_some() || row.sealed_secret.is_some(),
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
    let mut conn = state.pool.acquire().await?;
    let rows = secret_keys::list(&mut conn).await?;
    let endpoints = webhooks::list(&mut conn).await?;
    let name_of = |id: &str| {
        rows.iter()
            .find(|k| k.id == id)
            .map_or_else(|| id.to_string(), |k| k.name.clone())
    };
    let endpoints = endpoints
        .iter()
        .map(|e| EndpointView {
            id: e.id.clone(),
            url: webhooks::redacted(&e.url),
            events: events_label(&e.event_list()),
            enabled: e.enabled == 1,
            signing_key: name_of(&e.signing_key_id),
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
            has_signing_keys: rows.iter().any(|k| k.kind != BRIDGE),
            keys: rows.iter().map(|k| KeyView::of(k, now)).collect(),
            endpoints,
            notice,
        },
    ))
}

fn events_label(events: &[&str]) -> String {
    let labels: Vec<&str> = EventType::SUBSCRIBABLE
        .iter()
        .filter(|e| events.contains(&e.as_str()))
        .map(|e| e.label())
        .collect();
    if labels.len() == EventType::SUBSCRIBABLE.len() {
        "All key events".into()
    } else {
        labels.join(", ")
    }
}

#[derive(Template)]
#[template(path = "configuration/new_key.html")]
struct NewKeyPage {
    frame: Frame,
    name: String,
    error: String,
}

/// GET the form for a new webhook signing key.
pub async fn new_key_form(user: Granted<ConfigWrite>) -> HttpResponse {
    html(
        StatusCode::OK,
        NewKeyPage {
            frame: Frame::new(&user, "api-access"),
            name: String::new(),
            error: String::new(),
        },
    )
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

#[derive(Template)]
#[template(path = "configuration/secret_value.html")]
struct SecretValuePage {
    frame: Frame,
    key: GeneratedView,
    created: bool,
    tenant_id: String,
}

struct GeneratedView {
    name: String,
    is_bridge: bool,
    value: String,
    client_id: String,
    replaced: bool,
}

fn value_page(
    user: &Granted<ConfigWrite>,
    state: &AppState,
    g: GeneratedSecret,
    created: bool,
) -> HttpResponse {
    let key = GeneratedView {
        name: g.name,
        is_bridge: g.kind == BRIDGE,
        value: g.secret.expose().to_string(),
        client_id: g.client_id.unwrap_or_default(),
        replaced: g.replaced,
    };
    no_store(html(
        StatusCode::OK,
        SecretValuePage {
            frame: Frame::new(user, "api-access"),
            key,
            created,
            tenant_id: state.tenant_id.clone(),
        },
    ))
}

/// POST a new webhook signing key: its value, shown once.
pub async fn create_key(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, AppError> {
    match secret_keys::create_signing_key(&state.pool, tools(&state), &user.actor(), &form.name)
        .await
    {
        Ok(g) => Ok(value_page(&user, &state, g, true)),
        Err(FormError::Invalid(errors)) => Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            NewKeyPage {
                frame: Frame::new(&user, "api-access"),
                name: form.name.clone(),
                error: errors.get("name").unwrap_or_default().to_string(),
            },
        )),
        Err(FormError::Other(e)) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "configuration/generate.html")]
struct GenerateWarningPage {
    frame: Frame,
    key: KeyView,
    once: String,
}

/// The session entry that lets one OK through for a key's warning.
fn once_key(id: &str) -> String {
    format!("generate_once:{id}")
}

/// GET the warning to read before a new secret is generated. Its OK carries a one-time token,
/// so that reloading the value page cannot generate (and silently replace) another secret.
pub async fn generate_warning(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.acquire().await?;
    let row = secret_keys::load(&mut conn, &id).await?;
    let once = crate::repo::new_id("once");
    session
        .insert(once_key(&id), &once)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
    Ok(html(
        StatusCode::OK,
        GenerateWarningPage {
            frame: Frame::new(&user, "api-access"),
            key: KeyView::of(&row, state.clock.unix()),
            once,
        },
    ))
}

#[derive(Deserialize)]
pub struct OnceForm {
    #[serde(default)]
    once: String,
}

/// POST (OK on the warning): a new secret, shown once; the old one stops at once. A second
/// POST of the same warning (a reload) shows nothing and changes nothing.
pub async fn generate(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    form: web::Form<OnceForm>,
) -> Result<HttpResponse, AppError> {
    let expected = session.remove_as::<String>(&once_key(&id));
    let answered = matches!(expected, Some(Ok(once))
        if !form.once.is_empty() && bool::from(once.as_bytes().ct_eq(form.once.as_bytes())));
    if !answered {
        return Err(AppError::Conflict(
            "This warning was already answered, so nothing was generated now. The value is shown \
             only once: if you did not copy it, open the key's menu and generate a new secret key."
                .into(),
        ));
    }
    let g = secret_keys::regenerate(&state.pool, tools(&state), &user.actor(), &id).await?;
    Ok(value_page(&user, &state, g, false))
}

#[derive(Template)]
#[template(path = "configuration/delete_key.html")]
struct DeleteKeyPage {
    frame: Frame,
    key: KeyView,
    users: i64,
}

/// GET the confirmation before a signing key is deleted.
pub async fn delete_key_confirm(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.acquire().await?;
    let row = secret_keys::load(&mut conn, &id).await?;
    let users = crate::repo::secret_keys::endpoints_using(&mut conn, &id).await?;
    Ok(html(
        StatusCode::OK,
        DeleteKeyPage {
            frame: Frame::new(&user, "api-access"),
            key: KeyView::of(&row, state.clock.unix()),
            users,
        },
    ))
}

/// POST: deletes a signing key no endpoint uses.
pub async fn delete_key(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let name = secret_keys::delete(&state.pool, state.clock.as_ref(), &user.actor(), &id).await?;
    let q = serde_urlencoded::to_string([("deleted", name.as_str())]).unwrap_or_default();
    Ok(see_other(&format!("{BASE}?{q}")))
}

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

async fn signing_keys(state: &AppState) -> Result<Vec<KeyOption>, AppError> {
    let mut conn = state.pool.acquire().await?;
    Ok(secret_keys::list(&mut conn)
        .await?
        .into_iter()
        .filter(|k| k.kind != BRIDGE)
        .map(|k| KeyOption {
            id: k.id,
            name: k.name,
        })
        .collect())
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
    let keys = signing_keys(&state).await?;
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
                    keys: signing_keys(&state).await?,
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
    state: String,
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

fn event_label(raw: &str) -> &'static str {
    if raw == EventType::Ping.as_str() {
        EventType::Ping.label()
    } else {
        EventType::parse(raw).map_or("Event", EventType::label)
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
    let mut conn = state.pool.acquire().await?;
    let endpoint = webhooks::load(&mut conn, id).await?;
    let deliveries = hooks_repo::deliveries(&mut conn, id, LOG_ROWS)
        .await?
        .into_iter()
        .map(|d| DeliveryView {
            event: event_label(&d.event_type),
            last_status: d.last_status.map(|s| s.to_string()).unwrap_or_default(),
            last_error: d.last_error.unwrap_or_default(),
            created: When::at(d.created_at, now),
            delivered: d.delivered_at.map(|t| When::at(t, now)),
            next_attempt: (d.state == "queued").then(|| When::at(d.next_attempt_at, now)),
            id: d.id,
            event_id: d.event_id,
            state: d.state,
            attempts: d.attempts,
        })
        .collect();
    let attempts = hooks_repo::attempts(&mut conn, id, LOG_ROWS)
        .await?
        .into_iter()
        .map(|a| AttemptView {
            at: When::at(a.attempted_at, now),
            event: event_label(&a.event_type),
            event_id: a.event_id,
            status: a
                .status
                .map_or_else(|| "No answer".to_string(), |s| s.to_string()),
            ok: a.status.is_some_and(|s| (200..300).contains(&s)),
            latency_ms: a.latency_ms,
            error: a.error.unwrap_or_default(),
        })
        .collect();
    drop(conn);
    let form = edited.unwrap_or_else(|| EndpointForm {
        url: endpoint.url.clone(),
        events: endpoint
            .event_list()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        enabled: endpoint.enabled == 1,
        signing_key_id: endpoint.signing_key_id.clone(),
        errors: FieldErrors::default(),
    });
    Ok(EndpointPage {
        frame: Frame::new(user, "api-access"),
        id: endpoint.id,
        form,
        choices: event_choices(),
        keys: signing_keys(state).await?,
        deliveries,
        attempts,
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
    let mut conn = state.pool.acquire().await?;
    let endpoint = webhooks::load(&mut conn, &id).await?;
    Ok(html(
        StatusCode::OK,
        DeleteEndpointPage {
            frame: Frame::new(&user, "api-access"),
            url: webhooks::redacted(&endpoint.url),
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
