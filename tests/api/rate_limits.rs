//! Per-key rate limits (SPEC §10): set in the console and the API, checked field by field,
//! enforced after every other check with 429 and the rate-limit headers (or `RATE_LIMITED`
//! from verify), counted in the usage counts, and held across two instances on one database.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::rest::{Key, call, tenant_key};
use crate::common::{TestApp, spawn_app};

const BASE: &str = "/user-access/keys";

pub(crate) async fn admin_app() -> TestApp {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app
}

/// A tenant key made in the console with this rate limit (`""` for none).
pub(crate) async fn limited_key(
    app: &TestApp,
    name: &str,
    roles: &[&str],
    rate: &str,
    burst: &str,
) -> Key {
    let mut fields = vec![
        ("name", name),
        ("key_type", "access"),
        ("validity", "90"),
        ("rate_per_second", rate),
        ("rate_burst", burst),
    ];
    for r in roles {
        fields.push(("roles", r));
    }
    let shown = add_key(app, BASE, &fields).await;
    Key {
        id: shown.id,
        secret: shown.secret,
    }
}

/// What the servers logged after their last database error (empty when none).
fn database_error() -> String {
    let logs = crate::common::captured_logs();
    match logs.rfind("error=database") {
        Some(at) => logs[at..(at + 1500).min(logs.len())].to_string(),
        None => String::new(),
    }
}

/// `TestApp::add_key`, failing with the server's error lines when the key is not made.
async fn add_key(app: &TestApp, base: &str, fields: &[(&str, &str)]) -> Key {
    let page = app.post(base, fields).await;
    if page.status != StatusCode::OK {
        let logs = crate::common::captured_logs();
        let at = logs.find("error=database").unwrap_or(0);
        panic!(
            "key not created ({}): {}",
            page.status,
            &logs[at..(at + 3000).min(logs.len())]
        );
    }
    Key {
        id: page.attr("#access-key", "value").expect("access key shown"),
        secret: page.attr("#secret-key", "value").expect("secret shown"),
    }
}

pub(crate) async fn current(
    app: &TestApp,
    key: &Key,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    call(
        app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(&key.bearer()),
        None,
    )
    .await
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The key's usage counts by outcome, after a flush.
pub(crate) async fn usage(app: &TestApp, key_id: &str) -> Vec<(String, i64)> {
    app.state.key_checker.flush_usage().await;
    sqlx::query_as(
        "SELECT outcome, CAST(SUM(count) AS BIGINT) FROM key_usage WHERE key_id = $1 \
         GROUP BY outcome ORDER BY outcome",
    )
    .bind(key_id)
    .fetch_all(&app.state.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_api_sets_shows_changes_and_removes_a_rate_limit() {
    let app = admin_app().await;
    let admin = tenant_key(&app, "admin", "access", &["role_key_admin"]).await;
    let (status, made, _) = call(
        &app,
        Method::POST,
        "/api/v1/apikeys",
        Some(&admin.bearer()),
        Some(json!({"name": "metered", "rate_limit": {"per_second": 0.5}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    // Burst defaults to the rate rounded up.
    assert_eq!(made["rate_limit"], json!({"per_second": 0.5, "burst": 1}));
    let id = made["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/apikeys/{id}");

    let (_, body, _) = call(&app, Method::GET, &path, Some(&admin.bearer()), None).await;
    assert_eq!(body["rate_limit"], json!({"per_second": 0.5, "burst": 1}));
    let (_, list, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys?q=metered",
        Some(&admin.bearer()),
        None,
    )
    .await;
    assert_eq!(
        list["items"][0]["rate_limit"],
        json!({"per_second": 0.5, "burst": 1})
    );

    let (status, body, _) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin.bearer()),
        Some(json!({"rate_limit": {"per_second": 20, "burst": 40}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rate_limit"], json!({"per_second": 20.0, "burst": 40}));
    // A change that names other fields keeps the limit.
    let (_, body, _) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin.bearer()),
        Some(json!({"description": "billing export"})),
    )
    .await;
    assert_eq!(body["rate_limit"], json!({"per_second": 20.0, "burst": 40}));
    let (status, body, _) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin.bearer()),
        Some(json!({"rate_limit": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rate_limit"], Value::Null);

    let audited: Vec<(String,)> = sqlx::query_as(
        "SELECT details FROM audit_log WHERE action = 'key.rate_limit_changed' AND target_id = $1 \
         ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(
        audited,
        vec![
            ("20 requests per second, burst 40".to_string(),),
            ("no rate limit".to_string(),)
        ]
    );
    let created: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'key.created' AND target_id = $1",
    )
    .bind(&id)
    .fetch_one(&app.state.pool)
    .await
    .unwrap();
    assert!(
        created.ends_with("0.5 requests per second, burst 1"),
        "{created}"
    );

    // The OpenAPI document describes the field.
    let (_, doc, _) = call(&app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert!(doc["components"]["schemas"]["KeyView"]["properties"]["rate_limit"].is_object());
    assert!(doc["components"]["schemas"]["RateLimitBody"].is_object());
}

#[tokio::test]
async fn bad_rate_limits_get_field_errors_and_change_nothing() {
    let app = admin_app().await;
    let admin = tenant_key(&app, "admin", "access", &["role_key_admin"]).await;
    for (limit, status, field) in [
        (json!({"per_second": 0}), 422, "rate_limit.per_second"),
        (json!({"per_second": -3}), 422, "rate_limit.per_second"),
        (json!({"per_second": 2000000}), 422, "rate_limit.per_second"),
        (json!({"per_second": 1.234}), 422, "rate_limit.per_second"),
        (
            json!({"per_second": 5, "burst": 0}),
            422,
            "rate_limit.burst",
        ),
        (
            json!({"per_second": 5, "burst": 2.5}),
            422,
            "rate_limit.burst",
        ),
        (
            json!({"per_second": 5, "burst": 1e7}),
            422,
            "rate_limit.burst",
        ),
        (json!({"per_second": "5"}), 400, ""),
        (json!({"burst": 5}), 400, "per_second"),
        (json!({"per_second": 5, "brust": 5}), 400, "brust"),
        (json!(7), 400, ""),
    ] {
        let (got, body, _) = call(
            &app,
            Method::POST,
            "/api/v1/apikeys",
            Some(&admin.bearer()),
            Some(json!({"name": "bad", "rate_limit": limit})),
        )
        .await;
        assert_eq!(got.as_u16(), status, "{limit}: {body}");
        if !field.is_empty() {
            assert_eq!(body["error"]["field"], field, "{limit}: {body}");
        }
        let (got, body, _) = call(
            &app,
            Method::PATCH,
            &format!("/api/v1/apikeys/{}", admin.id),
            Some(&admin.bearer()),
            Some(json!({"name": "renamed", "rate_limit": limit})),
        )
        .await;
        assert_eq!(got.as_u16(), status, "{limit}: {body}");
    }
    let made: i64 = app
        .count("SELECT COUNT(*) FROM access_keys WHERE name IN ('bad', 'renamed')")
        .await;
    assert_eq!(made, 0);

    // The console's forms: a message beside the field, the form kept, nothing written.
    for (rate, burst, error_id) in [
        ("ten", "", "#rate-per-second-error"),
        ("", "5", "#rate-per-second-error"),
        ("0", "", "#rate-per-second-error"),
        ("5", "0.5", "#rate-burst-error"),
        ("5", "many", "#rate-burst-error"),
    ] {
        let page = app
            .post(
                BASE,
                &[
                    ("name", "console bad"),
                    ("key_type", "access"),
                    ("validity", "90"),
                    ("rate_per_second", rate),
                    ("rate_burst", burst),
                ],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rate}/{burst}"
        );
        assert!(!page.text(error_id).is_empty(), "{rate}/{burst}");
        assert_eq!(
            page.attr("#rate-per-second", "value").unwrap_or_default(),
            rate
        );
        let page = app
            .post(
                &format!("{BASE}/{}", admin.id),
                &[
                    ("name", "admin"),
                    ("validity", "keep"),
                    ("roles", "role_key_admin"),
                    ("rate_per_second", rate),
                    ("rate_burst", burst),
                ],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rate}/{burst}"
        );
        assert!(!page.text(error_id).is_empty(), "{rate}/{burst}");
    }
    let made: i64 = app
        .count("SELECT COUNT(*) FROM access_keys WHERE name = 'console bad'")
        .await;
    assert_eq!(made, 0);
    let limited: i64 = app
        .count("SELECT COUNT(*) FROM access_keys WHERE rate_per_second IS NOT NULL")
        .await;
    assert_eq!(limited, 0);
}

#[tokio::test]
async fn the_console_sets_limits_on_tenant_and_personal_keys() {
    let app = admin_app().await;
    let key = limited_key(&app, "metered", &[], "2.5", "").await;
    let page = app.get(&format!("{BASE}/{}", key.id)).await;
    assert!(
        page.body.contains("2.5 requests per second, burst 3"),
        "details show the limit"
    );
    assert_eq!(
        page.attr("#rate-per-second", "value").as_deref(),
        Some("2.5")
    );
    assert_eq!(page.attr("#rate-burst", "value").as_deref(), Some("3"));

    // Changed, then removed, from Key details.
    let save = app
        .post(
            &format!("{BASE}/{}", key.id),
            &[
                ("name", "metered"),
                ("validity", "keep"),
                ("rate_per_second", "100"),
                ("rate_burst", "250"),
            ],
        )
        .await;
    assert_eq!(
        save.status,
        StatusCode::SEE_OTHER,
        "{}",
        save.text(".field-error")
    );
    let page = app.get(&format!("{BASE}/{}", key.id)).await;
    assert!(page.body.contains("100 requests per second, burst 250"));
    let save = app
        .post(
            &format!("{BASE}/{}", key.id),
            &[
                ("name", "metered"),
                ("validity", "keep"),
                ("rate_per_second", ""),
                ("rate_burst", ""),
            ],
        )
        .await;
    assert_eq!(save.status, StatusCode::SEE_OTHER);
    let page = app.get(&format!("{BASE}/{}", key.id)).await;
    assert!(page.body.contains("No limit"));
    assert_eq!(page.attr("#rate-per-second", "value").as_deref(), Some(""));

    // A personal key, from My access keys.
    let person = app.other_client();
    person.signed_in_user().await;
    let mine = add_key(
        &person,
        "/my/keys",
        &[
            ("name", "laptop"),
            ("key_type", "access"),
            ("validity", "90"),
            ("rate_per_second", "1"),
            ("rate_burst", "2"),
        ],
    )
    .await;
    let page = person.get(&format!("/my/keys/{}", mine.id)).await;
    assert!(page.body.contains("1 request per second, burst 2"));
    // Its owner may raise it; an administrator may only tighten it.
    let save = person
        .post(
            &format!("/my/keys/{}", mine.id),
            &[
                ("name", "laptop"),
                ("validity", "keep"),
                ("rate_per_second", "10"),
                ("rate_burst", "10"),
            ],
        )
        .await;
    assert_eq!(
        save.status,
        StatusCode::SEE_OTHER,
        "{} {}",
        save.text(".field-error"),
        database_error()
    );
    let raise = app
        .post(
            &format!("{BASE}/{}", mine.id),
            &[
                ("name", "laptop"),
                ("validity", "keep"),
                ("rate_per_second", "20"),
                ("rate_burst", "20"),
            ],
        )
        .await;
    assert_ne!(raise.status, StatusCode::SEE_OTHER);
    let tighten = app
        .post(
            &format!("{BASE}/{}", mine.id),
            &[
                ("name", "laptop"),
                ("validity", "keep"),
                ("rate_per_second", "1"),
                ("rate_burst", "1"),
            ],
        )
        .await;
    assert_eq!(
        tighten.status,
        StatusCode::SEE_OTHER,
        "{} {}",
        tighten.text(".field-error, [role=alert]"),
        crate::common::captured_logs()
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stored: (f64, i64) =
        sqlx::query_as("SELECT rate_per_second, rate_burst FROM access_keys WHERE id = $1")
            .bind(&mine.id)
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(stored, (1.0, 1));
}

#[tokio::test]
async fn a_key_only_lowers_its_own_rate_limit() {
    let app = admin_app().await;
    let worker = limited_key(&app, "worker", &["role_key_admin"], "10", "10").await;
    let path = format!("/api/v1/apikeys/{}", worker.id);
    for widened in [
        json!(null),
        json!({"per_second": 11, "burst": 10}),
        json!({"per_second": 10, "burst": 11}),
    ] {
        let (status, answer, _) = call(
            &app,
            Method::PATCH,
            &path,
            Some(&worker.bearer()),
            Some(json!({ "rate_limit": widened })),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], "rate_limit.per_second");
    }
    let (status, answer, _) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&worker.bearer()),
        Some(json!({"rate_limit": {"per_second": 4, "burst": 8}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["rate_limit"], json!({"per_second": 4.0, "burst": 8}));
}

#[tokio::test]
async fn over_its_limit_a_key_gets_429_with_the_rate_limit_headers() {
    let app = admin_app().await;
    let key = limited_key(&app, "metered", &["role_read_only"], "5", "5").await;
    // The clock stands still: exactly the burst passes.
    for n in 0..5 {
        let (status, body, headers) = current(&app, &key).await;
        assert_eq!(status, StatusCode::OK, "request {n}: {body}");
        assert_eq!(header(&headers, "ratelimit-policy"), "\"key\";q=5;w=1");
        assert_eq!(
            header(&headers, "ratelimit"),
            format!("\"key\";r={};t=1", 4 - n)
        );
    }
    let (status, body, headers) = current(&app, &key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 requests per second, burst 5")
    );
    assert_eq!(header(&headers, "retry-after"), "1");
    assert_eq!(header(&headers, "ratelimit-policy"), "\"key\";q=5;w=1");
    assert_eq!(header(&headers, "ratelimit"), "\"key\";r=0;t=1");
    // Any endpoint: the limit is the key's, not the path's.
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys",
        Some(&key.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // 200 ms later one token is back; a second later the whole burst.
    app.clock.advance(Duration::milliseconds(200));
    assert_eq!(current(&app, &key).await.0, StatusCode::OK);
    assert_eq!(current(&app, &key).await.0, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(Duration::seconds(1));
    for _ in 0..5 {
        assert_eq!(current(&app, &key).await.0, StatusCode::OK);
    }
    assert_eq!(current(&app, &key).await.0, StatusCode::TOO_MANY_REQUESTS);

    // Refused requests are counted as rate limited, not accepted; they are not failures of
    // the key (no lockout count) and not audited one by one.
    assert_eq!(
        usage(&app, &key.id).await,
        vec![
            ("accepted".to_string(), 11),
            ("rate_limited".to_string(), 4)
        ]
    );
    let failed: i64 = sqlx::query_scalar("SELECT failed_attempts FROM access_keys WHERE id = $1")
        .bind(&key.id)
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    let audited: i64 = app
        .count("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'key.authentication%'")
        .await;
    assert_eq!(audited, 0);
}

#[tokio::test]
async fn keys_without_a_limit_are_never_limited() {
    let app = admin_app().await;
    let key = tenant_key(&app, "free", "access", &["role_read_only"]).await;
    for _ in 0..60 {
        let (status, _, headers) = current(&app, &key).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.get("ratelimit").is_none());
        assert!(headers.get("ratelimit-policy").is_none());
    }
    let buckets: i64 = app.count("SELECT COUNT(*) FROM key_rate_buckets").await;
    assert_eq!(buckets, 0);
    assert_eq!(
        usage(&app, &key.id).await,
        vec![("accepted".to_string(), 60)]
    );
}

#[tokio::test]
async fn verify_answers_rate_limited_with_the_wait() {
    let app = admin_app().await;
    let verifier = tenant_key(&app, "gateway", "access", &["role_integration"]).await;
    let presented = app
        .add_key(
            BASE,
            &[
                ("name", "partner"),
                ("key_type", "api"),
                ("validity", "90"),
                ("rate_per_second", "1"),
                ("rate_burst", "2"),
            ],
        )
        .await;
    let (auth, body) = (
        verifier.bearer(),
        json!({"key": format!("{}::{}", presented.id, presented.secret)}),
    );
    let ask = || {
        call(
            &app,
            Method::POST,
            "/api/v1/verify",
            Some(&auth),
            Some(body.clone()),
        )
    };
    for _ in 0..2 {
        let (status, answer, _) = ask().await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["code"], "VALID", "{answer}");
    }
    let (status, answer, headers) = ask().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"valid": false, "code": "RATE_LIMITED", "retry_after_ms": 1000})
    );
    // The verifier has no limit of its own: no headers about it.
    assert!(headers.get("ratelimit").is_none());
    app.clock.advance(Duration::milliseconds(400));
    let (_, answer, _) = ask().await;
    assert_eq!(answer["retry_after_ms"], 600);
    app.clock.advance(Duration::milliseconds(600));
    assert_eq!(ask().await.1["code"], "VALID");

    // A verifier over its own limit gets 429 like any caller, and the presented key is not
    // judged (it spends no token).
    let (status, _, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", verifier.id),
        Some(&verifier.bearer()),
        Some(json!({"rate_limit": {"per_second": 1, "burst": 1}})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "integration cannot write keys"
    );
    let admin = tenant_key(&app, "admin", "access", &["role_key_admin"]).await;
    let (status, _, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", verifier.id),
        Some(&admin.bearer()),
        Some(json!({"rate_limit": {"per_second": 1, "burst": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(Duration::seconds(5));
    assert_eq!(ask().await.1["code"], "VALID");
    let (status, answer, headers) = ask().await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["error"]["code"], "RATE_LIMITED");
    assert_eq!(header(&headers, "retry-after"), "1");
    assert_eq!(
        usage(&app, &presented.id).await,
        vec![("accepted".to_string(), 4), ("rate_limited".to_string(), 2)]
    );
}
