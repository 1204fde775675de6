//! Usage pictures (issue 18) at real sizes: the overview at `/` and a key's "Usage, last 30
//! days" chart, at 1280×800 and 390×844, light and dark, with JavaScript (width and axe-core)
//! and without it (a screenshot), the chart no wider than its card and its table one click
//! away.

use chrono::Duration;
use reqwest::{Method, StatusCode};

use crate::common::rest::{Key, call, tenant_key};
use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, spawn_app};
use crate::driver::{Browser, Theme, axe_source};
use crate::flows::sign_in;
use crate::layout::{SIZES, look};

async fn present(app: &TestApp, key: &Key, auth: &str, times: usize) {
    for _ in 0..times {
        let (status, _, _) = call(
            app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(auth),
            None,
        )
        .await;
        assert!(
            status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
            "{}: {status}",
            key.id
        );
    }
}

/// A tenant whose "billing export" key was used every day for a month, with wrong secrets on
/// some days, beside other keys used less.
async fn used_tenant() -> (TestApp, String) {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let busy = tenant_key(&app, "billing export nightly", "access", &[]).await;
    let other = tenant_key(&app, "warehouse sync", "access", &[]).await;
    tenant_key(&app, "never used", "access", &[]).await;
    for day in 0..30usize {
        present(&app, &busy, &busy.basic(), 3 + (day * 7) % 11).await;
        if day % 6 == 2 {
            present(&app, &busy, &busy.with_secret(&other.secret), 1 + day % 3).await;
        }
        if day % 4 == 0 {
            present(&app, &other, &other.basic(), 2).await;
        }
        app.state.key_checker.flush_usage().await;
        app.clock.advance(Duration::days(1));
    }
    (app, busy.id)
}

#[tokio::test]
async fn the_overview_and_the_usage_chart_read_well_at_both_sizes_and_themes() {
    let (app, key) = used_tenant().await;
    let axe = axe_source();
    for (width, height, size) in SIZES {
        for theme in [Theme::Light, Theme::Dark] {
            for javascript in [true, false] {
                let b = Browser::start_with(width, height, theme, javascript).await;
                sign_in(&b, &app.address, ADMIN_EMAIL, PASSWORD).await;
                b.wait_for_path("/").await;
                let js = if javascript { "js" } else { "nojs" };
                let name = |page: &str| format!("usage-{size}-{}-{js}-{page}", theme.name());
                assert_eq!(b.text("h1").await, "Overview");
                look(&b, &axe, javascript, &name("overview")).await;

                b.goto(&format!("{}/user-access/keys/{key}", app.address))
                    .await;
                let chart = b.find("#usage svg").await;
                let label = chart.attr("aria-label").await.unwrap().unwrap();
                assert!(label.contains("accepted"), "{label}");
                // The chart stays inside its card at every width.
                let inside = b
                    .client
                    .execute(
                        "const svg = document.querySelector('#usage svg').getBoundingClientRect();
                         const card = document.querySelector('#usage').getBoundingClientRect();
                         return svg.width > 200 && svg.left >= card.left && svg.right <= card.right;",
                        vec![],
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    inside,
                    serde_json::json!(true),
                    "{size}: the chart fits its card"
                );
                b.client
                    .execute(
                        "window.scrollTo(0, document.querySelector('#usage').getBoundingClientRect().top + window.scrollY - 64)",
                        vec![],
                    )
                    .await
                    .unwrap();
                look(&b, &axe, javascript, &name("chart")).await;
                b.click("#usage details summary").await;
                assert!(
                    b.find("#usage details[open] table")
                        .await
                        .is_displayed()
                        .await
                        .unwrap(),
                    "{size}: Show as table opens the table"
                );
                look(&b, &axe, javascript, &name("chart-table")).await;
                b.quit().await;
            }
        }
    }
}
