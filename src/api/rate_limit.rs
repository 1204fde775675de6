//! Rate-limit headers (SPEC §10, draft-ietf-httpapi-ratelimit-headers): every answer to a
//! calling key with a rate limit carries `RateLimit-Policy` (the bucket: a quota of `burst`
//! requests, refilled in `w` seconds) and `RateLimit` (`r` requests left, `t` seconds until
//! the quota is whole again); a 429 for a key over its limit also carries `Retry-After`.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

use crate::domain::RateLimit;
use crate::service::key_auth::rate_limit::RateState;

/// The policy's name in both headers.
const POLICY: &str = "key";

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// `RateLimit-Policy` and `RateLimit` for a key's limit, with `remaining` requests left and
/// the quota whole again in `reset_secs`.
pub fn headers(limit: RateLimit, remaining: i64, reset_secs: i64) -> [(HeaderName, String); 2] {
    [
        (
            RATELIMIT_POLICY,
            format!("\"{POLICY}\";q={};w={}", limit.burst, limit.window_secs()),
        ),
        (
            RATELIMIT,
            format!(
                "\"{POLICY}\";r={};t={}",
                remaining.max(0),
                reset_secs.max(0)
            ),
        ),
    ]
}

/// Notes where the calling key's limit stands, for [`add_headers`].
pub fn note(req: &actix_web::HttpRequest, state: Option<RateState>) {
    if let Some(state) = state {
        req.extensions_mut().insert(state);
    }
}

/// Middleware: adds the headers to an answer for a calling key with a limit (an error answer
/// that set its own keeps them).
pub async fn add_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let state = res.request().extensions().get::<RateState>().copied();
    if let Some(state) = state
        && !res.headers().contains_key(RATELIMIT)
    {
        for (name, value) in headers(state.limit, state.remaining, state.reset_secs) {
            if let Ok(value) = HeaderValue::try_from(value) {
                res.headers_mut().insert(name, value);
            }
        }
    }
    Ok(res)
}
