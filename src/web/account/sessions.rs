//! The sessions section of `/account/security`: the person's signed-in sessions (this one marked),
//! with "Sign out" for each and "Sign out everywhere else".

use actix_session::Session;
use actix_web::{HttpResponse, web};

use crate::auth::session_store::SESSION_ID;
use crate::error::AppError;
use crate::service::accounts;
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::pages::When;
use crate::web::see_other;

/// One session as the list shows it.
pub struct SessionItem {
    pub public_id: String,
    pub device: String,
    pub client_ip: String,
    pub signed_in: When,
    pub last_seen: When,
    /// The session this page was asked for with.
    pub current: bool,
}

/// The section's view: every live session of the person, this one first.
pub struct SessionsSection {
    pub items: Vec<SessionItem>,
}

impl SessionsSection {
    /// Whether any session other than this one is signed in.
    pub fn has_others(&self) -> bool {
        self.items.iter().any(|s| !s.current)
    }
}

/// The public ID of the session a request came with.
fn current_id(session: &Session) -> String {
    session
        .get::<String>(SESSION_ID)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The section for the signed-in person.
pub async fn section(
    user: &CurrentUser,
    session: &Session,
    state: &AppState,
) -> Result<SessionsSection, AppError> {
    let now = state.clock.unix();
    let current = current_id(session);
    let mut items: Vec<SessionItem> =
        accounts::list_sessions(&state.pool, state.clock.as_ref(), &user.id)
            .await?
            .into_iter()
            .map(|s| SessionItem {
                current: !current.is_empty() && s.public_id == current,
                // This request is the session's latest use, whatever was last written.
                last_seen: When::at(
                    if s.public_id == current {
                        now
                    } else {
                        s.last_seen_at
                    },
                    now,
                ),
                signed_in: When::at(s.signed_in_at, now),
                public_id: s.public_id,
                device: s.device,
                client_ip: s.client_ip,
            })
            .collect();
    items.sort_by_key(|s| !s.current);
    Ok(SessionsSection { items })
}

/// The notice after an action of this section, from its code.
pub fn notice_text(code: &str, count: u64) -> Option<String> {
    match code {
        "session_signed_out" => Some("The session was signed out.".to_string()),
        "others_signed_out" => Some(match count {
            0 => "No other session was signed in.".to_string(),
            1 => "Signed out 1 other session.".to_string(),
            n => format!("Signed out {n} other sessions."),
        }),
        _ => None,
    }
}

/// POST /account/security/sessions/{id}/sign-out — ends one of the person's sessions.
pub async fn sign_out_one(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let clock = state.clock.as_ref();
    accounts::sign_out_session(&state.pool, clock, &user.actor(), &path).await?;
    Ok(see_other("/account/security?notice=session_signed_out"))
}

/// POST /account/security/sessions/sign-out-others — ends every session but this one.
pub async fn sign_out_others(
    user: CurrentUser,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let clock = state.clock.as_ref();
    let current = current_id(&session);
    let actor = user.actor();
    let ended = accounts::sign_out_other_sessions(&state.pool, clock, &actor, &current).await?;
    Ok(see_other(&format!(
        "/account/security?notice=others_signed_out&count={ended}"
    )))
}
