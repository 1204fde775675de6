//! The console's pages: Users and keys tabs, My access keys, API Access, notifications, audit
//! and mail logs, plus `/` and `/healthz`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::session_store::USER_ID;
use crate::clock::{format_utc, relative};
use crate::domain::Permission;
use crate::error::AppError;
use crate::service::audit::{self, Search};
use crate::service::mail_log::{self, Email, MailLog, MailState};
use crate::service::{health, notices};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::{AuditRead, ConfigWrite, Granted};
use crate::web::{Frame, html, see_other};

/// GET / — the overview for holders of `keys:read`, everyone else to their own keys.
pub async fn home(
    session: Session,
    user: Result<CurrentUser, AppError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    match user {
        Ok(u) if u.may(Permission::KeysRead) => crate::web::overview::page(&u, &state).await,
        Ok(_) => Ok(see_other("/my/keys")),
        // Signed in, but a second factor must be set up first: to the security pages.
        Err(e @ AppError::SecondFactorRequired) => Err(e),
        Err(_) => {
            if session.get::<String>(USER_ID).ok().flatten().is_some() {
                session.purge();
            }
            Ok(see_other("/login"))
        }
    }
}

/// GET /healthz — 200 when the database answers, 503 otherwise.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let ok = health::database_answers(&state.pool).await;
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
    notice: &'static str,
}

#[derive(Deserialize)]
pub struct NotificationsQuery {
    read: Option<String>,
}

/// GET /notifications
pub async fn notifications(
    user: CurrentUser,
    state: web::Data<AppState>,
    query: web::Query<NotificationsQuery>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.unix();
    let items = notices::bell(&state.pool, &user.id)
        .await?
        .into_iter()
        .map(|n| NotificationItem {
            title: n.title,
            body: n.body,
            link: n.link,
            unread: n.unread,
            when: When::at(n.created_at, now),
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        NotificationsPage {
            frame: Frame::new(&user, "notifications"),
            items,
            notice: match query.read.as_deref() {
                Some(_) => "Every notification is marked as read.",
                None => "",
            },
        },
    ))
}

/// POST /notifications/read — marks every notification read.
pub async fn mark_notifications_read(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    notices::mark_all_read(&state.pool, state.clock.as_ref(), &user.id).await?;
    Ok(see_other("/notifications?read=1"))
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

impl AuditItem {
    fn of(e: audit::Entry, now: i64) -> Self {
        AuditItem {
            when: When::at(e.at, now),
            actor: e.actor,
            action: e.action,
            target: e.target,
            client_ip: e.client_ip,
            success: e.succeeded,
            details: e.details,
        }
    }
}

/// The link to the next page of entries, when this one is full.
fn older_entries(q: &AuditQuery, entries: &[audit::Entry]) -> Option<String> {
    let last = entries.last()?.id;
    (entries.len() as i64 == audit::PAGE).then(|| {
        serde_urlencoded::to_string([
            ("actor", q.actor.as_str()),
            ("action", q.action.as_str()),
            ("target", q.target.as_str()),
            ("from", q.from.as_str()),
            ("to", q.to.as_str()),
            ("before", &last.to_string()),
        ])
        .unwrap_or_default()
    })
}

/// GET /audit — filter by actor, action, target and time; newest first, 50 a page.
pub async fn audit(
    user: Granted<AuditRead>,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let now = state.clock.unix();
    let search = Search::parse(&q.actor, &q.action, &q.target, &q.from, &q.to, q.before);
    let (status, entries, date_error) = match search {
        Ok(search) => (
            StatusCode::OK,
            audit::search(&state.pool, &search).await?,
            None,
        ),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Vec::new(), Some(e)),
    };
    let older = older_entries(&q, &entries);
    let items = entries.into_iter().map(|e| AuditItem::of(e, now)).collect();
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
    state: &'static str,
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

impl MailItem {
    fn of(m: Email, now: i64) -> Self {
        MailItem {
            queued: When::at(m.queued_at, now),
            next_attempt: m.next_attempt_at.map(|t| When::at(t, now)),
            sent: m.sent_at.map(|t| When::at(t, now)),
            id: m.id,
            recipient: m.recipient,
            recipient_name: m.recipient_name,
            subject: m.subject,
            state: m.state.as_str(),
            attempts: m.attempts,
            last_error: m.last_error,
            response: m.server_response,
        }
    }
}

/// The tabs above the mail log: all emails, then each state, with their counts.
fn mail_filters(log: &MailLog, current: Option<MailState>) -> Vec<MailFilter> {
    let all = MailFilter {
        state: "",
        label: "All",
        count: log.count(None),
        current: current.is_none(),
    };
    let states = MailState::ALL.into_iter().map(|s| MailFilter {
        state: s.as_str(),
        label: s.label(),
        count: log.count(Some(s)),
        current: current == Some(s),
    });
    std::iter::once(all).chain(states).collect()
}

/// GET /mail — every email, newest first, filtered by state, 50 a page.
pub async fn mail(
    user: Granted<AuditRead>,
    state: web::Data<AppState>,
    query: web::Query<MailQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let now = state.clock.unix();
    let filter = match q.state.as_str() {
        "" => None,
        raw => Some(MailState::parse(raw).ok_or(AppError::NotFound)?),
    };
    let page = i64::from(q.page.unwrap_or(1).clamp(1, 100_000));
    let log = mail_log::page(&state.pool, filter, page).await?;
    let older = (log.emails.len() as i64 == mail_log::PAGE).then(|| {
        let shown = filter.map_or("", MailState::as_str);
        serde_urlencoded::to_string([("state", shown), ("page", &(page + 1).to_string())])
            .unwrap_or_default()
    });
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
            filters: mail_filters(&log, filter),
            items: log
                .emails
                .into_iter()
                .map(|m| MailItem::of(m, now))
                .collect(),
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
    mail_log::retry(
        &state.pool,
        state.clock.as_ref(),
        &user.actor(),
        &state.sender,
        &id,
    )
    .await?;
    Ok(see_other("/mail?state=queued&notice=retried"))
}
