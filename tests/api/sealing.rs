//! Values sealed under the master key are bound to their row and purpose: a signing secret or
//! an invitation body copied into another row is refused there (never used for it), values
//! sealed the old way (without binding) are bound once at the first start after an upgrade and
//! keep working, and an old-style value written after that is refused rather than bound.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use keyward::auth::vault::Binding;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::common::receiver::{Receiver, verify_signature};
use crate::common::{TestApp, last_invitation, spawn_app_on_with};
use crate::mail::invite;
use crate::secret_keys::create_signing_key;
use crate::webhooks::{add_endpoint, add_key, spawn_receiving_app};

const PAGE: &str = "/configuration/api-access";

/// The derivation labels and vault rows of the sealing format before binding, written out
/// here rather than taken from keyward, so that the test really writes what an old keyward
/// wrote.
const OUTBOX_LABEL: &str = "keyward outbox seal v1";
const SECRET_KEY_LABEL: &str = "keyward secret key seal v1";
const VAULT_LABEL: &str = "keyward vault seal v1";
const HASH_KEY_LABEL: &str = "access-key-secret-v1";

fn derive(master: &[u8], label: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"keyward"), master)
        .expand(label.as_bytes(), &mut out)
        .unwrap();
    out
}

/// `text` sealed as keyward sealed it before values were bound to their rows: no associated
/// data, `v1.<base64>` (or bare base64, from before versions existed).
fn seal_the_old_way(app: &TestApp, label: &str, text: &str, versioned: bool) -> String {
    let master = STANDARD
        .decode(app.state.master_key.to_base64().as_str())
        .unwrap();
    let cipher = XChaCha20Poly1305::new_from_slice(&derive(&master, label)).unwrap();
    let nonce = XNonce::generate();
    let mut raw = nonce.to_vec();
    raw.extend_from_slice(&cipher.encrypt(&nonce, text.as_bytes()).unwrap());
    let body = STANDARD.encode(raw);
    if versioned {
        format!("v1.{body}")
    } else {
        body
    }
}

async fn setting(app: &TestApp, name: &str) -> Option<String> {
    sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_optional(&app.state.pool)
        .await
        .unwrap()
}

async fn set_setting(app: &TestApp, name: &str, value: &str) {
    sqlx::query("UPDATE settings SET value = $1 WHERE name = $2")
        .bind(value)
        .bind(name)
        .execute(&app.state.pool)
        .await
        .unwrap();
}

pub(crate) async fn sealed_secret(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("SELECT sealed_secret FROM secret_keys WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

async fn set_sealed_secret(app: &TestApp, id: &str, sealed: &str) {
    sqlx::query("UPDATE secret_keys SET sealed_secret = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(&app.state.pool)
        .await
        .unwrap();
}

/// Every sealed email: ID, text body, HTML body.
async fn sealed_emails(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT id, body_text, body_html FROM outbox WHERE sealed = 1 AND body_text <> '' \
         ORDER BY recipient",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap()
}

/// Rewrites every sealed value of the app's database as a keyward from before binding left
/// it: the vault rows, the signing secrets and the waiting emails, and no record that values
/// were bound.
pub(crate) async fn rewrite_the_old_way(app: &TestApp) {
    let master = STANDARD
        .decode(app.state.master_key.to_base64().as_str())
        .unwrap();
    let check = seal_the_old_way(app, VAULT_LABEL, "keyward master key check", true);
    set_setting(app, "master_key_check", &check).await;
    let hash_key = STANDARD.encode(derive(&master, HASH_KEY_LABEL));
    let hash_key = seal_the_old_way(app, VAULT_LABEL, &hash_key, true);
    set_setting(app, "key_hash_key", &hash_key).await;
    let keys: Vec<(String, String)> =
        sqlx::query_as("SELECT id, sealed_secret FROM secret_keys WHERE sealed_secret IS NOT NULL")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    for (id, sealed) in keys {
        let secret = app
            .state
            .vault
            .open_sealed(Binding::signing_key(&id), &sealed)
            .unwrap();
        let old = seal_the_old_way(app, SECRET_KEY_LABEL, secret.expose_secret(), true);
        set_sealed_secret(app, &id, &old).await;
    }
    for (id, text, html) in sealed_emails(app).await {
        let vault = &app.state.vault;
        let text = vault.open_sealed(Binding::email_text(&id), &text).unwrap();
        let html = vault.open_sealed(Binding::email_html(&id), &html).unwrap();
        // The outbox sealed without a version before versions existed.
        let text = seal_the_old_way(app, OUTBOX_LABEL, text.expose_secret(), false);
        let html = seal_the_old_way(app, OUTBOX_LABEL, html.expose_secret(), false);
        sqlx::query("UPDATE outbox SET body_text = $1, body_html = $2 WHERE id = $3")
            .bind(text)
            .bind(html)
            .bind(&id)
            .execute(&app.state.pool)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM settings WHERE name = 'sealed_values_bound'")
        .execute(&app.state.pool)
        .await
        .unwrap();
}

/// The same database, started again with the same master key.
async fn restart(app: &TestApp) -> TestApp {
    spawn_app_on_with(
        &app.database_url,
        &app.state.master_key.to_base64(),
        app.clock.clone(),
        |s| s.webhook_allow_private = true,
    )
    .await
    .expect("restarts")
}

#[tokio::test]
async fn a_signing_secret_copied_into_another_row_is_refused_and_never_signs() {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (alpha, alpha_secret) = create_signing_key(&app, "Alpha").await;
    let (beta, beta_secret) = create_signing_key(&app, "Beta").await;
    let endpoint = add_endpoint(&app, &receiver.url(), &["key.created"], &beta).await;

    // A database writer copies Alpha's sealed secret into Beta's row.
    let beta_sealed = sealed_secret(&app, &beta).await;
    let alpha_sealed = sealed_secret(&app, &alpha).await;
    set_sealed_secret(&app, &beta, &alpha_sealed).await;
    add_key(&app, "billing export").await;
    let pass = app.jobs.deliver_due().await.unwrap();
    assert_eq!((pass.delivered, pass.failed), (0, 1));
    assert!(
        receiver.received().is_empty(),
        "nothing is sent, so Alpha's secret never signs for Beta"
    );

    // The endpoint's page says why, without a server error or the secret.
    let page = app.get(&format!("{PAGE}/webhooks/{endpoint}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("the signing key cannot be read: the value does not open here"),
        "{}",
        page.text("main")
    );
    assert!(!page.body.contains(&alpha_secret) && !page.body.contains(&beta_secret));
    assert_eq!(app.get(PAGE).await.status, StatusCode::OK);

    // Put back where it belongs, Beta's own value signs again.
    set_sealed_secret(&app, &beta, &beta_sealed).await;
    add_key(&app, "second").await;
    assert_eq!(app.jobs.deliver_due().await.unwrap().delivered, 1);
    let got = receiver.wait_for(1).await;
    let header = got[0].header("keyward-signature").unwrap();
    assert!(verify_signature(&beta_secret, header, &got[0].body).is_some());
    assert!(verify_signature(&alpha_secret, header, &got[0].body).is_none());
}

#[tokio::test]
async fn an_invitation_copied_into_another_email_is_never_sent_to_its_recipient() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    invite(&app, "Grace Hopper", "grace@example.com").await;
    invite(&app, "Mallory", "mallory@example.com").await;
    let emails = sealed_emails(&app).await;
    let (grace, mallory) = (&emails[0], &emails[1]);

    // A database writer copies Grace's sealed invitation (her set-password link) into the
    // email to Mallory.
    sqlx::query("UPDATE outbox SET body_text = $1, body_html = $2 WHERE id = $3")
        .bind(&grace.1)
        .bind(&grace.2)
        .bind(&mallory.0)
        .execute(&app.state.pool)
        .await
        .unwrap();
    let sent = app.jobs.send_due().await.unwrap();
    assert_eq!((sent.sent, sent.failed), (1, 1));
    let (state, error): (String, String) =
        sqlx::query_as("SELECT state, last_error FROM outbox WHERE id = $1")
            .bind(&mallory.0)
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(state, "failed");
    assert!(error.contains("does not open here"), "{error}");
    let dir = app.data_dir.path().join("outbox");
    let written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(written.len(), 1);
    assert!(
        written[0].contains("To: grace@example.com"),
        "{}",
        written[0]
    );
    assert!(!written[0].contains("mallory@example.com"));

    // The mail log shows the failure as a page, not a server error.
    let page = app.get("/mail").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("does not open here"));
}

#[tokio::test]
async fn values_sealed_before_binding_are_bound_at_start_and_keep_working() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (signing, secret) = create_signing_key(&app, "Receiver").await;
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
    invite(&app, "Grace Hopper", "grace@example.com").await;
    rewrite_the_old_way(&app).await;
    assert!(sealed_secret(&app, &signing).await.starts_with("v1."));
    assert!(!sealed_secret(&app, &signing).await.starts_with("v1.b."));

    let restarted = restart(&app).await;
    assert_eq!(
        setting(&restarted, "sealed_values_bound").await.as_deref(),
        Some("1")
    );
    for name in ["master_key_check", "key_hash_key"] {
        let value = setting(&restarted, name).await.unwrap();
        assert!(value.starts_with("v1.b."), "{name}: {value}");
    }
    assert!(
        sealed_secret(&restarted, &signing)
            .await
            .starts_with("v1.b.")
    );
    let emails = sealed_emails(&restarted).await;
    assert_eq!(emails.len(), 1);
    assert!(emails[0].1.starts_with("v1.b.") && emails[0].2.starts_with("v1.b."));

    // Everything still opens: access keys (the hash key), the invitation, webhook signatures.
    assert!(restarted.authenticate(&key.id, &key.secret).await.is_ok());
    let (eml, link) = last_invitation(&restarted).await;
    assert!(eml.contains("grace@example.com"));
    let followed = restarted.get(&link).await;
    assert_eq!(followed.status, StatusCode::OK, "the invitation link works");
    let receiver = Receiver::start(vec![]).await;
    restarted.signed_in_again().await;
    add_endpoint(&restarted, &receiver.url(), &["key.created"], &signing).await;
    add_key(&restarted, "after the upgrade").await;
    assert_eq!(restarted.jobs.deliver_due().await.unwrap().delivered, 1);
    let got = receiver.wait_for(1).await;
    let header = got[0].header("keyward-signature").unwrap();
    assert!(verify_signature(&secret, header, &got[0].body).is_some());

    // A second start finds nothing left to bind and changes nothing.
    let before = sealed_secret(&restarted, &signing).await;
    let again = restart(&restarted).await;
    assert_eq!(sealed_secret(&again, &signing).await, before);
}

#[tokio::test]
async fn a_value_sealed_the_old_way_after_the_upgrade_is_refused_not_bound() {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (_, alpha_secret) = create_signing_key(&app, "Alpha").await;
    let (beta, _) = create_signing_key(&app, "Beta").await;
    add_endpoint(&app, &receiver.url(), &["key.created"], &beta).await;
    assert_eq!(
        setting(&app, "sealed_values_bound").await.as_deref(),
        Some("1"),
        "a new database is bound from the start"
    );

    // An old-style value (say, Alpha's from a backup taken before the upgrade) written into
    // Beta's row is not bound at the next start, where it would have become Beta's.
    let planted = seal_the_old_way(&app, SECRET_KEY_LABEL, &alpha_secret, true);
    set_sealed_secret(&app, &beta, &planted).await;
    let restarted = restart(&app).await;
    assert_eq!(sealed_secret(&restarted, &beta).await, planted);
    restarted.signed_in_again().await;
    add_key(&restarted, "billing export").await;
    let pass = restarted.jobs.deliver_due().await.unwrap();
    assert_eq!((pass.delivered, pass.failed), (0, 1));
    assert!(receiver.received().is_empty());
    let error: String = sqlx::query_scalar("SELECT last_error FROM webhook_deliveries")
        .fetch_one(&restarted.state.pool)
        .await
        .unwrap();
    assert!(error.contains("not bound to its row"), "{error}");
}

#[tokio::test]
async fn rotating_a_database_sealed_the_old_way_binds_every_value_under_the_new_key() {
    let app = spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (signing, secret) = create_signing_key(&app, "Receiver").await;
    invite(&app, "Grace Hopper", "grace@example.com").await;
    rewrite_the_old_way(&app).await;

    let new = keyward::auth::master_key::MasterKey::generate();
    let rotation = keyward::auth::vault::rotate(&app.state.pool, &app.state.master_key, &new)
        .await
        .unwrap();
    assert_eq!(
        (rotation.version, rotation.secret_keys, rotation.emails),
        (2, 1, 1)
    );
    assert!(sealed_secret(&app, &signing).await.starts_with("v2.b."));
    let emails = sealed_emails(&app).await;
    assert!(emails[0].1.starts_with("v2.b.") && emails[0].2.starts_with("v2.b."));

    let restarted = spawn_app_on_with(
        &app.database_url,
        &new.to_base64(),
        app.clock.clone(),
        |s| s.webhook_allow_private = true,
    )
    .await
    .expect("starts with the new key");
    let sealed = sealed_secret(&restarted, &signing).await;
    let opened = restarted
        .state
        .vault
        .open_sealed(Binding::signing_key(&signing), &sealed)
        .unwrap();
    assert_eq!(opened.expose_secret(), secret);
    let (eml, _) = last_invitation(&restarted).await;
    assert!(eml.contains("grace@example.com"));
}
