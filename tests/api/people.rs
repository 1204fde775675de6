//! Users (invitations, disable/enable, groups), groups and roles through the HTML forms.

use chrono::Duration;
use keyward::service::key_auth::Refusal;
use reqwest::StatusCode;

use crate::common::{PASSWORD, USER_EMAIL, spawn_app};

#[tokio::test]
async fn an_invited_user_sets_a_password_through_a_single_use_link() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let res = app
        .post(
            "/user-access/users",
            &[
                ("name", "Grace Hopper"),
                ("email", "Grace@Example.com"),
                ("groups", "grp_administrators"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let list = app.get(&res.location()).await;
    assert!(list.text("[role=status]").contains("Invitation sent."));
    let row = list
        .texts("tbody tr")
        .into_iter()
        .find(|r| r.contains("Grace Hopper"))
        .unwrap();
    assert!(
        row.contains("Invited") && row.contains("Administrators"),
        "{row}"
    );

    let (eml, link) = crate::common::last_invitation(&app).await;
    assert!(eml.contains("To: grace@example.com"));
    assert!(eml.contains("Subject: You are invited to keyward"));
    assert!(
        eml.contains("text/plain") && eml.contains("text/html"),
        "both parts"
    );
    assert!(eml.contains(&app.address), "the link names the public URL");

    let guest = app.other_client();
    let form = guest.get(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.text("h1"), "Welcome, Grace Hopper");
    let weak = guest
        .post(
            "/invite",
            &[
                ("token", &link[14..]),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.text("#password-error").contains("12"));
    let done = guest
        .post(
            "/invite",
            &[
                ("token", &link[14..]),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        guest.get("/").await.text("h1"),
        "Overview",
        "signed in, as an administrator"
    );

    let again = app.other_client().get(&link).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .text("main")
            .contains("invalid, expired or already used")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'user.invitation_accepted'")
            .await,
        1
    );
    // The token itself is not stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM invitations")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert!(stored.iter().all(|h| !link.contains(h.as_str())));
}

#[tokio::test]
async fn notices_are_fixed_texts_that_a_link_cannot_change() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app
        .get("/user-access/users?notice=Your+account+is+compromised")
        .await;
    assert!(page.texts("[role=status]").is_empty());
}

#[tokio::test]
async fn invitations_expire_and_can_be_sent_again() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.post(
        "/user-access/users",
        &[("name", "Grace"), ("email", USER_EMAIL)],
    )
    .await;
    let (_, first) = crate::common::last_invitation(&app).await;
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    assert_eq!(app.get(&first).await.status, StatusCode::CONFLICT);
    app.signed_in_again().await;
    let id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(USER_EMAIL)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    let res = app
        .post(&format!("/user-access/users/{id}/invite"), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let (_, second) = crate::common::last_invitation(&app).await;
    assert_ne!(first, second);
    assert_eq!(app.other_client().get(&second).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_user_forms_come_back_with_messages_and_write_nothing() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    for (fields, selector, message) in [
        (
            vec![("name", ""), ("email", "x@example.com")],
            "#name-error",
            "Enter a name.",
        ),
        (
            vec![("name", "X"), ("email", "not-an-email")],
            "#email-error",
            "name@example.com",
        ),
        (
            vec![("name", "X"), ("email", "ada@example.com")],
            "#email-error",
            "already exists",
        ),
        (
            vec![
                ("name", "X"),
                ("email", "x@example.com"),
                ("groups", "grp_gone"),
            ],
            ".field-error",
            "no longer exists",
        ),
    ] {
        let page = app.post("/user-access/users", &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(
            page.text(selector).contains(message),
            "{fields:?}: {}",
            page.text(selector)
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM invitations").await, 0);
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_and_their_keys_stop() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let grace = app.other_client();
    let grace_id = grace.signed_in_user().await;
    let key = grace
        .add_key(
            "/my/keys",
            &[
                ("name", "laptop"),
                ("key_type", "access"),
                ("validity", "30"),
            ],
        )
        .await;
    assert!(app.authenticate(&key.id, &key.secret).await.is_ok());

    // The user's page asks first, and says what disabling stops.
    let page = app.get(&format!("/user-access/users/{grace_id}")).await;
    let ask = page
        .attr(
            ".header-actions a[href$='/disable'], a[href$='/disable']",
            "href",
        )
        .expect("Disable user asks first");
    let confirm = app.get(&ask).await;
    assert_eq!(confirm.text("h1"), "Disable user?");
    assert!(
        confirm
            .text("main")
            .contains("personal access keys stop authenticating")
    );
    assert!(
        app.authenticate(&key.id, &key.secret).await.is_ok(),
        "asking changes nothing"
    );

    let res = app
        .post(&format!("/user-access/users/{grace_id}/disable"), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(
        app.get(&res.location())
            .await
            .text("h1")
            .contains("Disabled")
    );
    assert_eq!(
        grace.get("/my/keys").await.status,
        StatusCode::SEE_OTHER,
        "signed out at once"
    );
    assert_eq!(
        grace.sign_in(USER_EMAIL, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.authenticate(&key.id, &key.secret).await.unwrap_err(),
        Refusal::OwnerDisabled
    );

    app.post(&format!("/user-access/users/{grace_id}/enable"), &[])
        .await;
    assert!(app.authenticate(&key.id, &key.secret).await.is_ok());
    assert_eq!(
        grace.sign_in(USER_EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn nobody_disables_themselves_or_the_last_administrator() {
    let app = spawn_app().await;
    let admin = app.signed_in_admin().await;
    let page = app
        .post(&format!("/user-access/users/{admin}/disable"), &[])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(
        page.text("main")
            .contains("cannot disable your own account")
    );
    let page = app.post(&format!("/user-access/users/{admin}"), &[]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text("#groups-error")
            .contains("at least one active member")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM group_members").await, 1);
}

#[tokio::test]
async fn group_membership_changes_notify_the_user() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let grace = app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    let res = app
        .post(
            "/user-access/groups",
            &[
                ("name", "Data team"),
                ("description", "Exports and reports"),
                ("roles", "role_read_only"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let group_url = res.location().split('?').next().unwrap().to_string();
    let group_id = group_url.rsplit('/').next().unwrap().to_string();

    app.post(
        &format!("/user-access/users/{grace}"),
        &[("groups", &group_id)],
    )
    .await;
    let titles: Vec<String> =
        sqlx::query_scalar("SELECT title FROM notifications WHERE user_id = $1 ORDER BY id")
            .bind(&grace)
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(titles, vec!["You were added to the group “Data team”"]);
    assert_eq!(
        keyward::service::accounts::signed_in(&app.state.pool, &grace)
            .await
            .unwrap()
            .expect("grace is active")
            .permissions,
        vec!["audit:read", "keys:read", "users:read"]
    );

    // Changing the group's roles notifies its members; removing them too.
    app.post(
        &group_url,
        &[
            ("name", "Data team"),
            ("description", ""),
            ("members", &grace),
            ("roles", "role_integration"),
        ],
    )
    .await;
    app.post(
        &group_url,
        &[
            ("name", "Data team"),
            ("description", ""),
            ("roles", "role_integration"),
        ],
    )
    .await;
    let titles: Vec<String> =
        sqlx::query_scalar("SELECT title FROM notifications WHERE user_id = $1 ORDER BY id")
            .bind(&grace)
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(
        titles,
        vec![
            "You were added to the group “Data team”",
            "The roles of the group “Data team” changed",
            "You were removed from the group “Data team”",
        ]
    );
}

#[tokio::test]
async fn groups_are_created_checked_and_deleted_but_administrators_is_protected() {
    let app = spawn_app().await;
    let admin = app.signed_in_admin().await;
    let dup = app
        .post("/user-access/groups", &[("name", "Administrators")])
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(dup.text("#name-error").contains("already exists"));
    let empty = app.post("/user-access/groups", &[("name", " ")]).await;
    assert!(empty.text("#name-error").contains("Enter a group name"));

    let built_in = "/user-access/groups/grp_administrators";
    let rename = app
        .post(built_in, &[("name", "Admins"), ("members", &admin)])
        .await;
    assert!(rename.text("#name-error").contains("cannot be renamed"));
    let emptied = app.post(built_in, &[("name", "Administrators")]).await;
    assert!(
        emptied
            .text("#members-error")
            .contains("at least one active member")
    );
    assert_eq!(
        app.get(&format!("{built_in}/delete")).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.post(&format!("{built_in}/delete"), &[]).await.status,
        StatusCode::CONFLICT
    );
    // Its role stays even if the form says otherwise.
    app.post(
        built_in,
        &[
            ("name", "Administrators"),
            ("members", &admin),
            ("roles", "role_read_only"),
        ],
    )
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM group_roles WHERE group_id = 'grp_administrators' AND role_id = 'role_tenant_admin'").await, 1);

    let res = app
        .post("/user-access/groups", &[("name", "Temporary")])
        .await;
    let url = res.location().split('?').next().unwrap().to_string();
    assert_eq!(
        app.get(&res.location()).await.text("[role=status]"),
        "The group was created.",
        "a new group is not announced as saved changes"
    );
    assert!(
        app.get(&format!("{url}/delete"))
            .await
            .text("main")
            .contains("cannot be undone")
    );
    let gone = app.post(&format!("{url}/delete"), &[]).await;
    assert!(
        app.get(&gone.location())
            .await
            .text("[role=status]")
            .contains("The group was deleted.")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM user_groups").await, 1);
}

#[tokio::test]
async fn custom_roles_grant_exactly_their_permissions_and_built_ins_are_fixed() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    for (fields, message) in [
        (vec![("name", "Auditor")], "Choose at least one permission."),
        (
            vec![("name", "Auditor"), ("permissions", "keys:delete")],
            "is not a permission",
        ),
        (
            vec![("name", "Read Only"), ("permissions", "keys:read")],
            "already exists",
        ),
    ] {
        let page = app.post("/user-access/roles", &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(
            page.text(".field-error").contains(message),
            "{fields:?}: {}",
            page.text(".field-error")
        );
    }
    let res = app
        .post(
            "/user-access/roles",
            &[
                ("name", "Auditor"),
                ("description", "Reads the logs"),
                ("permissions", "audit:read"),
                ("permissions", "keys:read"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let url = res.location().split('?').next().unwrap().to_string();
    let role_id = url.rsplit('/').next().unwrap().to_string();

    let key = app
        .add_key(
            "/user-access/keys",
            &[
                ("name", "auditor bot"),
                ("key_type", "access"),
                ("validity", "30"),
                ("roles", &role_id),
            ],
        )
        .await;
    let perms = app
        .get(&format!("/user-access/keys/{}", key.id))
        .await
        .texts("#permissions code");
    assert_eq!(perms, vec!["audit:read", "keys:read"]);
    app.post(&url, &[("name", "Auditor"), ("permissions", "audit:read")])
        .await;
    let perms = app
        .get(&format!("/user-access/keys/{}", key.id))
        .await
        .texts("#permissions code");
    assert_eq!(
        perms,
        vec!["audit:read"],
        "a role change applies to its keys at once"
    );

    let fixed = app
        .post(
            "/user-access/roles/role_read_only",
            &[("name", "Read Only"), ("permissions", "config:write")],
        )
        .await;
    assert_eq!(fixed.status, StatusCode::CONFLICT);
    assert_eq!(
        app.post("/user-access/roles/role_read_only/delete", &[])
            .await
            .status,
        StatusCode::CONFLICT
    );
    let gone = app.post(&format!("{url}/delete"), &[]).await;
    assert!(
        app.get(&gone.location())
            .await
            .text("[role=status]")
            .contains("The role was deleted.")
    );
    assert!(
        app.get(&format!("/user-access/keys/{}", key.id))
            .await
            .texts("#permissions code")
            .is_empty()
    );
}

#[tokio::test]
async fn users_cannot_manage_people() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    for path in [
        "/user-access/users/new",
        "/user-access/groups/new",
        "/user-access/roles/new",
        "/user-access/groups/grp_administrators",
        "/user-access/roles/role_read_only",
    ] {
        assert_eq!(app.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    for path in [
        "/user-access/users",
        "/user-access/groups",
        "/user-access/roles",
        "/user-access/groups/grp_administrators/delete",
    ] {
        assert_eq!(
            app.post(path, &[("name", "x"), ("email", "x@example.com")])
                .await
                .status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM user_groups").await, 1);
}

#[tokio::test]
async fn two_administrators_disabling_each_other_at_once_leave_one_standing() {
    let app = spawn_app().await;
    let ada = app.signed_in_admin().await;
    let bob_client = app.other_client();
    let bob = bob_client
        .create_admin("bob@example.com", "Bob", PASSWORD)
        .await;
    bob_client.sign_in("bob@example.com", PASSWORD).await;
    let (disable_bob, disable_ada) = (
        format!("/user-access/users/{bob}/disable"),
        format!("/user-access/users/{ada}/disable"),
    );
    // Both forms are loaded first, as two browsers would have them open; then both are sent.
    let (ada_token, bob_token) = (app.csrf_token().await, bob_client.csrf_token().await);
    let (ada_form, bob_form) = ([("csrf_token", &*ada_token)], [("csrf_token", &*bob_token)]);
    let (a, b) = tokio::join!(
        app.post_raw(&disable_bob, &ada_form),
        bob_client.post_raw(&disable_ada, &bob_form)
    );
    // Whichever runs second finds its author signed out (a redirect, or a refused form whose
    // session is gone) or the rule in force; never both disabled.
    assert!(a.status == StatusCode::SEE_OTHER || b.status == StatusCode::SEE_OTHER);
    let active: i64 = app
        .count("SELECT COUNT(*) FROM users WHERE active = 1")
        .await;
    assert_eq!(
        active, 1,
        "exactly one administrator can still sign in (answers {} and {})",
        a.status, b.status
    );
}

#[tokio::test]
async fn an_invited_administrator_who_never_signed_in_does_not_count_as_the_last_one() {
    let app = spawn_app().await;
    let ada = app.signed_in_admin().await;
    app.post(
        "/user-access/users",
        &[
            ("name", "Grace"),
            ("email", USER_EMAIL),
            ("groups", "grp_administrators"),
        ],
    )
    .await;
    let page = app.post(&format!("/user-access/users/{ada}"), &[]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.text("#groups-error")
            .contains("at least one active member")
    );
}
