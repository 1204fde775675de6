//! Passkeys without a browser: who may call the ceremonies' endpoints, what a hostile answer
//! gets, and renaming and removing (only one's own, audited). The ceremonies themselves run in
//! Chromium with a virtual authenticator (`tests/browser/passkeys.rs`).

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{ADMIN_EMAIL, TestApp, spawn_app, spawn_app_with};

/// An app whose public URL names a domain (WebAuthn refuses IP addresses as relying party).
async fn app_on_localhost() -> TestApp {
    spawn_app_with(|s| s.public_url = "http://localhost:0".into()).await
}

/// POSTs a JSON body with `token` in the `X-CSRF-Token` header (empty: no header).
async fn post_json(app: &TestApp, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if !token.is_empty() {
        req = req.header("x-csrf-token", token);
    }
    let res = req.send().await.expect("POST");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The sign-in form's anonymous token (its nonce cookie is kept by the client).
async fn login_token(app: &TestApp) -> String {
    app.get("/login")
        .await
        .attr("input[name=csrf_token]", "value")
        .expect("a token on the sign-in page")
}

/// A stored passkey of `user_id`, written directly (its record is never read by these tests).
async fn insert_passkey(app: &TestApp, id: &str, user_id: &str, name: &str) {
    sqlx::query(
        "INSERT INTO passkeys (id, user_id, credential_id, name, credential, created_at) \
         VALUES ($1, $2, $3, $4, '{}', 0)",
    )
    .bind(id)
    .bind(user_id)
    .bind(format!("cred-{id}"))
    .bind(name)
    .execute(&app.state.pool)
    .await
    .expect("passkey inserted");
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn adding_a_passkey_needs_a_session_and_the_csrf_token() {
    let app = app_on_localhost().await;
    let body = r#"{"name":"Work laptop"}"#;
    let path = "/account/security/passkeys/options";
    let token = login_token(&app).await;
    let (status, _) = post_json(&app, path, &token, body).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an anonymous token is not a session's"
    );

    app.signed_in_admin().await;
    let token = app.csrf_token().await;
    let (status, _) = post_json(&app, path, "", body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no token, no ceremony");
    let (status, _) = post_json(&app, path, "not-the-token", body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, started) = post_json(&app, path, &token, body).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let options = &started["options"]["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["user"]["name"], ADMIN_EMAIL);
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert!(options["challenge"].as_str().is_some_and(|c| c.len() >= 43));
    assert!(started["ceremony"].as_str().is_some_and(|c| c.len() == 43));

    let (status, refused) = post_json(&app, path, &token, r#"{"name":"  "}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(message(&refused), "Enter a name.");
}

#[tokio::test]
async fn hostile_answers_to_adding_a_passkey_are_refused_clearly() {
    let app = app_on_localhost().await;
    app.signed_in_admin().await;
    let token = app.csrf_token().await;
    let finish = "/account/security/passkeys/finish";
    for garbage in [
        "",
        "not json",
        "[]",
        r#"{"ceremony": 5}"#,
        &"[".repeat(10_000),
    ] {
        let (status, body) = post_json(&app, finish, &token, garbage).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{garbage:.20}");
        assert_eq!(
            message(&body),
            "The request could not be read: it is not the passkey answer expected."
        );
    }
    let answer = |ceremony: &str| {
        serde_json::json!({
            "ceremony": ceremony,
            "credential": {
                "id": "AAAA", "rawId": "AAAA", "type": "public-key",
                "response": {"attestationObject": "AAAA", "clientDataJSON": "AAAA"},
                "extensions": {}
            }
        })
        .to_string()
    };
    let (status, body) = post_json(&app, finish, &token, &answer("made-up")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message(&body),
        "This request to add a passkey has expired. Try again."
    );

    let options = "/account/security/passkeys/options";
    let (_, started) = post_json(&app, options, &token, r#"{"name":"Key"}"#).await;
    let ceremony = started["ceremony"].as_str().unwrap();
    let (status, body) = post_json(&app, finish, &token, &answer(ceremony)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message(&body),
        "The passkey could not be added: the authenticator's answer was not valid."
    );
    let (status, _) = post_json(&app, finish, &token, &answer(ceremony)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a ceremony is used once"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM passkeys").await, 0);
}

#[tokio::test]
async fn a_passkey_sign_in_with_a_bad_answer_is_refused_and_audited() {
    let app = app_on_localhost().await;
    let token = login_token(&app).await;
    let (status, _) = post_json(&app, "/login/passkey/options", "", "{}").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the sign-in form's token is needed"
    );
    let (status, started) = post_json(&app, "/login/passkey/options", &token, "{}").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(started["options"]["publicKey"]["rpId"], "localhost");
    assert!(started["options"].get("mediation").is_none());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        0,
        "an anonymous ceremony writes no session"
    );

    let finish = "/login/passkey/finish";
    let (status, _) = post_json(&app, finish, &token, "{\"ceremony\":").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let answer = serde_json::json!({
        "ceremony": started["ceremony"],
        "credential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA",
                         "signature": "AAAA", "userHandle": "AAAA"},
            "extensions": {}
        }
    });
    let (status, body) = post_json(&app, finish, &token, &answer.to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        message(&body),
        "That passkey could not sign you in. Try again, or sign in with your password."
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in' AND outcome = 'failure'"
        )
        .await,
        1
    );
    assert_eq!(
        app.get("/account/security").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_second_step_endpoints_need_a_pending_sign_in() {
    let app = app_on_localhost().await;
    app.signed_in_admin().await;
    let token = app.csrf_token().await;
    let path = "/login/second-step/passkey/options";
    let (status, body) = post_json(&app, path, &token, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(message(&body), "Your sign-in has expired. Sign in again.");
}

#[tokio::test]
async fn only_ones_own_passkeys_are_renamed_and_removed_and_both_are_audited() {
    let app = app_on_localhost().await;
    let admin = app.signed_in_admin().await;
    insert_passkey(&app, "pk_admins", &admin, "Work laptop").await;
    let other = app.other_client();
    let grace = other.signed_in_user().await;
    insert_passkey(&app, "pk_graces", &grace, "Grace's key").await;

    let page = app.get("/account/security").await;
    assert_eq!(page.texts("#passkeys tbody td.strong"), ["Work laptop"]);

    let rename = "/account/security/passkeys/pk_graces/rename";
    assert_eq!(
        app.post(rename, &[("name", "Mine now")]).await.status,
        StatusCode::NOT_FOUND
    );
    let remove = "/account/security/passkeys/pk_graces/remove";
    assert_eq!(app.get(remove).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post(remove, &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT COUNT(*) FROM passkeys").await, 2);

    let long = "x".repeat(65);
    let rename = "/account/security/passkeys/pk_admins/rename";
    let page = app.post(rename, &[("name", &long)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.text("#rename-pk_admins-error"),
        "A passkey's name can be at most 64 characters."
    );
    assert_eq!(
        page.attr("#rename-pk_admins", "value").as_deref(),
        Some(long.as_str())
    );

    let page = app.post(rename, &[("name", "Old laptop")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = app.get(&page.location()).await;
    assert_eq!(
        page.text(".alert-success"),
        "Renamed the passkey to “Old laptop”."
    );

    let remove = "/account/security/passkeys/pk_admins/remove";
    let confirm = app.get(remove).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.text("main").contains("Old laptop"));
    let page = app.post(remove, &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = app.get(&page.location()).await;
    assert_eq!(
        page.text(".alert-success"),
        "Removed the passkey “Old laptop”. It can no longer sign you in."
    );
    assert_eq!(page.texts("#passkeys tbody td.strong").len(), 0);
    let audited = app
        .count(
            "SELECT COUNT(*) FROM audit_log WHERE target_id = 'pk_admins' \
             AND action IN ('passkey.renamed', 'passkey.removed') AND outcome = 'success'",
        )
        .await;
    assert_eq!(audited, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM passkeys").await,
        1,
        "Grace's stays"
    );
}

#[tokio::test]
async fn a_public_url_with_an_ip_address_says_passkeys_are_unavailable() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app.get("/account/security").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Passkeys are not available"));
    let token = app.csrf_token().await;
    let path = "/account/security/passkeys/options";
    let (status, body) = post_json(&app, path, &token, r#"{"name":"Key"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(message(&body).starts_with("Passkeys need keyward to be reached at a domain name"));
}
