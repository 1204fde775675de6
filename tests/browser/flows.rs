use fantoccini::key::Key;

use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, USER_EMAIL, spawn_app};
use crate::driver::Browser;

pub async fn sign_in(b: &Browser, address: &str, email: &str, password: &str) {
    b.goto(&format!("{address}/login")).await;
    b.fill("#email", email).await;
    b.fill("#password", password).await;
    b.click("form button[type=submit]").await;
}

/// A fresh app with the test administrator signed in through the form in a new browser, on
/// the Access keys tab.
pub async fn admin_in_browser() -> (TestApp, Browser) {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
        .await;
    let b = Browser::start(1280, 900).await;
    sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    b.goto(&format!("{}/user-access/keys", app.address)).await;
    (app, b)
}

#[tokio::test]
async fn first_run_setup_then_sign_out_and_sign_in_again() {
    let app = spawn_app().await;
    let b = Browser::start(1280, 900).await;
    b.goto(app.setup_url.as_deref().unwrap()).await;
    assert_eq!(b.text("h1").await, "Create the first administrator");
    b.screenshot("setup").await;

    // A mistake first: the form comes back with the message next to the field.
    b.fill("#name", "Ada Lovelace").await;
    b.fill("#email", ADMIN_EMAIL).await;
    b.fill("#password", "too short").await;
    b.fill("#confirm", "too short").await;
    b.click("form button[type=submit]").await;
    assert!(b.text("#password-error").await.contains("12 characters"));
    assert_eq!(
        b.find("#email")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(ADMIN_EMAIL)
    );
    b.screenshot("setup-error").await;

    b.fill("#password", PASSWORD).await;
    b.fill("#confirm", PASSWORD).await;
    b.click("form button[type=submit]").await;
    b.wait_for_path("/user-access/keys").await;
    assert_eq!(b.text("h1").await, "Users and keys");
    assert_eq!(b.text(".tabs [aria-current=page]").await, "Access keys");
    assert!(
        b.text(".empty-state h3")
            .await
            .starts_with("No access keys yet")
    );
    b.screenshot("access-keys").await;

    // Sign out from the user menu.
    b.click(".user-menu summary").await;
    b.screenshot("user-menu").await;
    b.click(".user-menu button[type=submit]").await;
    b.wait_for_path("/login?signed_out=1").await;
    assert_eq!(b.text("[role=status]").await, "You have signed out.");

    // A wrong password, then the right one.
    sign_in(&b, &app.address, ADMIN_EMAIL, "not my password at all").await;
    assert_eq!(
        b.text("[role=alert]").await,
        "Email or password is incorrect."
    );
    b.screenshot("login-error").await;
    sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    // The sign-in page sends a signed-in administrator on to the console.
    b.goto(&format!("{}/login", app.address)).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    b.quit().await;
}

#[tokio::test]
async fn each_top_bar_link_opens_its_page() {
    let (app, b) = admin_in_browser().await;

    let menu_links = [
        (
            "API Access",
            "/configuration/api-access",
            "API Access",
            "api-access",
        ),
        (
            "Users and keys",
            "/user-access/keys",
            "Users and keys",
            "users-and-keys",
        ),
        ("Audit log", "/audit", "Audit log", "audit"),
        ("Mail log", "/mail", "Mail log", "mail"),
        ("My access keys", "/my/keys", "My access keys", "my-keys"),
    ];
    for (label, path, title, shot) in menu_links {
        b.click(".nav-menu summary").await;
        if shot == "api-access" {
            b.screenshot("main-menu").await;
        }
        let link = b.find(&format!(".nav-menu a[href='{path}']")).await;
        assert_eq!(link.text().await.unwrap(), label);
        link.click().await.unwrap();
        b.wait_for_path(path).await;
        assert_eq!(b.text("h1").await, title, "{path}");
        b.screenshot(shot).await;
    }

    for (tab, path) in [
        ("Users", "/user-access/users"),
        ("Groups", "/user-access/groups"),
        ("Roles", "/user-access/roles"),
    ] {
        b.goto(&format!("{}/user-access/keys", app.address)).await;
        b.click(&format!(".tabs a[href='{path}']")).await;
        b.wait_for_path(path).await;
        assert_eq!(b.text(".tabs [aria-current=page]").await, tab);
        b.screenshot(&tab.to_lowercase()).await;
    }

    b.click("a.bell").await;
    b.wait_for_path("/notifications").await;
    assert_eq!(b.text("h1").await, "Notifications");
    b.screenshot("notifications").await;

    b.click(".user-menu summary").await;
    b.click(".user-menu a[href='/account/password']").await;
    b.wait_for_path("/account/password").await;
    assert_eq!(b.text("h1").await, "Change password");
    b.screenshot("change-password").await;

    b.click(".user-menu summary").await;
    b.click(".user-menu a[href='/my/keys']").await;
    b.wait_for_path("/my/keys").await;
    b.quit().await;
}

#[tokio::test]
async fn the_console_works_from_the_keyboard() {
    let (_app, b) = admin_in_browser().await;

    b.find("body")
        .await
        .send_keys(&Key::Tab.to_string())
        .await
        .unwrap();
    assert!(
        b.focused().await.contains("skip-link"),
        "the first Tab reaches 'Skip to content'"
    );
    b.press(Key::Tab).await;
    assert!(
        b.focused().await.starts_with("summary.icon-button"),
        "then the main menu: {}",
        b.focused().await
    );
    b.press(Key::Enter).await;
    assert!(
        b.find(".nav-menu[open]")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    b.press(Key::Tab).await;
    assert!(
        b.focused().await.contains("API Access"),
        "{}",
        b.focused().await
    );
    b.screenshot("keyboard-menu").await;
    b.press(Key::Escape).await;
    assert!(
        b.find_all(".nav-menu[open]").await.is_empty(),
        "Escape closes the menu"
    );
    b.quit().await;
}

#[tokio::test]
async fn a_user_sees_a_phone_sized_console_and_is_refused_admin_pages() {
    let app = spawn_app().await;
    app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    let b = Browser::start(390, 844).await;
    sign_in(&b, &app.address, USER_EMAIL, PASSWORD).await;
    b.wait_for_path("/my/keys").await;
    assert_eq!(b.text("h1").await, "My access keys");
    let width: i64 = b
        .client
        .execute("return document.documentElement.scrollWidth", vec![])
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(
        width <= 390,
        "no horizontal scrolling on a phone: {width}px"
    );
    b.screenshot("phone-my-keys").await;
    b.click(".nav-menu summary").await;
    b.screenshot("phone-menu").await;

    b.goto(&format!("{}/user-access/keys", app.address)).await;
    assert_eq!(b.text("h1").await, "You do not have access to this page");
    b.screenshot("forbidden").await;
    b.quit().await;
}
