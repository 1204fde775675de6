//! The Access keys tab's Download menu: `/user-access/keys/export?format=csv|json&<filters>`,
//! the same file as `GET /api/v1/apikeys/export`, read through `service::keys::export`.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::domain::{KeyStatus, KeyType};
use crate::error::AppError;
use crate::service::keys::{self, ExportFormat, KeyQuery, KeySort, UsageFilter, UsageParams};
use crate::state::AppState;
use crate::web::granted::Signed;

/// Query of the download: the format and the list's search and filters. Like the list, a
/// filter value it does not know reads as not given; an unknown format is refused.
#[derive(Deserialize, Default)]
pub struct ExportQuery {
    #[serde(default)]
    format: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    key_type: String,
    #[serde(default)]
    expires_within: String,
    #[serde(default)]
    never_used: String,
    #[serde(default)]
    unused_for: String,
    #[serde(default)]
    refused_for: String,
    #[serde(default)]
    refused_within: String,
}

/// GET the export file.
pub async fn download<A: Signed>(
    who: A,
    state: web::Data<AppState>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let format = ExportFormat::parse(&q.format).ok_or_else(|| AppError::Validation {
        field: "format",
        message: "The export format must be CSV or JSON.".into(),
    })?;
    let query = KeyQuery {
        search: q.q.chars().take(100).collect(),
        status: KeyStatus::parse(&q.status),
        key_type: KeyType::parse(&q.key_type),
        out_of_policy: q.status == "out_of_policy",
        usage: UsageFilter::lenient(UsageParams {
            expires_within: &q.expires_within,
            never_used: &q.never_used,
            unused_for: &q.unused_for,
            refused_for: &q.refused_for,
            refused_within: &q.refused_within,
        }),
        sort: KeySort::default(),
        descending: None,
        page: 1,
        per_page: 1,
    };
    let export = keys::export(
        &state.pool,
        &state.keyring(),
        &who.user().actor(),
        query,
        format,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((CONTENT_DISPOSITION, export.content_disposition()))
        .insert_header((CACHE_CONTROL, "no-store"))
        .streaming(export.body()))
}
