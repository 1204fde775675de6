//! The API key list reads a page in a fixed number of queries, whatever its size, and shows
//! for every key exactly the permissions and assignments that a key check grants it.

use reqwest::StatusCode;
use serde_json::Value;

use keyward::domain::{Actor, Permission};
use keyward::service::keys::{self, ExpiryChoice, KeyQuery, KeySort, NewKey, OneTimeSecret, Scope};

use crate::common::{PASSWORD, TestApp, USER_EMAIL, spawn_app};

/// Statements a page read may send: the page, its count, the assignments of every key on it,
/// and the role and group mappings.
const PAGE_QUERIES: u32 = 4;

fn actor(user_id: &str, permissions: Vec<String>) -> Actor {
    Actor {
        user_id: user_id.to_string(),
        label: user_id.to_string(),
        is_admin: !permissions.is_empty(),
        permissions,
        client_ip: "127.0.0.1".into(),
        acting_key: None,
        previous_secret: false,
    }
}

fn everything() -> Vec<String> {
    Permission::ALL
        .iter()
        .map(|p| p.as_str().to_string())
        .collect()
}

async fn create(
    app: &TestApp,
    actor: &Actor,
    scope: Scope,
    name: &str,
    key_type: &str,
    groups: &[&str],
    roles: &[&str],
) -> OneTimeSecret {
    let input = NewKey {
        name: name.into(),
        key_type: key_type.into(),
        expiry: Ok(ExpiryChoice::Days(90)),
        group_ids: groups.iter().map(|g| g.to_string()).collect(),
        role_ids: roles.iter().map(|r| r.to_string()).collect(),
        rate_limit: Ok(None),
        once: Default::default(),
    };
    keys::create(&app.state.pool, &app.state.keyring(), actor, scope, input)
        .await
        .unwrap_or_else(|e| panic!("{name} created: {e:?}"))
}

/// An administrator, a user in a Readers group (Read Only role), and 101 keys: tenant keys
/// with every mix of roles and groups, API keys, and a personal key of each person. Returns
/// the administrator, the user, and every key made.
async fn many_keys(app: &TestApp) -> (Actor, Actor, Vec<OneTimeSecret>) {
    let admin_id = app.signed_in_admin().await;
    let user_id = app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    for sql in [
        "INSERT INTO user_groups (id, name, description, builtin, created_at) \
         VALUES ('grp_readers', 'Readers', '', 0, 0)",
        "INSERT INTO group_roles (group_id, role_id) VALUES ('grp_readers', 'role_read_only')",
    ] {
        sqlx::query(sql).execute(&app.state.pool).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id, added_at) VALUES ('grp_readers', $1, 0)",
    )
    .bind(&user_id)
    .execute(&app.state.pool)
    .await
    .unwrap();
    let admin = actor(&admin_id, everything());
    let user = actor(&user_id, vec![]);
    let mut made = Vec::new();
    let roles: [&[&str]; 4] = [
        &[],
        &["role_read_only"],
        &["role_key_admin", "role_integration"],
        &["role_integration"],
    ];
    let groups: [&[&str]; 3] = [
        &[],
        &["grp_readers"],
        &["grp_administrators", "grp_readers"],
    ];
    for i in 0..99 {
        let key_type = if i % 5 == 4 { "api" } else { "access" };
        made.push(
            create(
                app,
                &admin,
                Scope::Tenant,
                &format!("bulk {i:02}"),
                key_type,
                groups[i % 3],
                roles[i % 4],
            )
            .await,
        );
    }
    made.push(
        create(
            app,
            &admin,
            Scope::Personal,
            "ada's laptop",
            "access",
            &[],
            &[],
        )
        .await,
    );
    made.push(
        create(
            app,
            &user,
            Scope::Personal,
            "grace's laptop",
            "access",
            &[],
            &[],
        )
        .await,
    );
    (admin, user, made)
}

fn query(per_page: i64) -> KeyQuery {
    KeyQuery {
        search: String::new(),
        status: None,
        key_type: None,
        out_of_policy: false,
        usage: Default::default(),
        sort: KeySort::Name,
        descending: None,
        page: 1,
        per_page,
    }
}

#[tokio::test]
async fn a_page_of_keys_costs_the_same_queries_whatever_its_size() {
    let app = spawn_app().await;
    let (admin, user, _) = many_keys(&app).await;
    let ring = app.state.keyring();
    let mut conn = app.state.pool.acquire().await.unwrap();
    for per_page in [1, 10, 100] {
        let (page, queries) = keys::count_round_trips(keys::list_details(
            &mut conn,
            &admin,
            Scope::Tenant,
            query(per_page),
            &ring,
        ))
        .await;
        let page = page.unwrap();
        assert_eq!(page.items.len() as i64, per_page);
        assert_eq!(page.total, 101);
        assert_eq!(queries, PAGE_QUERIES, "a page of {per_page}");
    }
    // A person's own keys: the same.
    let (page, queries) = keys::count_round_trips(keys::list_details(
        &mut conn,
        &user,
        Scope::Personal,
        query(100),
        &ring,
    ))
    .await;
    assert_eq!(page.unwrap().items.len(), 1);
    assert_eq!(queries, PAGE_QUERIES);
    // The console's list reads no assignments: the page and its count.
    for per_page in [1, 100] {
        let (page, queries) = keys::count_round_trips(keys::list(
            &mut conn,
            &admin,
            Scope::Tenant,
            query(per_page),
            &ring,
        ))
        .await;
        assert_eq!(page.unwrap().items.len() as i64, per_page);
        assert_eq!(queries, 2, "a console page of {per_page}");
    }
    // One key: the key, its assignments, the mappings.
    let first = keys::list_details(&mut conn, &admin, Scope::Tenant, query(1), &ring)
        .await
        .unwrap();
    let (one, queries) = keys::count_round_trips(keys::details(
        &mut conn,
        &admin,
        Scope::Tenant,
        &first.items[0].id,
        &ring,
    ))
    .await;
    assert_eq!(one.unwrap().id, first.items[0].id);
    assert_eq!(queries, 3);
}

/// `GET path` with a key, as JSON.
async fn get(app: &TestApp, path: &str, key: &OneTimeSecret) -> Value {
    let res = reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(format!("{}::{}", key.key_id, key.secret.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.json().await.unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_listed_key_shows_what_a_key_check_grants_it() {
    let app = spawn_app().await;
    let (_, _, made) = many_keys(&app).await;
    // The caller: a tenant key that may read keys (made by the Key Administrator role).
    let caller = made
        .iter()
        .find(|k| k.name == "bulk 02")
        .expect("bulk 02 holds role_key_admin");
    let page = get(&app, "/api/v1/apikeys?per_page=100&sort=name", caller).await;
    let mut items: Vec<Value> = page["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 100);
    assert_eq!(page["total"], 101);
    let page2 = get(
        &app,
        "/api/v1/apikeys?per_page=100&sort=name&page=2",
        caller,
    )
    .await;
    items.extend(page2["items"].as_array().unwrap().iter().cloned());
    assert_eq!(items.len(), 101);

    let mut personal_seen = 0;
    for key in &made {
        let item = items
            .iter()
            .find(|i| i["id"] == key.key_id.as_str())
            .unwrap_or_else(|| panic!("{} listed", key.name));
        let described = get(&app, &format!("/api/v1/apikeys/{}", key.key_id), caller).await;
        assert_eq!(
            &described, item,
            "{}: the list and the key's own view agree",
            key.name
        );
        let checked = app
            .check_key(&key.key_id, key.secret.expose())
            .await
            .unwrap_or_else(|r| panic!("{} accepted: {r:?}", key.name));
        assert_eq!(
            strings(&item["permissions"]),
            checked.permissions(),
            "{}",
            key.name
        );
        assert_eq!(
            strings(&item["group_ids"]),
            checked.group_ids(),
            "{}",
            key.name
        );
        assert_eq!(
            strings(&item["role_ids"]),
            checked.role_ids(),
            "{}",
            key.name
        );
        if !item["owner"].is_null() {
            personal_seen += 1;
            assert!(strings(&item["group_ids"]).is_empty());
            assert!(strings(&item["role_ids"]).is_empty());
        }
    }
    assert_eq!(personal_seen, 2);

    // Spot checks of what the rules give, so that agreeing on nothing cannot pass.
    let item = |name: &str| {
        let id = &made.iter().find(|k| k.name == name).unwrap().key_id;
        items
            .iter()
            .find(|i| i["id"] == id.as_str())
            .unwrap()
            .clone()
    };
    let mixed = item("bulk 02"); // groups: administrators and readers; roles: key admin, integration
    assert_eq!(
        strings(&mixed["group_ids"]),
        ["grp_administrators", "grp_readers"]
    );
    assert_eq!(
        strings(&mixed["role_ids"]),
        ["role_integration", "role_key_admin"]
    );
    assert_eq!(strings(&mixed["permissions"]), everything_sorted());
    let bare = item("bulk 00");
    assert!(strings(&bare["permissions"]).is_empty());
    let grace = item("grace's laptop");
    assert_eq!(grace["owner"]["name"], "Grace");
    assert_eq!(
        strings(&grace["permissions"]),
        ["audit:read", "keys:read", "users:read"],
        "a personal key acts with its owner's groups"
    );

    // A person's own list through their personal key: the same view.
    let grace_key = made.iter().find(|k| k.name == "grace's laptop").unwrap();
    let mine = get(&app, "/api/v1/me/keys", grace_key).await;
    assert_eq!(mine["total"], 1);
    let own = &mine["items"][0];
    assert_eq!(own["id"], grace_key.key_id.as_str());
    assert_eq!(own["permissions"], grace["permissions"]);
}

fn everything_sorted() -> Vec<String> {
    let mut all = everything();
    all.sort();
    all
}
