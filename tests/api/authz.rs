//! Who may do what (SPEC §11), each test an attack from the review of issue 12 that must now do
//! no harm: escalation through roles and groups, another person's personal key, a replaced
//! secret taking a key over, an owner undoing an administrator's decision.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::rest::{self, Key};
use crate::common::{PASSWORD, TestApp, USER_EMAIL, spawn_app};

/// One request with this authorization: its status and JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, value, _) = rest::call(app, method, path, Some(auth), body).await;
    (status, value)
}

/// An access key made by the signed-in administrator in the console, with these roles.
async fn tenant_key(app: &TestApp, name: &str, roles: &[&str]) -> Key {
    rest::tenant_key(app, name, "access", roles).await
}

async fn permissions_of(app: &TestApp, key: &Key) -> Value {
    let (status, body) = call(
        app,
        Method::GET,
        "/api/v1/apikeys/current",
        &key.bearer(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["permissions"].clone()
}

/// A group with these roles, made by the signed-in administrator, with `member` in it.
async fn group_with(app: &TestApp, name: &str, roles: &[&str], member: &str) -> String {
    let mut fields = vec![("name", name), ("description", "")];
    for r in roles {
        fields.push(("roles", r));
    }
    let res = app.post("/user-access/groups", &fields).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let group = res
        .location()
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let res = app
        .post(
            &format!("/user-access/users/{member}"),
            &[("groups", &group)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    group
}

#[tokio::test]
async fn a_key_administrator_gives_no_role_or_group_beyond_its_own_permissions() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key_admin = tenant_key(&app, "deployer", &["role_key_admin"]).await;
    let keys_before = app.count("SELECT COUNT(*) FROM access_keys").await;

    // The review's attack: a never-expiring API key with Tenant Administrator and the
    // Administrators group, and Tenant Administrator added to itself.
    for (body, field) in [
        (
            json!({"name": "root", "type": "api", "expires_at": null, "role_ids": ["role_tenant_admin"]}),
            "role_ids",
        ),
        (
            json!({"name": "root", "type": "api", "group_ids": ["grp_administrators"]}),
            "group_ids",
        ),
        // Read Only carries audit:read, which a Key Administrator does not hold.
        (
            json!({"name": "auditor", "role_ids": ["role_read_only"]}),
            "role_ids",
        ),
    ] {
        let (status, answer) = call(
            &app,
            Method::POST,
            "/api/v1/apikeys",
            &key_admin.bearer(),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_keys").await,
        keys_before,
        "nothing was created"
    );
    let (status, answer) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", key_admin.id),
        &key_admin.bearer(),
        Some(json!({"role_ids": ["role_key_admin", "role_tenant_admin"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        permissions_of(&app, &key_admin).await,
        json!(["keys:read", "keys:verify", "keys:write", "users:read"]),
        "the key did not widen itself"
    );

    // What it holds it may give: an Integration key (keys:verify).
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys",
        &key_admin.bearer(),
        Some(json!({"name": "verifier", "role_ids": ["role_integration"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["permissions"], json!(["keys:verify"]));
    // ... but never to itself, even within its permissions.
    let (status, answer) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", key_admin.id),
        &key_admin.bearer(),
        Some(json!({"role_ids": ["role_key_admin", "role_integration"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot widen its own"),
        "{answer}"
    );
    // A key given Tenant Administrator by an administrator keeps it when another key renames
    // it (kept roles are not given again).
    let root = tenant_key(&app, "root", &["role_tenant_admin"]).await;
    let (status, answer) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", root.id),
        &key_admin.bearer(),
        Some(json!({"name": "root (renamed)", "role_ids": ["role_tenant_admin"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn a_personal_key_of_a_key_administrator_cannot_make_an_administrator_key() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let grace = app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    group_with(&app, "Key team", &["role_key_admin"], &grace).await;
    let grace_app = app.other_client();
    grace_app.sign_in(USER_EMAIL, PASSWORD).await;
    let shown = grace_app
        .add_key(
            "/my/keys",
            &[
                ("name", "laptop"),
                ("key_type", "access"),
                ("validity", "30"),
            ],
        )
        .await;
    let personal = Key {
        id: shown.id,
        secret: shown.secret,
    };
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys",
        &personal.bearer(),
        Some(json!({"name": "backdoor", "expires_at": null, "role_ids": ["role_tenant_admin"], "group_ids": ["grp_administrators"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let made: i64 = app
        .count("SELECT COUNT(*) FROM access_keys WHERE name = 'backdoor'")
        .await;
    assert_eq!(made, 0);
}

#[tokio::test]
async fn a_key_only_narrows_its_own_allowed_networks() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let root = tenant_key(&app, "root", &["role_tenant_admin"]).await;
    let worker = tenant_key(&app, "worker", &["role_key_admin"]).await;
    let (status, answer) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", worker.id),
        &root.bearer(),
        Some(json!({"allowed_networks": ["127.0.0.0/24"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for widened in [
        json!(["127.0.0.0/8"]),
        json!([]),
        json!(["127.0.0.0/24", "10.0.0.0/8"]),
    ] {
        let (status, answer) = call(
            &app,
            Method::PATCH,
            &format!("/api/v1/apikeys/{}", worker.id),
            &worker.bearer(),
            Some(json!({ "allowed_networks": widened })),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], "allowed_networks");
    }
    let (status, answer) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", worker.id),
        &worker.bearer(),
        Some(json!({"allowed_networks": ["127.0.0.1/32"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "narrowing is allowed: {answer}");
    assert_eq!(answer["allowed_networks"], json!(["127.0.0.1/32"]));
}

#[tokio::test]
async fn a_secret_for_a_key_that_may_do_more_goes_only_to_who_holds_it_all() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let root = tenant_key(&app, "root", &["role_tenant_admin"]).await;
    let key_admin = tenant_key(&app, "deployer", &["role_key_admin"]).await;
    let (status, answer) = call(
        &app,
        Method::POST,
        &format!("/api/v1/apikeys/{}/secretkey", root.id),
        &key_admin.bearer(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(answer.get("secret_key").is_none());
    assert_eq!(
        permissions_of(&app, &root).await.as_array().unwrap().len(),
        9
    );
    // An administrator may.
    let (status, answer) = call(
        &app,
        Method::POST,
        &format!("/api/v1/apikeys/{}/secretkey", key_admin.id),
        &root.bearer(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn nobody_obtains_a_secret_for_another_persons_personal_key() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    // The administrator's own personal key, and keys with tenant scope.
    let shown = app
        .add_key(
            "/my/keys",
            &[
                ("name", "ada laptop"),
                ("key_type", "access"),
                ("validity", "90"),
            ],
        )
        .await;
    let personal = Key {
        id: shown.id,
        secret: shown.secret,
    };
    let key_admin = tenant_key(&app, "deployer", &["role_key_admin"]).await;
    let root = tenant_key(&app, "root", &["role_tenant_admin"]).await;
    for caller in [&key_admin, &root] {
        let (status, answer) = call(
            &app,
            Method::POST,
            &format!("/api/v1/apikeys/{}/secretkey", personal.id),
            &caller.bearer(),
            Some(json!({"grace_seconds": 0})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert!(answer.get("secret_key").is_none());
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Only its owner"),
            "{answer}"
        );
    }
    assert_eq!(
        permissions_of(&app, &personal)
            .await
            .as_array()
            .unwrap()
            .len(),
        9,
        "the owner's secret still works"
    );

    // In the console too: another administrator cannot regenerate Ada's personal key.
    let bob = app.create_admin("bob@example.com", "Bob", PASSWORD).await;
    let _ = bob;
    let bob_app = app.other_client();
    bob_app.sign_in("bob@example.com", PASSWORD).await;
    let page = bob_app
        .post(
            &format!("/user-access/keys/{}/regenerate", personal.id),
            &[("grace", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        bob_app
            .count("SELECT COUNT(*) FROM access_keys WHERE secret_regenerated_at IS NOT NULL")
            .await
            == 0
    );

    // What the administration may do to it: rename no, extend no; shorten, deactivate,
    // delete yes.
    let path = format!("/api/v1/apikeys/{}", personal.id);
    for body in [
        json!({"name": "mine now"}),
        json!({"expires_at": null}),
        json!({"expires_at": "2027-06-01T00:00:00Z"}),
    ] {
        let (status, answer) = call(
            &app,
            Method::PATCH,
            &path,
            &root.bearer(),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {answer}");
    }
    let (status, answer) = call(
        &app,
        Method::PATCH,
        &path,
        &root.bearer(),
        Some(json!({"expires_at": "2026-12-01T00:00:00Z", "active": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "inactive");
    assert_eq!(answer["expires_at"], "2026-12-01T00:00:00Z");
    let (status, _) = call(&app, Method::DELETE, &path, &root.bearer(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_replaced_secret_in_its_grace_period_reads_but_changes_nothing() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let root = tenant_key(&app, "root", &["role_tenant_admin"]).await;
    let leaked = tenant_key(&app, "deployer", &["role_key_admin"]).await;
    let other = tenant_key(&app, "other", &[]).await;
    // The administrator replaces the leaked secret, with a day's grace for the programs.
    let (status, answer) = call(
        &app,
        Method::POST,
        &format!("/api/v1/apikeys/{}/secretkey", leaked.id),
        &root.bearer(),
        Some(json!({"grace_seconds": 86_400})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let new_secret = answer["secret_key"].as_str().unwrap().to_string();
    let old = leaked.with_secret(&leaked.secret);

    // Reading and verifying still work with the old secret.
    let (status, _) = call(&app, Method::GET, "/api/v1/apikeys/current", &old, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, Method::GET, "/api/v1/apikeys", &old, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/v1/verify",
        &old,
        Some(json!({"key": format!("{}::{}", other.id, other.secret)})),
    )
    .await;
    assert_eq!(
        (status, answer["valid"].clone()),
        (StatusCode::OK, json!(true))
    );

    // The takeover: rotating the key, or any other change, is refused.
    let other_path = format!("/api/v1/apikeys/{}", other.id);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/apikeys/current/secretkey".to_string(),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/apikeys/{}/secretkey", other.id),
            None,
        ),
        (
            Method::PATCH,
            other_path.clone(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/apikeys/{}", leaked.id),
            Some(json!({"expires_at": null})),
        ),
        (Method::DELETE, other_path.clone(), None),
        (
            Method::POST,
            "/api/v1/apikeys".to_string(),
            Some(json!({"name": "spare"})),
        ),
    ] {
        let (status, answer) = call(&app, method.clone(), &path, &old, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("previous secret"),
            "{answer}"
        );
    }
    // The administrator's new secret still works, the other key is untouched, and the audit
    // log says the previous secret was used.
    let fresh = leaked.with_secret(&new_secret);
    let (status, _) = call(&app, Method::GET, "/api/v1/apikeys/current", &fresh, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = call(&app, Method::GET, &other_path, &root.bearer(), None).await;
    assert_eq!(
        (status, answer["name"].clone()),
        (StatusCode::OK, json!("other"))
    );
    let refused = app
        .count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'key.change_refused' \
             AND outcome = 'failure' AND details LIKE '%previous secret%'",
        )
        .await;
    assert_eq!(refused, 6);
    // With the new secret, changes go through again.
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys/current/secretkey",
        &fresh,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn an_owner_cannot_undo_an_administrators_deactivation_or_lock() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let root = tenant_key(&app, "root", &["role_tenant_admin"]).await;
    app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    let grace = app.other_client();
    grace.sign_in(USER_EMAIL, PASSWORD).await;
    let shown = grace
        .add_key(
            "/my/keys",
            &[
                ("name", "laptop"),
                ("key_type", "access"),
                ("validity", "30"),
            ],
        )
        .await;
    let id = shown.id.clone();
    let status_of = |app: &TestApp, id: String| {
        let app_address = app.url(&format!("/api/v1/apikeys/{id}"));
        let auth = root.bearer();
        async move {
            let res = reqwest::Client::new()
                .get(app_address)
                .header("authorization", auth)
                .send()
                .await
                .unwrap();
            let body: Value = res.json().await.unwrap();
            body["status"].as_str().unwrap().to_string()
        }
    };

    // An administrator deactivates it; the owner cannot turn it back on.
    let res = app
        .post(&format!("/user-access/keys/{id}/deactivate"), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let page = grace.post(&format!("/my/keys/{id}/activate"), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("An administrator deactivated this key"));
    assert_eq!(status_of(&app, id.clone()).await, "inactive");
    // The administration can.
    let res = app
        .post(&format!("/user-access/keys/{id}/activate"), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, id.clone()).await, "active");

    // An administrator locks it; neither unlocking nor a new secret ends that lock.
    let (status, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{id}"),
        &root.bearer(),
        Some(json!({"locked": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let page = grace.post(&format!("/my/keys/{id}/unlock"), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = grace
        .post(&format!("/my/keys/{id}/regenerate"), &[("grace", "")])
        .await;
    assert_eq!(page.status, StatusCode::OK, "the owner may still rotate");
    let new_secret = page.attr("#secret-key", "value").unwrap();
    assert_eq!(status_of(&app, id.clone()).await, "locked");
    assert!(app.authenticate(&id, &new_secret).await.is_err());

    // The owner's own decisions are the owner's to reverse, and not the administration's.
    let res = app
        .post(&format!("/user-access/keys/{id}/unlock"), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let res = grace.post(&format!("/my/keys/{id}/deactivate"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let page = app
        .post(&format!("/user-access/keys/{id}/activate"), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let res = grace.post(&format!("/my/keys/{id}/activate"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, id.clone()).await, "active");
    assert!(app.authenticate(&id, &new_secret).await.is_ok());
}
