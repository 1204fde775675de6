//! The secret keys of API Access: a new webhook signing key, the warning before a new secret,
//! the one-time value page (with the bridge's client credentials), and deleting a signing key.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{BASE, KeyView, tools};
use crate::error::AppError;
use crate::service::FormError;
use crate::service::once::{self, FormOnce};
use crate::service::secret_keys::{self, GeneratedSecret, SecretKeyKind};
use crate::state::AppState;
use crate::web::granted::{ConfigWrite, Granted};
use crate::web::keys::no_store;
use crate::web::{Frame, html, see_other};

#[derive(Template)]
#[template(path = "configuration/new_key.html")]
struct NewKeyPage {
    frame: Frame,
    name: String,
    error: String,
    /// The form's single-use token: a second post of it creates nothing.
    once: String,
}

/// GET the form for a new webhook signing key.
pub async fn new_key_form(user: Granted<ConfigWrite>) -> HttpResponse {
    html(
        StatusCode::OK,
        NewKeyPage {
            frame: Frame::new(&user, "api-access"),
            name: String::new(),
            error: String::new(),
            once: once::issue(),
        },
    )
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    once: String,
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
        is_bridge: g.kind == SecretKeyKind::Bridge,
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
    let once = FormOnce::from_field(&form.once);
    let actor = user.actor();
    match secret_keys::create_signing_key(&state.pool, tools(&state), &actor, &form.name, &once)
        .await
    {
        Ok(g) => Ok(value_page(&user, &state, g, true)),
        Err(FormError::Invalid(errors)) => Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            NewKeyPage {
                frame: Frame::new(&user, "api-access"),
                name: form.name.clone(),
                error: errors.get("name").unwrap_or_default().to_string(),
                // Nothing was created: the same token may be sent again.
                once: form.once.clone(),
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

/// GET the warning to read before a new secret is generated. Its OK carries a one-time token,
/// so that reloading the value page cannot generate (and silently replace) another secret.
pub async fn generate_warning(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let key = secret_keys::get(&state.pool, &id).await?;
    let once = once::issue();
    Ok(html(
        StatusCode::OK,
        GenerateWarningPage {
            frame: Frame::new(&user, "api-access"),
            key: KeyView::of(&key, state.clock.unix()),
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
    id: web::Path<String>,
    form: web::Form<OnceForm>,
) -> Result<HttpResponse, AppError> {
    if form.once.is_empty() {
        // Only the warning's OK generates: a bare POST (a link, a script) changes nothing.
        return Err(AppError::Conflict(
            "Nothing was generated: open the key's menu and choose Generate new secret key, \
             then read the warning and confirm."
                .into(),
        ));
    }
    let once = FormOnce::from_field(&form.once);
    let g = secret_keys::regenerate(&state.pool, tools(&state), &user.actor(), &id, &once).await?;
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
    let doomed = secret_keys::to_delete(&state.pool, &id).await?;
    Ok(html(
        StatusCode::OK,
        DeleteKeyPage {
            frame: Frame::new(&user, "api-access"),
            key: KeyView::of(&doomed.key, state.clock.unix()),
            users: doomed.endpoints_using,
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
