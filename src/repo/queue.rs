//! The portable claim shared by the tables that hold messages to send (the email outbox and
//! webhook deliveries): due rows are `queued` with `next_attempt_at` passed and no live lease;
//! a sender takes one with `UPDATE … SET lease_until` and checks that one row changed.

use sqlx::{AnyConnection, AssertSqlSafe};

/// A table of messages to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Outbox,
    WebhookDeliveries,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::Outbox => "outbox",
            Queue::WebhookDeliveries => "webhook_deliveries",
        }
    }
}

/// IDs of queued rows that are due and not leased, oldest first.
pub async fn due(
    conn: &mut AnyConnection,
    queue: Queue,
    now: i64,
    limit: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT id FROM {} WHERE state = 'queued' AND next_attempt_at <= $1 \
         AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_attempt_at, id LIMIT $2",
        queue.table()
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Takes a row for sending until `lease_until`: the claim's fencing token, or `None` when
/// another sender has it. Outcomes are written only with the token of the current claim.
pub async fn claim(
    conn: &mut AnyConnection,
    queue: Queue,
    id: &str,
    now: i64,
    lease_until: i64,
) -> sqlx::Result<Option<String>> {
    let token = super::new_id("lease");
    let claimed = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET lease_until = $1, lease_token = $4 WHERE id = $2 AND state = 'queued' \
         AND (lease_until IS NULL OR lease_until < $3)",
        queue.table()
    )))
    .bind(lease_until)
    .bind(id)
    .bind(now)
    .bind(&token)
    .execute(conn)
    .await?
    .rows_affected()
        == 1;
    Ok(claimed.then_some(token))
}

/// Rows queued before `before` whose sending is over (sent or delivered, failed, cancelled),
/// deleted a thousand at a time so that no statement holds the table long. Webhook attempts
/// go with their delivery (`ON DELETE CASCADE`). Returns how many rows went.
pub async fn purge_finished(
    conn: &mut AnyConnection,
    queue: Queue,
    before: i64,
) -> sqlx::Result<u64> {
    const CHUNK: u64 = 1000;
    let table = queue.table();
    let sql = format!(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
         WHERE created_at < $1 AND state IN ('sent', 'delivered', 'failed', 'cancelled') \
         LIMIT {CHUNK})"
    );
    let mut purged = 0;
    loop {
        let n = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(before)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        purged += n;
        if n < CHUNK {
            return Ok(purged);
        }
    }
}
