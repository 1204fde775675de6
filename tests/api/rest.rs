//! The REST API through the real server: key authentication, lockout, every endpoint, errors.

use base64::Engine;
use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::rest::{Key, call, refusal_counts, tenant_key};
use crate::common::{PASSWORD, TestApp, USER_EMAIL, spawn_app, spawn_app_with};

async fn admin_app() -> TestApp {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app
}

#[tokio::test]
async fn both_authorization_forms_reach_the_calling_key() {
    let app = admin_app().await;
    let key = tenant_key(&app, "deployer", "access", &["role_key_admin"]).await;
    for auth in [key.basic(), key.bearer()] {
        let (status, body, _) = call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], key.id);
        assert_eq!(body["name"], "deployer");
        assert_eq!(body["status"], "active");
        assert!(body.get("secret_key").is_none() && !body.to_string().contains(&key.secret));
        assert_eq!(
            body["permissions"],
            json!(["keys:read", "keys:verify", "keys:write", "users:read"])
        );
    }
    // Last use is recorded with address and user agent.
    let (_, body, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(&key.bearer()),
        None,
    )
    .await;
    assert_eq!(body["last_used"]["client_ip"], "127.0.0.1");
    assert_eq!(body["last_used"]["user_agent"], "deploy-bot/1.0");
    assert_eq!(body["last_used"]["at"], "2026-11-23T10:00:00Z");
    // Only ASCII is a credential: a Unicode space around one (which `trim` would strip) makes
    // the header no credential at all, in either form and as verify's caller.
    for auth in [key.basic(), key.bearer()] {
        for odd in [
            format!("{auth}\u{a0}"),
            auth.replacen(' ', " \u{3000}", 1),
            format!("{auth}\u{2028}"),
        ] {
            let value = reqwest::header::HeaderValue::from_bytes(odd.as_bytes()).unwrap();
            for (method, path) in [
                (Method::GET, "/api/v1/apikeys/current"),
                (Method::POST, "/api/v1/verify"),
            ] {
                let res = reqwest::Client::new()
                    .request(method, app.url(path))
                    .header("authorization", value.clone())
                    .json(&json!({"key": format!("{}::{}", key.id, key.secret)}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path} {odd:?}");
            }
        }
    }
}

#[tokio::test]
async fn every_refusal_is_the_same_401_and_the_reason_is_audited() {
    let app = admin_app().await;
    let good = tenant_key(&app, "good", "access", &["role_read_only"]).await;
    let inactive = tenant_key(&app, "inactive", "access", &[]).await;
    app.post(
        &format!("/user-access/keys/{}/deactivate", inactive.id),
        &[],
    )
    .await;
    let locked = tenant_key(&app, "locked", "access", &[]).await;
    sqlx::query("UPDATE access_keys SET locked = 1 WHERE id = $1")
        .bind(&locked.id)
        .execute(&app.state.pool)
        .await
        .unwrap();
    let expired = tenant_key(&app, "expired", "access", &[]).await;
    sqlx::query("UPDATE access_keys SET expires_at = 1 WHERE id = $1")
        .bind(&expired.id)
        .execute(&app.state.pool)
        .await
        .unwrap();
    let api = tenant_key(&app, "integration", "api", &[]).await;
    let grace = app.other_client();
    grace.signed_in_user().await;
    let personal = grace
        .add_key(
            "/my/keys",
            &[("name", "mine"), ("key_type", "access"), ("validity", "30")],
        )
        .await;
    sqlx::query("UPDATE users SET active = 0 WHERE email = $1")
        .bind(USER_EMAIL)
        .execute(&app.state.pool)
        .await
        .unwrap();
    // Written behind the application's back: key checks are told, as every change made
    // through it tells them (otherwise they see it within KEY_CACHE_FRESH_FOR).
    app.state.key_checker.keys_changed();
    let unknown = Key {
        id: "AK000000000000000000".into(),
        secret: good.secret.clone(),
    };
    let wrong = Key {
        id: good.id.clone(),
        secret: inactive.secret.clone(),
    };

    let mut bodies = Vec::new();
    for auth in [
        None,
        Some("Bearer nonsense".to_string()),
        Some(format!("Bearer {}::{}x", good.id, good.secret)),
        Some(unknown.bearer()),
        Some(wrong.bearer()),
        Some(inactive.bearer()),
        Some(locked.bearer()),
        Some(expired.bearer()),
        Some(api.bearer()),
        Some(format!("Bearer {}::{}", personal.id, personal.secret)),
    ] {
        let (status, body, headers) = call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            auth.as_deref(),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one answer for all: {bodies:?}"
    );
    assert_eq!(bodies[0]["error"]["code"], "unauthorized");
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'key.auth_refused' ORDER BY id",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    for reason in [
        "unknown key",
        "wrong secret (1 in a row)",
        "key inactive",
        "key locked",
        "key expired",
        "owner disabled",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
}

#[tokio::test]
async fn a_key_locks_after_the_threshold_and_recovers_by_unlock_or_regeneration() {
    let app = admin_app().await;
    let admin_key = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    // A key with no more than the Key Administrator holds, so that it may be given a new secret.
    let victim = tenant_key(&app, "victim", "access", &["role_integration"]).await;
    let wrong = Key {
        id: victim.id.clone(),
        secret: admin_key.secret.clone(),
    };
    for i in 1..=5 {
        let (status, _, _) = call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&wrong.bearer()),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(&victim.bearer()),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "locked: the right secret is refused too"
    );
    let (_, body, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/apikeys/{}", victim.id),
        Some(&admin_key.bearer()),
        None,
    )
    .await;
    assert_eq!(body["status"], "locked");
    assert_eq!(body["failed_attempts"], 5);
    let list = app.get("/user-access/keys?status=locked").await;
    assert!(list.text("tbody").contains("victim"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'key.locked'")
            .await,
        1
    );
    assert!(
        app.get("/notifications")
            .await
            .text(".notification")
            .contains("Access key “victim” was locked")
    );

    let (status, body, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", victim.id),
        Some(&admin_key.bearer()),
        Some(json!({"locked": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&victim.bearer()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );

    // Locked again, then a new secret ends the lock.
    for _ in 0..5 {
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&wrong.bearer()),
            None,
        )
        .await;
    }
    let (status, body, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/apikeys/{}/secretkey", victim.id),
        Some(&admin_key.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "active");
    let fresh = Key {
        id: victim.id.clone(),
        secret: body["secret_key"].as_str().unwrap().to_string(),
    };
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&fresh.bearer()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_client_cannot_lock_other_peoples_keys_at_will() {
    let app = spawn_app_with(|s| s.client_failure_limit = 3).await;
    app.signed_in_admin().await;
    let victim = tenant_key(&app, "victim", "access", &[]).await;
    let wrong = Key {
        id: victim.id.clone(),
        secret: keyward::domain::Secret::generate().expose().to_string(),
    };
    for _ in 0..3 {
        assert_eq!(
            call(
                &app,
                Method::GET,
                "/api/v1/apikeys/current",
                Some(&wrong.bearer()),
                None
            )
            .await
            .0,
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..5 {
        let (status, body, headers) = call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&wrong.bearer()),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], "too_many_failures");
        let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        // A minute from the failures, rounded up to the 4-second slot they fell in.
        assert!((1..=64).contains(&retry), "{retry}");
    }
    assert_eq!(
        app.count("SELECT failed_attempts FROM access_keys").await,
        3,
        "the key's counter stopped with the client's limit"
    );
    assert_eq!(
        app.count("SELECT CAST(SUM(hits) AS BIGINT) FROM rate_limits")
            .await,
        3,
        "attempts over the limit are not counted, and once the client is known to be over it \
         its refusals write nothing"
    );
    assert_eq!(app.count("SELECT locked FROM access_keys").await, 0);
    // The owner's own correct use still works, and the next minute the client may try again.
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&victim.bearer()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    // A minute after the failures' 4-second slot they have left the window.
    app.clock.advance(Duration::seconds(64));
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&wrong.bearer()),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_burst_of_wrong_secrets_is_counted_one_by_one_and_locks_once() {
    // Refusals are written in batches; a burst at once must still count every attempt, stop at
    // the client's limit exactly, and lock the key and announce it once.
    let app = spawn_app_with(|s| s.client_failure_limit = 12).await;
    app.signed_in_admin().await;
    let victim = tenant_key(&app, "victim", "access", &[]).await;
    let wrong = Key {
        id: victim.id.clone(),
        secret: keyward::domain::Secret::generate().expose().to_string(),
    };
    let bearer = wrong.bearer();
    let calls = (0..20).map(|_| {
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&bearer),
            None,
        )
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|(status, _, _)| status)
        .collect();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((refused, throttled), (12, 8), "answers: {statuses:?}");
    assert_eq!(
        app.count("SELECT failed_attempts FROM access_keys").await,
        12
    );
    assert_eq!(app.count("SELECT locked FROM access_keys").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'key.locked'")
            .await,
        1,
        "the lock is announced once"
    );
    let counts = refusal_counts(&app).await;
    assert_eq!(
        counts,
        (1..=12).collect::<Vec<i64>>(),
        "each attempt has its own count"
    );
    let locked_details: String =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'key.locked'")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(locked_details, "locked after 5 wrong secrets in a row");
    let warned: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient, subject FROM outbox WHERE kind = 'key.locked'")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(
        warned,
        vec![(
            "ada@example.com".to_string(),
            "Access key “victim” was locked".to_string()
        )],
        "the administrator is emailed once"
    );
}

#[tokio::test]
async fn regenerating_through_the_api_honours_the_grace_period() {
    let app = admin_app().await;
    let ops = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    let target = tenant_key(&app, "target", "access", &[]).await;
    let (status, body, headers) = call(
        &app,
        Method::POST,
        &format!("/api/v1/apikeys/{}/secretkey", target.id),
        Some(&ops.bearer()),
        Some(json!({"grace_seconds": 3600})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["id"], target.id);
    let new = Key {
        id: target.id.clone(),
        secret: body["secret_key"].as_str().unwrap().to_string(),
    };
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&target.bearer()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&new.bearer()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    app.clock.advance(Duration::seconds(3601));
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&target.bearer()),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&new.bearer()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );

    // A key rotates itself; the old secret stops at once.
    let (status, body, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys/current/secretkey",
        Some(&new.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let newer = Key {
        id: target.id.clone(),
        secret: body["secret_key"].as_str().unwrap().to_string(),
    };
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&new.bearer()),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&newer.bearer()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_management_endpoints_work_and_need_their_permissions() {
    let app = admin_app().await;
    let ops = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    let reader = tenant_key(&app, "reader", "access", &["role_read_only"]).await;
    let auth = ops.bearer();

    let (status, created, headers) = call(&app, Method::POST, "/api/v1/apikeys", Some(&auth), Some(json!({"name": "ci", "expires_at": "2027-01-31T12:00:00Z", "role_ids": ["role_integration"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(headers["cache-control"], "no-store");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(keyward::domain::Secret::parse(created["secret_key"].as_str().unwrap()).is_some());
    assert_eq!(created["tenant_id"], app.state.tenant_id);
    assert_eq!(created["expires_at"], "2027-01-31T12:00:00Z");
    assert_eq!(created["permissions"], json!(["keys:verify"]));
    assert_eq!(created["created_by"], format!("ops (key {})", ops.id));

    let (status, list, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys?q=ci&per_page=10",
        Some(&reader.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id);
    let (_, page, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys?per_page=2&page=2&sort=name&order=asc",
        Some(&reader.bearer()),
        None,
    )
    .await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let (status, got, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/apikeys/{id}"),
        Some(&reader.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(got.get("secret_key").is_none());

    let (status, patched, _) = call(&app, Method::PATCH, &format!("/api/v1/apikeys/{id}"), Some(&auth), Some(json!({"name": "ci runner", "description": "builds", "expires_at": null, "active": false, "allowed_networks": ["10.0.0.0/8"]}))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "ci runner");
    assert_eq!(patched["description"], "builds");
    assert_eq!(patched["expires_at"], Value::Null);
    assert_eq!(patched["status"], "inactive");
    assert_eq!(patched["allowed_networks"], json!(["10.0.0.0/8"]));

    // The reader may look but not change.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/apikeys".to_string(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/apikeys/{id}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/api/v1/apikeys/{id}"), None),
        (
            Method::POST,
            format!("/api/v1/apikeys/{id}/secretkey"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/verify".to_string(),
            Some(json!({"key": "x"})),
        ),
    ] {
        let (status, body, _) =
            call(&app, method.clone(), &path, Some(&reader.bearer()), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }

    let (status, _, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/apikeys/{id}"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/apikeys/{id}"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn system_keys_refuse_regeneration_and_deletion_through_the_api() {
    let app = admin_app().await;
    let ops = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    app.insert_system_key("AKSYSTEM000000000002", "bridge")
        .await;
    for (method, path) in [
        (Method::DELETE, "/api/v1/apikeys/AKSYSTEM000000000002"),
        (
            Method::POST,
            "/api/v1/apikeys/AKSYSTEM000000000002/secretkey",
        ),
    ] {
        let (status, body, _) = call(&app, method, path, Some(&ops.bearer()), None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("system key")
        );
    }
    let (_, body, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys/AKSYSTEM000000000002",
        Some(&ops.bearer()),
        None,
    )
    .await;
    assert_eq!(body["system"], true);
}

#[tokio::test]
async fn the_verify_endpoint_answers_with_a_reason_code() {
    let app = admin_app().await;
    let checker = tenant_key(&app, "gateway", "access", &["role_integration"]).await;
    let api = tenant_key(&app, "partner feed", "api", &["role_read_only"]).await;
    let verify = |key: String, ip: Option<&str>| {
        let mut body = json!({"key": key});
        if let Some(ip) = ip {
            body["client_ip"] = json!(ip);
        }
        body
    };
    let (status, body, _) = call(
        &app,
        Method::POST,
        "/api/v1/verify",
        Some(&checker.bearer()),
        Some(verify(format!("{}::{}", api.id, api.secret), None)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["valid"], true);
    assert_eq!(body["code"], "VALID");
    assert_eq!(body["key"]["id"], api.id);
    assert_eq!(body["key"]["type"], "api");
    assert_eq!(body["key"]["owner"], Value::Null);
    assert_eq!(
        body["key"]["permissions"],
        json!(["audit:read", "keys:read", "users:read"])
    );
    // The API key itself cannot call keyward's API.
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&api.bearer()),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );

    let code = |body: Value| body["code"].as_str().unwrap().to_string();
    let check = |key: String, ip: Option<&'static str>| {
        let app = &app;
        let auth = checker.bearer();
        async move {
            call(
                app,
                Method::POST,
                "/api/v1/verify",
                Some(&auth),
                Some(verify(key, ip)),
            )
            .await
            .1
        }
    };
    assert_eq!(
        code(check(format!("{}::garbage", api.id), None).await),
        "NOT_FOUND"
    );
    assert_eq!(
        code(check(format!("AK000000000000000000::{}", api.secret), None).await),
        "NOT_FOUND"
    );
    assert_eq!(
        code(check(format!("{}::{}", api.id, checker.secret), None).await),
        "NOT_FOUND"
    );
    let ops_actor = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", api.id),
        Some(&ops_actor.bearer()),
        Some(json!({"allowed_networks": ["192.0.2.0/24"]})),
    )
    .await;
    assert_eq!(
        code(check(format!("{}::{}", api.id, api.secret), Some("198.51.100.7")).await),
        "FORBIDDEN_NETWORK"
    );
    assert_eq!(
        code(check(format!("{}::{}", api.id, api.secret), Some("192.0.2.7")).await),
        "VALID"
    );
    call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", api.id),
        Some(&ops_actor.bearer()),
        Some(json!({"allowed_networks": [], "active": false})),
    )
    .await;
    assert_eq!(
        code(check(format!("{}::{}", api.id, api.secret), None).await),
        "INACTIVE"
    );
    call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", api.id),
        Some(&ops_actor.bearer()),
        Some(json!({"active": true, "locked": true})),
    )
    .await;
    assert_eq!(
        code(check(format!("{}::{}", api.id, api.secret), None).await),
        "LOCKED"
    );
    call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", api.id),
        Some(&ops_actor.bearer()),
        Some(json!({"locked": false})),
    )
    .await;
    sqlx::query("UPDATE access_keys SET expires_at = 1 WHERE id = $1")
        .bind(&api.id)
        .execute(&app.state.pool)
        .await
        .unwrap();
    // Written behind the application's back: key checks are told, as every change made
    // through it tells them (otherwise they see it within KEY_CACHE_FRESH_FOR).
    app.state.key_checker.keys_changed();
    assert_eq!(
        code(check(format!("{}::{}", api.id, api.secret), None).await),
        "EXPIRED"
    );
}

#[tokio::test]
async fn personal_keys_through_the_api_stop_at_two_even_under_concurrency() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let first = app
        .add_key(
            "/my/keys",
            &[("name", "cli"), ("key_type", "access"), ("validity", "30")],
        )
        .await;
    let auth = format!("Bearer {}::{}", first.id, first.secret);
    let bodies: Vec<Value> = (0..16)
        .map(|i| json!({"name": format!("racer {i}")}))
        .collect();
    let calls = bodies.iter().map(|b| {
        call(
            &app,
            Method::POST,
            "/api/v1/me/keys",
            Some(&auth),
            Some(b.clone()),
        )
    });
    let results = futures::future::join_all(calls).await;
    let created = results
        .iter()
        .filter(|r| r.0 == StatusCode::CREATED)
        .count();
    let refused: Vec<&(StatusCode, Value, _)> = results
        .iter()
        .filter(|r| r.0 == StatusCode::CONFLICT)
        .collect();
    assert_eq!((created, refused.len()), (1, 15));
    assert!(
        refused[0].1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 personal access keys")
    );
    let (status, list, _) = call(&app, Method::GET, "/api/v1/me/keys", Some(&auth), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    // A personal key cannot reach tenant keys: its owner holds no keys:read.
    assert_eq!(
        call(&app, Method::GET, "/api/v1/apikeys", Some(&auth), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // A tenant key has no personal keys.
    let admin = app.other_client();
    admin.signed_in_admin().await;
    let tenant = tenant_key(&admin, "tenant", "access", &["role_key_admin"]).await;
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/me/keys",
            Some(&tenant.bearer()),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let _ = PASSWORD;
}

#[tokio::test]
async fn bad_requests_get_the_right_4xx_and_write_nothing() {
    let app = admin_app().await;
    let ops = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    let target = tenant_key(&app, "target", "access", &[]).await;
    let auth = ops.bearer();
    let keys_before = app.count("SELECT COUNT(*) FROM access_keys").await;
    let target_url = format!("/api/v1/apikeys/{}", target.id);
    let huge = "x".repeat(20_000);
    // (method, path, raw body, expected status, field named in the error)
    type Case<'a> = (Method, String, Option<&'a str>, StatusCode, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some("{not json"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(""),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some("[]"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": 5}"#),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{}"#),
            StatusCode::BAD_REQUEST,
            Some("name"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a", "nmae": "b"}"#),
            StatusCode::BAD_REQUEST,
            Some("nmae"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": ""}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a\u0007b"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a", "type": "robot"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("type"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a", "expires_at": "2026-02-30T00:00:00Z"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expires_at"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a", "expires_at": "2020-01-01T00:00:00Z"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expires_at"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a", "expires_at": "tomorrow"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expires_at"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a", "expires_at": 5}"#),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a", "role_ids": ["role_gone"]}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("role_ids"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(r#"{"name": "a", "group_ids": "grp"}"#),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::PATCH,
            target_url.clone(),
            Some(r#"{"active": "yes"}"#),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::PATCH,
            target_url.clone(),
            Some(r#"{"name": "ok", "expires_at": "1999-01-01T00:00:00Z"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expires_at"),
        ),
        (
            Method::PATCH,
            target_url.clone(),
            Some(r#"{"allowed_networks": ["10.0.0.0/33"], "active": false}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("allowed_networks"),
        ),
        (
            Method::PATCH,
            target_url.clone(),
            Some(r#"{"locked": true, "secret_key": "kws_x"}"#),
            StatusCode::BAD_REQUEST,
            Some("secret_key"),
        ),
        (
            Method::PATCH,
            "/api/v1/apikeys/AK000000000000000000".into(),
            Some(r#"{"name": "x"}"#),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/apikeys/not-an-id".into(),
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::POST,
            format!("{target_url}/secretkey"),
            Some(r#"{"grace_seconds": -1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("grace_seconds"),
        ),
        (
            Method::POST,
            format!("{target_url}/secretkey"),
            Some(r#"{"grace_seconds": 99999999}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("grace_seconds"),
        ),
        (
            Method::GET,
            "/api/v1/apikeys?per_page=1000".into(),
            None,
            StatusCode::BAD_REQUEST,
            Some("per_page"),
        ),
        (
            Method::GET,
            "/api/v1/apikeys?page=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            Some("page"),
        ),
        (
            Method::GET,
            "/api/v1/apikeys?status=gone".into(),
            None,
            StatusCode::BAD_REQUEST,
            Some("status"),
        ),
        (
            Method::GET,
            "/api/v1/apikeys?colour=red".into(),
            None,
            StatusCode::BAD_REQUEST,
            Some("colour"),
        ),
        (
            Method::GET,
            "/api/v1/nothing".into(),
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::POST,
            "/api/v1/verify".into(),
            Some(r#"{"key": "x", "client_ip": "not an ip"}"#),
            StatusCode::BAD_REQUEST,
            Some("client_ip"),
        ),
        (
            Method::POST,
            "/api/v1/verify".into(),
            Some(r#"{"client_ip": "10.0.0.1"}"#),
            StatusCode::BAD_REQUEST,
            Some("key"),
        ),
        (
            Method::POST,
            "/api/v1/apikeys".into(),
            Some(huge.as_str()),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
    ];
    assert!(cases.len() >= 20);
    for (method, path, body, expected, field) in cases {
        let mut req = reqwest::Client::new()
            .request(method.clone(), app.url(&path))
            .header("authorization", &auth);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let json: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{method} {path} {body:?}: {json}");
        assert!(
            json["error"]["code"].is_string(),
            "{method} {path}: JSON error {json}"
        );
        if let Some(field) = field {
            assert_eq!(
                json["error"]["field"], field,
                "{method} {path} {body:?}: {json}"
            );
        }
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_keys").await,
        keys_before
    );
    let (_, target_now, _) = call(&app, Method::GET, &target_url, Some(&auth), None).await;
    assert_eq!(target_now["status"], "active", "nothing was half-applied");
    assert_eq!(target_now["allowed_networks"], json!([]));
    assert_eq!(target_now["name"], "target");
}

#[tokio::test]
async fn no_secret_reaches_the_server_log() {
    let app = admin_app().await;
    let ops = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    let (_, created, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys",
        Some(&ops.bearer()),
        Some(json!({"name": "logged?"})),
    )
    .await;
    let secret = created["secret_key"].as_str().unwrap().to_string();
    call(
        &app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(&format!("Bearer {}::{}", ops.id, secret)),
        None,
    )
    .await;
    let logs = crate::common::captured_logs();
    assert!(logs.contains("/api/v1/apikeys"), "API requests are logged");
    for s in [&secret, &ops.secret] {
        assert!(!logs.contains(s.as_str()));
        assert!(!logs.contains(&s[4..30]));
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    let (status, doc, _) = call(&app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/apikeys", "get"),
        ("/api/v1/apikeys", "post"),
        ("/api/v1/apikeys/{id}", "get"),
        ("/api/v1/apikeys/{id}", "patch"),
        ("/api/v1/apikeys/{id}", "delete"),
        ("/api/v1/apikeys/{id}/secretkey", "post"),
        ("/api/v1/apikeys/current", "get"),
        ("/api/v1/apikeys/current/secretkey", "post"),
        ("/api/v1/me/keys", "get"),
        ("/api/v1/me/keys", "post"),
        ("/api/v1/verify", "post"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path}");
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} documents 401"
        );
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert!(
        doc["components"]["schemas"]["KeyView"]["properties"]["secret_key"].is_null(),
        "no secret in a key description"
    );
    assert!(doc["components"]["schemas"]["KeyWithSecret"].is_object());
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_key_outcomes() {
    const METRICS_TOKEN: &str = "metrics-token-for-rest-tests";
    let app = spawn_app_with(|s| s.metrics_token = Some(METRICS_TOKEN.into())).await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "metered", "access", &[]).await;
    call(
        &app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(&key.bearer()),
        None,
    )
    .await;
    call(
        &app,
        Method::GET,
        &format!("/api/v1/apikeys/{}", key.id),
        Some(&format!(
            "Bearer {}::{}",
            key.id,
            keyward::domain::Secret::generate().expose()
        )),
        None,
    )
    .await;
    let res = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"keyward_http_requests_total{method="GET",route="/api/v1/apikeys/current",status="200"} 1"#), "{text}");
    assert!(text.contains(
        r#"keyward_http_requests_total{method="GET",route="/api/v1/apikeys/{id}",status="401"} 1"#
    ));
    assert!(text.contains(r#"keyward_key_verifications_total{outcome="VALID",via="api"} 1"#));
    assert!(text.contains(r#"keyward_key_verifications_total{outcome="NOT_FOUND",via="api"} 1"#));
    assert!(text.contains("keyward_http_request_duration_seconds_bucket"));
    assert!(
        !text.contains(&key.id),
        "routes, never raw paths with key IDs"
    );
}

#[tokio::test]
async fn verify_judges_its_caller_first_by_either_door_and_counts_every_outcome() {
    const METRICS_TOKEN: &str = "metrics-token-for-verify-tests";
    let app = spawn_app_with(|s| {
        s.metrics_token = Some(METRICS_TOKEN.into());
        s.client_failure_limit = 2;
        s.lockout_threshold = 10;
    })
    .await;
    let admin_id = app.signed_in_admin().await;
    let verifier = tenant_key(&app, "gateway", "access", &["role_integration"]).await;
    let reader = tenant_key(&app, "reader", "access", &["role_read_only"]).await;
    let target = tenant_key(&app, "partner feed", "api", &["role_read_only"]).await;
    let admin = keyward::domain::Actor {
        user_id: admin_id,
        label: "ada".into(),
        is_admin: true,
        permissions: vec!["config:write".into()],
        client_ip: "127.0.0.1".into(),
        acting_key: None,
        previous_secret: false,
    };
    let bridge = keyward::service::secret_keys::regenerate(
        &app.state.pool,
        keyward::service::secret_keys::Tools {
            clock: app.state.clock.as_ref(),
            vault: &app.state.vault,
            hasher: &app.state.key_hasher,
        },
        &admin,
        "sk_bridge",
        &Default::default(),
    )
    .await
    .unwrap();
    let basic = |id: &str, secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let client_id = bridge.client_id.clone().unwrap();
    let bridge_auth = basic(&client_id, bridge.secret.expose());
    let wrong = || keyward::domain::Secret::generate().expose().to_string();
    let verify = |auth: Option<String>, body: Value| {
        let app = &app;
        async move {
            let (status, body, _) = call(
                app,
                Method::POST,
                "/api/v1/verify",
                auth.as_deref(),
                Some(body),
            )
            .await;
            (status, body)
        }
    };

    // A bad body: only a caller who may verify learns that it is bad.
    let bad = json!({"key": "x", "client_ip": "not an ip"});
    for (auth, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (
            Some(format!("Bearer {}::{}", verifier.id, wrong())),
            StatusCode::UNAUTHORIZED,
        ),
        (Some(basic(&client_id, &wrong())), StatusCode::UNAUTHORIZED),
        (Some(reader.bearer()), StatusCode::FORBIDDEN),
        (Some(verifier.bearer()), StatusCode::BAD_REQUEST),
        (Some(bridge_auth.clone()), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            verify(auth.clone(), bad.clone()).await.0,
            expected,
            "{auth:?}"
        );
    }

    // Both doors give the same answers.
    let target_wrong = json!({"key": format!("{}::{}", target.id, wrong())});
    let target_right = json!({"key": format!("{}::{}", target.id, target.secret)});
    for auth in [verifier.bearer(), bridge_auth.clone()] {
        let (status, body) = verify(Some(auth.clone()), target_right.clone()).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::OK, &json!("VALID")),
            "{auth}"
        );
        assert_eq!(body["key"]["type"], "api");
        assert_eq!(
            body["key"]["permissions"],
            json!(["audit:read", "keys:read", "users:read"])
        );
        // Wrong secrets of the presented key: never a 429 (the caller speaks for many
        // clients, the limit here is 2), but each counts towards the key's lockout.
        for _ in 0..2 {
            let (status, body) = verify(Some(auth.clone()), target_wrong.clone()).await;
            assert_eq!(
                (status, &body["code"]),
                (StatusCode::OK, &json!("NOT_FOUND"))
            );
        }
    }
    // Verify's refusals are answered before they are committed.
    app.state.key_checker.flush_refusals().await;
    let failed: i64 = sqlx::query_scalar("SELECT failed_attempts FROM access_keys WHERE id = $1")
        .bind(&target.id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    // The two wrong secrets before each right one are reset by it; the last two remain.
    assert_eq!(failed, 2);

    let text = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"keyward_key_verifications_total{outcome="VALID",via="verify"} 2"#,
        r#"keyward_key_verifications_total{outcome="NOT_FOUND",via="verify"} 4"#,
        r#"keyward_key_verifications_total{outcome="REFUSED",via="bridge"} 1"#,
        // Every right bridge call: one bad body, one right key, two wrong ones.
        r#"keyward_key_verifications_total{outcome="VALID",via="bridge"} 4"#,
        // The callers without credentials and with a wrong secret.
        r#"keyward_key_verifications_total{outcome="NOT_FOUND",via="api"} 2"#,
        // The reader, and the verifier's bad body, right key and two wrong ones.
        r#"keyward_key_verifications_total{outcome="VALID",via="api"} 5"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

/// Verify reads its body itself (for speed) and must say about a body exactly what every
/// other JSON endpoint says through actix's extractor: the same status, code and message for
/// each content type, declared length, split body and bad JSON.
#[tokio::test]
async fn verify_reads_a_body_as_every_json_endpoint_does() {
    let app = admin_app().await;
    let ops = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    let target = tenant_key(&app, "target", "access", &[]).await;
    let client = reqwest::Client::new();
    let send =
        |path: String, method: Method, content_type: Option<&'static str>, body: reqwest::Body| {
            let mut req = client
                .request(method, app.url(&path))
                .header("authorization", ops.bearer())
                .body(body);
            if let Some(t) = content_type {
                req = req.header("content-type", t);
            }
            async move {
                let res = req.send().await.unwrap();
                let status = res.status();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
    let verify = || ("/api/v1/verify".to_string(), Method::POST);
    let patch = || (format!("/api/v1/apikeys/{}", target.id), Method::PATCH);
    let pieces = |parts: &[&'static str]| {
        let chunks: Vec<Result<&'static str, std::io::Error>> =
            parts.iter().map(|p| Ok(*p)).collect();
        reqwest::Body::wrap_stream(futures::stream::iter(chunks))
    };
    let huge = format!(r#"{{"key": "{}"}}"#, "x".repeat(20_000));
    // (content type, body, whether it is an error both endpoints share word for word)
    let cases: Vec<(Option<&'static str>, reqwest::Body, &str)> = vec![
        (None, "{}".into(), "no content type"),
        (Some("text/plain"), "{}".into(), "text"),
        (
            Some("application/x-www-form-urlencoded"),
            "key=1".into(),
            "a form",
        ),
        (Some("application/json"), "{not json".into(), "bad JSON"),
        (Some("application/json"), "".into(), "no body"),
        (Some("application/json"), "[]".into(), "an array"),
        (Some("application/json"), huge.clone().into(), "too large"),
        (
            Some("application/json"),
            pieces(&["{\"key\"", ": 5", "}"]),
            "split, wrong type",
        ),
        (Some("text/json"), "{nope".into(), "another JSON type"),
        (
            Some("application/problem+json"),
            "{nope".into(),
            "a +json type",
        ),
        (
            Some("Application/JSON; charset=utf-8"),
            "{nope".into(),
            "parameters",
        ),
        (
            Some("application/json"),
            pieces(&[r#"{"colour""#, r#": "red"}"#]),
            "unknown field",
        ),
    ];
    for (content_type, body, what) in cases {
        let copy = body.as_bytes().map(|b| reqwest::Body::from(b.to_vec()));
        let (path, method) = verify();
        let (status, answer) = send(path, method, content_type, body).await;
        let (path, method) = patch();
        let again = copy.unwrap_or_else(|| {
            // The streamed bodies again, for the other endpoint.
            if what == "unknown field" {
                pieces(&[r#"{"colour""#, r#": "red"}"#])
            } else {
                pieces(&["{\"key\"", ": 5", "}"])
            }
        });
        let (other_status, other) = send(path, method, content_type, again).await;
        assert_eq!(status, other_status, "{what}: {answer} / {other}");
        assert!(status.is_client_error(), "{what}: {status} {answer}");
        assert_eq!(
            answer["error"]["code"], other["error"]["code"],
            "{what}: {answer} / {other}"
        );
        // A body that breaks JSON's own rules is described by serde_json alike at both; one
        // that breaks a struct's rules names that struct's fields.
        if !matches!(what, "split, wrong type" | "unknown field" | "an array") {
            assert_eq!(
                answer["error"]["message"], other["error"]["message"],
                "{what}"
            );
        }
        if what != "split, wrong type" {
            assert_eq!(answer["error"]["field"], other["error"]["field"], "{what}");
        }
    }
    // The one body the extractor would take is still taken.
    let (path, method) = verify();
    let ok = format!(r#"{{"key": "{}::{}"}}"#, target.id, target.secret);
    let (status, answer) = send(
        path,
        method,
        Some("application/json; charset=utf-8"),
        ok.into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["code"], "VALID");
    let (path, method) = verify();
    let split = [r#"{"key": ""#, "…", r#""}"#];
    let (status, answer) = send(path, method, Some("application/json"), pieces(&split)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::OK, Some("NOT_FOUND")),
        "{answer}"
    );
}
