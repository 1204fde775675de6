//! The Access keys tab and My access keys through the HTML forms.

use chrono::Duration;
use keyward::service::key_auth::Refusal;
use reqwest::StatusCode;

use crate::common::{PASSWORD, USER_EMAIL, spawn_app};

const BASE: &str = "/user-access/keys";

fn form<'a>(name: &'a str, validity: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("key_type", "access"),
        ("validity", validity),
        ("custom_date", ""),
    ]
}

#[tokio::test]
async fn an_administrator_adds_a_key_and_sees_its_secret_exactly_once() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let page = app.post(BASE, &form("ci deploy", "90")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.text("[role=alert]").contains("shown only this once"));
    let id = page.attr("#access-key", "value").unwrap();
    let secret = page.attr("#secret-key", "value").unwrap();
    let tenant = page.attr("#tenant-id", "value").unwrap();
    assert!(keyward::domain::KeyId::parse(&id).is_some(), "{id}");
    assert!(
        keyward::domain::Secret::parse(&secret).is_some(),
        "{secret}"
    );
    assert_eq!(tenant, app.state.tenant_id);
    assert_eq!(
        page.attr("#key-details", "value").unwrap(),
        format!("key:{id}::{secret},tenant id: {tenant}")
    );
    assert!(app.authenticate(&id, &secret).await.is_ok());

    // The secret is nowhere to be found afterwards: not in the list, details, database or logs.
    let list = app.get(BASE).await;
    let details = app.get(&format!("{BASE}/{id}")).await;
    for p in [&list, &details] {
        assert!(!p.body.contains(&secret));
    }
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT secret_hash, name FROM access_keys")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].0.contains(&secret[4..20]));
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT details || target_label || action FROM audit_log")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert!(audit.iter().any(|a| a.contains("key.created")));
    assert!(audit.iter().all(|a| !a.contains(&secret)));
    assert!(!crate::common::captured_logs().contains(&secret));

    let row = list.text("tbody tr");
    assert!(
        row.contains("ci deploy") && row.contains(&id) && row.contains("Access key"),
        "{row}"
    );
    assert!(
        row.contains("Tenant") && row.contains("Active") && row.contains("2027-02-21 10:00 UTC"),
        "{row}"
    );
    assert!(row.contains("ada@example.com"), "created by: {row}");
}

#[tokio::test]
async fn bad_key_forms_come_back_with_messages_and_write_nothing() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let long = "k".repeat(65);
    let system = format!("{}@monitoring", app.state.tenant_id);
    // (form fields, where the message shows, what it says)
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            form("", "90"),
            "#key-name-error",
            "Enter a name for the key.",
        ),
        (
            form("   ", "90"),
            "#key-name-error",
            "Enter a name for the key.",
        ),
        (
            form(&long, "90"),
            "#key-name-error",
            "at most 64 characters",
        ),
        (
            form("bell\u{7}", "90"),
            "#key-name-error",
            "control characters",
        ),
        (
            form(&system, "90"),
            "#key-name-error",
            "reserved for system keys",
        ),
        (form("k", "45"), "#validity-error", "Choose how long"),
        (
            vec![
                ("name", "k"),
                ("key_type", "access"),
                ("validity", "custom"),
                ("custom_date", "2026-11-22"),
            ],
            "#validity-error",
            "in the future",
        ),
        (
            vec![
                ("name", "k"),
                ("key_type", "access"),
                ("validity", "custom"),
                ("custom_date", "2026-02-30"),
            ],
            "#validity-error",
            "is not a date",
        ),
        (
            vec![
                ("name", "k"),
                ("key_type", "access"),
                ("validity", "custom"),
                ("custom_date", ""),
            ],
            "#validity-error",
            "Enter the date",
        ),
        (
            // A date typed beside another choice is never silently dropped.
            vec![
                ("name", "k"),
                ("key_type", "access"),
                ("validity", "90"),
                ("custom_date", "2027-08-01"),
            ],
            "#validity-error",
            "You typed the date 2027-08-01, but “90 days” is chosen",
        ),
        (
            vec![("name", "k"), ("key_type", "robot"), ("validity", "90")],
            ".field-error",
            "Choose Access key or API.",
        ),
        (
            vec![
                ("name", "k"),
                ("key_type", "access"),
                ("validity", "90"),
                ("groups", "grp_gone"),
            ],
            ".field-error",
            "no longer exists",
        ),
        (
            vec![
                ("name", "k"),
                ("key_type", "access"),
                ("validity", "90"),
                ("roles", "role_gone"),
            ],
            ".field-error",
            "no longer exists",
        ),
    ];
    for (fields, selector, message) in cases {
        let page = app.post(BASE, &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(
            page.text(selector).contains(message),
            "{fields:?}: {}",
            page.text(selector)
        );
        assert!(page.attr("input[name=csrf_token]", "value").is_some());
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM access_keys").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'key.%'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_list_searches_filters_sorts_and_pages_on_the_server() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let mut ids = Vec::new();
    for i in 0..27 {
        let name = format!("service {i:02}");
        let key_type = if i % 9 == 0 { "api" } else { "access" };
        let shown = app
            .add_key(
                BASE,
                &[("name", &name), ("key_type", key_type), ("validity", "30")],
            )
            .await;
        ids.push(shown.id);
        app.clock.advance(Duration::seconds(1));
    }
    let first = app.get(BASE).await;
    assert_eq!(first.texts("tbody tr").len(), 25);
    assert!(first.text(".pager").contains("Showing 1–25 of 27"));
    assert!(
        first.text("tbody tr").contains("service 26"),
        "newest first"
    );
    let next = first.attr("a[rel=next]", "href").unwrap();
    let second = app.get(&next).await;
    assert_eq!(second.texts("tbody tr").len(), 2);
    assert!(second.attr("a[rel=prev]", "href").is_some());

    let search = app.get(&format!("{BASE}?q=ICE+0")).await;
    assert_eq!(
        search.texts("tbody tr").len(),
        10,
        "case-insensitive part of the name"
    );
    let by_id = app.get(&format!("{BASE}?q={}", &ids[5][..12])).await;
    assert!(by_id.texts("tbody tr").iter().any(|r| r.contains(&ids[5])));

    let api = app.get(&format!("{BASE}?type=api")).await;
    assert_eq!(api.texts("tbody tr").len(), 3);

    app.post(&format!("{BASE}/{}/deactivate", ids[3]), &[])
        .await;
    let inactive = app.get(&format!("{BASE}?status=inactive")).await;
    let rows = inactive.texts("tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains("Inactive"));

    let by_name = app.get(&format!("{BASE}?sort=name&dir=asc")).await;
    assert!(by_name.text("tbody tr").contains("service 00"));
    assert_eq!(
        by_name
            .attr("th[aria-sort=ascending] a", "href")
            .map(|h| h.contains("dir=desc")),
        Some(true)
    );

    let none = app.get(&format!("{BASE}?q=nothing-like-this")).await;
    assert_eq!(none.text(".empty-state h3"), "No keys match");

    app.clock.advance(Duration::days(29));
    app.signed_in_again().await;
    let soon = app.get(BASE).await;
    assert!(
        !soon.texts("td.expires-soon").is_empty(),
        "expiry within the notice window is highlighted"
    );
    app.clock.advance(Duration::days(2));
    app.signed_in_again().await;
    let expired = app.get(&format!("{BASE}?status=expired")).await;
    assert!(
        expired.text(".pager").contains("of 26"),
        "every key but the deactivated one: {}",
        expired.text(".pager")
    );
}

#[tokio::test]
async fn key_details_change_name_expiry_and_extend_an_expired_key() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = app.add_key(BASE, &form("nightly export", "30")).await;
    let url = format!("{BASE}/{}", key.id);
    let details = app.get(&url).await;
    assert!(details.text(".facts").contains(&key.id));
    assert!(details.text(".facts").contains("2026-12-23 10:00 UTC"));

    let res = app
        .post(
            &url,
            &[
                ("name", "nightly export v2"),
                ("validity", "custom"),
                ("custom_date", "2027-06-30"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let saved = app.get(&res.location()).await;
    assert_eq!(saved.text("[role=status]"), "Your changes were saved.");
    assert!(saved.text("h1").starts_with("nightly export v2"));
    assert!(saved.text(".facts").contains("2027-06-30 23:59 UTC"));

    // A date typed while Expiry stays on "Keep" is refused next to the field, and kept.
    let res = app
        .post(
            &url,
            &[
                ("name", "nightly export v2"),
                ("validity", "keep"),
                ("custom_date", "2027-09-30"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text("#validity-error").contains("but “Keep” is chosen"));
    assert_eq!(
        res.attr("#custom-date", "value").as_deref(),
        Some("2027-09-30")
    );
    let unchanged = app.get(&url).await;
    assert!(unchanged.text(".facts").contains("2027-06-30 23:59 UTC"));

    // Past its expiry the key is refused; extending it brings it back.
    app.clock.advance(Duration::days(300));
    assert_eq!(
        app.authenticate(&key.id, &key.secret).await.unwrap_err(),
        Refusal::Expired
    );
    app.signed_in_again().await;
    let expired = app.get(&url).await;
    assert!(expired.text("h1").contains("Expired"));
    assert!(expired.text("#validity-hint").contains("extend"));
    app.post(&url, &[("name", "nightly export v2"), ("validity", "30")])
        .await;
    assert!(app.authenticate(&key.id, &key.secret).await.is_ok());
    app.post(
        &url,
        &[("name", "nightly export v2"), ("validity", "never")],
    )
    .await;
    assert!(app.get(&url).await.text(".facts").contains("Never"));

    let bad = app
        .post(
            &url,
            &[
                ("name", ""),
                ("validity", "custom"),
                ("custom_date", "1999-01-01"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.text("#name-error"),
        "Enter a name.".replace("a name", "a name for the key")
    );
    assert!(bad.text("#validity-error").contains("future"));
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('key.renamed', 'key.expiry_changed')"
        )
        .await,
        4
    );
}

#[tokio::test]
async fn assigning_roles_and_groups_sets_permissions_and_notifies_the_people_affected() {
    let app = spawn_app().await;
    let admin = app.signed_in_admin().await;
    let key = app
        .add_key(
            BASE,
            &[
                ("name", "reporting"),
                ("key_type", "access"),
                ("validity", "90"),
                ("roles", "role_read_only"),
            ],
        )
        .await;
    let url = format!("{BASE}/{}", key.id);
    let perms = app.get(&url).await.texts("#permissions code");
    assert_eq!(perms, vec!["audit:read", "keys:read", "users:read"]);

    let res = app
        .post(
            &url,
            &[
                ("name", "reporting"),
                ("validity", "keep"),
                ("roles", "role_integration"),
                ("groups", "grp_administrators"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let perms = app.get(&url).await.texts("#permissions code");
    assert_eq!(
        perms.len(),
        9,
        "Administrators' role gives every permission: {perms:?}"
    );
    let notices: Vec<String> =
        sqlx::query_scalar("SELECT title FROM notifications WHERE user_id = $1")
            .bind(&admin)
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(
        notices,
        vec!["Assignments of access key “reporting” changed"]
    );
    assert_eq!(app.get("/notifications").await.text(".bell-count"), "1");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'key.assignments_changed'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_new_secret_kills_the_old_one_at_once_or_after_the_grace_period() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = app.add_key(BASE, &form("payments", "90")).await;
    let warning = app.get(&format!("{BASE}/{}/regenerate", key.id)).await;
    assert!(
        warning
            .text("[role=alert]")
            .contains("The current secret stops working")
    );

    let page = app
        .post(&format!("{BASE}/{}/regenerate", key.id), &[("grace", "")])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(
        page.attr("#access-key", "value").as_deref(),
        Some(key.id.as_str()),
        "same ID"
    );
    let second = page.attr("#secret-key", "value").unwrap();
    assert_ne!(second, key.secret);
    assert_eq!(
        app.authenticate(&key.id, &key.secret).await.unwrap_err(),
        Refusal::WrongSecret
    );
    assert!(app.authenticate(&key.id, &second).await.is_ok());

    // With a one-hour grace period both work until the hour is up.
    let page = app
        .post(
            &format!("{BASE}/{}/regenerate", key.id),
            &[("grace", "3600")],
        )
        .await;
    let third = page.attr("#secret-key", "value").unwrap();
    assert!(app.authenticate(&key.id, &second).await.is_ok());
    assert!(app.authenticate(&key.id, &third).await.is_ok());
    assert!(
        app.get(&format!("{BASE}/{}", key.id))
            .await
            .text(".facts")
            .contains("previous secret works until 2026-11-23 11:00 UTC")
    );
    app.clock.advance(Duration::minutes(61));
    assert_eq!(
        app.authenticate(&key.id, &second).await.unwrap_err(),
        Refusal::WrongSecret
    );
    assert!(app.authenticate(&key.id, &third).await.is_ok());
    app.signed_in_again().await;

    let bad = app
        .post(
            &format!("{BASE}/{}/regenerate", key.id),
            &[("grace", "604801")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        app.authenticate(&key.id, &third).await.is_ok(),
        "a refused request changes nothing"
    );
}

#[tokio::test]
async fn regenerating_or_unlocking_ends_a_lock() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = app.add_key(BASE, &form("locked one", "90")).await;
    sqlx::query("UPDATE access_keys SET locked = 1, failed_attempts = 5")
        .execute(&app.state.pool)
        .await
        .unwrap();
    // Written behind the application's back: key checks are told, as every change made
    // through it tells them (otherwise they see it within KEY_CACHE_FRESH_FOR).
    app.state.key_checker.keys_changed();
    assert_eq!(
        app.authenticate(&key.id, &key.secret).await.unwrap_err(),
        Refusal::Locked
    );
    let list = app.get(&format!("{BASE}?status=locked")).await;
    assert!(list.text("tbody tr").contains("Locked"));
    assert!(list.texts(".row-menu button").iter().any(|b| b == "Unlock"));
    let res = app.post(&format!("{BASE}/{}/unlock", key.id), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(app.authenticate(&key.id, &key.secret).await.is_ok());

    sqlx::query("UPDATE access_keys SET locked = 1")
        .execute(&app.state.pool)
        .await
        .unwrap();
    // Written behind the application's back: key checks are told, as every change made
    // through it tells them (otherwise they see it within KEY_CACHE_FRESH_FOR).
    app.state.key_checker.keys_changed();
    let page = app
        .post(&format!("{BASE}/{}/regenerate", key.id), &[("grace", "")])
        .await;
    let fresh = page.attr("#secret-key", "value").unwrap();
    assert!(app.authenticate(&key.id, &fresh).await.is_ok());
}

#[tokio::test]
async fn deactivated_keys_stop_and_deleted_keys_are_gone() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = app.add_key(BASE, &form("temporary", "90")).await;
    let url = format!("{BASE}/{}", key.id);
    let res = app.post(&format!("{url}/deactivate"), &[]).await;
    assert_eq!(
        app.authenticate(&key.id, &key.secret).await.unwrap_err(),
        Refusal::Inactive
    );
    assert!(
        app.get(&res.location())
            .await
            .text("[role=status]")
            .contains("inactive")
    );
    assert!(app.get(&url).await.text("h1").contains("Inactive"));
    app.post(&format!("{url}/activate"), &[]).await;
    assert!(app.authenticate(&key.id, &key.secret).await.is_ok());

    let confirm = app.get(&format!("{url}/delete")).await;
    assert!(confirm.text("main").contains("cannot be undone"));
    let res = app.post(&format!("{url}/delete"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let list = app.get(&res.location()).await;
    assert!(
        list.text("[role=status]")
            .contains("Deleted the key “temporary”")
    );
    assert_eq!(
        app.authenticate(&key.id, &key.secret).await.unwrap_err(),
        Refusal::NotFound
    );
    assert_eq!(app.get(&url).await.status, StatusCode::NOT_FOUND);
    // A form left open on the deleted key writes nothing.
    let stale = app
        .post(&url, &[("name", "revived"), ("validity", "keep")])
        .await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT COUNT(*) FROM access_keys").await, 0);
}

#[tokio::test]
async fn system_keys_refuse_regeneration_and_deletion_with_a_reason() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.insert_system_key("AKSYSTEM000000000001", "monitoring")
        .await;
    let url = format!("{BASE}/AKSYSTEM000000000001");
    for page in [
        app.get(&format!("{url}/regenerate")).await,
        app.post(&format!("{url}/regenerate"), &[("grace", "")])
            .await,
        app.get(&format!("{url}/delete")).await,
        app.post(&format!("{url}/delete"), &[]).await,
    ] {
        assert_eq!(page.status, StatusCode::CONFLICT);
        assert!(
            page.text("main")
                .contains("is a system key managed by keyward")
        );
    }
    let details = app.get(&url).await;
    assert!(details.text("main").contains("system key"));
    assert!(
        details
            .attr(&format!("a[href='{url}/delete']"), "href")
            .is_none()
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM access_keys").await, 1);
}

#[tokio::test]
async fn a_user_holds_at_most_two_personal_keys() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let empty = app.get("/my/keys").await;
    assert!(
        empty
            .text(".empty-state h3")
            .starts_with("No access keys yet")
    );
    let one = app.add_key("/my/keys", &form("laptop", "30")).await;
    app.add_key("/my/keys", &form("ci", "30")).await;
    let third = app.post("/my/keys", &form("one too many", "30")).await;
    assert_eq!(third.status, StatusCode::CONFLICT);
    assert!(
        third
            .text("#add-conflict")
            .contains("You already have 2 personal access keys")
    );
    assert_eq!(
        third.attr("#key-name", "value").as_deref(),
        Some("one too many")
    );
    let list = app.get("/my/keys").await;
    assert_eq!(list.text(".count"), "2 of 2");
    assert!(
        list.attr("a[data-dialog]", "href").is_none(),
        "no Add key at the limit"
    );
    assert!(list.text("#limit-note").contains("Delete one"));

    // Deleting one frees a place.
    app.post(&format!("/my/keys/{}/delete", one.id), &[]).await;
    app.add_key("/my/keys", &form("replacement", "30")).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM access_keys").await, 2);
}

#[tokio::test]
async fn sixteen_concurrent_personal_key_creates_make_exactly_two() {
    let app = spawn_app().await;
    let user = app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    let hasher = keyward::auth::key_secret::SecretHasher::new(&app.state.master_key);
    let actor = keyward::service::keys::Actor {
        user_id: user.clone(),
        label: USER_EMAIL.into(),
        is_admin: false,
        permissions: vec![],
        acting_key: None,
        client_ip: "127.0.0.1".into(),
        previous_secret: false,
    };
    let mut tasks = Vec::new();
    for i in 0..16 {
        let state = app.state.clone();
        let clock = app.clock.clone();
        let hasher = hasher.clone();
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            let ring = keyward::service::keys::Keyring {
                clock: clock.as_ref(),
                hasher: &hasher,
                tenant_id: &state.tenant_id,
                sender: &state.sender,
            };
            let input = keyward::service::keys::NewKey {
                name: format!("racer {i}"),
                key_type: "access".into(),
                expiry: Ok(keyward::service::keys::ExpiryChoice::Days(30)),
                group_ids: vec![],
                role_ids: vec![],
                rate_limit: Ok(None),
                once: Default::default(),
            };
            keyward::service::keys::create(
                &state.pool,
                &ring,
                &actor,
                keyward::service::keys::Scope::Personal,
                input,
            )
            .await
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(keyward::service::FormError::Other(keyward::error::AppError::Conflict(_))) => {
                refused += 1
            }
            Err(e) => panic!("unexpected failure: {e:?}"),
        }
    }
    assert_eq!((created, refused), (2, 14));
    assert_eq!(app.count("SELECT COUNT(*) FROM access_keys").await, 2);
    assert_eq!(app.count("SELECT personal_key_count FROM users").await, 2);
}

#[tokio::test]
async fn nobody_reaches_another_users_keys_by_guessing() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let mine = app.add_key("/my/keys", &form("grace's laptop", "30")).await;

    let other = app.other_client();
    other
        .create_user("linus@example.com", "Linus", PASSWORD)
        .await;
    other.sign_in("linus@example.com", PASSWORD).await;
    let url = format!("/my/keys/{}", mine.id);
    assert_eq!(other.get(&url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        other.get(&format!("{url}/regenerate")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.post(&format!("{url}/delete"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.post(&format!("{url}/deactivate"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other
            .post(&url, &[("name", "stolen"), ("validity", "keep")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(other.get("/my/keys").await.texts("tbody tr").is_empty());
    // Nor through the administrators' tab.
    assert_eq!(
        other
            .get(&format!("/user-access/keys/{}", mine.id))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        other
            .post("/user-access/keys", &form("sneaky", "30"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(
        app.authenticate(&mine.id, &mine.secret).await.is_ok(),
        "untouched"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM access_keys").await, 1);

    // An administrator sees the personal key with its owner, and that it takes no assignments.
    let admin = app.other_client();
    admin.signed_in_admin().await;
    let row = admin.get(BASE).await.text("tbody tr");
    assert!(
        row.contains("grace's laptop") && row.contains("Grace Hopper"),
        "{row}"
    );
    let details = admin.get(&format!("{BASE}/{}", mine.id)).await;
    assert!(
        details
            .text("#permissions")
            .contains("owner's current permissions")
    );
    assert!(details.texts("input[name=groups]").is_empty());
}

#[tokio::test]
async fn search_matches_wildcard_characters_literally_and_any_alphabet() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    for name in ["ci_deploy", "ciXdeploy", "Äpfel export", "100% coverage"] {
        app.add_key(BASE, &form(name, "30")).await;
    }
    let rows = app
        .get(&format!("{BASE}?q=ci_deploy"))
        .await
        .texts("tbody tr");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("ci_deploy"));
    let rows = app
        .get(&format!("{BASE}?q=%C3%A4pfel"))
        .await
        .texts("tbody tr");
    assert_eq!(rows.len(), 1, "case-insensitive beyond ASCII: {rows:?}");
    assert_eq!(
        app.get(&format!("{BASE}?q=100%25"))
            .await
            .texts("tbody tr")
            .len(),
        1
    );
}

#[tokio::test]
async fn absurd_page_numbers_show_an_empty_page() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.add_key(BASE, &form("only", "30")).await;
    let page = app.get(&format!("{BASE}?page=999999999999999999")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text(".empty-state").contains("No access keys") || page.texts("tbody tr").is_empty()
    );
    assert_eq!(
        app.get(&format!("{BASE}?page=-5")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("{BASE}?page=abc")).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn deleting_one_key_twice_at_once_frees_one_place_only() {
    let app = spawn_app().await;
    app.signed_in_user().await;
    let first = app.add_key("/my/keys", &form("one", "30")).await;
    app.add_key("/my/keys", &form("two", "30")).await;
    let url = format!("/my/keys/{}/delete", first.id);
    let (a, b) = tokio::join!(app.post(&url, &[]), app.post(&url, &[]));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [303, 404]);
    assert_eq!(app.count("SELECT personal_key_count FROM users").await, 1);
    app.add_key("/my/keys", &form("three", "30")).await;
    assert_eq!(
        app.post("/my/keys", &form("four", "30")).await.status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn sending_a_secret_form_twice_creates_one_key_and_one_secret() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let form = app.get(&format!("{BASE}/new")).await;
    let once = form
        .attr("input[name=once]", "value")
        .expect("a single-use token");
    let fields = [
        ("name", "billing export"),
        ("key_type", "access"),
        ("validity", "30"),
        ("once", once.as_str()),
    ];
    let first = app.post(BASE, &fields).await;
    assert_eq!(first.status, StatusCode::OK);
    let id = first.attr("#access-key", "value").unwrap();

    // The browser posts the same form again (a reload of the secret page, a double click).
    let again = app.post(BASE, &fields).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .text("#add-conflict")
            .contains("This form was already sent")
    );
    assert!(!again.body.contains("kws_"), "no secret is shown again");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_keys WHERE name = 'billing export'")
            .await,
        1
    );

    // The same for Generate new secret key: the second post changes nothing.
    let warning = app.get(&format!("{BASE}/{id}/regenerate")).await;
    let once = warning.attr("input[name=once]", "value").unwrap();
    let path = format!("{BASE}/{id}/regenerate");
    let regenerated = app.post(&path, &[("grace", ""), ("once", &once)]).await;
    assert_eq!(regenerated.status, StatusCode::OK);
    let secret = regenerated.attr("#secret-key", "value").unwrap();
    let again = app.post(&path, &[("grace", ""), ("once", &once)]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("a new secret was generated then"));
    assert!(
        app.authenticate(&id, &secret).await.is_ok(),
        "the shown secret still works"
    );

    // A fresh form works as before.
    let form = app.get(&format!("{BASE}/new")).await;
    let fresh = form.attr("input[name=once]", "value").unwrap();
    assert_ne!(fresh, fields[3].1);
}

#[tokio::test]
async fn a_second_key_with_a_name_in_use_is_created_with_a_word_about_it() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let first = app.post(BASE, &form("Billing export", "30")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.text("#namesakes").is_empty(), "the first name is new");
    // Names are compared as people read them: letter case aside.
    let second = app.post(BASE, &form("billing EXPORT", "30")).await;
    assert_eq!(second.status, StatusCode::OK, "equal names are allowed");
    assert!(
        second
            .text("#namesakes")
            .contains("Another key already has the name “billing EXPORT”"),
        "{}",
        second.text("#namesakes")
    );
    let third = app.post(BASE, &form("Billing export", "30")).await;
    assert!(
        third
            .text("#namesakes")
            .contains("2 other keys already have")
    );
    // A personal key is in another place: the tenant's names do not count.
    let mine = app.post("/my/keys", &form("Billing export", "30")).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(mine.text("#namesakes").is_empty());
}

#[tokio::test]
async fn a_page_past_the_end_says_so_and_links_to_the_last_page() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    for i in 0..3 {
        app.add_key(BASE, &form(&format!("key {i}"), "30")).await;
    }
    let page = app.get(&format!("{BASE}?page=99&sort=name")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text(".empty-state h3"), "There is no such page");
    assert!(!page.body.contains("No access keys yet"));
    let back = page.attr(".empty-state a", "href").unwrap();
    assert_eq!(back, format!("{BASE}?sort=name"), "page 1 is the last one");
    let last = app.get(&back).await;
    assert_eq!(
        last.html
            .select(&scraper::Selector::parse("tbody tr").unwrap())
            .count(),
        3
    );
}

#[tokio::test]
async fn deactivating_asks_first_and_the_list_says_what_happened() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = app.add_key(BASE, &form("nightly export", "30")).await;
    let list = app.get(BASE).await;
    let ask = list
        .attr(".row-menu a[href*='/deactivate']", "href")
        .expect("the row menu asks before deactivating");
    assert!(
        list.html
            .select(&scraper::Selector::parse(".row-menu form[action$='/deactivate']").unwrap())
            .next()
            .is_none()
    );

    let confirm = app.get(&ask).await;
    assert_eq!(confirm.text("h1"), "Deactivate access key?");
    assert!(
        confirm
            .text("main")
            .contains("programs that use it are refused")
    );
    assert!(
        app.authenticate(&key.id, &key.secret).await.is_ok(),
        "asking changes nothing"
    );

    let done = app
        .post(
            &format!("{BASE}/{}/deactivate", key.id),
            &[("return_to", "list")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let back = app.get(&done.location()).await;
    assert_eq!(
        back.text("[role=status]"),
        "Deactivated the key “nightly export”: it no longer authenticates until it is activated again."
    );
    assert!(app.authenticate(&key.id, &key.secret).await.is_err());
}
