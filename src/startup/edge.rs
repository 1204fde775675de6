//! The request edge: text that no database can store is refused before routing. PostgreSQL's
//! `text` refuses the NUL character (SQLite stores it), so a NUL in a path segment, a query
//! value, a form field or a JSON string would otherwise reach a query and fail there as a 500.
//! One middleware checks every request, so no handler can forget it: a NUL in the path is a 404
//! (nothing has such a name), anywhere else a 400 naming the field. The sign-in form is the
//! exception: its fields go on to the sign-in, which treats such an email as an unknown account,
//! counted and throttled like any other failure.

use std::sync::LazyLock;

use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header::CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, ResponseError, web};
use memchr::memmem::Finder;

use crate::api::ApiError;
use crate::error::AppError;

/// The largest body the edge reads: the console's form limit (the API's is smaller).
const BODY_LIMIT: usize = 64 * 1024;

/// Paths whose form fields go on to their handler with a NUL in them (see the module comment).
const FORMS_THAT_JUDGE_NUL: [&str; 1] = ["/login"];

/// Where a NUL was found.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    Path,
    Field(String),
}

/// A NUL in the path or query string: the request is answered here (see the module comment).
#[allow(clippy::result_large_err)]
pub fn refusal_before_body(req: ServiceRequest) -> Result<ServiceRequest, ServiceResponse> {
    match in_path_or_query(req.request()) {
        None => Ok(req),
        Some(found) => {
            let (http, _) = req.into_parts();
            let res = refusal(&http, found);
            Err(ServiceResponse::new(http, res))
        }
    }
}

/// A form or JSON body with a NUL in it: the request is answered here. Otherwise the request
/// goes on with its body (read here, up to the limits, when it is one that is checked).
#[allow(clippy::result_large_err)]
pub async fn checked_body(req: ServiceRequest) -> Result<ServiceRequest, ServiceResponse> {
    if !may_carry_body(req.method()) {
        return Ok(req);
    }
    let Some(kind) = body_kind(content_type(req.request())) else {
        return Ok(req);
    };
    let (http, mut payload) = req.into_parts();
    let body = if http.path() == crate::api::SCAN_PATH {
        // GitHub's secret scanning sends up to a thousand findings and more in one request.
        let read = match web::Payload::from_request(&http, &mut payload).await {
            Ok(stream) => stream
                .to_bytes_limited(crate::api::SCAN_BODY_LIMIT)
                .await
                .ok()
                .and_then(Result::ok),
            Err(_) => None,
        };
        match read {
            Some(body) => body,
            None => {
                let res = too_large(&http);
                return Err(ServiceResponse::new(http, res));
            }
        }
    } else {
        match crate::api::read_limited(&http, &mut payload, BODY_LIMIT).await {
            Ok(body) => body,
            Err(_) => {
                let res = too_large(&http);
                return Err(ServiceResponse::new(http, res));
            }
        }
    };
    if !FORMS_THAT_JUDGE_NUL.contains(&http.path())
        && let Some(field) = in_body(kind, &body)
    {
        let res = refusal(&http, Found::Field(field));
        return Err(ServiceResponse::new(http, res));
    }
    Ok(ServiceRequest::from_parts(http, Payload::from(body)))
}

fn may_carry_body(method: &Method) -> bool {
    !(method == Method::GET || method == Method::HEAD || method == Method::OPTIONS)
}

fn content_type(req: &HttpRequest) -> &str {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The bodies the edge reads: forms and JSON are what handlers read; anything else they refuse
/// on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Form,
    Json,
}

/// What kind of checked body a request declares (its `Content-Type`, in any case), if any.
fn body_kind(content_type: &str) -> Option<BodyKind> {
    const FORM: &[u8] = b"application/x-www-form-urlencoded";
    let ct = content_type.as_bytes();
    if ct
        .get(..FORM.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(FORM))
    {
        Some(BodyKind::Form)
    } else if (0..ct.len().saturating_sub(3))
        .any(|i| ct[i] | 0x20 == b'j' && ct[i..i + 4].eq_ignore_ascii_case(b"json"))
    {
        Some(BodyKind::Json)
    } else {
        None
    }
}

/// A NUL in the decoded path or in a query key or value.
fn in_path_or_query(req: &HttpRequest) -> Option<Found> {
    let raw_path = req.uri().path();
    if raw_path.contains('\0') || percent_decodes_to_nul(raw_path.as_bytes()) {
        return Some(Found::Path);
    }
    let query = req.query_string();
    if query.contains('\0') || percent_decodes_to_nul(query.as_bytes()) {
        let field = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()
            .and_then(|pairs| {
                pairs
                    .into_iter()
                    .find(|(k, v)| k.contains('\0') || v.contains('\0'))
                    .map(|(k, _)| k.replace('\0', ""))
            })
            .unwrap_or_else(|| "query".into());
        return Some(Found::Field(field));
    }
    None
}

/// Whether percent-decoding produces a NUL (`%00`, either case of hex digit is moot for zero).
fn percent_decodes_to_nul(raw: &[u8]) -> bool {
    static PERCENT_NUL: LazyLock<Finder> = LazyLock::new(|| Finder::new(b"%00"));
    PERCENT_NUL.find(raw).is_some()
}

/// The field holding a NUL in a form or JSON body, if any. Quick scans first: the usual body
/// has neither a NUL byte nor an escape that could make one, and costs no parsing.
fn in_body(kind: BodyKind, body: &[u8]) -> Option<String> {
    static ESCAPED_NUL: LazyLock<Finder> = LazyLock::new(|| Finder::new(b"\\u0000"));
    let nul = body.contains(&0);
    if kind == BodyKind::Form {
        if !nul && !percent_decodes_to_nul(body) {
            return None;
        }
        let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok()?;
        return pairs
            .into_iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
            .map(|(k, _)| k.replace('\0', ""));
    }
    if !nul && ESCAPED_NUL.find(body).is_none() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    json_field_with_nul(&value, "body")
}

/// The top-level field (or `body`) under which a string or key holds a NUL.
fn json_field_with_nul(value: &serde_json::Value, field: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0').then(|| field.to_string()),
        Value::Array(items) => items.iter().find_map(|v| json_field_with_nul(v, field)),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let name = if field == "body" { k.as_str() } else { field };
            if k.contains('\0') {
                Some(name.replace('\0', ""))
            } else {
                json_field_with_nul(v, name)
            }
        }),
        _ => None,
    }
}

fn is_api(req: &HttpRequest) -> bool {
    req.path().starts_with("/api/")
}

fn refusal(req: &HttpRequest, found: Found) -> actix_web::HttpResponse {
    const MESSAGE: &str = "contains a NUL character, which keyward does not accept";
    match (found, is_api(req)) {
        (Found::Path, true) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Nothing has this name: it contains a NUL character.",
        )
        .error_response(),
        (Found::Path, false) => AppError::NotFound.error_response(),
        (Found::Field(field), true) => {
            ApiError::field(StatusCode::BAD_REQUEST, &field, MESSAGE).error_response()
        }
        (Found::Field(field), false) => AppError::Validation {
            field: "form",
            message: format!("The field “{field}” {MESSAGE}. Remove it and try again."),
        }
        .error_response(),
    }
}

fn too_large(req: &HttpRequest) -> actix_web::HttpResponse {
    if is_api(req) {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "The request body is too large.",
        )
        .error_response()
    } else {
        let mut res = AppError::Validation {
            field: "form",
            message: "The form is too large to be sent.".into(),
        }
        .error_response();
        *res.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        res
    }
}

/// A session that could not be loaded or saved because the database is unreachable is
/// answered like any other request that needs it, with a 503 and `Retry-After` (the API's JSON
/// error under `/api/`, else the console's page), not an empty 500.
pub fn unavailable_as_503(e: actix_web::Error, api: bool) -> actix_web::Error {
    if e.to_string() != crate::auth::session_store::StoreUnavailable.to_string() {
        return e;
    }
    let unavailable = crate::error::AppError::Unavailable(anyhow::Error::new(
        crate::auth::session_store::StoreUnavailable,
    ));
    if api {
        crate::api::ApiError::from(unavailable).into()
    } else {
        unavailable.into()
    }
}

/// The body limit the edge reads with, for the application's payload configuration.
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(BODY_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nul_in_json_strings_and_keys_by_top_level_field() {
        assert_eq!(
            json_field_with_nul(&json!({"name": "a\u{0}b"}), "body").as_deref(),
            Some("name")
        );
        assert_eq!(
            json_field_with_nul(&json!({"role_ids": ["x", "y\u{0}"]}), "body").as_deref(),
            Some("role_ids")
        );
        assert_eq!(
            json_field_with_nul(&json!({"a": {"b\u{0}": 1}}), "body").as_deref(),
            Some("a")
        );
        assert_eq!(json_field_with_nul(&json!({"name": "ok"}), "body"), None);
        assert_eq!(
            json_field_with_nul(&json!("\u{0}"), "body").as_deref(),
            Some("body")
        );
    }

    #[test]
    fn forms_and_json_of_any_spelling_are_the_checked_bodies() {
        for (ct, kind) in [
            ("application/x-www-form-urlencoded", Some(BodyKind::Form)),
            (
                "Application/X-WWW-Form-URLEncoded; charset=utf-8",
                Some(BodyKind::Form),
            ),
            ("application/json", Some(BodyKind::Json)),
            ("application/merge-patch+JSON", Some(BodyKind::Json)),
            ("text/plain", None),
            ("multipart/form-data; boundary=x", None),
            ("jso", None),
            ("", None),
        ] {
            assert_eq!(body_kind(ct), kind, "{ct}");
        }
    }

    #[test]
    fn a_nul_in_a_body_is_found_however_it_is_written() {
        let form = |b: &[u8]| in_body(BodyKind::Form, b);
        let json = |b: &[u8]| in_body(BodyKind::Json, b);
        assert_eq!(form(b"name=a%00b&x=1").as_deref(), Some("name"));
        assert_eq!(form(b"name=a\0b").as_deref(), Some("name"));
        assert_eq!(form(b"name=a%2500b"), None);
        assert_eq!(form(b"name=ab"), None);
        assert_eq!(json(br#"{"key": "a\u0000b"}"#).as_deref(), Some("key"));
        // A raw NUL is not JSON: the handler's reader refuses the body.
        assert_eq!(json(b"{\"key\": \"a\0b\"}"), None);
        // An escaped backslash followed by `u0000` is no NUL.
        assert_eq!(json(br#"{"key": "a\\u0000b"}"#), None);
        assert_eq!(json(br#"{"key": "ab"}"#), None);
    }

    #[test]
    fn percent_encoded_nul_is_seen() {
        assert!(percent_decodes_to_nul(b"/api/v1/apikeys/AK%00"));
        assert!(!percent_decodes_to_nul(b"/api/v1/apikeys/AK%20"));
    }
}
