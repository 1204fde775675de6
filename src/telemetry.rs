//! Structured logs: each logged request names its method, path (never the query string, which
//! may carry a one-time token), status and latency; at `debug` every request is a span.
//!
//! What an operator sees at the default `info`: start-up, the background job, every server
//! error (5xx, at ERROR) and every refusal of credentials or permission (401, 403, at INFO).
//! Each ordinary request is a line only at `debug` (`KEYWARD_LOG=debug` is the access log): at
//! `info` a busy instance would otherwise write a line per request (160 MB a minute under load).
//! Throttled requests (429) are not logged one by one either: each throttled window is audited
//! once and counted in `/metrics`. Malformed request heads, which actix logs at ERROR although
//! they are the client's fault (answered 400), are silenced unless `KEYWARD_LOG` names
//! `actix_http`.

use std::time::Duration;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber writing to `writer` with the given filter.
pub fn init<W>(filter: &str, ansi: bool, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(with_defaults(filter))
        .unwrap_or_else(|_| EnvFilter::new(with_defaults("info")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi)
        .try_init();
}

/// The operator's filter, with client mistakes that actix logs as errors turned off unless the
/// filter says something about actix's HTTP layer itself.
fn with_defaults(filter: &str) -> String {
    if filter.contains("actix_http") {
        filter.to_string()
    } else {
        format!("{filter},actix_http::h1::dispatcher=off")
    }
}

/// The log line of an answered request: server errors at ERROR, refusals of credentials or
/// permission at INFO, anything else only at DEBUG (the access log). Written by the request
/// envelope (`startup::envelope`) for every request.
pub fn request_finished(method: &Method, path: &str, status: u16, elapsed: Duration) {
    let logged = match status {
        500.. => tracing::enabled!(tracing::Level::ERROR),
        401 | 403 => tracing::enabled!(tracing::Level::INFO),
        _ => tracing::enabled!(tracing::Level::DEBUG),
    };
    if !logged {
        return;
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let method = method.as_str();
    match status {
        500.. => tracing::error!(method, path, status, latency_ms, "request failed"),
        401 | 403 => tracing::info!(method, path, status, latency_ms, "request refused"),
        _ => tracing::debug!(method, path, status, latency_ms, "request finished"),
    }
}

/// Root span of every console request (tracing-actix-web's, with its request ID); the API's
/// requests get theirs from the envelope. A span only at `debug`: at `info` an ordinary request
/// costs no span at all, and the envelope's lines carry the method and path themselves.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing::debug_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if span.is_disabled() {
            return;
        }
        let status = match outcome {
            Ok(res) => res.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        span.record("status", status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_heads_are_silenced_unless_the_operator_asks_for_them() {
        assert_eq!(with_defaults("info"), "info,actix_http::h1::dispatcher=off");
        assert_eq!(
            with_defaults("debug,actix_http=trace"),
            "debug,actix_http=trace"
        );
    }
}
