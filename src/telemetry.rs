//! Structured logs: each logged request names its method, path (never the query string, which
//! may carry a one-time token), status and latency; at `debug` every request is a span.
//!
//! What an operator sees at the default `info`: start-up, the background job, every server
//! error (5xx, at ERROR) and every refusal of credentials or permission (401, 403, at INFO).
//! Each ordinary request is a line only at `debug` (`KEYWARD_LOG=debug` is the access log): at
//! `info` a busy instance would otherwise write a line per request (160 MB a minute under load).
//! Throttled requests (429) are not logged one by one either: each throttled window is audited
//! once and counted in `/metrics`. Refusals are written one by one up to [`LINE_BUDGET`] a
//! second; beyond it (a flood of wrong secrets) they are counted and the count is written once
//! (within a second, by the server's ticker), so a flood costs no formatted line per request.
//! Failures (5xx) are always written, each. Malformed request
//! heads, which actix logs at ERROR although they are the client's fault (answered 400), are
//! silenced unless `KEYWARD_LOG` names `actix_http`.

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
    let failed = status >= 500;
    let refused = matches!(status, 401 | 403);
    let logged = if failed {
        tracing::enabled!(tracing::Level::ERROR)
    } else if refused {
        tracing::enabled!(tracing::Level::INFO)
    } else {
        tracing::enabled!(tracing::Level::DEBUG)
    };
    if !logged {
        return;
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let method = method.as_str();
    if !failed && !refused {
        tracing::debug!(method, path, status, latency_ms, "request finished");
        return;
    }
    if failed {
        // Every failure is a line: an operator alerting on ERROR must see each one.
        tracing::error!(method, path, status, latency_ms, "request failed");
        return;
    }
    // Refusals: one line each, up to a budget a second (see `LINE_BUDGET`).
    let (allowed, skipped) = LINES.take();
    tell(skipped);
    if allowed {
        tracing::info!(method, path, status, latency_ms, "request refused");
    }
}

/// Writes how many refusal lines an earlier second held back, if it has not been written yet
/// (the server calls this every second, so a flood's count does not wait for the next refusal).
pub fn tell_skipped() {
    tell(LINES.roll());
}

fn tell(skipped: u32) {
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "refused requests not logged one by one in an earlier second (over {LINE_BUDGET} a second; every refusal of a key is in the audit log, every request in /metrics)"
        );
    }
}

/// Most refusal lines a second. A flood of wrong secrets (thousands a second) would
/// otherwise be a formatted line per request, as costly as the check itself; past the budget
/// they are counted and told in one line when the next second's first line is written.
pub const LINE_BUDGET: u32 = 50;

static LINES: LineBudget = LineBudget::new();

/// Seconds since the first line was weighed, from 1.
fn now_second() -> u64 {
    static START: std::sync::LazyLock<std::time::Instant> =
        std::sync::LazyLock::new(std::time::Instant::now);
    START.elapsed().as_secs() + 1
}

/// A budget of log lines per second, shared by every thread.
struct LineBudget {
    /// The second (since the first line) the counts are for.
    second: std::sync::atomic::AtomicU64,
    /// Lines taken in that second, up to the budget and beyond.
    taken: std::sync::atomic::AtomicU32,
}

impl LineBudget {
    const fn new() -> Self {
        LineBudget {
            second: std::sync::atomic::AtomicU64::new(0),
            taken: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Whether a line may be written now, and how many were held back in an earlier second
    /// (told once, by the first line of a new second or by the server's ticker).
    fn take(&self) -> (bool, u32) {
        self.take_at(now_second())
    }

    /// The count held back in an earlier second, when the second has moved on since.
    fn roll(&self) -> u32 {
        self.roll_at(now_second())
    }

    /// [`LineBudget::take`] in second `now` (from 1).
    fn take_at(&self, now: u64) -> (bool, u32) {
        use std::sync::atomic::Ordering;
        let skipped = self.roll_at(now);
        let taken = self.taken.fetch_add(1, Ordering::AcqRel);
        (taken < LINE_BUDGET, skipped)
    }

    /// [`LineBudget::roll`] in second `now`.
    fn roll_at(&self, now: u64) -> u32 {
        use std::sync::atomic::Ordering;
        let seen = self.second.load(Ordering::Acquire);
        let mut skipped = 0;
        // Only forward: a thread that read the clock just before a rollover changes nothing.
        if now > seen
            && self
                .second
                .compare_exchange(seen, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            skipped = self
                .taken
                .swap(0, Ordering::AcqRel)
                .saturating_sub(LINE_BUDGET);
        }
        skipped
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

    /// Lines written by a subscriber, kept in memory.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn every_failure_is_a_line_while_refusals_keep_to_the_budget() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        let n = LINE_BUDGET as usize + 20;
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..n {
                request_finished(&Method::GET, "/api/v1/apikeys", 401, Duration::ZERO);
                request_finished(&Method::GET, "/api/v1/apikeys", 503, Duration::ZERO);
            }
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("request failed").count(), n, "{text}");
        let refused = text.matches("request refused").count();
        // At least a second's budget of refusals (the budget itself is tested below and in
        // tests/api/logging.rs).
        assert!(
            (LINE_BUDGET as usize..=n).contains(&refused),
            "{refused} refusal lines"
        );
    }

    #[test]
    fn lines_past_the_budget_are_counted_and_told_once_in_a_later_second() {
        let budget = LineBudget::new();
        for _ in 0..LINE_BUDGET {
            assert_eq!(budget.take_at(1), (true, 0));
        }
        assert_eq!(budget.take_at(1), (false, 0));
        assert_eq!(budget.take_at(1), (false, 0));
        // The next second's first line tells the two held back, and is written itself.
        assert_eq!(budget.take_at(2), (true, 2));
        assert_eq!(budget.take_at(2), (true, 0));
        // A quiet second tells nothing.
        assert_eq!(budget.take_at(5), (true, 0));
        // The server's ticker tells a flood's count without waiting for another refusal.
        for _ in 0..LINE_BUDGET + 3 {
            budget.take_at(6);
        }
        assert_eq!(budget.roll_at(6), 0, "not before the second is over");
        assert_eq!(budget.roll_at(7), 3);
        assert_eq!(budget.roll_at(8), 0, "told once");
    }
}
