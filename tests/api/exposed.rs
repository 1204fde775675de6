//! Exposed secrets (issue 17, SPEC §9): GitHub's secret scanning partner protocol with real
//! ECDSA P-256 signatures (the tests hold the private key, keyward the public one in GitHub's
//! file format), `POST /api/v1/apikeys/exposed` under each exposure policy, and the console's
//! Report an exposed secret page. A reported secret is never stored, logged or audited.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward::domain::Secret;
use keyward::service::key_auth::Refusal;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::receiver::Receiver;
use crate::common::rest::{call, tenant_key};
use crate::common::{TestApp, UnixNow, captured_logs, database_kind, last_email, spawn_app_with};
use crate::console_permissions::person_with_role;
use crate::secret_keys::create_signing_key;
use crate::webhooks::add_endpoint;

const BASE: &str = "/user-access/keys";
const SCAN: &str = "/api/v1/secret-scanning/github";
const KEY_ID: &str = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c";
const TYPE: &str = "keyward_secret_key";

/// GitHub's side: a signing key whose public half keyward reads from its key file.
struct GitHub {
    key: SigningKey,
    /// Holds the key file for as long as the app runs.
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

fn signing_key() -> SigningKey {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    SigningKey::from_slice(&bytes).expect("a valid scalar")
}

impl GitHub {
    /// A key pair and the public key file in GitHub's format (with a second, older key).
    fn new() -> Self {
        let key = signing_key();
        let pem = |k: &SigningKey| k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let file = json!({"public_keys": [
            {"key_identifier": "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a",
             "key": pem(&signing_key()), "is_current": false},
            {"key_identifier": KEY_ID, "key": pem(&key), "is_current": true},
        ]});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("github-keys.json");
        std::fs::write(&path, file.to_string()).unwrap();
        GitHub {
            key,
            _dir: dir,
            path,
        }
    }

    fn sign(&self, body: &[u8]) -> String {
        let signature: Signature = self.key.sign(body);
        STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// A keyward that reads GitHub's keys and may send webhooks to a local receiver.
async fn spawn_scanned_app(github: &GitHub) -> TestApp {
    let path = github.path.clone();
    spawn_app_with(move |s| {
        s.github_scanning_keys = Some(path);
        s.webhook_allow_private = true;
    })
    .await
}

/// Posts `body` as GitHub would, with these signature headers (`None`: left out).
async fn post_scan(
    app: &TestApp,
    body: &str,
    identifier: Option<&str>,
    signature: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(app.url(SCAN))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(i) = identifier {
        req = req.header("Github-Public-Key-Identifier", i);
    }
    if let Some(s) = signature {
        req = req.header("Github-Public-Key-Signature", s);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Posts `body` signed by GitHub's current key.
async fn signed_scan(app: &TestApp, github: &GitHub, body: &str) -> (StatusCode, Value) {
    let signature = github.sign(body.as_bytes());
    post_scan(app, body, Some(KEY_ID), Some(&signature)).await
}

fn finding(token: &str, url: &str) -> Value {
    json!({"token": token, "type": TYPE, "url": url, "source": "content"})
}

async fn new_key(app: &TestApp, name: &str) -> (String, String) {
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

async fn regenerate(app: &TestApp, id: &str, grace: &str) -> String {
    let page = app
        .post(&format!("{BASE}/{id}/regenerate"), &[("grace", grace)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.attr("#secret-key", "value").expect("the new secret")
}

async fn state_of(app: &TestApp, id: &str) -> (i64, i64, Option<String>) {
    sqlx::query_as("SELECT active, locked, locked_by FROM access_keys WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

async fn audit_of(app: &TestApp, action: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT target_id, actor_label, details FROM audit_log WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(&app.state.pool)
    .await
    .unwrap()
}

/// No trace of any of `secrets` in the audit log, the outbox, the bell, the webhook queue or
/// the server's logs.
async fn nowhere(app: &TestApp, secrets: &[&str]) {
    let mut texts: Vec<String> = sqlx::query_scalar("SELECT details FROM audit_log")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    for sql in [
        "SELECT body_text FROM outbox",
        "SELECT body FROM notifications",
        "SELECT body FROM webhook_deliveries",
    ] {
        texts.extend(
            sqlx::query_scalar::<_, String>(sql)
                .fetch_all(&app.state.pool)
                .await
                .unwrap(),
        );
    }
    texts.push(captured_logs());
    for secret in secrets {
        assert!(
            texts.iter().all(|t| !t.contains(&secret[4..])),
            "a reported secret was written somewhere"
        );
    }
}

#[tokio::test]
async fn github_findings_are_labelled_and_the_live_key_is_locked_audited_and_told() {
    let github = GitHub::new();
    let app = spawn_scanned_app(&github).await;
    app.signed_in_admin().await;
    let receiver = Receiver::start(vec![]).await;
    let (signing, _) = create_signing_key(&app, "Receiver").await;
    add_endpoint(
        &app,
        &receiver.url(),
        &["key.exposed", "key.locked"],
        &signing,
    )
    .await;
    let (live, live_secret) = new_key(&app, "billing export").await;
    let (rotated, old_secret) = new_key(&app, "rotated").await;
    regenerate(&app, &rotated, "").await;
    let (deleted, deleted_secret) = new_key(&app, "gone").await;
    let res = app.post(&format!("{BASE}/{deleted}/delete"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let unknown = Secret::generate().expose().to_string();
    let url = "https://github.com/octo/app/blob/abc123/config/prod.env";

    let body = json!([
        finding(&live_secret, url),
        finding(&old_secret, "https://github.com/octo/app/blob/abc123/old.env"),
        finding(&deleted_secret, "https://github.com/octo/app/blob/abc123/gone.env"),
        finding(&unknown, "https://github.com/octo/app/blob/abc123/x"),
        {"token": "kws_notakeywardsecret", "type": TYPE},
    ])
    .to_string();
    let (status, answer) = signed_scan(&app, &github, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let labels: Vec<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "true_positive",
            "false_positive",
            "false_positive",
            "false_positive",
            "false_positive"
        ]
    );
    assert_eq!(answer[0]["token_raw"], live_secret.as_str());
    assert_eq!(answer[0]["token_type"], TYPE);

    // The live key is locked (by keyward, so its lock is the owner's to end) and refuses.
    assert_eq!(state_of(&app, &live).await, (1, 1, Some("lockout".into())));
    assert_eq!(
        app.authenticate(&live, &live_secret).await.unwrap_err(),
        Refusal::Locked
    );
    assert_eq!(
        state_of(&app, &rotated).await.1,
        0,
        "a dead secret locks nothing"
    );
    // Audited: who reported, where, what was done; the replaced secret is recorded too.
    let reported = audit_of(&app, "key.exposure_reported").await;
    assert_eq!(reported.len(), 2, "{reported:?}");
    let (target, actor, details) = &reported.iter().find(|r| r.0 == live).unwrap();
    assert_eq!(target, &live);
    assert_eq!(actor, "GitHub secret scanning");
    assert!(details.contains(url), "{details}");
    assert!(details.contains("the key was locked"), "{details}");
    let replaced = reported.iter().find(|r| r.0 == rotated).unwrap();
    assert!(replaced.2.contains("no longer works"), "{}", replaced.2);
    assert_eq!(audit_of(&app, "key.locked").await.len(), 1);

    // The key's people: a bell notice and an email naming the place; a webhook event.
    let bell: Vec<(String, String)> =
        sqlx::query_as("SELECT title, body FROM notifications WHERE kind = 'key.exposed'")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(bell.len(), 1, "one administrator told once");
    assert_eq!(
        bell[0].0,
        "A secret of access key “billing export” was exposed"
    );
    assert!(bell[0].1.contains(url), "{}", bell[0].1);
    let email = last_email(&app).await;
    let unfolded = email.replace("=\r\n", "").replace("=\n", "");
    assert!(
        unfolded.contains("GitHub secret scanning reported"),
        "{email}"
    );
    assert!(unfolded.contains("keyward locked the key"), "{email}");
    assert_eq!(app.jobs.deliver_due().await.unwrap().delivered, 2);
    let got = receiver.wait_for(2).await;
    let mut events: Vec<&str> = got
        .iter()
        .map(|r| r.header("keyward-event-type").unwrap())
        .collect();
    events.sort_unstable();
    assert_eq!(events, ["key.exposed", "key.locked"]);
    assert!(got.iter().all(|r| r.body.contains(&live)));

    nowhere(
        &app,
        &[&live_secret, &old_secret, &deleted_secret, &unknown],
    )
    .await;
}

#[tokio::test]
async fn bad_signatures_and_unknown_key_identifiers_are_refused_and_change_nothing() {
    let github = GitHub::new();
    let app = spawn_scanned_app(&github).await;
    app.signed_in_admin().await;
    let (id, secret) = new_key(&app, "deploy").await;
    let body = json!([finding(&secret, "https://github.com/o/r/blob/1/a")]).to_string();
    let other = GitHub::new();
    let good = github.sign(body.as_bytes());
    let cases = [
        (Some(KEY_ID), Some(other.sign(body.as_bytes()))),
        (Some(KEY_ID), Some(github.sign(b"[]"))),
        (Some("no-such-key"), Some(good.clone())),
        (Some(KEY_ID), Some("bm90IGEgc2lnbmF0dXJl".to_string())),
        (Some(KEY_ID), None),
        (None, Some(good.clone())),
    ];
    for (identifier, signature) in cases {
        let (status, answer) = post_scan(&app, &body, identifier, signature.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["error"]["code"], "unauthorized");
    }
    assert_eq!(state_of(&app, &id).await, (1, 0, None));
    assert!(audit_of(&app, "key.exposure_reported").await.is_empty());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE kind = 'key.exposed'")
            .await,
        0
    );
    // The good signature still works afterwards.
    let (status, _) = post_scan(&app, &body, Some(KEY_ID), Some(&good)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_body_with_a_valid_signature_is_a_json_error_and_changes_nothing() {
    let github = GitHub::new();
    let app = spawn_scanned_app(&github).await;
    app.signed_in_admin().await;
    let (id, secret) = new_key(&app, "deploy").await;
    for body in [
        "not json".to_string(),
        json!({"token": secret, "type": TYPE}).to_string(),
        json!([{"token": secret}]).to_string(),
        json!([{"token": 5, "type": TYPE}]).to_string(),
    ] {
        let (status, answer) = signed_scan(&app, &github, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
        assert!(
            !answer.to_string().contains(&secret[4..]),
            "the error does not quote the token"
        );
    }
    let (status, answer) = signed_scan(&app, &github, "[]").await;
    assert_eq!((status, answer), (StatusCode::OK, json!([])));
    let huge = format!("[{}]", vec!["1"; 600_000].join(","));
    let (status, answer) = signed_scan(&app, &github, &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(state_of(&app, &id).await, (1, 0, None));
}

#[tokio::test]
async fn without_a_key_file_the_endpoint_does_not_exist() {
    let app = spawn_app_with(|_| {}).await;
    let (status, answer) = post_scan(&app, "[]", Some(KEY_ID), Some("x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_thousand_findings_in_one_request_are_answered_in_one_pass() {
    let github = GitHub::new();
    let app = spawn_scanned_app(&github).await;
    app.signed_in_admin().await;
    // 100 live keys written directly (their secrets hashed as keyward does), 900 unknown.
    let now = app.clock.unix_now();
    let mut live = Vec::new();
    for i in 0..100 {
        let id = keyward::domain::KeyId::generate().to_string();
        let secret = Secret::generate();
        sqlx::query(
            "INSERT INTO access_keys (id, name, key_type, owner_user_id, secret_hash, expires_at, \
             created_at, created_by, created_by_label, modified_at, modified_by, modified_by_label, \
             search_name, expiry_set_at) \
             VALUES ($1, $2, 'access', NULL, $3, NULL, $4, NULL, 'test', $4, NULL, 'test', $2, $4)",
        )
        .bind(&id)
        .bind(format!("bulk {i}"))
        .bind(app.state.key_hasher.hash(&secret))
        .bind(now)
        .execute(&app.state.pool)
        .await
        .unwrap();
        live.push((id, secret.expose().to_string()));
    }
    let mut findings: Vec<Value> = live
        .iter()
        .enumerate()
        .map(|(i, (_, s))| {
            finding(
                s,
                &format!("https://github.com/octo/repo/blob/abc/f{i}.env"),
            )
        })
        .collect();
    for i in 0..900 {
        findings.push(finding(
            Secret::generate().expose(),
            &format!("https://github.com/octo/other/blob/def/g{i}.env"),
        ));
    }
    let body = Value::Array(findings).to_string();
    let started = Instant::now();
    let (status, answer) = signed_scan(&app, &github, &body).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    let answer = answer.as_array().unwrap();
    assert_eq!(answer.len(), 1000);
    let positives = answer
        .iter()
        .filter(|a| a["label"] == "true_positive")
        .count();
    assert_eq!(positives, 100);
    assert!(answer[..100].iter().all(|a| a["label"] == "true_positive"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_keys WHERE locked = 1")
            .await,
        100
    );
    assert_eq!(audit_of(&app, "key.exposure_reported").await.len(), 100);
    println!(
        "1,000 findings ({} bytes, 100 live keys) on {}: {} ms",
        body.len(),
        database_kind(),
        took.as_millis()
    );
    assert!(took.as_secs() < 60, "took {took:?}");
}

/// Sets the exposure policy as the Key policy page would store it.
async fn set_policy(app: &TestApp, policy: &str) {
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ('key_policy.exposure', $1) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(policy)
    .execute(&app.state.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_api_applies_each_exposure_policy_and_answers_what_it_did() {
    let app = spawn_app_with(|_| {}).await;
    app.signed_in_admin().await;
    let ops = tenant_key(&app, "ops", "access", &["role_key_admin"]).await;
    let report = |secret: Value| {
        let auth = ops.bearer();
        let app = &app;
        async move {
            call(
                app,
                Method::POST,
                "/api/v1/apikeys/exposed",
                Some(&auth),
                Some(secret),
            )
            .await
        }
    };
    for (policy, action, state) in [
        (None, "locked", (1, 1)),
        (Some("lock"), "locked", (1, 1)),
        (Some("deactivate"), "deactivated", (0, 0)),
        (Some("record"), "recorded", (1, 0)),
    ] {
        if let Some(p) = policy {
            set_policy(&app, p).await;
        }
        let (id, secret) = new_key(&app, &format!("leaked {action}")).await;
        let (status, body, _) = report(json!({ "secret": secret })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"id": id, "action": action, "secret": "current"})
        );
        let (active, locked, _) = state_of(&app, &id).await;
        assert_eq!((active, locked), state, "{policy:?}");
    }
    let told = app
        .count("SELECT COUNT(*) FROM notifications WHERE kind = 'key.exposed'")
        .await;
    assert_eq!(told, 4);

    // A previous secret inside its grace period: the key locks and the grace ends.
    set_policy(&app, "lock").await;
    let (id, old) = new_key(&app, "rotating").await;
    let new = regenerate(&app, &id, "3600").await;
    let (status, body, _) = report(json!({ "secret": old })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["secret"], "previous");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_keys WHERE previous_secret_hash IS NOT NULL")
            .await,
        0
    );
    // A replaced secret only records.
    let (status, body, _) = report(json!({ "secret": old })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["action"].as_str(), body["secret"].as_str()),
        (Some("recorded"), Some("replaced"))
    );

    // Unknown: 404; malformed or missing: 422 naming the field; nothing changes.
    let (status, body, _) = report(json!({ "secret": Secret::generate().expose() })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let mut typo = new.clone();
    typo.replace_range(10..11, if &new[10..11] == "a" { "b" } else { "a" });
    for bad in [
        json!({ "secret": typo }),
        json!({}),
        json!({ "secret": "" }),
    ] {
        let (status, body, _) = report(bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "secret");
        assert!(!body.to_string().contains(&typo[4..]));
    }
    let (status, body, _) = report(json!({ "secret": new, "extra": 1 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A key without keys:write may not report.
    let reader = tenant_key(&app, "reader", "access", &["role_read_only"]).await;
    let (status, _, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys/exposed",
        Some(&reader.bearer()),
        Some(json!({ "secret": new })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys/exposed",
        None,
        Some(json!({ "secret": new })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    nowhere(&app, &[&old, &new]).await;
}

#[tokio::test]
async fn the_console_finds_the_key_of_a_pasted_secret_and_never_shows_the_secret() {
    let app = spawn_app_with(|_| {}).await;
    app.signed_in_admin().await;
    let list = app.get(BASE).await;
    assert_eq!(
        list.attr("a[href='/user-access/keys/exposed']", "href")
            .as_deref(),
        Some("/user-access/keys/exposed")
    );
    let form = app.get(&format!("{BASE}/exposed")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.attr("#secret", "type").as_deref(), Some("password"));
    assert_eq!(form.attr("#secret", "autocomplete").as_deref(), Some("off"));

    let (id, secret) = new_key(&app, "payments").await;
    let page = app
        .post(&format!("{BASE}/exposed"), &[("secret", &secret)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.headers.get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    assert!(
        !page.body.contains(&secret[4..]),
        "the secret is not echoed"
    );
    assert!(page.text("#found h2").contains("payments"));
    assert!(page.text("#found").contains(&id));
    assert!(page.text("#found").contains("current secret"));
    let reported = audit_of(&app, "key.exposure_reported").await;
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].0, id);
    assert!(reported[0].2.contains("in the console"));
    // Nothing changed yet: the person chooses.
    assert_eq!(state_of(&app, &id).await, (1, 0, None));

    // Generate new secret: a one-time form through the guarded regenerate action.
    let once = page
        .attr(
            "#found form[action$='/regenerate'] input[name=once]",
            "value",
        )
        .unwrap();
    let shown = app
        .post(
            &format!("{BASE}/{id}/regenerate"),
            &[("once", &once), ("grace", "")],
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        app.authenticate(&id, &secret).await.unwrap_err(),
        Refusal::WrongSecret,
        "the exposed secret stopped at once"
    );
    // Pasted again, it is a replaced secret: nothing to do.
    let again = app
        .post(&format!("{BASE}/exposed"), &[("secret", &secret)])
        .await;
    assert!(again.text("#found").contains("no longer works"));
    assert!(
        again
            .attr("#found form[action$='/regenerate']", "action")
            .is_none()
    );

    // Unknown and malformed secrets: a message on the form, the secret not echoed.
    let unknown = Secret::generate().expose().to_string();
    for (pasted, says) in [
        (unknown.as_str(), "No access key has this secret"),
        ("kws_123", "not a keyward secret key"),
        ("", "Paste the secret key"),
    ] {
        let page = app
            .post(&format!("{BASE}/exposed"), &[("secret", pasted)])
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.text("#secret-error").contains(says), "{}", page.body);
        assert_eq!(page.attr("#secret", "value"), None);
        if pasted.len() > 4 {
            assert!(!page.body.contains(&pasted[4..]));
        }
    }
    nowhere(&app, &[&secret, &unknown]).await;
}

#[tokio::test]
async fn someone_elses_personal_key_can_be_deactivated_but_not_given_a_secret() {
    let app = spawn_app_with(|_| {}).await;
    app.signed_in_admin().await;
    app.create_user("grace@example.com", "Grace Hopper", crate::common::PASSWORD)
        .await;
    let grace = app.other_client();
    grace
        .sign_in("grace@example.com", crate::common::PASSWORD)
        .await;
    let mine = grace
        .add_key(
            "/my/keys",
            &[
                ("name", "laptop"),
                ("key_type", "access"),
                ("validity", "30"),
                ("custom_date", ""),
            ],
        )
        .await;
    let page = app
        .post(&format!("{BASE}/exposed"), &[("secret", &mine.secret)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text("#found").contains("personal key of Grace Hopper"));
    assert!(
        page.attr("#found form[action$='/regenerate']", "action")
            .is_none()
    );
    let deactivate = page
        .attr("#found form[action$='/deactivate']", "action")
        .unwrap();
    let res = app.post(&deactivate, &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(state_of(&app, &mine.id).await.0, 0);
}

#[tokio::test]
async fn a_reader_is_refused_and_a_post_without_its_token_changes_nothing() {
    let app = spawn_app_with(|_| {}).await;
    app.signed_in_admin().await;
    let (_, secret) = new_key(&app, "payments").await;
    let reader = person_with_role(&app, "rita@example.com", "Rita Reader", "role_read_only").await;
    let page = reader.get(&format!("{BASE}/exposed")).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("keys:write"));
    let list = reader.get(BASE).await;
    assert!(
        list.attr("a[href='/user-access/keys/exposed']", "href")
            .is_none()
    );
    let posted = reader
        .post(&format!("{BASE}/exposed"), &[("secret", &secret)])
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    let forged = app
        .post_raw(&format!("{BASE}/exposed"), &[("secret", &secret)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(audit_of(&app, "key.exposure_reported").await.is_empty());
}
