//! A key as a table row or a page shows it: its details in words and dates, and the controls
//! the viewer may use.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::clock::{format_utc, relative};
use crate::domain::{DecidedBy, KeyDetails, KeyStatus};
use crate::error::AppError;
use crate::service::grants;
use crate::service::keys::{self, Confirm};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::{Frame, html};

use super::Place;

/// A key as a table row or a details pane shows it.
pub struct KeyView {
    /// Why the key is out of the key policy (set by the list); empty when in policy.
    pub out_of_policy: String,
    pub id: String,
    pub name: String,
    pub type_label: &'static str,
    pub owner: String,
    pub personal: bool,
    pub status: &'static str,
    pub status_class: &'static str,
    pub active: bool,
    pub locked: bool,
    pub system: bool,
    pub expires: String,
    pub expires_hint: String,
    pub expires_soon: bool,
    pub expired: bool,
    pub last_used: String,
    pub last_used_hint: String,
    pub last_used_ip: String,
    pub last_used_agent: String,
    pub created: String,
    pub created_by: String,
    pub modified: String,
    pub modified_by: String,
    pub failed_attempts: i64,
    pub networks: String,
    /// Its rate limit in words ("No limit" without one).
    pub rate_limit: String,
    pub regenerated: String,
    pub grace_until: String,
    /// What the viewer may do to the key's secret and state (SPEC §11).
    pub may_regenerate: bool,
    pub may_activate: bool,
    pub may_unlock: bool,
    /// Who deactivated or locked it, in words ("by an administrator").
    pub deactivated_by: &'static str,
    pub locked_by: &'static str,
}

/// A moment as a date and a hint relative to now; "Never" without one.
fn when(at: Option<i64>, now: i64) -> (String, String) {
    match at {
        Some(t) => (format_utc(t), relative(t, now)),
        None => ("Never".to_string(), String::new()),
    }
}

/// The badge colour of a state.
fn status_class(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "badge-success",
        KeyStatus::Inactive => "badge-neutral",
        KeyStatus::Expired => "badge-warning",
        KeyStatus::Locked => "badge-danger",
    }
}

impl KeyView {
    /// The view of `key` at `now` for the person `viewer`; keys expiring within `notice_secs`
    /// are marked.
    pub fn of(key: &KeyDetails, now: i64, notice_secs: i64, viewer: &str) -> Self {
        let controls = grants::controls(viewer, key);
        let (expires, expires_hint) = when(key.expires_at, now);
        let (last_used, last_used_hint) = when(key.last_used.as_ref().map(|u| u.at), now);
        let used = key.last_used.as_ref();
        Self {
            out_of_policy: String::new(),
            id: key.id.clone(),
            name: key.name.clone(),
            type_label: key.key_type.label(),
            owner: key
                .owner
                .as_ref()
                .map_or_else(|| "Tenant".to_string(), |o| o.name.clone()),
            personal: key.is_personal(),
            status: key.status.label(),
            status_class: status_class(key.status),
            active: key.active,
            locked: key.locked,
            system: key.system,
            expires,
            expires_hint,
            expires_soon: key
                .expires_at
                .is_some_and(|t| t > now && t - now <= notice_secs),
            expired: key.expires_at.is_some_and(|t| t <= now),
            last_used,
            last_used_hint,
            last_used_ip: used.map(|u| u.client_ip.clone()).unwrap_or_default(),
            last_used_agent: used.map(|u| u.user_agent.clone()).unwrap_or_default(),
            created: format_utc(key.created_at),
            created_by: key.created_by.clone(),
            modified: format_utc(key.modified_at),
            modified_by: key.modified_by.clone(),
            failed_attempts: key.failed_attempts,
            networks: key.allowed_networks.join(", "),
            rate_limit: match key.rate_limit {
                Some(l) => crate::domain::RateLimit::describe(Some(l)),
                None => "No limit".to_string(),
            },
            regenerated: key
                .secret_regenerated_at
                .map(format_utc)
                .unwrap_or_default(),
            grace_until: key.grace_until.map(format_utc).unwrap_or_default(),
            may_regenerate: controls.regenerate,
            may_activate: controls.activate,
            may_unlock: controls.unlock,
            deactivated_by: key.deactivated_by.map_or("", DecidedBy::words),
            locked_by: key.locked_by.map_or("", DecidedBy::words),
        }
    }
}

/// The first expiry notice, in seconds before the expiry: keys within it are marked.
pub fn notice_secs(state: &AppState) -> i64 {
    i64::from(
        state
            .settings
            .expiry_notice_days
            .first()
            .copied()
            .unwrap_or(2),
    ) * 86_400
}

/// The page that asks before `action`, about the key it would change (refused as the action
/// would refuse it); `page` puts the frame, the place's base path and the key into its template.
pub async fn confirm_page<T: Template>(
    user: &CurrentUser,
    state: &AppState,
    place: Place,
    id: &str,
    action: Confirm,
    page: impl FnOnce(Frame, &'static str, KeyView) -> T,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.acquire().await?;
    let ring = state.keyring();
    let key = keys::before(&mut conn, &user.actor(), place.scope, id, &ring, action).await?;
    drop(conn);
    let key = KeyView::of(&key, state.clock.unix(), notice_secs(state), &user.id);
    let frame = Frame::new(user, place.section());
    Ok(html(StatusCode::OK, page(frame, place.base, key)))
}
