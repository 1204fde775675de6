//! The console decides by permission (SPEC §7): each page and action needs one, the menu shows
//! only what a person may open, readers see tables without the controls that change them, and
//! a refusal is a 403 inside the normal frame that names the missing permission.

use reqwest::StatusCode;

use crate::common::{PASSWORD, Page, ShownKey, TestApp, UnixNow, spawn_app};

/// A form's fields.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// A person in a group of their own that holds `role`, signed in on a client of their own.
pub(crate) async fn person_with_role(
    app: &TestApp,
    email: &str,
    name: &str,
    role: &str,
) -> TestApp {
    let id = app.create_user(email, name, PASSWORD).await;
    let group = format!("grp_{}", role.trim_start_matches("role_"));
    let now = app.clock.unix_now();
    let mut conn = app.state.pool.acquire().await.unwrap();
    sqlx::query(
        "INSERT INTO user_groups (id, name, description, builtin, created_at) \
         VALUES ($1, $2, '', 0, $3)",
    )
    .bind(&group)
    .bind(format!("{name}'s group"))
    .bind(now)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("INSERT INTO group_roles (group_id, role_id) VALUES ($1, $2)")
        .bind(&group)
        .bind(role)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    app.add_to_group(&group, &id).await;
    let client = app.other_client();
    let page = client.sign_in(email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{email} signs in");
    client
}

/// The links of the main menu, as (text, href).
fn menu(page: &Page) -> Vec<(String, String)> {
    let sel = scraper::Selector::parse("nav[aria-label=Main] a").unwrap();
    page.html
        .select(&sel)
        .map(|a| {
            (
                a.text().collect::<String>(),
                a.value().attr("href").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn links(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(t, h)| (t.to_string(), h.to_string()))
        .collect()
}

/// A refusal inside the frame: 403, the top bar and menu, and the permission named.
fn assert_refused(page: &Page, permission: &str, what: &str) {
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{what}");
    assert_eq!(page.texts("header.topbar").len(), 1, "{what}: the top bar");
    assert!(
        !menu(page).is_empty(),
        "{what}: the menu is intact: {}",
        page.body
    );
    assert!(
        page.text(".missing-permission")
            .starts_with(&format!("You need the {permission} permission to ")),
        "{what}: {}",
        page.text(".missing-permission")
    );
}

/// Everything an action could have written, to show a refusal wrote nothing.
async fn footprint(app: &TestApp) -> [i64; 8] {
    [
        app.count("SELECT COUNT(*) FROM access_keys").await,
        app.count("SELECT COUNT(*) FROM access_keys WHERE active = 1")
            .await,
        app.count("SELECT COUNT(*) FROM users").await,
        app.count("SELECT COUNT(*) FROM user_groups").await,
        app.count("SELECT COUNT(*) FROM roles").await,
        app.count("SELECT COUNT(*) FROM audit_log WHERE action NOT IN ('sign_in', 'sign_out')")
            .await,
        app.count("SELECT COUNT(*) FROM outbox WHERE state <> 'failed'")
            .await,
        app.count("SELECT COUNT(*) FROM secret_keys").await,
    ]
}

/// An administrator's tenant key, and one failed email in the mail log.
async fn tenant_with_a_key_and_a_failed_email(app: &TestApp) -> ShownKey {
    app.signed_in_admin().await;
    let key = app
        .add_key(
            "/user-access/keys",
            &[
                ("name", "billing"),
                ("key_type", "access"),
                ("validity", "90"),
            ],
        )
        .await;
    app.post(
        "/user-access/users",
        &[("name", "Invited Person"), ("email", "invited@example.com")],
    )
    .await;
    sqlx::query("UPDATE outbox SET state = 'failed'")
        .execute(&app.state.pool)
        .await
        .unwrap();
    key
}

#[tokio::test]
async fn a_read_only_person_opens_the_lists_without_the_controls_that_change_them() {
    let app = spawn_app().await;
    let key = tenant_with_a_key_and_a_failed_email(&app).await;
    let reader = person_with_role(&app, "rita@example.com", "Rita Reader", "role_read_only").await;

    let list = reader.get("/user-access/keys").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.texts("tbody tr").len(), 1);
    assert!(
        list.texts("a[href='/user-access/keys/new']").is_empty(),
        "no Add key"
    );
    assert!(list.texts("#add-key-dialog").is_empty());
    assert_eq!(
        list.texts(".row-menu .menu-item"),
        vec!["Key details", "View permissions"],
        "only the actions that read"
    );
    assert!(list.texts(".row-menu form").is_empty());
    assert_eq!(
        list.texts("nav.tabs a"),
        vec!["Users", "Access keys", "Groups", "Roles"]
    );

    let details = reader.get(&format!("/user-access/keys/{}", key.id)).await;
    assert_eq!(details.status, StatusCode::OK);
    assert!(
        details
            .texts("form[method=post] button")
            .iter()
            .all(|b| b == "Sign out")
    );
    assert!(details.texts(".header-actions").is_empty());
    assert_eq!(details.text("#assignments-heading"), "Assignments");
    assert!(
        !details.texts("#permissions").is_empty(),
        "View permissions"
    );

    for (path, control) in [
        ("/user-access/users", "a[href='/user-access/users/new']"),
        ("/user-access/groups", "a[href='/user-access/groups/new']"),
        ("/user-access/roles", "a[href='/user-access/roles/new']"),
        (
            "/user-access/groups/grp_administrators",
            "form[action^='/user-access/groups']",
        ),
        (
            "/user-access/roles/role_read_only",
            "form[action^='/user-access/roles']",
        ),
        ("/audit", "form[method=post][action^='/audit']"),
        ("/mail", "form[action$='/retry']"),
    ] {
        let page = reader.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.texts(control).is_empty(), "{path}: {control}");
        assert!(page.texts(".row-menu").is_empty(), "{path}: no row actions");
    }
    let users = reader.get("/user-access/users").await;
    let invited = users
        .attr("tbody a[href^='/user-access/users/usr']", "href")
        .unwrap();
    let user = reader.get(&invited).await;
    assert_eq!(user.status, StatusCode::OK);
    assert!(user.texts("form[action^='/user-access/users']").is_empty());
    assert!(!reader.get("/audit").await.texts("tbody tr").is_empty());
    assert!(!reader.get("/mail").await.texts("tbody tr").is_empty());
}

#[tokio::test]
async fn a_read_only_person_is_refused_every_change_inside_the_frame_and_nothing_is_written() {
    let app = spawn_app().await;
    let key = tenant_with_a_key_and_a_failed_email(&app).await;
    let reader = person_with_role(&app, "rita@example.com", "Rita Reader", "role_read_only").await;
    let before = footprint(&app).await;
    let mail_id: String = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let invited: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind("invited@example.com")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let k = &key.id;
    let keys_write: Vec<(String, Form)> = vec![
        (
            "/user-access/keys".into(),
            vec![("name", "sneaky"), ("validity", "30")],
        ),
        (
            format!("/user-access/keys/{k}"),
            vec![("name", "renamed"), ("validity", "keep")],
        ),
        (
            format!("/user-access/keys/{k}/regenerate"),
            vec![("grace", "")],
        ),
        (format!("/user-access/keys/{k}/deactivate"), vec![]),
        (format!("/user-access/keys/{k}/unlock"), vec![]),
        (format!("/user-access/keys/{k}/delete"), vec![]),
    ];
    for (path, form) in &keys_write {
        assert_refused(&reader.post(path, form).await, "keys:write", path);
    }
    for path in [
        "/user-access/keys/new".to_string(),
        format!("/user-access/keys/{k}/regenerate"),
        format!("/user-access/keys/{k}/delete"),
    ] {
        assert_refused(&reader.get(&path).await, "keys:write", &path);
    }
    let refusals: Vec<(String, Form, &str)> = vec![
        (
            "/user-access/users".into(),
            vec![("name", "Eve"), ("email", "eve@example.com")],
            "users:write",
        ),
        (
            format!("/user-access/users/{invited}/disable"),
            vec![],
            "users:write",
        ),
        (
            format!("/user-access/users/{invited}/invite"),
            vec![],
            "users:write",
        ),
        (
            format!("/user-access/users/{invited}"),
            vec![("groups", "grp_administrators")],
            "users:write",
        ),
        (
            "/user-access/groups".into(),
            vec![("name", "Mine")],
            "groups:write",
        ),
        (
            "/user-access/groups/grp_read_only".into(),
            vec![("name", "Renamed")],
            "groups:write",
        ),
        (
            "/user-access/roles".into(),
            vec![("name", "Mine"), ("permissions", "keys:read")],
            "roles:write",
        ),
        (
            "/configuration/api-access/secret-keys".into(),
            vec![("name", "signing")],
            "config:write",
        ),
        (
            "/configuration/api-access/secret-keys/sk_bridge/generate".into(),
            vec![],
            "config:write",
        ),
        (format!("/mail/{mail_id}/retry"), vec![], "config:write"),
    ];
    for (path, form, permission) in &refusals {
        assert_refused(&reader.post(path, form).await, permission, path);
    }
    for (path, permission) in [
        ("/user-access/users/new", "users:write"),
        ("/user-access/groups/new", "groups:write"),
        ("/user-access/roles/new", "roles:write"),
        ("/configuration/api-access", "config:write"),
    ] {
        assert_refused(&reader.get(path).await, permission, path);
    }
    assert_eq!(footprint(&app).await, before, "nothing was written");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM group_members WHERE group_id = 'grp_administrators'")
            .await,
        1
    );
    assert!(
        app.authenticate(&key.id, &key.secret).await.is_ok(),
        "the key still works"
    );
}

#[tokio::test]
async fn a_key_administrator_manages_tenant_keys_but_not_users_configuration_or_logs() {
    let app = spawn_app().await;
    let key = tenant_with_a_key_and_a_failed_email(&app).await;
    let keeper = person_with_role(&app, "kim@example.com", "Kim Keys", "role_key_admin").await;

    let list = keeper.get("/user-access/keys").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.texts("a[href='/user-access/keys/new']"),
        vec!["Add key"]
    );
    let made = keeper
        .add_key(
            "/user-access/keys",
            &[
                ("name", "deploy"),
                ("key_type", "access"),
                ("validity", "30"),
            ],
        )
        .await;
    assert!(app.authenticate(&made.id, &made.secret).await.is_ok());
    let res = keeper
        .post(&format!("/user-access/keys/{}/deactivate", key.id), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(
        app.authenticate(&key.id, &key.secret).await.is_err(),
        "deactivated"
    );

    // Users may be read (users:read), not changed.
    let users = keeper.get("/user-access/users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.texts("a[href='/user-access/users/new']").is_empty());
    let before = app.count("SELECT COUNT(*) FROM users").await;
    let invite = keeper
        .post(
            "/user-access/users",
            &[("name", "Eve"), ("email", "eve@example.com")],
        )
        .await;
    assert_refused(&invite, "users:write", "invite");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, before);
    assert_refused(
        &keeper.get("/configuration/api-access").await,
        "config:write",
        "config",
    );
    assert_refused(&keeper.get("/audit").await, "audit:read", "audit log");
    assert_refused(&keeper.get("/mail").await, "audit:read", "mail log");
}

#[tokio::test]
async fn the_menu_lists_exactly_what_each_person_may_open() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let reader = person_with_role(&app, "rita@example.com", "Rita Reader", "role_read_only").await;
    let keeper = person_with_role(&app, "kim@example.com", "Kim Keys", "role_key_admin").await;
    let program =
        person_with_role(&app, "ian@example.com", "Ian Tegration", "role_integration").await;

    let everything = links(&[
        ("API Access", "/configuration/api-access"),
        ("Users and keys", "/user-access/keys"),
        ("Audit log", "/audit"),
        ("Mail log", "/mail"),
        ("My access keys", "/my/keys"),
    ]);
    assert_eq!(menu(&app.get("/my/keys").await), everything);
    assert_eq!(
        menu(&reader.get("/my/keys").await),
        links(&[
            ("Users and keys", "/user-access/keys"),
            ("Audit log", "/audit"),
            ("Mail log", "/mail"),
            ("My access keys", "/my/keys"),
        ])
    );
    assert_eq!(
        menu(&keeper.get("/my/keys").await),
        links(&[
            ("Users and keys", "/user-access/keys"),
            ("My access keys", "/my/keys"),
        ])
    );
    assert_eq!(
        menu(&program.get("/my/keys").await),
        links(&[("My access keys", "/my/keys")])
    );
    // Every page in each menu opens for its person; `/` is the overview for keys readers and
    // leads everyone else to their own keys.
    for (client, home) in [
        (&app, ""),
        (&reader, ""),
        (&keeper, ""),
        (&program, "/my/keys"),
    ] {
        for (_, href) in menu(&client.get("/my/keys").await) {
            assert_eq!(client.get(&href).await.status, StatusCode::OK, "{href}");
        }
        let page = client.get("/").await;
        assert_eq!(page.location(), home);
        if home.is_empty() {
            assert_eq!(page.text("h1"), "Overview");
        }
    }
}

#[tokio::test]
async fn a_person_who_may_only_read_users_sees_the_users_tabs_without_access_keys() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let now = app.clock.unix_now();
    sqlx::query(
        "INSERT INTO roles (id, name, description, builtin, created_at) \
         VALUES ('role_people', 'People reader', '', 0, $1)",
    )
    .bind(now)
    .execute(&app.state.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO role_permissions (role_id, permission) VALUES ('role_people', 'users:read')",
    )
    .execute(&app.state.pool)
    .await
    .unwrap();
    let hr = person_with_role(&app, "hana@example.com", "Hana Rhee", "role_people").await;
    let page = hr.get("/my/keys").await;
    assert_eq!(
        menu(&page),
        links(&[
            ("Users and keys", "/user-access/users"),
            ("My access keys", "/my/keys"),
        ])
    );
    let users = hr.get("/user-access/users").await;
    assert_eq!(users.texts("nav.tabs a"), vec!["Users", "Groups", "Roles"]);
    assert_refused(&hr.get("/user-access/keys").await, "keys:read", "keys tab");
    assert_eq!(hr.get("/").await.location(), "/my/keys");
}

#[tokio::test]
async fn holding_users_write_does_not_make_anyone_an_administrator() {
    let app = spawn_app().await;
    let ada = app.signed_in_admin().await;
    // A second administrator, so that the last-administrator rule is not what refuses.
    app.create_admin("bob@example.com", "Bob", PASSWORD).await;
    let now = app.clock.unix_now();
    sqlx::query(
        "INSERT INTO roles (id, name, description, builtin, created_at) \
         VALUES ('role_hr', 'HR', '', 0, $1)",
    )
    .bind(now)
    .execute(&app.state.pool)
    .await
    .unwrap();
    for p in ["users:read", "users:write"] {
        sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ('role_hr', $1)")
            .bind(p)
            .execute(&app.state.pool)
            .await
            .unwrap();
    }
    let hr = person_with_role(&app, "hana@example.com", "Hana Rhee", "role_hr").await;
    let hana: String = sqlx::query_scalar("SELECT id FROM users WHERE email = 'hana@example.com'")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();

    // Not into Administrators, neither herself nor someone she invites.
    let page = hr
        .post(
            &format!("/user-access/users/{hana}"),
            &[("groups", "grp_hr"), ("groups", "grp_administrators")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text("#groups-error").contains("Only an administrator"),
        "{}",
        page.text("#groups-error")
    );
    let page = hr
        .post(
            "/user-access/users",
            &[
                ("name", "Mal"),
                ("email", "mal@example.com"),
                ("groups", "grp_administrators"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Nor may she take the administrator out of it, or disable them.
    let page = hr.post(&format!("/user-access/users/{ada}"), &[]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = hr
        .post(&format!("/user-access/users/{ada}/disable"), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("may do more than you may"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM group_members WHERE group_id = 'grp_administrators'")
            .await,
        2
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE active = 0")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = 'mal@example.com'")
            .await,
        0
    );

    // What she holds, she may do: invite a person without groups.
    let res = hr
        .post(
            "/user-access/users",
            &[("name", "Ned"), ("email", "ned@example.com")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}
