use reqwest::StatusCode;

use crate::common::spawn_app;

const ADMIN_PAGES: [&str; 7] = [
    "/user-access/users",
    "/user-access/keys",
    "/user-access/groups",
    "/user-access/roles",
    "/configuration/api-access",
    "/audit",
    "/mail",
];
/// The permission each of `ADMIN_PAGES` needs (SPEC §7).
const NEEDS: [&str; 7] = [
    "users:read",
    "keys:read",
    "users:read",
    "users:read",
    "config:write",
    "audit:read",
    "audit:read",
];
const USER_PAGES: [&str; 3] = ["/my/keys", "/notifications", "/account/password"];

#[tokio::test]
async fn anonymous_visitors_are_sent_to_sign_in() {
    let app = spawn_app().await;
    for path in ADMIN_PAGES.iter().chain(USER_PAGES.iter()) {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location().starts_with("/login?next=%2F"),
            "{path}: {}",
            page.location()
        );
    }
    assert_eq!(app.get("/").await.location(), "/login");
}

#[tokio::test]
async fn a_user_without_roles_is_refused_the_tenant_pages_naming_the_permission() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    for (path, permission) in ADMIN_PAGES.into_iter().zip(NEEDS) {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            page.text("h1"),
            "You do not have access to this page",
            "{path}"
        );
        assert!(
            page.text(".missing-permission")
                .starts_with(&format!("You need the {permission} permission")),
            "{path}: {}",
            page.text(".missing-permission")
        );
        assert_eq!(page.text(".user-menu .user-name"), "Grace Hopper", "{path}");
    }
    for path in USER_PAGES {
        assert_eq!(app.get(path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(app.get("/").await.location(), "/my/keys");
}

#[tokio::test]
async fn an_administrator_sees_every_page() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    for path in ADMIN_PAGES.iter().chain(USER_PAGES.iter()) {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.text("h1").is_empty(), "{path} has a title");
    }
}

#[tokio::test]
async fn a_user_removed_from_the_database_is_signed_out() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    sqlx::query("DELETE FROM users")
        .execute(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(app.get("/my/keys").await.status, StatusCode::SEE_OTHER);
}
