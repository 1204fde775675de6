//! `POST /api/v1/verify`: a downstream service asks whether a key presented to it is valid.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, ContentType, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::api::body::json_body;
use crate::api::error::ErrorBody;
use crate::api::extract::credentials;
use crate::api::json_text::Object;
use crate::api::permission_list::PermissionList;
use crate::service::key_auth::{self, VerifyQuestion};
use crate::state::AppState;

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
pub struct VerifiedKey<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    key_type: &'static str,
    owner: Option<&'a str>,
    #[schema(value_type = Vec<String>)]
    permissions: PermissionList<'a>,
    expires_at: Option<String>,
}

/// The answer: `valid`, a reason `code`, and the key when valid.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyAnswer<'a> {
    valid: bool,
    /// `VALID`, `NOT_FOUND`, `EXPIRED`, `INACTIVE`, `LOCKED`, `FORBIDDEN_NETWORK` or
    /// `RATE_LIMITED` (the presented key is over its rate limit).
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<VerifiedKey<'a>>,
    /// With `RATE_LIMITED`: milliseconds until the key may be presented again.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<i64>,
}

impl VerifyAnswer<'_> {
    /// The answer as its `Serialize` writes it (compact), written directly (see `json_text`).
    fn json(&self) -> Vec<u8> {
        // Room for the usual answer (a few hundred bytes).
        let mut out = Vec::with_capacity(512);
        let mut o = Object::begin(&mut out);
        o.bool("valid", self.valid);
        o.str("code", self.code);
        if let Some(key) = &self.key {
            let mut k = Object::begin(o.member("key"));
            k.str("id", key.id);
            k.str("name", key.name);
            k.str("type", key.key_type);
            k.opt_str("owner", key.owner);
            k.permissions("permissions", key.permissions.0);
            k.opt_str("expires_at", key.expires_at.as_deref());
            k.end();
        }
        if let Some(ms) = self.retry_after_ms {
            o.int("retry_after_ms", ms);
        }
        o.end();
        out
    }
}

/// POST /api/v1/verify
#[utoipa::path(post, path = "/api/v1/verify", tag = "verify", request_body = VerifyBody, responses((status = 200, description = "OK", body = VerifyAnswer), (status = 400, description = "The request could not be read", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "The caller lacks keys:verify", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (`RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body::<VerifyBody>(&req, payload).await.and_then(|b| {
        let client_ip = checked(&b)?;
        Ok((b.key, client_ip))
    });
    let question = body
        .as_ref()
        .ok()
        .map(|(key, client_ip)| VerifyQuestion { key, client_ip });
    // The caller is judged before the body: a stranger learns nothing from a bad one.
    let answer = key_auth::verify(
        &state.key_checker,
        &state.keyring(),
        &state.metrics,
        credentials(&req),
        question,
    )
    .await
    .map_err(ApiError::from)?;
    let Some(answer) = answer else {
        return Err(body.err().unwrap_or_else(|| {
            ApiError::from(crate::error::AppError::Unexpected(anyhow::anyhow!(
                "a verify question went unanswered"
            )))
        }));
    };
    let answer = VerifyAnswer {
        valid: answer.valid,
        code: answer.code,
        retry_after_ms: answer.retry_after_ms,
        key: answer.key.as_ref().map(|key| VerifiedKey {
            expires_at: key.expires_at().and_then(crate::clock::rfc3339),
            owner: key.owner(),
            id: key.id(),
            name: key.name(),
            key_type: key.key_type().as_str(),
            permissions: PermissionList(key.permissions()),
        }),
    };
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .content_type(ContentType::json())
        .body(answer.json()))
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
    // Written as the address reads canonically (`0::1` is `::1`), so one client is one
    // client in the audit log, the last used addresses and the refusals' budget.
    match &body.client_ip {
        Some(ip) => match ip.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(ip.to_string()),
            Err(_) => Err(ApiError::field(
                StatusCode::BAD_REQUEST,
                "client_ip",
                "must be an IPv4 or IPv6 address",
            )),
        },
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_answer_is_what_serde_writes() {
        let known = ["keys:read".to_string(), "keys:verify".to_string()];
        let unknown = ["z:odd\"".to_string(), "keys:read".to_string()];
        for odd in ["", "\"", "\\", "\u{1}", "é🔑"] {
            let id = format!("AK1{odd}");
            let name = format!("name{odd}");
            for permissions in [&known[..], &unknown[..], &[]] {
                for (owner, expires_at) in [
                    (None, None),
                    (Some(name.as_str()), Some("2026-12-04T10:00:00Z")),
                ] {
                    let answer = VerifyAnswer {
                        valid: true,
                        code: "VALID",
                        key: Some(VerifiedKey {
                            id: &id,
                            name: &name,
                            key_type: "personal",
                            owner,
                            permissions: PermissionList(permissions),
                            expires_at: expires_at.map(String::from),
                        }),
                        retry_after_ms: None,
                    };
                    assert_eq!(answer.json(), serde_json::to_vec(&answer).unwrap());
                }
            }
        }
        for retry_after_ms in [None, Some(0), Some(1500)] {
            let answer = VerifyAnswer {
                valid: false,
                code: "RATE_LIMITED",
                key: None,
                retry_after_ms,
            };
            assert_eq!(answer.json(), serde_json::to_vec(&answer).unwrap());
        }
    }
}
