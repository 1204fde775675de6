//! Step-up in Chromium (issue 16): ten minutes after signing in, adding a key asks "Confirm it's
//! you"; a wrong password is said next to the field; the right one creates the key with the name
//! typed before. With and without JavaScript, at 1280×800 and 390×844, light and dark; the
//! Account security page and the confirmation are checked for width and by axe-core, with
//! screenshots.

use chrono::Duration;

use crate::common::{PASSWORD, USER_EMAIL, spawn_app};
use crate::driver::{Browser, Theme, axe_source};
use crate::flows::sign_in;
use crate::layout::look;

#[tokio::test]
async fn adding_a_key_after_ten_minutes_asks_to_confirm_and_keeps_the_name() {
    let axe = axe_source();
    for (width, height, size, theme, javascript) in [
        (1280, 800, "desktop", Theme::Light, false),
        (390, 844, "phone", Theme::Dark, true),
        (1280, 800, "desktop", Theme::Dark, true),
        (390, 844, "phone", Theme::Light, false),
    ] {
        let app = spawn_app().await;
        app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
        let shot = |page: &str| format!("step-up-{size}-{}-{page}", theme.name());
        let b = Browser::start_with(width, height, theme, javascript).await;
        sign_in(&b, &app.address, USER_EMAIL, PASSWORD).await;
        b.wait_for_path("/my/keys").await;
        b.goto(&format!("{}/account/security", app.address)).await;
        look(&b, &axe, javascript, &shot("security")).await;

        app.clock.advance(Duration::minutes(11));
        b.goto(&format!("{}/my/keys/new", app.address)).await;
        b.fill("#key-name", "deploy bot").await;
        b.click("main form button[type=submit]").await;
        b.wait_for_text("h1", "Confirm it's you").await;
        assert!(b.text("main").await.contains("To create a personal key"));
        look(&b, &axe, javascript, &shot("confirm")).await;

        b.fill("#step_up", "not the password").await;
        b.click("main form button[type=submit]").await;
        b.wait_for_text_containing("[role=alert]", "password is not correct")
            .await;
        look(&b, &axe, javascript, &shot("wrong")).await;

        b.fill("#step_up", PASSWORD).await;
        b.click("main form button[type=submit]").await;
        b.find("#secret-key").await;
        assert!(
            b.text("main").await.contains("deploy bot"),
            "the key has the name typed before the confirmation"
        );
        b.quit().await;
    }
}
