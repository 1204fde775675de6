use reqwest::StatusCode;

use crate::common::{ADMIN_EMAIL, PASSWORD, spawn_app};

#[tokio::test]
async fn the_audit_log_lists_sign_ins_and_filters_them() {
    let app = spawn_app().await;
    app.create_user("grace@example.com", "Grace", PASSWORD)
        .await;
    let grace = app.other_client();
    grace
        .sign_in("grace@example.com", "wrong password for grace")
        .await;
    app.signed_in_admin().await;

    let page = app.get("/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows = page.texts("table.data-table tbody tr");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows[0].contains(ADMIN_EMAIL) && rows[0].contains("sign_in") && rows[0].contains("Success")
    );
    assert!(rows[1].contains("user.admin_created"));
    assert!(
        rows[2].contains("grace@example.com")
            && rows[2].contains("Failure")
            && rows[2].contains("wrong password")
    );
    assert!(rows[0].contains("2026-11-23 10:00 UTC"));
    assert!(rows[0].contains("127.0.0.1"));

    let filtered = app.get("/audit?actor=grace").await;
    let rows = filtered.texts("table.data-table tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains("grace@example.com"));
    assert_eq!(filtered.attr("#actor", "value").as_deref(), Some("grace"));

    let by_action = app.get("/audit?action=user.").await;
    assert_eq!(by_action.texts("table.data-table tbody tr").len(), 1);

    let later = app.get("/audit?from=2026-11-24").await;
    assert!(later.texts("table.data-table tbody tr").is_empty());
    assert_eq!(later.text(".empty-state h3"), "No entries match");
}

#[tokio::test]
async fn an_impossible_date_is_explained_next_to_the_field() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app.get("/audit?from=2026-02-30").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.text("#date-error").contains("is not a date"));

    // A range that ends before it starts is said to be one, not answered with nothing.
    let page = app.get("/audit?from=2026-12-01&to=2026-11-01").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text("#date-error")
            .contains("The From date is after the To date")
    );
    assert_eq!(page.attr("#from", "value").as_deref(), Some("2026-12-01"));
}

#[tokio::test]
async fn the_audit_log_pages_by_fifty() {
    let app = spawn_app().await;
    for i in 0..60 {
        let other = app.other_client();
        other
            .sign_in(&format!("nobody{i}@example.com"), "wrong password")
            .await;
        if i % 15 == 14 {
            // Keep under the per-client throttle.
            app.clock.advance(chrono::Duration::minutes(16));
        }
    }
    app.signed_in_admin().await;
    let first = app.get("/audit").await;
    assert_eq!(first.texts("table.data-table tbody tr").len(), 50);
    let older = first
        .attr(".pager a", "href")
        .expect("a link to older entries");
    let second = app.get(&older).await;
    let rows = second.texts("table.data-table tbody tr");
    // 60 failures, the administrator's creation and sign-in: 62 entries.
    assert_eq!(rows.len(), 12);
    assert!(second.attr(".pager a", "href").is_none());
}
