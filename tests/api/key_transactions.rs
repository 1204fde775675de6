//! One transaction per key action, as for invitations (`transactions`): a step inside the action
//! fails (a trigger refuses an insert, as a full disk or a dropped connection would) and nothing
//! of the action remains: no key without its webhook event, no deletion or new secret without
//! its audit entry, no role without its audit entry.

use reqwest::{Method, StatusCode};

use crate::common::faults::fail_inserts_into;
use crate::common::rest::{self, Key};
use crate::common::{TestApp, captured_logs};
use crate::secret_keys::create_signing_key;
use crate::webhooks::spawn_receiving_app;

/// Keys, webhook deliveries and audit entries other than signing in.
async fn footprint(app: &TestApp) -> [i64; 3] {
    [
        app.count("SELECT COUNT(*) FROM access_keys").await,
        app.count("SELECT COUNT(*) FROM webhook_deliveries").await,
        app.count("SELECT COUNT(*) FROM audit_log WHERE action <> 'sign_in'")
            .await,
    ]
}

/// Whether the key's secret still opens the API.
async fn works(app: &TestApp, key: &Key, secret: &str) -> bool {
    let auth = key.with_secret(secret);
    let (status, _, _) = rest::call(
        app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(&auth),
        None,
    )
    .await;
    status == StatusCode::OK
}

#[tokio::test]
async fn a_key_whose_webhook_event_cannot_be_queued_is_not_created() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (signing_key, _) = create_signing_key(&app, "Receiver").await;
    crate::webhooks::add_endpoint(
        &app,
        "http://127.0.0.1:9/hook",
        &["key.created"],
        &signing_key,
    )
    .await;
    let before = footprint(&app).await;
    let fault = fail_inserts_into(&app, "webhook_deliveries").await;

    let page = app
        .post(
            "/user-access/keys",
            &[
                ("name", "billing export"),
                ("key_type", "access"),
                ("validity", "30"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!page.body.contains("kws_"), "no secret is shown");
    assert!(
        captured_logs().contains(&fault),
        "the action reached the webhook step"
    );
    assert_eq!(
        footprint(&app).await,
        before,
        "no key, event or audit entry remains"
    );
}

#[tokio::test]
async fn a_deletion_whose_audit_entry_cannot_be_written_leaves_the_key_working() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let key = rest::tenant_key(&app, "deployer", "access", &[]).await;
    let before = footprint(&app).await;
    fail_inserts_into(&app, "audit_log").await;

    let page = app
        .post(&format!("/user-access/keys/{}/delete", key.id), &[])
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(footprint(&app).await, before);
    assert!(
        works(&app, &key, &key.secret).await,
        "the key still opens the API"
    );
}

#[tokio::test]
async fn a_new_secret_whose_audit_entry_cannot_be_written_is_never_shown() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let key = rest::tenant_key(&app, "deployer", "access", &[]).await;
    fail_inserts_into(&app, "audit_log").await;

    let page = app
        .post(
            &format!("/user-access/keys/{}/regenerate", key.id),
            &[("grace", "0")],
        )
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!page.body.contains("kws_"), "no secret is shown");
    assert!(
        works(&app, &key, &key.secret).await,
        "the old secret still works"
    );
}

#[tokio::test]
async fn a_role_whose_audit_entry_cannot_be_written_is_not_created() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let roles = app.count("SELECT COUNT(*) FROM roles").await;
    fail_inserts_into(&app, "audit_log").await;

    let page = app
        .post(
            "/user-access/roles",
            &[("name", "Auditor"), ("permissions", "audit:read")],
        )
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(app.count("SELECT COUNT(*) FROM roles").await, roles);
}
