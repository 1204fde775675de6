//! The replaced-secret tripwire (issue 17, SPEC §9): a secret a key had before its current one,
//! presented again outside its grace period, is refused exactly like any wrong secret, and is
//! recorded (`key.replaced_secret_used` in the audit log, a bell notice and an email to the key's
//! people, a webhook event to a real receiver), and locks the key when the policy says so.
//! Only its HMAC is kept, for as long as the key exists.

use chrono::Duration;
use keyward::domain::Secret;
use keyward::service::key_auth::Refusal;
use reqwest::StatusCode;

use crate::common::receiver::Receiver;
use crate::common::{TestApp, last_email};
use crate::secret_keys::create_signing_key;
use crate::webhooks::{add_endpoint, add_key, spawn_receiving_app};

const BASE: &str = "/user-access/keys";

/// A new secret for `id` (the old one kept for `grace` seconds, "" for none); the new secret.
async fn regenerate(app: &TestApp, id: &str, grace: &str) -> String {
    let page = app
        .post(&format!("{BASE}/{id}/regenerate"), &[("grace", grace)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.attr("#secret-key", "value").expect("the new secret")
}

async fn secret_of(app: &TestApp, name: &str) -> (String, String) {
    let key = app
        .add_key(
            BASE,
            &[
                ("name", name),
                ("key_type", "access"),
                ("validity", "90"),
                ("custom_date", ""),
            ],
        )
        .await;
    (key.id, key.secret)
}

async fn audit_of(app: &TestApp, action: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT target_id, client_ip, details FROM audit_log WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(&app.state.pool)
    .await
    .unwrap()
}

async fn is_locked(app: &TestApp, id: &str) -> bool {
    sqlx::query_scalar::<_, i64>("SELECT locked FROM access_keys WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
        == 1
}

#[tokio::test]
async fn an_old_secret_presented_again_is_refused_like_any_wrong_one_and_reported() {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (signing, _) = create_signing_key(&app, "Receiver").await;
    add_endpoint(
        &app,
        &receiver.url(),
        &["key.replaced_secret_used"],
        &signing,
    )
    .await;
    let (id, old) = secret_of(&app, "billing export").await;
    let new = regenerate(&app, &id, "").await;

    // The caller learns nothing: the same refusal as a secret never issued.
    let random = Secret::generate();
    assert_eq!(
        app.authenticate(&id, random.expose()).await.unwrap_err(),
        Refusal::WrongSecret
    );
    assert!(audit_of(&app, "key.replaced_secret_used").await.is_empty());
    assert_eq!(
        app.authenticate(&id, &old).await.unwrap_err(),
        Refusal::WrongSecret
    );

    let audit = audit_of(&app, "key.replaced_secret_used").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, id);
    assert_eq!(audit[0].1, "127.0.0.1");
    assert!(
        audit[0].2.contains("was presented (1 times since)"),
        "{}",
        audit[0].2
    );
    let refused = audit_of(&app, "key.auth_refused").await;
    assert!(
        refused
            .last()
            .unwrap()
            .2
            .starts_with("replaced secret presented")
    );
    assert!(
        !is_locked(&app, &id).await,
        "the default policy only records"
    );
    assert!(
        app.authenticate(&id, &new).await.is_ok(),
        "the new secret still works"
    );

    // The key's people: a bell notice and an email.
    let bell: Vec<String> = sqlx::query_scalar(
        "SELECT title FROM notifications WHERE kind = 'key.replaced_secret_used'",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(
        bell,
        vec!["An old secret of access key “billing export” was used".to_string()]
    );
    let email = last_email(&app).await;
    assert!(email.contains("had before"), "{email}");
    // A webhook event to the subscribed receiver.
    assert_eq!(app.jobs.deliver_due().await.unwrap().delivered, 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(
        got[0].header("keyward-event-type"),
        Some("key.replaced_secret_used")
    );
    assert!(got[0].body.contains(&id));

    // Presented again within the hour: audited and counted, people not told twice.
    app.clock.advance(Duration::minutes(5));
    assert!(app.authenticate(&id, &old).await.is_err());
    let audit = audit_of(&app, "key.replaced_secret_used").await;
    assert_eq!(audit.len(), 2);
    assert!(audit[1].2.contains("(2 times since)"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE kind = 'key.replaced_secret_used'")
            .await,
        1
    );
    // Neither secret in any audit entry or the table that recognises old ones.
    let details: Vec<String> = sqlx::query_scalar("SELECT details FROM audit_log")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert!(
        details
            .iter()
            .all(|d| !d.contains(&old) && !d.contains(&new))
    );
    let kept: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM replaced_secrets")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert!(!kept[0].contains(&old[4..]), "a keyed hash, not the secret");
}

#[tokio::test]
async fn inside_the_grace_period_the_old_secret_works_and_after_it_trips() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (id, old) = secret_of(&app, "deploy").await;
    regenerate(&app, &id, "3600").await;
    assert!(app.authenticate(&id, &old).await.is_ok());
    assert!(audit_of(&app, "key.replaced_secret_used").await.is_empty());
    app.clock.advance(Duration::minutes(61));
    assert_eq!(
        app.authenticate(&id, &old).await.unwrap_err(),
        Refusal::WrongSecret
    );
    assert_eq!(audit_of(&app, "key.replaced_secret_used").await.len(), 1);
}

#[tokio::test]
async fn every_earlier_secret_is_recognised_not_only_the_last_one() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (id, first) = secret_of(&app, "rotated often").await;
    let second = regenerate(&app, &id, "").await;
    let third = regenerate(&app, &id, "").await;
    regenerate(&app, &id, "").await;
    for old in [&first, &second, &third] {
        assert!(app.authenticate(&id, old).await.is_err());
    }
    assert_eq!(audit_of(&app, "key.replaced_secret_used").await.len(), 3);
}

#[tokio::test]
async fn with_the_policy_set_to_lock_the_key_locks_at_the_first_old_secret() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    sqlx::query("INSERT INTO settings (name, value) VALUES ('key_policy.replaced_secret', 'lock')")
        .execute(&app.state.pool)
        .await
        .unwrap();
    let (id, old) = secret_of(&app, "payments").await;
    let new = regenerate(&app, &id, "").await;
    assert!(app.authenticate(&id, &old).await.is_err());
    assert!(is_locked(&app, &id).await);
    assert_eq!(
        app.authenticate(&id, &new).await.unwrap_err(),
        Refusal::Locked,
        "locked: the current secret is refused too until someone looks"
    );
    let locked = audit_of(&app, "key.locked").await;
    assert_eq!(locked.len(), 1);
    assert!(locked[0].2.contains("replaced secret"));
    let email = last_email(&app).await;
    assert!(email.contains("the key was locked"), "{email}");
    // An administrator unlocks it from the key's page, and the current secret works again.
    let page = app.post(&format!("{BASE}/{id}/unlock"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(app.authenticate(&id, &new).await.is_ok());
}

#[tokio::test]
async fn deleting_the_key_forgets_its_old_secrets() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let id = add_key(&app, "short-lived").await;
    regenerate(&app, &id, "").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM replaced_secrets").await, 1);
    let page = app.post(&format!("{BASE}/{id}/delete"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM replaced_secrets").await, 0);
}
