//! The Users, Groups and Roles tabs, and the invitation link a new user follows. Each handler
//! reads its page through one `service::people` read function, or saves its form through one
//! `service::people` action.

mod editor;
mod groups;
mod invitation;
mod roles;
mod user_security;
mod users;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::service::people::Choice;
use crate::service::{FieldErrors, FormError};
use crate::web::{html, see_other};

/// Form fields, with repeated names (checkbox lists) kept.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }
    fn one(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn many(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The fixed text of a notice code carried in a redirect.
fn notice_text(code: &str) -> String {
    match code {
        "invited" => "Invitation sent. The link works once, for 7 days.",
        "reinvited" => "A new invitation was sent; earlier links no longer work.",
        "disabled" => {
            "The user is disabled: they are signed out and their personal keys stop authenticating."
        }
        "enabled" => "The user is enabled again.",
        "factors_removed" => {
            "The user's second factors and recovery codes were removed: they sign in with their \
             password and can set up a new authenticator app."
        }
        "group_deleted" => "The group was deleted.",
        "role_deleted" => "The role was deleted.",
        "reset_sent" => "A password reset link was sent. It works once, for one hour.",
        "signed_out" => "The user was signed out everywhere.",
        _ => "",
    }
    .to_string()
}

/// The query of a page a redirect lands on: a notice code, or that a form was saved.
#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
    saved: Option<String>,
    created: Option<String>,
}

fn field_error(errors: &FieldErrors, field: &str) -> String {
    errors.get(field).unwrap_or_default().to_string()
}

/// A redirect to `path` with a notice code.
fn with_notice(path: &str, notice: &str) -> HttpResponse {
    let q = serde_urlencoded::to_string([("notice", notice)]).unwrap_or_default();
    see_other(&format!("{path}?{q}"))
}

/// A checkbox list as the templates show it: (ID, label, ticked).
type Ticks = Vec<(String, String, bool)>;

fn ticks(choices: Vec<Choice>) -> Ticks {
    choices
        .into_iter()
        .map(|c| (c.id, c.label, c.chosen))
        .collect()
}

/// The answer to a submitted form: `done` when it took effect (a redirect), else the form again
/// with its messages (422), built by `again`.
async fn answer<T, P: Template>(
    result: Result<T, FormError>,
    done: impl FnOnce(T) -> HttpResponse,
    again: impl AsyncFnOnce(FieldErrors) -> Result<P, AppError>,
) -> Result<HttpResponse, AppError> {
    match result {
        Ok(value) => Ok(done(value)),
        Err(FormError::Invalid(errors)) => {
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, again(errors).await?))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

/// The routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(users::routes)
        .configure(invitation::routes)
        .configure(groups::routes)
        .configure(roles::routes)
        .configure(user_security::routes);
}
