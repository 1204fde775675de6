//! Error pages: one template for every status, the cause logged and never shown.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::error::AppError;
use crate::web::asset_url;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
    css: String,
}

fn page(status: StatusCode, title: &'static str, message: impl Into<String>) -> HttpResponse {
    let body = ErrorPage {
        status: status.as_u16(),
        title,
        message: message.into(),
        css: asset_url("app.css"),
    }
    .render()
    .unwrap_or_else(|_| format!("{} {}", status.as_u16(), title));
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// Response when a template fails to render (a bug): logged, generic page.
pub fn render_failure(e: &askama::Error) -> HttpResponse {
    tracing::error!(error = %e, "template rendering failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "keyward could not show this page. The error has been logged; try again in a moment.",
    )
}

/// A 400 page for input that could not be read at all.
pub fn bad_request(detail: &str) -> AppError {
    tracing::info!(detail, "unreadable request input");
    AppError::invalid(
        "request",
        "The form or link could not be read. Go back and try again.",
    )
}

/// The fallback for unknown paths.
pub async fn not_found(_req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::SignInRequired { next } => sign_in_first(next),
            AppError::SecondFactorRequired => HttpResponse::SeeOther()
                .insert_header(("Location", "/account/security"))
                .insert_header(("Cache-Control", "no-store"))
                .finish(),
            AppError::Validation { message, .. } => page(
                StatusCode::BAD_REQUEST,
                "That request could not be used",
                message.clone(),
            ),
            AppError::NotFound => page(
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address. Check the link, or go back to the console.",
            ),
            AppError::Gone(message) => page(StatusCode::NOT_FOUND, "Not found", *message),
            AppError::Forbidden => page(
                StatusCode::FORBIDDEN,
                "You do not have access to this page",
                "Your roles do not allow this. Ask an administrator if you need access.",
            ),
            AppError::MissingPermission(permission) => page(
                StatusCode::FORBIDDEN,
                "You do not have access to this page",
                format!(
                    "You need the {permission} permission for this. Ask an administrator if you \
                     need access."
                ),
            ),
            AppError::Denied(message) => page(
                StatusCode::FORBIDDEN,
                "That is not allowed",
                message.clone(),
            ),
            AppError::Csrf => page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was not sent from this console or your session changed since it was opened. \
                 Go back, reload the page and try again.",
            ),
            AppError::Conflict(message) => {
                page(StatusCode::CONFLICT, "That cannot be done", message.clone())
            }
            AppError::Unauthorized => page(
                StatusCode::UNAUTHORIZED,
                "Sign in required",
                "Sign in to continue.",
            ),
            AppError::TooManyRequests { retry_after } => too_many_attempts(*retry_after),
            AppError::RateLimited { retry_after_ms, .. } => {
                too_many_attempts(crate::domain::rate_limit::retry_after_secs(*retry_after_ms))
            }
            AppError::Unavailable(e) => {
                tracing::error!(error = ?e, "request failed: the database is unavailable");
                database_unavailable()
            }
            AppError::Unexpected(e) => {
                tracing::error!(error = ?e, "request failed");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "keyward could not complete this request. The error has been logged; try again in a moment.",
                )
            }
        }
    }
}

/// The way to the sign-in page, coming back to `next` afterwards.
fn sign_in_first(next: &str) -> HttpResponse {
    let location = if next == "/" || next.is_empty() {
        "/login".to_string()
    } else {
        format!("/login?next={}", urlencode(next))
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// The 429 page, with `Retry-After`.
fn too_many_attempts(retry_after: u64) -> HttpResponse {
    let mut res = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        format!("Wait {} and try again.", wait_phrase(retry_after as i64)),
    );
    if let Ok(v) = retry_after.to_string().parse() {
        res.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, v);
    }
    res
}

/// The 503 page while the database does not answer, with `Retry-After`.
fn database_unavailable() -> HttpResponse {
    let mut res = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "keyward cannot reach its database",
        "The database is not answering just now; try again in a moment. If this lasts, check \
         that the database server is running.",
    );
    res.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        crate::error::UNAVAILABLE_RETRY_AFTER.into(),
    );
    res
}

/// "3 minutes", "1 minute", "45 seconds".
pub fn wait_phrase(secs: i64) -> String {
    if secs >= 60 {
        let m = (secs + 59) / 60;
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    } else {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    }
}

/// Percent-encodes a path for a query parameter.
pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').to_string())
        .unwrap_or_default()
}
