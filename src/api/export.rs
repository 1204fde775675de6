//! `GET /api/v1/apikeys/export`: the inventory of keys as CSV or JSON, streamed
//! (`service::keys::export`; columns and fields in `docs/export.md`).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::{HttpResponse, web};

use crate::api::error::ErrorBody;
use crate::api::key_filters::key_filter_query;
use crate::api::{ApiCaller, ApiError};
use crate::domain::Permission;
use crate::service::keys::{self, ExportFormat, KeyQuery, KeySort};
use crate::state::AppState;

key_filter_query! {
    /// Query of `GET /api/v1/apikeys/export`: the format and the list's search and filters.
    pub struct ExportQuery {
        /// `csv` or `json`.
        #[serde(default)]
        #[param(required = true)]
        format: String,
    }
}

/// One key in the JSON export (the fields `service::keys::ExportedKey` writes; a test keeps the
/// two in step). Times are RFC 3339 in UTC; `null` for none (`expires_at`: never).
#[derive(utoipa::ToSchema)]
#[schema(as = ExportedKey)]
#[allow(dead_code)] // Describes the streamed objects; never built.
pub struct ExportedKeyDoc {
    id: String,
    name: String,
    /// `access` or `api`.
    #[schema(rename = "type")]
    key_type: String,
    /// The owner's user ID for a personal key; `null` for a tenant key.
    owner_id: Option<String>,
    /// The owner's name for a personal key; `null` for a tenant key.
    owner: Option<String>,
    created_by: String,
    created_at: Option<String>,
    last_rotated_at: Option<String>,
    last_used_at: Option<String>,
    last_used_address: Option<String>,
    /// `null`: never expires.
    expires_at: Option<String>,
    /// `active`, `inactive`, `expired` or `locked`.
    status: String,
    /// Role names.
    roles: Vec<String>,
    /// Group names.
    groups: Vec<String>,
    /// CIDR ranges; empty means anywhere.
    allowed_networks: Vec<String>,
    /// `null` without a limit.
    rate_limit: Option<crate::api::key_view::RateLimitView>,
    /// `in_policy` or `out_of_policy`.
    policy_compliance: String,
    /// What the key breaks; empty in policy.
    policy_findings: Vec<String>,
}

/// GET /api/v1/apikeys/export — every key matching the filters, in key ID order, as a CSV file
/// (header row, RFC 4180) or a JSON array. Streamed: a response cut short (no final chunk) is
/// a failed export, never a complete one.
#[utoipa::path(get, path = "/api/v1/apikeys/export", tag = "keys", params(ExportQuery), responses((status = 200, description = "The keys as CSV (text/csv) or a JSON array of objects with the fields listed in docs/export.md", content((String = "text/csv"), (Vec<ExportedKeyDoc> = "application/json"))), (status = 400, description = "A filter could not be read", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 422, description = "Unknown format", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn export(
    caller: ApiCaller,
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysRead)?;
    let mut q = q.into_inner();
    let format = ExportFormat::parse(&q.format).ok_or_else(|| {
        ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "format",
            "must be csv or json",
        )
    })?;
    let filters = q.filters()?;
    let query = KeyQuery {
        search: filters.search,
        status: filters.status,
        key_type: filters.key_type,
        out_of_policy: filters.out_of_policy,
        usage: filters.usage,
        sort: KeySort::default(),
        descending: None,
        page: 1,
        per_page: 1,
    };
    let export = keys::export(&state.pool, &state.keyring(), &caller.actor, query, format).await?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((CONTENT_DISPOSITION, export.content_disposition()))
        .insert_header((CACHE_CONTROL, "no-store"))
        .streaming(export.body()))
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use crate::service::keys::ExportedKey;

    #[test]
    fn the_documented_fields_are_the_written_ones() {
        let written = serde_json::to_value(ExportedKey {
            id: String::new(),
            name: String::new(),
            key_type: "access",
            owner_id: None,
            owner: None,
            created_by: String::new(),
            created_at: None,
            last_rotated_at: None,
            last_used_at: None,
            last_used_address: None,
            expires_at: None,
            status: "active",
            roles: vec![],
            groups: vec![],
            allowed_networks: vec![],
            rate_limit: crate::domain::RateLimit::new(5.0, Some(10.0)).ok(),
            policy_compliance: "in_policy",
            policy_findings: vec![],
        })
        .unwrap();
        let doc = serde_json::to_value(crate::api::ApiDoc::openapi()).unwrap();
        let documented = &doc["components"]["schemas"]["ExportedKey"]["properties"];
        let names = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(names(documented), names(&written));
        let path = &doc["paths"]["/api/v1/apikeys/export"]["get"]["responses"]["200"]["content"];
        assert!(path.get("text/csv").is_some() && path.get("application/json").is_some());
    }
}
