use reqwest::StatusCode;

use crate::common::{ADMIN_EMAIL, PASSWORD, spawn_app};

#[tokio::test]
async fn sign_out_without_a_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app.post_raw("/logout", &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.text("h1"), "This form has expired");
    assert_eq!(
        app.get("/user-access/keys").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn a_wrong_token_is_refused() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    app.get("/login").await;
    let page = app
        .post_raw(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
                ("csrf_token", "forged"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_token_from_another_session_is_refused() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let other = app.other_client();
    let foreign = other.csrf_token().await;
    let page = app.post_raw("/logout", &[("csrf_token", &foreign)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_post_that_is_not_a_form_is_refused() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let res = app
        .client
        .post(app.url("/notifications/read"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
