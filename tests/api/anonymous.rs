//! Anonymous requests are cheap and bounded, and throttles cannot be turned against the person
//! (issue #12, points 4, 5, 7, 8 and 9): `/setup` checks its link before any hashing and is gone
//! once someone exists; over-long input is refused before any work; throttled attempts are
//! audited once per window; old audit entries are purged; failures count per forwarded client
//! and per IPv6 /64; the current-password check is throttled and audited; showing an anonymous
//! form writes no session.

use chrono::Duration;
use reqwest::StatusCode;

use crate::common::{
    ADMIN_EMAIL, PASSWORD, Page, TestApp, USER_EMAIL, UnixNow, last_invitation, spawn_app,
    spawn_app_with,
};

/// 60,000 characters: far past every limit, inside the 64 KiB form limit.
fn huge(suffix: &str) -> String {
    long(60_000, suffix)
}

/// `n` characters and a suffix (several long fields must share the 64 KiB form limit).
fn long(n: usize, suffix: &str) -> String {
    format!("{}{suffix}", "a".repeat(n))
}

fn setup_token(app: &TestApp) -> String {
    let url = app.setup_url.as_deref().expect("a setup link");
    url.split("token=").nth(1).unwrap().to_string()
}

/// Argon2 runs (hashes and verifications) the server has started so far.
fn argon2_runs(app: &TestApp) -> u64 {
    app.state.hasher.work_started()
}

/// A keyward that takes forwarding headers from 127.0.0.1, as behind a reverse proxy there.
async fn behind_proxy() -> TestApp {
    spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await
}

/// Parses a response as the harness does.
async fn page_of(res: reqwest::Response) -> Page {
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap();
    Page {
        status,
        headers,
        html: scraper::Html::parse_document(&body),
        body,
    }
}

/// POSTs a form with this client's CSRF token and an `X-Forwarded-For` header.
async fn post_forwarded(
    app: &TestApp,
    path: &str,
    forwarded_for: &str,
    form: &[(&str, &str)],
) -> Page {
    let token = app.csrf_token().await;
    let mut fields = form.to_vec();
    fields.push(("csrf_token", &token));
    let res = app
        .client
        .post(app.url(path))
        .header("x-forwarded-for", forwarded_for)
        .form(&fields)
        .send()
        .await
        .unwrap();
    page_of(res).await
}

/// Signs in through the form from the forwarded address `from`.
async fn sign_in_from(app: &TestApp, from: &str, email: &str, password: &str) -> StatusCode {
    post_forwarded(
        app,
        "/login",
        from,
        &[("email", email), ("password", password)],
    )
    .await
    .status
}

async fn sign_in_rows(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in'")
        .await
}

// ---- /setup (point 4) ----------------------------------------------------------------------

#[tokio::test]
async fn setup_answers_404_once_a_user_exists_and_hashes_nothing() {
    let app = spawn_app().await;
    let token = setup_token(&app);
    let done = app
        .post(
            "/setup",
            &[
                ("token", &token),
                ("name", "Ada Lovelace"),
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);

    // An anonymous flood of valid-looking setups, with the used token and with guesses.
    let attacker = app.other_client();
    let before = argon2_runs(&app);
    for guess in [token.as_str(), "guess", &"x".repeat(43), ""] {
        let page = attacker
            .post(
                "/setup",
                &[
                    ("token", guess),
                    ("name", "Mallory"),
                    ("email", "mallory@example.com"),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "token {guess:?}");
        assert_eq!(
            attacker.get(&format!("/setup?token={guess}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(attacker.get("/setup").await.status, StatusCode::NOT_FOUND);
    assert_eq!(argon2_runs(&app), before, "no password was hashed");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test]
async fn a_wrong_setup_token_is_refused_before_any_hashing() {
    let app = spawn_app().await;
    let before = argon2_runs(&app);
    for guess in ["guess".to_string(), "x".repeat(43), huge("")] {
        let page = app
            .post(
                "/setup",
                &[
                    ("token", &guess),
                    ("name", "Mallory"),
                    ("email", "mallory@example.com"),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::CONFLICT);
        assert!(
            page.text("main")
                .contains("invalid, expired or already used")
        );
    }
    assert_eq!(argon2_runs(&app), before, "no password was hashed");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM setup_tokens WHERE used_at IS NULL")
            .await,
        1,
        "the real link still works"
    );
}

// ---- Length limits (point 5) -----------------------------------------------------------------

#[tokio::test]
async fn over_long_sign_in_input_is_a_wrong_password_without_hashing() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    let before = argon2_runs(&app);

    let long_email = huge("@example.com");
    let page = app.sign_in(&long_email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(page.text("[role=alert]"), "Email or password is incorrect.");
    assert_eq!(
        page.attr("#email", "value").as_deref(),
        Some(""),
        "not sent back"
    );
    let page = app.sign_in(ADMIN_EMAIL, &huge("")).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(page.text("[role=alert]"), "Email or password is incorrect.");
    assert_eq!(argon2_runs(&app), before, "no password was hashed");

    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor_label, target_label, details FROM audit_log \
         WHERE action = 'sign_in' ORDER BY id",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].2, "email too long");
    assert_eq!(rows[0].0.chars().count(), 254);
    assert_eq!(rows[0].1.chars().count(), 254);
    assert_eq!(
        rows[1],
        (
            ADMIN_EMAIL.into(),
            ADMIN_EMAIL.into(),
            "password too long".into()
        )
    );

    // They count as failures: four more over-long passwords and the account is throttled from
    // this address, the right password included.
    for _ in 0..4 {
        assert_eq!(
            app.sign_in(ADMIN_EMAIL, &huge("")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.sign_in(ADMIN_EMAIL, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(argon2_runs(&app), before, "still no password hashed");
}

#[tokio::test]
async fn over_long_setup_input_gets_field_messages_without_hashing() {
    let app = spawn_app().await;
    let token = setup_token(&app);
    let before = argon2_runs(&app);
    let (name, email, password) = (
        long(15_000, ""),
        long(15_000, "@example.com"),
        long(15_000, ""),
    );
    let page = app
        .post(
            "/setup",
            &[
                ("token", &token),
                ("name", &name),
                ("email", &email),
                ("password", &password),
                ("confirm", &password),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.text("#name-error"),
        "A name can be at most 64 characters."
    );
    assert_eq!(
        page.text("#email-error"),
        "An email address can be at most 254 characters."
    );
    assert_eq!(page.text("#password-error"), "Use at most 128 characters.");
    assert!(page.body.len() < 20_000, "the long values are not echoed");
    assert_eq!(argon2_runs(&app), before, "no password was hashed");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn over_long_invitation_input_is_refused_without_hashing() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    crate::mail::invite(&app, "Grace Hopper", USER_EMAIL).await;
    let (_, link) = last_invitation(&app).await;
    let token = link.split("token=").nth(1).unwrap().to_string();
    let grace = app.other_client();
    assert_eq!(grace.get(&link).await.status, StatusCode::OK);
    let before = argon2_runs(&app);

    let password = long(30_000, "");
    let page = grace
        .post(
            "/invite",
            &[
                ("token", &token),
                ("password", &password),
                ("confirm", &password),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.text("#password-error"), "Use at most 128 characters.");
    let page = grace
        .post(
            "/invite",
            &[
                ("token", &huge("")),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert_eq!(
        grace
            .get(&format!("/invite?token={}", "x".repeat(5_000)))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(argon2_runs(&app), before, "no password was hashed");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE password_hash IS NULL")
            .await,
        1
    );
}

// ---- Throttled attempts are counted, not audited (point 5) -----------------------------------

#[tokio::test]
async fn sixty_failed_sign_ins_from_one_address_add_a_bounded_number_of_audit_rows() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses.push(app.sign_in(ADMIN_EMAIL, "a wrong guess here").await.status);
    }
    assert!(statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    // Five wrong passwords, then one entry for the throttled address, not fifty-five.
    assert_eq!(sign_in_rows(&app).await, 6);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE details = 'throttled'")
            .await,
        1
    );

    // The next window, with a 60,000-character email: the same number of rows, none longer
    // than an email can be.
    app.clock.advance(Duration::minutes(16));
    let long_email = huge("@example.com");
    for _ in 0..60 {
        app.sign_in(&long_email, "a wrong guess here").await;
    }
    assert_eq!(sign_in_rows(&app).await, 12);
    assert_eq!(
        app.count(
            "SELECT CAST(MAX(LENGTH(actor_label) + LENGTH(target_label)) AS BIGINT) \
             FROM audit_log"
        )
        .await,
        2 * 254
    );
    assert!(
        app.count(
            "SELECT CAST(SUM(LENGTH(actor_label) + LENGTH(target_label) + LENGTH(details)) \
             AS BIGINT) FROM audit_log"
        )
        .await
            < 13 * (2 * 254 + 64),
        "the audit log does not grow with what was typed"
    );
}

// ---- Audit retention (point 5) ---------------------------------------------------------------

#[tokio::test]
async fn the_job_deletes_audit_entries_past_the_retention() {
    let app = spawn_app_with(|s| s.audit_retention_days = 30).await;
    app.signed_in_admin().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 2);

    // Day 29: a failed sign-in is written; nothing is old enough yet.
    app.clock.advance(Duration::days(29));
    app.other_client()
        .sign_in("nobody@example.com", "a wrong guess here")
        .await;
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!(pass.audit_purged, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 3);

    // Day 31: the day-0 entries (creation, sign-in) are past 30 days; day 29's stays.
    app.clock.advance(Duration::days(2));
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!(pass.audit_purged, 2);
    let left: Vec<String> = sqlx::query_scalar("SELECT actor_label FROM audit_log")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(left, ["nobody@example.com"]);
}

#[tokio::test]
async fn the_audit_purge_works_through_more_rows_than_one_batch() {
    let app = spawn_app_with(|s| s.audit_retention_days = 1).await;
    let old = app.clock.unix_now() - 2 * 86_400;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12345) \
         INSERT INTO audit_log (at, actor_label, action, target_type, target_id, target_label, \
         client_ip, outcome, details) \
         SELECT $1, 'nobody@example.com', 'sign_in', 'user', '', 'nobody@example.com', \
         '192.0.2.1', 'failure', 'unknown account' FROM n",
    )
    .bind(old)
    .execute(&app.state.pool)
    .await
    .unwrap();
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!(pass.audit_purged, 12345);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 0);
}

#[tokio::test]
async fn a_retention_of_zero_keeps_audit_entries_for_ever() {
    let app = spawn_app().await;
    assert_eq!(app.state.settings.audit_retention_days, 0, "the default");
    app.signed_in_admin().await;
    app.clock.advance(Duration::days(4000));
    let pass = app.jobs.run_once().await.unwrap();
    assert_eq!(pass.audit_purged, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 2);
}

// ---- The client address and the buckets (point 7) --------------------------------------------

#[tokio::test]
async fn failures_behind_a_trusted_proxy_count_per_forwarded_client() {
    let app = behind_proxy().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    // 21 failures through the proxy (the TCP peer is always 127.0.0.1), each from its own client.
    for i in 1..=21 {
        let status = sign_in_from(
            &app,
            &format!("198.51.100.{i}"),
            &format!("guess{i}@example.com"),
            "a wrong guess here",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "client {i}");
    }
    // Another client behind the same proxy signs in.
    assert_eq!(
        sign_in_from(&app, "203.0.113.9", ADMIN_EMAIL, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let ips: Vec<String> = sqlx::query_scalar(
        "SELECT client_ip FROM audit_log WHERE action = 'sign_in' ORDER BY id DESC LIMIT 2",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(
        ips,
        ["203.0.113.9", "198.51.100.21"],
        "the audit log names the real client"
    );
}

#[tokio::test]
async fn a_forged_forwarded_header_is_ignored_without_trusted_proxies() {
    for trusted in [vec![], vec!["10.0.0.0/8".parse().unwrap()]] {
        let app = spawn_app_with(|s| s.trusted_proxies = trusted).await;
        app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
        for i in 1..=20 {
            let status = sign_in_from(
                &app,
                &format!("198.51.100.{i}"),
                &format!("guess{i}@example.com"),
                "a wrong guess here",
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        // Every forged address was the same client, 127.0.0.1, which is now over its limit.
        assert_eq!(
            sign_in_from(&app, "203.0.113.9", USER_EMAIL, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM audit_log WHERE client_ip <> '127.0.0.1'")
                .await,
            0
        );
    }
}

#[tokio::test]
async fn five_wrong_passwords_from_one_address_do_not_lock_the_administrator_out() {
    let app = behind_proxy().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            sign_in_from(&app, "198.51.100.7", ADMIN_EMAIL, "a wrong guess here").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // That address is throttled for this account, even with the right password…
    assert_eq!(
        sign_in_from(&app, "198.51.100.7", ADMIN_EMAIL, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …but the administrator, elsewhere, signs in.
    let ada = app.other_client();
    assert_eq!(
        sign_in_from(&ada, "203.0.113.5", ADMIN_EMAIL, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(ada.get("/user-access/keys").await.status, StatusCode::OK);
}

#[tokio::test]
async fn two_ipv6_addresses_in_one_64_share_a_bucket() {
    let app = behind_proxy().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    for i in 1..=5 {
        assert_eq!(
            sign_in_from(
                &app,
                &format!("2001:db8:1:2::{i}"),
                ADMIN_EMAIL,
                "a wrong guess here"
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in_from(
            &app,
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            ADMIN_EMAIL,
            PASSWORD
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS,
        "another address of the same /64"
    );
    assert_eq!(
        sign_in_from(&app, "[2001:db8:1:3::1]:4711", ADMIN_EMAIL, PASSWORD).await,
        StatusCode::SEE_OTHER,
        "the next /64 is someone else"
    );
}

#[tokio::test]
async fn key_checks_group_ipv6_clients_by_64_too() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.client_failure_limit = 3;
    })
    .await;
    let call = |from: String| {
        let secret = keyward::domain::Secret::generate().expose().to_string();
        let req = app
            .client
            .get(app.url("/api/v1/apikeys/current"))
            .header(
                "authorization",
                format!("Bearer AK000000000000000000::{secret}"),
            )
            .header("x-forwarded-for", from);
        async move { req.send().await.unwrap().status() }
    };
    for i in 1..=3 {
        assert_eq!(
            call(format!("2001:db8:7:7::{i}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        call("2001:db8:7:7::99".into()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        call("2001:db8:7:8::1".into()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn guessing_from_many_addresses_is_bounded_per_account() {
    let app = behind_proxy().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    // 20 addresses, five wrong passwords each: 100 failures for one account.
    for a in 1..=20 {
        for _ in 0..5 {
            assert_eq!(
                sign_in_from(
                    &app,
                    &format!("198.51.100.{a}"),
                    ADMIN_EMAIL,
                    "a wrong guess"
                )
                .await,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    let before = argon2_runs(&app);
    // The account now refuses every attempt until the window ends, the right password too
    // (otherwise a correct guess from a fresh address would get through), without hashing.
    for a in 21..=25 {
        assert_eq!(
            sign_in_from(&app, &format!("198.51.100.{a}"), ADMIN_EMAIL, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(argon2_runs(&app), before);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log \
             WHERE details = 'throttled: failures from many addresses'"
        )
        .await,
        1
    );
    // Other accounts are untouched, and the account works again once the failures have left
    // the window (15 minutes, and at most a minute more for the slot they fell in).
    app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    assert_eq!(
        sign_in_from(&app.other_client(), "198.51.100.30", USER_EMAIL, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        sign_in_from(&app.other_client(), "198.51.100.30", ADMIN_EMAIL, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
}

#[test]
fn the_client_is_the_right_most_address_that_is_not_a_trusted_proxy() {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    use keyward::auth::client_ip::forwarded_client;
    use std::net::IpAddr;

    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let client = |headers: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        forwarded_client(peer, &map, &trusted).to_string()
    };
    // X-Forwarded-For: the client's own claim on the left is not believed.
    assert_eq!(
        client(&[("x-forwarded-for", "6.6.6.6, 192.0.2.1, 10.0.0.9")]),
        "192.0.2.1"
    );
    assert_eq!(
        client(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "192.0.2.1")
        ]),
        "192.0.2.1",
        "header lines are one list"
    );
    // Forwarded (RFC 7239), with ports, quotes and IPv6.
    assert_eq!(
        client(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::17]:4711\";proto=https, for=10.1.1.1"
        )]),
        "2001:db8::17"
    );
    assert_eq!(
        client(&[("forwarded", "For=\"192.0.2.60:80\";by=10.0.0.1")]),
        "192.0.2.60"
    );
    assert_eq!(
        client(&[("x-forwarded-for", "::ffff:192.0.2.5")]),
        "192.0.2.5"
    );
    // Both headers naming the same client are fine; disagreeing ones mean one was forged.
    assert_eq!(
        client(&[
            ("forwarded", "for=192.0.2.1"),
            ("x-forwarded-for", "192.0.2.1")
        ]),
        "192.0.2.1"
    );
    assert_eq!(
        client(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "192.0.2.1")
        ]),
        "10.0.0.2"
    );
    // Malformed or nameless hops fall back to the peer.
    for bad in [
        ("x-forwarded-for", "not-an-address"),
        ("x-forwarded-for", "192.0.2.1, "),
        ("forwarded", "for=unknown"),
        ("forwarded", "for=_hidden"),
        ("forwarded", "proto=https"),
        ("forwarded", "for=\"192.0.2.1"),
        ("forwarded", "garbage"),
    ] {
        assert_eq!(client(&[bad]), "10.0.0.2", "{bad:?}");
    }
    // Only every hop being a proxy leaves the left-most.
    assert_eq!(
        client(&[("x-forwarded-for", "10.9.9.9, 10.0.0.9")]),
        "10.9.9.9"
    );
    // From an untrusted peer, the headers are not read at all.
    let mut map = HeaderMap::new();
    map.insert(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_static("192.0.2.1"),
    );
    assert_eq!(
        forwarded_client("203.0.113.1".parse().unwrap(), &map, &trusted).to_string(),
        "203.0.113.1"
    );
}

// ---- The current-password check (point 8) ----------------------------------------------------

#[tokio::test]
async fn wrong_current_passwords_are_throttled_and_audited() {
    let app = behind_proxy().await;
    app.signed_in_user().await;
    let change = |current: &'static str| {
        [
            ("current", current),
            ("password", "a brand new passphrase 2026"),
            ("confirm", "a brand new passphrase 2026"),
        ]
    };
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let page = post_forwarded(
            &app,
            "/account/password",
            "198.51.100.7",
            &change("guess-4711-x"),
        )
        .await;
        statuses.push(page.status);
        if page.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                page.text("#current-error")
                    .starts_with("Too many wrong passwords. Wait")
            );
            assert!(page.headers.contains_key("retry-after"));
        }
    }
    assert!(
        statuses[..5]
            .iter()
            .all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY)
    );
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT details, client_ip FROM audit_log \
         WHERE action = 'user.password_change_refused' ORDER BY id",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    let details: Vec<&str> = rows.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        details,
        [["wrong current password"; 5].as_slice(), &["throttled"]].concat()
    );
    assert!(rows.iter().all(|(_, ip)| ip == "198.51.100.7"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE details LIKE '%4711%' OR actor_label LIKE '%4711%'")
            .await,
        0,
        "what was typed is never stored"
    );

    // The right password from that address is refused while it is throttled…
    assert_eq!(
        post_forwarded(&app, "/account/password", "198.51.100.7", &change(PASSWORD))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …and accepted from the person's own address.
    let done = post_forwarded(&app, "/account/password", "203.0.113.5", &change(PASSWORD)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'user.password_changed'")
            .await,
        1
    );
}

// ---- No session before sign-in (point 9) -----------------------------------------------------

#[tokio::test]
async fn showing_the_anonymous_forms_writes_no_session() {
    let app = spawn_app().await;
    let setup = app
        .setup_url
        .clone()
        .unwrap()
        .trim_start_matches(&app.address)
        .to_string();
    for _ in 0..50 {
        assert_eq!(
            app.other_client().get("/login").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(app.get(&setup).await.status, StatusCode::OK);
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    let wrong = app.sign_in(ADMIN_EMAIL, "a wrong guess here").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.attr("input[name=csrf_token]", "value").is_some());
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    // An invitation link, followed anonymously, writes none either.
    let admin = app.other_client();
    admin.signed_in_again().await;
    crate::mail::invite(&admin, "Grace Hopper", USER_EMAIL).await;
    let (_, link) = last_invitation(&app).await;
    let grace = app.other_client();
    assert_eq!(grace.get(&link).await.status, StatusCode::OK);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        1,
        "the administrator's"
    );

    // Sign-in still works, and only it makes a session.
    assert_eq!(
        app.sign_in(ADMIN_EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
    assert_eq!(app.get("/user-access/keys").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_sign_in_without_a_valid_form_token_is_refused() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    let token = app.csrf_token().await;
    let form = |t: &str| {
        vec![
            ("email", ADMIN_EMAIL.to_string()),
            ("password", PASSWORD.to_string()),
            ("csrf_token", t.to_string()),
        ]
    };
    let post = |client: &TestApp, fields: Vec<(&'static str, String)>| {
        let req = client.client.post(client.url("/login")).form(&fields);
        async move { req.send().await.unwrap().status() }
    };
    // No token, a forged one, one whose signature was altered, another browser's token.
    let (issued, _) = token.split_once('.').unwrap();
    let other = app.other_client();
    let foreign = other.csrf_token().await;
    for bad in [
        String::new(),
        "forged".into(),
        format!("{issued}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        foreign,
    ] {
        assert_eq!(
            post(&app, form(&bad)).await,
            StatusCode::FORBIDDEN,
            "{bad:?}"
        );
    }
    // A browser without the nonce cookie cannot use a token it read elsewhere.
    let fresh = crate::common::client();
    let res = fresh
        .post(app.url("/login"))
        .form(&form(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The token expires: two hours after the page was shown it no longer works.
    app.clock.advance(Duration::minutes(121));
    assert_eq!(post(&app, form(&token)).await, StatusCode::FORBIDDEN);
    assert_eq!(
        sign_in_rows(&app).await,
        0,
        "refused before the password was looked at"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    // A fresh page's token works.
    let token = app.csrf_token().await;
    assert_eq!(post(&app, form(&token)).await, StatusCode::SEE_OTHER);
    // The anonymous token opens only the anonymous forms, never a signed-in one.
    let res = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/user-access/keys").await.status, StatusCode::OK);
}
