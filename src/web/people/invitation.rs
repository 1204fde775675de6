//! The invitation link a new user follows to set a password. Anonymous: the form's CSRF token is
//! the anonymous one, and no session is written until the password is set.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::field_error;
use crate::auth::client_ip::client_ip;
use crate::auth::csrf::AnonymousToken;
use crate::error::AppError;
use crate::service::bootstrap::LINK_TOKEN_LEN;
use crate::service::people::{self, Invitee};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::sign_in::start_session;
use crate::web::{asset_url, html, see_other};

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    csrf: String,
    token: String,
    name: String,
    email: String,
    errors: FieldErrors,
    css: String,
    icon: String,
}

impl InvitePage {
    fn new(csrf: &AnonymousToken, token: String, invitee: Invitee, errors: FieldErrors) -> Self {
        Self {
            csrf: csrf.token.clone(),
            token,
            name: invitee.name,
            email: invitee.email,
            errors,
            css: asset_url("app.css"),
            icon: asset_url("favicon.svg"),
        }
    }

    fn error(&self, field: &str) -> String {
        field_error(&self.errors, field)
    }
}

fn invalid_invitation() -> AppError {
    AppError::Conflict("This invitation link is invalid, expired or already used. Ask an administrator to send a new one.".into())
}

/// The person a link's token invites; refused before any lookup when longer than any token we
/// issue, and when invalid, expired or used.
async fn invitee(state: &AppState, token: &str) -> Result<Invitee, AppError> {
    if token.len() > LINK_TOKEN_LEN {
        return Err(invalid_invitation());
    }
    people::invitation_user(&state.pool, state.clock.as_ref(), token)
        .await?
        .ok_or_else(invalid_invitation)
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// GET /invite?token=… — writes no session: the form's CSRF token is the anonymous one.
pub async fn invite_form(
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let token = query.into_inner().token;
    let invited = invitee(&state, &token).await?;
    let page = InvitePage::new(&csrf, token, invited, FieldErrors::default());
    let mut res = html(StatusCode::OK, page);
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(csrf.attach(res))
}

#[derive(Deserialize)]
pub struct InviteForm {
    token: String,
    password: String,
    confirm: String,
}

/// POST /invite — sets the password and signs the new user in. The token's length is checked
/// before anything else, the password's before any hashing (in `NewPassword::parse`).
pub async fn accept_invite(
    req: HttpRequest,
    session: Session,
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    if form.token.len() > LINK_TOKEN_LEN {
        return Err(invalid_invitation());
    }
    let accepted = people::accept_invitation(
        &state.pool,
        &state.hasher,
        state.clock.as_ref(),
        &form.token,
        &form.password,
        &form.confirm,
        &client_ip(&req),
    )
    .await;
    match accepted {
        Ok(user_id) => {
            start_session(&req, &session, &user_id, state.clock.unix())?;
            Ok(see_other("/"))
        }
        Err(FormError::Invalid(errors)) => {
            let invited = invitee(&state, &form.token).await?;
            let page = InvitePage::new(&csrf, form.token, invited, errors);
            Ok(csrf.attach(html(StatusCode::UNPROCESSABLE_ENTITY, page)))
        }
        Err(FormError::Other(AppError::NotFound)) => Err(invalid_invitation()),
        Err(FormError::Other(e)) => Err(e),
    }
}

/// The routes of the invitation link.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/invite", web::get().to(invite_form))
        .route("/invite", web::post().to(accept_invite));
}
