//! A Read Only person in the browser (SPEC §7): the Access keys tab and the audit log open, at
//! desktop and phone sizes, without any control that changes something; a change is refused on
//! a page that keeps the frame. Each page is checked with axe-core.

use crate::common::{PASSWORD, TestApp, UnixNow, spawn_app};
use crate::driver::{Browser, axe_source};
use crate::flows::sign_in;

const READER: &str = "rita@example.com";

/// A tenant with a key and an audit trail, and a Read Only person (a group holding the role).
async fn tenant_with_a_reader() -> TestApp {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    for name in ["billing-export", "nightly-backup"] {
        app.add_key(
            "/user-access/keys",
            &[("name", name), ("key_type", "access"), ("validity", "90")],
        )
        .await;
    }
    let id = app.create_user(READER, "Rita Reader", PASSWORD).await;
    let now = app.clock.unix_now();
    let mut conn = app.state.pool.acquire().await.unwrap();
    sqlx::query(
        "INSERT INTO user_groups (id, name, description, builtin, created_at) \
         VALUES ('grp_auditors', 'Auditors', '', 0, $1)",
    )
    .bind(now)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO group_roles (group_id, role_id) VALUES ('grp_auditors', 'role_read_only')",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    app.add_to_group("grp_auditors", &id).await;
    app
}

/// What a reader must never be offered on a page.
const CHANGE_CONTROLS: &str = "a[href$='/new'], #add-key-dialog, a[href$='/regenerate'], \
     a[href$='/delete'], a[href*='/deactivate'], form[action$='/deactivate'], form[action$='/activate'], \
     form[action$='/unlock'], form[action$='/retry'], main button.button-primary";

/// Checks the current page: no change controls, no axe violations.
async fn check_page(b: &Browser, axe: &str, name: &str) {
    assert!(
        b.find_all(CHANGE_CONTROLS).await.is_empty(),
        "{name}: a control that changes something is offered"
    );
    let violations = b.axe_violations(axe).await;
    assert!(violations.is_empty(), "{name}: {violations:#?}");
}

#[tokio::test]
async fn a_read_only_person_reads_keys_and_the_audit_log_without_change_controls() {
    let app = tenant_with_a_reader().await;
    let axe = axe_source();
    for (width, height, size) in [(1280, 800, "desktop"), (390, 844, "phone")] {
        let b = Browser::start(width, height).await;
        sign_in(&b, &app.address, READER, PASSWORD).await;
        // Keys readers land on the overview.
        b.wait_for_path("/").await;
        b.goto(&format!("{}/user-access/keys", app.address)).await;
        assert_eq!(b.text("h1").await, "Users and keys");
        assert!(b.text("tbody").await.contains("billing-export"));
        check_page(&b, &axe, &format!("keys, {size}")).await;
        b.screenshot(&format!("read-only-keys-{size}")).await;

        // The row's menu offers only what reads.
        b.click("tbody .row-menu summary").await;
        let items = b.find_all("tbody .row-menu[open] .menu-item").await;
        let mut labels = Vec::new();
        for item in items {
            labels.push(item.text().await.unwrap());
        }
        assert_eq!(labels, ["Key details", "View permissions"], "{size}");
        b.screenshot(&format!("read-only-key-actions-{size}")).await;

        b.goto(&format!("{}/audit", app.address)).await;
        assert_eq!(b.text("h1").await, "Audit log");
        assert!(b.text("tbody").await.contains("key.created"));
        check_page(&b, &axe, &format!("audit, {size}")).await;
        b.screenshot(&format!("read-only-audit-{size}")).await;
        b.quit().await;
    }
}

#[tokio::test]
async fn a_read_only_person_asking_to_add_a_key_is_told_which_permission_is_missing() {
    let app = tenant_with_a_reader().await;
    let axe = axe_source();
    let b = Browser::start(1280, 800).await;
    sign_in(&b, &app.address, READER, PASSWORD).await;
    // Keys readers land on the overview.
    b.wait_for_path("/").await;
    b.goto(&format!("{}/user-access/keys/new", app.address))
        .await;
    assert_eq!(b.text("h1").await, "You do not have access to this page");
    assert!(
        b.text(".missing-permission")
            .await
            .starts_with("You need the keys:write permission to")
    );
    b.screenshot("read-only-forbidden").await;
    // The frame stays: the menu opens and leads back.
    b.click(".nav-menu summary").await;
    b.screenshot("read-only-forbidden-menu").await;
    b.click(".nav-menu a[href='/audit']").await;
    b.wait_for_path("/audit").await;
    b.goto(&format!("{}/user-access/keys/new", app.address))
        .await;
    let violations = b.axe_violations(&axe).await;
    assert!(violations.is_empty(), "{violations:#?}");
    b.quit().await;
}
