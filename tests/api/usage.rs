//! Usage counts (issue 18, SPEC §10): every presentation of an existing key is counted per hour
//! and outcome in memory, added to the database in batches (never one write per request), by
//! every instance without losing another's counts, kept on a clean stop, pruned after the
//! retention, and read back by `GET /api/v1/apikeys/{id}/usage`.

use std::process::{Command, Stdio};

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::rest::{Key, call, tenant_key};
use crate::common::{TestApp, spawn_app, spawn_app_on, spawn_app_with};

/// The key's usage as the API answers it.
async fn usage(app: &TestApp, reader: &Key, id: &str, query: &str) -> (StatusCode, Value) {
    let (status, body, _) = call(
        app,
        Method::GET,
        &format!("/api/v1/apikeys/{id}/usage{query}"),
        Some(&reader.bearer()),
        None,
    )
    .await;
    (status, body)
}

/// `GET /api/v1/apikeys/current` with `auth`: the status.
async fn present(app: &TestApp, auth: &str) -> StatusCode {
    call(
        app,
        Method::GET,
        "/api/v1/apikeys/current",
        Some(auth),
        None,
    )
    .await
    .0
}

fn bucket<'a>(body: &'a Value, start: &str) -> &'a Value {
    body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["start"] == start)
        .unwrap_or_else(|| panic!("no bucket {start} in {body}"))
}

#[tokio::test]
async fn presentations_are_counted_by_hour_and_reason_and_written_in_batches() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let reader = tenant_key(&app, "dashboards", "access", &["role_read_only"]).await;
    let worker = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let admin = app_admin_key(&app).await;
    // 2026-11-23 10:00: three accepted, two wrong secrets.
    for _ in 0..3 {
        assert_eq!(present(&app, &worker.basic()).await, StatusCode::OK);
    }
    let wrong = keyward::domain::Secret::generate();
    let wrong = wrong.expose();
    for _ in 0..2 {
        assert_eq!(
            present(&app, &worker.with_secret(wrong)).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM key_usage").await,
        0,
        "nothing is written per request"
    );
    app.state.key_checker.flush_usage().await;
    // An hour and a day later, more: the key deactivated refuses as inactive.
    app.clock.advance(Duration::hours(25));
    assert_eq!(present(&app, &worker.basic()).await, StatusCode::OK);
    let (status, _, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/apikeys/{}", worker.id),
        Some(&admin.bearer()),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        present(&app, &worker.basic()).await,
        StatusCode::UNAUTHORIZED
    );
    app.state.key_checker.flush_usage().await;

    let (status, days) = usage(&app, &reader, &worker.id, "?from=2026-11-20&to=2026-11-25").await;
    assert_eq!(status, StatusCode::OK, "{days}");
    assert_eq!(days["granularity"], "day");
    assert_eq!(days["from"], "2026-11-20T00:00:00Z");
    assert_eq!(days["to"], "2026-11-25T00:00:00Z");
    assert_eq!(
        days["buckets"].as_array().unwrap().len(),
        5,
        "every day, zeros too"
    );
    let first = bucket(&days, "2026-11-23T00:00:00Z");
    assert_eq!(first["accepted"], 3);
    assert_eq!(first["refused"], 2);
    assert_eq!(first["refused_by_reason"], json!({"wrong_secret": 2}));
    let second = bucket(&days, "2026-11-24T00:00:00Z");
    assert_eq!(second["accepted"], 1);
    assert_eq!(second["refused_by_reason"], json!({"inactive": 1}));
    assert_eq!(bucket(&days, "2026-11-22T00:00:00Z")["accepted"], 0);
    assert_eq!(
        (
            days["total_accepted"].clone(),
            days["total_refused"].clone()
        ),
        (json!(4), json!(3))
    );

    let (status, hours) = usage(
        &app,
        &reader,
        &worker.id,
        "?granularity=hour&from=2026-11-23T09:30:00Z&to=2026-11-23T12:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hours}");
    assert_eq!(
        hours["from"], "2026-11-23T09:00:00Z",
        "rounded down to the hour"
    );
    assert_eq!(hours["buckets"].as_array().unwrap().len(), 3);
    assert_eq!(bucket(&hours, "2026-11-23T10:00:00Z")["accepted"], 3);
    assert_eq!(bucket(&hours, "2026-11-23T11:00:00Z")["accepted"], 0);

    // The reader's own calls are counted for the reader, not the worker.
    let (_, own) = usage(&app, &reader, &reader.id, "?from=2026-11-23&to=2026-11-25").await;
    assert_eq!(own["total_refused"], 0);
}

/// An access key holding every permission (for changes the tests make over the API).
async fn app_admin_key(app: &TestApp) -> Key {
    tenant_key(app, "ops", "access", &["role_key_admin"]).await
}

#[tokio::test]
async fn the_usage_endpoint_refuses_bad_windows_by_field_and_strangers() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let reader = tenant_key(&app, "dashboards", "access", &["role_read_only"]).await;
    let id = reader.id.clone();
    for (query, status, field) in [
        ("?granularity=week", StatusCode::BAD_REQUEST, "granularity"),
        ("?from=yesterday", StatusCode::BAD_REQUEST, "from"),
        ("?to=2026-13-40", StatusCode::BAD_REQUEST, "to"),
        (
            "?from=2026-11-23&to=2026-11-22",
            StatusCode::UNPROCESSABLE_ENTITY,
            "to",
        ),
        (
            "?granularity=hour&from=2026-01-01&to=2026-11-23",
            StatusCode::UNPROCESSABLE_ENTITY,
            "from",
        ),
        ("?span=3", StatusCode::BAD_REQUEST, ""),
    ] {
        let (got, body) = usage(&app, &reader, &id, query).await;
        assert_eq!(got, status, "{query}: {body}");
        if !field.is_empty() {
            assert_eq!(body["error"]["field"], field, "{query}: {body}");
        }
    }
    // Defaults: the last 30 days by day, the last 24 hours by hour.
    let (_, days) = usage(&app, &reader, &id, "").await;
    assert_eq!(days["buckets"].as_array().unwrap().len(), 30, "{days}");
    let (_, hours) = usage(&app, &reader, &id, "?granularity=hour").await;
    assert_eq!(hours["buckets"].as_array().unwrap().len(), 24, "{hours}");
    // Unknown key: 404; no key: 401; a key without keys:read: 403.
    let (status, _) = usage(&app, &reader, "AKNOSUCHKEY000000000", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/apikeys/{id}/usage"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let verifier = tenant_key(&app, "gateway", "access", &["role_integration"]).await;
    let (status, _) = usage(&app, &verifier, &id, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn two_instances_add_their_counts_to_the_same_hour_without_losing_any() {
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let reader = tenant_key(&app, "dashboards", "access", &["role_read_only"]).await;
    let worker = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let other = spawn_app_on(
        &app.database_url,
        &app.state.master_key.to_base64(),
        app.clock.clone(),
    )
    .await
    .unwrap();
    // Each instance counts concurrently, then both flush at once, twice.
    for _ in 0..2 {
        let mut calls = Vec::new();
        for i in 0..40 {
            let on = if i % 2 == 0 { &app } else { &other };
            let auth = worker.basic();
            calls.push(async move { present(on, &auth).await });
        }
        for status in futures::future::join_all(calls).await {
            assert_eq!(status, StatusCode::OK);
        }
        tokio::join!(
            app.state.key_checker.flush_usage(),
            other.state.key_checker.flush_usage()
        );
    }
    let (_, days) = usage(&app, &reader, &worker.id, "?from=2026-11-23&to=2026-11-24").await;
    assert_eq!(days["total_accepted"], 80, "{days}");
}

#[tokio::test]
async fn a_deleted_key_takes_its_counts_with_it_and_old_hours_are_pruned() {
    let app = spawn_app_with(|s| s.usage_retention_days = 2).await;
    app.signed_in_admin().await;
    let admin = app_admin_key(&app).await;
    let worker = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let gone = tenant_key(&app, "gone", "access", &["role_read_only"]).await;
    assert_eq!(present(&app, &worker.basic()).await, StatusCode::OK);
    assert_eq!(present(&app, &gone.basic()).await, StatusCode::OK);
    // Deleted after it was counted, before the flush: its counts are dropped, the rest kept.
    let (status, _, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/apikeys/{}", gone.id),
        Some(&admin.bearer()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.state.key_checker.flush_usage().await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM key_usage WHERE outcome = 'accepted'")
            .await,
        2,
        "the worker and the administrator's key (deleting was a presentation too)"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM key_usage_daily WHERE outcome = 'accepted'")
            .await,
        2,
        "the same by day"
    );
    // Three days later, the job prunes hours older than two days.
    app.clock.advance(Duration::days(3));
    assert_eq!(present(&app, &worker.basic()).await, StatusCode::OK);
    app.state.key_checker.flush_usage().await;
    let pass = app.jobs.run_once().await.unwrap();
    let _ = pass;
    let left: Vec<i64> = sqlx::query_scalar("SELECT hour FROM key_usage")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "only the new hour: {left:?}");
    // The daily counts go with them: only the new hour's day is left.
    let days: Vec<i64> = sqlx::query_scalar("SELECT day FROM key_usage_daily")
        .fetch_all(&app.state.pool)
        .await
        .unwrap();
    assert_eq!(days, [left[0] - left[0] % 86_400]);
}

#[tokio::test]
async fn counts_not_yet_written_are_written_when_the_server_stops_cleanly() {
    // A running binary on a database a test app prepared: present a key, stop it with SIGTERM
    // well inside the flush interval, and the counts are in the database.
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let worker = tenant_key(&app, "worker", "access", &["role_read_only"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command
        .arg("serve")
        .env("KEYWARD_LOG", "warn")
        .env("KEYWARD_DATA_DIR", dir.path())
        .env("KEYWARD_DATABASE_URL", &app.database_url)
        .env("KEYWARD_MASTER_KEY", app.state.master_key.to_base64())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let (mut child, base) = crate::common::process::serve(command).await;
    let client = reqwest::Client::new();
    for _ in 0..7 {
        let status = client
            .get(format!("{base}/api/v1/apikeys/current"))
            .header("authorization", worker.basic())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM key_usage").await, 0);
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "a clean stop: {exit:?}");
    let counted: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(count) AS BIGINT) FROM key_usage WHERE key_id = $1")
            .bind(&worker.id)
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(counted, 7);
}

/// A key's counted cells as `sql` reads them: (hour or day, outcome, count).
async fn rows(app: &TestApp, sql: &'static str, key_id: &str) -> Vec<(i64, String, i64)> {
    sqlx::query_as(sql)
        .bind(key_id)
        .fetch_all(&app.state.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_large_flush_from_two_instances_at_once_adds_every_count_by_hour_and_by_day() {
    use keyward::service::key_auth::usage::{Outcome, UsageBook};
    let app = spawn_app().await;
    app.signed_in_admin().await;
    let keys = [
        tenant_key(&app, "first", "access", &["role_read_only"]).await,
        tenant_key(&app, "second", "access", &["role_read_only"]).await,
        tenant_key(&app, "third", "access", &["role_read_only"]).await,
    ];
    // Two instances' books, each with the same 3 keys over the same 100 hours (from
    // 2026-11-23 00:00 UTC: five days, the last one partly), two outcomes each: 600 cells a
    // book, more than one statement holds, plus a key that does not exist.
    let start = 1_795_392_000;
    let books = [UsageBook::default(), UsageBook::default()];
    for (b, book) in books.iter().enumerate() {
        for key in &keys {
            for hour in 0..100 {
                let at = start + hour * 3600 + 59;
                for _ in 0..=b {
                    book.count(&key.id, Outcome::Accepted, at);
                }
                book.count(&key.id, Outcome::WrongSecret, at);
            }
        }
        book.count("AKIDNOSUCHKEY", Outcome::Accepted, start);
    }
    tokio::join!(
        books[0].flush(&app.state.pool),
        books[1].flush(&app.state.pool)
    );
    assert_eq!(
        (books[0].pending(), books[1].pending()),
        (0, 0),
        "both flushes were written (none failed on the other's locks)"
    );
    for key in &keys {
        let by_hour = rows(
            &app,
            "SELECT hour, outcome, count FROM key_usage WHERE key_id = $1 ORDER BY hour, outcome",
            &key.id,
        )
        .await;
        assert_eq!(by_hour.len(), 200, "100 hours, two outcomes");
        assert_eq!(
            by_hour[0],
            (start, "accepted".to_string(), 3),
            "one from the first instance and two from the second"
        );
        assert_eq!(
            by_hour[199],
            (start + 99 * 3600, "wrong_secret".to_string(), 2)
        );
        let by_day = rows(
            &app,
            "SELECT day, outcome, count FROM key_usage_daily WHERE key_id = $1 ORDER BY day, outcome",
            &key.id,
        )
        .await;
        let day = 86_400;
        assert_eq!(
            by_day,
            vec![
                (start, "accepted".to_string(), 72),
                (start, "wrong_secret".to_string(), 48),
                (start + day, "accepted".to_string(), 72),
                (start + day, "wrong_secret".to_string(), 48),
                (start + 2 * day, "accepted".to_string(), 72),
                (start + 2 * day, "wrong_secret".to_string(), 48),
                (start + 3 * day, "accepted".to_string(), 72),
                (start + 3 * day, "wrong_secret".to_string(), 48),
                (start + 4 * day, "accepted".to_string(), 12),
                (start + 4 * day, "wrong_secret".to_string(), 8),
            ],
            "each day the sum of its hours, from both instances"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM key_usage WHERE key_id = 'AKIDNOSUCHKEY'")
            .await,
        0
    );
}
