//! JSON errors: `{"error": {"code": "...", "message": "...", "field": "..."}}` with the right
//! status, for every failure, including bodies that cannot be read.

use actix_web::http::StatusCode;
use actix_web::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, ResponseError, error::JsonPayloadError, web};
use serde::Serialize;

use crate::error::AppError;

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<i64>,
    /// Further headers (the rate-limit headers of a key over its limit).
    pub headers: Vec<(actix_web::http::header::HeaderName, String)>,
}

impl ApiError {
    /// A failure with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// Bad input in a named field.
    pub fn field(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            code: if status == StatusCode::BAD_REQUEST {
                "bad_request"
            } else {
                "invalid"
            },
            message: format!("{field}: {message}"),
            field: Some(field.to_string()),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// The one answer to every refused key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid access key is required: send Authorization: Basic base64(<key ID>:<secret>) or Bearer <key ID>::<secret>.",
        )
    }

    /// Too many failed authentications from this client.
    pub fn throttled(retry_after: i64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!(
                "Too many failed authentications from this address; try again in {retry_after} seconds."
            ),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// The calling key is over its rate limit: 429 with `Retry-After` (seconds, rounded up)
    /// and the rate-limit headers.
    pub fn rate_limited(retry_after_ms: i64, limit: crate::domain::RateLimit) -> Self {
        let secs = crate::domain::rate_limit::retry_after_secs(retry_after_ms) as i64;
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!(
                "This key is over its rate limit ({}); try again in {secs} second{}.",
                crate::domain::RateLimit::describe(Some(limit)),
                if secs == 1 { "" } else { "s" }
            ),
        );
        e.retry_after = Some(secs);
        e.headers = super::rate_limit::headers(limit, 0, secs).into();
        e
    }
}

/// Every error answer of the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code such as `unauthorized`, `bad_request`, `invalid`, `not_found`, `conflict`.
    code: String,
    /// A sentence for people.
    message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header(("Cache-Control", "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((
                WWW_AUTHENTICATE,
                "Basic realm=\"keyward\", charset=\"UTF-8\"",
            ));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((RETRY_AFTER, secs.to_string()));
        }
        for (name, value) in &self.headers {
            res.insert_header((name.clone(), value.as_str()));
        }
        res.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        })
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation { field, message } => {
                ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message)
            }
            AppError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such key."),
            AppError::Gone(message) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            AppError::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "The calling key lacks the permission this needs.",
            ),
            AppError::MissingPermission(permission) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("The calling key lacks the {permission} permission this needs."),
            ),
            AppError::Denied(message) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            AppError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            AppError::Unauthorized
            | AppError::SignInRequired { .. }
            | AppError::SecondFactorRequired
            | AppError::Csrf => ApiError::unauthorized(),
            AppError::TooManyRequests { retry_after } => ApiError::throttled(retry_after as i64),
            AppError::RateLimited {
                retry_after_ms,
                limit,
            } => ApiError::rate_limited(retry_after_ms, limit),
            AppError::Unavailable(e) => {
                tracing::error!(error = ?e, "API request failed: the database is unavailable");
                let mut error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "keyward cannot reach its database just now; try again shortly.",
                );
                error.retry_after = Some(crate::error::UNAVAILABLE_RETRY_AFTER as i64);
                error
            }
            AppError::Unexpected(e) => {
                tracing::error!(error = ?e, "API request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "keyward could not complete the request; it has been logged.",
                )
            }
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        AppError::from(e).into()
    }
}

/// The field a serde message names (`unknown field `x``, `missing field `x``, `invalid type … at line`).
fn field_of(message: &str) -> Option<String> {
    for marker in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

/// Bodies that are not JSON, too large, or of the wrong shape get a 400 (413 when too large)
/// naming the field where serde can tell.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(super::BODY_LIMIT)
        .error_handler(|err, _req| json_error(&err).into())
}

/// What a JSON body that cannot be taken says.
pub(super) fn json_error(err: &JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("The body is larger than {} bytes.", super::BODY_LIMIT),
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
        JsonPayloadError::Deserialize(de) => {
            let message = de.to_string();
            match field_of(&message) {
                Some(field) => ApiError::field(StatusCode::BAD_REQUEST, &field, message),
                None => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("The body is not valid for this request: {message}"),
                ),
            }
        }
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("The body could not be read: {other}"),
        ),
    }
}

/// Query strings that cannot be read.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let message = err.to_string();
        match field_of(&message) {
            Some(field) => ApiError::field(StatusCode::BAD_REQUEST, &field, message),
            None => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("The query string is not valid: {message}"),
            ),
        }
        .into()
    })
}

/// Path segments that cannot be read.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string()).into()
    })
}

/// Unknown API paths and methods.
pub async fn no_such_endpoint(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("There is no endpoint {} {}.", req.method(), req.path()),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            super::field_of("unknown field `nmae`, expected one of `name`").as_deref(),
            Some("nmae")
        );
        assert_eq!(
            super::field_of("missing field `name` at line 1").as_deref(),
            Some("name")
        );
        assert_eq!(super::field_of("expected value at line 1 column 2"), None);
    }
}
