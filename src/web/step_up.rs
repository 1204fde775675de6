//! Step-up (SPEC §8): creating or regenerating a secret, deleting a key, changing roles and
//! changing the policy need a confirmation of who the person is within the last ten minutes.
//! One middleware guards all those forms, so no handler can forget it: when the confirmation is
//! older, the request does not reach the handler; the answer is a "Confirm it's you" page that
//! carries everything the form sent as hidden fields and posts it again with the person's
//! authenticator code (or recovery code, or password for an account without an app). On a
//! right answer the original request goes on in the same round trip, without the typed answer.

use actix_session::SessionExt;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::auth::csrf;
use crate::error::AppError;
use crate::service::accounts::factors::{self, Ask, Refusal, STEP_UP_SECS};
use crate::state::AppState;
use crate::web::current_user::{CurrentUser, record_confirmation};
use crate::web::errors::wait_phrase;
use crate::web::{Frame, html};

/// The form field that carries the confirmation.
pub const FIELD: &str = "step_up";

/// A guarded action: what the page calls it and where Cancel leads.
#[derive(Debug, PartialEq, Eq)]
struct Guarded {
    action: &'static str,
    cancel: String,
}

/// The guarded action a POST to `path` is, if any. `path` is the path as the router matches it
/// (percent-encoded unreserved characters already decoded), so an encoded spelling of a guarded
/// path is guarded too.
fn guarded(path: &str) -> Option<Guarded> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let g = |action, cancel: &str| {
        Some(Guarded {
            action,
            cancel: cancel.to_string(),
        })
    };
    let id = |s: &str| !s.is_empty();
    match parts.as_slice() {
        ["user-access", "keys"] => g("create an access key", "/user-access/keys"),
        ["my", "keys"] => g("create a personal key", "/my/keys"),
        [a, "keys", key, "regenerate"] if is_key_place(a) && id(key) => Some(Guarded {
            action: "generate a new secret",
            cancel: format!("/{a}/keys/{key}"),
        }),
        [a, "keys", key, "delete"] if is_key_place(a) && id(key) => Some(Guarded {
            action: "delete a key",
            cancel: format!("/{a}/keys/{key}"),
        }),
        ["configuration", "api-access", "secret-keys"] => {
            g("add a secret key", "/configuration/api-access")
        }
        [
            "configuration",
            "api-access",
            "secret-keys",
            key,
            "generate",
        ] if id(key) => g("generate a new secret", "/configuration/api-access"),
        ["configuration", "api-access", "secret-keys", key, "delete"] if id(key) => {
            g("delete a secret key", "/configuration/api-access")
        }
        ["user-access", "roles"] => g("create a role", "/user-access/roles"),
        ["user-access", "roles", role] if id(role) => g("change a role", "/user-access/roles"),
        ["user-access", "roles", role, "delete"] if id(role) => {
            g("delete a role", "/user-access/roles")
        }
        ["account", "security", "recovery"] => {
            g("generate new recovery codes", "/account/security")
        }
        ["account", "security", "policy"] => {
            g("change the second-factor policy", "/account/security")
        }
        ["configuration", "key-policy"] => g("change the key policy", "/configuration/key-policy"),
        _ => None,
    }
}

/// The two places keys are managed from: `/user-access/keys` and `/my/keys`.
fn is_key_place(first: &str) -> bool {
    first == "user-access" || first == "my"
}

#[derive(Template)]
#[template(path = "step_up.html")]
struct StepUpPage {
    frame: Frame,
    action: &'static str,
    form_action: String,
    cancel: String,
    /// What the form sent (without its CSRF token), posted again.
    fields: Vec<(String, String)>,
    ask_code: bool,
    error: Option<String>,
}

/// Middleware: lets a guarded POST through only for a person who confirmed who they are within
/// the last ten minutes, or who confirms it in this request's `step_up` field.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let found = if req.method() == Method::POST {
        guarded(req.match_info().as_str())
    } else {
        None
    };
    let Some(found) = found else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let (http, mut payload) = req.into_parts();
    // Who is asking: the same check every console page makes. A request that fails it is
    // passed on: the handler refuses it the same way (sign-in, enrolment, 403).
    let user = match CurrentUser::extract(&http).await {
        Ok(user) => user,
        Err(_) => {
            let req = ServiceRequest::from_parts(http, payload);
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
    };
    let Some(state) = http.app_data::<web::Data<AppState>>().cloned() else {
        let res = AppError::Unexpected(anyhow::anyhow!("application state missing"));
        return Ok(ServiceResponse::new(http, res.error_response()));
    };
    let now = state.clock.unix();
    if user.confirmed_within(now, STEP_UP_SECS) {
        let req = ServiceRequest::from_parts(http, payload);
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let body = match web::Bytes::from_request(&http, &mut payload).await {
        Ok(body) => body,
        Err(e) => return Ok(ServiceResponse::new(http, e.error_response())),
    };
    let Ok(mut fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        let res = AppError::Validation {
            field: "form",
            message: "The form could not be read.".into(),
        };
        return Ok(ServiceResponse::new(http, res.error_response()));
    };
    let typed = take_field(&mut fields, FIELD);
    fields.retain(|(name, _)| name != csrf::FIELD);
    let page = Page {
        http: &http,
        user: &user,
        state: &state,
        found,
        fields,
    };
    let Some(typed) = typed else {
        let res = page.render(StatusCode::OK, None).await;
        return Ok(ServiceResponse::new(http, res));
    };
    let path = http.path().to_string();
    let checked = factors::confirm(
        state.second_factors(),
        &user.id,
        &typed,
        &path,
        &user.client_ip,
    )
    .await;
    match checked {
        Ok(()) => {
            if let Err(e) = record_confirmation(&http.get_session(), now) {
                return Ok(ServiceResponse::new(http, e.error_response()));
            }
            // The handler gets the form as it was sent, with its token but without the answer.
            let mut sent = page.fields;
            sent.push((csrf::FIELD.into(), user.csrf.clone()));
            let body = serde_urlencoded::to_string(&sent).unwrap_or_default();
            let req = ServiceRequest::from_parts(http, Payload::from(web::Bytes::from(body)));
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Err(Refusal::Wrong(message)) => {
            let res = page
                .render(StatusCode::UNAUTHORIZED, Some(message.into()))
                .await;
            Ok(ServiceResponse::new(http, res))
        }
        Err(Refusal::Throttled { retry_after }) => {
            let message = format!(
                "Too many wrong answers. Wait {} and try again.",
                wait_phrase(retry_after)
            );
            let mut res = page
                .render(StatusCode::TOO_MANY_REQUESTS, Some(message))
                .await;
            if let Ok(v) = retry_after.to_string().parse() {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(ServiceResponse::new(http, res))
        }
        Err(Refusal::Other(e)) => Ok(ServiceResponse::new(http, e.error_response())),
    }
}

/// Removes every `name` field from the form, answering the first one's value.
fn take_field(fields: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let value = fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone());
    fields.retain(|(k, _)| k != name);
    value
}

/// What rendering the confirmation page needs.
struct Page<'a> {
    http: &'a HttpRequest,
    user: &'a CurrentUser,
    state: &'a AppState,
    found: Guarded,
    fields: Vec<(String, String)>,
}

impl Page<'_> {
    async fn render(&self, status: StatusCode, error: Option<String>) -> HttpResponse {
        let ask = match factors::ask(&self.state.pool, &self.user.id).await {
            Ok(ask) => ask,
            Err(e) => return e.error_response(),
        };
        let uri = self.http.uri();
        let form_action = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
        let page = StepUpPage {
            frame: Frame::new(self.user, "account"),
            action: self.found.action,
            form_action,
            cancel: self.found.cancel.clone(),
            fields: self.fields.clone(),
            ask_code: ask == Ask::Code,
            error,
        };
        let mut res = html(status, page);
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_the_actions_the_specification_names_and_nothing_else() {
        for path in [
            "/user-access/keys",
            "/my/keys",
            "/user-access/keys/k1/regenerate",
            "/my/keys/k1/regenerate",
            "/user-access/keys/k1/delete",
            "/my/keys/k1/delete",
            "/configuration/api-access/secret-keys",
            "/configuration/api-access/secret-keys/s1/generate",
            "/configuration/api-access/secret-keys/s1/delete",
            "/user-access/roles",
            "/user-access/roles/r1",
            "/user-access/roles/r1/delete",
            "/account/security/policy",
            "/account/security/recovery",
            "/configuration/key-policy",
        ] {
            assert!(guarded(path).is_some(), "{path} should be guarded");
        }
        for path in [
            "/user-access/keys/k1",
            "/user-access/keys/k1/deactivate",
            "/user-access/keys/k1/unlock",
            "/user-access/users",
            "/user-access/groups/g1",
            "/account/password",
            "/logout",
            "/configuration/api-access/webhooks",
            "/sign-in/verify",
        ] {
            assert!(guarded(path).is_none(), "{path} should not be guarded");
        }
    }

    #[test]
    fn cancel_leads_back_to_the_key() {
        let g = guarded("/my/keys/abc/regenerate").unwrap();
        assert_eq!(g.cancel, "/my/keys/abc");
    }

    #[test]
    fn takes_every_copy_of_the_answer_out_of_the_form() {
        let mut fields = vec![
            ("name".to_string(), "a".to_string()),
            ("step_up".to_string(), "123456".to_string()),
            ("step_up".to_string(), "x".to_string()),
        ];
        assert_eq!(take_field(&mut fields, FIELD).as_deref(), Some("123456"));
        assert_eq!(fields, vec![("name".to_string(), "a".to_string())]);
    }
}
