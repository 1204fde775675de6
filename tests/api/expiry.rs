//! Expiry notices (SPEC §4) with an injected clock: who is told, at which stage, exactly once.

use chrono::Duration;
use keyward::clock::Clock;
use reqwest::StatusCode;

use crate::common::{PASSWORD, TestApp, spawn_app, spawn_app_with};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// A tenant key valid for `days`, made by the signed-in administrator; returns its ID.
async fn key(app: &TestApp, name: &str, days: &str) -> String {
    app.add_key(
        "/user-access/keys",
        &[
            ("name", name),
            ("key_type", "access"),
            ("validity", days),
            ("custom_date", ""),
        ],
    )
    .await
    .id
}

async fn expires_at(app: &TestApp, id: &str) -> i64 {
    sqlx::query_scalar("SELECT expires_at FROM access_keys WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

/// Moves the clock to `secs` before the key expires; the administrator, whose session has
/// ended meanwhile, signs in again.
async fn move_to_before_expiry(app: &TestApp, id: &str, secs: i64) {
    let target = expires_at(app, id).await - secs;
    let now = app.clock.now().timestamp();
    app.clock.advance(Duration::seconds(target - now));
    app.signed_in_again().await;
}

async fn scan(app: &TestApp) -> usize {
    app.jobs.scan().await.expect("scan runs")
}

/// (recipient, subject) of every queued email, in order.
async fn queued(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT recipient, subject FROM outbox WHERE kind <> 'invitation' ORDER BY created_at, recipient")
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

async fn stages(app: &TestApp, id: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT stage FROM expiry_notices WHERE key_id = $1 ORDER BY stage DESC")
        .bind(id)
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

/// Changes a key's expiry in the details pane, as an administrator would.
async fn change_expiry(app: &TestApp, id: &str, name: &str, validity: &str, date: &str) {
    let page = app
        .post(
            &format!("/user-access/keys/{id}"),
            &[
                ("name", name),
                ("validity", validity),
                ("custom_date", date),
                ("networks", ""),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "expiry saved: {}",
        page.text(".field-error")
    );
}

#[tokio::test]
async fn a_key_expiring_in_47_hours_is_noticed_once_and_one_in_49_hours_is_not() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let soon = key(&app, "billing export", "30").await;
    move_to_before_expiry(&app, &soon, 49 * HOUR).await;
    assert_eq!(scan(&app).await, 0, "49 hours before: not yet");
    assert!(queued(&app).await.is_empty());

    app.clock.advance(Duration::hours(2));
    assert_eq!(scan(&app).await, 1, "47 hours before: noticed");
    let mail = queued(&app).await;
    assert_eq!(
        mail,
        vec![(
            "ada@example.com".to_string(),
            "Access key “billing export” expires in 47 hours".to_string()
        )]
    );
    app.signed_in_again().await;
    let bell = app.get("/notifications").await;
    assert!(bell.text("main").contains("billing export"));
    // The bell is read later than an email: it names the moment, not the time left then.
    assert!(
        !bell.text("main").contains("in 47 hours"),
        "{}",
        bell.text("main")
    );
    assert!(bell.text("main").contains(" UTC"));

    assert_eq!(scan(&app).await, 0, "a second run sends nothing");
    app.clock.advance(Duration::hours(1));
    assert_eq!(scan(&app).await, 0, "nor a later one");
    assert_eq!(queued(&app).await.len(), 1);
}

#[tokio::test]
async fn extending_then_shortening_the_expiry_notices_again_once() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let id = key(&app, "nightly sync", "30").await;
    move_to_before_expiry(&app, &id, 40 * HOUR).await;
    assert_eq!(scan(&app).await, 1);

    change_expiry(&app, &id, "nightly sync", "60", "").await;
    assert_eq!(scan(&app).await, 0, "extended: nothing due");
    // Back to the end of tomorrow: inside the two-day window again.
    let tomorrow = (app.clock.now() + Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    change_expiry(&app, &id, "nightly sync", "custom", &tomorrow).await;
    assert_eq!(scan(&app).await, 1, "shortened: noticed again");
    assert_eq!(scan(&app).await, 0, "once");
    assert_eq!(queued(&app).await.len(), 2);
}

#[tokio::test]
async fn an_expired_key_is_told_once() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let id = key(&app, "old report", "30").await;
    move_to_before_expiry(&app, &id, HOUR).await;
    assert_eq!(scan(&app).await, 1);
    app.clock.advance(Duration::hours(2));
    assert_eq!(scan(&app).await, 1, "expired: told");
    assert_eq!(scan(&app).await, 0);
    app.clock.advance(Duration::days(1));
    assert_eq!(scan(&app).await, 0, "only once");
    let subjects: Vec<String> = queued(&app).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(subjects[1], "Access key “old report” has expired");
    assert_eq!(stages(&app, &id).await, vec![2, 0]);
}

#[tokio::test]
async fn each_stage_is_noticed_once_and_stale_stages_are_skipped() {
    let app = spawn_app_with(|s| s.expiry_notice_days = vec![14, 7, 2]).await;
    app.signed_in_admin().await;
    let id = key(&app, "payroll", "30").await;
    for (before, stage) in [(13 * DAY, 14), (6 * DAY, 7), (DAY, 2)] {
        move_to_before_expiry(&app, &id, before).await;
        assert_eq!(scan(&app).await, 1, "stage {stage}");
        assert_eq!(scan(&app).await, 0, "stage {stage} once");
    }
    assert_eq!(stages(&app, &id).await, vec![14, 7, 2]);

    // A key made three days before it expires hears only at two days.
    let late_date = (app.clock.now() + Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    let late = app
        .add_key(
            "/user-access/keys",
            &[
                ("name", "late starter"),
                ("key_type", "access"),
                ("validity", "custom"),
                ("custom_date", &late_date),
            ],
        )
        .await
        .id;
    assert_eq!(scan(&app).await, 0, "no burst of stale stages");
    move_to_before_expiry(&app, &late, 47 * HOUR).await;
    // "payroll" has expired meanwhile: it is told that, and "late starter" its two days.
    assert_eq!(scan(&app).await, 2);
    assert_eq!(stages(&app, &late).await, vec![2]);
    assert_eq!(stages(&app, &id).await, vec![14, 7, 2, 0]);
}

#[tokio::test]
async fn administrators_the_creator_and_the_owner_are_told_once_each_if_active() {
    let app = spawn_app().await;
    let ada = app.signed_in_admin().await;
    // Bob, a second administrator who has been disabled, hears nothing.
    let bob = app
        .create_admin("bob@example.com", "Bob Stone", PASSWORD)
        .await;
    app.post(&format!("/user-access/users/{bob}/disable"), &[])
        .await;
    let grace = app.other_client();
    grace
        .create_user("grace@example.com", "Grace Hopper", PASSWORD)
        .await;
    grace.sign_in("grace@example.com", PASSWORD).await;
    let personal = grace
        .add_key(
            "/my/keys",
            &[
                ("name", "laptop"),
                ("key_type", "access"),
                ("validity", "30"),
                ("custom_date", ""),
            ],
        )
        .await
        .id;
    move_to_before_expiry(&app, &personal, 30 * HOUR).await;
    assert_eq!(scan(&app).await, 1);
    let recipients: Vec<String> = queued(&app).await.into_iter().map(|(r, _)| r).collect();
    assert_eq!(recipients, vec!["ada@example.com", "grace@example.com"]);
    let (text, html): (String, String) = sqlx::query_as(
        "SELECT body_text, body_html FROM outbox WHERE recipient = 'grace@example.com'",
    )
    .fetch_one(&app.state.pool)
    .await
    .unwrap();
    assert!(text.contains(&personal), "the key ID is in the email");
    assert!(text.contains("UTC"));
    assert!(text.contains("Also told: Ada Lovelace"));
    assert!(
        text.contains(&format!("/my/keys/{personal}")),
        "the owner's link"
    );
    assert!(html.contains("Open key details"));
    let _ = ada;
}

#[tokio::test]
async fn deactivating_or_deleting_a_key_cancels_its_unsent_notices() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let a = key(&app, "first", "30").await;
    let b = key(&app, "second", "30").await;
    move_to_before_expiry(&app, &a, 30 * HOUR).await;
    assert_eq!(scan(&app).await, 2);
    app.post(&format!("/user-access/keys/{a}/deactivate"), &[])
        .await;
    app.post(&format!("/user-access/keys/{b}/delete"), &[])
        .await;
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM outbox ORDER BY key_id")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(states, vec!["cancelled", "cancelled"]);
    let sent = app.jobs.send_due().await.unwrap();
    assert_eq!(sent.sent, 0, "nothing is sent about them");
}
