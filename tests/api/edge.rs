//! The request edge (issue 13), on every route: text that cannot be stored is refused (a NUL in
//! every path segment, query value, form field and JSON string is answered 4xx, never 5xx), and
//! every answer to every method carries the security headers, refusals included. Routes are not
//! listed by hand: the console's are found by crawling its pages as an administrator (links and
//! form actions), the API's from its OpenAPI document.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use reqwest::{Method, StatusCode};
use scraper::{Html, Selector};
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, USER_EMAIL, spawn_app_with};

/// A console form found on a page: where it posts and the names of its fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Form {
    action: String,
    fields: Vec<String>,
}

/// Every same-origin link and form of the console, crawled from `/` (at most `limit` pages).
async fn crawl(app: &TestApp, limit: usize) -> (BTreeSet<String>, BTreeSet<Form>) {
    let links = Selector::parse("a[href]").unwrap();
    let forms = Selector::parse("form").unwrap();
    let inputs = Selector::parse("input[name], select[name], textarea[name]").unwrap();
    let mut seen = BTreeSet::new();
    let mut found_forms = BTreeSet::new();
    let mut queue = VecDeque::from(["/".to_string()]);
    while let Some(path) = queue.pop_front() {
        if seen.len() >= limit || !seen.insert(path.clone()) {
            continue;
        }
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert!(res.status().as_u16() < 500, "GET {path}: {}", res.status());
        if let Some(next) = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .filter(|l| l.starts_with('/'))
        {
            queue.push_back(next.to_string());
        }
        let body = res.text().await.unwrap();
        let html = Html::parse_document(&body);
        for a in html.select(&links) {
            let href = a.value().attr("href").unwrap_or_default();
            // Sign-out ends the crawl's session; static files have nothing to refuse.
            if href.starts_with('/') && !href.starts_with("//") && !href.starts_with("/static/") {
                queue.push_back(href.split('#').next().unwrap().to_string());
            }
        }
        for form in html.select(&forms) {
            let method = form.value().attr("method").unwrap_or("get");
            let action = form.value().attr("action").unwrap_or(&path).to_string();
            if !method.eq_ignore_ascii_case("post") || action == "/logout" {
                continue;
            }
            let mut fields: Vec<String> = form
                .select(&inputs)
                .filter_map(|i| i.value().attr("name"))
                .filter(|n| *n != "csrf_token")
                .map(str::to_string)
                .collect();
            fields.sort();
            fields.dedup();
            found_forms.insert(Form { action, fields });
        }
    }
    (seen, found_forms)
}

/// `path` with one segment at a time made to carry a NUL, and with a NUL in the query.
fn poisoned(path: &str) -> Vec<String> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for i in 1..segments.len() {
        let mut s: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
        s[i] = format!("{}%00", s[i]);
        out.push(s.join("/"));
    }
    let q = if query.is_empty() {
        "q=%00&page=%00&x%00=1".to_string()
    } else {
        format!("{query}&q=a%00b")
    };
    out.push(format!("{path}?{q}"));
    out
}

/// An app with something on every page: keys of both kinds, a user, a group, a role, a
/// webhook endpoint, an email.
async fn busy_app() -> TestApp {
    let app = spawn_app_with(|s| s.webhook_allow_private = true).await;
    app.signed_in_admin().await;
    app.add_key(
        "/user-access/keys",
        &[("name", "ci"), ("key_type", "access"), ("validity", "90")],
    )
    .await;
    app.add_key(
        "/my/keys",
        &[
            ("name", "laptop"),
            ("key_type", "access"),
            ("validity", "30"),
        ],
    )
    .await;
    app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    app.post(
        "/user-access/users",
        &[("name", "Invited"), ("email", "new@example.com")],
    )
    .await;
    app.post(
        "/user-access/groups",
        &[("name", "Ops"), ("roles", "role_read_only")],
    )
    .await;
    app.post(
        "/user-access/roles",
        &[("name", "Auditor"), ("permissions", "audit:read")],
    )
    .await;
    app.post(
        "/configuration/api-access/webhooks",
        &[
            ("url", "http://127.0.0.1:9/hook"),
            ("events", "key.created"),
            ("enabled", "1"),
        ],
    )
    .await;
    app
}

#[tokio::test]
async fn a_nul_anywhere_in_any_route_is_a_4xx_never_a_5xx() {
    let app = busy_app().await;
    let (pages, forms) = crawl(&app, 120).await;
    assert!(pages.len() >= 15, "the crawl found the console: {pages:?}");
    assert!(forms.len() >= 10, "and its forms: {forms:?}");
    let anonymous = reqwest::Client::new();
    let mut checked = 0;

    // Every page: each segment, and the query, with a NUL; signed in and anonymous.
    for page in &pages {
        for url in poisoned(page) {
            for client in [&app.client, &anonymous] {
                let res = client.get(app.url(&url)).send().await.unwrap();
                assert!(res.status().as_u16() < 500, "GET {url}: {}", res.status());
                checked += 1;
            }
        }
    }
    // Every form: every field a NUL, and its action's segments poisoned.
    let token = app.csrf_token().await;
    for form in &forms {
        let mut fields: Vec<(String, String)> = form
            .fields
            .iter()
            .map(|f| (f.clone(), "a\u{0}b".to_string()))
            .collect();
        fields.push(("csrf_token".into(), token.clone()));
        let mut targets = poisoned(&form.action);
        targets.push(form.action.clone());
        for url in targets {
            let res = app
                .client
                .post(app.url(&url))
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert!(
                res.status().as_u16() < 500,
                "POST {url} {fields:?}: {}",
                res.status()
            );
            checked += 1;
        }
    }

    // Every API operation from the OpenAPI document, with a key that may do everything.
    let shown = app
        .add_key(
            "/user-access/keys",
            &[
                ("name", "root"),
                ("key_type", "access"),
                ("validity", "90"),
                ("roles", "role_tenant_admin"),
            ],
        )
        .await;
    let auth = format!("Bearer {}::{}", shown.id, shown.secret);
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations
                .entry(path.replace("{id}", &shown.id))
                .or_default()
                .push(method.to_uppercase());
        }
    }
    assert!(operations.len() >= 7, "{operations:?}");
    let body = json!({
        "name": "a\u{0}b", "description": "\u{0}", "type": "access\u{0}",
        "expires_at": "2027-01-01T00:00:00Z\u{0}", "role_ids": ["\u{0}"],
        "group_ids": ["g\u{0}"], "allowed_networks": ["10.0.0.0/8\u{0}"],
        "key": format!("{}::\u{0}", shown.id), "client_ip": "\u{0}",
    });
    for (path, methods) in &operations {
        for method in methods {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            for url in poisoned(path).into_iter().chain([path.clone()]) {
                for authorization in [auth.as_str(), "Bearer AK\u{0}::x"] {
                    let mut req = anonymous
                        .request(method.clone(), app.url(&url))
                        .header("authorization", authorization.replace('\u{0}', "%00"));
                    if method != Method::GET && method != Method::DELETE {
                        req = req.json(&body);
                    }
                    let res = req.send().await.unwrap();
                    let status = res.status();
                    let text = res.text().await.unwrap();
                    assert!(status.as_u16() < 500, "{method} {url}: {status} {text}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 300, "{checked} requests");
    // The refusals are answers, not errors: nothing was logged at ERROR for them.
    assert!(
        !crate::common::captured_logs().contains("0x00"),
        "no database error about NUL reached the log"
    );
}

#[tokio::test]
async fn a_nul_in_a_field_is_named_in_the_answer() {
    let app = busy_app().await;
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/apikeys?q=%00"))
        .send()
        .await
        .unwrap();
    // Anonymous: the NUL is refused before the key is even asked for.
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "q");
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/apikeys/AK%00"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let page = app.get("/user-access/keys/AK%00").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = app
        .post(
            "/user-access/keys",
            &[
                ("name", "a\u{0}"),
                ("key_type", "access"),
                ("validity", "90"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("NUL"), "{}", page.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_keys WHERE name LIKE 'a%'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_nul_in_the_sign_in_email_is_an_ordinary_failure_and_is_throttled() {
    let app = busy_app().await;
    let stranger = app.other_client();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let page = stranger.sign_in("a\u{0}@example.com", PASSWORD).await;
        statuses.push(page.status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED, "{statuses:?}");
    assert!(statuses.iter().all(|s| s.as_u16() < 500), "{statuses:?}");
    assert_eq!(
        *statuses.last().unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "counted like any failure: {statuses:?}"
    );
}

/// The routes of the console (crawled) and of the API (its OpenAPI document), as paths.
async fn every_route(app: &TestApp) -> BTreeSet<String> {
    let (pages, forms) = crawl(app, 120).await;
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut routes: BTreeSet<String> = pages.into_iter().collect();
    routes.extend(forms.into_iter().map(|f| f.action));
    routes.extend(
        doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(|p| p.replace("{id}", "AKNOSUCHKEY000000000")),
    );
    routes.extend(
        [
            "/login", "/setup", "/invite", "/logout", "/metrics", "/nowhere",
        ]
        .map(String::from),
    );
    routes
}

#[tokio::test]
async fn every_route_and_method_answers_with_the_security_headers() {
    let app = busy_app().await;
    let routes = every_route(&app).await;
    assert!(routes.len() >= 30, "{routes:?}");
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut answers = BTreeMap::new();
    for route in &routes {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            // Signed in (without a CSRF token: the refusal must carry the headers too) and
            // anonymous.
            for client in [&app.client, &anonymous] {
                let res = client
                    .request(method.clone(), app.url(route))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("a=1")
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                *answers.entry(status.as_u16()).or_insert(0) += 1;
                let h = res.headers();
                for (name, value) in [
                    ("x-frame-options", "DENY"),
                    ("x-content-type-options", "nosniff"),
                    ("referrer-policy", "no-referrer"),
                ] {
                    assert_eq!(
                        h.get(name).and_then(|v| v.to_str().ok()),
                        Some(value),
                        "{method} {route} ({status}): {name}"
                    );
                }
                let csp = h
                    .get("content-security-policy")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                assert!(
                    csp.contains("default-src 'none'"),
                    "{method} {route} ({status}): CSP"
                );
                assert!(status.as_u16() < 500, "{method} {route}: {status}");
                assert!(
                    h.get("strict-transport-security").is_none(),
                    "no HSTS over http"
                );
            }
        }
    }
    // The walk met the refusals that are made before any handler runs.
    assert!(answers.contains_key(&403), "CSRF refusals: {answers:?}");
    assert!(answers.contains_key(&404), "unknown paths: {answers:?}");
}

#[tokio::test]
async fn an_https_public_url_adds_strict_transport_security() {
    let app = spawn_app_with(|s| s.public_url = "https://keys.example.com".into()).await;
    for path in ["/login", "/healthz", "/api/v1/apikeys", "/nowhere"] {
        let res = reqwest::Client::new()
            .post(app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{path}"
        );
    }
}
