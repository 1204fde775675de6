use reqwest::StatusCode;

use crate::common::{ADMIN_EMAIL, PASSWORD, USER_EMAIL, spawn_app};

#[tokio::test]
async fn the_right_password_signs_in_and_is_audited() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
        .await;
    let res = app.sign_in("  ADA@example.com ", PASSWORD).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/");
    let home = app.get("/").await;
    assert_eq!(home.text("h1"), "Overview");
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in' AND outcome = 'success'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE last_sign_in_at IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_but_never_elsewhere() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    let redirect = app.get("/audit").await;
    assert_eq!(redirect.location(), "/login?next=%2Faudit");
    let form = app.get("/login?next=%2Faudit").await;
    assert_eq!(
        form.attr("input[name=next]", "value").as_deref(),
        Some("/audit")
    );
    let res = app
        .post(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
                ("next", "/audit"),
            ],
        )
        .await;
    assert_eq!(res.location(), "/audit");

    let other = app.other_client();
    let res = other
        .post(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(res.location(), "/");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;

    let wrong = app.sign_in(ADMIN_EMAIL, "not the password at all").await;
    let unknown = app.sign_in("nobody@example.com", PASSWORD).await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert_eq!(page.text("[role=alert]"), "Email or password is incorrect.");
        assert!(page.attr("input[name=csrf_token]", "value").is_some());
    }
    assert_eq!(
        wrong.attr("#email", "value").as_deref(),
        Some(ADMIN_EMAIL),
        "email kept"
    );
    assert_eq!(
        wrong.attr("#password", "value"),
        None,
        "password never echoed"
    );
    // Still signed out.
    assert_eq!(app.get("/my/keys").await.status, StatusCode::SEE_OTHER);

    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'sign_in' AND outcome = 'failure' ORDER BY id",
    )
    .fetch_all(&app.state.pool)
    .await
    .unwrap();
    assert_eq!(reasons, vec!["wrong password", "unknown account"]);
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in() {
    let app = spawn_app().await;
    app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    sqlx::query("UPDATE users SET active = 0")
        .execute(&app.state.pool)
        .await
        .unwrap();
    let page = app.sign_in(USER_EMAIL, PASSWORD).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE details = 'account disabled'")
            .await,
        1
    );
}

#[tokio::test]
async fn repeated_failures_throttle_the_account_until_the_window_passes() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            app.sign_in(ADMIN_EMAIL, "wrong password here").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right password is refused for a while, with a clear message.
    let page = app.sign_in(ADMIN_EMAIL, PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        page.text("[role=alert]")
            .starts_with("Too many failed sign-in attempts. Wait")
    );
    let retry: i64 = page.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // 15 minutes from the failures, rounded up to the minute they fell in.
    assert!((900..=960).contains(&retry), "{retry}");
    assert_eq!(app.get("/my/keys").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE details = 'throttled'")
            .await,
        1
    );

    app.clock.advance(chrono::Duration::seconds(retry));
    assert_eq!(
        app.sign_in(ADMIN_EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_window_runs_from_the_failures_not_from_the_quarter_hour() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    // Five failures at 04:28, two minutes before the clock's quarter hour.
    let at =
        |h, m, s| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 24, h, m, s).unwrap();
    app.clock.set(at(4, 28, 0));
    for _ in 0..5 {
        assert_eq!(
            app.sign_in(ADMIN_EMAIL, "wrong password here").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Past 04:30 the guesses are still refused: no five more in the next quarter hour.
    for (m, s) in [(30, 11), (35, 0), (42, 59)] {
        app.clock.set(at(4, m, s));
        let page = app.sign_in(ADMIN_EMAIL, "another wrong guess").await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "04:{m}:{s}");
        let retry: i64 = page.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            at(4, m, s).timestamp() + retry,
            at(4, 44, 0).timestamp(),
            "room comes 15 minutes after the minute of the failures"
        );
    }
    // The refused guesses did not extend the wait: at 04:44 the right password works.
    app.clock.set(at(4, 44, 0));
    assert_eq!(
        app.sign_in(ADMIN_EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn one_client_guessing_many_accounts_is_throttled() {
    let app = spawn_app().await;
    app.create_user(USER_EMAIL, "Grace", PASSWORD).await;
    for i in 0..20 {
        let page = app
            .sign_in(&format!("guess{i}@example.com"), "some wrong password")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let page = app.sign_in(USER_EMAIL, PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sign_in_gives_a_new_session_with_safe_cookie_flags() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    // Before sign-in there is no session: only the sign-in form's short-lived nonce cookie.
    let before = app.client.get(app.url("/login")).send().await.unwrap();
    let cookies: Vec<String> = before
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let form_cookie = &cookies[0];
    assert!(form_cookie.starts_with("keyward_form="), "{form_cookie}");
    assert!(form_cookie.contains("HttpOnly"));
    assert!(form_cookie.contains("SameSite=Strict"));
    assert!(!form_cookie.contains("Secure"), "plain http public URL");

    let token = app.csrf_token().await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", PASSWORD),
            ("next", ""),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    let signed_in_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("keyward_session="))
        .expect("a session cookie at sign-in");
    assert!(signed_in_cookie.contains("HttpOnly"));
    assert!(signed_in_cookie.contains("SameSite=Lax"));
    assert!(
        !signed_in_cookie.contains("Secure"),
        "plain http public URL"
    );

    // The session row stores a hash of the key, never the cookie's key itself.
    let stored: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM sessions")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored.iter().all(|h| h.len() == 64));
}

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app =
        crate::common::spawn_app_with(|s| s.public_url = "https://keys.example.com".into()).await;
    let res = app.client.get(app.url("/login")).send().await.unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    // The __Host- prefix: no sibling subdomain or plain-http page can plant a nonce.
    assert!(cookie.starts_with("__Host-keyward_form="), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
}

#[tokio::test]
async fn passwords_never_reach_the_log() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    let wrong = "a-wrong-password-that-is-unique-4711";
    app.sign_in(ADMIN_EMAIL, wrong).await;
    app.sign_in(ADMIN_EMAIL, PASSWORD).await;
    let logs = crate::common::captured_logs();
    assert!(logs.contains("path=/login"), "requests are logged");
    assert!(!logs.contains(wrong));
    assert!(!logs.contains(PASSWORD));
}

#[tokio::test]
async fn a_burst_of_parallel_guesses_gets_no_more_tries_than_the_limit() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada", PASSWORD).await;
    let mut clients = Vec::new();
    for _ in 0..12 {
        let c = app.other_client();
        let token = c.csrf_token().await;
        clients.push((c, token));
    }
    let forms: Vec<[(&str, &str); 3]> = clients
        .iter()
        .map(|(_, token)| {
            [
                ("email", ADMIN_EMAIL),
                ("password", "a wrong guess here"),
                ("csrf_token", token.as_str()),
            ]
        })
        .collect();
    let attempts = clients
        .iter()
        .zip(forms.iter())
        .map(|((c, _), form)| c.post_raw("/login", form));
    let pages = futures::future::join_all(attempts).await;
    let refused = pages
        .iter()
        .filter(|p| p.status == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = pages
        .iter()
        .filter(|p| p.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((refused, throttled), (5, 7));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE details = 'wrong password'")
            .await,
        5
    );
}

#[tokio::test]
async fn an_empty_sign_in_form_says_what_is_missing_and_counts_no_failure() {
    let app = spawn_app().await;
    app.create_admin(ADMIN_EMAIL, "Ada Lovelace", PASSWORD)
        .await;
    for (email, password, message) in [
        ("", "", "Enter your email and password."),
        ("", PASSWORD, "Enter your email."),
        (ADMIN_EMAIL, "", "Enter your password."),
    ] {
        let page = app.sign_in(email, password).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{email:?}");
        assert_eq!(page.text("[role=alert]"), message);
    }
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in' AND outcome <> 'success'"
        )
        .await,
        0,
        "nothing was tried, nothing is counted"
    );
}
