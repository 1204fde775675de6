//! What keyward exposes (SPEC §11, issue 12 points 6, 11, 12): `/metrics` only for the bearer of
//! `KEYWARD_METRICS_TOKEN` or on its own `KEYWARD_METRICS_BIND` listener; webhooks only to public
//! addresses unless `KEYWARD_WEBHOOK_ALLOW_PRIVATE=true`, checked when saved and again when
//! sent; webhook URLs without their query string outside the endpoint's own page.

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::config::Settings;
use keyward::startup::Application;
use reqwest::StatusCode;

use crate::common::receiver::Receiver;
use crate::common::{
    TestApp, captured_logs, fresh_database, spawn_app, spawn_app_on, spawn_app_with, start_time,
};
use crate::secret_keys::create_signing_key;
use crate::webhooks::{add_endpoint, add_key};

const PAGE: &str = "/configuration/api-access";
const TOKEN: &str = "metrics-token-0123456789abcdef";

/// Asks the API about a key that does not exist, so that a refusal by reason is counted.
async fn refused_call(address: &str) {
    let made_up = format!(
        "Bearer {}::{}",
        keyward::domain::KeyId::generate(),
        keyward::domain::Secret::generate().expose()
    );
    let res = reqwest::Client::new()
        .get(format!("{address}/api/v1/apikeys/current"))
        .header("Authorization", made_up)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn get_metrics(url: &str, authorization: Option<&str>) -> (StatusCode, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(value) = authorization {
        req = req.header("Authorization", value);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test]
async fn metrics_do_not_exist_on_the_main_listener_without_a_token_setting() {
    let app = spawn_app().await;
    refused_call(&app.address).await;
    for authorization in [None, Some("Bearer anything-at-all-1234567890")] {
        let page = app.get("/metrics").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{authorization:?}");
        // The same page as any unknown path: nothing says that metrics exist here.
        assert_eq!(page.text("h1"), "Page not found");
        let (status, body) = get_metrics(&app.url("/metrics"), authorization).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!body.contains("keyward_"), "{body}");
    }
}

#[tokio::test]
async fn metrics_on_the_main_listener_need_the_bearer_token() {
    let app = spawn_app_with(|s| s.metrics_token = Some(TOKEN.into())).await;
    refused_call(&app.address).await;
    let url = app.url("/metrics");
    let wrong_length = format!("Bearer {TOKEN}x");
    let wrong_byte = format!("Bearer {}X", &TOKEN[..TOKEN.len() - 1]);
    let basic = format!("Basic {TOKEN}");
    for authorization in [
        None,
        Some("Bearer"),
        Some("Bearer "),
        Some(wrong_length.as_str()),
        Some(wrong_byte.as_str()),
        Some(basic.as_str()),
        Some(TOKEN),
    ] {
        let (status, body) = get_metrics(&url, authorization).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert!(
            !body.contains("keyward_"),
            "no counters without the token: {body}"
        );
    }
    let res = reqwest::Client::new().get(&url).send().await.unwrap();
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    let (status, body) = get_metrics(&url, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(r#"keyward_key_verifications_total{outcome="NOT_FOUND",via="api"} 1"#),
        "{body}"
    );
    let (status, _) = get_metrics(&url, Some(&format!("bearer {TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK, "the scheme is case-insensitive");
    assert!(
        !captured_logs().contains(TOKEN),
        "the token is never logged"
    );
}

/// A keyward whose metrics have a listener of their own; returns the app, its metrics port and
/// what must outlive it.
async fn app_with_metrics_listener() -> (String, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database(dir.path()).await;
    let mut settings =
        Settings::for_data_dir(dir.path().to_path_buf(), Some(database_url)).unwrap();
    settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let clock = Arc::new(ManualClock::new(start_time()));
    let app = Application::build(settings, clock).await.unwrap();
    let port = app.metrics_port().expect("a metrics listener");
    assert_ne!(port, app.port());
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.into_server());
    (address, port, dir)
}

#[tokio::test]
async fn the_metrics_listener_serves_metrics_without_a_token_and_nothing_else() {
    let (address, port, _dir) = app_with_metrics_listener().await;
    refused_call(&address).await;
    let metrics = format!("http://127.0.0.1:{port}");
    let (status, body) = get_metrics(&format!("{metrics}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(r#"keyward_key_verifications_total{outcome="NOT_FOUND",via="api"} 1"#),
        "the main listener's counters: {body}"
    );
    for path in [
        "/",
        "/login",
        "/healthz",
        "/api/v1/apikeys",
        "/metrics/",
        "/static/app.css",
    ] {
        let (status, body) = get_metrics(&format!("{metrics}{path}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body.is_empty(), "{path}: {body}");
    }
    // And the main listener still has no /metrics (no token is set).
    let (status, _) = get_metrics(&format!("{address}/metrics"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The receivers an endpoint must not name by default, as `(URL, what it is)`.
fn private_urls(port: u16) -> Vec<(String, &'static str)> {
    vec![
        (format!("http://127.0.0.1:{port}/hooks"), "loopback"),
        ("http://[::1]/".into(), "IPv6 loopback"),
        (
            "http://169.254.169.254/latest/meta-data".into(),
            "cloud metadata",
        ),
        ("http://10.0.0.1/".into(), "private network"),
        (format!("http://localhost:{port}/"), "localhost"),
        ("http://[::ffff:127.0.0.1]/".into(), "IPv4-mapped loopback"),
        ("http://0x7f.1/".into(), "loopback in hex"),
        ("http://100.64.0.1/".into(), "shared CGNAT space"),
        ("http://[fd00::1]/".into(), "unique-local"),
    ]
}

/// A name other than `localhost` that /etc/hosts maps to a loopback address (on Debian the
/// machine's own name on 127.0.1.1), so that only resolving it can tell it is private.
fn loopback_hosts_name() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|line| {
        let mut words = line.split('#').next()?.split_whitespace();
        let ip: std::net::IpAddr = words.next()?.parse().ok()?;
        if !ip.is_loopback() {
            return None;
        }
        words
            .find(|name| {
                let name = name.to_ascii_lowercase();
                !name.contains("localhost") && !name.starts_with("ip6-") && !name.contains(':')
            })
            .map(str::to_string)
    })
}

/// Posts the new-endpoint form.
async fn save_endpoint(app: &TestApp, url: &str, key_id: &str) -> crate::common::Page {
    app.post(
        &format!("{PAGE}/webhooks"),
        &[
            ("url", url),
            ("events", "key.created"),
            ("signing_key_id", key_id),
            ("enabled", "1"),
        ],
    )
    .await
}

#[tokio::test]
async fn private_receivers_are_refused_when_saved_unless_allowed() {
    let receiver = Receiver::start(vec![]).await;
    let mut urls = private_urls(receiver.port);
    let name = loopback_hosts_name();
    if let Some(name) = &name {
        urls.push((receiver.url_via(name), "a hosts-file name for loopback"));
    }
    println!("a loopback name from /etc/hosts: {name:?}");

    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (key_id, _) = create_signing_key(&app, "Receiver").await;
    for (url, what) in &urls {
        let page = save_endpoint(&app, url, &key_id).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {url}"
        );
        let error = page.text("#url-error");
        assert!(
            error.contains("resolves to a private address"),
            "{what}: {error}"
        );
        // The form keeps what was typed, to be corrected.
        assert_eq!(page.attr("#url", "value").as_deref(), Some(url.as_str()));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_endpoints").await, 0);

    // A public receiver is saved; changing it to a private one is refused the same way.
    let public = add_endpoint(
        &app,
        "https://93.184.216.34/hooks",
        &["key.created"],
        &key_id,
    )
    .await;
    let changed = app
        .post(
            &format!("{PAGE}/webhooks/{public}"),
            &[
                ("url", "http://169.254.169.254/latest/meta-data"),
                ("events", "key.created"),
                ("signing_key_id", &key_id),
                ("enabled", "1"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        changed
            .text("#url-error")
            .contains("resolves to a private address")
    );
    let stored: String = sqlx::query_scalar("SELECT url FROM webhook_endpoints")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(stored, "https://93.184.216.34/hooks");

    // With KEYWARD_WEBHOOK_ALLOW_PRIVATE=true every one of them is accepted.
    let allowed = spawn_app_with(|s| s.webhook_allow_private = true).await;
    allowed.signed_in_admin().await;
    let (key_id, _) = create_signing_key(&allowed, "Receiver").await;
    for (url, what) in &urls {
        let page = save_endpoint(&allowed, url, &key_id).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{what}: {url}");
    }
    assert_eq!(
        allowed
            .count("SELECT COUNT(*) FROM webhook_endpoints")
            .await,
        urls.len() as i64
    );
}

#[tokio::test]
async fn an_endpoint_saved_while_private_receivers_were_allowed_gets_nothing_once_they_are_not() {
    let receiver = Receiver::start(vec![]).await;
    let allowed = spawn_app_with(|s| s.webhook_allow_private = true).await;
    allowed.signed_in_admin().await;
    let (key_id, _) = create_signing_key(&allowed, "Receiver").await;
    // By literal address, and by a name that resolves to loopback (checked only by resolving).
    let by_name = loopback_hosts_name().unwrap_or_else(|| "localhost".into());
    println!("the receiver by name: {by_name}");
    let endpoints = [
        add_endpoint(&allowed, &receiver.url(), &["key.created"], &key_id).await,
        add_endpoint(
            &allowed,
            &receiver.url_via(&by_name),
            &["key.created"],
            &key_id,
        )
        .await,
    ];
    // While allowed, both reach the receiver: the refusal below is not a broken receiver.
    add_key(&allowed, "first").await;
    assert_eq!(allowed.jobs.deliver_due().await.unwrap().delivered, 2);
    assert_eq!(receiver.wait_for(2).await.len(), 2);

    // The same database under the default setting: nothing reaches the receiver any more.
    let restarted = spawn_app_on(
        &allowed.database_url,
        &allowed.state.master_key.to_base64(),
        allowed.clock.clone(),
    )
    .await
    .unwrap();
    add_key(&allowed, "second").await;
    let pass = restarted.jobs.deliver_due().await.unwrap();
    assert_eq!((pass.delivered, pass.retrying, pass.failed), (0, 0, 2));
    assert_eq!(receiver.received().len(), 2, "nothing more was sent");

    // The log says why without telling how the address answered, and nothing was timed.
    for endpoint in &endpoints {
        let (status, latency, error): (Option<i64>, i64, String) = sqlx::query_as(
            "SELECT status, latency_ms, error FROM webhook_attempts WHERE endpoint_id = $1 \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(endpoint)
        .fetch_one(&restarted.state.pool)
        .await
        .unwrap();
        assert_eq!((status, latency), (None, 0));
        assert!(
            error.contains("the receiver's address is not public"),
            "{error}"
        );
        for leak in ["connect", "refused", "timed out", "127.0.0.1", "dns"] {
            assert!(!error.contains(leak), "{leak} in {error}");
        }
    }
    let mut states: Vec<String> =
        sqlx::query_scalar("SELECT state FROM webhook_deliveries WHERE attempts > 0")
            .fetch_all(&restarted.state.pool)
            .await
            .unwrap();
    states.sort();
    assert_eq!(
        states,
        ["delivered", "delivered", "failed", "failed"],
        "refused at once: retrying cannot make the address public"
    );
}

#[tokio::test]
async fn a_receivers_token_in_the_query_string_stays_on_the_endpoints_own_page() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (key_id, _) = create_signing_key(&app, "Receiver").await;
    let url = "https://93.184.216.34/hooks/keyward?token=s3cret";
    let saved = save_endpoint(&app, url, &key_id).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(!saved.location().contains("s3cret"));
    let endpoint = saved
        .location()
        .trim_start_matches(&format!("{PAGE}/webhooks/"))
        .split('?')
        .next()
        .unwrap()
        .to_string();

    // Its own page shows the whole URL to whoever may change it.
    let own = app.get(&format!("{PAGE}/webhooks/{endpoint}")).await;
    assert_eq!(own.attr("#url", "value").as_deref(), Some(url));

    // Changed, tested and deleted: none of it writes or shows the token elsewhere.
    let changed = app
        .post(
            &format!("{PAGE}/webhooks/{endpoint}"),
            &[
                (
                    "url",
                    "https://93.184.216.34/hooks/keyward?token=s3cret&v=2",
                ),
                ("events", "key.created"),
                ("signing_key_id", &key_id),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert!(!changed.location().contains("s3cret"));
    let tested = app
        .post(&format!("{PAGE}/webhooks/{endpoint}/test"), &[])
        .await;
    assert!(!tested.location().contains("s3cret"));

    let list = app.get(PAGE).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains("s3cret"), "the API Access list");
    assert!(
        list.body.contains("https://93.184.216.34/hooks/keyward?…"),
        "the list says there is a query string"
    );
    let confirm = app.get(&format!("{PAGE}/webhooks/{endpoint}/delete")).await;
    assert!(!confirm.body.contains("s3cret"), "the delete confirmation");
    let deleted = app
        .post(&format!("{PAGE}/webhooks/{endpoint}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(
        !deleted.location().contains("s3cret"),
        "{}",
        deleted.location()
    );
    assert!(
        !deleted.location().contains("93.184"),
        "no URL in a redirect"
    );
    let after = app.get(&deleted.location()).await;
    assert!(after.text("[role=status]").contains("was deleted"));

    let audited: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, target_label, details FROM audit_log WHERE action LIKE 'webhook.%' \
         ORDER BY id",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    let actions: Vec<&str> = audited.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "webhook.created",
            "webhook.updated",
            "webhook.test_sent",
            "webhook.deleted"
        ]
    );
    for (action, label, details) in &audited {
        assert_eq!(label, "https://93.184.216.34/hooks/keyward?…", "{action}");
        assert!(!details.contains("s3cret"), "{action}: {details}");
    }
    let audit = app.get("/audit").await;
    assert!(audit.body.contains("webhook.created") || audit.body.contains("93.184.216.34"));
    assert!(!audit.body.contains("s3cret"), "the audit page");
    assert!(!captured_logs().contains("s3cret"), "the logs");
}
