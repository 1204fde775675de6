use reqwest::StatusCode;

use crate::common::spawn_app;

#[tokio::test]
async fn the_top_bar_has_the_menus_of_the_spec() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app.get("/user-access/keys").await;
    let nav: Vec<(String, String)> = {
        let sel = scraper::Selector::parse("nav[aria-label=Main] a").unwrap();
        page.html
            .select(&sel)
            .map(|a| {
                (
                    a.text().collect::<String>(),
                    a.value().attr("href").unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        nav,
        vec![
            (
                "API Access".to_string(),
                "/configuration/api-access".to_string()
            ),
            (
                "Users and keys".to_string(),
                "/user-access/keys".to_string()
            ),
            ("Audit log".to_string(), "/audit".to_string()),
            ("Mail log".to_string(), "/mail".to_string()),
            ("My access keys".to_string(), "/my/keys".to_string()),
        ]
    );
    assert_eq!(
        page.texts(".menu-heading"),
        vec!["Configuration", "User access", "Logs", "Personal"]
    );
    assert_eq!(
        page.attr("a.bell", "href").as_deref(),
        Some("/notifications")
    );
    assert_eq!(
        page.attr("a.bell", "aria-label").as_deref(),
        Some("Notifications, none unread")
    );
    let user_menu = page.texts(".user-menu .menu-item");
    assert_eq!(
        user_menu,
        vec![
            "My access keys",
            "Change password",
            "Account security",
            "Sign out"
        ]
    );
    assert_eq!(
        page.attr("[aria-current=page]", "href").as_deref(),
        Some("/user-access/keys")
    );
}

#[tokio::test]
async fn users_see_only_their_own_menu_entries() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let page = app.get("/my/keys").await;
    assert_eq!(page.texts("nav[aria-label=Main] a"), vec!["My access keys"]);
}

#[tokio::test]
async fn the_bell_counts_unread_notifications_until_read() {
    let app = spawn_app().await;
    let id = app.signed_in_user().await;
    for title in ["Key expires soon", "You were added to a group"] {
        sqlx::query(
            "INSERT INTO notifications (user_id, created_at, kind, title, body, link) \
             VALUES ($1, 1795500000, 'test', $2, '', '/my/keys')",
        )
        .bind(&id)
        .bind(title)
        .execute(&app.state.pool)
        .await
        .unwrap();
    }
    let page = app.get("/my/keys").await;
    assert_eq!(page.text(".bell-count"), "2");
    assert_eq!(
        page.attr("a.bell", "aria-label").as_deref(),
        Some("Notifications, 2 unread")
    );

    let list = app.get("/notifications").await;
    assert_eq!(list.texts(".notification.unread").len(), 2);
    assert!(
        list.text(".notification")
            .contains("You were added to a group")
    );

    let res = app.post("/notifications/read", &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let page = app.get("/notifications").await;
    assert!(page.texts(".bell-count").is_empty());
    assert!(page.texts(".notification.unread").is_empty());
    assert_eq!(page.texts(".notification").len(), 2);
}

#[tokio::test]
async fn the_users_groups_and_roles_tabs_show_the_tenant() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.create_user("grace@example.com", "Grace Hopper", "another good password")
        .await;

    let users = app.get("/user-access/users").await;
    let rows = users.texts("tbody tr");
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0].contains("Ada Lovelace")
            && rows[0].contains("Administrators")
            && rows[0].contains("Active")
    );
    assert!(rows[1].contains("Grace Hopper") && rows[1].contains("Never"));

    let groups = app.get("/user-access/groups").await;
    let row = groups.text("tbody tr");
    assert!(
        row.contains("Administrators")
            && row.contains("Built-in")
            && row.contains("Tenant Administrator")
    );

    let roles = app.get("/user-access/roles").await;
    let names: Vec<String> = roles.texts("tbody tr td.strong");
    assert_eq!(
        names,
        vec![
            "Integration Built-in",
            "Key Administrator Built-in",
            "Read Only Built-in",
            "Tenant Administrator Built-in"
        ]
    );
    let integration = roles.text("tbody tr");
    assert!(integration.contains("keys:verify"));
    assert_eq!(
        roles.texts("tbody tr:last-child code").len(),
        9,
        "Tenant Administrator has every permission"
    );
}
