//! One error type for the whole application; `web/` renders it as a page, `api/` as JSON.

use actix_web::http::StatusCode;

/// What went wrong, in terms a handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input that breaks a rule, named by its field.
    #[error("{field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// A named thing that does not exist (any more), with a message saying so.
    #[error("{0}")]
    Gone(&'static str),
    /// Signed in, but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// Signed in, but without the permission this needs (SPEC §7); the answer names it.
    #[error("missing the {0} permission")]
    MissingPermission(crate::domain::Permission),
    /// Not allowed, with a message that says why (a rule of who may do what, not a missing
    /// permission).
    #[error("{0}")]
    Denied(String),
    /// The request conflicts with the current state (a limit, a duplicate, a protected item).
    #[error("{0}")]
    Conflict(String),
    /// Credentials missing or wrong.
    #[error("unauthorized")]
    Unauthorized,
    /// A page that needs a signed-in user was asked for anonymously; `next` is where to return.
    #[error("sign-in required")]
    SignInRequired { next: String },
    /// The tenant's policy asks the signed-in person for a second factor they do not have yet:
    /// only the enrolment pages open (a 303 to `/account/security`).
    #[error("a second factor is required")]
    SecondFactorRequired,
    /// Too many attempts; try again after this many seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// The calling key is over its rate limit (SPEC §10): a token is back in `retry_after_ms`.
    #[error("over the key's rate limit")]
    RateLimited {
        retry_after_ms: i64,
        limit: crate::domain::RateLimit,
    },
    /// A state-changing request without a valid CSRF token.
    #[error("missing or invalid CSRF token")]
    Csrf,
    /// The database cannot be reached (down, restarting, every connection busy): worth trying
    /// again shortly (503 with `Retry-After`). The cause is logged, never shown.
    #[error("the database is unavailable: {0}")]
    Unavailable(anyhow::Error),
    /// Anything else; the cause is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A permission the actor lacks (`Actor::require`) is refused naming it.
impl From<crate::domain::Missing> for AppError {
    fn from(missing: crate::domain::Missing) -> Self {
        AppError::MissingPermission(missing.0)
    }
}

/// Seconds a client is asked to wait when the database cannot be reached.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 5;

impl AppError {
    /// The HTTP status that fits.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::NotFound | AppError::Gone(_) => StatusCode::NOT_FOUND,
            AppError::Forbidden
            | AppError::MissingPermission(_)
            | AppError::Denied(_)
            | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::SignInRequired { .. } | AppError::SecondFactorRequired => {
                StatusCode::SEE_OTHER
            }
            AppError::TooManyRequests { .. } | AppError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A validation error for one field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation {
            field,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    /// Errors of reaching the database (no connection within the pool's timeout, a closed
    /// pool, a broken socket or TLS session) are `Unavailable`; anything the database said
    /// about a query is `Unexpected`.
    fn from(e: sqlx::Error) -> Self {
        let unreachable = is_unreachable(&e);
        let e = anyhow::Error::new(e).context("database");
        if unreachable {
            AppError::Unavailable(e)
        } else {
            AppError::Unexpected(e)
        }
    }
}

/// Whether an error says the database could not be reached, rather than refusing a query.
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    )
}

/// Result with `AppError`.
pub type AppResult<T> = Result<T, AppError>;
