//! Recovery codes: the page that explains them and generates new ones, and the page that shows
//! them once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::no_store;
use crate::error::AppError;
use crate::service::accounts::factors;
use crate::service::once::FormOnce;
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::{Frame, html};

/// The recovery codes' routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/security/recovery", web::get().to(new_codes_page))
        .route("/account/security/recovery", web::post().to(generate));
}

#[derive(Template)]
#[template(path = "account/recovery_new.html")]
struct NewCodesPage {
    frame: Frame,
    left: i64,
    has_second_factor: bool,
    /// The form's single-use token: a reload of the codes page generates nothing.
    once: String,
}

/// GET /account/security/recovery — what new codes do, before generating them.
pub async fn new_codes_page(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let security = factors::security(&state.pool, &user.id).await?;
    let page = NewCodesPage {
        frame: Frame::new(&user, "account"),
        left: security.recovery_left,
        has_second_factor: security.has_second_factor,
        once: crate::service::once::issue(),
    };
    Ok(html(StatusCode::OK, page))
}

/// POST /account/security/recovery — ten new codes replace the old ones, shown once.
pub async fn generate(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: web::Form<GenerateForm>,
) -> Result<HttpResponse, AppError> {
    let once = FormOnce::from_field(&form.once);
    let factors = state.second_factors();
    let codes =
        factors::regenerate_recovery_codes(factors, &user.id, &user.client_ip, &once).await?;
    Ok(codes_page(&user, codes, false))
}

/// The form that asks for new codes.
#[derive(serde::Deserialize)]
pub struct GenerateForm {
    #[serde(default)]
    once: String,
}

#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
struct CodesPage {
    frame: Frame,
    codes: Vec<String>,
    /// Shown right after the first second factor was set up.
    first: bool,
}

/// The page that shows new recovery codes once (never stored by the browser).
pub(super) fn codes_page(user: &CurrentUser, codes: Vec<String>, first: bool) -> HttpResponse {
    let page = CodesPage {
        frame: Frame::new(user, "account"),
        codes,
        first,
    };
    no_store(html(StatusCode::OK, page))
}
