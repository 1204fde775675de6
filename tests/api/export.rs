//! Inventory export (issue 17, SPEC §9): `GET /api/v1/apikeys/export` and the Access keys tab's
//! Download menu write every key matching the list's filters as CSV or JSON, streamed in
//! batches, audited, with formula-safe cells.

use chrono::Duration;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use keyward::domain::{Actor, Permission};
use keyward::service::key_auth::Attempt;
use keyward::service::keys::{
    self, CSV_HEADER, ExpiryChoice, ExportFormat, KeyChanges, KeyQuery, KeySort, NewKey, Scope,
    Switch,
};

use crate::common::rest::{Key, call, tenant_key};
use crate::common::{PASSWORD, TestApp, USER_EMAIL, spawn_app, start_time};

const BASE: &str = "/user-access/keys";

fn actor(user_id: &str, label: &str, permissions: Vec<String>) -> Actor {
    Actor {
        user_id: user_id.to_string(),
        label: label.to_string(),
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

// Each key of the inventory differs in every one of these.
#[allow(clippy::too_many_arguments)]
async fn create(
    app: &TestApp,
    actor: &Actor,
    scope: Scope,
    name: &str,
    key_type: &str,
    expiry: ExpiryChoice,
    groups: &[&str],
    roles: &[&str],
) -> keys::OneTimeSecret {
    let input = NewKey {
        name: name.into(),
        key_type: key_type.into(),
        expiry: Ok(expiry),
        group_ids: groups.iter().map(|g| g.to_string()).collect(),
        role_ids: roles.iter().map(|r| r.to_string()).collect(),
        rate_limit: Ok(None),
        once: Default::default(),
    };
    keys::create(&app.state.pool, &app.state.keyring(), actor, scope, input)
        .await
        .unwrap_or_else(|e| panic!("{name} created: {e:?}"))
}

async fn present(app: &TestApp, id: &str, secret: &str, ip: &str) {
    let ring = app.state.keyring();
    let attempt = Attempt {
        presented: keyward::auth::key_auth::from_pair(&format!("{id}::{secret}")),
        client_ip: ip,
        user_agent: "inventory-test/1.0",
        limit_client: true,
        needs_caller: None,
    };
    app.state
        .key_checker
        .check(&ring, attempt)
        .await
        .unwrap_or_else(|e| panic!("{id} accepted: {e:?}"));
}

/// The keys of the tests below, made by the signed-in administrator (Ada Lovelace):
/// - `deploy`: access key, role Read Only, group Readers, never expires, two networks, used
///   from 203.0.113.7 and 30 seconds later from 198.51.100.9;
/// - `billing-sync`: API key, 30 days, never used, deactivated;
/// - `grace-laptop`: Grace's personal key, 90 days;
/// - the reader: a tenant key with Read Only made in the console (the API caller).
struct Made {
    reader: Key,
    deploy: String,
    billing: String,
    personal: String,
    admin: Actor,
}

async fn inventory(app: &TestApp) -> Made {
    let admin_id = app.signed_in_admin().await;
    let admin = actor(&admin_id, "Ada Lovelace", everything());
    let reader = tenant_key(app, "reader", "access", &["role_read_only"]).await;
    sqlx::query(
        "INSERT INTO user_groups (id, name, description, builtin, created_at) \
         VALUES ('grp_readers', 'Readers', '', 0, 0)",
    )
    .execute(&app.state.pool)
    .await
    .unwrap();
    let deploy = create(
        app,
        &admin,
        Scope::Tenant,
        "deploy",
        "access",
        ExpiryChoice::Never,
        &["grp_readers"],
        &["role_read_only"],
    )
    .await;
    keys::update(
        &app.state.pool,
        &app.state.keyring(),
        &admin,
        Scope::Tenant,
        &deploy.key_id,
        KeyChanges {
            name: None,
            description: None,
            expiry: None,
            group_ids: None,
            role_ids: None,
            allowed_networks: Some("203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32".into()),
            rate_limit: Some(Ok(Some(
                keyward::domain::RateLimit::new(10.0, Some(20.0)).unwrap(),
            ))),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("networks set: {e:?}"));
    app.clock.advance(Duration::minutes(5));
    present(app, &deploy.key_id, deploy.secret.expose(), "203.0.113.7").await;
    app.clock.advance(Duration::seconds(30));
    present(app, &deploy.key_id, deploy.secret.expose(), "198.51.100.9").await;
    app.state.key_checker.flush_addresses().await;

    let billing = create(
        app,
        &admin,
        Scope::Tenant,
        "billing-sync",
        "api",
        ExpiryChoice::Days(30),
        &[],
        &[],
    )
    .await;
    keys::switch(
        &app.state.pool,
        &app.state.keyring(),
        &admin,
        Scope::Tenant,
        &billing.key_id,
        Switch::Deactivate,
    )
    .await
    .unwrap();

    let grace_id = app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    let grace = actor(&grace_id, "Grace", vec![]);
    let personal = create(
        app,
        &grace,
        Scope::Personal,
        "grace-laptop",
        "access",
        ExpiryChoice::Days(90),
        &[],
        &[],
    )
    .await;
    Made {
        reader,
        deploy: deploy.key_id,
        billing: billing.key_id,
        personal: personal.key_id,
        admin,
    }
}

/// One request with a key: status, headers, body text.
async fn get(
    app: &TestApp,
    path: &str,
    key: &Key,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = reqwest::Client::new()
        .get(app.url(path))
        .header("authorization", key.bearer())
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

fn rows_of(csv_text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn by_id<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items
        .iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("{id} exported"))
}

#[tokio::test]
async fn json_export_has_every_field_for_each_kind_of_key() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    let (status, headers, body) =
        get(&app, "/api/v1/apikeys/export?format=json", &made.reader).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"keyward-access-keys-2026-11-23.json\""
    );
    assert_eq!(headers["cache-control"], "no-store");
    let items: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(items.len(), 4, "{body}");
    let ids: Vec<&str> = items.iter().map(|k| k["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "key ID order");

    let used_at = (start_time() + Duration::minutes(5) + Duration::seconds(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        by_id(&items, &made.deploy),
        &serde_json::json!({
            "id": made.deploy, "name": "deploy", "type": "access",
            "owner_id": null, "owner": null, "created_by": "Ada Lovelace",
            "created_at": "2026-11-23T10:00:00Z", "last_rotated_at": null,
            "last_used_at": used_at, "last_used_address": "198.51.100.9",
            "expires_at": null, "status": "active",
            "roles": ["Read Only"], "groups": ["Readers"],
            "allowed_networks": ["203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32"],
            "rate_limit": {"per_second": 10.0, "burst": 20},
            "policy_compliance": "in_policy", "policy_findings": []
        })
    );
    let billing = by_id(&items, &made.billing);
    assert_eq!(billing["type"], "api");
    assert_eq!(billing["status"], "inactive");
    assert_eq!(billing["last_used_at"], Value::Null);
    assert_eq!(billing["last_used_address"], Value::Null);
    assert_eq!(billing["rate_limit"], Value::Null, "no limit");
    let thirty_days =
        (start_time() + Duration::minutes(5) + Duration::seconds(30) + Duration::days(30))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(billing["expires_at"], thirty_days.as_str());
    let personal = by_id(&items, &made.personal);
    assert_eq!(personal["owner"], "Grace");
    assert!(personal["owner_id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(personal["roles"], serde_json::json!([]));
    assert!(!body.contains("kws_"), "no secret in the export");
}

#[tokio::test]
async fn csv_export_parses_back_to_the_same_keys_with_console_words() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    let (status, headers, body) =
        get(&app, "/api/v1/apikeys/export?format=csv", &made.reader).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        headers["content-type"],
        "text/csv; charset=utf-8; header=present"
    );
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"keyward-access-keys-2026-11-23.csv\""
    );
    assert!(body.contains("\r\n"), "RFC 4180 line ends");
    let (header, rows) = rows_of(&body);
    assert_eq!(header, CSV_HEADER.to_vec());
    let (_, _, json) = get(&app, "/api/v1/apikeys/export?format=json", &made.reader).await;
    let items: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), items.len());
    for (row, item) in rows.iter().zip(&items) {
        assert_eq!(
            row[0],
            item["id"].as_str().unwrap(),
            "same keys, same order"
        );
        assert_eq!(row[1], item["name"].as_str().unwrap());
        assert_eq!(row[5], item["created_at"].as_str().unwrap());
        assert_eq!(row[7], item["last_used_at"].as_str().unwrap_or(""));
    }
    let row = |id: &str| rows.iter().find(|r| r[0] == id).unwrap().clone();
    let deploy = row(&made.deploy);
    assert_eq!(
        deploy[2..].to_vec(),
        vec![
            "Access key",
            "Tenant",
            "Ada Lovelace",
            "2026-11-23T10:00:00Z",
            "",
            "2026-11-23T10:05:30Z",
            "198.51.100.9",
            "Never",
            "Active",
            "Read Only",
            "Readers",
            "203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32",
            "10 requests per second, burst 20",
            "In policy",
        ]
    );
    let billing = row(&made.billing);
    assert_eq!(
        (billing[2].as_str(), billing[10].as_str()),
        ("API", "Inactive")
    );
    assert_eq!(row(&made.personal)[3], "Grace");
}

#[tokio::test]
async fn the_export_keeps_to_the_lists_filters() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    let ids = |body: &str| -> Vec<String> {
        let items: Vec<Value> = serde_json::from_str(body).unwrap();
        items
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect()
    };
    for (query, expected) in [
        ("type=api", vec![made.billing.clone()]),
        ("status=inactive", vec![made.billing.clone()]),
        ("q=DEPL", vec![made.deploy.clone()]),
        (
            "q=grace&type=access&status=active",
            vec![made.personal.clone()],
        ),
        ("q=nothing-like-this", vec![]),
    ] {
        let (status, _, body) = get(
            &app,
            &format!("/api/v1/apikeys/export?format=json&{query}"),
            &made.reader,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(ids(&body), expected, "{query}");
    }
    // A filter value the list refuses is refused here the same way, naming its field.
    let (status, body, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys/export?format=csv&status=sleeping",
        Some(&made.reader.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "status", "{body}");
}

#[tokio::test]
async fn an_unknown_format_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    for path in [
        "/api/v1/apikeys/export?format=xml",
        "/api/v1/apikeys/export",
    ] {
        let (status, body, _) =
            call(&app, Method::GET, path, Some(&made.reader.bearer()), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["error"]["field"], "format", "{body}");
    }
    // The console answers a bad link as it answers others: a page saying what was wrong.
    let page = app.get(&format!("{BASE}/export?format=xml")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("CSV or JSON"), "{}", page.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'keys.exported'")
            .await,
        0,
        "nothing exported, nothing audited"
    );
}

#[tokio::test]
async fn exporting_needs_keys_read() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    let verifier = tenant_key(&app, "verifier", "access", &["role_integration"]).await;
    let (status, body, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys/export?format=csv",
        Some(&verifier.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys/export?format=csv",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A person without keys:read: no Download menu reachable, and the link answers 403.
    let user = app.other_client();
    user.create_user("linus@example.com", "Linus", PASSWORD)
        .await;
    user.sign_in("linus@example.com", PASSWORD).await;
    let page = user.get(&format!("{BASE}/export?format=csv")).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // The service refuses too, whoever calls it.
    let nobody = actor("usr_nobody", "Nobody", vec![]);
    let refused = keys::export(
        &app.state.pool,
        &app.state.keyring(),
        &nobody,
        query(""),
        ExportFormat::Csv,
    )
    .await;
    assert!(refused.is_err());
    let _ = made;
}

#[tokio::test]
async fn cells_that_a_spreadsheet_would_run_are_escaped() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    for name in ["=HYPERLINK(\"http://evil\")", "+1+2", "-3", "@SUM(A1)"] {
        create(
            &app,
            &made.admin,
            Scope::Tenant,
            name,
            "access",
            ExpiryChoice::Days(30),
            &[],
            &[],
        )
        .await;
    }
    let (_, _, body) = get(&app, "/api/v1/apikeys/export?format=csv", &made.reader).await;
    let (_, rows) = rows_of(&body);
    let mut names: Vec<String> = rows.iter().map(|r| r[1].clone()).collect();
    names.sort();
    for escaped in ["'=HYPERLINK(\"http://evil\")", "'+1+2", "'-3", "'@SUM(A1)"] {
        assert!(
            names.contains(&escaped.to_string()),
            "{escaped} in {names:?}"
        );
    }
    assert!(
        rows.iter()
            .all(|r| r.iter().all(|c| !c.starts_with(['=', '+', '-', '@'])))
    );
    // JSON is not read by spreadsheets: names are as given.
    let (_, _, json) = get(&app, "/api/v1/apikeys/export?format=json", &made.reader).await;
    assert!(
        json.contains("\"name\":\"=HYPERLINK(\\\"http://evil\\\")\""),
        "{json}"
    );
}

#[tokio::test]
async fn each_export_is_audited_with_who_what_and_how_many_and_no_secret() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    get(
        &app,
        "/api/v1/apikeys/export?format=csv&type=access&q=dep",
        &made.reader,
    )
    .await;
    let page = app.get(&format!("{BASE}/export?format=json")).await;
    assert_eq!(page.status, StatusCode::OK);
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor_label, outcome, details FROM audit_log WHERE action = 'keys.exported' \
         ORDER BY id",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].0.contains(&made.reader.id),
        "the key that exported: {rows:?}"
    );
    assert_eq!(
        rows[0].2,
        "CSV of 1 key; filters: search “dep”, type access"
    );
    assert_eq!(rows[1].0, "ada@example.com", "the person who downloaded");
    assert_eq!(rows[1].2, "JSON of 4 keys; no filters");
    let everything: Vec<(String,)> = sqlx::query_as("SELECT details FROM audit_log")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert!(everything.iter().all(|(d,)| !d.contains("kws_")));
}

fn query(search: &str) -> KeyQuery {
    KeyQuery {
        search: search.into(),
        status: None,
        key_type: None,
        out_of_policy: false,
        usage: Default::default(),
        sort: KeySort::default(),
        descending: None,
        page: 1,
        per_page: 1,
    }
}

/// The pieces of an export read in batches of `batch`, joined.
async fn collect(
    app: &TestApp,
    admin: &Actor,
    format: ExportFormat,
    batch: i64,
) -> (usize, String) {
    let export = keys::export_in_batches(
        &app.state.pool,
        &app.state.keyring(),
        admin,
        query(""),
        format,
        batch,
    )
    .await
    .unwrap();
    let mut body = Box::pin(export.body());
    let (mut pieces, mut out) = (0, Vec::new());
    while let Some(piece) = body.next().await {
        out.extend_from_slice(&piece.unwrap());
        pieces += 1;
    }
    (pieces, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn batches_join_into_the_same_file_whatever_their_size() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    for format in [ExportFormat::Csv, ExportFormat::Json] {
        let (one_piece, whole) = collect(&app, &made.admin, format, 1000).await;
        let (many, small) = collect(&app, &made.admin, format, 1).await;
        assert_eq!(small, whole, "{format:?}");
        assert!(many > one_piece, "{many} pieces in batches of one");
        if format == ExportFormat::Json {
            let items: Vec<Value> = serde_json::from_str(&small).unwrap();
            assert_eq!(items.len(), 4);
        }
    }
}

#[tokio::test]
async fn a_database_failure_part_way_ends_the_stream_with_an_error() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    let export = keys::export_in_batches(
        &app.state.pool,
        &app.state.keyring(),
        &made.admin,
        query(""),
        ExportFormat::Json,
        1,
    )
    .await
    .unwrap();
    let mut body = Box::pin(export.body());
    let head = body.next().await.unwrap().unwrap();
    assert_eq!(&head[..], b"[");
    body.next().await.unwrap().unwrap();
    app.state.pool.close().await;
    let next = body.next().await.expect("an error, not the end");
    assert!(
        next.is_err(),
        "the stream fails instead of closing the array"
    );
    assert!(body.next().await.is_none(), "and ends there");
}

#[tokio::test]
async fn the_download_menu_links_carry_the_lists_filters() {
    let app = spawn_app().await;
    let made = inventory(&app).await;
    let page = app
        .get(&format!("{BASE}?q=dep&status=active&type=access&sort=name"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let links: Vec<String> = page
        .html
        .select(&scraper::Selector::parse(".download-menu a").unwrap())
        .filter_map(|a| a.value().attr("href").map(String::from))
        .collect();
    assert_eq!(
        links,
        vec![
            format!("{BASE}/export?format=csv&q=dep&status=active&type=access"),
            format!("{BASE}/export?format=json&q=dep&status=active&type=access"),
        ]
    );
    let res = app.client.get(app.url(&links[0])).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, rows) = rows_of(&res.text().await.unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], made.deploy);
    // My access keys has no Download menu.
    let mine = app.get("/my/keys").await;
    assert!(mine.texts(".download-menu").is_empty());
}
