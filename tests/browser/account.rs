//! Account security in Chromium: a forgotten password from the sign-in page through the email
//! to signing in with the new one, then the sessions list on /account/security; each page at
//! 1280×800 and 390×844, checked for width and by axe-core, with a screenshot.

use reqwest::StatusCode;

use crate::common::{PASSWORD, USER_EMAIL, last_email, link_in, spawn_app};
use crate::driver::{Browser, axe_source};
use crate::flows::sign_in;
use crate::layout::{SIZES, check};

const NEW_PASSWORD: &str = "a brand new passphrase here";

#[tokio::test]
async fn a_forgotten_password_is_reset_by_email_and_the_sessions_are_listed() {
    let axe = axe_source();
    for (width, height, size) in SIZES {
        let app = spawn_app().await;
        app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
        let shot = |page: &str| format!("account-{size}-{page}");
        let b = Browser::start(width, height).await;

        b.goto(&format!("{}/login", app.address)).await;
        b.click("a[href='/forgot-password']").await;
        b.wait_for_path("/forgot-password").await;
        check(&b, &axe, &shot("forgot")).await;
        b.fill("#email", USER_EMAIL).await;
        b.click("form button[type=submit]").await;
        b.wait_for_path("/forgot-password?sent=1").await;
        assert!(
            b.text("[role=status]")
                .await
                .starts_with("If an account exists")
        );
        check(&b, &axe, &shot("forgot-sent")).await;

        let email = last_email(&app).await;
        let link = link_in(&email, "/reset-password?token=").expect("a reset link");
        b.goto(&format!("{}{link}", app.address)).await;
        check(&b, &axe, &shot("reset")).await;
        b.fill("#password", NEW_PASSWORD).await;
        b.fill("#confirm", NEW_PASSWORD).await;
        b.click("form button[type=submit]").await;
        b.wait_for_path("/login?reset=1").await;
        check(&b, &axe, &shot("signed-in-again")).await;

        // The same link a second time.
        b.goto(&format!("{}{link}", app.address)).await;
        assert_eq!(b.text("h1").await, "This link does not work");
        check(&b, &axe, &shot("link-used")).await;

        // Another device, then this browser: two sessions.
        let phone = app.other_client();
        let signed = phone.sign_in(USER_EMAIL, NEW_PASSWORD).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER);
        sign_in(&b, &app.address, USER_EMAIL, NEW_PASSWORD).await;
        b.wait_for_path("/my/keys").await;
        b.goto(&format!("{}/account/security", app.address)).await;
        b.wait_for_text_containing("tbody tr:first-child", "This device")
            .await;
        assert_eq!(b.find_all("tbody tr").await.len(), 2);
        check(&b, &axe, &shot("security")).await;
        b.click("form[action$='sign-out-others'] button").await;
        b.wait_for_text("[role=status]", "Signed out 1 other session.")
            .await;
        check(&b, &axe, &shot("security-signed-out")).await;
        assert_eq!(phone.get("/my/keys").await.status, StatusCode::SEE_OTHER);
        b.quit().await;
    }
}
