use chrono::Duration;
use reqwest::StatusCode;

use crate::common::{ADMIN_EMAIL, spawn_app};

#[tokio::test]
async fn an_idle_session_expires() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        app.get("/my/keys").await.status,
        StatusCode::OK,
        "activity keeps it alive"
    );
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        app.get("/my/keys").await.status,
        StatusCode::OK,
        "29 minutes after the last request"
    );
    app.clock.advance(Duration::minutes(31));
    let page = app.get("/my/keys").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login?next=%2Fmy%2Fkeys");
}

#[tokio::test]
async fn the_idle_timeout_follows_the_setting() {
    let app = crate::common::spawn_app_with(|s| s.session_idle_mins = 5).await;
    app.signed_in_user().await;
    app.clock.advance(Duration::minutes(6));
    assert_eq!(app.get("/my/keys").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_session_ends_twelve_hours_after_sign_in_however_active() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    for _ in 0..(12 * 3) {
        app.clock.advance(Duration::minutes(20));
        assert_eq!(app.get("/my/keys").await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::minutes(20));
    assert_eq!(app.get("/my/keys").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_out_ends_the_session_and_is_audited() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let res = app.post("/logout", &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/login?signed_out=1");
    let login = app.get("/login?signed_out=1").await;
    assert_eq!(login.text("[role=status]"), "You have signed out.");
    assert_eq!(
        app.get("/user-access/keys").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_out'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE user_id IS NOT NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn sessions_are_shared_by_every_instance_on_one_database() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    // A second server over the same database (as behind a load balancer) accepts the cookie.
    let settings = keyward::config::Settings::for_data_dir(
        app.data_dir.path().to_path_buf(),
        Some(app.database_url.clone()),
    )
    .unwrap();
    let second = keyward::startup::Application::build(settings, app.clock.clone())
        .await
        .unwrap();
    let port = second.port();
    tokio::spawn(second.into_server());
    let cookie = app
        .client
        .get(app.url("/user-access/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), 200);
    let res = app
        .client
        .get(format!("http://127.0.0.1:{port}/user-access/keys"))
        .send()
        .await
        .unwrap();
    // reqwest's cookie store is per host, and both servers are 127.0.0.1: the same cookie goes.
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains(ADMIN_EMAIL));
}
