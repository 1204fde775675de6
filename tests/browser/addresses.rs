//! Last used addresses in Chromium (issue 17): key details lists the addresses a key was used
//! from; "Allow only these addresses" fills the allowed networks for review, and saving limits
//! the key to them. At 1280×800 with JavaScript and 390×844 without, light and dark, checked
//! for width and by axe-core where scripts run, with screenshots.

use keyward::service::key_auth::Attempt;

use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, spawn_app};
use crate::driver::{Browser, Theme, axe_source};
use crate::flows::sign_in;
use crate::layout::look;

/// Presents the key from `ip`, as a program there would.
async fn present(app: &TestApp, id: &str, secret: &str, ip: &str, agent: &str) {
    let ring = app.state.keyring();
    let attempt = Attempt {
        presented: keyward::auth::key_auth::from_pair(&format!("{id}::{secret}")),
        client_ip: ip,
        user_agent: agent,
        limit_client: true,
        needs_caller: None,
    };
    app.state
        .key_checker
        .check(&ring, attempt)
        .await
        .expect("the key is accepted");
}

#[tokio::test]
async fn key_details_lists_last_used_addresses_and_allows_only_them() {
    let axe = axe_source();
    for (width, height, size, theme, javascript) in [
        (1280, 800, "desktop", Theme::Light, true),
        (390, 844, "phone", Theme::Dark, true),
        (390, 844, "phone", Theme::Light, false),
    ] {
        let app = spawn_app().await;
        app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
            .await;
        let shot = |page: &str| format!("addresses-{size}-{}-{page}", theme.name());
        let b = Browser::start_with(width, height, theme, javascript).await;
        sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
        // Keys readers land on the overview.
        b.wait_for_path("/").await;
        b.goto(&format!("{}/user-access/keys/new", app.address))
            .await;
        b.fill("#key-name", "reporting").await;
        b.click("main form button[type=submit]").await;
        let id = b
            .find("#access-key")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        let secret = b
            .find("#secret-key")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        present(&app, &id, &secret, "203.0.113.7", "reporting-cron/2.1").await;
        present(&app, &id, &secret, "2001:db8::42", "curl/8.5.0").await;
        app.state.key_checker.flush_addresses().await;

        b.goto(&format!("{}/user-access/keys/{id}", app.address))
            .await;
        let rows = b.find_all("#addresses tbody tr").await;
        assert_eq!(rows.len(), 2);
        assert!(b.text("#addresses").await.contains("reporting-cron/2.1"));
        look(&b, &axe, javascript, &shot("details")).await;

        b.click("#allow-seen").await;
        b.find("#review-addresses").await;
        let networks = b
            .find("#allowed-networks")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert!(networks.contains("203.0.113.7") && networks.contains("2001:db8::42"));
        b.screenshot(&shot("review")).await;
        b.click("section[aria-labelledby=edit-heading] button[type=submit]")
            .await;
        b.wait_for_text("[role=status]", "Your changes were saved.")
            .await;
        let stored: String =
            sqlx::query_scalar("SELECT allowed_networks FROM access_keys WHERE id = $1")
                .bind(&id)
                .fetch_one(&app.state.pool)
                .await
                .unwrap();
        assert!(
            stored.contains("203.0.113.7") && stored.contains("2001:db8::42"),
            "{stored}"
        );
        b.quit().await;
    }
}
