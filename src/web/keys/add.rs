//! Add key: the form (a page, or a dialog on the list) and its submission, which shows the new
//! secret once or the form again with what was wrong.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::error::AppError;
use crate::service::keys;
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::Signed;
use crate::web::{Frame, html};

use super::Place;
use super::form::{AddForm, KeyForm, blank_add_form};
use super::secret::secret_page;

#[derive(Template)]
#[template(path = "keys/add.html")]
struct AddPage {
    frame: Frame,
    tenant: bool,
    base: &'static str,
    add: AddForm,
}

/// The Add key page around a form.
fn add_page(user: &CurrentUser, place: Place, add: AddForm, status: StatusCode) -> HttpResponse {
    html(
        status,
        AddPage {
            frame: Frame::new(user, place.section()),
            tenant: place.tenant(),
            base: place.base,
            add,
        },
    )
}

/// GET the Add key form as a page (the list opens the same form in a dialog when scripts run).
pub async fn add_form<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let add = blank_add_form(&state, **place).await?;
    Ok(add_page(who.user(), **place, add, StatusCode::OK))
}

/// POST a new key: the one-time secret page, or the form again with messages.
pub async fn create<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let form = KeyForm::parse(&body);
    let ring = state.keyring();
    let created = keys::create(
        &state.pool,
        &ring,
        &user.actor(),
        place.scope,
        form.new_key(),
    )
    .await;
    let (errors, conflict, status) = match created {
        Ok(created) => return Ok(secret_page(user, place, created, false)),
        Err(FormError::Other(AppError::Conflict(message))) => {
            (FieldErrors::default(), message, StatusCode::CONFLICT)
        }
        Err(FormError::Invalid(errors)) => {
            (errors, String::new(), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(FormError::Other(e)) => return Err(e),
    };
    let add = blank_add_form(&state, place)
        .await?
        .again(form, errors, conflict);
    Ok(add_page(user, place, add, status))
}
