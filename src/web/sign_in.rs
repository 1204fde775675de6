//! Sign-in, sign-out and the first-run setup page.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::client_ip::client_ip;
use crate::auth::csrf::AnonymousToken;
use crate::auth::session_store::{
    CLIENT_IP, CONFIRMED_AT, DEVICE, PENDING_AT, PENDING_NEXT, PENDING_USER_ID, SESSION_ID,
    SIGNED_IN_AT, USER_ID,
};
use crate::error::AppError;
use crate::service::accounts::{self, NewAdmin, NextStep, SetupLink, SignInError};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::errors::wait_phrase;
use crate::web::{asset_url, html, see_other};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<&'static str>,
    css: String,
    icon: String,
    /// The passkey ceremonies' script ("Sign in with a passkey").
    passkeys_js: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
    expired: Option<String>,
    timed_out: Option<String>,
    reset: Option<String>,
}

/// Only local paths are followed after sign-in (no open redirect).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    // Browsers drop tabs and newlines from URLs and read `\` as `/`, so `/\t/evil` would become
    // `//evil`: refuse every control character and backslash before the `//` check.
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 512
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn login_page(
    token: &AnonymousToken,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<&'static str>,
) -> LoginPage {
    LoginPage {
        csrf: token.token.clone(),
        email,
        next,
        error,
        notice,
        css: asset_url("app.css"),
        icon: asset_url("favicon.svg"),
        passkeys_js: asset_url("passkeys.js"),
    }
}

/// GET /login — writes no session: the form's CSRF token is the stateless anonymous one.
pub async fn login_form(
    session: Session,
    token: AnonymousToken,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    if session.get::<String>(USER_ID).ok().flatten().is_some() {
        return see_other(&safe_next(query.next.as_deref()));
    }
    let notice = if query.signed_out.is_some() {
        Some("You have signed out.")
    } else if query.expired.is_some() {
        Some("Your password was changed. Sign in again.")
    } else if query.timed_out.is_some() {
        Some("The second step of sign-in ended. Sign in again.")
    } else if query.reset.is_some() {
        Some("Your new password is set and you were signed out everywhere. Sign in with it.")
    } else {
        None
    };
    let page = login_page(
        &token,
        String::new(),
        query.next.clone().unwrap_or_default(),
        None,
        notice,
    );
    token.attach(html(StatusCode::OK, page))
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// POST /login
pub async fn login(
    req: HttpRequest,
    session: Session,
    token: AnonymousToken,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let ip = client_ip(&req);
    let form = form.into_inner();
    if form.email.trim().is_empty() || form.password.is_empty() {
        // Nothing to check: say what is missing rather than that something is wrong.
        let missing = match (form.email.trim().is_empty(), form.password.is_empty()) {
            (true, true) => "Enter your email and password.",
            (true, false) => "Enter your email.",
            _ => "Enter your password.",
        };
        let email = echo_email(form.email);
        let page = login_page(&token, email, form.next, Some(missing.into()), None);
        return Ok(token.attach(html(StatusCode::UNPROCESSABLE_ENTITY, page)));
    }
    let result = accounts::sign_in(
        &state.pool,
        &state.hasher,
        state.clock.as_ref(),
        &form.email,
        &form.password,
        &ip,
    )
    .await;
    match result {
        Ok(signed_in) => {
            let now = state.clock.unix();
            let next = safe_next(Some(&form.next));
            match signed_in.next {
                NextStep::Done => {
                    start_session(&req, &session, &signed_in.user_id, now)?;
                    Ok(see_other(&next))
                }
                NextStep::Enrol => {
                    start_session(&req, &session, &signed_in.user_id, now)?;
                    Ok(see_other("/account/security"))
                }
                NextStep::SecondFactor => {
                    start_pending(&session, &signed_in.user_id, &next, now)?;
                    Ok(see_other("/sign-in/verify"))
                }
            }
        }
        Err(SignInError::Refused) => {
            let page = login_page(
                &token,
                echo_email(form.email),
                form.next,
                Some("Email or password is incorrect.".into()),
                None,
            );
            Ok(token.attach(html(StatusCode::UNAUTHORIZED, page)))
        }
        Err(SignInError::Throttled { retry_after }) => {
            let message = format!(
                "Too many failed sign-in attempts. Wait {} and try again.",
                wait_phrase(retry_after)
            );
            let page = login_page(
                &token,
                echo_email(form.email),
                form.next,
                Some(message),
                None,
            );
            let mut res = html(StatusCode::TOO_MANY_REQUESTS, page);
            if let Ok(v) = retry_after.to_string().parse() {
                res.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            Ok(token.attach(res))
        }
        Err(SignInError::Other(e)) => Err(e),
    }
}

/// The typed email to show again in the form: an over-long one is not sent back whole.
fn echo_email(typed: String) -> String {
    if crate::domain::Email::is_too_long(&typed) {
        String::new()
    } else {
        typed
    }
}

/// A fresh session (new key, new public ID, new CSRF token) for a user who just proved who
/// they are, with the device and address the sessions list shows.
pub(crate) fn start_session(
    req: &HttpRequest,
    session: &Session,
    user_id: &str,
    now: i64,
) -> Result<(), AppError> {
    use rand::distr::{Alphanumeric, SampleString};
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    session.renew();
    session.remove("csrf");
    for key in [PENDING_USER_ID, PENDING_AT, PENDING_NEXT] {
        session.remove(key);
    }
    let public_id = Alphanumeric.sample_string(&mut rand::rng(), 22);
    session
        .insert(USER_ID, user_id)
        .and_then(|()| session.insert(SIGNED_IN_AT, now))
        .and_then(|()| session.insert(CONFIRMED_AT, now))
        .and_then(|()| session.insert(SESSION_ID, public_id))
        .and_then(|()| session.insert(DEVICE, crate::domain::device_label(user_agent)))
        .and_then(|()| session.insert(CLIENT_IP, client_ip(req)))
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
    Ok(())
}

/// A fresh session that is not signed in: it names a person whose password was right and
/// whose second factor is still to come (`/sign-in/verify`), and where they were going.
fn start_pending(session: &Session, user_id: &str, next: &str, now: i64) -> Result<(), AppError> {
    session.renew();
    session.remove("csrf");
    session.remove(USER_ID);
    session
        .insert(PENDING_USER_ID, user_id)
        .and_then(|()| session.insert(PENDING_AT, now))
        .and_then(|()| session.insert(PENDING_NEXT, next))
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
    Ok(())
}

/// POST /logout
pub async fn logout(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if let Ok(Some(user_id)) = session.get::<String>(USER_ID) {
        accounts::sign_out(
            &state.pool,
            state.clock.as_ref(),
            &user_id,
            &client_ip(&req),
        )
        .await?;
    }
    session.purge();
    Ok(see_other("/login?signed_out=1"))
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    token: String,
    name: String,
    email: String,
    errors: FieldErrors,
    css: String,
    icon: String,
}

impl SetupPage {
    fn error(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or_default().to_string()
    }
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

/// GET /setup?token=… — 404 once any user exists, whatever the token.
pub async fn setup_form(
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, AppError> {
    let token = query.token.clone().unwrap_or_default();
    let link = accounts::setup_link(&state.pool, state.clock.as_ref(), &token).await?;
    if link != SetupLink::Usable {
        return Err(link.refusal());
    }
    let page = SetupPage {
        csrf: csrf.token.clone(),
        token,
        name: String::new(),
        email: String::new(),
        errors: FieldErrors::default(),
        css: asset_url("app.css"),
        icon: asset_url("favicon.svg"),
    };
    let mut res = html(StatusCode::OK, page);
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(csrf.attach(res))
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    name: String,
    email: String,
    password: String,
    confirm: String,
}

/// POST /setup — the link is checked before any other work (404 once any user exists).
pub async fn setup(
    req: HttpRequest,
    session: Session,
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let input = NewAdmin {
        name: &form.name,
        email: &form.email,
        password: &form.password,
        confirm: Some(&form.confirm),
    };
    let result = accounts::create_admin(
        &state.pool,
        &state.hasher,
        state.clock.as_ref(),
        input,
        Some(&form.token),
        &client_ip(&req),
    )
    .await;
    match result {
        Ok(user_id) => {
            start_session(&req, &session, &user_id, state.clock.unix())?;
            Ok(see_other("/user-access/keys"))
        }
        Err(FormError::Invalid(errors)) => {
            // The link was checked before the fields: it works. Over-long values are not sent
            // back whole (their fields say why).
            let keep = |value: String, field: &str, max: usize| {
                if errors.get(field).is_some() && value.len() > max {
                    String::new()
                } else {
                    value
                }
            };
            let page = SetupPage {
                csrf: csrf.token.clone(),
                token: form.token,
                name: keep(form.name, "name", 256),
                email: keep(form.email, "email", crate::domain::Email::MAX),
                errors,
                css: asset_url("app.css"),
                icon: asset_url("favicon.svg"),
            };
            Ok(csrf.attach(html(StatusCode::UNPROCESSABLE_ENTITY, page)))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/my/keys")), "/my/keys");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(Some("/audit?x=1")), "/audit?x=1");
        assert_eq!(safe_next(None), "/");
    }
}
