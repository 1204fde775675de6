//! Key checks remember keys between requests (`service::key_auth`'s cache). Every request that
//! may change something (any method but GET, HEAD and OPTIONS, except the verify endpoint,
//! which only reads keys) tells them, once it has been answered, to read again: whatever a
//! console page or an API call changed about keys, users, groups or roles is seen by the next
//! key check on this instance, whichever service made the change.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// The one POST that changes nothing the key checks read (its refusals are written by the
/// key checks themselves, which tell the cache).
const READS_ONLY: &str = "/api/v1/verify";

/// Middleware: after a request that may have changed keys, key checks read them again.
pub async fn seen_by_key_checks(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let may_change = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.path() != READS_ONLY;
    let state = may_change
        .then(|| {
            req.app_data::<actix_web::web::Data<crate::state::AppState>>()
                .cloned()
        })
        .flatten();
    let res = next.call(req).await;
    if let Some(state) = state {
        state.key_checker.keys_changed();
    }
    res
}
