//! Forgotten passwords: `/forgot-password` asks for an address and always answers the same;
//! `/reset-password?token=…` lets the person choose a new password. Anonymous pages: their
//! forms carry the anonymous CSRF token and no session is written. The token stays out of the
//! logs (the request log prints paths, never query strings) and out of any referrer (every
//! response says `Referrer-Policy: no-referrer`).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::client_ip::client_ip;
use crate::auth::csrf::AnonymousToken;
use crate::error::AppError;
use crate::service::accounts::{self, ResetFor, ResetInput};
use crate::service::notices::Mailing;
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::errors::wait_phrase;
use crate::web::{asset_url, html, see_other};

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage {
    csrf: String,
    email: String,
    error: String,
    sent: bool,
    css: String,
    icon: String,
}

impl ForgotPage {
    fn new(csrf: &AnonymousToken, email: String, error: String, sent: bool) -> Self {
        Self {
            csrf: csrf.token.clone(),
            email,
            error,
            sent,
            css: asset_url("app.css"),
            icon: asset_url("favicon.svg"),
        }
    }
}

#[derive(Deserialize)]
pub struct SentQuery {
    sent: Option<String>,
}

/// GET /forgot-password — the form, or (after a request) the answer every request gets.
pub async fn forgot_form(csrf: AnonymousToken, query: web::Query<SentQuery>) -> HttpResponse {
    let page = ForgotPage::new(&csrf, String::new(), String::new(), query.sent.is_some());
    csrf.attach(html(StatusCode::OK, page))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// POST /forgot-password — the same answer whether or not the address has an account; a
/// client that asks too often gets 429 with `Retry-After`.
pub async fn request_link(
    req: HttpRequest,
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, AppError> {
    let mailing = Mailing {
        vault: &state.vault,
        public_url: &state.settings.public_url,
        sender: &state.sender,
    };
    let email = form.into_inner().email;
    let asked = accounts::request_reset(
        &state.pool,
        state.clock.as_ref(),
        &mailing,
        &email,
        &client_ip(&req),
    )
    .await;
    // An over-long address is not sent back whole (its message says why).
    let typed = || {
        if crate::domain::Email::is_too_long(&email) {
            String::new()
        } else {
            email.clone()
        }
    };
    match asked {
        Ok(()) => Ok(see_other("/forgot-password?sent=1")),
        Err(FormError::Invalid(errors)) => {
            let error = errors.get("email").unwrap_or_default().to_string();
            let page = ForgotPage::new(&csrf, typed(), error, false);
            Ok(csrf.attach(html(StatusCode::UNPROCESSABLE_ENTITY, page)))
        }
        Err(FormError::Other(AppError::TooManyRequests { retry_after })) => {
            let wait = wait_phrase(i64::try_from(retry_after).unwrap_or(i64::MAX));
            let error = format!("Too many requests from your network. Wait {wait} and try again.");
            let page = ForgotPage::new(&csrf, typed(), error, false);
            let mut res = html(StatusCode::TOO_MANY_REQUESTS, page);
            res.headers_mut().insert(RETRY_AFTER, retry_after.into());
            Ok(csrf.attach(res))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage {
    csrf: String,
    token: String,
    email: String,
    errors: FieldErrors,
    css: String,
    icon: String,
}

impl ResetPage {
    fn new(csrf: &AnonymousToken, token: String, person: ResetFor, errors: FieldErrors) -> Self {
        Self {
            csrf: csrf.token.clone(),
            token,
            email: person.email,
            errors,
            css: asset_url("app.css"),
            icon: asset_url("favicon.svg"),
        }
    }

    fn error(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or_default().to_string()
    }
}

#[derive(Template)]
#[template(path = "reset_invalid.html")]
struct InvalidLinkPage {
    css: String,
    icon: String,
}

/// The page of a link that does not work: what happened and a way to ask again (410, no code
/// shown).
fn invalid_link() -> HttpResponse {
    let page = InvalidLinkPage {
        css: asset_url("app.css"),
        icon: asset_url("favicon.svg"),
    };
    no_store(html(StatusCode::GONE, page))
}

/// Pages that carry a reset token are never cached.
fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// GET /reset-password?token=… — the new-password form while the link works.
pub async fn reset_form(
    req: HttpRequest,
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let token = query.into_inner().token;
    let clock = state.clock.as_ref();
    let ip = client_ip(&req);
    let Some(person) = accounts::reset_link(&state.pool, clock, &token, &ip).await? else {
        return Ok(invalid_link());
    };
    let page = ResetPage::new(&csrf, token, person, FieldErrors::default());
    Ok(csrf.attach(no_store(html(StatusCode::OK, page))))
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// POST /reset-password — sets the password, ends every session of the person, and sends them
/// to sign in with a notice.
pub async fn reset(
    req: HttpRequest,
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let ip = client_ip(&req);
    let input = ResetInput {
        token: &form.token,
        password: &form.password,
        confirm: &form.confirm,
    };
    let clock = state.clock.as_ref();
    let done = accounts::reset_password(&state.pool, &state.hasher, clock, input, &ip).await;
    match done {
        Ok(_) => Ok(see_other("/login?reset=1")),
        Err(FormError::Invalid(errors)) => {
            let Some(person) = accounts::reset_link(&state.pool, clock, &form.token, &ip).await?
            else {
                return Ok(invalid_link());
            };
            let page = ResetPage::new(&csrf, form.token, person, errors);
            Ok(csrf.attach(no_store(html(StatusCode::UNPROCESSABLE_ENTITY, page))))
        }
        Err(FormError::Other(AppError::NotFound)) => Ok(invalid_link()),
        Err(FormError::Other(e)) => Err(e),
    }
}

/// The routes of the forgotten-password pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/forgot-password", web::get().to(forgot_form))
        .route("/forgot-password", web::post().to(request_link))
        .route("/reset-password", web::get().to(reset_form))
        .route("/reset-password", web::post().to(reset));
}
