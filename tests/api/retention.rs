//! Retention of finished messages (`KEYWARD_MESSAGE_RETENTION_DAYS`): the job deletes sent,
//! failed and cancelled emails and finished webhook deliveries, with their attempt logs, once
//! they are older than the retention; anything still being sent stays.

use chrono::Duration;

use crate::common::receiver::{Receiver, Reply};
use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, UnixNow, spawn_app, spawn_app_with};
use crate::mail::invite;
use crate::secret_keys::create_signing_key;
use crate::webhooks::{add_endpoint, add_key};

async fn recipients(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT recipient FROM outbox ORDER BY recipient")
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

async fn deliveries(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT endpoint_id, state FROM webhook_deliveries ORDER BY endpoint_id")
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

async fn attempts_of(app: &TestApp, endpoint_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1")
        .bind(endpoint_id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn finished_messages_go_after_the_retention_and_unfinished_ones_stay() {
    let healthy = Receiver::start(vec![]).await;
    let failing = Receiver::start(vec![Reply::Status(500); 50]).await;
    // The receivers are on loopback, which keyward refuses unless allowed.
    let app = spawn_app_with(|s| s.webhook_allow_private = true).await;
    app.signed_in_admin().await;
    let (signing_key, _) = create_signing_key(&app, "Receiver").await;
    let delivered_to = add_endpoint(&app, &healthy.url(), &["key.created"], &signing_key).await;
    let retried_at = add_endpoint(&app, &failing.url(), &["key.created"], &signing_key).await;

    // Day 0: an invitation sent, one event delivered, the same event still being retried.
    invite(&app, "Grace Hopper", "grace@example.com").await;
    add_key(&app, "nightly export").await;
    let (mail, hooks) = app.jobs.send_all().await.unwrap();
    assert_eq!((mail.sent, hooks.delivered, hooks.retrying), (1, 1, 1));

    // Day 89: the key's expiry notice goes to the administrator. Nothing is old enough yet.
    app.clock.advance(Duration::days(89));
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!((pass.emails_sent, pass.messages_purged), (1, 0));
    assert_eq!(recipients(&app).await, [ADMIN_EMAIL, "grace@example.com"]);

    // Day 91: the day-0 email and the delivered event are past the 90 days and go, with the
    // delivery's attempt log; the delivery still being retried stays, whatever its age.
    app.clock.advance(Duration::days(2));
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!(pass.messages_purged, 2);
    let left = recipients(&app).await;
    assert!(!left.iter().any(|r| r == "grace@example.com"), "{left:?}");
    assert!(left.iter().any(|r| r == ADMIN_EMAIL), "{left:?}");
    let left = deliveries(&app).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, retried_at);
    assert_eq!(attempts_of(&app, &delivered_to).await, 0);
    assert!(attempts_of(&app, &retried_at).await >= 2);

    // The mail log no longer lists the purged email (signed in again: 91 days went by).
    app.sign_in(ADMIN_EMAIL, PASSWORD).await;
    let page = app.get("/mail").await;
    assert!(page.body.contains(ADMIN_EMAIL));
    assert!(!page.body.contains("grace@example.com"));
    assert!(
        page.text(".lead").contains(
            "Sent, failed and cancelled emails are removed 90 days after they were queued."
        ),
        "{}",
        page.text(".lead")
    );
}

#[tokio::test]
async fn the_purge_works_through_more_rows_than_one_statement_deletes() {
    let app = spawn_app().await;
    // 2,345 emails sent 100 days ago, written directly (a busy year's worth, quickly).
    let old = app.clock.unix_now() - 100 * 86_400;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2345) \
         INSERT INTO outbox (id, kind, recipient, subject, body_text, body_html, state, \
         next_attempt_at, created_at, sent_at) \
         SELECT 'old-' || i, 'expiry', 'ops@example.com', 'Key expires', 'text', 'html', 'sent', \
         $1, $1, $1 FROM n",
    )
    .bind(old)
    .execute(&app.state.pool)
    .await
    .unwrap();
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!(pass.messages_purged, 2345);
    assert!(recipients(&app).await.is_empty());
}

#[tokio::test]
async fn a_retention_of_zero_keeps_messages_for_ever() {
    let app = spawn_app_with(|s| s.message_retention_days = 0).await;
    app.signed_in_admin().await;
    invite(&app, "Grace Hopper", "grace@example.com").await;
    assert_eq!(app.jobs.send_due().await.unwrap().sent, 1);
    app.clock.advance(Duration::days(4000));
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!(pass.messages_purged, 0);
    assert_eq!(recipients(&app).await, ["grace@example.com"]);
}
