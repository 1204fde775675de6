//! The key policy in Chromium (issue 17): the Key policy page with a limit and inactivity set,
//! the Access keys tab filtered to keys out of policy, a key's explanation, and bringing two
//! keys into policy through the summary. With and without JavaScript, at 1280×800 and 390×844,
//! light and dark; checked for width and by axe-core where scripts run, with screenshots.

use crate::common::{ADMIN_EMAIL, PASSWORD, spawn_app};
use crate::driver::{Browser, Theme, axe_source};
use crate::flows::sign_in;
use crate::layout::look;

#[tokio::test]
async fn a_stricter_policy_marks_old_keys_and_brings_them_into_policy() {
    let axe = axe_source();
    for (width, height, size, theme, javascript) in [
        (1280, 800, "desktop", Theme::Light, true),
        (390, 844, "phone", Theme::Dark, true),
        (1280, 800, "desktop", Theme::Dark, false),
        (390, 844, "phone", Theme::Light, false),
    ] {
        let app = spawn_app().await;
        app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
            .await;
        let shot = |page: &str| format!("key-policy-{size}-{}-{page}", theme.name());
        let b = Browser::start_with(width, height, theme, javascript).await;
        sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
        // Keys readers land on the overview.
        b.wait_for_path("/").await;
        for (name, validity) in [("legacy sync", "never"), ("yearly report", "365")] {
            b.goto(&format!("{}/user-access/keys/new", app.address))
                .await;
            b.fill("#key-name", name).await;
            b.click(&format!("input[name=validity][value=\"{validity}\"]"))
                .await;
            b.click("main form button[type=submit]").await;
            b.find("#secret-key").await;
        }

        b.goto(&format!("{}/configuration/key-policy", app.address))
            .await;
        assert_eq!(b.text("h1").await, "Key policy");
        b.fill("#max_days_access", "90").await;
        b.fill("#inactive_days", "45").await;
        b.click("input[name=replaced_secret][value=lock]").await;
        look(&b, &axe, javascript, &shot("form")).await;
        b.click("main form button[type=submit]").await;
        b.wait_for_text("[role=status]", "The key policy was saved.")
            .await;
        assert!(
            b.text("#out-of-policy-summary")
                .await
                .starts_with("2 keys are out of this policy")
        );
        look(&b, &axe, javascript, &shot("saved")).await;

        b.click("#out-of-policy-summary a").await;
        b.wait_for_path("/user-access/keys?status=out_of_policy")
            .await;
        assert_eq!(b.find_all(".keys-table tbody tr").await.len(), 2);
        look(&b, &axe, javascript, &shot("list")).await;

        b.click(".keys-table tbody tr td.strong a").await;
        b.find("#out-of-policy").await;
        assert!(b.text("#out-of-policy").await.contains("the key policy"));
        look(&b, &axe, javascript, &shot("details")).await;

        b.goto(&format!(
            "{}/user-access/keys?status=out_of_policy",
            app.address
        ))
        .await;
        for checkbox in b.find_all("input[name=ids]").await {
            checkbox.click().await.unwrap();
        }
        b.click("#conform-form button[type=submit]").await;
        b.find("#conform-table").await;
        assert_eq!(b.find_all("#conform-table tbody tr").await.len(), 2);
        look(&b, &axe, javascript, &shot("summary")).await;
        b.click("main form button[type=submit]").await;
        b.wait_for_text("[role=status]", "Brought 2 keys into policy.")
            .await;
        assert_eq!(b.text(".empty-state h3").await, "No keys are out of policy");
        look(&b, &axe, javascript, &shot("done")).await;
        b.quit().await;
    }
}
