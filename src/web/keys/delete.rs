//! Deleting a key: the confirmation, then back to the list with a notice.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::error::AppError;
use crate::service::keys::{self, Confirm};
use crate::state::AppState;
use crate::web::granted::Signed;
use crate::web::{Frame, see_other};

use super::Place;
use super::view::{KeyView, confirm_page};

#[derive(Template)]
#[template(path = "keys/delete.html")]
struct DeletePage {
    frame: Frame,
    base: &'static str,
    key: KeyView,
}

/// GET the confirmation before a key is deleted.
pub async fn delete_form<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let page = |frame, base, key| DeletePage { frame, base, key };
    confirm_page(who.user(), &state, **place, &path, Confirm::Delete, page).await
}

/// POST: delete, then back to the list with a confirmation.
pub async fn delete<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let ring = state.keyring();
    let name = keys::delete(&state.pool, &ring, &user.actor(), place.scope, &path).await?;
    let q = serde_urlencoded::to_string([("done", "deleted"), ("name", name.as_str())]);
    let q = q.unwrap_or_default();
    Ok(see_other(&format!("{}?{q}", place.base)))
}
