//! Step-up (issue 16, SPEC §8): the actions that make or destroy a secret, or change roles or
//! the policy, ask a person whose last confirmation is older than ten minutes to confirm it is
//! them (code of their app or recovery code; the password without an app), keep what the form
//! sent, and go on with it once confirmed. The clock is the injected one.

use chrono::Duration;
use reqwest::StatusCode;
use scraper::Selector;

use crate::common::{PASSWORD, Page, TestApp, UnixNow, spawn_app};
use crate::factors::{enrol, next_step};

const KEYS: &str = "/user-access/keys";

fn add_form(name: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", name),
        ("key_type", "access"),
        ("validity", "30"),
        ("custom_date", ""),
    ]
}

/// The hidden fields and target of the "Confirm it's you" form on `page`.
fn confirmation_form(page: &Page) -> (String, Vec<(String, String)>) {
    let form = Selector::parse("main form[method=post]").unwrap();
    let hidden = Selector::parse("input[type=hidden]").unwrap();
    let form = page
        .html
        .select(&form)
        .find(|f| {
            f.select(&Selector::parse("#step_up").unwrap())
                .next()
                .is_some()
        })
        .unwrap_or_else(|| panic!("a confirmation form: {}", page.body));
    let action = form.value().attr("action").unwrap().to_string();
    let fields = form
        .select(&hidden)
        .map(|i| {
            let v = i.value();
            (
                v.attr("name").unwrap().to_string(),
                v.attr("value").unwrap_or_default().to_string(),
            )
        })
        .collect();
    (action, fields)
}

/// Answers the confirmation on `page` with `answer`, as the browser posts that form.
async fn confirm(app: &TestApp, page: &Page, answer: &str) -> Page {
    let (action, fields) = confirmation_form(page);
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("step_up", answer));
    app.post_raw(&action, &form).await
}

fn asks_to_confirm(page: &Page) -> bool {
    page.text("h1") == "Confirm it's you"
}

async fn keys_named(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM access_keys WHERE name = $1")
        .bind(name)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

async fn step_up_audit(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT outcome, details FROM audit_log WHERE action = 'step_up' ORDER BY id")
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn within_ten_minutes_of_signing_in_nothing_more_is_asked() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.clock.advance(Duration::minutes(9));
    let key = app.add_key(KEYS, &add_form("fresh")).await;
    assert!(key.secret.starts_with("kws_"));
}

#[tokio::test]
async fn after_ten_minutes_adding_a_key_asks_for_the_password_and_keeps_the_form() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.clock.advance(Duration::minutes(11));

    let asked = app.post(KEYS, &add_form("nightly, \"export\" <job>")).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asks_to_confirm(&asked), "{}", asked.body);
    assert!(asked.text("main").contains("To create an access key"));
    assert_eq!(
        asked.attr("#step_up", "type").as_deref(),
        Some("password"),
        "no app: the password is asked"
    );
    assert_eq!(
        asked.attr("input[name=name]", "value").as_deref(),
        Some("nightly, \"export\" <job>"),
        "what was typed is kept"
    );
    assert_eq!(keys_named(&app, "nightly, \"export\" <job>").await, 0);

    let wrong = confirm(&app, &asked, "not my password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(asks_to_confirm(&wrong));
    assert!(
        wrong
            .text("[role=alert]")
            .contains("password is not correct")
    );
    assert_eq!(keys_named(&app, "nightly, \"export\" <job>").await, 0);

    let done = confirm(&app, &wrong, PASSWORD).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let secret = done.attr("#secret-key", "value").expect("the secret, once");
    assert!(secret.starts_with("kws_"));
    assert_eq!(keys_named(&app, "nightly, \"export\" <job>").await, 1);

    // Confirmed: the next ten minutes ask nothing more.
    app.clock.advance(Duration::minutes(9));
    app.add_key(KEYS, &add_form("second")).await;

    let audit = step_up_audit(&app).await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0].0, "failure");
    assert!(audit[0].1.contains("/user-access/keys"));
    assert_eq!(audit[1].0, "success");
    let all: Vec<String> = sqlx::query_scalar("SELECT details FROM audit_log")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert!(
        all.iter()
            .all(|d| !d.contains(PASSWORD) && !d.contains("not my password")),
        "no typed answer in the audit log"
    );
}

#[tokio::test]
async fn with_an_app_deleting_a_key_takes_a_code_or_a_recovery_code_not_the_password() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let first = app.add_key(KEYS, &add_form("first")).await;
    let second = app.add_key(KEYS, &add_form("second")).await;
    let (secret, codes) = enrol(&app).await;
    app.clock.advance(Duration::minutes(11));

    let asked = app.post(&format!("{KEYS}/{}/delete", first.id), &[]).await;
    assert!(asks_to_confirm(&asked), "{}", asked.body);
    assert!(asked.text("main").contains("To delete a key"));
    assert_eq!(
        asked.attr("#step_up", "inputmode").as_deref(),
        Some("numeric")
    );
    assert_eq!(
        asked.attr(".form-actions a", "href"),
        Some(format!("{KEYS}/{}", first.id)),
        "Cancel leads back to the key"
    );

    let password = confirm(&app, &asked, PASSWORD).await;
    assert_eq!(password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(keys_named(&app, "first").await, 1);

    next_step(&app);
    let code = secret.code_at(app.clock.unix_now());
    let done = confirm(&app, &password, &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(keys_named(&app, "first").await, 0);

    // Ten minutes on, a recovery code confirms too, once.
    app.clock.advance(Duration::minutes(11));
    let asked = app.post(&format!("{KEYS}/{}/delete", second.id), &[]).await;
    assert!(asks_to_confirm(&asked));
    let done = confirm(&app, &asked, &codes[0]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(keys_named(&app, "second").await, 0);
}

#[tokio::test]
async fn every_guarded_action_asks_and_changes_nothing_until_confirmed() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let key = app.add_key(KEYS, &add_form("kept")).await;
    let personal = app.add_key("/my/keys", &add_form("mine")).await;
    app.clock.advance(Duration::minutes(11));
    let before = app.count("SELECT COUNT(*) FROM audit_log").await;
    for (path, fields) in [
        (KEYS.to_string(), add_form("new")),
        ("/my/keys".to_string(), add_form("new mine")),
        (format!("{KEYS}/{}/regenerate", key.id), vec![]),
        (format!("/my/keys/{}/regenerate", personal.id), vec![]),
        (format!("/my/keys/{}/delete", personal.id), vec![]),
        (
            "/configuration/api-access/secret-keys".to_string(),
            vec![("name", "signing")],
        ),
        (
            "/user-access/roles".to_string(),
            vec![("name", "Auditor"), ("permissions", "audit:read")],
        ),
        (
            "/user-access/roles/role_read_only/delete".to_string(),
            vec![],
        ),
        (
            "/account/security/policy".to_string(),
            vec![("policy", "everyone")],
        ),
        // The router decodes an encoded unreserved character; so does the guard.
        ("/user-access/k%65ys".to_string(), add_form("encoded")),
    ] {
        let page = app.post(&path, &fields).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(asks_to_confirm(&page), "{path}: {}", page.body);
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log").await,
        before,
        "nothing happened"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM access_keys").await, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM secret_keys WHERE name = 'signing'")
            .await,
        0
    );

    // Actions that create no secret and destroy nothing are not asked.
    let page = app
        .post(&format!("{KEYS}/{}/deactivate", key.id), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_answers_are_throttled_like_the_second_step() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.clock.advance(Duration::minutes(11));
    let mut page = app.post(KEYS, &add_form("guessed")).await;
    let mut statuses = Vec::new();
    for i in 0..7 {
        page = confirm(&app, &page, &format!("wrong password {i}")).await;
        statuses.push(page.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(page.headers.contains_key("retry-after"));
    assert!(page.text("[role=alert]").contains("Too many"));
    // Throttled: even the right password is refused until the wait is over.
    let refused = confirm(&app, &page, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(keys_named(&app, "guessed").await, 0);
    app.clock.advance(Duration::minutes(16));
    let done = confirm(&app, &refused, PASSWORD).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(keys_named(&app, "guessed").await, 1);
}

#[tokio::test]
async fn the_confirmation_page_is_refused_without_the_forms_token() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    app.clock.advance(Duration::minutes(11));
    let asked = app.post(KEYS, &add_form("forged")).await;
    let (action, fields) = confirmation_form(&asked);
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("step_up", PASSWORD));
    let page = app.post_raw(&action, &form).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(keys_named(&app, "forged").await, 0);
    assert!(step_up_audit(&app).await.is_empty(), "not even checked");
}
