//! The membership editor: a user's groups, a group's members and a group's roles are each one
//! list, saved by the same rules whichever page saves it: chosen entries that no longer exist,
//! what the person saving may give or take (SPEC §11), Administrators keeping a member who can
//! sign in, a bell notice for each person concerned, and one transaction.

use reqwest::StatusCode;

use crate::common::faults::fail_inserts_into;
use crate::common::{PASSWORD, Page, TestApp, USER_EMAIL, spawn_app};

/// The ID at the end of a redirect to a saved page (`/user-access/groups/grp_…?saved=1`).
fn saved_id(res: &Page) -> String {
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let path = res.location();
    let path = path.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_string()
}

/// A custom group with these roles, made through its form by the signed-in administrator.
async fn group(app: &TestApp, name: &str, roles: &[&str]) -> String {
    let mut form = vec![("name", name), ("description", "")];
    form.extend(roles.iter().map(|r| ("roles", *r)));
    saved_id(&app.post("/user-access/groups", &form).await)
}

/// The titles of a person's bell notices, oldest first.
async fn titles(app: &TestApp, user: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT title FROM notifications WHERE user_id = $1 ORDER BY id")
        .bind(user)
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

/// Members and role assignments of every group, and bell notices: what a list's save writes.
async fn footprint(app: &TestApp) -> [i64; 3] {
    [
        app.count("SELECT COUNT(*) FROM group_members").await,
        app.count("SELECT COUNT(*) FROM group_roles").await,
        app.count("SELECT COUNT(*) FROM notifications").await,
    ]
}

/// Someone who may read users and change groups, and nothing more (not an administrator),
/// signed in on a client of their own; set up through the forms by the administrator.
async fn group_keeper(app: &TestApp) -> TestApp {
    let role = &[
        ("name", "Group keeper"),
        ("permissions", "users:read"),
        ("permissions", "groups:write"),
    ];
    let role = saved_id(&app.post("/user-access/roles", role).await);
    let keepers = group(app, "Keepers", &[&role]).await;
    let keeper = app
        .create_user("kim@example.com", "Kim Keeper", PASSWORD)
        .await;
    let res = app
        .post(
            &format!("/user-access/users/{keeper}"),
            &[("groups", &keepers)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let client = app.other_client();
    client.sign_in("kim@example.com", PASSWORD).await;
    client
}

#[tokio::test]
async fn a_groups_member_list_gives_and_takes_only_what_a_users_group_list_may() {
    let app = spawn_app().await;
    let ada = app.signed_in_admin().await;
    let bob = app.create_admin("bob@example.com", "Bob", PASSWORD).await;
    let grace = app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    let readers = group(&app, "Readers", &["role_read_only"]).await;
    let helpers = group(&app, "Helpers", &[]).await;
    let keeper = group_keeper(&app).await;
    let before = footprint(&app).await;

    let admins = "/user-access/groups/grp_administrators";
    let name = ("name", "Administrators");
    for (form, message) in [
        (
            vec![name, ("members", &ada)],
            "Only an administrator can take someone out of the Administrators group.",
        ),
        (
            vec![
                name,
                ("members", &ada),
                ("members", &bob),
                ("members", &grace),
            ],
            "Only an administrator can give the Administrators group.",
        ),
    ] {
        let page = keeper.post(admins, &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert_eq!(page.text("#members-error"), message);
    }
    let page = keeper
        .post(
            &format!("/user-access/groups/{readers}"),
            &[("name", "Readers"), ("members", &grace)],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text("#members-error")
            .contains("You can give only groups whose permissions you hold: Readers needs"),
        "{}",
        page.text("#members-error")
    );
    // The form comes back as it was sent.
    let ticked = format!("input[name=members][value='{grace}'][checked]");
    assert!(page.attr(&ticked, "value").is_some());
    assert_eq!(footprint(&app).await, before, "nothing was saved");

    // What the keeper holds, they may give.
    let res = keeper
        .post(
            &format!("/user-access/groups/{helpers}"),
            &[("name", "Helpers"), ("members", &grace)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        titles(&app, &grace).await,
        vec!["You were added to the group “Helpers”"]
    );
}

#[tokio::test]
async fn entries_deleted_while_a_form_was_open_are_refused_on_every_list() {
    let app = spawn_app().await;
    let ada = app.signed_in_admin().await;
    let team = group(&app, "Data team", &[]).await;
    let before = footprint(&app).await;

    let page = app
        .post(
            &format!("/user-access/users/{ada}"),
            &[("groups", "grp_administrators"), ("groups", "grp_gone")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.text("#groups-error"),
        "One of the chosen groups no longer exists. Choose again."
    );
    let page = app
        .post(
            &format!("/user-access/groups/{team}"),
            &[
                ("name", "Data team"),
                ("members", "usr_gone"),
                ("roles", "role_gone"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.text("#members-error"),
        "One of the chosen users no longer exists. Choose again."
    );
    assert!(
        page.texts(".field-error")
            .contains(&"One of the chosen roles no longer exists. Choose again.".to_string())
    );
    let page = app
        .post(
            "/user-access/groups",
            &[("name", "Other team"), ("roles", "role_gone")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(footprint(&app).await, before);
    assert_eq!(app.count("SELECT COUNT(*) FROM user_groups").await, 2);
}

#[tokio::test]
async fn administrators_saved_from_its_own_page_keeps_a_member_who_can_sign_in() {
    let app = spawn_app().await;
    let ada = app.signed_in_admin().await;
    // Grace is invited into Administrators but has not set a password: she cannot sign in.
    app.post(
        "/user-access/users",
        &[
            ("name", "Grace"),
            ("email", USER_EMAIL),
            ("groups", "grp_administrators"),
        ],
    )
    .await;
    let grace: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(USER_EMAIL)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let admins = "/user-access/groups/grp_administrators";
    let page = app
        .post(admins, &[("name", "Administrators"), ("members", &grace)])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.text("#members-error"),
        "Administrators must keep at least one active member."
    );
    let res = app
        .post(admins, &[("name", "Administrators"), ("members", &ada)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        titles(&app, &grace).await,
        vec![
            "You were added to the group “Administrators”",
            "You were removed from the group “Administrators”",
        ]
    );
}

#[tokio::test]
async fn everyone_a_group_change_concerns_is_told_and_the_change_is_audited() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let grace = app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    let bob = app.create_user("bob@example.com", "Bob", PASSWORD).await;
    let team = group(&app, "Data team", &["role_read_only"]).await;
    let url = format!("/user-access/groups/{team}");

    // Members and roles in one save: each new member is told of both.
    let res = app
        .post(
            &url,
            &[
                ("name", "Data team"),
                ("members", &grace),
                ("members", &bob),
                ("roles", "role_integration"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let details: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'group.updated' AND target_id = $1",
    )
    .bind(&team)
    .fetch_one(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(details, "members: 2; roles: role_integration");
    let page = app.get(&url).await;
    let members = page.attr("input[name=members][checked]", "value");
    assert!(members.is_some(), "the members are ticked");
    assert_eq!(
        page.attr("input[name=roles][checked]", "value").as_deref(),
        Some("role_integration")
    );

    // Renamed, Bob taken out; then deleted, Grace told.
    app.post(
        &url,
        &[
            ("name", "Analytics"),
            ("members", &grace),
            ("roles", "role_integration"),
        ],
    )
    .await;
    app.post(&format!("{url}/delete"), &[]).await;
    let told = [
        "You were added to the group “Data team”",
        "The roles of the group “Data team” changed",
    ];
    assert_eq!(
        titles(&app, &bob).await,
        [&told[..], &["You were removed from the group “Analytics”"]].concat()
    );
    assert_eq!(
        titles(&app, &grace).await,
        [&told[..], &["You were removed from the group “Analytics”"]].concat()
    );
}

#[tokio::test]
async fn a_list_whose_audit_entry_cannot_be_written_changes_nothing_and_tells_nobody() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let grace = app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    let team = group(&app, "Data team", &[]).await;
    let before = footprint(&app).await;
    fail_inserts_into(&app, "audit_log").await;

    let page = app
        .post(
            &format!("/user-access/groups/{team}"),
            &[
                ("name", "Data team"),
                ("members", &grace),
                ("roles", "role_read_only"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    let page = app
        .post(&format!("/user-access/users/{grace}"), &[("groups", &team)])
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(footprint(&app).await, before);
    assert!(titles(&app, &grace).await.is_empty());
}
