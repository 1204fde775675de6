//! A mail server that stalls (issue 13): one stalled conversation holds up only its own email,
//! at any step of the conversation; the conversation has a deadline inside the lease; an
//! outcome that comes after the lease ran out is not recorded over the newer one, and a finished
//! row never changes again.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use chrono::Duration;

use keyward::service::dispatch::{
    Attempt, Claim, Taken, delivery_attempted, email_failed, email_sent, take_delivery, take_email,
};

use crate::common::smtp::{Mode, SmtpServer, Step};
use crate::common::{TestApp, UnixNow, spawn_app_with};
use crate::mail::invite;

/// The claim of a message taken ready to send.
fn ready<T>(taken: Option<Taken<T>>) -> Claim {
    match taken {
        Some(Taken::Ready(claim, _)) => claim,
        Some(Taken::Failed) => panic!("taken, but it could not be prepared"),
        None => panic!("not taken"),
    }
}

async fn app_on(url: String, deadline_secs: u64) -> TestApp {
    let app = spawn_app_with(move |s| {
        s.smtp_url = Some(url.into());
        s.smtp_timeout_secs = deadline_secs;
    })
    .await;
    app.signed_in_admin().await;
    app
}

/// Waits (for an event, bounded) until `check` holds.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    tokio::time::timeout(StdDuration::from_secs(20), async {
        while !check().await {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test]
async fn a_stall_at_any_step_holds_up_only_its_own_email() {
    for step in [Step::Greeting, Step::Mail, Step::Rcpt, Step::DataReply] {
        let server = SmtpServer::start(Mode::StallFirst(step, 1)).await;
        let app = app_on(server.url(), 2).await;
        for i in 0..5 {
            invite(&app, &format!("User {i}"), &format!("user{i}@example.com")).await;
        }
        let jobs = app.jobs.clone();
        let pass = tokio::spawn(async move { jobs.send_due().await });
        tokio::time::timeout(StdDuration::from_secs(20), server.stalled.notified())
            .await
            .unwrap_or_else(|_| panic!("{step:?}: the server stalls"));
        // While one conversation hangs, the other four are delivered.
        until(
            &format!("{step:?}: the others go out meanwhile"),
            async || server.accepted().len() == 4,
        )
        .await;
        assert!(
            !pass.is_finished(),
            "{step:?}: the stalled one is still open"
        );
        // The deadline ends the stalled conversation: a failed attempt, to be retried.
        let sent = pass.await.unwrap().unwrap();
        assert_eq!((sent.sent, sent.retrying), (4, 1), "{step:?}");
        let (state, attempts, error): (String, i64, String) =
            sqlx::query_as("SELECT state, attempts, last_error FROM outbox WHERE state <> 'sent'")
                .fetch_one(&app.state.pool)
                .await
                .unwrap();
        assert_eq!((state.as_str(), attempts), ("queued", 1), "{step:?}");
        assert!(
            error.contains("did not finish the conversation within 2 seconds"),
            "{step:?}: {error}"
        );
        // Its retry goes out; every email arrived exactly once.
        app.clock.advance(Duration::seconds(30));
        assert_eq!(app.jobs.send_due().await.unwrap().sent, 1, "{step:?}");
        let got = server.accepted();
        let ids: HashSet<String> = got.iter().map(|m| m.message_id()).collect();
        assert_eq!((got.len(), ids.len()), (5, 5), "{step:?}");
        server.release();
    }
}

#[tokio::test]
async fn an_outcome_after_the_lease_ran_out_is_not_recorded_over_the_newer_one() {
    // The first connection sits on its answer to the data; the deadline is long, as a
    // misconfigured one would be.
    let server = SmtpServer::start(Mode::StallFirst(Step::DataReply, 1)).await;
    let app = app_on(server.url(), 240).await;
    invite(&app, "Grace Hopper", "grace@example.com").await;
    let stuck = app.jobs.clone();
    let first = tokio::spawn(async move { stuck.send_due().await });
    tokio::time::timeout(StdDuration::from_secs(20), server.stalled.notified())
        .await
        .expect("the first sender's conversation stalls");

    // The lease runs out; another instance's sender takes the email over and sends it.
    app.clock
        .advance(Duration::seconds(keyward::jobs::sender::LEASE_SECS + 1));
    let pool = keyward::db::connect(&app.database_url).await.unwrap();
    let second = keyward::jobs::Jobs::from_settings(
        pool,
        app.clock.clone(),
        &app.state.vault,
        &app.state.settings,
    )
    .unwrap();
    assert_eq!(second.send_due().await.unwrap().sent, 1);
    let after_second: (String, i64, String) =
        sqlx::query_as("SELECT state, attempts, server_response FROM outbox")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!((after_second.0.as_str(), after_second.1), ("sent", 1));

    // Now the first conversation ends too (the slow server accepts it after all): its
    // outcome is not written over the row that is already sent.
    server.release();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.sent, 0, "the late outcome is not counted");
    let after_first: (String, i64, String) =
        sqlx::query_as("SELECT state, attempts, server_response FROM outbox")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    assert_eq!(
        after_first, after_second,
        "one send recorded, the row untouched"
    );
    // The slow server did take it twice: that is the at-least-once edge, and both copies
    // carry one Message-ID for the receiver to drop the second.
    let got = server.accepted();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].message_id(), got[1].message_id());
}

#[tokio::test]
async fn a_finished_email_is_never_changed_by_a_stale_claim() {
    let server = SmtpServer::start(Mode::Accept).await;
    let app = app_on(server.url(), 5).await;
    invite(&app, "Grace Hopper", "grace@example.com").await;
    let (pool, vault) = (&app.state.pool, &app.state.vault);
    let now = app.clock.unix_now();
    let id: String = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap();
    let stale = ready(take_email(pool, vault, &id, now, now + 300).await.unwrap());
    // A second claim is refused while the lease runs; after it, a new claim fences the old.
    assert!(
        take_email(pool, vault, &id, now, now + 300)
            .await
            .unwrap()
            .is_none()
    );
    let fresh = ready(
        take_email(pool, vault, &id, now + 301, now + 601)
            .await
            .unwrap(),
    );
    assert!(
        !email_sent(pool, &id, &stale, now, "250 stale")
            .await
            .unwrap()
    );
    assert!(
        email_sent(pool, &id, &fresh, now, "250 fresh")
            .await
            .unwrap()
    );
    // Sent is final: neither claim can turn it back into a queued or failed email.
    for claim in [&stale, &fresh] {
        assert!(
            !email_failed(pool, &id, claim, "late failure", Some(now + 60))
                .await
                .unwrap()
        );
    }
    let row: (String, i64, String) =
        sqlx::query_as("SELECT state, attempts, server_response FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(row, ("sent".into(), 1, "250 fresh".into()));
}

#[tokio::test]
async fn a_webhook_delivery_takes_only_the_current_claims_outcome() {
    let app = crate::webhooks::spawn_receiving_app().await;
    app.signed_in_admin().await;
    let (key_id, _) = crate::secret_keys::create_signing_key(&app, "Receiver").await;
    crate::webhooks::add_endpoint(&app, "http://127.0.0.1:9/hook", &["key.created"], &key_id).await;
    crate::webhooks::add_key(&app, "ci").await;
    let (id, endpoint): (String, String) =
        sqlx::query_as("SELECT id, endpoint_id FROM webhook_deliveries")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    let now = app.clock.unix_now();
    let (pool, vault) = (&app.state.pool, &app.state.vault);
    let stale = ready(
        take_delivery(pool, vault, &id, now, now + 60)
            .await
            .unwrap(),
    );
    let fresh = ready(
        take_delivery(pool, vault, &id, now + 61, now + 121)
            .await
            .unwrap(),
    );
    let attempt = |status: i64, error: Option<&'static str>| Attempt {
        delivery_id: &id,
        endpoint_id: &endpoint,
        at: now,
        status: Some(status),
        latency_ms: 5,
        error,
    };
    assert!(
        !delivery_attempted(
            pool,
            &attempt(500, Some("late")),
            &key_id,
            &stale,
            false,
            Some(now + 30)
        )
        .await
        .unwrap(),
        "a claim whose lease ran out writes no outcome"
    );
    assert!(
        delivery_attempted(pool, &attempt(204, None), &key_id, &fresh, true, None)
            .await
            .unwrap()
    );
    assert!(
        !delivery_attempted(
            pool,
            &attempt(500, Some("later")),
            &key_id,
            &fresh,
            false,
            Some(now + 30)
        )
        .await
        .unwrap(),
        "a delivered row never reopens"
    );
    let row: (String, i64, Option<i64>) =
        sqlx::query_as("SELECT state, attempts, last_status FROM webhook_deliveries WHERE id = $1")
            .bind(&id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(row, ("delivered".into(), 1, Some(204)));
    // Every attempt made is in the delivery log, the late ones too.
    let logged: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_attempts WHERE delivery_id = $1")
            .bind(&id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(logged, 3);
}

#[tokio::test]
async fn a_stalled_conversation_does_not_hold_up_the_emails_behind_it() {
    // More emails than one claim round (50): the ones behind the stalled one go out too.
    let server = SmtpServer::start(Mode::StallFirst(Step::DataReply, 1)).await;
    let app = app_on(server.url(), 60).await;
    for i in 0..60 {
        invite(&app, &format!("User {i}"), &format!("user{i}@example.com")).await;
    }
    let jobs = app.jobs.clone();
    let pass = tokio::spawn(async move { jobs.send_due().await });
    tokio::time::timeout(StdDuration::from_secs(20), server.stalled.notified())
        .await
        .expect("the server stalls");
    until(
        "the 59 others go out while one conversation hangs",
        async || server.accepted().len() == 59,
    )
    .await;
    assert!(!pass.is_finished());
    // The slow server answers at last: all 60 are sent, each once.
    server.release();
    let sent = pass.await.unwrap().unwrap();
    assert_eq!(sent.sent, 60);
    let ids: HashSet<String> = server.accepted().iter().map(|m| m.message_id()).collect();
    assert_eq!(ids.len(), 60);
}
