//! The console's pages: Users and keys tabs, My access keys, API Access, notifications, audit
//! and mail logs, plus `/` and `/healthz`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use crate::auth::session_store::USER_ID;
use crate::clock::{format_utc, relative};
use crate::domain::Permission;
use crate::error::AppError;
use crate::repo;
use crate::service::notices;
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::{AuditRead, ConfigWrite, Granted};
use crate::web::{Frame, html, see_other};

/// GET / — holders of `keys:read` to the Access keys tab, everyone else to their own keys.
pub async fn home(session: Session, user: Result<CurrentUser, AppError>) -> HttpResponse {
    match user {
        Ok(u) if u.may(Permission::KeysRead) => see_other("/user-access/keys"),
        Ok(_) => see_other("/my/keys"),
        Err(_) => {
            if session.get::<String>(USER_ID).ok().flatten().is_some() {
                session.purge();
            }
            see_other("/login")
        }
    }
}

/// GET /healthz — 200 when the database answers, 503 otherwise.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let ok = sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .is_ok();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "database": if ok { "ok" } else { "unreachable" },
    });
    let mut res = if ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    res.insert_header(("Cache-Control", "no-store")).json(body)
}

/// A time cell: absolute UTC with a relative hint.
pub struct When {
    pub absolute: String,
    pub relative: String,
}

impl When {
    /// The time `secs` as seen at `now`.
    pub fn at(secs: i64, now: i64) -> Self {
        Self {
            absolute: format_utc(secs),
            relative: relative(secs, now),
        }
    }
}

struct NotificationItem {
    title: String,
    body: String,
    link: String,
    unread: bool,
    when: When,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    frame: Frame,
    items: Vec<NotificationItem>,
}

/// GET /notifications
pub async fn notifications(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.unix();
    let mut conn = state.pool.acquire().await?;
    let items = repo::notifications::list(&mut conn, &user.id, 100)
        .await?
        .into_iter()
        .map(|n| NotificationItem {
            title: n.title,
            body: n.body,
            link: n.link,
            unread: n.read_at.is_none(),
            when: When::at(n.created_at, now),
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        NotificationsPage {
            frame: Frame::new(&user, "notifications"),
            items,
        },
    ))
}

/// POST /notifications/read — marks every notification read.
pub async fn mark_notifications_read(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    notices::mark_all_read(&state.pool, state.clock.as_ref(), &user.id).await?;
    Ok(see_other("/notifications"))
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<i64>,
}

struct AuditItem {
    when: When,
    actor: String,
    action: String,
    target: String,
    client_ip: String,
    success: bool,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    frame: Frame,
    q: AuditQuery,
    date_error: Option<String>,
    items: Vec<AuditItem>,
    older: Option<String>,
}

const AUDIT_PAGE: i64 = 50;

fn parse_day(raw: &str, end_of_day: bool) -> Result<Option<i64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("“{raw}” is not a date: use YYYY-MM-DD."))?;
    let t = if end_of_day {
        day.and_hms_opt(23, 59, 59)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    Ok(t.map(|t| t.and_utc().timestamp()))
}

/// GET /audit — filter by actor, action, target and time; newest first, 50 a page.
pub async fn audit(
    user: Granted<AuditRead>,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let now = state.clock.unix();
    let (from, to, date_error) = match (parse_day(&q.from, false), parse_day(&q.to, true)) {
        (Ok(f), Ok(t)) => (f, t, None),
        (Err(e), _) | (_, Err(e)) => (None, None, Some(e)),
    };
    let filter = repo::audit::Filter {
        actor: q.actor.trim().to_string(),
        action: q.action.trim().to_string(),
        target: q.target.trim().to_string(),
        from,
        to,
        before_id: q.before,
        limit: AUDIT_PAGE,
    };
    let mut conn = state.pool.acquire().await?;
    let rows = if date_error.is_some() {
        Vec::new()
    } else {
        repo::audit::list(&mut conn, &filter).await?
    };
    let older = (rows.len() as i64 == AUDIT_PAGE).then(|| {
        let last = rows.last().map(|r| r.id).unwrap_or_default();
        serde_urlencoded::to_string([
            ("actor", q.actor.as_str()),
            ("action", q.action.as_str()),
            ("target", q.target.as_str()),
            ("from", q.from.as_str()),
            ("to", q.to.as_str()),
            ("before", &last.to_string()),
        ])
        .unwrap_or_default()
    });
    let items = rows
        .into_iter()
        .map(|r| AuditItem {
            when: When::at(r.at, now),
            actor: r.actor_label,
            action: r.action,
            target: if r.target_label.is_empty() {
                r.target_id
            } else {
                r.target_label
            },
            client_ip: r.client_ip,
            success: r.outcome == "success",
            details: r.details,
        })
        .collect();
    let status = if date_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(html(
        status,
        AuditPage {
            frame: Frame::new(&user, "audit"),
            q,
            date_error,
            items,
            older,
        },
    ))
}

/// The mail log's filters.
#[derive(Debug, Default, Deserialize)]
pub struct MailQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    notice: String,
}

struct MailFilter {
    state: &'static str,
    label: &'static str,
    count: i64,
    current: bool,
}

struct MailItem {
    id: String,
    queued: When,
    recipient: String,
    recipient_name: String,
    subject: String,
    state: String,
    attempts: i64,
    next_attempt: Option<When>,
    last_error: Option<String>,
    response: Option<String>,
    sent: Option<When>,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct MailPage {
    frame: Frame,
    transport: String,
    retention: String,
    notice: String,
    filters: Vec<MailFilter>,
    items: Vec<MailItem>,
    older: Option<String>,
}

const MAIL_PAGE: i64 = 50;
const MAIL_STATES: [(&str, &str); 5] = [
    ("", "All"),
    (repo::outbox::QUEUED, "Queued"),
    (repo::outbox::SENT, "Sent"),
    (repo::outbox::FAILED, "Failed"),
    (repo::outbox::CANCELLED, "Cancelled"),
];

/// GET /mail — every email, newest first, filtered by state, 50 a page.
pub async fn mail(
    user: Granted<AuditRead>,
    state: web::Data<AppState>,
    query: web::Query<MailQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let now = state.clock.unix();
    let Some(&(filter, _)) = MAIL_STATES.iter().find(|(s, _)| *s == q.state) else {
        return Err(AppError::NotFound);
    };
    let page = i64::from(q.page.unwrap_or(1).clamp(1, 100_000));
    let mut conn = state.pool.acquire().await?;
    let counts = repo::outbox::counts(&mut conn).await?;
    let rows = repo::outbox::list(
        &mut conn,
        (!filter.is_empty()).then_some(filter),
        MAIL_PAGE,
        (page - 1) * MAIL_PAGE,
    )
    .await?;
    let filters = MAIL_STATES
        .iter()
        .map(|&(s, label)| MailFilter {
            state: s,
            label,
            count: counts
                .iter()
                .filter(|(st, _)| s.is_empty() || st == s)
                .map(|(_, n)| n)
                .sum(),
            current: s == filter,
        })
        .collect();
    let older = (rows.len() as i64 == MAIL_PAGE).then(|| {
        serde_urlencoded::to_string([("state", filter), ("page", &(page + 1).to_string())])
            .unwrap_or_default()
    });
    let items = rows
        .into_iter()
        .map(|r| MailItem {
            queued: When::at(r.created_at, now),
            next_attempt: (r.state == repo::outbox::QUEUED && r.attempts > 0)
                .then(|| When::at(r.next_attempt_at, now)),
            sent: r.sent_at.map(|t| When::at(t, now)),
            id: r.id,
            recipient: r.recipient,
            recipient_name: r.recipient_name,
            subject: r.subject,
            state: r.state,
            attempts: r.attempts,
            last_error: r.last_error,
            response: r.server_response,
        })
        .collect();
    let notice = match q.notice.as_str() {
        "retried" => "The email is queued again and will be sent shortly.".to_string(),
        _ => String::new(),
    };
    Ok(html(
        StatusCode::OK,
        MailPage {
            frame: Frame::new(&user, "mail"),
            transport: state.mail_transport.clone(),
            retention: crate::web::retention_note(
                &state.settings,
                "Sent, failed and cancelled emails",
            ),
            notice,
            filters,
            items,
            older,
        },
    ))
}

/// POST /mail/{id}/retry — puts a failed email back in the queue.
pub async fn retry_mail(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let sender = state.sender.clone();
    notices::retry_email(
        &state.pool,
        state.clock.as_ref(),
        &user.actor(),
        &sender,
        &id,
    )
    .await?;
    Ok(see_other("/mail?state=queued&notice=retried"))
}
