//! Who calls the API: an access key presented in the `Authorization` header, or the
//! on-premises connector with the bridge key's client credentials, which acts with the
//! Integration role.

use crate::auth::key_auth::{self as header, PresentedBridge, PresentedKey};
use crate::auth::key_secret::SecretHasher;
use crate::domain::{Actor, KeyType};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::service::audit::{self, NewEntry};
use crate::service::repo::secret_keys::{self as bridges, BRIDGE_ID};
use crate::service::throttle;

use super::{
    Attempt, AuthError, AuthenticatedKey, KeyChecker, Keyring, client_bucket, client_limit,
};

/// What a request presents as its caller (from its `Authorization` header): an access key, or
/// the bridge's client credentials; and where it came from.
#[derive(Debug, Clone)]
pub struct CallerCredentials {
    pub key: Option<PresentedKey>,
    /// The bridge's client credentials, when the header carries them instead of a key.
    pub bridge: Option<PresentedBridge>,
    pub client_ip: String,
    pub user_agent: String,
}

impl CallerCredentials {
    /// Reads an `Authorization` header value, beside the request's client address and user
    /// agent.
    pub fn read(authorization: &str, client_ip: String, user_agent: &str) -> Self {
        let key = header::from_authorization(authorization);
        // Only read as the bridge when it is not a key, so key checks decode the header once.
        let bridge = key
            .is_none()
            .then(|| header::bridge_from_authorization(authorization))
            .flatten();
        CallerCredentials {
            key,
            bridge,
            client_ip,
            user_agent: user_agent.to_string(),
        }
    }

    /// The caller's key as an attempt: its failures count against the client address.
    pub(super) fn attempt(&self) -> Attempt<'_> {
        Attempt {
            presented: self.key.clone(),
            client_ip: &self.client_ip,
            user_agent: &self.user_agent,
            limit_client: true,
            needs_caller: None,
        }
    }
}

/// An authenticated caller of the API and what it may do.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The calling access key with its permissions and assignments; `None` for the bridge.
    pub key: Option<AuthenticatedKey>,
    pub actor: Actor,
}

/// Authenticates the caller of an API request: the bridge on its own, or an access key (API
/// keys are refused: other services verify them, they do not call keyward). Every outcome is
/// counted in the metrics. A refusal is `Unauthorized`, whatever its reason.
pub async fn authenticate(
    checker: &KeyChecker,
    ring: &Keyring<'_>,
    metrics: &Metrics,
    credentials: CallerCredentials,
) -> Result<Caller, AppError> {
    if let Some(bridge) = &credentials.bridge {
        return bridge_caller(
            checker,
            ring,
            metrics,
            bridge,
            credentials.client_ip.clone(),
        )
        .await;
    }
    let outcome = checker.check(ring, credentials.attempt()).await;
    key_caller(metrics, credentials.client_ip, outcome)
}

/// The caller, from the outcome of checking its key.
pub(super) fn key_caller(
    metrics: &Metrics,
    client_ip: String,
    outcome: Result<AuthenticatedKey, AuthError>,
) -> Result<Caller, AppError> {
    let key = calling_key(metrics, outcome)?;
    let row = key.row();
    let actor = Actor {
        user_id: row.owner_user_id.clone().unwrap_or_else(|| row.id.clone()),
        // Named as people know it, with the ID that tells equal names apart.
        label: [
            row.name.as_str(),
            " (key ",
            &row.id,
            if key.previous_secret {
                ", previous secret)"
            } else {
                ")"
            },
        ]
        .concat(),
        is_admin: key.administrator(),
        permissions: key.permissions().to_vec(),
        client_ip,
        acting_key: Some(row.id.clone()),
        previous_secret: key.previous_secret,
    };
    Ok(Caller {
        key: Some(key),
        actor,
    })
}

/// The calling key, from the outcome of checking it: counted in the metrics, refused unless
/// it is an access key (API keys are for other services to verify, not for keyward's own
/// API). A refusal is `Unauthorized` whatever its reason.
pub(super) fn calling_key(
    metrics: &Metrics,
    outcome: Result<AuthenticatedKey, AuthError>,
) -> Result<AuthenticatedKey, AppError> {
    let key = match observe(metrics, "api", outcome) {
        Ok(key) => key,
        Err(AuthError::Refused(_)) => return Err(AppError::Unauthorized),
        Err(AuthError::Throttled { retry_after }) => {
            return Err(AppError::TooManyRequests {
                retry_after: u64::try_from(retry_after).unwrap_or(0),
            });
        }
        Err(AuthError::RateLimited {
            retry_after_ms,
            limit,
        }) => {
            return Err(AppError::RateLimited {
                retry_after_ms,
                limit,
            });
        }
        Err(AuthError::Internal(e)) => return Err(e),
    };
    if key.row().key_type != KeyType::Access.as_str() {
        return Err(AppError::Unauthorized);
    }
    Ok(key)
}

/// The bridge as a caller, when its client credentials are right. A wrong secret counts
/// against the client address like a wrong key secret, and is audited.
pub(super) async fn bridge_caller(
    checker: &KeyChecker,
    ring: &Keyring<'_>,
    metrics: &Metrics,
    bridge: &PresentedBridge,
    client_ip: String,
) -> Result<Caller, AppError> {
    let mut conn = checker.pool.acquire().await?;
    let checked = check_bridge(
        &mut conn,
        ring.hasher,
        bridge,
        &client_ip,
        checker.policy.client_failure_limit,
        &checker.over_limit,
        ring.clock.unix(),
    )
    .await?;
    drop(conn);
    let count = |outcome| metrics.count_verification("bridge", outcome);
    let permissions = match checked {
        BridgeCheck::Accepted { permissions } => permissions,
        BridgeCheck::Refused => {
            count("REFUSED");
            return Err(AppError::Unauthorized);
        }
        BridgeCheck::Throttled { retry_after } => {
            count("THROTTLED");
            return Err(AppError::TooManyRequests {
                retry_after: u64::try_from(retry_after).unwrap_or(0),
            });
        }
    };
    count("VALID");
    Ok(Caller {
        key: None,
        actor: Actor {
            user_id: BRIDGE_ID.to_string(),
            label: format!("bridge {}", bridge.client_id.as_str()),
            is_admin: false,
            permissions,
            client_ip,
            acting_key: None,
            previous_secret: false,
        },
    })
}

/// Counts the outcome of a key check in the metrics and passes it on.
pub(super) fn observe(
    metrics: &Metrics,
    via: &'static str,
    outcome: Result<AuthenticatedKey, AuthError>,
) -> Result<AuthenticatedKey, AuthError> {
    let label = match &outcome {
        Ok(_) => "VALID",
        Err(AuthError::Refused(r)) => r.code(),
        Err(AuthError::Throttled { .. }) => "THROTTLED",
        Err(AuthError::RateLimited { .. }) => "RATE_LIMITED",
        Err(AuthError::Internal(_)) => "ERROR",
    };
    metrics.count_verification(via, label);
    outcome
}

/// The role the bridge acts with.
pub const BRIDGE_ROLE: &str = "role_integration";

/// What checking the bridge's credentials came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeCheck {
    /// Right: the permissions of the Integration role.
    Accepted { permissions: Vec<String> },
    /// Wrong or unknown (audited).
    Refused,
    /// Wrong, and the client address is over its failure limit (not audited, so a flood
    /// cannot fill the audit log).
    Throttled { retry_after: i64 },
}

/// Checks the bridge's client credentials: the client ID names the bridge key, a secret has
/// been generated and this is it (HMAC, constant-time compare). Records use on success; a
/// failure counts against the client address with the same limit as wrong key secrets.
async fn check_bridge(
    conn: &mut sqlx::AnyConnection,
    hasher: &SecretHasher,
    presented: &PresentedBridge,
    client_ip: &str,
    client_failure_limit: u32,
    over_limit: &throttle::KnownOver,
    now: i64,
) -> sqlx::Result<BridgeCheck> {
    let key = bridges::find_bridge(conn, presented.client_id.as_str()).await?;
    let matches = key.as_ref().is_some_and(|k| {
        k.secret_hash
            .as_deref()
            .is_some_and(|stored| hasher.matches(&presented.secret, stored))
    });
    if matches {
        bridges::touch_used(conn, BRIDGE_ID, now).await?;
        let permissions = crate::service::repo::roles::role_permissions(conn, BRIDGE_ROLE).await?;
        return Ok(BridgeCheck::Accepted { permissions });
    }
    if let Some(limit) = client_limit(client_failure_limit) {
        let bucket = client_bucket(client_ip);
        if let Some(retry_after) = over_limit.retry_after(&bucket, limit, now) {
            return Ok(BridgeCheck::Throttled { retry_after });
        }
        if let Some(retry_after) = throttle::reserve(conn, &bucket, limit, now).await? {
            over_limit.remember(&bucket, now, retry_after);
            return Ok(BridgeCheck::Throttled { retry_after });
        }
    }
    let label = format!("bridge {}", presented.client_id.as_str());
    let entry = NewEntry {
        actor_id: None,
        actor_label: &label,
        action: "bridge.authentication_failed",
        target_type: "secret_key",
        target_id: BRIDGE_ID,
        target_label: "Bridge key",
        client_ip,
        outcome: audit::FAILURE,
        details: "unknown client ID or wrong secret",
    };
    audit::record(conn, now, entry).await?;
    Ok(BridgeCheck::Refused)
}
