//! The second step of sign-in (`/sign-in/verify`): after a right password, a person with a
//! second factor enters a code of their authenticator app or a recovery code. The session holds
//! only a pending state until then (no console page opens), for five minutes.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::no_store;
use crate::auth::client_ip::client_ip;
use crate::auth::csrf;
use crate::auth::session_store::{PENDING_AT, PENDING_NEXT, PENDING_SECS, PENDING_USER_ID};
use crate::error::AppError;
use crate::service::accounts::SignInError;
use crate::service::accounts::factors::{self, Proof};
use crate::state::AppState;
use crate::web::errors::wait_phrase;
use crate::web::sign_in::start_session;
use crate::web::{asset_url, html, see_other};

/// The second step's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sign-in/verify", web::get().to(verify_page))
        .route("/sign-in/verify", web::post().to(verify));
}

/// Where a person goes when there is no pending second step (or it took too long).
const START_AGAIN: &str = "/login?timed_out=1";

/// The person whose second factor is awaited, while the pending state lasts; an expired one is
/// ended.
pub(crate) fn pending(session: &Session, now: i64) -> Option<String> {
    let user_id = session.get::<String>(PENDING_USER_ID).ok().flatten()?;
    let since = session.get::<i64>(PENDING_AT).ok().flatten()?;
    if now - since > PENDING_SECS {
        session.purge();
        return None;
    }
    Some(user_id)
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    csrf: String,
    /// `app` or `recovery`: which form is shown.
    method: &'static str,
    /// The person has an app (else only recovery codes are offered).
    has_app: bool,
    /// The person has a passkey: "Use a passkey" is offered beside the code.
    has_passkey: bool,
    passkeys_js: String,
    error: Option<String>,
    css: String,
    icon: String,
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    method: Option<String>,
}

/// Which form to show: recovery codes when asked for or when there is no app.
fn method_of(asked: Option<&str>, has_app: bool) -> &'static str {
    if asked == Some("recovery") || !has_app {
        "recovery"
    } else {
        "app"
    }
}

async fn page(
    session: &Session,
    state: &AppState,
    user_id: &str,
    asked: Option<&str>,
    error: Option<String>,
) -> Result<VerifyPage, AppError> {
    let step = factors::second_step(&state.pool, user_id).await?;
    Ok(VerifyPage {
        csrf: csrf::token(session),
        method: method_of(asked, step.app),
        has_app: step.app,
        has_passkey: step.passkeys,
        passkeys_js: asset_url("passkeys.js"),
        error,
        css: asset_url("app.css"),
        icon: asset_url("favicon.svg"),
    })
}

/// GET /sign-in/verify
pub async fn verify_page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(user_id) = pending(&session, state.clock.unix()) else {
        return Ok(see_other(START_AGAIN));
    };
    let page = page(&session, &state, &user_id, query.method.as_deref(), None).await?;
    Ok(no_store(html(StatusCode::OK, page)))
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
}

/// POST /sign-in/verify — a right code signs the person in and goes where they were going.
pub async fn verify(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.unix();
    let Some(user_id) = pending(&session, now) else {
        return Ok(see_other(START_AGAIN));
    };
    let recovery = form.method == "recovery";
    let asked = Some(form.method.as_str());
    if form.code.trim().is_empty() {
        let message = if recovery {
            "Enter a recovery code."
        } else {
            "Enter the 6-digit code from your app."
        };
        let page = page(&session, &state, &user_id, asked, Some(message.into())).await?;
        return Ok(no_store(html(StatusCode::UNPROCESSABLE_ENTITY, page)));
    }
    let proof = if recovery {
        Proof::RecoveryCode(&form.code)
    } else {
        Proof::AppCode(&form.code)
    };
    let factors = state.second_factors();
    match factors::prove_second_factor(factors, &user_id, proof, &client_ip(&req)).await {
        Ok(_) => {
            let next = session.get::<String>(PENDING_NEXT).ok().flatten();
            start_session(&req, &session, &user_id, now)?;
            Ok(see_other(next.as_deref().unwrap_or("/")))
        }
        Err(SignInError::Refused) => {
            let message = if recovery {
                "That recovery code is not right, or was used already."
            } else {
                "That code is not right, or was used already. Enter the code your app shows now."
            };
            let page = page(&session, &state, &user_id, asked, Some(message.into())).await?;
            Ok(no_store(html(StatusCode::UNAUTHORIZED, page)))
        }
        Err(SignInError::Throttled { retry_after }) => {
            let message = format!(
                "Too many wrong codes. Wait {} and try again.",
                wait_phrase(retry_after)
            );
            let page = page(&session, &state, &user_id, asked, Some(message)).await?;
            let mut res = no_store(html(StatusCode::TOO_MANY_REQUESTS, page));
            if let Ok(v) = retry_after.to_string().parse() {
                res.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            Ok(res)
        }
        Err(SignInError::Other(e)) => Err(e),
    }
}
