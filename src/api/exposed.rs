//! Exposed secrets (SPEC §9): `POST /api/v1/apikeys/exposed` for a tenant's own programs, and
//! `POST /api/v1/secret-scanning/github`, GitHub's secret scanning partner protocol.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::api::error::ErrorBody;
use crate::api::{ApiCaller, ApiError};
use crate::auth::scanning_keys::ScanningKeys;
use crate::domain::Permission;
use crate::service::keys::{self, FoundToken};
use crate::state::AppState;

/// Body of `POST /api/v1/apikeys/exposed`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExposedBody {
    /// The secret key that was exposed (`kws_…`). Never stored or logged.
    #[serde(default)]
    secret: Option<String>,
}

/// What was done about an exposed secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExposedAnswer {
    /// The key the secret belongs to.
    id: String,
    /// `locked`, `deactivated` or `recorded` (the key policy's `key_policy.exposure`; always
    /// `recorded` for a replaced secret, which no longer works).
    action: &'static str,
    /// Which of the key's secrets it is: `current`, `previous` (inside a grace period, which
    /// is ended unless the policy only records) or `replaced`.
    secret: &'static str,
}

/// POST /api/v1/apikeys/exposed — report an exposed secret: its key gets the exposure policy.
#[utoipa::path(post, path = "/api/v1/apikeys/exposed", tag = "keys", request_body = ExposedBody, responses((status = 200, description = "The key and what was done", body = ExposedAnswer), (status = 400, description = "The request could not be read", body = ErrorBody), (status = 404, description = "No key has this secret", body = ErrorBody), (status = 422, description = "The secret is missing or not a keyward secret (field `secret`)", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn report(
    caller: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<ExposedBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysWrite)?;
    let secret = body.into_inner().secret.unwrap_or_default();
    let reported = keys::report_exposed(
        &state.pool,
        &state.keyring(),
        &state.settings.public_url,
        &caller.actor,
        &secret,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ExposedAnswer {
            id: reported.key_id,
            action: reported.action.as_str(),
            secret: reported.which.as_str(),
        }))
}

/// Where GitHub's secret scanning posts its findings.
pub const SCAN_PATH: &str = "/api/v1/secret-scanning/github";

/// The largest secret scanning request read: 1,000 findings with long URLs fit several times.
pub const SCAN_BODY_LIMIT: usize = 1024 * 1024;
/// The most findings one request may carry.
pub const SCAN_MAX_TOKENS: usize = 5_000;

/// One finding of GitHub's secret scanning. Fields GitHub may add later are ignored.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ScanFinding {
    /// The string that matched keyward's secret pattern.
    token: String,
    /// The secret type keyward registered with GitHub.
    #[serde(rename = "type")]
    token_type: String,
    /// The public URL where it was found.
    #[serde(default)]
    url: Option<String>,
    /// Where GitHub found it: `content`, `commit`, `pull_request_description`, `npm`, …
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
}

/// keyward's verdict on one finding, as GitHub's partner protocol expects it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScanLabel {
    /// The token as GitHub sent it.
    token_raw: String,
    /// The type as GitHub sent it.
    token_type: String,
    /// `true_positive` for a live keyward secret, `false_positive` otherwise.
    label: &'static str,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn unsigned() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "The request must be signed by one of GitHub's secret scanning keys \
         (Github-Public-Key-Identifier, Github-Public-Key-Signature).",
    )
}

/// POST /api/v1/secret-scanning/github — GitHub's secret scanning partner protocol: a signed
/// JSON array of findings; answers a label per finding. Live secrets get the exposure policy.
#[utoipa::path(post, path = "/api/v1/secret-scanning/github", tag = "secret scanning", request_body = Vec<ScanFinding>, params(("Github-Public-Key-Identifier" = String, Header, description = "Which of GitHub's public keys signed the body"), ("Github-Public-Key-Signature" = String, Header, description = "Base64 of the ASN.1 DER ECDSA P-256 SHA-256 signature of the raw body")), responses((status = 200, description = "A label per finding, in order", body = Vec<ScanLabel>), (status = 400, description = "The body is not a JSON array of findings", body = ErrorBody), (status = 401, description = "Missing or wrong signature, or an unknown key identifier", body = ErrorBody), (status = 404, description = "Secret scanning is not configured (KEYWARD_GITHUB_SCANNING_KEYS unset)", body = ErrorBody), (status = 413, description = "The body is too large", body = ErrorBody), (status = 422, description = "Too many findings or a finding breaks a rule", body = ErrorBody)))]
pub async fn github(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(path) = state.settings.github_scanning_keys.as_deref() else {
        // Not configured: the same answer as a path that does not exist.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("There is no endpoint {} {}.", req.method(), req.path()),
        ));
    };
    // Cheap checks first: the headers, before the body is read or a key file opened.
    let identifier = header(&req, "github-public-key-identifier");
    let signature = header(&req, "github-public-key-signature");
    if identifier.trim().is_empty() || signature.trim().is_empty() {
        tracing::warn!("GitHub scanning request refused: its signature headers are missing");
        return Err(unsigned());
    }
    let body = match payload.to_bytes_limited(SCAN_BODY_LIMIT).await {
        Ok(Ok(body)) => body,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("The body is larger than {SCAN_BODY_LIMIT} bytes."),
            ));
        }
        Ok(Err(e)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("The body could not be read: {e}"),
            ));
        }
    };
    let keys = ScanningKeys::load(path).map_err(|e| {
        crate::error::AppError::Unexpected(anyhow::anyhow!("KEYWARD_GITHUB_SCANNING_KEYS: {e}"))
    })?;
    if let Err(refusal) = keys.verify(identifier, signature, &body) {
        tracing::warn!(reason = refusal.reason(), "secret scanning request refused");
        return Err(unsigned());
    }
    let findings: Vec<ScanFinding> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "The body is not a JSON array of findings ({{\"token\", \"type\", \"url\", \
                 \"source\"}}): {}",
                e.to_string().split(" at line").next().unwrap_or_default()
            ),
        )
    })?;
    if findings.len() > SCAN_MAX_TOKENS {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "token",
            format!("at most {SCAN_MAX_TOKENS} findings per request"),
        ));
    }
    let found: Vec<FoundToken<'_>> = findings
        .iter()
        .map(|f| FoundToken {
            token: &f.token,
            url: f.url.as_deref(),
        })
        .collect();
    let client_ip = crate::auth::client_ip::client_ip(&req);
    let live = keys::report_found(
        &state.pool,
        &state.keyring(),
        &state.settings.public_url,
        &client_ip,
        &found,
    )
    .await?;
    let labels: Vec<ScanLabel> = findings
        .into_iter()
        .zip(live)
        .map(|(f, live)| ScanLabel {
            token_raw: f.token,
            token_type: f.token_type,
            label: if live {
                "true_positive"
            } else {
                "false_positive"
            },
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(labels))
}
