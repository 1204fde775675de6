//! The Access keys tab's Download menu (inventory export, issue 17): present, inside the
//! window at both sizes and themes, with and without JavaScript, and its links carry the
//! list's current search and filters.

use crate::common::{ADMIN_EMAIL, PASSWORD, spawn_app};
use crate::driver::{Browser, Theme, axe_source};
use crate::flows::sign_in;
use crate::layout::SIZES;

const FILTERED: &str = "/user-access/keys?q=dep&status=active&type=access&sort=name";

async fn hrefs(b: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for a in b.find_all(".download-menu a").await {
        out.push(a.attr("href").await.unwrap().unwrap_or_default());
    }
    out
}

#[tokio::test]
async fn the_download_menu_offers_csv_and_json_of_the_filtered_list() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    for (name, key_type) in [
        ("deploy", "access"),
        ("deploy-api", "api"),
        ("billing", "access"),
    ] {
        app.add_key(
            "/user-access/keys",
            &[("name", name), ("key_type", key_type), ("validity", "90")],
        )
        .await;
    }
    let axe = axe_source();
    let expected = vec![
        "/user-access/keys/export?format=csv&q=dep&status=active&type=access".to_string(),
        "/user-access/keys/export?format=json&q=dep&status=active&type=access".to_string(),
    ];
    for (width, height, size) in SIZES {
        for theme in [Theme::Light, Theme::Dark] {
            let b = Browser::start_themed(width, height, theme).await;
            sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
            // Keys readers land on the overview.
            b.wait_for_path("/").await;
            b.goto(&format!("{}{FILTERED}", app.address)).await;
            assert_eq!(hrefs(&b).await, expected);
            b.click(".download-menu summary").await;
            assert!(
                b.find(".download-menu[open] a")
                    .await
                    .is_displayed()
                    .await
                    .unwrap(),
                "{size}: the menu opens"
            );
            assert_eq!(
                b.outside_viewport(".download-menu[open] .menu-panel").await,
                None,
                "{size}: the menu stays inside the window"
            );
            let menu = b.text(".download-menu").await;
            assert!(menu.contains("The 1 matching key"), "{menu}");
            let violations = b.axe_violations(&axe).await;
            assert!(
                violations.is_empty(),
                "{size} {}: {violations:#?}",
                theme.name()
            );
            b.screenshot(&format!("export-{size}-{}-download-menu", theme.name()))
                .await;
            b.quit().await;
        }
    }

    // Without JavaScript the menu is a plain <details> with plain links.
    let b = Browser::start_without_javascript(390, 844).await;
    sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    b.goto(&format!("{}{FILTERED}", app.address)).await;
    b.click(".download-menu summary").await;
    assert!(
        b.find(".download-menu[open] a")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    assert_eq!(hrefs(&b).await, expected);
    b.screenshot("export-phone-nojs-download-menu").await;
    b.quit().await;
}
