//! Forgotten passwords (SPEC §8): the same answer, in the same time, whether or not an account
//! exists; throttling per address and per client; the emailed single-use link that works for an
//! hour and ends every session; the administrator's "Send password reset".

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use reqwest::StatusCode;

use crate::common::smtp::{Mode, SmtpServer};
use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, USER_EMAIL, spawn_app_with};

const NEW_PASSWORD: &str = "a brand new passphrase here";

/// An app that sends its mail to a real SMTP conversation on loopback, with Grace (a user
/// without groups) and Ada (the administrator, signed in on the app's client).
async fn app_with_mail() -> (TestApp, SmtpServer) {
    let server = SmtpServer::start(Mode::Accept).await;
    let url = server.url();
    let app = spawn_app_with(move |s| s.smtp_url = Some(url.into())).await;
    app.create_user(USER_EMAIL, "Grace Hopper", PASSWORD).await;
    app.signed_in_admin().await;
    (app, server)
}

/// Asks for a reset link as an anonymous visitor would.
async fn ask(app: &TestApp, email: &str) -> crate::common::Page {
    let guest = app.other_client();
    guest.post("/forgot-password", &[("email", email)]).await
}

/// Sends what the outbox holds and returns the reset links in the newest accepted messages,
/// oldest first.
async fn sent_links(app: &TestApp, server: &SmtpServer) -> Vec<String> {
    app.jobs.send_due().await.expect("the outbox is sent");
    server
        .accepted()
        .iter()
        .filter_map(|m| link_in(&m.data))
        .collect()
}

/// The reset link in an email.
fn link_in(data: &str) -> Option<String> {
    crate::common::link_in(data, "/reset-password?token=")
}

/// Fails unless the audit log's first page (read by the signed-in administrator) says each of
/// `parts`.
async fn audit_says(app: &TestApp, parts: &[&str]) {
    let audit = app.get("/audit").await.text("tbody");
    for part in parts {
        assert!(audit.contains(part), "{part}: {audit}");
    }
}

/// The ID of the user with this email.
async fn user_id(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

/// Follows a link and sets `password` through its form.
async fn reset_with(app: &TestApp, link: &str, password: &str) -> crate::common::Page {
    let guest = app.other_client();
    let form = guest.get(link).await;
    assert_eq!(form.status, StatusCode::OK, "the link works: {}", form.body);
    let token = form
        .attr("input[name=token]", "value")
        .expect("token field");
    let csrf = form.attr("input[name=csrf_token]", "value").unwrap();
    guest
        .post_raw(
            "/reset-password",
            &[
                ("token", &token),
                ("password", password),
                ("confirm", password),
                ("csrf_token", &csrf),
            ],
        )
        .await
}

#[tokio::test]
async fn known_and_unknown_addresses_get_the_same_answer() {
    let (app, server) = app_with_mail().await;
    let known = ask(&app, USER_EMAIL).await;
    let unknown = ask(&app, "nobody@example.com").await;
    assert_eq!(known.status, StatusCode::SEE_OTHER);
    assert_eq!(
        (known.status, known.location()),
        (unknown.status, unknown.location())
    );
    let answer = app.other_client().get(&known.location()).await;
    assert!(
        answer
            .text("[role=status]")
            .starts_with("If an account exists for that address, we sent a link"),
        "{}",
        answer.body
    );
    // Only the real account gets an email.
    let links = sent_links(&app, &server).await;
    assert_eq!(links.len(), 1);
    assert_eq!(server.accepted()[0].to, vec![USER_EMAIL]);
    // The audit log, for administrators, says what happened.
    audit_says(&app, &["link sent", "no link: unknown account"]).await;
}

#[tokio::test]
async fn a_disabled_account_gets_the_same_answer_and_no_email() {
    let (app, server) = app_with_mail().await;
    let id = user_id(&app, USER_EMAIL).await;
    let page = app
        .post(&format!("/user-access/users/{id}/disable"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let asked = ask(&app, USER_EMAIL).await;
    assert_eq!(asked.location(), "/forgot-password?sent=1");
    assert!(sent_links(&app, &server).await.is_empty());
}

/// The median of some durations.
fn median(mut times: Vec<StdDuration>) -> StdDuration {
    times.sort();
    times[times.len() / 2]
}

/// The medians of 25 timed requests for each address, taken in turns (known and unknown
/// alternately first, after three untimed rounds).
async fn request_medians(app: &TestApp) -> (StdDuration, StdDuration) {
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..28 {
        // A new window each round, so no request is throttled.
        app.clock.advance(Duration::minutes(16));
        let mut pair = [
            (USER_EMAIL, &mut known),
            ("nobody@example.com", &mut unknown),
        ];
        if round % 2 == 1 {
            pair.reverse();
        }
        for (email, times) in pair {
            let guest = app.other_client();
            let csrf = guest.csrf_token().await;
            let form = [("email", email), ("csrf_token", csrf.as_str())];
            let started = Instant::now();
            let page = guest.post_raw("/forgot-password", &form).await;
            let took = started.elapsed();
            assert_eq!(page.location(), "/forgot-password?sent=1");
            if round >= 3 {
                times.push(took);
            }
        }
    }
    (median(known), median(unknown))
}

#[tokio::test]
async fn known_and_unknown_addresses_take_the_same_time() {
    let (app, _server) = app_with_mail().await;
    // The machine is shared: a measurement disturbed by other work is taken again, up to three
    // times. A real difference between the two paths fails every one.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (k, u) = request_medians(&app).await;
        let (fast, slow) = (k.min(u).as_secs_f64(), k.max(u).as_secs_f64());
        if (slow - fast) / slow <= 0.2 {
            return;
        }
        seen.push((k, u));
    }
    panic!("medians (known, unknown) differ by more than 20% each time: {seen:?}");
}

#[tokio::test]
async fn an_address_asked_for_too_often_gets_the_same_answer_without_more_emails() {
    let (app, server) = app_with_mail().await;
    for _ in 0..5 {
        let page = ask(&app, USER_EMAIL).await;
        assert_eq!(page.location(), "/forgot-password?sent=1");
    }
    assert_eq!(sent_links(&app, &server).await.len(), 3, "three an address");
    audit_says(&app, &["too many requests for this address"]).await;
    app.clock.advance(Duration::minutes(16));
    ask(&app, USER_EMAIL).await;
    assert_eq!(sent_links(&app, &server).await.len(), 4, "again later");
}

#[tokio::test]
async fn a_client_asking_too_often_is_told_to_wait() {
    let (app, _server) = app_with_mail().await;
    for n in 0..10 {
        let page = ask(&app, &format!("someone{n}@example.com")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
    }
    let page = ask(&app, "another@example.com").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers.contains_key("retry-after"));
    assert!(page.text(".field-error").contains("Too many requests"));
    assert_eq!(
        page.attr("#email", "value").as_deref(),
        Some("another@example.com")
    );
}

#[tokio::test]
async fn a_reset_sets_the_password_ends_every_session_and_the_link_works_once() {
    let (app, server) = app_with_mail().await;
    let grace = app.other_client();
    assert_eq!(
        grace.sign_in(USER_EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    ask(&app, USER_EMAIL).await;
    let link = sent_links(&app, &server).await.pop().expect("a link");
    let done = reset_with(&app, &link, NEW_PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/login?reset=1");
    let notice = app.other_client().get("/login?reset=1").await;
    assert!(
        notice
            .text("[role=status]")
            .contains("Your new password is set")
    );
    // Grace's other session ended at once.
    assert_eq!(grace.get("/my/keys").await.status, StatusCode::SEE_OTHER);
    let fresh = app.other_client();
    assert_eq!(
        fresh.sign_in(USER_EMAIL, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fresh.sign_in(USER_EMAIL, NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // The link worked once.
    let again = app.other_client().get(&link).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(again.text("h1"), "This link does not work");
    assert_eq!(
        again.attr("a.button", "href").as_deref(),
        Some("/forgot-password")
    );
    assert!(!again.body.contains("410"), "no status code shown");
    audit_says(&app, &["user.password_reset", "link already used"]).await;
}

#[tokio::test]
async fn a_link_expires_after_an_hour_and_a_newer_one_supersedes_it() {
    let (app, server) = app_with_mail().await;
    ask(&app, USER_EMAIL).await;
    let first = sent_links(&app, &server).await.pop().unwrap();
    app.clock.advance(Duration::minutes(59));
    assert_eq!(app.other_client().get(&first).await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(
        app.other_client().get(&first).await.status,
        StatusCode::GONE
    );

    ask(&app, USER_EMAIL).await;
    let older = sent_links(&app, &server).await.pop().unwrap();
    ask(&app, USER_EMAIL).await;
    let newest = sent_links(&app, &server).await.pop().unwrap();
    assert_ne!(older, newest);
    assert_eq!(
        app.other_client().get(&older).await.status,
        StatusCode::GONE
    );
    assert_eq!(app.other_client().get(&newest).await.status, StatusCode::OK);
    app.signed_in_again().await;
    audit_says(&app, &["link expired", "link superseded by a newer one"]).await;
}

#[tokio::test]
async fn the_token_is_never_stored_audited_or_logged_in_clear() {
    let (app, server) = app_with_mail().await;
    ask(&app, USER_EMAIL).await;
    let bodies: Vec<(String, String)> = sqlx::query_as("SELECT body_text, body_html FROM outbox")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    let link = sent_links(&app, &server).await.pop().unwrap();
    let token = link.rsplit('=').next().unwrap().to_string();
    assert_eq!(token.len(), 43);
    for (text, html) in bodies {
        assert!(!text.contains(&token) && !html.contains(&token), "sealed");
    }
    reset_with(&app, &link, NEW_PASSWORD).await;
    app.other_client().get(&link).await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM password_resets")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert!(!stored.is_empty() && stored.iter().all(|h| !h.contains(&token)));
    let outbox: Vec<String> = sqlx::query_scalar("SELECT body_text || body_html FROM outbox")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert!(outbox.iter().all(|b| !b.contains(&token)));
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT actor_label || target_label || details FROM audit_log")
            .fetch_all(&app.state.pool)
            .await
            .unwrap();
    assert!(audit.iter().all(|a| !a.contains(&token)));
    assert!(
        !crate::common::captured_logs().contains(&token),
        "not in the logs"
    );
    let page = app.other_client().get(&link).await;
    assert_eq!(
        page.headers.get("referrer-policy").unwrap(),
        "no-referrer",
        "the link never leaves in a Referer"
    );
}

#[tokio::test]
async fn hostile_input_gets_clear_answers() {
    let (app, _server) = app_with_mail().await;
    let huge = format!("{}@example.com", "a".repeat(70_000));
    for (typed, message) in [
        ("", "Enter an email address."),
        (
            "not an address",
            "Enter an email address like name@example.com.",
        ),
        (
            huge.as_str(),
            "An email address can be at most 254 characters.",
        ),
    ] {
        let page = ask(&app, typed).await;
        assert!(
            page.status == StatusCode::UNPROCESSABLE_ENTITY
                || page.status == StatusCode::PAYLOAD_TOO_LARGE
                || page.status == StatusCode::BAD_REQUEST,
            "{}: {}",
            page.status,
            page.body
        );
        if page.status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(page.text(".field-error"), message);
        }
    }
    let long_token = "x".repeat(5_000);
    for token in ["", "abc", "%00", "../../etc/passwd", long_token.as_str()] {
        let page = app
            .other_client()
            .get(&format!("/reset-password?token={token}"))
            .await;
        assert!(
            page.status == StatusCode::GONE || page.status == StatusCode::BAD_REQUEST,
            "{token:.20}: {}",
            page.status
        );
        let guest = app.other_client();
        let posted = guest
            .post(
                "/reset-password",
                &[
                    ("token", token),
                    ("password", NEW_PASSWORD),
                    ("confirm", NEW_PASSWORD),
                ],
            )
            .await;
        assert!(posted.status.is_client_error(), "{}", posted.status);
    }
}

#[tokio::test]
async fn a_weak_new_password_is_refused_next_to_its_field() {
    let (app, server) = app_with_mail().await;
    ask(&app, USER_EMAIL).await;
    let link = sent_links(&app, &server).await.pop().unwrap();
    let page = reset_with(&app, &link, "short").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!page.text("#password-error").is_empty());
    assert_eq!(
        app.other_client().get(&link).await.status,
        StatusCode::OK,
        "still works"
    );
}

#[tokio::test]
async fn an_administrator_sends_a_reset_link_from_the_users_page() {
    let (app, server) = app_with_mail().await;
    let id = user_id(&app, USER_EMAIL).await;
    let user_page = app.get(&format!("/user-access/users/{id}")).await;
    assert_eq!(
        user_page
            .attr("a[href$='/reset-password']", "href")
            .as_deref(),
        Some(format!("/user-access/users/{id}/reset-password").as_str())
    );
    let confirm = app
        .get(&format!("/user-access/users/{id}/reset-password"))
        .await;
    assert_eq!(confirm.text("h1"), "Send a password reset link?");
    let sent = app
        .post(&format!("/user-access/users/{id}/reset-password"), &[])
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    let back = app.get(&sent.location()).await;
    assert!(
        back.text("[role=status]")
            .contains("password reset link was sent")
    );
    let links = sent_links(&app, &server).await;
    assert_eq!(links.len(), 1);
    let data = server.accepted()[0]
        .data
        .replace("=\r\n", "")
        .replace("=\n", "");
    assert!(
        data.contains("Ada Lovelace asked keyward"),
        "names who asked"
    );
    audit_says(&app, &["user.password_reset_sent", ADMIN_EMAIL]).await;
}

#[tokio::test]
async fn sending_a_reset_link_needs_users_write() {
    let (app, server) = app_with_mail().await;
    let ada = user_id(&app, ADMIN_EMAIL).await;
    let grace = app.other_client();
    grace.sign_in(USER_EMAIL, PASSWORD).await;
    let path = format!("/user-access/users/{ada}/reset-password");
    assert_eq!(grace.get(&path).await.status, StatusCode::FORBIDDEN);
    assert_eq!(grace.post(&path, &[]).await.status, StatusCode::FORBIDDEN);
    assert!(sent_links(&app, &server).await.is_empty());
}

#[tokio::test]
async fn a_disabled_user_gets_no_reset_link_from_an_administrator() {
    let (app, server) = app_with_mail().await;
    let id = user_id(&app, USER_EMAIL).await;
    app.post(&format!("/user-access/users/{id}/disable"), &[])
        .await;
    let page = app.get(&format!("/user-access/users/{id}")).await;
    assert!(page.attr("a[href$='/reset-password']", "href").is_none());
    let sent = app
        .post(&format!("/user-access/users/{id}/reset-password"), &[])
        .await;
    assert_eq!(sent.status, StatusCode::CONFLICT);
    assert!(sent.body.contains("is disabled"));
    assert!(sent_links(&app, &server).await.is_empty());
}
