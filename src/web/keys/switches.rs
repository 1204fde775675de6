//! Activate, deactivate and unlock, from the list's Actions menu or the details page.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::error::AppError;
use crate::service::keys::{self, Switch};
use crate::state::AppState;
use crate::web::granted::Signed;
use crate::web::see_other;

use super::Place;

/// Where to go after the change: the list, or (by default) the key's details.
#[derive(Deserialize)]
pub struct ReturnTo {
    #[serde(default)]
    return_to: String,
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

/// POST: flips `F`'s switch on the key, then goes back to the list or to the key's details
/// with a notice.
pub async fn flip<A: Signed, F: Flip>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReturnTo>,
) -> Result<HttpResponse, AppError> {
    let (place, id, actor) = (**place, path.as_str(), who.user().actor());
    let ring = state.keyring();
    keys::switch(&state.pool, &ring, &actor, place.scope, id, F::SWITCH).await?;
    Ok(if form.return_to == "list" {
        see_other(place.base)
    } else {
        see_other(&format!("{}/{id}?notice={}", place.base, F::NOTICE))
    })
}
