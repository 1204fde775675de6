//! The calling program: an access key from the `Authorization` header, checked by
//! `service::key_auth`. API-type keys are refused here; other services verify them instead.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::api::ApiError;
use crate::auth::extract::client_ip;
use crate::auth::key_auth;
use crate::domain::Permission;
use crate::repo::keys::KeyRow;
use crate::service::key_auth::{Attempt, AuthError, AuthenticatedKey, Policy};
use crate::service::keys::Actor;
use crate::startup::AppState;

/// An authenticated access key and what it may do.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key: KeyRow,
    pub actor: Actor,
}

impl ApiCaller {
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

/// Counts the outcome of a key check in the metrics and passes it on.
pub fn observe(
    state: &AppState,
    via: &str,
    outcome: Result<AuthenticatedKey, AuthError>,
) -> Result<AuthenticatedKey, AuthError> {
    let label = match &outcome {
        Ok(_) => "VALID",
        Err(AuthError::Refused(r)) => r.code(),
        Err(AuthError::Throttled { .. }) => "THROTTLED",
        Err(AuthError::Internal(_)) => "ERROR",
    };
    state
        .metrics
        .verifications
        .with_label_values(&[via, label])
        .inc();
    outcome
}

/// The policy the settings give.
pub fn policy(state: &AppState) -> Policy {
    Policy {
        lockout_threshold: state.settings.lockout_threshold,
        client_failure_limit: state.settings.client_failure_limit,
    }
}

async fn authenticate(req: HttpRequest) -> Result<ApiCaller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| {
            ApiError::from(crate::error::AppError::Unexpected(anyhow::anyhow!(
                "application state missing"
            )))
        })?
        .clone();
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ip = client_ip(&req);
    let agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let ring = state.keyring();
    let attempt = Attempt {
        presented: key_auth::from_authorization(header),
        client_ip: &ip,
        user_agent: &agent,
        limit_client: true,
    };
    let AuthenticatedKey {
        row: key,
        permissions,
    } = match observe(
        &state,
        "api",
        crate::service::key_auth::authenticate(&state.pool, &ring, policy(&state), attempt).await,
    ) {
        Ok(authenticated) => authenticated,
        Err(AuthError::Refused(_)) => return Err(ApiError::unauthorized()),
        Err(AuthError::Throttled { retry_after }) => {
            return Err(ApiError::throttled(retry_after));
        }
        Err(AuthError::Internal(e)) => return Err(e.into()),
    };
    if key.key_type != "access" {
        // API keys are for other services to verify, not for keyward's own API.
        return Err(ApiError::unauthorized());
    }
    let actor = Actor {
        user_id: key.owner_user_id.clone().unwrap_or_else(|| key.id.clone()),
        label: format!("key {}", key.id),
        is_admin: false,
        permissions,
        client_ip: ip,
        acting_key: Some(key.id.clone()),
    };
    Ok(ApiCaller { key, actor })
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}
