//! The passkeys section of `/account/security` (add, rename, remove) and the JSON endpoints the
//! ceremonies' script (`static/passkeys.js`) calls: adding a passkey, signing in with a passkey
//! alone from the sign-in page, and the second step of a sign-in after the password. The JSON
//! endpoints take the CSRF token in the `X-CSRF-Token` header (`auth::csrf`).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::auth::client_ip::client_ip;
use crate::auth::session_store::PENDING_NEXT;
use crate::error::AppError;
use crate::service::FormError;
use crate::service::accounts::SignInError;
use crate::service::passkeys::{self, Ceremony, PasskeySummary};
use crate::state::AppState;
use crate::web::account::passkeys_section::PasskeysSection;
use crate::web::current_user::CurrentUser;
use crate::web::errors::wait_phrase;
use crate::web::sign_in::{safe_next, start_session};
use crate::web::{Frame, html, see_other};

/// Where the section lives.
const PAGE: &str = "/account/security";

/// The routes of this section and of the passkey sign-in endpoints.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/account/security/passkeys/options",
        web::post().to(add_options),
    )
    .route(
        "/account/security/passkeys/finish",
        web::post().to(add_finish),
    )
    .route(
        "/account/security/passkeys/{id}/rename",
        web::post().to(rename),
    )
    .route(
        "/account/security/passkeys/{id}/remove",
        web::get().to(remove_form),
    )
    .route(
        "/account/security/passkeys/{id}/remove",
        web::post().to(remove),
    )
    .route("/login/passkey/options", web::post().to(sign_in_options))
    .route("/login/passkey/finish", web::post().to(sign_in_finish))
    .route(
        "/login/second-step/passkey/options",
        web::post().to(second_step_options),
    )
    .route(
        "/login/second-step/passkey/finish",
        web::post().to(second_step_finish),
    );
}

/// A JSON refusal: `{"error": {"code", "message"}}`, as the REST API answers.
fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "error": {"code": code, "message": message}
    }))
}

/// An error of a JSON endpoint, answered as JSON (never the HTML error page).
fn json_app_error(e: AppError) -> HttpResponse {
    match e {
        AppError::Validation { message, .. } => {
            json_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &message)
        }
        AppError::Conflict(message) => json_error(StatusCode::CONFLICT, "conflict", &message),
        AppError::NotFound => json_error(StatusCode::NOT_FOUND, "not_found", "Not found."),
        other => actix_web::ResponseError::error_response(&other),
    }
}

/// Reads a JSON body; `None` when it is not the JSON expected.
fn read_json<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

/// The 400 answer to a body that is not the JSON expected.
fn unreadable() -> HttpResponse {
    json_error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "The request could not be read: it is not the passkey answer expected.",
    )
}

/// The answer to a started ceremony.
fn started(result: Result<Ceremony, AppError>) -> HttpResponse {
    match result {
        Ok(ceremony) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(ceremony),
        Err(e) => json_app_error(e),
    }
}

/// Where the browser goes after a ceremony that succeeded.
fn go_to(path: &str) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "redirect": path }))
}

#[derive(Deserialize)]
struct AddStart {
    name: String,
}

/// The browser's answer to a ceremony, with the token that finds its state.
#[derive(Deserialize)]
struct Answer<T> {
    ceremony: String,
    credential: T,
    #[serde(default)]
    next: String,
}

/// POST /account/security/passkeys/options — `{"name"}`: starts adding a passkey.
pub async fn add_options(
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let start: AddStart = match read_json(&body) {
        Some(start) => start,
        None => return unreadable(),
    };
    let result = passkeys::start_registration(
        &state.pool,
        state.clock.as_ref(),
        &state.settings.public_url,
        &user.actor(),
        &start.name,
    )
    .await;
    started(result.map_err(|e| match e {
        FormError::Invalid(errors) => AppError::Validation {
            field: "name",
            message: errors.get("name").unwrap_or("Enter a name.").to_string(),
        },
        FormError::Other(e) => e,
    }))
}

/// POST /account/security/passkeys/finish — `{"ceremony", "credential"}`: stores the passkey.
pub async fn add_finish(
    user: CurrentUser,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let answer: Answer<RegisterPublicKeyCredential> = match read_json(&body) {
        Some(answer) => answer,
        None => return unreadable(),
    };
    let result = passkeys::finish_registration(
        &state.pool,
        state.clock.as_ref(),
        &state.settings.public_url,
        &user.actor(),
        &answer.ceremony,
        &answer.credential,
    )
    .await;
    match result {
        Ok(added) => go_to(&format!("{PAGE}?{}", done_query("added", &added.name))),
        Err(e) => json_app_error(e),
    }
}

fn done_query(done: &str, name: &str) -> String {
    serde_urlencoded::to_string([("done", done), ("name", name)]).unwrap_or_default()
}

#[derive(Deserialize)]
pub struct RenameForm {
    name: String,
}

/// POST /account/security/passkeys/{id}/rename — a refused name comes back next to its field,
/// as typed (422).
pub async fn rename(
    user: CurrentUser,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RenameForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let result = passkeys::rename(
        &state.pool,
        state.clock.as_ref(),
        &user.actor(),
        &id,
        &form.name,
    )
    .await;
    match result {
        Ok(()) => Ok(see_other(&format!(
            "{PAGE}?{}",
            done_query("renamed", form.name.trim())
        ))),
        Err(FormError::Invalid(errors)) => {
            let mut section = PasskeysSection::load(&state, &user).await?;
            section.renaming = id;
            section.typed = form.into_inner().name;
            section.error = errors.get("name").unwrap_or_default().to_string();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let shown = crate::web::factors::Sections {
                notice: String::new(),
                passkeys: section,
                session: &session,
            };
            crate::web::factors::security_with(&user, &state, shown, status).await
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "account/passkey_remove.html")]
struct RemovePage {
    frame: Frame,
    passkey: PasskeySummary,
}

/// GET /account/security/passkeys/{id}/remove — asks first.
pub async fn remove_form(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let passkey = passkeys::find(&state.pool, &user.id, &path).await?;
    let page = RemovePage {
        frame: Frame::new(&user, "account"),
        passkey,
    };
    Ok(html(StatusCode::OK, page))
}

/// POST /account/security/passkeys/{id}/remove
pub async fn remove(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let name = passkeys::remove(&state.pool, state.clock.as_ref(), &user.actor(), &path).await?;
    Ok(see_other(&format!(
        "{PAGE}?{}",
        done_query("removed", &name)
    )))
}

/// A refused or throttled passkey sign-in, as JSON.
fn sign_in_refusal(e: SignInError) -> HttpResponse {
    match e {
        SignInError::Refused => json_error(
            StatusCode::UNAUTHORIZED,
            "refused",
            "That passkey could not sign you in. Try again, or sign in with your password.",
        ),
        SignInError::Throttled { retry_after } => {
            let message = format!(
                "Too many failed sign-in attempts. Wait {} and try again.",
                wait_phrase(retry_after)
            );
            let mut res = json_error(StatusCode::TOO_MANY_REQUESTS, "throttled", &message);
            if let Ok(v) = retry_after.to_string().parse() {
                res.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            res
        }
        SignInError::Other(e) => json_app_error(e),
    }
}

/// POST /login/passkey/options — starts a sign-in with a passkey alone (anonymous; the CSRF
/// token is the sign-in form's).
pub async fn sign_in_options(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = passkeys::start_sign_in(
        &state.pool,
        state.clock.as_ref(),
        &state.settings.public_url,
        &client_ip(&req),
    )
    .await;
    match result {
        Ok(ceremony) => started(Ok(ceremony)),
        Err(e) => sign_in_refusal(e),
    }
}

/// POST /login/passkey/finish — `{"ceremony", "credential", "next"}`: signs the passkey's person
/// in (a new session) and answers where to go.
pub async fn sign_in_finish(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let answer: Answer<PublicKeyCredential> = match read_json(&body) {
        Some(answer) => answer,
        None => return unreadable(),
    };
    let result = passkeys::finish_sign_in(
        &state.pool,
        state.clock.as_ref(),
        &state.settings.public_url,
        &answer.ceremony,
        &answer.credential,
        &client_ip(&req),
    )
    .await;
    let signed_in = match result {
        Ok(signed_in) => signed_in,
        Err(e) => return sign_in_refusal(e),
    };
    match start_session(&req, &session, &signed_in.user_id, state.clock.unix()) {
        Ok(()) => go_to(&safe_next(Some(&answer.next))),
        Err(e) => json_app_error(e),
    }
}

/// The person in the second step of a sign-in (password right, second factor to come), while
/// that pending state lasts.
fn second_step_user(session: &Session, now: i64) -> Option<String> {
    crate::web::factors::pending(session, now)
}

fn no_second_step() -> HttpResponse {
    json_error(
        StatusCode::UNAUTHORIZED,
        "sign_in_required",
        "Your sign-in has expired. Sign in again.",
    )
}

/// POST /login/second-step/passkey/options — starts the second step with one of the pending
/// person's passkeys.
pub async fn second_step_options(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(user_id) = second_step_user(&session, state.clock.unix()) else {
        return no_second_step();
    };
    let result = passkeys::start_second_factor(
        &state.pool,
        state.clock.as_ref(),
        &state.settings.public_url,
        &user_id,
        &client_ip(&req),
    )
    .await;
    match result {
        Ok(ceremony) => started(Ok(ceremony)),
        Err(e) => sign_in_refusal(e),
    }
}

/// POST /login/second-step/passkey/finish — `{"ceremony", "credential", "next"}`: completes the
/// sign-in of the pending person when the passkey is theirs.
pub async fn second_step_finish(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(user_id) = second_step_user(&session, state.clock.unix()) else {
        return no_second_step();
    };
    let answer: Answer<PublicKeyCredential> = match read_json(&body) {
        Some(answer) => answer,
        None => return unreadable(),
    };
    let result = passkeys::check_second_factor(
        &state.pool,
        state.clock.as_ref(),
        &state.settings.public_url,
        &user_id,
        &answer.ceremony,
        &answer.credential,
        &client_ip(&req),
    )
    .await;
    if let Err(e) = result {
        return sign_in_refusal(e);
    }
    // Where the person was going when they typed their password, as the code form does.
    let next = session.get::<String>(PENDING_NEXT).ok().flatten();
    match start_session(&req, &session, &user_id, state.clock.unix()) {
        Ok(()) => go_to(&safe_next(next.as_deref().or(Some(&answer.next)))),
        Err(e) => json_app_error(e),
    }
}
