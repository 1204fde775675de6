//! Webhook endpoints and deliveries against a real HTTP receiver on loopback: signatures that
//! verify with the shown secret, retries with the same event ID, a receiver that hangs, a
//! restart, regenerated signing keys, bad input, and the delivery log. The receiver is on
//! loopback, so these apps allow private receivers (`KEYWARD_WEBHOOK_ALLOW_PRIVATE=true`);
//! `exposure` tests the default, which refuses them.

use chrono::Duration;
use keyward::service::dispatch::{Taken, take_delivery};
use reqwest::StatusCode;

use crate::common::receiver::{Received, Receiver, Reply, verify_signature};
use crate::common::{
    ADMIN_EMAIL, PASSWORD, TestApp, UnixNow, spawn_app, spawn_app_on_with, spawn_app_with,
};
use crate::secret_keys::create_signing_key;

const PAGE: &str = "/configuration/api-access";

/// A keyward that may send webhooks to the receiver on loopback.
pub(crate) async fn spawn_receiving_app() -> TestApp {
    spawn_app_with(|s| s.webhook_allow_private = true).await
}

/// Adds an endpoint through the form; returns its ID.
pub(crate) async fn add_endpoint(
    app: &TestApp,
    url: &str,
    events: &[&str],
    key_id: &str,
) -> String {
    let mut form = vec![("url", url), ("signing_key_id", key_id), ("enabled", "1")];
    form.extend(events.iter().map(|e| ("events", *e)));
    let page = app.post(&format!("{PAGE}/webhooks"), &form).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "{}",
        page.text(".field-error")
    );
    page.location()
        .trim_start_matches(&format!("{PAGE}/webhooks/"))
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

/// A tenant access key made by the signed-in administrator; returns its ID.
pub(crate) async fn add_key(app: &TestApp, name: &str) -> String {
    app.add_key(
        "/user-access/keys",
        &[
            ("name", name),
            ("key_type", "access"),
            ("validity", "90"),
            ("custom_date", ""),
        ],
    )
    .await
    .id
}

/// Checks a request's signature with `secret` and returns its event ID.
fn signed_event(r: &Received, secret: &str) -> String {
    let header = r.header("keyward-signature").expect("a signature header");
    assert!(
        verify_signature(secret, header, &r.body).is_some(),
        "the signature verifies with the shown secret: {header}"
    );
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.header("keyward-event-id")
        .expect("an event ID")
        .to_string()
}

async fn deliveries(app: &TestApp) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "SELECT event_type, state, attempts FROM webhook_deliveries ORDER BY created_at, id",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_event_arrives_signed_with_the_shown_secret_and_describes_the_key() {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (key_id, secret) = create_signing_key(&app, "Receiver").await;
    add_endpoint(
        &app,
        &receiver.url(),
        &["key.created", "key.deleted"],
        &key_id,
    )
    .await;
    let id = add_key(&app, "billing export").await;

    let done = app.jobs.deliver_due().await.unwrap();
    assert_eq!(done.delivered, 1);
    let got = receiver.wait_for(1).await;
    let event_id = signed_event(&got[0], &secret);
    assert_eq!(got[0].header("keyward-event-type"), Some("key.created"));
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["type"], "key.created");
    assert_eq!(body["tenant_id"], app.state.tenant_id.as_str());
    assert_eq!(body["data"]["key"]["id"], id.as_str());
    assert_eq!(body["data"]["key"]["name"], "billing export");
    assert_eq!(body["data"]["key"]["type"], "access");
    assert!(!got[0].body.contains("kws_"), "no secret in an event");
    // Signed now: the timestamp is the server's clock.
    let t = verify_signature(
        &secret,
        got[0].header("keyward-signature").unwrap(),
        &got[0].body,
    );
    assert_eq!(t, Some(app.clock.unix_now()));

    // The key's deletion is the second event; nothing else was subscribed.
    let page = app
        .post(&format!("/user-access/keys/{id}/delete"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    app.jobs.deliver_due().await.unwrap();
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].header("keyward-event-type"), Some("key.deleted"));
    assert_ne!(signed_event(&got[1], &secret), event_id);
    assert_eq!(receiver.received().len(), 2);
}

/// What the API Access list says of the (only) endpoint's health.
async fn health(app: &TestApp) -> String {
    app.get(PAGE).await.text(".endpoint-health")
}

#[tokio::test]
async fn a_receiver_answering_500_then_200_gets_the_same_event_twice() {
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (key_id, secret) = create_signing_key(&app, "Receiver").await;
    let endpoint = add_endpoint(&app, &receiver.url(), &["key.created"], &key_id).await;
    add_key(&app, "ci").await;

    assert_eq!(health(&app).await, "No deliveries yet");
    let first = app.jobs.deliver_due().await.unwrap();
    assert_eq!((first.delivered, first.retrying), (0, 1));
    assert_eq!(
        deliveries(&app).await,
        [("key.created".into(), "queued".into(), 1)]
    );
    // The list says the endpoint is failing, and how.
    let failing = health(&app).await;
    assert!(failing.starts_with("Failing"), "{failing}");
    assert!(failing.contains("answered 500"), "{failing}");
    // Not due again before its backoff.
    assert_eq!(app.jobs.deliver_due().await.unwrap().delivered, 0);
    app.clock.advance(Duration::seconds(31));
    assert_eq!(app.jobs.deliver_due().await.unwrap().delivered, 1);

    let got = receiver.wait_for(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        signed_event(&got[0], &secret),
        signed_event(&got[1], &secret)
    );
    assert_eq!(got[0].body, got[1].body, "the same event, byte for byte");
    assert_ne!(
        got[0].header("keyward-signature"),
        got[1].header("keyward-signature"),
        "each attempt is signed when it is sent"
    );
    assert_eq!(
        deliveries(&app).await,
        [("key.created".into(), "delivered".into(), 2)]
    );
    let healthy = health(&app).await;
    assert!(healthy.starts_with("Last delivery"), "{healthy}");
    assert!(healthy.contains("answered 200"), "{healthy}");

    // The delivery log shows both attempts, newest first, with status and latency.
    let page = app.get(&format!("{PAGE}/webhooks/{endpoint}")).await;
    let rows = page.texts(".delivery-log tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("200") && rows[0].contains(" ms"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("500") && rows[1].contains("the receiver answered 500"),
        "{}",
        rows[1]
    );
    println!("delivery log:\n{}", rows.join("\n"));
}

#[tokio::test]
async fn a_receiver_that_hangs_is_timed_out_and_retried_later() {
    let receiver = Receiver::start(vec![Reply::Hang]).await;
    let app = spawn_app_with(|s| {
        s.webhook_timeout_secs = 1;
        s.webhook_allow_private = true;
    })
    .await;
    app.signed_in_admin().await;
    let (key_id, secret) = create_signing_key(&app, "Receiver").await;
    let endpoint = add_endpoint(&app, &receiver.url(), &["key.created"], &key_id).await;
    let tested = app
        .post(&format!("{PAGE}/webhooks/{endpoint}/test"), &[])
        .await;
    assert_eq!(tested.status, StatusCode::SEE_OTHER);

    let pass = app.jobs.deliver_due().await.unwrap();
    assert_eq!(pass.retrying, 1);
    let (status, error, latency): (Option<i64>, String, i64) =
        sqlx::query_as("SELECT status, error, latency_ms FROM webhook_attempts")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(status, None);
    assert_eq!(error, "no answer within 1 s");
    assert!((900..5_000).contains(&latency), "{latency} ms");

    app.clock.advance(Duration::seconds(31));
    assert_eq!(app.jobs.deliver_due().await.unwrap().delivered, 1);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].header("keyward-event-type"), Some("ping"));
    assert_eq!(
        signed_event(&got[0], &secret),
        signed_event(&got[1], &secret)
    );
}

#[tokio::test]
async fn nothing_is_lost_across_a_restart() {
    let down = crate::common::smtp::closed_port().await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (key_id, secret) = create_signing_key(&app, "Receiver").await;
    let endpoint = add_endpoint(
        &app,
        &format!("http://127.0.0.1:{down}/hooks"),
        &["key.created", "key.secret_regenerated"],
        &key_id,
    )
    .await;
    add_key(&app, "one").await;
    // The receiver is down: the first event waits for its retry.
    let pass = app.jobs.deliver_due().await.unwrap();
    assert_eq!(pass.retrying, 1);
    // A second event is claimed by a sender that dies before sending (its lease stays).
    let id = add_key(&app, "two").await;
    let leased: String =
        sqlx::query_scalar("SELECT d.id FROM webhook_deliveries d WHERE d.attempts = 0")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    let now = app.clock.unix_now();
    assert!(matches!(
        take_delivery(&app.state.pool, &app.state.vault, &leased, now, now + 120)
            .await
            .unwrap(),
        Some(Taken::Ready(..))
    ));

    // Restart: a new instance on the same database, and the receiver is back.
    let receiver = Receiver::start(vec![]).await;
    let restarted = spawn_app_on_with(
        &app.database_url,
        &app.state.master_key.to_base64(),
        app.clock.clone(),
        |s| s.webhook_allow_private = true,
    )
    .await
    .unwrap();
    let signed_in = restarted.sign_in(ADMIN_EMAIL, PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let url = receiver.url();
    let fields = [
        ("url", url.as_str()),
        ("signing_key_id", key_id.as_str()),
        ("enabled", "1"),
        ("events", "key.created"),
        ("events", "key.secret_regenerated"),
    ];
    let saved = restarted
        .post(&format!("{PAGE}/webhooks/{endpoint}"), &fields)
        .await;
    assert_eq!(
        saved.status,
        StatusCode::SEE_OTHER,
        "{}",
        saved.text(".field-error")
    );

    app.clock.advance(Duration::seconds(31));
    let pass = restarted.jobs.deliver_due().await.unwrap();
    assert_eq!(
        pass.delivered, 1,
        "the retry goes out; the leased one waits for its lease"
    );
    app.clock.advance(Duration::seconds(120));
    assert_eq!(restarted.jobs.deliver_due().await.unwrap().delivered, 1);
    let got = receiver.wait_for(2).await;
    let keys: Vec<String> = got
        .iter()
        .map(|r| {
            signed_event(r, &secret);
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            body["data"]["key"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(keys, ["one", "two"]);
    assert!(got[1].body.contains(&id));
    assert_eq!(receiver.received().len(), 2, "each event once");
}

#[tokio::test]
async fn regenerating_a_signing_key_changes_signatures_at_once() {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (key_id, old) = create_signing_key(&app, "Receiver").await;
    let endpoint = add_endpoint(&app, &receiver.url(), &["key.created"], &key_id).await;
    let path = format!("{PAGE}/secret-keys/{key_id}/generate");
    let once = app
        .get(&path)
        .await
        .attr("input[name=once]", "value")
        .unwrap();
    let page = app.post(&path, &[("once", &once)]).await;
    let new = page.attr("#secret-value", "value").unwrap();
    app.post(&format!("{PAGE}/webhooks/{endpoint}/test"), &[])
        .await;
    app.jobs.deliver_due().await.unwrap();
    let got = receiver.wait_for(1).await;
    let header = got[0].header("keyward-signature").unwrap();
    assert!(verify_signature(&new, header, &got[0].body).is_some());
    assert!(
        verify_signature(&old, header, &got[0].body).is_none(),
        "the old secret no longer matches"
    );
}

#[tokio::test]
async fn only_enabled_endpoints_subscribed_to_an_event_get_it() {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (key_id, _) = create_signing_key(&app, "Receiver").await;
    add_endpoint(&app, &receiver.url(), &["key.deleted"], &key_id).await;
    let disabled = add_endpoint(&app, &receiver.url(), &["key.created"], &key_id).await;
    let off = app
        .post(
            &format!("{PAGE}/webhooks/{disabled}"),
            &[
                ("url", &receiver.url()),
                ("signing_key_id", &key_id),
                ("events", "key.created"),
            ],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    add_key(&app, "quiet").await;
    assert!(
        deliveries(&app).await.is_empty(),
        "nobody enabled wants key.created"
    );
    // The test button works on a disabled endpoint.
    app.post(&format!("{PAGE}/webhooks/{disabled}/test"), &[])
        .await;
    app.jobs.deliver_due().await.unwrap();
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("keyward-event-type"), Some("ping"));
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY id",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "webhook.created",
            "webhook.created",
            "webhook.updated",
            "webhook.test_sent"
        ]
    );
}

#[tokio::test]
async fn bad_endpoint_input_gets_clear_messages_and_writes_nothing() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (key_id, _) = create_signing_key(&app, "Receiver").await;
    let long = format!("https://example.com/{}", "a".repeat(2_000));
    type Form<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Form, &str, &str)> = vec![
        (
            vec![("url", "ftp://example.com/h"), ("events", "key.created")],
            "url",
            "http:// or https://",
        ),
        (
            vec![
                ("url", "https://user:pw@example.com/h"),
                ("events", "key.created"),
            ],
            "url",
            "credentials",
        ),
        (
            vec![("url", "example.com/h"), ("events", "key.created")],
            "url",
            "full URL",
        ),
        (
            vec![
                ("url", "https://example.com/h#x"),
                ("events", "key.created"),
            ],
            "url",
            "fragment",
        ),
        (
            vec![("url", long.as_str()), ("events", "key.created")],
            "url",
            "at most 2000",
        ),
        (vec![("url", "")], "url", "Enter the URL"),
        (
            vec![("url", "https://example.com/h")],
            "events",
            "at least one event",
        ),
        (
            vec![("url", "https://example.com/h"), ("events", "key.renamed")],
            "events",
            "not an event",
        ),
    ];
    for (mut form, field, message) in cases {
        form.push(("signing_key_id", &key_id));
        let page = app.post(&format!("{PAGE}/webhooks"), &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        let shown = page.texts(".field-error").join(" | ");
        assert!(shown.contains(message), "{field}: {shown}");
    }
    let page = app
        .post(
            &format!("{PAGE}/webhooks"),
            &[
                ("url", "https://example.com/h"),
                ("events", "key.created"),
                ("signing_key_id", "sk_nope"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.text(".field-error").contains("no longer exists"));
    let page = app
        .post(
            &format!("{PAGE}/webhooks"),
            &[
                ("url", "https://example.com/h"),
                ("events", "key.created"),
                ("signing_key_id", "sk_bridge"),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the bridge key does not sign"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_endpoints").await, 0);
}

#[tokio::test]
async fn a_failed_delivery_is_given_up_after_the_last_attempt_and_can_be_sent_again() {
    let receiver = Receiver::start(vec![Reply::Status(503), Reply::Status(503)]).await;
    let app = spawn_app_with(|s| {
        s.webhook_max_attempts = 2;
        s.webhook_allow_private = true;
    })
    .await;
    app.signed_in_admin().await;
    let (key_id, _) = create_signing_key(&app, "Receiver").await;
    let endpoint = add_endpoint(&app, &receiver.url(), &["key.created"], &key_id).await;
    add_key(&app, "ci").await;
    app.jobs.deliver_due().await.unwrap();
    app.clock.advance(Duration::seconds(31));
    let pass = app.jobs.deliver_due().await.unwrap();
    assert_eq!(pass.failed, 1);
    assert_eq!(
        deliveries(&app).await,
        [("key.created".into(), "failed".into(), 2)]
    );

    let page = app.get(&format!("{PAGE}/webhooks/{endpoint}")).await;
    assert!(page.text(".deliveries-table").contains("Failed"));
    let action = page
        .attr(".deliveries-table form", "action")
        .expect("a Send again button");
    let again = app.post(&action, &[]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(app.jobs.deliver_due().await.unwrap().delivered, 1);
    assert_eq!(receiver.wait_for(3).await.len(), 3);
}

#[tokio::test]
async fn a_key_that_locks_after_wrong_secrets_is_reported() {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (key_id, secret) = create_signing_key(&app, "Receiver").await;
    add_endpoint(&app, &receiver.url(), &["key.locked"], &key_id).await;
    let id = add_key(&app, "ci").await;
    for _ in 0..5 {
        let wrong = keyward::domain::Secret::generate();
        assert!(app.authenticate(&id, wrong.expose()).await.is_err());
    }
    assert_eq!(app.jobs.deliver_due().await.unwrap().delivered, 1);
    let got = receiver.wait_for(1).await;
    signed_event(&got[0], &secret);
    assert_eq!(got[0].header("keyward-event-type"), Some("key.locked"));
    assert!(got[0].body.contains(&id));
}
