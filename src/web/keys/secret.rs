//! The one-time secret page, and Generate new secret key: the warning, then the new secret.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::service::keys::{self, Confirm, OneTimeSecret};
use crate::service::once::FormOnce;
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::Signed;
use crate::web::{Frame, html};

use super::view::{KeyView, confirm_page};
use super::{Place, no_store};

#[derive(Template)]
#[template(path = "keys/secret.html")]
struct SecretPage {
    frame: Frame,
    base: &'static str,
    key_id: String,
    name: String,
    secret: String,
    tenant_id: String,
    copy_all: String,
    regenerated: bool,
    /// Other keys here already carry this name.
    namesakes: i64,
}

/// The page that shows a new secret once, never to be stored by a cache.
pub fn secret_page(
    user: &CurrentUser,
    place: Place,
    created: OneTimeSecret,
    regenerated: bool,
) -> HttpResponse {
    let secret = created.secret.expose().to_string();
    let copy_all = format!(
        "key:{}::{},tenant id: {}",
        created.key_id, secret, created.tenant_id
    );
    no_store(html(
        StatusCode::OK,
        SecretPage {
            frame: Frame::new(user, place.section()),
            base: place.base,
            key_id: created.key_id,
            name: created.name,
            secret,
            tenant_id: created.tenant_id,
            copy_all,
            regenerated,
            namesakes: created.namesakes,
        },
    ))
}

#[derive(Template)]
#[template(path = "keys/regenerate.html")]
struct RegeneratePage {
    frame: Frame,
    base: &'static str,
    key: KeyView,
    /// The form's single-use token: a second post of it generates nothing.
    once: String,
}

/// GET the warning before a new secret is generated.
pub async fn regenerate_form<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let page = |frame, base, key| RegeneratePage {
        frame,
        base,
        key,
        once: crate::service::once::issue(),
    };
    confirm_page(
        who.user(),
        &state,
        **place,
        &path,
        Confirm::Regenerate,
        page,
    )
    .await
}

#[derive(Deserialize)]
pub struct RegenerateForm {
    #[serde(default)]
    grace: String,
    #[serde(default)]
    once: String,
}

/// POST: a new secret, shown once.
pub async fn regenerate<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RegenerateForm>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let grace = if form.grace.is_empty() {
        0
    } else {
        form.grace.parse::<i64>().map_err(|_| {
            AppError::invalid("grace_period", "Choose one of the offered grace periods.")
        })?
    };
    let ring = state.keyring();
    let once = FormOnce::from_field(&form.once);
    let actor = user.actor();
    let created =
        keys::regenerate(&state.pool, &ring, &actor, place.scope, &path, grace, &once).await?;
    Ok(secret_page(user, place, created, true))
}
