//! `POST /api/v1/verify`: a downstream service asks whether a key presented to it is valid.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::api::error::ErrorBody;
use crate::api::extract::{Presentation, observe};
use crate::auth::key_auth;
use crate::domain::Permission;
use crate::service::key_auth::{Attempt, AuthError, AuthenticatedKey, Refusal};
use crate::startup::AppState;

/// Body of a verify request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// `<key ID>::<secret>` as the program presented it.
    key: String,
    /// The address of the program that presented it, for allowed networks.
    client_ip: Option<String>,
}

/// What a valid key is.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifiedKey {
    id: String,
    name: String,
    #[serde(rename = "type")]
    key_type: String,
    owner: Option<String>,
    permissions: Vec<String>,
    expires_at: Option<String>,
}

/// The answer: `valid`, a reason `code`, and the key when valid.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyAnswer {
    valid: bool,
    /// `VALID`, `NOT_FOUND`, `EXPIRED`, `INACTIVE`, `LOCKED` or `FORBIDDEN_NETWORK`.
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<VerifiedKey>,
}

/// POST /api/v1/verify
#[utoipa::path(post, path = "/api/v1/verify", tag = "verify", request_body = VerifyBody, responses((status = 200, description = "OK", body = VerifyAnswer), (status = 400, description = "The request could not be read", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "The caller lacks keys:verify", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Json<VerifyBody>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    // The caller is checked before the body is judged, so that a stranger learns nothing from
    // the answer; when the body reads, the caller's key and the presented one are looked up
    // together.
    let caller = Presentation::of(&req);
    let ring = state.keyring();
    let (body, client_ip) = match body.map(web::Json::into_inner) {
        Ok(body) => match checked(&body) {
            Ok(ip) => (Ok(body), ip),
            Err(e) => (Err(actix_web::Error::from(e)), String::new()),
        },
        Err(e) => (Err(e), String::new()),
    };
    let presented = body
        .as_ref()
        .ok()
        .and_then(|b| key_auth::from_pair(b.key.trim()));
    let by_bridge = caller.bridge.is_some();
    let asked = body.is_ok().then(|| Attempt {
        presented,
        client_ip: &client_ip,
        user_agent: "verify",
        limit_client: false,
        // A caller without valid credentials and keys:verify leaves no trace on the key.
        needs_caller: (!by_bridge).then_some(Permission::KeysVerify),
    });
    let refused = || Err(AuthError::Refused(Refusal::Malformed));
    let outcome = if by_bridge {
        // The bridge is checked on its own first; only then is the presented key judged.
        let bridge = caller.bridge_caller(&state).await?;
        bridge.require(Permission::KeysVerify)?;
        body?;
        match asked {
            Some(attempt) => state.key_checker.check(&ring, attempt).await,
            None => refused(),
        }
    } else {
        let mut attempts = vec![caller.attempt()];
        attempts.extend(asked);
        let mut outcomes = state
            .key_checker
            .check_all(&ring, attempts)
            .await
            .into_iter();
        let caller_outcome = outcomes.next().unwrap_or_else(refused);
        let caller = caller.into_caller(&state, caller_outcome)?;
        caller.require(Permission::KeysVerify)?;
        body?;
        outcomes.next().unwrap_or_else(refused)
    };
    let answer = match observe(&state, "verify", outcome) {
        Ok(AuthenticatedKey {
            row: key,
            permissions,
            ..
        }) => VerifyAnswer {
            valid: true,
            code: "VALID",
            key: Some(VerifiedKey {
                expires_at: key.expires_at.and_then(|t| {
                    chrono::DateTime::from_timestamp(t, 0)
                        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                }),
                owner: key.owner_name.clone(),
                id: key.id,
                name: key.name,
                key_type: key.key_type,
                permissions,
            }),
        },
        Err(AuthError::Refused(refusal)) => VerifyAnswer {
            valid: false,
            code: refusal.code(),
            key: None,
        },
        Err(AuthError::Throttled { .. }) => VerifyAnswer {
            valid: false,
            code: Refusal::NotFound.code(),
            key: None,
        },
        Err(AuthError::Internal(e)) => return Err(ApiError::from(e).into()),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

/// Checks a verify body's fields; returns the reported client address (empty when none: a key
/// restricted to networks is then refused).
fn checked(body: &VerifyBody) -> Result<String, ApiError> {
    if body.key.len() > 200 {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "key",
            "at most 200 characters",
        ));
    }
    match &body.client_ip {
        Some(ip) if ip.parse::<std::net::IpAddr>().is_err() => Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "client_ip",
            "must be an IPv4 or IPv6 address",
        )),
        Some(ip) => Ok(ip.clone()),
        None => Ok(String::new()),
    }
}
