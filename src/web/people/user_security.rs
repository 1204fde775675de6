//! On a user's page, for `users:write`: sending a password reset link and signing the user out
//! everywhere, each confirmed first on a page of its own.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::with_notice;
use crate::error::AppError;
use crate::service::accounts;
use crate::service::notices::Mailing;
use crate::service::people;
use crate::state::AppState;
use crate::web::granted::{Granted, UsersWrite};
use crate::web::{Frame, html};

/// An action on a user's account, as its confirmation page describes it.
struct Action {
    /// The last part of its path under `/user-access/users/{id}/`.
    path: &'static str,
    title: &'static str,
    button: &'static str,
    danger: bool,
}

const SEND_RESET: Action = Action {
    path: "reset-password",
    title: "Send a password reset link?",
    button: "Send reset link",
    danger: false,
};

const SIGN_OUT: Action = Action {
    path: "sign-out",
    title: "Sign out everywhere?",
    button: "Sign out everywhere",
    danger: true,
};

#[derive(Template)]
#[template(path = "people/user_confirm.html")]
struct ConfirmPage {
    frame: Frame,
    id: String,
    name: String,
    action: Action,
    text: String,
}

/// The confirmation page of `action` on user `id`.
async fn confirm(
    admin: &Granted<UsersWrite>,
    state: &AppState,
    id: &str,
    action: Action,
) -> Result<HttpResponse, AppError> {
    let user = people::user_details(&state.pool, &admin.actor(), id, None).await?;
    let text = if action.path == SEND_RESET.path {
        format!(
            "{} ({}) gets an email with a link to choose a new password. The link works once, \
             for one hour, and replaces any link sent before; their current password keeps \
             working until the link is used.",
            user.name, user.email
        )
    } else {
        format!(
            "Every session of {} ({}) ends at once: they have to sign in again on each device. \
             Their password and access keys stay as they are.",
            user.name, user.email
        )
    };
    let page = ConfirmPage {
        frame: Frame::new(admin, "users-and-keys"),
        id: user.id,
        name: user.name,
        action,
        text,
    };
    Ok(html(StatusCode::OK, page))
}

/// GET /user-access/users/{id}/reset-password
pub async fn reset_form(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    confirm(&admin, &state, &path, SEND_RESET).await
}

/// POST /user-access/users/{id}/reset-password — emails the user a reset link.
pub async fn send_reset(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let mailing = Mailing {
        vault: &state.vault,
        public_url: &state.settings.public_url,
        sender: &state.sender,
    };
    let clock = state.clock.as_ref();
    accounts::send_reset(&state.pool, clock, &admin.actor(), &mailing, &path).await?;
    Ok(with_notice(
        &format!("/user-access/users/{}", path.as_str()),
        "reset_sent",
    ))
}

/// GET /user-access/users/{id}/sign-out
pub async fn sign_out_form(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    confirm(&admin, &state, &path, SIGN_OUT).await
}

/// POST /user-access/users/{id}/sign-out — ends every session of the user.
pub async fn sign_out(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let clock = state.clock.as_ref();
    accounts::sign_out_everywhere(&state.pool, clock, &admin.actor(), &path).await?;
    Ok(with_notice(
        &format!("/user-access/users/{}", path.as_str()),
        "signed_out",
    ))
}

/// The routes of these actions.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/user-access/users/{id}/reset-password",
        web::get().to(reset_form),
    )
    .route(
        "/user-access/users/{id}/reset-password",
        web::post().to(send_reset),
    )
    .route(
        "/user-access/users/{id}/sign-out",
        web::get().to(sign_out_form),
    )
    .route("/user-access/users/{id}/sign-out", web::post().to(sign_out));
}
