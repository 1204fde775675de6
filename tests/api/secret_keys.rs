//! Configuration > API Access secret keys: the bridge key and its client credentials, webhook
//! signing keys sealed under the master key, one-time display, regeneration, deletion rules,
//! another master key, and master-key rotation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;

use crate::common::{Page, TestApp, spawn_app, spawn_app_on};

const PAGE: &str = "/configuration/api-access";

/// The bridge key's client ID as the page lists it.
async fn bridge_client_id(app: &TestApp) -> String {
    let page = app.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK);
    page.text("#key-sk_bridge code")
}

/// OK on the warning: the value page.
async fn generate(app: &TestApp, id: &str) -> Page {
    let path = format!("{PAGE}/secret-keys/{id}/generate");
    let warning = app.get(&path).await;
    assert_eq!(warning.status, StatusCode::OK);
    assert!(warning.text("#warning-text").contains("shown only once"));
    let once = warning
        .attr("input[name=once]", "value")
        .expect("a one-time token");
    let page = app.post(&path, &[("once", &once)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text("main"));
    assert_eq!(
        page.headers.get("cache-control").unwrap(),
        "no-store",
        "the value page is never cached"
    );
    page
}

fn value(page: &Page) -> String {
    page.attr("#secret-value", "value")
        .expect("the value is shown")
}

/// Creates a signing key through the form; returns its ID and value.
pub async fn create_signing_key(app: &TestApp, name: &str) -> (String, String) {
    let page = app
        .post(&format!("{PAGE}/secret-keys"), &[("name", name)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text(".field-error"));
    let secret = value(&page);
    let id: String = sqlx::query_scalar("SELECT id FROM secret_keys WHERE name = $1")
        .bind(name)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    (id, secret)
}

/// Asks the verify endpoint about a made-up key with the bridge's credentials.
async fn verify_as_bridge(app: &TestApp, client_id: &str, secret: &str) -> StatusCode {
    let made_up = format!(
        "{}::{}",
        keyward::domain::KeyId::generate(),
        keyward::domain::Secret::generate().expose()
    );
    reqwest::Client::new()
        .post(app.url("/api/v1/verify"))
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}"))),
        )
        .json(&serde_json::json!({ "key": made_up }))
        .send()
        .await
        .unwrap()
        .status()
}

async fn audit_actions(app: &TestApp, prefix: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE $1 ORDER BY id")
        .bind(format!("{prefix}%"))
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_bridge_key_exists_from_the_first_start_without_a_secret() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK);
    let row = page.text("#key-sk_bridge");
    assert!(
        row.contains("Bridge key") && row.contains("No secret yet"),
        "{row}"
    );
    assert!(
        row.contains("2026-11-23"),
        "created when keyward first started: {row}"
    );
    let client_id = bridge_client_id(&app).await;
    assert!(
        keyward::domain::BridgeClientId::parse(&client_id).is_some(),
        "{client_id}"
    );
    // Nothing authenticates as the bridge before a secret is generated.
    let guess = keyward::domain::Secret::generate();
    assert_eq!(
        verify_as_bridge(&app, &client_id, guess.expose()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        audit_actions(&app, "bridge.").await,
        ["bridge.authentication_failed"]
    );
}

#[tokio::test]
async fn a_new_bridge_secret_is_shown_once_and_the_old_one_stops_at_once() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let client_id = bridge_client_id(&app).await;

    let page = generate(&app, "sk_bridge").await;
    let first = value(&page);
    assert!(keyward::domain::Secret::parse(&first).is_some(), "{first}");
    assert_eq!(page.attr("#client-id", "value").unwrap(), client_id);
    assert_eq!(
        page.attr("#tenant-id", "value").unwrap(),
        app.state.tenant_id
    );
    assert!(page.text(".steps").contains("Bridge Client Secret"));
    assert_eq!(
        verify_as_bridge(&app, &client_id, &first).await,
        StatusCode::OK
    );

    // Reloading the value page (the same POST again) shows nothing and keeps the secret.
    let path = format!("{PAGE}/secret-keys/sk_bridge/generate");
    let warning = app.get(&path).await;
    let once = warning.attr("input[name=once]", "value").unwrap();
    let shown = app.post(&path, &[("once", &once)]).await;
    assert_eq!(shown.status, StatusCode::OK);
    let again = value(&shown);
    let reload = app.post(&path, &[("once", &once)]).await;
    assert_eq!(reload.status, StatusCode::CONFLICT);
    assert!(reload.body.contains("This form was already sent"));
    assert!(reload.attr("#secret-value", "value").is_none());
    assert_eq!(
        verify_as_bridge(&app, &client_id, &again).await,
        StatusCode::OK
    );
    let no_token = app.post(&path, &[]).await;
    assert_eq!(
        no_token.status,
        StatusCode::CONFLICT,
        "OK only from the warning"
    );
    let first = again;

    // The list never shows it again, and the database only holds its HMAC.
    let list = app.get(PAGE).await;
    assert!(!list.body.contains(&first));
    assert!(!list.text("#key-sk_bridge").contains("No secret yet"));
    let stored: String =
        sqlx::query_scalar("SELECT secret_hash FROM secret_keys WHERE id = 'sk_bridge'")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        app.state
            .key_hasher
            .hash(&keyward::domain::Secret::parse(&first).unwrap())
    );

    let warning = app
        .get(&format!("{PAGE}/secret-keys/sk_bridge/generate"))
        .await;
    assert!(
        warning
            .text("#warning-text")
            .contains("stops working at once")
    );
    let second = value(&generate(&app, "sk_bridge").await);
    assert_ne!(first, second);
    assert_eq!(
        verify_as_bridge(&app, &client_id, &first).await,
        StatusCode::UNAUTHORIZED,
        "the old secret stops at once"
    );
    assert_eq!(
        verify_as_bridge(&app, &client_id, &second).await,
        StatusCode::OK
    );
    assert_eq!(
        audit_actions(&app, "secret_key.").await,
        [
            "secret_key.regenerated",
            "secret_key.regenerated",
            "secret_key.regenerated"
        ],
        "three generations; the reload wrote nothing"
    );
    assert!(
        !crate::common::captured_logs().contains(&second),
        "no secret in the log"
    );
}

#[tokio::test]
async fn the_bridge_acts_with_the_integration_role_only() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let client_id = bridge_client_id(&app).await;
    let secret = value(&generate(&app, "sk_bridge").await);
    let basic = format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")));
    let http = reqwest::Client::new();
    for path in [
        "/api/v1/apikeys",
        "/api/v1/apikeys/current",
        "/api/v1/me/keys",
    ] {
        let res = http
            .get(app.url(path))
            .header("Authorization", &basic)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{path}");
    }
    // Its client ID is not a key ID: Bearer with it is refused like any malformed key.
    let res = http
        .get(app.url("/api/v1/apikeys"))
        .header("Authorization", format!("Bearer {client_id}::{secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn people_without_config_write_cannot_see_or_change_secret_keys() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    assert_eq!(app.get(PAGE).await.status, StatusCode::FORBIDDEN);
    let page = app
        .post(&format!("{PAGE}/secret-keys/sk_bridge/generate"), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = app
        .post(&format!("{PAGE}/secret-keys"), &[("name", "x")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM secret_keys").await, 1);
    assert!(audit_actions(&app, "secret_key.").await.is_empty());
}

#[tokio::test]
async fn a_signing_key_is_stored_sealed_and_never_in_plain_text() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (id, secret) = create_signing_key(&app, "Billing receiver").await;
    let sealed: String = sqlx::query_scalar("SELECT sealed_secret FROM secret_keys WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert!(sealed.starts_with("v1."), "{sealed}");
    assert!(!sealed.contains(&secret[4..20]));
    // Nowhere else either: audit log, settings.
    for sql in [
        "SELECT COUNT(*) FROM audit_log WHERE details LIKE $1 OR target_label LIKE $1",
        "SELECT COUNT(*) FROM settings WHERE value LIKE $1",
        "SELECT COUNT(*) FROM secret_keys WHERE sealed_secret LIKE $1 OR name LIKE $1",
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(format!("%{}%", &secret[4..]))
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{sql}");
    }
    if crate::common::database_kind() == "sqlite" {
        // The raw files, write-ahead log included.
        for name in ["keyward.db", "keyward.db-wal"] {
            if let Ok(bytes) = std::fs::read(app.data_dir.path().join(name)) {
                let hay = String::from_utf8_lossy(&bytes);
                assert!(!hay.contains(&secret[4..]), "{name} holds the secret");
            }
        }
    }
    // The list shows it without its value; the value page was the only time.
    let list = app.get(PAGE).await;
    assert!(
        list.text(&format!("#key-{id}"))
            .contains("Webhook signing key")
    );
    assert!(!list.body.contains(&secret));
    assert_eq!(
        audit_actions(&app, "secret_key.").await,
        ["secret_key.created"]
    );
}

#[tokio::test]
async fn signing_key_names_are_checked_and_nothing_is_written_on_error() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    create_signing_key(&app, "Billing receiver").await;
    for (name, message) in [
        ("", "Enter a name"),
        ("   ", "Enter a name"),
        ("Billing receiver", "exists"),
        (&"x".repeat(101), "at most 100"),
    ] {
        let page = app
            .post(&format!("{PAGE}/secret-keys"), &[("name", name)])
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(
            page.text(".field-error").contains(message),
            "{name}: {}",
            page.text(".field-error")
        );
        assert!(page.attr("#secret-value", "value").is_none());
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM secret_keys").await, 2);
}

#[tokio::test]
async fn the_bridge_and_signing_keys_in_use_cannot_be_deleted() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app
        .post(&format!("{PAGE}/secret-keys/sk_bridge/delete"), &[])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("cannot be deleted"));

    let (id, _) = create_signing_key(&app, "Receiver").await;
    let endpoint = app
        .post(
            &format!("{PAGE}/webhooks"),
            &[
                ("url", "https://hooks.example.com/keyward"),
                ("events", "key.created"),
                ("signing_key_id", &id),
                ("enabled", "1"),
            ],
        )
        .await;
    assert_eq!(endpoint.status, StatusCode::SEE_OTHER);
    let confirm = app.get(&format!("{PAGE}/secret-keys/{id}/delete")).await;
    assert!(
        confirm
            .text("[role=alert]")
            .contains("signs 1 webhook endpoint")
    );
    let page = app
        .post(&format!("{PAGE}/secret-keys/{id}/delete"), &[])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT COUNT(*) FROM secret_keys").await, 2);

    let location = endpoint.location();
    let endpoint_id = location
        .trim_start_matches(&format!("{PAGE}/webhooks/"))
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let gone = app
        .post(&format!("{PAGE}/webhooks/{endpoint_id}/delete"), &[])
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    let deleted = app
        .post(&format!("{PAGE}/secret-keys/{id}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT COUNT(*) FROM secret_keys").await, 1);
    assert_eq!(
        audit_actions(&app, "secret_key.").await,
        ["secret_key.created", "secret_key.deleted"]
    );
}

#[tokio::test]
async fn another_master_key_is_refused_at_start_with_a_clear_message() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    create_signing_key(&app, "Receiver").await;
    let other = keyward::auth::master_key::MasterKey::generate();
    let refused = spawn_app_on(&app.database_url, &other.to_base64(), app.clock.clone()).await;
    let message = format!("{:#}", refused.err().expect("another key is refused"));
    assert!(message.contains("does not open the database"), "{message}");

    // Opening a sealed value with another key fails cleanly too.
    let vault = keyward::auth::vault::Vault::ephemeral(&other);
    let (id, sealed): (String, String) =
        sqlx::query_as("SELECT id, sealed_secret FROM secret_keys WHERE kind = 'webhook'")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert!(matches!(
        vault.open_sealed(keyward::auth::vault::Binding::signing_key(&id), &sealed),
        Err(keyward::auth::vault::SealError::WrongKey)
    ));
}

#[tokio::test]
async fn rotation_reseals_every_value_and_keeps_keys_and_bridge_working() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (id, secret) = create_signing_key(&app, "Receiver").await;
    let client_id = bridge_client_id(&app).await;
    let bridge = value(&generate(&app, "sk_bridge").await);
    let key = app
        .add_key(
            "/user-access/keys",
            &[
                ("name", "ci"),
                ("key_type", "access"),
                ("validity", "90"),
                ("custom_date", ""),
            ],
        )
        .await;
    let before: String = sqlx::query_scalar("SELECT sealed_secret FROM secret_keys WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();

    let new = keyward::auth::master_key::MasterKey::generate();
    let rotation = keyward::auth::vault::rotate(&app.state.pool, &app.state.master_key, &new)
        .await
        .unwrap();
    assert_eq!((rotation.version, rotation.secret_keys), (2, 1));
    let after: String = sqlx::query_scalar("SELECT sealed_secret FROM secret_keys WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_ne!(before, after);
    assert!(after.starts_with("v2."), "{after}");

    // The server still running on the old key refuses to seal anything new.
    let page = app
        .post(&format!("{PAGE}/secret-keys"), &[("name", "Late")])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("rotated while keyward was running"));
    assert_eq!(app.count("SELECT COUNT(*) FROM secret_keys").await, 2);

    // The old key no longer opens the database; the new one does, and everything still works.
    let old = spawn_app_on(
        &app.database_url,
        &app.state.master_key.to_base64(),
        app.clock.clone(),
    )
    .await;
    assert!(old.is_err(), "the old master key is refused after rotation");
    // The receiver below is on loopback.
    let restarted = crate::common::spawn_app_on_with(
        &app.database_url,
        &new.to_base64(),
        app.clock.clone(),
        |s| s.webhook_allow_private = true,
    )
    .await
    .expect("starts with the new key");
    let opened = restarted
        .state
        .vault
        .open_sealed(keyward::auth::vault::Binding::signing_key(&id), &after)
        .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), secret);
    assert_eq!(
        verify_as_bridge(&restarted, &client_id, &bridge).await,
        StatusCode::OK
    );
    assert!(
        restarted.authenticate(&key.id, &key.secret).await.is_ok(),
        "access keys survive a rotation"
    );

    // Deliveries after the rotation still verify with the value shown before it.
    let receiver = crate::common::receiver::Receiver::start(vec![]).await;
    let signed_in = restarted
        .sign_in(crate::common::ADMIN_EMAIL, crate::common::PASSWORD)
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let url = receiver.url();
    let added = restarted
        .post(
            &format!("{PAGE}/webhooks"),
            &[
                ("url", url.as_str()),
                ("events", "key.created"),
                ("signing_key_id", id.as_str()),
                ("enabled", "1"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let tested = restarted
        .post(
            &format!("{}/test", added.location().split('?').next().unwrap()),
            &[],
        )
        .await;
    assert_eq!(tested.status, StatusCode::SEE_OTHER);
    assert_eq!(restarted.jobs.deliver_due().await.unwrap().delivered, 1);
    let got = receiver.wait_for(1).await;
    let header = got[0].header("keyward-signature").unwrap();
    assert!(crate::common::receiver::verify_signature(&secret, header, &got[0].body).is_some());
}

#[tokio::test]
async fn the_rotate_command_replaces_the_key_file_and_the_server_starts_with_it() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (_, secret) = create_signing_key(&app, "Receiver").await;
    let dir = app.data_dir.path();
    let before = std::fs::read_to_string(dir.join("master.key")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["master-key", "rotate"])
        .env("KEYWARD_DATA_DIR", dir)
        .env("KEYWARD_DATABASE_URL", &app.database_url)
        .env_remove("KEYWARD_MASTER_KEY")
        .env_remove("KEYWARD_NEW_MASTER_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("master key version 2"), "{stdout}");
    assert!(
        stdout.contains("Re-sealed 1 webhook signing keys"),
        "{stdout}"
    );
    let after = std::fs::read_to_string(dir.join("master.key")).unwrap();
    assert_ne!(before, after);
    assert!(!dir.join("master.key.next").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let restarted = spawn_app_on(&app.database_url, after.trim(), app.clock.clone())
        .await
        .expect("starts with the rotated key");

    // With the key in the environment, keyward will not make up a key it cannot store.
    let run = |lock: bool| {
        if lock {
            std::fs::write(dir.join("master.key.lock"), "").unwrap();
        }
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"));
        cmd.args(["master-key", "rotate"])
            .env("KEYWARD_DATA_DIR", dir)
            .env("KEYWARD_DATABASE_URL", &app.database_url)
            .env_remove("KEYWARD_NEW_MASTER_KEY");
        if !lock {
            cmd.env("KEYWARD_MASTER_KEY", after.trim());
        } else {
            cmd.env_remove("KEYWARD_MASTER_KEY");
        }
        cmd.output().unwrap()
    };
    let out = run(false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass it as KEYWARD_NEW_MASTER_KEY"));
    let out = run(true);
    assert!(
        !out.status.success(),
        "a second rotation waits for the lock"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another master key rotation is running")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("master.key")).unwrap(),
        after
    );
    let (id, sealed): (String, String) =
        sqlx::query_as("SELECT id, sealed_secret FROM secret_keys WHERE kind = 'webhook'")
            .fetch_one(&restarted.state.pool)
            .await
            .unwrap();
    let opened = restarted
        .state
        .vault
        .open_sealed(keyward::auth::vault::Binding::signing_key(&id), &sealed)
        .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), secret);
}

#[tokio::test]
async fn nobody_without_verify_rights_can_push_a_key_towards_its_lockout() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let form = |name| {
        [
            ("name", name),
            ("key_type", "access"),
            ("validity", "90"),
            ("custom_date", ""),
            ("roles", "role_read_only"),
        ]
    };
    let victim = app.add_key("/user-access/keys", &form("victim")).await;
    let reader = app.add_key("/user-access/keys", &form("reader")).await;
    let client_id = bridge_client_id(&app).await;
    let wrong_bridge = keyward::domain::Secret::generate();
    let basic =
        |id: &str, secret: &str| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let callers = [
        None,
        Some(basic(&client_id, wrong_bridge.expose())),
        Some(basic(&reader.id, &reader.secret)),
    ];
    let http = reqwest::Client::new();
    for caller in &callers {
        for _ in 0..6 {
            let wrong = keyward::domain::Secret::generate();
            let mut req = http
                .post(app.url("/api/v1/verify"))
                .json(&serde_json::json!({ "key": format!("{}::{}", victim.id, wrong.expose()) }));
            if let Some(auth) = caller {
                req = req.header("Authorization", auth);
            }
            let status = req.send().await.unwrap().status();
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
                "{caller:?}: {status}"
            );
        }
    }
    let (locked, failed): (i64, i64) =
        sqlx::query_as("SELECT locked, failed_attempts FROM access_keys WHERE id = $1")
            .bind(&victim.id)
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!((locked, failed), (0, 0), "the victim's key is untouched");
    assert!(app.authenticate(&victim.id, &victim.secret).await.is_ok());
}

#[tokio::test]
async fn wrong_bridge_secrets_are_limited_per_address_and_a_flood_is_not_audited() {
    let app = crate::common::spawn_app_with(|s| s.client_failure_limit = 2).await;
    app.signed_in_admin().await;
    let client_id = bridge_client_id(&app).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let guess = keyward::domain::Secret::generate();
        statuses.push(verify_as_bridge(&app, &client_id, guess.expose()).await);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(audit_actions(&app, "bridge.").await.len(), 2);
    assert_eq!(
        app.count("SELECT CAST(SUM(hits) AS BIGINT) FROM rate_limits")
            .await,
        2,
        "attempts over the limit are not counted, and once the address is known to be over \
         it its refusals write nothing"
    );
}

#[tokio::test]
async fn the_add_signing_key_form_sent_twice_creates_one_key() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let form = app.get(&format!("{PAGE}/secret-keys/new")).await;
    let once = form
        .attr("input[name=once]", "value")
        .expect("a single-use token");
    let fields = [("name", "Receiver"), ("once", once.as_str())];
    let first = app.post(&format!("{PAGE}/secret-keys"), &fields).await;
    assert_eq!(first.status, StatusCode::OK);
    let shown = value(&first);

    // A reload of the value page posts the form again: not "this name exists", and nothing new.
    let again = app.post(&format!("{PAGE}/secret-keys"), &fields).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.body.contains("This form was already sent"),
        "{}",
        again.text("main")
    );
    assert!(!again.body.contains(&shown), "the value is not shown again");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM secret_keys WHERE name = 'Receiver'")
            .await,
        1
    );
    // A form refused for its input keeps its token, so the corrected form goes through.
    let form = app.get(&format!("{PAGE}/secret-keys/new")).await;
    let once = form.attr("input[name=once]", "value").unwrap();
    let bad = app
        .post(
            &format!("{PAGE}/secret-keys"),
            &[("name", ""), ("once", &once)],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.attr("input[name=once]", "value").as_deref(),
        Some(once.as_str())
    );
    let good = app
        .post(
            &format!("{PAGE}/secret-keys"),
            &[("name", "Second"), ("once", &once)],
        )
        .await;
    assert_eq!(good.status, StatusCode::OK);
}
