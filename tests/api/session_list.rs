//! The sessions list on /account/security (SPEC §8): each signed-in session with its device,
//! address, sign-in and last use; signing out one, every other, and an administrator signing a
//! user out everywhere. A session ended elsewhere is dead at its next request.

use chrono::Duration;
use reqwest::StatusCode;

use crate::common::{PASSWORD, TestApp, USER_EMAIL, UnixNow, spawn_app};

const FIREFOX_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/132.0 Mobile/15E148 Safari/605.1.15";
const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like \
    Gecko) Chrome/131.0.0.0 Safari/537.36";

/// A client of the same server that says it is `user_agent`.
fn browser(app: &TestApp, user_agent: &str) -> TestApp {
    let mut other = app.other_client();
    other.client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .unwrap();
    other
}

/// Grace signed in on a phone and on a laptop; returns (phone, laptop).
async fn grace_on_two_devices(app: &TestApp) -> (TestApp, TestApp) {
    app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    let phone = browser(app, FIREFOX_IPHONE);
    assert_eq!(
        phone.sign_in(USER_EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    app.clock.advance(Duration::minutes(5));
    let laptop = browser(app, CHROME_LINUX);
    assert_eq!(
        laptop.sign_in(USER_EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    (phone, laptop)
}

#[tokio::test]
async fn the_security_page_lists_each_session_with_its_device_and_address() {
    let app = spawn_app().await;
    let (phone, laptop) = grace_on_two_devices(&app).await;
    app.clock.advance(Duration::minutes(3));
    phone.get("/my/keys").await;
    let page = laptop.get("/account/security").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows = page.texts("tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].starts_with("Chrome on Linux This device"),
        "{rows:?}"
    );
    assert!(rows[0].contains("127.0.0.1") && rows[0].contains("Now"));
    assert!(rows[1].starts_with("Firefox on iPhone"), "{rows:?}");
    assert!(rows[1].contains("127.0.0.1"));
    assert!(rows[1].contains("8 minutes ago"), "signed in: {rows:?}");
    assert!(
        rows[1].contains("just now") || rows[1].contains("minute"),
        "{rows:?}"
    );
    // The account menu leads here.
    assert!(page.attr("a[href='/account/security']", "href").is_some());
}

#[tokio::test]
async fn last_seen_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (phone, _laptop) = grace_on_two_devices(&app).await;
    let seen = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT last_seen_at FROM sessions WHERE device = 'Firefox on iPhone'",
        )
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
    };
    phone.get("/my/keys").await;
    let before = seen().await;
    assert_eq!(
        before,
        app.clock.unix_now(),
        "the first request after a while writes"
    );
    app.clock.advance(Duration::seconds(30));
    phone.get("/my/keys").await;
    assert_eq!(seen().await, before, "no write within the minute");
    app.clock.advance(Duration::seconds(31));
    phone.get("/my/keys").await;
    assert_eq!(seen().await, before + 61);
}

#[tokio::test]
async fn signing_out_one_session_ends_it_at_once() {
    let app = spawn_app().await;
    let (phone, laptop) = grace_on_two_devices(&app).await;
    let page = laptop.get("/account/security").await;
    let action = page
        .attr("tbody tr:nth-child(2) form", "action")
        .expect("a sign-out form for the phone");
    let done = laptop.post(&action, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let back = laptop.get(&done.location()).await;
    assert_eq!(back.text("[role=status]"), "The session was signed out.");
    assert_eq!(back.texts("tbody tr").len(), 1);
    let dead = phone.get("/my/keys").await;
    assert_eq!(dead.status, StatusCode::SEE_OTHER);
    assert!(dead.location().starts_with("/login"));
    assert_eq!(laptop.get("/my/keys").await.status, StatusCode::OK);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'session.signed_out'")
            .await,
        1
    );
}

#[tokio::test]
async fn nobody_signs_out_someone_elses_session() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (phone, _laptop) = grace_on_two_devices(&app).await;
    let id: String = sqlx::query_scalar("SELECT public_id FROM sessions WHERE device = $1")
        .bind("Firefox on iPhone")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let page = app
        .post(&format!("/account/security/sessions/{id}/sign-out"), &[])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(phone.get("/my/keys").await.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_only_this_session() {
    let app = spawn_app().await;
    let (phone, laptop) = grace_on_two_devices(&app).await;
    let third = browser(&app, "curl/8.5.0");
    third.sign_in(USER_EMAIL, PASSWORD).await;
    let done = laptop
        .post("/account/security/sessions/sign-out-others", &[])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let back = laptop.get(&done.location()).await;
    assert_eq!(back.text("[role=status]"), "Signed out 2 other sessions.");
    assert_eq!(back.texts("tbody tr").len(), 1);
    assert!(
        back.attr("form[action$='sign-out-others']", "action")
            .is_none()
    );
    assert_eq!(phone.get("/my/keys").await.status, StatusCode::SEE_OTHER);
    assert_eq!(third.get("/my/keys").await.status, StatusCode::SEE_OTHER);
    assert_eq!(laptop.get("/my/keys").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_administrator_signs_a_user_out_everywhere() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (phone, laptop) = grace_on_two_devices(&app).await;
    let id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(USER_EMAIL)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let confirm = app.get(&format!("/user-access/users/{id}/sign-out")).await;
    assert_eq!(confirm.text("h1"), "Sign out everywhere?");
    let done = app
        .post(&format!("/user-access/users/{id}/sign-out"), &[])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let back = app.get(&done.location()).await;
    assert_eq!(
        back.text("[role=status]"),
        "The user was signed out everywhere."
    );
    assert_eq!(phone.get("/my/keys").await.status, StatusCode::SEE_OTHER);
    assert_eq!(laptop.get("/my/keys").await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/user-access/users").await.status, StatusCode::OK);
    let audit = app.get("/audit").await.text("tbody");
    assert!(audit.contains("user.signed_out_everywhere"), "{audit}");
}

#[tokio::test]
async fn signing_a_user_out_everywhere_needs_users_write() {
    let app = spawn_app().await;
    let ada = app
        .create_admin("ada@example.com", "Ada Lovelace", PASSWORD)
        .await;
    let admin = app.other_client();
    admin.sign_in("ada@example.com", PASSWORD).await;
    let (_phone, laptop) = grace_on_two_devices(&app).await;
    let path = format!("/user-access/users/{ada}/sign-out");
    assert_eq!(laptop.get(&path).await.status, StatusCode::FORBIDDEN);
    assert_eq!(laptop.post(&path, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.get("/user-access/users").await.status, StatusCode::OK);
}
