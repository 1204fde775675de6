//! Usage pictures (issue 18, SPEC §10): key details charts a key's last 30 days, `/` is an
//! overview whose every number is the count of the filtered list it links to, and the list's
//! filters by use work on the console, the REST list and the export.

use chrono::Duration;
use keyward::clock::Clock;
use reqwest::{Method, StatusCode};

use crate::common::rest::{Key, call, tenant_key};
use crate::common::{PASSWORD, TestApp, USER_EMAIL, spawn_app};

/// A secret of keyward's own making (so it passes the checksum) that is no key's but the
/// decoy's: presented with another key's ID, it is that key's wrong secret.
async fn decoy(app: &TestApp) -> String {
    tenant_key(app, "decoy", "access", &[]).await.secret
}

/// Presents `key` over the REST API `accepted` times with its secret and `wrong` times with
/// the secret `other` (of another key).
async fn present_with(app: &TestApp, key: &Key, accepted: usize, wrong: usize, other: &str) {
    for _ in 0..accepted {
        let (status, body, _) = call(
            app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&key.basic()),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for _ in 0..wrong {
        let (status, _, _) = call(
            app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&key.with_secret(other)),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

/// Presents `key` `accepted` times with its secret (nothing wrong).
async fn present(app: &TestApp, key: &Key, accepted: usize, wrong: usize) {
    assert_eq!(wrong, 0, "wrong secrets need present_with");
    present_with(app, key, accepted, 0, "").await;
}

/// The key names a console list page shows, sorted.
async fn names_at(app: &TestApp, path: &str) -> Vec<String> {
    let page = app.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}");
    let mut names = page.texts(".keys-table tbody td.strong a");
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn key_details_chart_the_last_30_days_by_day_and_say_when_nothing_happened() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "billing export", "access", &[]).await;
    let idle = tenant_key(&app, "idle importer", "access", &[]).await;
    let other = decoy(&app).await;
    // Yesterday (2026-11-23) and today: 3 accepted and 2 wrong secrets each day.
    present_with(&app, &key, 3, 2, &other).await;
    app.state.key_checker.flush_usage().await;
    app.clock.advance(Duration::days(1));
    app.signed_in_again().await;
    present_with(&app, &key, 3, 2, &other).await;
    app.state.key_checker.flush_usage().await;

    let page = app.get(&format!("/user-access/keys/{}", key.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text("#usage-heading"), "Usage, last 30 days");
    assert_eq!(
        page.attr("#usage svg", "role").as_deref(),
        Some("img"),
        "the chart is one image to assistive technology"
    );
    let label = page.attr("#usage svg", "aria-label").unwrap();
    assert_eq!(
        label,
        "6 accepted, 4 refused in the last 30 days (Oct 26 to Nov 24, UTC)"
    );
    assert_eq!(page.texts("#usage svg g").len(), 30, "a bar per day");
    assert_eq!(
        page.texts("#usage thead th"),
        ["Day (UTC)", "Accepted", "Wrong secret", "Refused"]
    );
    assert_eq!(
        page.texts("#usage tbody tr"),
        ["2026-11-24 3 2 2", "2026-11-23 3 2 2"],
        "the table lists the days with presentations, newest first"
    );
    assert_eq!(
        page.texts(".usage-legend li"),
        ["Accepted 6", "Wrong secret 4"]
    );
    // Each day's bar stacks its refusals on its accepted presentations.
    assert_eq!(
        page.texts("#usage svg g:nth-of-type(30) title"),
        ["Tue Nov 24: 3 accepted, 2 wrong secret"]
    );
    assert!(
        page.html
            .select(&scraper::Selector::parse("#usage-empty").unwrap())
            .next()
            .is_none()
    );

    // A key nobody presented says so in words, with no chart.
    let page = app.get(&format!("/user-access/keys/{}", idle.id)).await;
    assert!(
        page.text("#usage-empty")
            .starts_with("No presentations of this key since Oct 26"),
        "{}",
        page.text("#usage")
    );
    assert!(page.attr("#usage svg", "role").is_none());

    // The owner of a personal key sees its chart on My access keys.
    let user = app.other_client();
    user.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    user.sign_in(USER_EMAIL, PASSWORD).await;
    let shown = user
        .add_key(
            "/my/keys",
            &[
                ("name", "laptop"),
                ("key_type", "access"),
                ("validity", "30"),
            ],
        )
        .await;
    let mine = Key {
        id: shown.id,
        secret: shown.secret,
    };
    present(&user, &mine, 2, 0).await;
    app.state.key_checker.flush_usage().await;
    let page = user.get(&format!("/my/keys/{}", mine.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.attr("#usage svg", "aria-label")
            .unwrap()
            .starts_with("2 accepted, 0 refused in the last 30 days"),
    );
    assert_eq!(page.texts("#usage tbody tr"), ["2026-11-24 2 0"]);
}

#[tokio::test]
async fn the_overview_counts_exactly_the_keys_its_links_list() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    // Used once, 40 days ago.
    let old = tenant_key(&app, "nightly backup", "access", &[]).await;
    present(&app, &old, 1, 0).await;
    app.state.key_checker.flush_usage().await;
    app.clock.advance(Duration::days(40));
    app.signed_in_again().await;

    // Expiring in 10 days (never used either).
    let in_ten_days = (app.clock.unix() + 10 * 86_400) / 86_400 * 86_400;
    let date = chrono::DateTime::from_timestamp(in_ten_days, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    app.add_key(
        "/user-access/keys",
        &[
            ("name", "expiring soon"),
            ("key_type", "access"),
            ("validity", "custom"),
            ("custom_date", &date),
        ],
    )
    .await;
    tenant_key(&app, "never used", "access", &[]).await;
    // Out of policy once the policy limits access keys to a year (never used either).
    app.add_key(
        "/user-access/keys",
        &[
            ("name", "legacy sync"),
            ("key_type", "access"),
            ("validity", "never"),
        ],
    )
    .await;
    let busy = tenant_key(&app, "busy service", "access", &[]).await;
    let other = tenant_key(&app, "stand-in", "access", &[]).await;
    present(&app, &other, 1, 0).await;
    present_with(&app, &busy, 4, 2, &other.secret).await;
    let quiet = tenant_key(&app, "quiet job", "access", &[]).await;
    present(&app, &quiet, 1, 0).await;
    let off = tenant_key(&app, "switched off", "access", &[]).await;
    present(&app, &off, 2, 0).await;
    let res = app
        .post(&format!("/user-access/keys/{}/deactivate", off.id), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(&off.basic()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.state.key_checker.flush_usage().await;
    let policy = vec![
        ("max_days_access", "365"),
        ("max_days_api", ""),
        ("default_validity", "90"),
        ("inactive_days", ""),
        ("inactive_warn_days", "7"),
        ("replaced_secret", "record"),
        ("exposure", "lock"),
        ("second_factor", "none"),
    ];
    let saved = app.post("/configuration/key-policy", &policy).await;
    assert_eq!(
        saved.status,
        StatusCode::SEE_OTHER,
        "{}",
        saved.text(".field-error")
    );

    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.text("h1"), "Overview");
    assert_eq!(home.text("title"), "Overview · keyward");
    let tiles = [
        (
            "#tile-expiring",
            "1 key expires in the next 14 days",
            vec!["expiring soon"],
        ),
        (
            "#tile-never-used",
            "3 keys never used",
            vec!["expiring soon", "legacy sync", "never used"],
        ),
        (
            "#tile-unused",
            "1 key unused for 30 days (used before)",
            vec!["nightly backup"],
        ),
        (
            "#tile-out-of-policy",
            "1 key out of policy",
            vec!["legacy sync"],
        ),
    ];
    for (tile, text, keys) in tiles {
        assert_eq!(home.text(tile), text);
        let href = home.attr(tile, "href").unwrap();
        assert_eq!(names_at(&app, &href).await, sorted(&keys), "{tile}: {href}");
    }
    assert_eq!(
        home.attr("#tile-expiring", "href").as_deref(),
        Some("/user-access/keys?expires_within=14")
    );

    // The busiest keys over 7 days, by accepted presentations, each linking to its details.
    let busiest = home.texts("#busiest tbody tr");
    assert_eq!(busiest[0], "busy service 4");
    assert_eq!(
        sorted(&busiest[1..].iter().map(String::as_str).collect::<Vec<_>>()),
        ["quiet job 1", "stand-in 1", "switched off 2"].map(String::from)
    );
    assert_eq!(
        home.attr("#busiest tbody tr:first-child a", "href"),
        Some(format!("/user-access/keys/{}", busy.id))
    );
    // The old key's use is older than 7 days.
    assert!(!home.text("#busiest").contains("nightly backup"));

    // Refusals by reason, each linking to the keys refused for it.
    assert_eq!(
        home.texts("#refusals tbody tr"),
        ["Wrong secret 2 1 key", "Inactive 1 1 key"]
    );
    let links: Vec<String> = {
        let sel = scraper::Selector::parse("#refusals tbody a").unwrap();
        home.html
            .select(&sel)
            .map(|a| a.value().attr("href").unwrap().to_string())
            .collect()
    };
    assert_eq!(
        links[0],
        "/user-access/keys?refused_for=wrong_secret&refused_within=7"
    );
    assert_eq!(names_at(&app, &links[0]).await, sorted(&["busy service"]));
    assert_eq!(names_at(&app, &links[1]).await, sorted(&["switched off"]));
    // The filtered list says what it shows and keeps the filter across search and pages.
    let list = app.get(&links[0]).await;
    assert_eq!(
        list.text("#usage-filter"),
        "Showing keys refused (wrong secret) in the last 7 days. Show all keys"
    );
    assert_eq!(
        list.attr("form[role=search] input[name=refused_for]", "value")
            .as_deref(),
        Some("wrong_secret")
    );
    assert!(
        list.attr(".download-menu a", "href")
            .unwrap()
            .contains("refused_for=wrong_secret&refused_within=7")
    );

    // A week later the refusals and the busiest keys are out of the window.
    app.clock.advance(Duration::days(7));
    app.signed_in_again().await;
    let home = app.get("/").await;
    assert_eq!(
        home.text("#refusals p"),
        "Nothing was refused in the last 7 days."
    );
    assert_eq!(
        home.text("#busiest p"),
        "No key was accepted in the last 7 days."
    );
}

#[tokio::test]
async fn people_who_may_not_read_keys_go_to_their_own_keys_and_strangers_to_sign_in() {
    let app = spawn_app().await;
    assert_eq!(app.get("/").await.location(), "/login");
    app.signed_in_user().await;
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/my/keys");
}

#[tokio::test]
async fn the_rest_list_and_export_filter_by_use_and_name_a_bad_filter() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let reader = tenant_key(&app, "inventory reader", "access", &["role_read_only"]).await;
    let used = tenant_key(&app, "used key", "access", &[]).await;
    tenant_key(&app, "unused key", "access", &[]).await;
    present_with(&app, &used, 1, 1, &reader.secret).await;
    present(&app, &reader, 1, 0).await;
    app.state.key_checker.flush_usage().await;

    let names = |body: &serde_json::Value| {
        let mut v: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let list = async |query: &str| {
        call(
            &app,
            Method::GET,
            &format!("/api/v1/apikeys?{query}"),
            Some(&reader.basic()),
            None,
        )
        .await
    };
    let (status, body, _) = list("never_used=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["unused key"]);
    assert_eq!(body["total"], 1);
    let (_, body, _) = list("refused_for=any").await;
    assert_eq!(names(&body), ["used key"]);
    let (_, body, _) = list("refused_for=wrong_secret&refused_within=1&type=access").await;
    assert_eq!(names(&body), ["used key"]);
    let (_, body, _) = list("refused_for=locked").await;
    assert_eq!(names(&body), Vec::<String>::new());
    let (_, body, _) = list("expires_within=91").await;
    assert_eq!(body["total"], 3);
    let (_, body, _) = list("expires_within=89").await;
    assert_eq!(body["total"], 0);
    let (_, body, _) = list("never_used=false&q=used").await;
    assert_eq!(names(&body), ["unused key", "used key"]);

    // Thirty-one days on, the used keys are unused for 30 days.
    app.clock.advance(Duration::days(31));
    // (The reader is used by this very call, so only the other key is listed.)
    let (status, body, _) = list("unused_for=30").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["used key"]);
    let (status, body, _) = list("unused_for=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("unused_for"), "{body}");

    for (query, field) in [
        ("expires_within=0", "expires_within"),
        ("unused_for=many", "unused_for"),
        ("never_used=yes", "never_used"),
        ("refused_for=accepted", "refused_for"),
        ("refused_within=7", "refused_within"),
    ] {
        let (status, body, _) = call(
            &app,
            Method::GET,
            &format!("/api/v1/apikeys/export?format=json&{query}"),
            Some(&reader.basic()),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body.to_string().contains(field),
            "{query} names {field}: {body}"
        );
    }
}

#[tokio::test]
async fn the_overview_counts_the_last_168_hours_exactly_across_the_turn_of_a_day() {
    // The busiest keys and the refusals read whole days from the daily counts and the first,
    // partial day by the hour: use in the hour just before the window must not count, though
    // its day is partly inside.
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let wrong = decoy(&app).await;
    let (a, b, c) = (
        tenant_key(&app, "service a", "access", &[]).await,
        tenant_key(&app, "service b", "access", &[]).await,
        tenant_key(&app, "service c", "access", &[]).await,
    );
    // 10:00 on day one: just outside the window that ends 167 hours after 11:00.
    present_with(&app, &b, 5, 2, &wrong).await;
    present(&app, &a, 1, 0).await;
    app.state.key_checker.flush_usage().await;
    // 11:00 on day one: the window's first hour, in its partial first day.
    app.clock.advance(Duration::hours(1));
    present_with(&app, &a, 3, 1, &wrong).await;
    app.state.key_checker.flush_usage().await;
    // A whole day inside the window.
    app.clock.advance(Duration::days(3));
    present(&app, &a, 2, 0).await;
    app.state.key_checker.flush_usage().await;
    // The window's last hour.
    app.clock.advance(Duration::hours(167 - 72));
    present(&app, &a, 1, 0).await;
    present(&app, &c, 2, 0).await;
    app.state.key_checker.flush_usage().await;

    app.signed_in_again().await;
    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(
        home.texts("#busiest tbody tr"),
        ["service a 6", "service c 2"],
        "service b and service a's first use were an hour too early"
    );
    assert_eq!(home.texts("#refusals tbody tr"), ["Wrong secret 1 1 key"]);
    // An hour later the window's first hour is out too.
    app.clock.advance(Duration::hours(1));
    app.signed_in_again().await;
    let home = app.get("/").await;
    assert_eq!(
        home.texts("#busiest tbody tr"),
        ["service a 3", "service c 2"]
    );
    assert_eq!(
        home.text("#refusals p"),
        "Nothing was refused in the last 7 days."
    );
}
