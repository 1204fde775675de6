//! Last used addresses (issue 17, SPEC §9): each key keeps its last five distinct client
//! addresses (first and last seen, user agent, uses), counted in memory and written in batches;
//! key details lists them and "Allow only these addresses" fills the allowed networks for review.

use chrono::Duration;
use keyward::service::key_auth::{Attempt, AuthError, Refusal};
use reqwest::StatusCode;

use crate::common::{TestApp, spawn_app};

const BASE: &str = "/user-access/keys";

/// Presents a key from `ip` with `agent`; whether it was accepted, or why not.
async fn present(
    app: &TestApp,
    id: &str,
    secret: &str,
    ip: &str,
    agent: &str,
) -> Result<(), Refusal> {
    let ring = app.state.keyring();
    let attempt = Attempt {
        presented: keyward::auth::key_auth::from_pair(&format!("{id}::{secret}")),
        client_ip: ip,
        user_agent: agent,
        limit_client: true,
        needs_caller: None,
    };
    match app.state.key_checker.check(&ring, attempt).await {
        Ok(_) => Ok(()),
        Err(AuthError::Refused(r)) => Err(r),
        Err(other) => panic!("{other:?}"),
    }
}

async fn new_key(app: &TestApp) -> (String, String) {
    let key = app
        .add_key(
            BASE,
            &[
                ("name", "reporting"),
                ("key_type", "access"),
                ("validity", "90"),
                ("custom_date", ""),
            ],
        )
        .await;
    (key.id, key.secret)
}

#[tokio::test]
async fn the_last_five_distinct_addresses_are_kept_written_in_batches() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (id, secret) = new_key(&app).await;
    for i in 1..=7 {
        app.clock.advance(Duration::minutes(1));
        present(&app, &id, &secret, &format!("203.0.113.{i}"), "report/1.0")
            .await
            .unwrap();
    }
    // The first address again, twice, with a newer agent.
    app.clock.advance(Duration::minutes(1));
    present(&app, &id, &secret, "203.0.113.1", "report/2.0")
        .await
        .unwrap();
    present(&app, &id, &secret, "203.0.113.1", "report/2.0")
        .await
        .unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM key_addresses").await,
        0,
        "not written per request"
    );
    app.state.key_checker.flush_addresses().await;

    let page = app.get(&format!("{BASE}/{id}")).await;
    let rows = page.texts("#addresses tbody tr");
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(
        rows[0].starts_with("203.0.113.1 "),
        "most recent first: {rows:?}"
    );
    assert!(
        rows[0].contains(" 3 report/2.0"),
        "three uses, latest agent: {}",
        rows[0]
    );
    assert!(
        rows[0].contains("2026-11-23 10:01 UTC"),
        "first seen kept: {}",
        rows[0]
    );
    for (row, i) in rows[1..].iter().zip([7, 6, 5, 4]) {
        assert!(row.starts_with(&format!("203.0.113.{i} ")), "{row}");
    }

    // Later batches add to what is stored, and still keep five.
    present(&app, &id, &secret, "203.0.113.2", "report/2.0")
        .await
        .unwrap();
    app.state.key_checker.flush_addresses().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM key_addresses").await, 5);
    let uses: i64 =
        sqlx::query_scalar("SELECT uses FROM key_addresses WHERE address = '203.0.113.1'")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(uses, 3);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM key_addresses WHERE address = '203.0.113.3'")
            .await,
        0,
        "the oldest went"
    );
}

#[tokio::test]
async fn allow_only_these_addresses_fills_the_networks_for_review_before_saving() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (id, secret) = new_key(&app).await;
    present(&app, &id, &secret, "198.51.100.7", "cron")
        .await
        .unwrap();
    present(&app, &id, &secret, "2001:db8::42", "cron")
        .await
        .unwrap();
    app.state.key_checker.flush_addresses().await;

    let page = app.get(&format!("{BASE}/{id}")).await;
    let link = page.attr("#allow-seen", "href").expect("the button");
    let review = app.get(&link).await;
    assert_eq!(review.status, StatusCode::OK);
    assert!(review.text("#review-addresses").contains("Review them"));
    let filled = review.attr("#allowed-networks", "value").unwrap();
    assert!(
        filled.contains("198.51.100.7") && filled.contains("2001:db8::42"),
        "{filled}"
    );
    // Nothing changed yet.
    assert!(
        present(&app, &id, &secret, "192.0.2.1", "cron")
            .await
            .is_ok()
    );

    let save = app
        .post(
            &format!("{BASE}/{id}"),
            &[
                ("name", "reporting"),
                ("validity", "keep"),
                ("custom_date", ""),
                ("allowed_networks", &filled),
            ],
        )
        .await;
    assert_eq!(
        save.status,
        StatusCode::SEE_OTHER,
        "{}",
        save.text(".field-error")
    );
    assert_eq!(
        present(&app, &id, &secret, "192.0.2.1", "cron").await,
        Err(Refusal::ForbiddenNetwork)
    );
    assert!(
        present(&app, &id, &secret, "198.51.100.7", "cron")
            .await
            .is_ok()
    );
    assert!(
        present(&app, &id, &secret, "2001:db8::42", "cron")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_key_without_uses_says_so_and_a_deleted_key_leaves_nothing() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let (id, secret) = new_key(&app).await;
    let page = app.get(&format!("{BASE}/{id}")).await;
    assert!(page.text("#addresses").contains("None yet"));
    assert!(page.attr("#allow-seen", "href").is_none());
    present(&app, &id, &secret, "198.51.100.7", "cron")
        .await
        .unwrap();
    let deleted = app.post(&format!("{BASE}/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    app.state.key_checker.flush_addresses().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM key_addresses").await, 0);
}
