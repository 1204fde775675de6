//! CSRF protection, checked on every state-changing request to the console by one middleware,
//! so no handler can forget it. Every form carries its token as `csrf_token`:
//! - signed in: a random token kept in the session (synchroniser token);
//! - the anonymous forms (sign-in, setup, invitation, and the password reset pages to come):
//!   a stateless signed token, so that showing them writes no session row. A random nonce lives
//!   in a short-lived `HttpOnly`, `SameSite=Strict` cookie, and the form carries the time it was
//!   issued and an HMAC of nonce and time under a key derived from the master key: a page on
//!   another site can neither read the nonce nor forge the HMAC.
//!
//! A console request with a JSON body (the passkey ceremonies) carries the token in the
//! `X-CSRF-Token` header instead: a page on another site cannot set that header without a CORS
//! preflight, which is never granted. The JSON API authenticates with keys, not cookies, and is
//! exempt.

use std::future::{Ready, ready};

use actix_session::{Session, SessionExt};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::AppError;

const SESSION_KEY: &str = "csrf";
/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";
/// The header that carries the token on a JSON request (the passkey ceremonies' script).
pub const HEADER: &str = "x-csrf-token";

/// The paths whose forms are posted before sign-in, with the anonymous token.
pub const ANONYMOUS_FORMS: &[&str] = &[
    "/login",
    "/setup",
    "/invite",
    "/forgot-password",
    "/reset-password",
    "/login/passkey/options",
    "/login/passkey/finish",
];

/// How long an anonymous form's token works after the page was shown.
pub const ANONYMOUS_TOKEN_TTL_SECS: i64 = 2 * 3600;

/// Label of the key the anonymous tokens are signed with.
const ANONYMOUS_KEY_LABEL: &str = "csrf-anonymous-forms";

/// Length of the nonce: 32 random bytes in unpadded base64url.
const NONCE_LEN: usize = 43;

/// The name of the nonce cookie. With https the `__Host-` prefix makes browsers refuse it from
/// a sibling subdomain or over plain http, so nobody can plant a nonce of their own.
pub fn anonymous_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-keyward_form"
    } else {
        "keyward_form"
    }
}

/// What signing and checking anonymous forms' tokens needs, kept as application data: the key
/// (derived from the master key), whether cookies are `Secure`, and the clock.
pub struct FormTokens {
    key: secrecy::zeroize::Zeroizing<[u8; 32]>,
    secure: bool,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
}

impl FormTokens {
    /// The tokens of an application with this master key, cookie setting and clock.
    pub fn new(
        master_key: &crate::auth::master_key::MasterKey,
        secure: bool,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
    ) -> Self {
        Self {
            key: master_key.derive(ANONYMOUS_KEY_LABEL),
            secure,
            clock,
        }
    }
}

fn app_state(req: &HttpRequest) -> Result<&web::Data<FormTokens>, AppError> {
    req.app_data::<web::Data<FormTokens>>()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("form token keys missing")))
}

fn anonymous_mac(state: &FormTokens, nonce: &str, issued_at: i64) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.key[..])
        .expect("HMAC takes a key of any length");
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(issued_at.to_string().as_bytes());
    mac.finalize().into_bytes().into()
}

fn is_nonce(value: &str) -> bool {
    value.len() == NONCE_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The browser's nonce, when it sent a well-formed one.
fn presented_nonce(req: &HttpRequest, secure: bool) -> Option<String> {
    req.cookie(anonymous_cookie_name(secure))
        .map(|c| c.value().to_string())
        .filter(|n| is_nonce(n))
}

/// The token of an anonymous form (sign-in, setup, invitation), taken by the handlers that show
/// one. It reuses the browser's nonce when it has one, so two open tabs both keep working; the
/// handler must [`attach`](AnonymousToken::attach) it to its response, which (re)sets the cookie.
pub struct AnonymousToken {
    /// The value for the form's `csrf_token` field.
    pub token: String,
    cookie: Cookie<'static>,
}

impl AnonymousToken {
    /// A fresh token for `req`.
    pub fn issue(req: &HttpRequest) -> Result<Self, AppError> {
        let state = app_state(req)?;
        let secure = state.secure;
        let nonce = presented_nonce(req, secure).unwrap_or_else(|| {
            let mut bytes = [0u8; 32];
            rand::fill(&mut bytes);
            URL_SAFE_NO_PAD.encode(bytes)
        });
        let issued_at = state.clock.unix();
        let mac = anonymous_mac(state, &nonce, issued_at);
        let token = format!("{issued_at}.{}", URL_SAFE_NO_PAD.encode(mac));
        let cookie = Cookie::build(anonymous_cookie_name(secure), nonce)
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Strict)
            .max_age(actix_web::cookie::time::Duration::seconds(
                ANONYMOUS_TOKEN_TTL_SECS,
            ))
            .finish();
        Ok(Self { token, cookie })
    }

    /// Sets the nonce cookie on the response that shows the form.
    pub fn attach(self, mut res: HttpResponse) -> HttpResponse {
        if let Err(e) = res.add_cookie(&self.cookie) {
            tracing::error!(error = %e, "the form cookie could not be set");
        }
        res
    }
}

impl FromRequest for AnonymousToken {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::issue(req))
    }
}

/// Whether `presented` is a token this server issued for the browser's nonce cookie, within
/// its lifetime (HMAC compared in constant time).
pub fn anonymous_matches(req: &HttpRequest, presented: &str) -> bool {
    let Ok(state) = app_state(req) else {
        return false;
    };
    let Some(nonce) = presented_nonce(req, state.secure) else {
        return false;
    };
    let Some((issued_at, mac)) = presented.split_once('.') else {
        return false;
    };
    let (Ok(issued_at), Ok(mac)) = (issued_at.parse::<i64>(), URL_SAFE_NO_PAD.decode(mac)) else {
        return false;
    };
    let age = state.clock.unix() - issued_at;
    // A minute of slack the other way for instances whose clocks differ a little.
    if !(-60..=ANONYMOUS_TOKEN_TTL_SECS).contains(&age) {
        return false;
    }
    let expected = anonymous_mac(state, &nonce, issued_at);
    bool::from(expected.as_slice().ct_eq(&mac))
}

/// The session's token, created on first use. Only for signed-in pages: creating it writes the
/// session; anonymous forms take an [`AnonymousToken`].
pub fn token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(SESSION_KEY) {
        return t;
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let t = URL_SAFE_NO_PAD.encode(bytes);
    // Inserting a String into the session cannot fail to serialise.
    let _ = session.insert(SESSION_KEY, &t);
    t
}

/// Whether `presented` is the session's token (constant-time).
pub fn matches(session: &Session, presented: &str) -> bool {
    match session.get::<String>(SESSION_KEY) {
        Ok(Some(expected)) => {
            !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
        }
        _ => false,
    }
}

fn is_exempt(req: &ServiceRequest) -> bool {
    req.method().is_safe() || req.path().starts_with("/api/")
}

/// Middleware: refuses a state-changing console request whose form lacks the session's token.
/// Refusals are answered here as responses (not errors), so that the middleware outside adds
/// the security headers to them.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if is_exempt(&req) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let (http, mut payload) = req.into_parts();
    let body = match web::Bytes::from_request(&http, &mut payload).await {
        Ok(body) => body,
        Err(e) => {
            let res = e.error_response();
            return Ok(ServiceResponse::new(http, res));
        }
    };
    let presented = http
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| form_field(&body, FIELD))
        .unwrap_or_default();
    let anonymous_form = ANONYMOUS_FORMS.contains(&http.path());
    let valid = (anonymous_form && anonymous_matches(&http, &presented))
        || matches(&http.get_session(), &presented);
    if !valid {
        tracing::warn!(path = %http.path(), "refused a form without a valid CSRF token");
        let res = actix_web::ResponseError::error_response(&AppError::Csrf);
        return Ok(ServiceResponse::new(http, res));
    }
    let req = ServiceRequest::from_parts(http, Payload::from(body));
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The value of one field of a URL-encoded form body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_field_of_a_form() {
        assert_eq!(
            form_field(b"a=1&csrf_token=xyz%2B&b=2", FIELD).as_deref(),
            Some("xyz+")
        );
        assert_eq!(form_field(b"a=1", FIELD), None);
        assert_eq!(form_field(b"\xff\xfe", FIELD), None);
    }
}
