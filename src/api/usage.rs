//! `GET /api/v1/apikeys/{id}/usage`: a key's usage counts (SPEC §10), by hour or UTC day.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::api::error::ErrorBody;
use crate::api::{ApiCaller, ApiError};
use crate::domain::Permission;
use crate::service::key_auth::usage::Outcome;
use crate::service::keys::Scope;
use crate::service::keys::usage::{self as usage, Granularity};
use crate::state::AppState;

/// Query of `GET /api/v1/apikeys/{id}/usage`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start, RFC 3339 or a date (`2026-12-01`, midnight UTC), rounded down to its bucket.
    /// Default: 30 days before `to` by day, 24 hours by hour.
    from: Option<String>,
    /// End (excluded), RFC 3339 or a date, rounded up to its bucket. Default: the end of the
    /// current hour or day.
    to: Option<String>,
    /// `day` (default) or `hour`. At most 400 days, or 31 days of hours, per request.
    granularity: Option<String>,
}

/// One bucket of counts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageBucket {
    /// Start of the bucket, RFC 3339 UTC.
    start: String,
    /// Presentations accepted.
    accepted: i64,
    /// Presentations refused, all reasons.
    refused: i64,
    /// Refusals by reason: `wrong_secret`, `inactive`, `expired`, `locked`, `owner_disabled`,
    /// `forbidden_network`, `rate_limited` (only reasons that happened).
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    refused_by_reason: std::collections::BTreeMap<&'static str, i64>,
}

/// A key's usage over a window.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageAnswer {
    key_id: String,
    /// `hour` or `day`.
    granularity: &'static str,
    /// Start of the first bucket.
    from: String,
    /// End of the last bucket (excluded).
    to: String,
    /// Every bucket of the window, oldest first, zeros included.
    buckets: Vec<UsageBucket>,
    /// Sums over the window.
    total_accepted: i64,
    total_refused: i64,
}

fn rfc3339(secs: i64) -> String {
    crate::clock::rfc3339(secs).unwrap_or_default()
}

/// An instant given as RFC 3339 or as a date (midnight UTC).
fn instant(field: &str, raw: &str) -> Result<i64, ApiError> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp());
    }
    Err(ApiError::field(
        actix_web::http::StatusCode::BAD_REQUEST,
        field,
        format!(
            "“{raw}” is not an RFC 3339 date-time (2026-12-01T00:00:00Z) or a date (2026-12-01)."
        ),
    ))
}

/// GET /api/v1/apikeys/{id}/usage — the key's accepted and refused presentations per hour or
/// UTC day. Counts reach the database in batches, at most a minute behind.
#[utoipa::path(get, path = "/api/v1/apikeys/{id}/usage", tag = "keys", params(("id" = String, Path, description = "Key ID"), UsageQuery), responses((status = 200, description = "OK", body = UsageAnswer), (status = 400, description = "A bound or the granularity could not be read", body = ErrorBody), (status = 404, description = "No such key", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 422, description = "The window is empty or too long", body = ErrorBody), (status = 429, description = "Too many failures from this address", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn usage(
    caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysRead)?;
    let q = q.into_inner();
    let granularity = match q.granularity.as_deref().map(str::trim) {
        None | Some("") => Granularity::Day,
        Some(raw) => Granularity::parse(raw).ok_or_else(|| {
            ApiError::field(
                actix_web::http::StatusCode::BAD_REQUEST,
                "granularity",
                "must be hour or day",
            )
        })?,
    };
    let to = match q.to.as_deref() {
        Some(raw) if !raw.trim().is_empty() => instant("to", raw)?,
        // The current hour or day included.
        _ => granularity.start_of(state.clock.unix()) + granularity.seconds(),
    };
    let from = match q.from.as_deref() {
        Some(raw) if !raw.trim().is_empty() => instant("from", raw)?,
        _ => match granularity {
            Granularity::Day => to - 30 * 86_400,
            Granularity::Hour => to - 24 * 3_600,
        },
    };
    let window = usage::window(from, to, granularity).map_err(|e| {
        ApiError::field(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            e.field,
            e.message,
        )
    })?;
    let mut conn = state.pool.acquire().await?;
    let found = usage::usage(
        &mut conn,
        &caller.actor,
        Scope::Tenant,
        &id,
        window,
        granularity,
    )
    .await?;
    let total = found.total();
    let answer = UsageAnswer {
        key_id: found.key_id,
        granularity: granularity.as_str(),
        from: rfc3339(found.from),
        to: rfc3339(found.to),
        buckets: found
            .buckets
            .into_iter()
            .map(|b| UsageBucket {
                start: rfc3339(b.start),
                accepted: b.accepted,
                refused: b.refused_total(),
                refused_by_reason: b
                    .refused
                    .iter()
                    .map(|(o, n)| (Outcome::as_str(*o), *n))
                    .collect(),
            })
            .collect(),
        total_accepted: total.accepted,
        total_refused: total.refused_total(),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}
