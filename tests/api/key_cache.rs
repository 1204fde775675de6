//! Key checks remember keys between requests (issue 18): a key presented again and again is read
//! from the database once per bound (`KEY_CACHE_FRESH_FOR`, by the application's clock), every
//! change made through this application is seen by the very next check, and a change made
//! behind its back (another process) within the bound.

use chrono::Duration;
use keyward::service::key_auth::{KEY_CACHE_FRESH_FOR, Refusal};
use keyward::service::keys::count_round_trips;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::rest::{call, current_status, tenant_key};
use crate::common::{spawn_app, spawn_app_with};

fn bound() -> Duration {
    Duration::from_std(KEY_CACHE_FRESH_FOR).unwrap()
}

#[tokio::test]
async fn a_key_presented_again_is_read_once_per_bound() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let (_, first) = count_round_trips(app.authenticate(&key.id, &key.secret)).await;
    assert!(first >= 1, "the first check reads the key");
    let (outcomes, again) = count_round_trips(async {
        let mut ok = 0;
        for _ in 0..50 {
            ok += usize::from(app.authenticate(&key.id, &key.secret).await.is_ok());
        }
        ok
    })
    .await;
    assert_eq!((outcomes, again), (50, 0), "fifty checks, no read");
    app.clock.advance(bound());
    let (_, later) = count_round_trips(app.authenticate(&key.id, &key.secret)).await;
    assert!(later >= 1, "past the bound the key is read again");
    // Unknown IDs are never remembered: each costs its read.
    let (_, unknown) = count_round_trips(async {
        for _ in 0..3 {
            let _ = app.authenticate("AKNOSUCHKEY000000000", &key.secret).await;
        }
    })
    .await;
    assert_eq!(unknown, 3);
}

#[tokio::test]
async fn every_change_made_through_the_application_counts_at_the_next_check() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let admin = tenant_key(&app, "ops", "access", &["role_key_admin", "role_read_only"]).await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let current = |auth: String| current_status(&app, auth);
    let patch = |body: serde_json::Value| {
        let (app, admin, id) = (&app, &admin, key.id.clone());
        async move {
            let (status, answer, _) = call(
                app,
                Method::PATCH,
                &format!("/api/v1/apikeys/{id}"),
                Some(&admin.bearer()),
                Some(body),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    };
    assert_eq!(current(key.basic()).await, StatusCode::OK);
    patch(json!({"active": false})).await;
    assert_eq!(
        current(key.basic()).await,
        StatusCode::UNAUTHORIZED,
        "deactivated"
    );
    patch(json!({"active": true})).await;
    assert_eq!(current(key.basic()).await, StatusCode::OK, "active again");
    patch(json!({"locked": true})).await;
    assert_eq!(
        current(key.basic()).await,
        StatusCode::UNAUTHORIZED,
        "locked"
    );
    patch(json!({"locked": false, "allowed_networks": ["203.0.113.0/24"]})).await;
    assert_eq!(
        current(key.basic()).await,
        StatusCode::UNAUTHORIZED,
        "outside its networks"
    );
    patch(json!({"allowed_networks": []})).await;
    assert_eq!(current(key.basic()).await, StatusCode::OK);
    // A new secret: the old one stops at once.
    let (status, fresh, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/apikeys/{}/secretkey", key.id),
        Some(&admin.bearer()),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(
        current(key.basic()).await,
        StatusCode::UNAUTHORIZED,
        "old secret"
    );
    let new_secret = fresh["secret_key"].as_str().unwrap().to_string();
    assert_eq!(current(key.with_secret(&new_secret)).await, StatusCode::OK);
    // Deleted: gone at once.
    let (status, _, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/apikeys/{}", key.id),
        Some(&admin.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        current(key.with_secret(&new_secret)).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_secrets_lock_a_remembered_key_at_once() {
    let app = spawn_app_with(|s| s.lockout_threshold = 3).await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    assert!(app.authenticate(&key.id, &key.secret).await.is_ok());
    let wrong = keyward::domain::Secret::generate();
    for _ in 0..3 {
        assert_eq!(
            app.authenticate(&key.id, wrong.expose()).await.unwrap_err(),
            Refusal::WrongSecret
        );
    }
    assert_eq!(
        app.authenticate(&key.id, &key.secret).await.unwrap_err(),
        Refusal::Locked,
        "the lock counts although the key was remembered unlocked"
    );
}

#[tokio::test]
async fn a_change_behind_the_applications_back_counts_within_the_bound() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    assert!(app.authenticate(&key.id, &key.secret).await.is_ok());
    // Another process (a script, an instance in another process) deactivates it.
    sqlx::query("UPDATE access_keys SET active = 0 WHERE id = $1")
        .bind(&key.id)
        .execute(&app.state.pool)
        .await
        .unwrap();
    app.clock.advance(bound() - Duration::milliseconds(1));
    assert!(
        app.authenticate(&key.id, &key.secret).await.is_ok(),
        "within the bound the remembered key stands"
    );
    app.clock.advance(Duration::milliseconds(1));
    assert_eq!(
        app.authenticate(&key.id, &key.secret).await.unwrap_err(),
        Refusal::Inactive,
        "at the bound it is read again"
    );
}

#[tokio::test]
async fn another_instance_forgets_a_changed_key_when_told_or_within_the_bound() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let admin = tenant_key(&app, "ops", "access", &["role_key_admin", "role_read_only"]).await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let other = crate::common::spawn_app_on(
        &app.database_url,
        &app.state.master_key.to_base64(),
        app.clock.clone(),
    )
    .await
    .unwrap();
    assert!(other.authenticate(&key.id, &key.secret).await.is_ok());
    let (status, _, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", key.id),
        Some(&admin.bearer()),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    if crate::common::database_kind() == "postgres" {
        // The change is announced (NOTIFY) and heard by the other instance: refused there with
        // the clock standing still, as soon as the notification arrives.
        let mut refused = None;
        for _ in 0..100 {
            if let Err(r) = other.authenticate(&key.id, &key.secret).await {
                refused = Some(r);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            refused,
            Some(Refusal::Inactive),
            "heard within five seconds"
        );
    } else {
        app.clock.advance(bound());
        assert_eq!(
            other.authenticate(&key.id, &key.secret).await.unwrap_err(),
            Refusal::Inactive
        );
    }
}
