use fantoccini::key::Key;
use reqwest::StatusCode;

use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, spawn_app_with};
use crate::driver::Browser;
use crate::flows::{admin_in_browser, sign_in};

const BRIDGE_ROW: &str = "tr#key-sk_bridge";

/// The value of an input field.
async fn value(b: &Browser, css: &str) -> String {
    b.find(css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// What `POST /api/v1/verify` answers the bridge presenting `client_id:secret`, asked about a
/// made-up key that does not exist.
async fn verify_as_bridge(app: &TestApp, client_id: &str, secret: &str) -> StatusCode {
    let made_up = format!(
        "{}::{}",
        keyward::domain::KeyId::generate(),
        keyward::domain::Secret::generate().expose()
    );
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/verify", app.address))
        .basic_auth(client_id, Some(secret))
        .json(&serde_json::json!({ "key": made_up }))
        .send()
        .await
        .expect("verify request");
    let status = res.status();
    if status == StatusCode::OK {
        let body: serde_json::Value = res.json().await.expect("a JSON answer");
        assert_eq!(body["valid"], false, "{body}");
        assert_eq!(body["code"], "NOT_FOUND", "{body}");
    }
    status
}

/// From the API Access page: the bridge row's menu, Generate Secret Key, the warning, OK.
/// Returns the value page's (secret, client ID, tenant ID).
async fn regenerate_bridge(b: &Browser, shots: bool) -> (String, String, String) {
    b.click(&format!("{BRIDGE_ROW} details.row-menu > summary"))
        .await;
    let item = b
        .find(&format!("{BRIDGE_ROW} details.row-menu[open] a.menu-item"))
        .await;
    assert!(item.is_displayed().await.unwrap(), "the menu opens");
    assert_eq!(item.text().await.unwrap(), "Generate Secret Key");
    if shots {
        b.screenshot("api-access-menu").await;
    }
    item.click().await.unwrap();

    b.wait_for_path("/configuration/api-access/secret-keys/sk_bridge/generate")
        .await;
    assert_eq!(b.text("h1").await, "Generate Secret Key");
    assert_eq!(b.text("[role=alertdialog] h2").await, "Warning");
    assert!(
        b.text("[role=alertdialog]")
            .await
            .contains("The new value is shown only once")
    );
    assert!(
        b.find("[role=alertdialog] a.button[href='/configuration/api-access']")
            .await
            .is_displayed()
            .await
            .unwrap(),
        "a Cancel link"
    );
    if shots {
        b.screenshot("generate-secret-key-warning").await;
    }
    let ok = b
        .find("[role=alertdialog] form button.button-primary[type=submit]")
        .await;
    assert_eq!(ok.text().await.unwrap(), "OK");
    ok.click().await.unwrap();

    // The value page answers the POST, so the path stays the form's action.
    b.wait_for_text_containing("p.lead", "secret key was generated for")
        .await;
    let secret = value(b, "#secret-value").await;
    let client_id = value(b, "#client-id").await;
    let tenant = value(b, "#tenant-id").await;
    assert!(
        secret.starts_with("kws_") && secret.len() == 50,
        "a well-formed secret: {secret:?}"
    );
    assert!(
        client_id.starts_with("BC"),
        "a bridge client ID: {client_id:?}"
    );
    (secret, client_id, tenant)
}

#[tokio::test]
async fn an_administrator_regenerates_the_bridge_key_and_the_old_secret_stops_at_once() {
    let (app, b) = admin_in_browser().await;

    // 1. The page, with the bridge key that exists from the first start, still without a secret.
    let page = format!("{}/configuration/api-access", app.address);
    b.goto(&page).await;
    assert_eq!(b.text("h1").await, "API Access");
    let row = b.text(BRIDGE_ROW).await;
    assert!(row.contains("Bridge key"), "{row}");
    assert!(row.contains("No secret yet"), "{row}");
    let listed_client_id = b.text(&format!("{BRIDGE_ROW} code")).await;
    assert!(listed_client_id.starts_with("BC"), "{listed_client_id}");
    assert_eq!(
        b.find(&format!("{BRIDGE_ROW} details.row-menu > summary"))
            .await
            .attr("aria-label")
            .await
            .unwrap()
            .as_deref(),
        Some("Actions for Bridge key")
    );
    b.screenshot("api-access-secret-keys").await;

    // 2-3. Menu, warning, OK, then the one-time value.
    let (secret, client_id, tenant) = regenerate_bridge(&b, true).await;
    assert_eq!(client_id, listed_client_id);
    assert_eq!(tenant, app.state.tenant_id);
    let steps = b.text(".steps ol").await;
    assert!(steps.contains("Bridge Client Secret"), "{steps}");
    b.click("button[data-copy-from=secret-value]").await;
    b.wait_for_text(".copy-status", "Copied to the clipboard.")
        .await;
    b.screenshot("generate-secret-key-value").await;
    assert_eq!(b.clipboard().await, secret);
    // The steps and the Done link sit below the fold at this window size.
    b.client
        .execute("window.scrollTo(0, document.body.scrollHeight);", vec![])
        .await
        .unwrap();
    b.screenshot("generate-secret-key-value-end").await;

    // 4. The bridge reaches the API with the new secret.
    assert_eq!(
        verify_as_bridge(&app, &client_id, &secret).await,
        StatusCode::OK
    );

    // 5. Done: the list never shows the value again, and the row has a secret now.
    b.click("a.button-primary[href='/configuration/api-access']")
        .await;
    b.wait_for_path("/configuration/api-access").await;
    let source = b.client.source().await.unwrap();
    assert!(!source.contains(&secret), "the secret is never shown again");
    let row = b.text(BRIDGE_ROW).await;
    assert!(!row.contains("No secret yet"), "{row}");
    let regenerated = b
        .find(&format!("{BRIDGE_ROW} td:nth-child(5) time"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!regenerated.is_empty(), "a Last regenerated time");
    b.screenshot("api-access-after-generate").await;

    // 6. Again: a different value, the old one refused at once, the new one accepted.
    let (fresh, fresh_client_id, _) = regenerate_bridge(&b, false).await;
    assert_ne!(fresh, secret);
    assert_eq!(fresh_client_id, client_id, "the client ID stays");
    assert_eq!(
        verify_as_bridge(&app, &client_id, &secret).await,
        StatusCode::UNAUTHORIZED,
        "the previous secret stops at once"
    );
    assert_eq!(
        verify_as_bridge(&app, &client_id, &fresh).await,
        StatusCode::OK
    );
    assert_eq!(
        verify_as_bridge(&app, &client_id, "kws_not-a-secret").await,
        StatusCode::UNAUTHORIZED
    );

    // 7. The row menu from the keyboard: its summary takes focus and Enter opens it.
    b.goto(&page).await;
    b.client
        .execute(
            "document.querySelector(arguments[0]).focus();",
            vec![serde_json::json!(format!(
                "{BRIDGE_ROW} details.row-menu > summary"
            ))],
        )
        .await
        .unwrap();
    let focused = b.focused().await;
    assert!(
        focused.starts_with("summary."),
        "the row menu takes focus: {focused}"
    );
    b.press(Key::Enter).await;
    assert!(
        b.find(&format!("{BRIDGE_ROW} details.row-menu[open] a.menu-item"))
            .await
            .is_displayed()
            .await
            .unwrap(),
        "Enter opens the row menu"
    );
    b.press(Key::Tab).await;
    let focused = b.focused().await;
    assert!(
        focused.contains("Generate Secret Key"),
        "Tab reaches the menu item: {focused}"
    );
    b.screenshot("api-access-menu-keyboard").await;
    b.quit().await;
}

#[tokio::test]
async fn an_administrator_adds_a_webhook_endpoint_and_reads_its_delivery_log() {
    use crate::common::receiver::{Receiver, Reply, verify_signature};
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    // The receiver is on loopback, which keyward refuses unless allowed.
    let app = spawn_app_with(|s| s.webhook_allow_private = true).await;
    app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
        .await;
    let b = Browser::start(1280, 900).await;
    sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
    // Let the sign-in's redirect land before leaving, or the session cookie may not be set.
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    b.goto(&format!("{}/configuration/api-access", app.address))
        .await;

    // A signing key first: its value is shown once.
    b.click("a[href='/configuration/api-access/secret-keys/new']")
        .await;
    b.fill("#name", "Billing receiver").await;
    b.screenshot("add-signing-key").await;
    b.click("form[action='/configuration/api-access/secret-keys'] button[type=submit]")
        .await;
    b.wait_for_text_containing("p.lead", "was created").await;
    let secret = value(&b, "#secret-value").await;
    b.click("a.button-primary").await;

    // Then the endpoint, with every event and the only signing key preselected.
    b.click("a[href='/configuration/api-access/webhooks/new']")
        .await;
    b.fill("#url", &receiver.url()).await;
    b.screenshot("add-webhook-endpoint").await;
    b.click("form[action='/configuration/api-access/webhooks'] button[type=submit]")
        .await;
    b.wait_for_text_containing("[role=status]", "The endpoint was added")
        .await;

    // A test event: the receiver answers 500 first, then 200 after the backoff.
    b.click("form[action$='/test'] button").await;
    b.wait_for_text_containing("[role=status]", "A test event")
        .await;
    app.jobs.deliver_due().await.unwrap();
    app.clock.advance(chrono::Duration::seconds(31));
    app.jobs.deliver_due().await.unwrap();
    let got = receiver.wait_for(2).await;
    assert!(
        verify_signature(
            &secret,
            got[1].header("keyward-signature").unwrap(),
            &got[1].body
        )
        .is_some()
    );
    let path = b.path().await;
    b.goto(&format!(
        "{}{}",
        app.address,
        path.split('?').next().unwrap()
    ))
    .await;
    let log = b.text(".delivery-log tbody").await;
    assert!(log.contains("200") && log.contains("500"), "{log}");
    assert!(b.text(".deliveries-table").await.contains("Delivered"));
    b.screenshot("webhook-endpoint").await;
    b.client
        .execute(
            "document.getElementById('deliveries-heading').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    b.screenshot("webhook-delivery-log").await;
    b.quit().await;
}
