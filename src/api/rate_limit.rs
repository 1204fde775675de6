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
            item(('q', limit.burst), ('w', limit.window_secs())),
        ),
        (
            RATELIMIT,
            item(('r', remaining.max(0)), ('t', reset_secs.max(0))),
        ),
    ]
}

/// `"key";<a>=<x>;<b>=<y>`, put together with itoa rather than `format!` (these are on every
/// answer to a key with a limit; the formatting machinery cost 1.2k instructions a header).
fn item((a, x): (char, i64), (b, y): (char, i64)) -> String {
    let (mut x_digits, mut y_digits) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (x, y) = (x_digits.format(x), y_digits.format(y));
    let mut out = String::with_capacity(POLICY.len() + 8 + x.len() + y.len());
    for part in ["\"", POLICY, "\";"] {
        out.push_str(part);
    }
    out.push(a);
    out.push('=');
    out.push_str(x);
    out.push(';');
    out.push(b);
    out.push('=');
    out.push_str(y);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_headers_name_the_policy_and_its_numbers() {
        let limit = RateLimit {
            per_second: 2.5,
            burst: 10,
        };
        let [(policy_name, policy), (state_name, state)] = headers(limit, 7, 3);
        assert_eq!(policy_name, RATELIMIT_POLICY);
        assert_eq!(policy, "\"key\";q=10;w=4");
        assert_eq!(state_name, RATELIMIT);
        assert_eq!(state, "\"key\";r=7;t=3");
        let [_, (_, spent)] = headers(limit, -2, -1);
        assert_eq!(spent, "\"key\";r=0;t=0");
        let [(_, big), _] = headers(
            RateLimit {
                per_second: 0.01,
                burst: 1_000_000,
            },
            0,
            0,
        );
        assert_eq!(big, "\"key\";q=1000000;w=100000000");
    }
}
