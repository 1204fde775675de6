//! Report an exposed secret (`/user-access/keys/exposed`, `keys:write`): a pasted secret finds
//! its key by its stored hash; the page shows the key and offers a new secret (through the
//! step-up-guarded Generate new secret key) and Deactivate. The pasted secret is never echoed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::error::AppError;
use crate::service::keys::{self, WhichSecret};
use crate::state::AppState;
use crate::web::granted::{Granted, KeysWrite};
use crate::web::{Frame, html};

use super::view::{KeyView, notice_secs};
use super::{TENANT, no_store};

/// The page's path.
pub const PATH: &str = "/user-access/keys/exposed";

/// The key a pasted secret belongs to, as the page shows it.
struct Found {
    key: KeyView,
    /// Which of its secrets was pasted, in a sentence.
    which: String,
    /// Whether the pasted secret still works (a replaced one does not).
    works: bool,
    /// Whether it is someone else's personal key (no secret for it from here).
    others_personal: bool,
    /// The Generate new secret key form's single-use token.
    once: String,
}

#[derive(Template)]
#[template(path = "keys/exposed.html")]
struct ExposedPage {
    frame: Frame,
    base: &'static str,
    error: String,
    found: Option<Found>,
}

fn page(frame: Frame, error: String, found: Option<Found>) -> HttpResponse {
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    no_store(html(
        status,
        ExposedPage {
            frame,
            base: TENANT.base,
            error,
            found,
        },
    ))
}

/// GET: the form.
pub async fn form(who: Granted<KeysWrite>) -> HttpResponse {
    page(Frame::new(&who, "users-and-keys"), String::new(), None)
}

#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    secret: String,
}

/// POST: finds the key of the pasted secret (recorded as `key.exposure_reported`) and shows it.
pub async fn find(
    who: Granted<KeysWrite>,
    state: web::Data<AppState>,
    form: web::Form<SecretForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let actor = who.actor();
    let ring = state.keyring();
    let frame = Frame::new(&who, "users-and-keys");
    let found = match keys::find_exposed(&state.pool, &ring, &actor, &form.secret).await {
        Ok(found) => found,
        Err(AppError::Validation { message, .. }) => return Ok(page(frame, message, None)),
        Err(e) => return Err(e),
    };
    drop(form);
    let now = state.clock.unix();
    let key = KeyView::of(&found.key, now, notice_secs(&state), &who.id);
    let which = match found.which {
        WhichSecret::Current => "This is the key's current secret.".to_string(),
        WhichSecret::Previous => format!(
            "This is the key's previous secret: it still works until {}, the end of the grace \
             period given when the key got its current secret.",
            key.grace_until
        ),
        WhichSecret::Replaced { replaced_at } => format!(
            "This secret was replaced at {} and no longer works.",
            format_utc(replaced_at)
        ),
    };
    let others_personal = found.key.owner_id().is_some_and(|owner| owner != who.id);
    let found = Found {
        which,
        works: found.which.works(),
        others_personal,
        key,
        once: crate::service::once::issue(),
    };
    Ok(page(frame, String::new(), Some(found)))
}
