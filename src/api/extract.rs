//! The calling program: an access key from the `Authorization` header, or the on-premises
//! connector with the bridge key's client credentials. The rules (which keys may call, the
//! bridge's check, throttling, metrics) live in `service::key_auth`; this reads the request.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::api::ApiError;
use crate::auth::client_ip::client_ip;
use crate::domain::{Actor, Permission};
use crate::service::key_auth::{self, AuthenticatedKey, Caller, CallerCredentials};
use crate::state::AppState;

/// An authenticated caller and what it may do.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    /// The calling access key with its permissions and assignments; `None` for the bridge.
    pub key: Option<AuthenticatedKey>,
    pub actor: Actor,
}

impl From<Caller> for ApiCaller {
    fn from(caller: Caller) -> Self {
        ApiCaller {
            key: caller.key,
            actor: caller.actor,
        }
    }
}

impl ApiCaller {
    /// The calling access key; the bridge has none.
    pub fn own_key(&self) -> Result<&AuthenticatedKey, ApiError> {
        self.key.as_ref().ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "forbidden",
                "The bridge has no access key of its own; call with an access key.",
            )
        })
    }

    /// Refuses unless the key holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.actor.may(permission) {
            Ok(())
        } else {
            Err(ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!("The calling key needs the {permission} permission."),
            ))
        }
    }
}

/// What a request presents as its caller: its `Authorization` header, its client address and
/// its `User-Agent`.
pub fn credentials(req: &HttpRequest) -> CallerCredentials {
    let headers = req.headers();
    // ASCII only, as `to_str` takes it (a header value holds no control character but tab),
    // checked a word at a time where `to_str` checks byte by byte.
    let authorization = headers
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .filter(|v| v.is_ascii())
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or_default();
    let user_agent = headers
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    CallerCredentials::read(authorization, client_ip(req), user_agent)
}

/// The application state of a request.
pub fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::from(crate::error::AppError::Unexpected(anyhow::anyhow!(
                "application state missing"
            )))
        })
}

async fn authenticate(req: HttpRequest) -> Result<ApiCaller, ApiError> {
    let state = state_of(&req)?;
    let caller = key_auth::authenticate(
        &state.key_checker,
        &state.keyring(),
        &state.metrics,
        credentials(&req),
    )
    .await?;
    super::rate_limit::note(&req, caller.key.as_ref().and_then(|k| k.rate));
    Ok(caller.into())
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}
