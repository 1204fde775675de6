//! Activate, deactivate and unlock, from the list's Actions menu or the details page.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::service::keys::{self, Confirm, Switch};
use crate::state::AppState;
use crate::web::granted::Signed;
use crate::web::{Frame, see_other};

use super::Place;
use super::view::{KeyView, confirm_page};

/// Where to go after the change: the list, or (by default) the key's details.
#[derive(Deserialize)]
pub struct ReturnTo {
    #[serde(default)]
    return_to: String,
}

#[derive(Template)]
#[template(path = "keys/deactivate.html")]
struct DeactivatePage {
    frame: Frame,
    base: &'static str,
    key: KeyView,
    /// `list` when the person came from the list, to go back there.
    return_to: String,
}

/// GET the confirmation before a key is deactivated: programs using it stop working.
pub async fn deactivate_form<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    back: web::Query<ReturnTo>,
) -> Result<HttpResponse, AppError> {
    let return_to = if back.return_to == "list" { "list" } else { "" };
    let page = |frame, base, key| DeactivatePage {
        frame,
        base,
        key,
        return_to: return_to.to_string(),
    };
    confirm_page(
        who.user(),
        &state,
        **place,
        &path,
        Confirm::Deactivate,
        page,
    )
    .await
}

/// One of the switches a route flips, and the notice the details page shows after it.
pub trait Flip: 'static {
    const SWITCH: Switch;
    const NOTICE: &'static str;
}

/// `POST …/activate`.
pub struct Activate;
/// `POST …/deactivate`.
pub struct Deactivate;
/// `POST …/unlock`.
pub struct Unlock;

impl Flip for Activate {
    const SWITCH: Switch = Switch::Activate;
    const NOTICE: &'static str = "activated";
}

impl Flip for Deactivate {
    const SWITCH: Switch = Switch::Deactivate;
    const NOTICE: &'static str = "deactivated";
}

impl Flip for Unlock {
    const SWITCH: Switch = Switch::Unlock;
    const NOTICE: &'static str = "unlocked";
}

/// POST: flips `F`'s switch on the key, then goes back to the list or to the key's details,
/// each with a notice that says what happened.
pub async fn flip<A: Signed, F: Flip>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReturnTo>,
) -> Result<HttpResponse, AppError> {
    let (place, id, actor) = (**place, path.as_str(), who.user().actor());
    let ring = state.keyring();
    let name = keys::switch(&state.pool, &ring, &actor, place.scope, id, F::SWITCH).await?;
    Ok(if form.return_to == "list" {
        let q = serde_urlencoded::to_string([("done", F::NOTICE), ("name", &name)]);
        see_other(&format!("{}?{}", place.base, q.unwrap_or_default()))
    } else {
        see_other(&format!("{}/{id}?notice={}", place.base, F::NOTICE))
    })
}
