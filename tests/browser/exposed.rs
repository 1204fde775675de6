//! Report an exposed secret in Chromium (issue 17): from the Access keys tab to the page, a
//! pasted secret shows its key with Generate new secret and Deactivate; an unknown secret gets a
//! message next to the field and is not shown again. At 1280×800 and 390×844, light and dark,
//! checked for width and by axe-core, with screenshots.

use crate::common::{ADMIN_EMAIL, PASSWORD, spawn_app};
use crate::driver::{Browser, Theme, axe_source};
use crate::flows::sign_in;
use crate::layout::check;

#[tokio::test]
async fn a_pasted_secret_shows_its_key_and_an_unknown_one_a_message() {
    let axe = axe_source();
    for (width, height, size, theme) in [
        (1280, 800, "desktop", Theme::Light),
        (390, 844, "phone", Theme::Dark),
        (1280, 800, "desktop", Theme::Dark),
        (390, 844, "phone", Theme::Light),
    ] {
        let app = spawn_app().await;
        app.signed_in_admin().await;
        let key = app
            .add_key(
                "/user-access/keys",
                &[
                    ("name", "payments-export-nightly"),
                    ("key_type", "access"),
                    ("validity", "90"),
                    ("custom_date", ""),
                ],
            )
            .await;
        let shot = |page: &str| format!("exposed-{size}-{}-{page}", theme.name());
        let b = Browser::start_themed(width, height, theme).await;
        sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
        // Keys readers land on the overview.
        b.wait_for_path("/").await;
        b.goto(&format!("{}/user-access/keys/exposed", app.address))
            .await;
        assert_eq!(b.text("h1").await, "Report an exposed secret");
        check(&b, &axe, &shot("form")).await;

        b.fill("#secret", &key.secret).await;
        b.click("form[action$='/exposed'] button[type=submit]")
            .await;
        b.wait_for_text_containing("#found h2", "payments-export-nightly")
            .await;
        let found = b.text("#found").await;
        assert!(found.contains(&key.id));
        assert!(found.contains("current secret"));
        b.find("#found form[action$='/regenerate'] button").await;
        b.find("#found form[action$='/deactivate'] button").await;
        assert!(
            !b.text("main").await.contains(&key.secret[4..]),
            "the secret is not shown"
        );
        check(&b, &axe, &shot("found")).await;

        b.fill("#secret", keyward::domain::Secret::generate().expose())
            .await;
        b.click("form[action$='/exposed'] button[type=submit]")
            .await;
        b.wait_for_text_containing("#secret-error", "No access key has this secret")
            .await;
        check(&b, &axe, &shot("unknown")).await;
        b.quit().await;
    }
}
