//! The calling program: an access key from the `Authorization` header, checked by
//! `service::key_auth`, or the on-premises connector with the bridge key's client credentials,
//! which acts with the Integration role. API-type keys are refused here; other services verify
//! them instead.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::api::ApiError;
use crate::auth::extract::client_ip;
use crate::auth::key_auth;
use crate::domain::Permission;
use crate::error::AppError;
use crate::repo::secret_keys::BRIDGE_ID;
use crate::service::key_auth::{Attempt, AuthError, AuthenticatedKey};
use crate::service::keys::Actor;
use crate::service::secret_keys::{self, BridgeCheck};
use crate::startup::AppState;

/// An authenticated caller and what it may do.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    /// The calling access key with its permissions and assignments; `None` for the bridge.
    pub key: Option<AuthenticatedKey>,
    pub actor: Actor,
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

/// What a request presents: its `Authorization` header read as a key, and where it came from.
pub struct Presentation {
    pub presented: Option<key_auth::PresentedKey>,
    /// The bridge's client credentials, when the header carries them instead of a key.
    pub bridge: Option<key_auth::PresentedBridge>,
    pub client_ip: String,
    pub user_agent: String,
}

impl Presentation {
    /// Reads the request's `Authorization` and `User-Agent` headers and its client address.
    pub fn of(req: &HttpRequest) -> Self {
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let authorization = header(actix_web::http::header::AUTHORIZATION);
        let presented = key_auth::from_authorization(authorization);
        // Only read as the bridge when it is not a key, so key checks decode the header once.
        let bridge = presented
            .is_none()
            .then(|| key_auth::bridge_from_authorization(authorization))
            .flatten();
        Presentation {
            presented,
            bridge,
            client_ip: client_ip(req),
            user_agent: header(actix_web::http::header::USER_AGENT).to_string(),
        }
    }

    /// The attempt to check: failures count against the client address.
    pub fn attempt(&self) -> Attempt<'_> {
        Attempt {
            presented: self.presented.clone(),
            client_ip: &self.client_ip,
            user_agent: &self.user_agent,
            limit_client: true,
            needs_caller: None,
        }
    }

    /// The caller, from the outcome of checking this presentation.
    pub fn into_caller(
        self,
        state: &AppState,
        outcome: Result<AuthenticatedKey, AuthError>,
    ) -> Result<ApiCaller, ApiError> {
        let key = match observe(state, "api", outcome) {
            Ok(authenticated) => authenticated,
            Err(AuthError::Refused(_)) => return Err(ApiError::unauthorized()),
            Err(AuthError::Throttled { retry_after }) => {
                return Err(ApiError::throttled(retry_after));
            }
            Err(AuthError::Internal(e)) => return Err(e.into()),
        };
        if key.row.key_type != "access" {
            // API keys are for other services to verify, not for keyward's own API.
            return Err(ApiError::unauthorized());
        }
        let actor = Actor {
            user_id: key
                .row
                .owner_user_id
                .clone()
                .unwrap_or_else(|| key.row.id.clone()),
            label: if key.previous_secret {
                format!("key {} (previous secret)", key.row.id)
            } else {
                format!("key {}", key.row.id)
            },
            is_admin: key.administrator,
            permissions: key.permissions.clone(),
            client_ip: self.client_ip,
            acting_key: Some(key.row.id.clone()),
            previous_secret: key.previous_secret,
        };
        Ok(ApiCaller {
            key: Some(key),
            actor,
        })
    }

    /// The bridge as a caller, when its client credentials are right. A wrong secret counts
    /// against the client address like a wrong key secret, and is audited.
    pub async fn bridge_caller(self, state: &AppState) -> Result<ApiCaller, ApiError> {
        let Some(bridge) = &self.bridge else {
            return Err(ApiError::unauthorized());
        };
        let mut conn = state.pool.acquire().await.map_err(AppError::from)?;
        let checked = secret_keys::authenticate_bridge(
            &mut conn,
            &state.key_hasher,
            bridge,
            &self.client_ip,
            state.settings.client_failure_limit,
            state.key_checker.over_limit(),
            state.clock.unix(),
        )
        .await
        .map_err(AppError::from)?;
        let permissions = match checked {
            BridgeCheck::Accepted { permissions } => permissions,
            BridgeCheck::Refused => {
                observe_bridge(state, "REFUSED");
                return Err(ApiError::unauthorized());
            }
            BridgeCheck::Throttled { retry_after } => {
                observe_bridge(state, "THROTTLED");
                return Err(ApiError::throttled(retry_after));
            }
        };
        observe_bridge(state, "VALID");
        Ok(ApiCaller {
            key: None,
            actor: Actor {
                user_id: BRIDGE_ID.to_string(),
                label: format!("bridge {}", bridge.client_id.as_str()),
                is_admin: false,
                permissions,
                client_ip: self.client_ip,
                acting_key: None,
                previous_secret: false,
            },
        })
    }
}

fn observe_bridge(state: &AppState, outcome: &str) {
    state
        .metrics
        .verifications
        .with_label_values(&["bridge", outcome])
        .inc();
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
    let presentation = Presentation::of(&req);
    if presentation.bridge.is_some() {
        return presentation.bridge_caller(&state).await;
    }
    let outcome = state
        .key_checker
        .check(&state.keyring(), presentation.attempt())
        .await;
    presentation.into_caller(&state, outcome)
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}
