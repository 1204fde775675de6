//! Per-key rate limits in Chromium (issue 18): the Add key form with a limit typed (and a bad
//! burst first), the new key's details showing it, and its form to change it. At 1280×800 and
//! 390×844, light and dark, with and without JavaScript; checked for width and by axe-core
//! where scripts run, with screenshots.

use crate::common::{ADMIN_EMAIL, PASSWORD, spawn_app};
use crate::driver::{Browser, Theme, axe_source};
use crate::flows::sign_in;
use crate::layout::look;

#[tokio::test]
async fn an_administrator_gives_a_key_a_rate_limit() {
    let axe = axe_source();
    for (width, height, size, theme, javascript) in [
        (1280, 800, "desktop", Theme::Light, true),
        (390, 844, "phone", Theme::Dark, true),
        (390, 844, "phone", Theme::Light, false),
    ] {
        let app = spawn_app().await;
        app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
            .await;
        let shot = |page: &str| format!("rate-limits-{size}-{}-{page}", theme.name());
        let b = Browser::start_with(width, height, theme, javascript).await;
        sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
        b.wait_for_path("/").await;
        b.goto(&format!("{}/user-access/keys/new", app.address))
            .await;
        b.fill("#key-name", "metered export").await;
        b.fill("#rate-per-second", "2.5").await;
        b.fill("#rate-burst", "0").await;
        b.click("main form button[type=submit]").await;
        assert_eq!(
            b.text("#rate-burst-error").await,
            "Burst must be a whole number from 1 to 1,000,000."
        );
        look(&b, &axe, javascript, &shot("add-error")).await;
        b.fill("#rate-burst", "10").await;
        look(&b, &axe, javascript, &shot("add")).await;
        b.click("main form button[type=submit]").await;
        b.find("#secret-key").await;

        b.goto(&format!("{}/user-access/keys", app.address)).await;
        b.click(".keys-table tbody tr td.strong a").await;
        b.find("#rate-per-second").await;
        assert!(
            b.text("main")
                .await
                .contains("2.5 requests per second, burst 10")
        );
        look(&b, &axe, javascript, &shot("details")).await;
        b.quit().await;
    }
}
