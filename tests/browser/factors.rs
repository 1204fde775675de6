//! Second factors in a browser (issue 16): a person sets up an authenticator app by typing the
//! setup key the page shows, saves their recovery codes, and signs in again with a code; each
//! page fits a desktop and a phone, passes axe-core, and is saved as a screenshot.

use chrono::Duration;
use keyward::auth::totp::TotpSecret;

use crate::common::{PASSWORD, USER_EMAIL, UnixNow, spawn_app};
use crate::driver::{Browser, axe_source};
use crate::flows::sign_in;

/// Fails when the page scrolls sideways or axe-core finds a serious violation; saves a
/// screenshot.
async fn check(b: &Browser, axe: &str, shot: &str) {
    let overflow = b.overflow_x().await;
    assert!(overflow <= 0, "{shot}: {overflow}px wider than the window");
    let violations = b.axe_violations(axe).await;
    assert!(violations.is_empty(), "{shot}: {violations:#?}");
    b.screenshot(shot).await;
}

#[tokio::test]
async fn a_person_sets_up_an_app_and_signs_in_with_its_code() {
    let axe = axe_source();
    for (width, height, size) in [(1280, 800, "desktop"), (390, 844, "phone")] {
        let app = spawn_app().await;
        app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
        let b = Browser::start(width, height).await;
        sign_in(&b, &app.address, USER_EMAIL, PASSWORD).await;
        b.wait_for_path("/my/keys").await;
        b.goto(&format!("{}/account/security", app.address)).await;
        check(&b, &axe, &format!("factors-{size}-security")).await;
        b.click("#authenticator-app button[type=submit]").await;
        b.wait_for_path("/account/security/app").await;
        check(&b, &axe, &format!("factors-{size}-enrol")).await;
        let shown = b
            .find("#totp-secret")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default();
        let secret = TotpSecret::from_base32(&shown).expect("the setup key on the page");
        b.fill("#code", &secret.code_at(app.clock.unix_now())).await;
        b.click("form[action='/account/security/app/confirm'] button[type=submit]")
            .await;
        b.wait_for_text_containing("h1", "Your recovery codes")
            .await;
        assert_eq!(b.find_all("#codes li").await.len(), 10);
        check(&b, &axe, &format!("factors-{size}-recovery-codes")).await;
        b.quit().await;

        app.clock.advance(Duration::seconds(30));
        let b = Browser::start(width, height).await;
        sign_in(&b, &app.address, USER_EMAIL, PASSWORD).await;
        b.wait_for_path("/sign-in/verify").await;
        check(&b, &axe, &format!("factors-{size}-verify")).await;
        b.fill("#code", &secret.code_at(app.clock.unix_now())).await;
        b.click("form[action='/sign-in/verify'] button[type=submit]")
            .await;
        b.wait_for_path("/my/keys").await;
        b.quit().await;
    }
}
