//! Passkeys in Chromium with a virtual authenticator (WebDriver's WebAuthn extension): add one
//! on /account/security, sign out, sign in with the passkey alone, remove it; the section and
//! the sign-in page at 1280×800 and 390×844 with axe-core and the width check.
//!
//! WebAuthn needs a domain as relying party ID (an IP address is refused by the browser), so
//! these tests run the server with the public URL `http://localhost:<port>` and browse there.

use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, spawn_app_with};
use crate::driver::{Browser, axe_source};
use crate::flows::sign_in;

/// An app whose public URL (the relying party) is `http://localhost:<port>`, with the test
/// administrator; and the origin to browse.
async fn app_on_localhost() -> (TestApp, String) {
    let app = spawn_app_with(|s| s.public_url = "http://localhost:0".into()).await;
    app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
        .await;
    let origin = app.address.replace("127.0.0.1", "localhost");
    (app, origin)
}

/// Fails when the page scrolls sideways or axe-core finds a serious violation; saves a
/// screenshot.
async fn check(b: &Browser, axe: &str, shot: &str) {
    let overflow = b.overflow_x().await;
    assert!(overflow <= 0, "{shot}: {overflow}px wider than the window");
    let violations = b.axe_violations(axe).await;
    assert!(violations.is_empty(), "{shot}: {violations:#?}");
    b.screenshot(shot).await;
}

async fn sign_out(b: &Browser) {
    b.client
        .execute(
            "document.querySelector('form[action=\"/logout\"]').submit();",
            vec![],
        )
        .await
        .unwrap();
    b.wait_for_path("/login?signed_out=1").await;
}

/// Adds a passkey named `name` on the security page, as a person would.
async fn add_passkey(b: &Browser, origin: &str, name: &str) {
    b.goto(&format!("{origin}/account/security")).await;
    b.fill("#passkey-name", name).await;
    b.click("#passkey-add button[type=submit]").await;
    b.wait_for_text(
        ".alert-success",
        &format!("Added the passkey “{name}”. You can sign in with it."),
    )
    .await;
}

#[tokio::test]
async fn a_passkey_is_added_signs_in_alone_and_is_removed() {
    let (app, origin) = app_on_localhost().await;
    let axe = axe_source();
    let b = Browser::start(1280, 800).await;
    b.add_virtual_authenticator().await;
    sign_in(&b, &origin, ADMIN_EMAIL, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;

    add_passkey(&b, &origin, "Work laptop").await;
    assert_eq!(b.text("#passkeys tbody td.strong").await, "Work laptop");
    check(&b, &axe, "passkeys-desktop-security").await;

    sign_out(&b).await;
    let button = b.find("[data-passkey-sign-in] button").await;
    assert!(
        button.is_displayed().await.unwrap(),
        "the passkey button shows with JavaScript"
    );
    assert!(
        !b.find("[data-passkey-nojs]")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    check(&b, &axe, "passkeys-desktop-sign-in").await;
    b.click("[data-passkey-sign-in] button").await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;

    b.goto(&format!("{origin}/account/security")).await;
    let last_used = b.text("#passkeys tbody td:nth-child(3)").await;
    assert_ne!(last_used, "Never", "the sign-in is remembered");
    let remove = b
        .find("#passkeys a.menu-item.danger")
        .await
        .attr("href")
        .await
        .unwrap()
        .expect("a Remove link");
    b.goto(&format!("{origin}{remove}")).await;
    check(&b, &axe, "passkeys-desktop-remove").await;
    b.click("button.button-danger").await;
    b.wait_for_text(
        ".alert-success",
        "Removed the passkey “Work laptop”. It can no longer sign you in.",
    )
    .await;

    // The authenticator still holds the credential; keyward no longer accepts it.
    sign_out(&b).await;
    b.click("[data-passkey-sign-in] button").await;
    b.wait_for_text(
        "[data-passkey-error]",
        "That passkey could not sign you in. Try again, or sign in with your password.",
    )
    .await;
    assert_eq!(b.path().await, "/login?signed_out=1");
    b.quit().await;
    let audit = app
        .count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('passkey.added', 'passkey.removed')",
        )
        .await;
    assert_eq!(audit, 2);
}

#[tokio::test]
async fn the_passkey_pages_fit_a_phone() {
    let (_app, origin) = app_on_localhost().await;
    let axe = axe_source();
    let b = Browser::start(390, 844).await;
    b.add_virtual_authenticator().await;
    sign_in(&b, &origin, ADMIN_EMAIL, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    add_passkey(&b, &origin, "Phone").await;
    check(&b, &axe, "passkeys-phone-security").await;
    b.click("#passkeys summary").await;
    check(&b, &axe, "passkeys-phone-row-menu").await;
    sign_out(&b).await;
    check(&b, &axe, "passkeys-phone-sign-in").await;
    b.quit().await;
}

#[tokio::test]
async fn without_javascript_the_pages_say_passkeys_need_it() {
    let (_app, origin) = app_on_localhost().await;
    let b = Browser::start_without_javascript(1280, 800).await;
    b.goto(&format!("{origin}/login")).await;
    assert_eq!(
        b.text("[data-passkey-nojs]").await,
        "Signing in with a passkey needs JavaScript."
    );
    sign_in(&b, &origin, ADMIN_EMAIL, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    b.goto(&format!("{origin}/account/security")).await;
    assert_eq!(
        b.text("[data-passkey-nojs]").await,
        "Adding a passkey needs JavaScript: turn it on for this site to add one."
    );
    b.screenshot("passkeys-desktop-security-no-js").await;
    b.quit().await;
}
