//! Rate limits held by leases: two instances on one database share one bucket, a busy key
//! spends from memory, and a lease is taken once however many requests find it spent.

use chrono::Duration;
use reqwest::StatusCode;

use crate::common::rest::{Key, tenant_key};
use crate::common::spawn_app_on;
use crate::rate_limits::{admin_app, current, limited_key, usage};

/// Two instances on one database with one clock: requests alternate between them while the
/// clock stands still and while it moves in steps. What passes stays within 10% of what one
/// bucket allows (burst + rate × window), and never above it by more than a lease per
/// instance.
#[tokio::test]
async fn two_instances_hold_one_limit_between_them() {
    let first = admin_app().await;
    let second = spawn_app_on(
        &first.database_url,
        &first.state.master_key.to_base64(),
        first.clock.clone(),
    )
    .await
    .expect("second instance starts");
    let (rate, burst) = (100.0, 20.0);
    let key = &limited_key(&first, "shared", &["role_read_only"], "100", "20").await;
    let apps = [&first, &second];
    let mut passed = 0;
    let mut sent = 0;
    let mut per_app = [0, 0];
    // Clock standing still: the burst, and not one more.
    for i in 0..60 {
        if current(apps[i % 2], key).await.0 == StatusCode::OK {
            passed += 1;
            per_app[i % 2] += 1;
        }
        sent += 1;
    }
    assert_eq!(passed, 20, "the burst passes once between both instances");
    assert!(per_app[0] > 0 && per_app[1] > 0, "{per_app:?}");
    // Then 2 s in uneven steps (37 ms: 3.7 tokens a step), 16 requests a step sent at once,
    // 8 to each instance (about 430 a second for a limit of 100).
    let (steps, step_ms) = (54, 37);
    for _ in 0..steps {
        first.clock.advance(Duration::milliseconds(step_ms));
        let answers = futures::future::join_all(
            (0..16).map(|i| async move { (i % 2, current(apps[i % 2], key).await.0) }),
        )
        .await;
        for (app, status) in answers {
            if status == StatusCode::OK {
                passed += 1;
                per_app[app] += 1;
            }
            sent += 1;
        }
    }
    let window = (steps * step_ms) as f64 / 1000.0;
    let allowed = burst + rate * window;
    let error = (passed as f64 - allowed) / allowed;
    println!(
        "two instances: {passed} of {sent} passed, {per_app:?} per instance; one bucket allows {allowed} ({:+.1}%)",
        error * 100.0
    );
    assert!(error.abs() <= 0.10, "{passed} passed, {allowed} allowed");
    second.state.key_checker.flush_usage().await;
    assert_eq!(
        usage(&first, &key.id).await,
        vec![
            ("accepted".to_string(), passed),
            ("rate_limited".to_string(), sent - passed)
        ]
    );
}

/// The hot path: a limited key spends from its lease in memory. 10,000 checks of a key allowed
/// a million a second take one lease (one write) of 50,000 tokens.
#[tokio::test]
async fn a_lease_serves_many_checks_without_writing() {
    let app = admin_app().await;
    let fast = limited_key(&app, "fast", &[], "1000000", "1000000").await;
    let free = tenant_key(&app, "free", "access", &[]).await;
    let time = |key: Key| {
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            for _ in 0..10_000 {
                let checked = app.check_key(&key.id, &key.secret).await;
                assert!(checked.is_ok());
            }
            started.elapsed()
        }
    };
    let limited = time(fast).await;
    let unlimited = time(free).await;
    println!(
        "10,000 checks: limited key {limited:?}, unlimited key {unlimited:?} ({:.1} µs per check more)",
        (limited.as_secs_f64() - unlimited.as_secs_f64()) * 100.0
    );
    let tokens: f64 = sqlx::query_scalar("SELECT tokens FROM key_rate_buckets")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(tokens, 1_000_000.0 - 50_000.0, "one lease taken");
}

/// Sixty-four presentations arriving together when the key's lease has run out take one lease
/// transaction between them (the others wait for it and spend from it), and the next lease is
/// taken ahead, in the background, before this one is spent: two leases of 50 tokens in all.
#[tokio::test]
async fn requests_finding_the_lease_spent_share_one_transaction() {
    let app = admin_app().await;
    let key = limited_key(&app, "busy", &[], "1000", "1000").await;
    assert!(app.check_key(&key.id, &key.secret).await.is_ok());
    let stored = || async {
        let tokens: f64 = sqlx::query_scalar("SELECT tokens FROM key_rate_buckets")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
        tokens
    };
    assert_eq!(
        stored().await,
        950.0,
        "one lease of a twentieth of a second"
    );
    // Past the lease's time: the bucket is full again and the lease must be renewed.
    app.clock.advance(Duration::seconds(2));
    let checks =
        futures::future::join_all((0..64).map(|_| app.check_key(&key.id, &key.secret))).await;
    assert!(checks.iter().all(|c| c.is_ok()), "all 64 within the limit");
    // The background lease may still be committing when the last check is answered.
    let mut tokens = stored().await;
    for _ in 0..200 {
        if tokens == 900.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        tokens = stored().await;
    }
    assert_eq!(
        tokens, 900.0,
        "one lease on the request's path and one ahead of need, not one per request"
    );
}
