//! What every request passes through, in one middleware: the refusal of NUL characters
//! (`edge`), the 503 for a database that cannot be reached, the security headers of SPEC §5,
//! the request counters and timers of `/metrics`, the log line of a refusal or failure (and,
//! at `debug`, of every request), and telling the key checks that something may have changed.
//!
//! These were six middlewares, each a boxed future and a trip through the request's
//! extensions; as one they cost one allocation per request and look the application's state
//! up once. The order of the old stack is kept: the log and the metrics see the answer with
//! its headers, the headers are on every answer (a NUL refusal, a 503), and the key checks are
//! told after the request was answered.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::{Error, web};
use futures_util::future::LocalBoxFuture;
use tracing::Instrument;

use crate::state::AppState;

use super::edge;

/// The one POST that changes nothing the key checks read (its refusals are written by the
/// key checks themselves, which tell them).
const READS_ONLY: &str = "/api/v1/verify";

/// The middleware (see the module comment).
pub struct Envelope;

impl<S, B> Transform<S, ServiceRequest> for Envelope
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = EnvelopeService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(EnvelopeService {
            service: Rc::new(service),
        }))
    }
}

/// [`Envelope`] around the application.
pub struct EnvelopeService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for EnvelopeService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let method = req.method().clone();
        let api = req.path().starts_with("/api/");
        let https = state.as_ref().is_some_and(|s| s.settings.secure_cookies());
        // Any method but GET, HEAD and OPTIONS may change keys, users, groups or roles.
        let may_change = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
            && req.path() != READS_ONLY;
        // The console has its own span (tracing-actix-web's, with a request ID); the API's
        // requests get one here, and only at `debug`: at `info` a request opens no span.
        let span = if api && tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug_span!("request", method = %method, path = %req.path())
        } else {
            tracing::Span::none()
        };
        let service = self.service.clone();
        Box::pin(
            async move {
                let outcome = match edge::refusal_before_body(req) {
                    Err(refused) => Ok(refused),
                    Ok(req) => match edge::checked_body(req).await {
                        Err(refused) => Ok(refused),
                        Ok(req) => service
                            .call(req)
                            .await
                            .map(ServiceResponse::map_into_boxed_body)
                            .map_err(|e| edge::unavailable_as_503(e, api)),
                    },
                };
                if may_change && let Some(state) = &state {
                    state.key_checker.keys_changed();
                }
                let outcome = crate::web::with_security_headers(outcome, https);
                let elapsed = started.elapsed();
                match &outcome {
                    Ok(res) => {
                        if let Some(state) = &state {
                            state.metrics.observe_request(
                                res.request(),
                                &method,
                                res.status(),
                                elapsed.as_secs_f64(),
                            );
                        }
                        crate::telemetry::request_finished(
                            &method,
                            res.request().path(),
                            res.status().as_u16(),
                            elapsed,
                        );
                    }
                    Err(e) => crate::telemetry::request_finished(
                        &method,
                        "",
                        e.as_response_error().status_code().as_u16(),
                        elapsed,
                    ),
                }
                outcome
            }
            .instrument(span),
        )
    }
}
