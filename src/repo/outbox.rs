//! SQL for the email outbox and the expiry notices that fill it.

use sqlx::{AnyConnection, AssertSqlSafe};

/// An outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub key_id: Option<String>,
    pub recipient: String,
    pub recipient_name: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub sealed: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub server_response: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const COLUMNS: &str = "id, kind, key_id, recipient, recipient_name, subject, body_text, body_html, \
     sealed, state, attempts, next_attempt_at, lease_until, last_error, server_response, \
     created_at, sent_at";

/// The states an email goes through.
pub const QUEUED: &str = "queued";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";

/// What a new outbox row holds.
#[derive(Clone, Copy)]
pub struct NewMail<'a> {
    pub kind: &'a str,
    pub key_id: Option<&'a str>,
    pub recipient: &'a str,
    pub recipient_name: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
    pub sealed: bool,
}

/// Queues one email, due at once. Returns its ID.
pub async fn insert(conn: &mut AnyConnection, now: i64, m: &NewMail<'_>) -> sqlx::Result<String> {
    let id = super::new_id("mail");
    insert_as(conn, &id, now, m).await?;
    Ok(id)
}

/// Queues one email under an ID chosen by the caller (sealed bodies are bound to it), due at
/// once.
pub async fn insert_as(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
    m: &NewMail<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, kind, key_id, recipient, recipient_name, subject, body_text, \
         body_html, sealed, state, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $10)",
    )
    .bind(id)
    .bind(m.kind)
    .bind(m.key_id)
    .bind(m.recipient)
    .bind(m.recipient_name)
    .bind(m.subject)
    .bind(m.body_text)
    .bind(m.body_html)
    .bind(i64::from(m.sealed))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// One email by ID.
pub async fn find(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<OutboxRow>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Marks a claimed email sent. Sealed bodies are emptied: what they carried was for the
/// recipient only.
/// Written only under the claim `claim` of a row still queued: false when the lease ran out and
/// another sender took the email over, or it is finished (a finished row never changes again).
pub async fn mark_sent(
    conn: &mut AnyConnection,
    id: &str,
    claim: &str,
    now: i64,
    response: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE outbox SET state = 'sent', sent_at = $1, server_response = $2, \
         attempts = attempts + 1, lease_until = NULL, lease_token = NULL, last_error = NULL, \
         body_text = CASE WHEN sealed = 1 THEN '' ELSE body_text END, \
         body_html = CASE WHEN sealed = 1 THEN '' ELSE body_html END \
         WHERE id = $3 AND lease_token = $4 AND state = 'queued'",
    )
    .bind(now)
    .bind(response)
    .bind(id)
    .bind(claim)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Records a failed attempt: due again at `retry_at`, or failed for good when `None`. Like
/// [`mark_sent`], only under the current claim and while queued; false otherwise.
pub async fn mark_failed_attempt(
    conn: &mut AnyConnection,
    id: &str,
    claim: &str,
    error: &str,
    retry_at: Option<i64>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, lease_until = NULL, \
         lease_token = NULL, \
         state = CASE WHEN $2 = 1 THEN 'queued' ELSE 'failed' END, \
         next_attempt_at = CASE WHEN $2 = 1 THEN $3 ELSE next_attempt_at END \
         WHERE id = $4 AND lease_token = $5 AND state = 'queued'",
    )
    .bind(error)
    .bind(i64::from(retry_at.is_some()))
    .bind(retry_at.unwrap_or(0))
    .bind(id)
    .bind(claim)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Puts a failed email back in the queue, due now; false unless it had failed.
pub async fn retry(conn: &mut AnyConnection, id: &str, now: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE outbox SET state = 'queued', next_attempt_at = $1, lease_until = NULL \
         WHERE id = $2 AND state = 'failed'",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Cancels a key's unsent emails of the given kinds. Returns how many.
pub async fn cancel_for_key(
    conn: &mut AnyConnection,
    key_id: &str,
    kinds: &[&str],
) -> sqlx::Result<u64> {
    let mut total = 0;
    for kind in kinds {
        total += sqlx::query(
            "UPDATE outbox SET state = 'cancelled', lease_until = NULL \
             WHERE key_id = $1 AND state = 'queued' AND kind = $2",
        )
        .bind(key_id)
        .bind(*kind)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(total)
}

/// The newest emails, optionally in one state, `limit` from `offset`.
pub async fn list(
    conn: &mut AnyConnection,
    state: Option<&str>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<OutboxRow>> {
    let filter = if state.is_some() {
        "WHERE state = $3"
    } else {
        ""
    };
    let mut q = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox {filter} ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset);
    if let Some(s) = state {
        q = q.bind(s);
    }
    q.fetch_all(conn).await
}

/// How many emails are in each state.
pub async fn counts(conn: &mut AnyConnection) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        .fetch_all(conn)
        .await
}

/// Records a notice for a key, its expiry and a stage; false when it was already recorded
/// (another run or instance got there first).
pub async fn record_notice(
    conn: &mut AnyConnection,
    key_id: &str,
    expires_at: i64,
    stage: i64,
    now: i64,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO expiry_notices (key_id, expires_at, stage, noticed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_id, expires_at, stage) DO NOTHING",
    )
    .bind(key_id)
    .bind(expires_at)
    .bind(stage)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Forgets a key's notices, so that a new expiry is noticed afresh.
pub async fn forget_notices(conn: &mut AnyConnection, key_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM expiry_notices WHERE key_id = $1")
        .bind(key_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A key the expiry scan looks at.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExpiringKey {
    pub id: String,
    pub name: String,
    pub key_type: String,
    pub owner_user_id: Option<String>,
    pub expires_at: i64,
    pub expiry_set_at: i64,
    pub created_by: Option<String>,
    pub modified_by: Option<String>,
    /// Stages already noticed for the current expiry, comma-separated.
    pub noticed: Option<String>,
}

/// Active keys whose expiry lies in `(from, to]`: an indexed range on `expires_at`.
pub async fn expiring(
    conn: &mut AnyConnection,
    backend: crate::db::Backend,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<ExpiringKey>> {
    let agg = match backend {
        crate::db::Backend::Sqlite => "group_concat(CAST(n.stage AS TEXT), ',')",
        crate::db::Backend::Postgres => "string_agg(CAST(n.stage AS TEXT), ',')",
    };
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT k.id, k.name, k.key_type, k.owner_user_id, k.expires_at, k.expiry_set_at, k.created_by, \
         k.modified_by, (SELECT {agg} FROM expiry_notices n \
         WHERE n.key_id = k.id AND n.expires_at = k.expires_at) AS noticed \
         FROM access_keys k WHERE k.expires_at > $1 AND k.expires_at <= $2 AND k.active = 1 \
         ORDER BY k.expires_at"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}
