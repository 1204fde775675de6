use reqwest::StatusCode;

use crate::common::{PASSWORD, spawn_app};

fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap().to_string()
}

#[tokio::test]
async fn first_start_prints_a_setup_link_that_creates_the_first_administrator() {
    let app = spawn_app().await;
    let url = app
        .setup_url
        .clone()
        .expect("a setup link while no user exists");
    assert!(
        url.starts_with(&app.address),
        "{url} names the real address"
    );
    let path = url.trim_start_matches(&app.address).to_string();

    let form = app.get(&path).await;
    assert_eq!(form.status, 200);
    assert_eq!(form.headers["cache-control"], "no-store");
    assert_eq!(form.text("h1"), "Create the first administrator");
    for field in ["name", "email", "password", "confirm"] {
        assert!(
            !form.texts(&format!("label[for={field}]")).is_empty(),
            "label for {field}"
        );
    }

    let token = token_of(&url);
    let done = app
        .post(
            "/setup",
            &[
                ("token", &token),
                ("name", "Ada Lovelace"),
                ("email", "Ada@Example.com"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/user-access/keys");

    // Signed in straight away, as an administrator.
    let keys = app.get("/user-access/keys").await;
    assert_eq!(keys.status, 200);
    assert!(
        keys.text(".user-menu .menu-who")
            .contains("ada@example.com")
    );

    // The link worked once; with a user in place the setup page is gone for everyone.
    let again = app.other_client().get(&path).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'setup.admin_created'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_setup_token_is_stored_only_as_a_hash() {
    let app = spawn_app().await;
    let token = token_of(app.setup_url.as_deref().unwrap());
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM setup_tokens")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token);
    assert_eq!(stored[0].len(), 64);
}

#[tokio::test]
async fn the_setup_link_expires_after_an_hour() {
    let app = spawn_app().await;
    let url = app.setup_url.clone().unwrap();
    let path = url.trim_start_matches(&app.address).to_string();
    app.clock.advance(chrono::Duration::minutes(59));
    assert_eq!(app.get(&path).await.status, 200);
    app.clock.advance(chrono::Duration::minutes(2));
    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    let res = app
        .post(
            "/setup",
            &[
                ("token", &token_of(&url)),
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn a_wrong_setup_token_is_refused() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/setup?token=guess").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(app.get("/setup").await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn bad_setup_input_comes_back_with_messages_and_writes_nothing() {
    let app = spawn_app().await;
    let token = token_of(app.setup_url.as_deref().unwrap());
    let page = app
        .post(
            "/setup",
            &[
                ("token", &token),
                ("name", "  "),
                ("email", "not-an-email"),
                ("password", "short"),
                ("confirm", "different"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.text("#name-error"), "Enter a name.");
    assert!(page.text("#email-error").contains("name@example.com"));
    assert!(page.text("#password-error").contains("12 characters"));
    assert_eq!(page.text("#confirm-error"), "The passwords do not match.");
    assert_eq!(
        page.attr("#email", "value").as_deref(),
        Some("not-an-email"),
        "typed values are kept"
    );
    assert_eq!(page.attr("#email", "aria-invalid").as_deref(), Some("true"));
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);

    // The token still works after a failed attempt.
    let ok = app
        .post(
            "/setup",
            &[
                ("token", &token),
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn no_setup_link_once_an_administrator_exists() {
    let app = spawn_app().await;
    let url = app.setup_url.clone().unwrap();
    app.create_admin("ada@example.com", "Ada", PASSWORD).await;
    let path = url.trim_start_matches(&app.address).to_string();
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    let mut conn = app.state.pool.acquire().await.unwrap();
    let token = keyward::service::bootstrap::issue_setup_token(&mut conn, 0)
        .await
        .unwrap();
    assert!(token.is_none());
}
