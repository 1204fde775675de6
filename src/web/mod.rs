//! The HTML console: routes, thin handlers, askama views, security headers and error pages.

mod account;
mod api_access;
mod assets;
pub mod current_user;
mod errors;
mod factors;
mod frame;
pub mod granted;
mod key_policy;
mod keys;
mod overview;
mod pages;
mod password_reset;
mod people;
mod sign_in;
pub mod step_up;

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, web};

pub use assets::asset_url;
pub use frame::Frame;

/// Every console route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::home))
        .route("/login", web::get().to(sign_in::login_form))
        .route("/login", web::post().to(sign_in::login))
        .route("/logout", web::post().to(sign_in::logout))
        .route("/setup", web::get().to(sign_in::setup_form))
        .route("/setup", web::post().to(sign_in::setup))
        .route("/notifications", web::get().to(pages::notifications))
        .route(
            "/notifications/read",
            web::post().to(pages::mark_notifications_read),
        )
        .route("/audit", web::get().to(pages::audit))
        .route("/mail", web::get().to(pages::mail))
        .route("/mail/{id}/retry", web::post().to(pages::retry_mail))
        .route("/account/password", web::get().to(account::password_form))
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .configure(factors::routes)
        .configure(password_reset::routes)
        .configure(account::routes)
        .configure(api_access::routes)
        .configure(account::passkeys::routes)
        .configure(people::routes)
        .configure(key_policy::routes)
        .configure(|c| keys::routes(c, keys::TENANT))
        .configure(|c| keys::routes(c, keys::PERSONAL));
}

/// The console's routes that need no session: the health check and the static assets.
pub fn sessionless_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(pages::healthz))
        .route("/static/{name}", web::get().to(assets::serve));
}

/// The console's answer for a path it does not have (its scope's default service).
pub use errors::not_found;

/// Content-Security-Policy of every response: no inline script, nothing from elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The security headers of SPEC §5 on an answer, including refusals made before any handler
/// ran (a CSRF refusal, a body that cannot be read). With an https public URL, HSTS too. An
/// error that still comes out (the session store's 503) is answered here, with the headers, as
/// the error it is for the layers outside.
pub fn with_security_headers(
    outcome: Result<ServiceResponse, actix_web::Error>,
    https: bool,
) -> Result<ServiceResponse, actix_web::Error> {
    match outcome {
        Ok(mut res) => {
            add_security_headers(res.headers_mut(), https);
            Ok(res)
        }
        Err(e) => {
            let mut answer = e.error_response();
            add_security_headers(answer.headers_mut(), https);
            Err(actix_web::error::InternalError::from_response(e.to_string(), answer).into())
        }
    }
}

/// The security headers of SPEC §5, named and valued once.
static SECURITY_HEADERS: std::sync::LazyLock<[(HeaderName, HeaderValue); 5]> =
    std::sync::LazyLock::new(|| {
        [
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
        ]
        .map(|(name, value)| {
            (
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            )
        })
    });

/// The security headers of SPEC §5, where a response does not set its own.
fn add_security_headers(headers: &mut actix_web::http::header::HeaderMap, https: bool) {
    headers.reserve(SECURITY_HEADERS.len() + 1);
    for (name, value) in SECURITY_HEADERS.iter() {
        // One lookup on the usual path: inserted, and the response's own value (rare: a page
        // with its own policy) put back when there was one.
        let mut own = headers.insert(name.clone(), value.clone());
        if let Some(first) = own.next() {
            headers.insert(name.clone(), first);
            for more in own {
                headers.append(name.clone(), more);
            }
        }
    }
    if https {
        headers.insert(
            actix_web::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// Form bodies that cannot be parsed get the error page, not a bare text response.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| errors::bad_request(&err.to_string()).into())
}

/// Query strings that cannot be parsed get the error page.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _req| errors::bad_request(&err.to_string()).into())
}

/// A 303 redirect (POST-redirect-GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

/// Renders a template into an HTML response with the given status.
pub fn html(status: actix_web::http::StatusCode, body: impl askama::Template) -> HttpResponse {
    match body.render() {
        Ok(text) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(text),
        Err(e) => errors::render_failure(&e),
    }
}

/// The names of the chosen entries of a checkbox list, for a reader's page ("None" if none).
pub(crate) fn names_of(choices: &[(String, String, bool)]) -> String {
    let names: Vec<&str> = choices
        .iter()
        .filter(|c| c.2)
        .map(|c| c.1.as_str())
        .collect();
    if names.is_empty() {
        "None".into()
    } else {
        names.join(", ")
    }
}

/// How long finished messages are kept (`KEYWARD_MESSAGE_RETENTION_DAYS`), as a sentence for
/// the pages that list them; `finished` names them ("Sent, failed and cancelled emails").
pub(crate) fn retention_note(settings: &crate::config::Settings, finished: &str) -> String {
    match settings.message_retention_days {
        0 => format!("{finished} are kept for ever (KEYWARD_MESSAGE_RETENTION_DAYS is 0)."),
        1 => format!("{finished} are removed a day after they were queued."),
        days => format!("{finished} are removed {days} days after they were queued."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderMap, STRICT_TRANSPORT_SECURITY, X_FRAME_OPTIONS};

    #[test]
    fn security_headers_are_added_and_a_responses_own_stand() {
        let mut headers = HeaderMap::new();
        headers.append(X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
        headers.append(X_FRAME_OPTIONS, HeaderValue::from_static("ALLOW-FROM x"));
        add_security_headers(&mut headers, false);
        let own: Vec<_> = headers.get_all(X_FRAME_OPTIONS).collect();
        assert_eq!(own, ["SAMEORIGIN", "ALLOW-FROM x"]);
        for (name, value) in SECURITY_HEADERS
            .iter()
            .filter(|(n, _)| n != X_FRAME_OPTIONS)
        {
            assert_eq!(headers.get(name), Some(value), "{name}");
        }
        assert!(headers.get(STRICT_TRANSPORT_SECURITY).is_none());
        add_security_headers(&mut headers, true);
        assert_eq!(
            headers.get(STRICT_TRANSPORT_SECURITY).unwrap(),
            "max-age=31536000"
        );
    }
}
