//! CSRF protection: a random token kept in the session (synchroniser token), put in every form as
//! `csrf_token` and checked on every state-changing request to the console by one middleware, so
//! no handler can forget it. The JSON API authenticates with keys, not cookies, and is exempt.

use actix_session::{Session, SessionExt};
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::error::AppError;

const SESSION_KEY: &str = "csrf";
/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// The session's token, created on first use.
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
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    if is_exempt(&req) {
        return next.call(req).await;
    }
    let (http, mut payload) = req.into_parts();
    let body = web::Bytes::from_request(&http, &mut payload).await?;
    let presented = form_field(&body, FIELD).unwrap_or_default();
    let session = http.get_session();
    if !matches(&session, &presented) {
        tracing::warn!(path = %http.path(), "refused a form without a valid CSRF token");
        return Err(AppError::Csrf.into());
    }
    let req = ServiceRequest::from_parts(http, Payload::from(body));
    next.call(req).await
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
