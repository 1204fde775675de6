//! Prometheus metrics at `/metrics`: requests and latencies per route, key verification
//! outcomes, background job runs, and the emails and webhooks they sent. Each application has its own registry.
//!
//! The counters are not public (SPEC §11): refusals by reason would tell a caller who got the
//! uniform 401 why its key was refused. On the main listener `/metrics` answers only a bearer
//! token (`KEYWARD_METRICS_TOKEN`) and does not exist without one; `KEYWARD_METRICS_BIND` gives
//! it a listener of its own, meant for a private network, that serves nothing else.

use foldhash::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, RwLock};

use actix_web::dev::Server;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Paths whose metrics are remembered; when full, they are forgotten and found again.
const MOST_PATHS: usize = 4096;

/// The counter and timer of one path, method and status.
struct RequestMetrics {
    method: Method,
    status: StatusCode,
    count: IntCounter,
    time: Histogram,
}

/// The counter of one (via, outcome) pair of key checks.
type Verified = (&'static str, &'static str, IntCounter);

/// The application's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Outcomes of key checks: `valid`, or the refusal reason code.
    verifications: IntCounterVec,
    /// The handles of `verifications` counted so far, by (via, outcome).
    verified: Arc<RwLock<Vec<Verified>>>,
    /// Runs of the background job, by job and outcome.
    pub job_runs: IntCounterVec,
    /// Emails and webhook deliveries attempted by the job, by channel and outcome.
    messages: IntCounterVec,
    /// Request metrics by path, found once (see `observe_request`).
    by_path: Arc<RwLock<HashMap<String, Vec<RequestMetrics>>>>,
}

impl Metrics {
    /// A fresh registry with keyward's metrics.
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("keyward".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )?;
        let verifications = IntCounterVec::new(
            Opts::new(
                "key_verifications_total",
                "Presented keys by outcome and where they were presented",
            ),
            &["via", "outcome"],
        )?;
        let job_runs = IntCounterVec::new(
            Opts::new("job_runs_total", "Background job runs"),
            &["job", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(verifications.clone()))?;
        let messages = IntCounterVec::new(
            Opts::new(
                "messages_total",
                "Emails and webhook deliveries the job attempted, by channel and outcome",
            ),
            &["channel", "outcome"],
        )?;
        registry.register(Box::new(job_runs.clone()))?;
        registry.register(Box::new(messages.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            verifications,
            verified: Arc::default(),
            job_runs,
            messages,
            by_path: Arc::default(),
        })
    }

    /// Counts one key check by where it was presented (`api`, `verify`, `bridge`) and its
    /// outcome. The label lookup is made once per pair and its handle remembered (the set of
    /// pairs is fixed by the code).
    pub fn count_verification(&self, via: &'static str, outcome: &'static str) {
        if let Ok(known) = self.verified.read()
            && let Some((_, _, counter)) = known.iter().find(|(v, o, _)| *v == via && *o == outcome)
        {
            counter.inc();
            return;
        }
        let counter = self.verifications.with_label_values(&[via, outcome]);
        counter.inc();
        if let Ok(mut known) = self.verified.write()
            && !known.iter().any(|(v, o, _)| *v == via && *o == outcome)
        {
            known.push((via, outcome, counter));
        }
    }

    /// Counts messages handled, as (channel, outcome, how many).
    pub fn count_messages(&self, counts: &[(&str, &str, usize)]) {
        for &(channel, outcome, n) in counts {
            self.messages
                .with_label_values(&[channel, outcome])
                .inc_by(n as u64);
        }
    }

    /// Counts and times an answered request under its route pattern (never the raw path,
    /// which would carry key IDs and unbounded values). The pattern and the label lookups are
    /// found once per path, method and status and remembered (a request of a path already seen
    /// costs a map lookup, not a second routing and two label lookups).
    pub fn observe_request(
        &self,
        req: &HttpRequest,
        method: &Method,
        status: StatusCode,
        seconds: f64,
    ) {
        let path = req.path();
        if let Ok(known) = self.by_path.read()
            && let Some(seen) = known.get(path)
            && let Some(m) = seen
                .iter()
                .find(|m| m.method == method && m.status == status)
        {
            m.count.inc();
            m.time.observe(seconds);
            return;
        }
        let route = req.match_pattern();
        let label = route.as_deref().unwrap_or("unmatched");
        let count = self
            .requests
            .with_label_values(&[method.as_str(), label, status.as_str()]);
        let time = self.latency.with_label_values(&[method.as_str(), label]);
        count.inc();
        time.observe(seconds);
        if route.is_none() {
            // Paths that match no route are unbounded: not remembered.
            return;
        }
        if let Ok(mut known) = self.by_path.write() {
            if known.len() >= MOST_PATHS {
                known.clear();
            }
            known
                .entry(path.to_string())
                .or_default()
                .push(RequestMetrics {
                    method: method.clone(),
                    status,
                    count,
                    time,
                });
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The exposition as a response.
fn exposition(metrics: &Metrics) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .insert_header(("Cache-Control", "no-store"))
        .body(metrics.render())
}

/// Whether the request carries `Authorization: Bearer <token>`. Compared in constant time over
/// digests, so neither the token's bytes nor its length can be found by timing.
fn bearer_matches(req: &HttpRequest, token: &str) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, t)| t.trim());
    presented.is_some_and(|p| {
        let (p, t) = (
            Sha256::digest(p.as_bytes()),
            Sha256::digest(token.as_bytes()),
        );
        bool::from(p.as_slice().ct_eq(t.as_slice()))
    })
}

/// GET /metrics on the main listener, routed only when `KEYWARD_METRICS_TOKEN` is set (else the
/// path is an ordinary 404): the counters for the bearer of that token, 401 for anyone else.
pub async fn endpoint(
    req: HttpRequest,
    metrics: web::Data<Metrics>,
    token: web::Data<MetricsToken>,
) -> HttpResponse {
    let allowed = bearer_matches(&req, secrecy::ExposeSecret::expose_secret(&token.0));
    if allowed {
        exposition(&metrics)
    } else {
        HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"keyward metrics\""))
            .insert_header(("Cache-Control", "no-store"))
            .finish()
    }
}

/// The bearer token `/metrics` asks for on the main listener (`KEYWARD_METRICS_TOKEN`).
pub struct MetricsToken(pub secrecy::SecretString);

/// GET /metrics on the metrics listener: no token, whoever can reach the listener may read.
async fn open_endpoint(metrics: web::Data<Metrics>) -> HttpResponse {
    exposition(&metrics)
}

/// The `KEYWARD_METRICS_BIND` server: `/metrics` without a token, 404 for every other path. It
/// ignores signals: the application stops it with the main server.
pub fn serve(listener: TcpListener, metrics: Metrics) -> std::io::Result<Server> {
    let metrics = web::Data::new(metrics);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(open_endpoint))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod message_tests {
    #[test]
    fn a_pass_is_counted_by_channel_and_outcome() {
        let m = super::Metrics::new().unwrap();
        let pass = [
            ("email", "sent", 3),
            ("webhook", "delivered", 2),
            ("webhook", "retrying", 1),
        ];
        m.count_messages(&pass);
        m.count_messages(&pass);
        let text = m.render();
        assert!(text.contains("keyward_messages_total{channel=\"email\",outcome=\"sent\"} 6"));
        assert!(
            text.contains("keyward_messages_total{channel=\"webhook\",outcome=\"delivered\"} 4")
        );
        assert!(
            text.contains("keyward_messages_total{channel=\"webhook\",outcome=\"retrying\"} 2")
        );
    }
}
