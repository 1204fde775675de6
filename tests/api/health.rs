use crate::common::spawn_app;

#[tokio::test]
async fn healthz_reports_the_database_ok() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn healthz_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.state.pool.close().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");
}

#[tokio::test]
async fn unknown_paths_get_a_404_page() {
    let app = spawn_app().await;
    let page = app.get("/no/such/page").await;
    assert_eq!(page.status, 404);
    assert_eq!(page.text("h1"), "Page not found");
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn static_assets_are_cached_by_version() {
    let app = spawn_app().await;
    let login = app.get("/login").await;
    let css = login.attr("link[rel=stylesheet]", "href").unwrap();
    assert!(css.starts_with("/static/app.css?v="), "{css}");
    let res = app.client.get(app.url(&css)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let stale = app
        .client
        .get(app.url("/static/app.css?v=old"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.headers()["cache-control"], "public, max-age=300");
    let missing = app
        .client
        .get(app.url("/static/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/login",
        "/healthz",
        "/static/app.js",
        "/nothing-here",
        "/user-access/keys",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn pages_have_no_inline_script() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    for path in [
        "/user-access/keys",
        "/user-access/users",
        "/audit",
        "/notifications",
    ] {
        let page = app.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        let sel = scraper::Selector::parse("script").unwrap();
        for script in page.html.select(&sel) {
            assert!(
                script.value().attr("src").is_some(),
                "{path} has an inline script"
            );
            assert!(script.text().collect::<String>().trim().is_empty());
        }
        assert!(
            !page.body.contains(" onclick="),
            "{path} has an inline handler"
        );
    }
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_a_503_to_try_again_not_a_500() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = app
        .add_key(
            "/user-access/keys",
            &[("name", "ci"), ("key_type", "access"), ("validity", "30")],
        )
        .await;
    app.state.pool.close().await;

    // A program (no cookies) and a browser script (with the console's cookie) alike: the key
    // is still read (key checks have their own connections), the list it asks for is not.
    let program = reqwest::Client::new();
    for client in [&program, &app.client] {
        let res = client
            .get(app.url("/api/v1/apikeys"))
            .basic_auth(&key.id, Some(&key.secret))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "5");
        // The answer is an ordinary response to the middleware outside: it carries the
        // security headers like any other.
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
        assert_eq!(
            body["error"]["message"],
            "keyward cannot reach its database just now; try again shortly."
        );
    }

    // A person in the console.
    let page = app.get("/user-access/keys").await;
    assert_eq!(page.status, 503);
    assert_eq!(page.headers["retry-after"], "5");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(page.headers.contains_key("content-security-policy"));
    assert_eq!(page.text("h1"), "keyward cannot reach its database");
}
