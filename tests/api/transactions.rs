//! One transaction per user action: the change, its audit entry, its bell notices and the emails
//! it queues commit together or not at all. Each test makes one step fail inside the action (a
//! trigger that refuses an insert, as a full disk or a dropped connection would at that step)
//! and shows that nothing of the action remains.

use reqwest::StatusCode;
use sqlx::{AssertSqlSafe, Executor};

use crate::common::{TestApp, captured_logs, database_kind, last_invitation, spawn_app};

/// From now on every insert into `table` fails; returns the fault's message, unique to this
/// call, to find in the logs.
pub(crate) async fn fail_inserts_into(app: &TestApp, table: &str) -> String {
    let fault = keyward::repo::new_id("injected_fault");
    let statements = if database_kind() == "postgres" {
        vec![
            format!(
                "CREATE FUNCTION {fault}() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RAISE EXCEPTION '{fault}'; END $$"
            ),
            format!(
                "CREATE TRIGGER {fault} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {fault}()"
            ),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER {fault} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, '{fault}'); END"
        )]
    };
    for sql in statements {
        app.state
            .pool
            .execute(AssertSqlSafe(sql))
            .await
            .expect("fault installed");
    }
    fault
}

/// What an invitation writes: users, memberships, invitations, bell notices, audit entries
/// other than signing in, emails.
async fn footprint(app: &TestApp) -> [i64; 6] {
    [
        app.count("SELECT COUNT(*) FROM users").await,
        app.count("SELECT COUNT(*) FROM group_members").await,
        app.count("SELECT COUNT(*) FROM invitations").await,
        app.count("SELECT COUNT(*) FROM notifications").await,
        app.count("SELECT COUNT(*) FROM audit_log WHERE action <> 'sign_in'")
            .await,
        app.count("SELECT COUNT(*) FROM outbox").await,
    ]
}

/// A signed-in administrator and a custom group (so that an invitation also notifies).
async fn admin_with_a_group(app: &TestApp) -> String {
    app.signed_in_admin().await;
    let res = app
        .post("/user-access/groups", &[("name", "Data team")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    sqlx::query_scalar("SELECT id FROM user_groups WHERE name = 'Data team'")
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

async fn invite_grace(app: &TestApp, group: &str) -> StatusCode {
    app.post(
        "/user-access/users",
        &[
            ("name", "Grace Hopper"),
            ("email", "grace@example.com"),
            ("groups", group),
        ],
    )
    .await
    .status
}

#[tokio::test]
async fn an_invitation_whose_email_cannot_be_queued_leaves_no_user_notice_or_audit_entry() {
    let app = spawn_app().await;
    let group = admin_with_a_group(&app).await;
    let before = footprint(&app).await;
    let fault = fail_inserts_into(&app, "outbox").await;

    assert_eq!(
        invite_grace(&app, &group).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(
        captured_logs().contains(&fault),
        "the action reached the queueing step"
    );
    assert_eq!(
        footprint(&app).await,
        before,
        "nothing of the invitation remains"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = 'grace@example.com'")
            .await,
        0
    );
}

#[tokio::test]
async fn an_invitation_whose_audit_entry_cannot_be_written_sends_no_email() {
    let app = spawn_app().await;
    let group = admin_with_a_group(&app).await;
    let before = footprint(&app).await;
    // The email is queued before the audit entry is written: it must go when that fails.
    fail_inserts_into(&app, "audit_log").await;

    assert_eq!(
        invite_grace(&app, &group).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(footprint(&app).await, before);
    let pass = app.jobs.send_due().await.unwrap();
    assert_eq!(pass.sent, 0, "no invitation email goes out");
    assert!(
        std::fs::read_dir(app.data_dir.path().join("outbox"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
}

#[tokio::test]
async fn a_new_invitation_whose_email_cannot_be_queued_keeps_the_earlier_link() {
    let app = spawn_app().await;
    let group = admin_with_a_group(&app).await;
    assert_eq!(invite_grace(&app, &group).await, StatusCode::SEE_OTHER);
    let (_, link) = last_invitation(&app).await;
    let grace: String =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'grace@example.com'")
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
    let before = footprint(&app).await;
    fail_inserts_into(&app, "outbox").await;

    let page = app
        .post(&format!("/user-access/users/{grace}/invite"), &[])
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(footprint(&app).await, before);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'user.reinvited'")
            .await,
        0
    );
    // The link already sent still works: its replacement was never committed.
    let form = app.other_client().get(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.text("h1"), "Welcome, Grace Hopper");
}

#[tokio::test]
async fn a_retry_whose_audit_entry_cannot_be_written_leaves_the_email_failed() {
    let app = spawn_app().await;
    let group = admin_with_a_group(&app).await;
    assert_eq!(invite_grace(&app, &group).await, StatusCode::SEE_OTHER);
    sqlx::query("UPDATE outbox SET state = 'failed'")
        .execute(&app.state.pool)
        .await
        .unwrap();
    let id: String = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();
    fail_inserts_into(&app, "audit_log").await;

    let page = app.post(&format!("/mail/{id}/retry"), &[]).await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE state = 'failed'")
            .await,
        1,
        "the email is not queued again without its audit entry"
    );
    assert_eq!(app.jobs.send_due().await.unwrap().sent, 0);
}

#[tokio::test]
async fn a_retried_email_is_queued_with_its_audit_entry() {
    let app = spawn_app().await;
    let group = admin_with_a_group(&app).await;
    assert_eq!(invite_grace(&app, &group).await, StatusCode::SEE_OTHER);
    sqlx::query("UPDATE outbox SET state = 'failed'")
        .execute(&app.state.pool)
        .await
        .unwrap();
    let id: String = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_one(&app.state.pool)
        .await
        .unwrap();

    let res = app.post(&format!("/mail/{id}/retry"), &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'mail.retried'")
            .await,
        1
    );
    assert_eq!(app.jobs.send_due().await.unwrap().sent, 1);
    // Retrying what is no longer failed is refused, and audits nothing more.
    let again = app.post(&format!("/mail/{id}/retry"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'mail.retried'")
            .await,
        1
    );
}
