//! A wrong secret costs no more than a right one (issue 18): a refusal whose answer cannot
//! depend on the refusal writer's commit is answered at once, yet every refusal is counted and
//! audited, a right secret between wrong ones still resets the count, the wrong secret that
//! can lock a key waits for its commit, and wrong secrets do not make the key checks forget
//! the key.

use keyward::service::key_auth::Refusal;
use keyward::service::keys::count_round_trips;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::rest::{Key, call, current_status, refusal_counts, tenant_key};
use crate::common::{TestApp, spawn_app_with};

fn wrong_secret() -> String {
    keyward::domain::Secret::generate().expose().to_string()
}

async fn failed_attempts(app: &TestApp) -> i64 {
    app.state.key_checker.flush_refusals().await;
    app.count("SELECT failed_attempts FROM access_keys WHERE name = 'worker'")
        .await
}

async fn locked(app: &TestApp) -> i64 {
    app.state.key_checker.flush_refusals().await;
    app.count("SELECT locked FROM access_keys WHERE name = 'worker'")
        .await
}

#[tokio::test]
async fn a_right_secret_between_wrong_ones_resets_the_count_and_the_third_wrong_one_locks() {
    // No per-client limit: refusals of the API's own door are answered before their commit.
    let app = spawn_app_with(|s| {
        s.lockout_threshold = 3;
        s.client_failure_limit = 0;
    })
    .await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let current = |auth: String| current_status(&app, auth);
    for _ in 0..2 {
        assert_eq!(
            current(key.with_secret(&wrong_secret())).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(current(key.basic()).await, StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(
            current(key.with_secret(&wrong_secret())).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        current(key.basic()).await,
        StatusCode::OK,
        "two in a row since the right one: not locked"
    );
    assert_eq!((failed_attempts(&app).await, locked(&app).await), (0, 0));
    for _ in 0..3 {
        assert_eq!(
            current(key.with_secret(&wrong_secret())).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        current(key.basic()).await,
        StatusCode::UNAUTHORIZED,
        "three in a row lock the key before the right secret comes"
    );
    assert_eq!((failed_attempts(&app).await, locked(&app).await), (3, 1));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'key.locked'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'key.auth_refused'")
            .await,
        8,
        "every refusal audited: seven wrong secrets and the locked key"
    );
}

#[tokio::test]
async fn the_verify_door_keeps_the_lockout_exact() {
    // Verify never limits per client: its refusals are answered before their commit unless
    // they can lock the key.
    let app = spawn_app_with(|s| s.lockout_threshold = 3).await;
    app.signed_in_admin().await;
    let gateway = tenant_key(&app, "gateway", "access", &["role_integration"]).await;
    let key = tenant_key(&app, "worker", "api", &["role_read_only"]).await;
    let verify = |secret: String| {
        let app = &app;
        let auth = gateway.bearer();
        let presented = format!("{}::{}", key.id, secret);
        async move {
            let (status, body, _) = call(
                app,
                Method::POST,
                "/api/v1/verify",
                Some(&auth),
                Some(json!({"key": presented})),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            body["code"].as_str().unwrap().to_string()
        }
    };
    for _ in 0..2 {
        assert_eq!(verify(wrong_secret()).await, "NOT_FOUND");
    }
    assert_eq!(verify(key.secret.clone()).await, "VALID");
    for _ in 0..2 {
        assert_eq!(verify(wrong_secret()).await, "NOT_FOUND");
    }
    assert_eq!(verify(key.secret.clone()).await, "VALID");
    for _ in 0..3 {
        assert_eq!(verify(wrong_secret()).await, "NOT_FOUND");
    }
    assert_ne!(
        verify(key.secret.clone()).await,
        "VALID",
        "three in a row lock the key before the right secret comes"
    );
    assert_eq!((failed_attempts(&app).await, locked(&app).await), (3, 1));
}

/// `n` wrong secrets of `key` at once to `/api/v1/apikeys/current`; the answers' statuses.
async fn burst_of_wrong_secrets(app: &TestApp, key: &Key, n: i64) -> Vec<StatusCode> {
    // One client for the burst: building one per request takes long enough on a busy machine
    // for the server to time out the first connections' requests.
    let client = reqwest::Client::new();
    let calls = (0..n).map(|_| {
        client
            .get(app.url("/api/v1/apikeys/current"))
            .header("authorization", key.with_secret(&wrong_secret()))
            .send()
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("answered").status())
        .collect()
}

#[tokio::test]
async fn a_burst_of_wrong_secrets_without_lockout_is_refused_counted_and_audited_one_by_one() {
    let app = spawn_app_with(|s| {
        s.lockout_threshold = 0;
        s.client_failure_limit = 0;
    })
    .await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let n = 40;
    let statuses = burst_of_wrong_secrets(&app, &key, n).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "answers: {statuses:?}"
    );
    assert_eq!((failed_attempts(&app).await, locked(&app).await), (n, 0));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'key.auth_refused'")
            .await,
        n
    );
    let counts = refusal_counts(&app).await;
    assert_eq!(
        counts,
        (1..=n).collect::<Vec<i64>>(),
        "each has its own count"
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/apikeys/current",
            Some(&key.basic()),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(failed_attempts(&app).await, 0, "the right secret resets it");
}

#[tokio::test]
async fn wrong_secrets_leave_the_remembered_key_trusted() {
    let app = spawn_app_with(|s| {
        s.lockout_threshold = 0;
        s.client_failure_limit = 0;
    })
    .await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    assert!(app.authenticate(&key.id, &key.secret).await.is_ok());
    let wrong = wrong_secret();
    let (refusals, reads) = count_round_trips(async {
        let mut refused = 0;
        for _ in 0..10 {
            refused +=
                usize::from(app.authenticate(&key.id, &wrong).await == Err(Refusal::WrongSecret));
            app.state.key_checker.flush_refusals().await;
        }
        refused
    })
    .await;
    assert_eq!(
        (refusals, reads),
        (10, 0),
        "ten refusals, no read of the key"
    );
    assert_eq!(failed_attempts(&app).await, 10);
    let (accepted, reads) = count_round_trips(app.authenticate(&key.id, &key.secret)).await;
    assert!(accepted.is_ok());
    assert_eq!(reads, 0, "the remembered key shows the committed count");
    assert_eq!(
        failed_attempts(&app).await,
        0,
        "and the right secret resets it"
    );
}

/// The entries about refusals of the key `key_id`, one by one (`key.auth_refused`) or counted
/// (`key.auth_refused_counted`): (action, client address, details), oldest first.
async fn refusal_entries(app: &TestApp, key_id: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT action, client_ip, details FROM audit_log \
         WHERE action IN ('key.auth_refused', 'key.auth_refused_counted') AND target_id = $1 \
         ORDER BY id",
    )
    .bind(key_id)
    .fetch_all(&app.state.pool)
    .await
    .unwrap()
}

/// How many refusals an entry stands for: one, or the count a summary names ("wrong secret,
/// 25 more times at ...").
fn refusals_in((action, _, details): &(String, String, String)) -> i64 {
    if action == "key.auth_refused" {
        return 1;
    }
    details
        .split(", ")
        .nth(1)
        .and_then(|more| more.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a summary names its count: {details}"))
}

#[tokio::test]
async fn past_its_budget_a_flood_of_wrong_secrets_is_counted_in_one_entry_and_every_one_still_counts()
 {
    let app = spawn_app_with(|s| {
        s.lockout_threshold = 0;
        s.client_failure_limit = 0;
        s.refusal_audit_per_second = 5;
    })
    .await;
    app.signed_in_admin().await;
    let key = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let n = 40;
    let statuses = burst_of_wrong_secrets(&app, &key, n).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "answers: {statuses:?}"
    );
    assert_eq!(
        failed_attempts(&app).await,
        n,
        "every wrong secret counts towards the lockout"
    );
    let entries = refusal_entries(&app, &key.id).await;
    let summaries: Vec<&String> = entries
        .iter()
        .filter(|(action, _, _)| action == "key.auth_refused_counted")
        .map(|(_, _, d)| d)
        .collect();
    assert!(!summaries.is_empty(), "entries: {entries:?}");
    // The burst may straddle the turn of a second: each second writes up to five one by one.
    let own = entries.len() - summaries.len();
    assert!(
        (5..n as usize).contains(&own),
        "{own} entries of their own beside {} summaries",
        summaries.len()
    );
    assert_eq!(
        entries.iter().map(refusals_in).sum::<i64>(),
        n,
        "the entries stand for every refusal: {entries:?}"
    );
    assert!(
        summaries.iter().all(|d| d.starts_with("wrong secret, ")
            && d.ends_with(" in a row), counted together: past 5 a second from one address")),
        "{summaries:?}"
    );
    assert!(entries.iter().all(|(_, ip, _)| ip == "127.0.0.1"));
    // The usage counts have every refusal too.
    app.state.key_checker.flush_usage().await;
    assert_eq!(
        app.count("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM key_usage WHERE outcome = 'wrong_secret'")
            .await,
        n
    );
}

#[tokio::test]
async fn the_count_past_the_budget_is_written_within_seconds_without_a_flush() {
    // Verify's refusals: never limited per client, the case the budget is for.
    let app = spawn_app_with(|s| {
        s.lockout_threshold = 0;
        s.refusal_audit_per_second = 2;
    })
    .await;
    app.signed_in_admin().await;
    let gateway = tenant_key(&app, "gateway", "access", &["role_integration"]).await;
    let key = tenant_key(&app, "worker", "api", &["role_read_only"]).await;
    let n = 12;
    for _ in 0..n {
        let (status, body, _) = call(
            &app,
            Method::POST,
            "/api/v1/verify",
            Some(&gateway.bearer()),
            Some(json!({"key": format!("{}::{}", key.id, wrong_secret())})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::OK, Some("NOT_FOUND"))
        );
    }
    // No flush: the refusal writer's own timer writes the summary once the second is over.
    // Waits for it (polling), at most ten seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let entries = refusal_entries(&app, &key.id).await;
        let total: i64 = entries.iter().map(refusals_in).sum();
        if total == n {
            assert!(
                entries.len() < n as usize,
                "some were counted in a summary: {entries:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after ten seconds the entries stand for {total} of {n}: {entries:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn verify_records_the_client_address_as_it_reads_canonically() {
    // One client is one client in the audit log and the refusals' budget, however its
    // address is spelt.
    let app = spawn_app_with(|s| s.lockout_threshold = 0).await;
    app.signed_in_admin().await;
    let gateway = tenant_key(&app, "gateway", "access", &["role_integration"]).await;
    let key = tenant_key(&app, "worker", "api", &["role_read_only"]).await;
    for spelt in ["0:0:0:0:0:0:0:1", "::1", "0::0001"] {
        let (status, body, _) = call(
            &app,
            Method::POST,
            "/api/v1/verify",
            Some(&gateway.bearer()),
            Some(json!({
                "key": format!("{}::{}", key.id, wrong_secret()),
                "client_ip": spelt,
            })),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::OK, Some("NOT_FOUND"))
        );
    }
    app.state.key_checker.flush_refusals().await;
    let addresses: Vec<String> = refusal_entries(&app, &key.id)
        .await
        .into_iter()
        .map(|(_, ip, _)| ip)
        .collect();
    assert_eq!(addresses, ["::1", "::1", "::1"]);
}
