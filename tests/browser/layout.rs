//! The console at real sizes (issue 15): the main pages at 1280×800 and on a 390×844 phone, in
//! light and dark, are no wider than the window, their open dialog and menus stay inside it,
//! axe-core finds no serious or critical violation, and a screenshot of each is saved to look at.

use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, spawn_app, spawn_app_with};
use crate::driver::{Browser, Theme, axe_source};
use crate::flows::sign_in;

pub(crate) const SIZES: [(u32, u32, &str); 2] = [(1280, 800, "desktop"), (390, 844, "phone")];

/// A tenant with 40 keys (a full page and a second one), an audit trail and another user.
async fn busy_tenant() -> (TestApp, String) {
    // A budget of one refusal entry a second, so the audit log shows an entry that counts
    // refusals beside one of its own.
    let app = spawn_app_with(|s| s.refusal_audit_per_second = 1).await;
    app.signed_in_admin().await;
    let mut first = String::new();
    for i in 0..40 {
        let name = format!("service-account-{i:02}-billing-export-nightly");
        let shown = app
            .add_key(
                "/user-access/keys",
                &[("name", &name), ("key_type", "access"), ("validity", "90")],
            )
            .await;
        if i == 0 {
            first = shown.id;
        }
    }
    app.create_user("grace@example.com", "Grace Hopper", PASSWORD)
        .await;
    for _ in 0..3 {
        let wrong = keyward::domain::Secret::generate();
        assert!(app.authenticate(&first, wrong.expose()).await.is_err());
    }
    app.state.key_checker.flush_refusals().await;
    (app, first)
}

/// With JavaScript the page is checked for width and by axe-core (`check`); without it (axe is a
/// script) only a screenshot is taken, to look at.
pub(crate) async fn look(b: &Browser, axe: &str, javascript: bool, shot: &str) {
    if javascript {
        check(b, axe, shot).await;
    } else {
        b.screenshot(shot).await;
    }
}

/// Fails with the page's name when it scrolls sideways or axe-core finds a serious violation;
/// saves its screenshot.
pub(crate) async fn check(b: &Browser, axe: &str, shot: &str) {
    let overflow = b.overflow_x().await;
    assert!(
        overflow <= 0,
        "{shot}: the page is {overflow}px wider than the window"
    );
    let violations = b.axe_violations(axe).await;
    assert!(violations.is_empty(), "{shot}: {violations:#?}");
    b.screenshot(shot).await;
}

#[tokio::test]
async fn the_main_pages_fit_a_desktop_and_a_phone_in_light_and_dark() {
    let (app, key) = busy_tenant().await;
    let axe = axe_source();
    for (width, height, size) in SIZES {
        for theme in [Theme::Light, Theme::Dark] {
            let b = Browser::start_themed(width, height, theme).await;
            sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
            // Keys readers land on the overview.
            b.wait_for_path("/").await;
            let name = |page: &str| format!("layout-{size}-{}-{page}", theme.name());
            for (path, page) in [
                ("/user-access/keys".to_string(), "keys"),
                (format!("/user-access/keys/{key}"), "key-details"),
                ("/user-access/keys/new".to_string(), "add-key-page"),
                ("/configuration/api-access".to_string(), "api-access"),
                ("/audit".to_string(), "audit"),
                ("/user-access/users".to_string(), "users"),
                ("/my/keys".to_string(), "my-keys"),
                ("/mail".to_string(), "mail"),
            ] {
                b.goto(&format!("{}{path}", app.address)).await;
                check(&b, &axe, &name(page)).await;
            }

            // The row menu and the main menu open inside the window.
            b.goto(&format!("{}/user-access/keys", app.address)).await;
            let row_name = b.text("tbody tr:first-child td:first-child").await;
            b.click("tbody tr:first-child .row-menu summary").await;
            let outside = b.outside_viewport(".row-menu[open] .menu-panel").await;
            assert_eq!(outside, None, "{size}: the row menu leaves the window");
            assert_eq!(
                b.text(".row-menu[open] .menu-title").await,
                row_name.trim(),
                "{size}: the menu names its row"
            );
            b.screenshot(&name("row-menu")).await;
            b.click("tbody tr:first-child .row-menu summary").await;

            // The Add key dialog opens inside the window, and the secret page fits it.
            b.click(".toolbar a[data-dialog]").await;
            let outside = b.outside_viewport("dialog[open]").await;
            assert_eq!(
                outside, None,
                "{size}: the Add key dialog leaves the window"
            );
            b.screenshot(&name("add-key-dialog")).await;
            // Picking a date chooses "Custom date".
            let chosen = b
                .client
                .execute(
                    "const f = document.querySelector('dialog #custom-date');
                     f.value = '2027-08-01';
                     f.dispatchEvent(new Event('input', {bubbles: true}));
                     return f.form.querySelector('input[name=validity]:checked').value;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                chosen, "custom",
                "{size}: a picked date chooses Custom date"
            );
            b.fill("dialog #key-name", &format!("checked on a {size}"))
                .await;
            b.click("dialog button[type=submit]").await;
            b.wait_for_text("h1", "Key details").await;
            check(&b, &axe, &name("secret")).await;
            b.quit().await;
        }
    }
}

#[tokio::test]
async fn without_javascript_the_secret_page_shows_every_value_to_select_and_no_dead_button() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
        .await;
    let b = Browser::start_without_javascript(390, 844).await;
    sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    b.goto(&format!("{}/user-access/keys", app.address)).await;
    // Add key is a page of its own without the dialog.
    b.click(".toolbar a[data-dialog]").await;
    b.wait_for_path("/user-access/keys/new").await;
    b.fill("#key-name", "no-script deploy").await;
    b.click("main form button[type=submit]").await;
    b.wait_for_text("h1", "Key details").await;

    let b = &b;
    let value = |id: &'static str| async move {
        b.find(&format!("#{id}"))
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap()
    };
    let (key_id, secret, tenant) = (
        value("access-key").await,
        value("secret-key").await,
        value("tenant-id").await,
    );
    assert!(secret.starts_with("kws_"), "{secret}");
    assert_eq!(
        value("key-details").await,
        format!("key:{key_id}::{secret},tenant id: {tenant}")
    );
    for button in b.find_all("[data-copy-from]").await {
        assert!(
            !button.is_displayed().await.unwrap(),
            "a Copy button that does nothing is shown"
        );
    }
    assert!(b.overflow_x().await <= 0);
    b.screenshot("no-script-secret-phone").await;
}

/// The rest of the console, signed out and in: sign-in, a bad invitation link (a 4xx error
/// page), people's groups and roles, notifications, a webhook endpoint, the account page and
/// the confirmations, at both sizes in both themes.
#[tokio::test]
async fn the_other_pages_fit_a_desktop_and_a_phone_in_light_and_dark() {
    let (app, key) = busy_tenant().await;
    let grace_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind("grace@example.com")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let created = app
        .post(
            "/configuration/api-access/secret-keys",
            &[("name", "Billing receiver")],
        )
        .await;
    assert_eq!(created.status.as_u16(), 200);
    let signing: String = sqlx::query_scalar("SELECT id FROM secret_keys WHERE name = $1")
        .bind("Billing receiver")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let endpoint = app
        .post(
            "/configuration/api-access/webhooks",
            &[
                ("url", "https://hooks.example.com/keyward/billing/receiver"),
                ("signing_key_id", &signing),
                ("enabled", "1"),
                ("events", "key.created"),
            ],
        )
        .await;
    assert_eq!(endpoint.status.as_u16(), 303, "{}", endpoint.text("main"));
    let endpoint = endpoint.location();
    let axe = axe_source();
    for (width, height, size) in SIZES {
        for theme in [Theme::Light, Theme::Dark] {
            let b = Browser::start_themed(width, height, theme).await;
            let name = |page: &str| format!("layout-{size}-{}-{page}", theme.name());
            for (path, page) in [
                ("/login", "sign-in"),
                ("/invite?token=not-a-real-invitation", "bad-invitation"),
            ] {
                b.goto(&format!("{}{path}", app.address)).await;
                check(&b, &axe, &name(page)).await;
            }
            sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
            // Keys readers land on the overview.
            b.wait_for_path("/").await;
            for (path, page) in [
                ("/user-access/groups".to_string(), "groups"),
                (
                    "/user-access/groups/grp_administrators".to_string(),
                    "group",
                ),
                ("/user-access/roles".to_string(), "roles"),
                ("/user-access/roles/role_key_admin".to_string(), "role"),
                (format!("/user-access/users/{grace_id}"), "user"),
                (
                    format!("/user-access/users/{grace_id}/disable"),
                    "user-disable",
                ),
                (
                    format!("/user-access/keys/{key}/deactivate?return_to=list"),
                    "deactivate",
                ),
                (format!("/user-access/keys/{key}/delete"), "delete-key"),
                (format!("/user-access/keys/{key}/regenerate"), "regenerate"),
                ("/notifications".to_string(), "notifications"),
                (endpoint.clone(), "endpoint"),
                (
                    "/configuration/api-access/secret-keys/new".to_string(),
                    "add-signing-key",
                ),
                ("/account/password".to_string(), "account"),
                ("/user-access/keys?page=99".to_string(), "past-last-page"),
            ] {
                b.goto(&format!("{}{path}", app.address)).await;
                check(&b, &axe, &name(page)).await;
            }
            b.quit().await;
        }
    }
}
