//! The signed-in user's own account: changing the password, and the Account security page.

pub(crate) mod sessions;

pub(crate) mod passkeys;
pub(crate) mod passkeys_section;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::service::accounts::{self, PasswordChange};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::errors::wait_phrase;
use crate::web::sign_in::start_session;
use crate::web::{Frame, html, see_other};

#[derive(Template)]
#[template(path = "account/password.html")]
struct PasswordPage {
    frame: Frame,
    errors: FieldErrors,
    saved: bool,
}

impl PasswordPage {
    fn error(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or_default().to_string()
    }
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// GET /account/password
pub async fn password_form(user: CurrentUser, query: web::Query<SavedQuery>) -> HttpResponse {
    html(
        StatusCode::OK,
        PasswordPage {
            frame: Frame::new(&user, "account"),
            errors: FieldErrors::default(),
            saved: query.saved.is_some(),
        },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

/// POST /account/password — on success every other session of the user ends; this one is
/// renewed. Too many wrong current passwords answer 429 with `Retry-After` and the form.
pub async fn change_password(
    req: actix_web::HttpRequest,
    user: CurrentUser,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let result = accounts::change_password(
        &state.pool,
        &state.hasher,
        state.clock.as_ref(),
        &user.id,
        PasswordChange {
            current: &form.current,
            new: &form.password,
            confirm: &form.confirm,
        },
        &user.client_ip,
    )
    .await;
    match result {
        Ok(()) => {
            start_session(&req, &session, &user.id, state.clock.unix())?;
            Ok(see_other("/account/password?saved=1"))
        }
        Err(FormError::Invalid(errors)) => Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            PasswordPage {
                frame: Frame::new(&user, "account"),
                errors,
                saved: false,
            },
        )),
        Err(FormError::Other(AppError::TooManyRequests { retry_after })) => {
            let message = format!(
                "Too many wrong passwords. Wait {} and try again.",
                wait_phrase(i64::try_from(retry_after).unwrap_or(i64::MAX))
            );
            let mut res = html(
                StatusCode::TOO_MANY_REQUESTS,
                PasswordPage {
                    frame: Frame::new(&user, "account"),
                    errors: FieldErrors(vec![("current", message)]),
                    saved: false,
                },
            );
            res.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, retry_after.into());
            Ok(res)
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

/// The routes of the Account security page (the password form's are in `web::routes`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/account/security/sessions/sign-out-others",
        web::post().to(sessions::sign_out_others),
    )
    .route(
        "/account/security/sessions/{id}/sign-out",
        web::post().to(sessions::sign_out_one),
    );
}
