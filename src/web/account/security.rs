//! `/account/security`: the page where a person looks after how they sign in. Each part of it
//! (the sessions list here; second factors beside it) is a section with its own template, built
//! by its own module.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::sessions::{self, SessionsSection};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::{Frame, html};

#[derive(Template)]
#[template(path = "account/security.html")]
struct SecurityPage {
    frame: Frame,
    notice: String,
    sessions: SessionsSection,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
    #[serde(default)]
    count: u64,
}

/// What an action on the page did, from the code its redirect carries.
fn notice_text(q: &NoticeQuery) -> String {
    sessions::notice_text(&q.notice, q.count).unwrap_or_default()
}

/// GET /account/security
pub async fn security(
    user: CurrentUser,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let page = SecurityPage {
        frame: Frame::new(&user, "account"),
        notice: notice_text(&query),
        sessions: sessions::section(&user, &session, &state).await?,
    };
    Ok(html(StatusCode::OK, page))
}
