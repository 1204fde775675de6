//! How a key looks in the REST API's answers (`KeyView`, with its owner, last use and rate
//! limit; `KeyWithSecret` for the one answer that carries a new secret) and the rate limit a
//! request may set (`RateLimitBody`).

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{KeyDetails, RateLimit};

pub fn rfc3339(secs: i64) -> Option<String> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The owner of a personal key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Owner {
    id: String,
    name: String,
}

/// The last use of a key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LastUsed {
    at: Option<String>,
    client_ip: String,
    user_agent: String,
}

/// A key's rate limit: a bucket of `burst` requests refilled at `per_second` requests a second.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateLimitView {
    /// Requests per second: 0.01 to 1000000, at most two decimals.
    per_second: f64,
    /// The most requests at once: 1 to 1000000.
    burst: i64,
}

impl RateLimitView {
    fn of(limit: RateLimit) -> Self {
        RateLimitView {
            per_second: limit.per_second,
            burst: limit.burst,
        }
    }
}

/// A rate limit as a request sets it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBody {
    /// Requests per second: 0.01 to 1000000, at most two decimals.
    #[schema(minimum = 0.01, maximum = 1000000)]
    per_second: f64,
    /// The most requests at once: a whole number from 1 to 1000000; absent: the rate rounded
    /// up.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000000)]
    burst: Option<f64>,
}

impl RateLimitBody {
    /// The limit asked for, checked by the rules of limits.
    pub(super) fn asked(
        asked: Option<Self>,
    ) -> Result<Option<RateLimit>, crate::domain::rate_limit::RateLimitError> {
        asked
            .map(|a| RateLimit::new(a.per_second, a.burst))
            .transpose()
    }
}

/// A key as the API describes it. Never carries a stored secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    id: String,
    name: String,
    description: String,
    #[serde(rename = "type")]
    key_type: String,
    owner: Option<Owner>,
    /// `active`, `inactive`, `expired` or `locked`.
    status: &'static str,
    active: bool,
    locked: bool,
    system: bool,
    expires_at: Option<String>,
    created_at: Option<String>,
    created_by: String,
    modified_at: Option<String>,
    modified_by: String,
    last_used: Option<LastUsed>,
    failed_attempts: i64,
    allowed_networks: Vec<String>,
    /// `null` without a limit.
    rate_limit: Option<RateLimitView>,
    group_ids: Vec<String>,
    role_ids: Vec<String>,
    #[serde(serialize_with = "super::permission_list::serialize")]
    permissions: Vec<String>,
}

/// A key with its secret, shown once on creation and regeneration.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyWithSecret {
    #[serde(flatten)]
    pub(super) key: KeyView,
    pub(super) secret_key: String,
    pub(super) tenant_id: String,
}

/// A key's view from its details.
pub fn shape(key: KeyDetails) -> KeyView {
    KeyView {
        status: key.status.as_str(),
        owner: key.owner.map(|o| Owner {
            id: o.id,
            name: o.name,
        }),
        id: key.id,
        name: key.name,
        description: key.description,
        key_type: key.key_type.as_str().to_string(),
        active: key.active,
        locked: key.locked,
        system: key.system,
        expires_at: key.expires_at.and_then(rfc3339),
        created_at: rfc3339(key.created_at),
        created_by: key.created_by,
        modified_at: rfc3339(key.modified_at),
        modified_by: key.modified_by,
        last_used: key.last_used.map(|u| LastUsed {
            at: rfc3339(u.at),
            client_ip: u.client_ip,
            user_agent: u.user_agent,
        }),
        failed_attempts: key.failed_attempts,
        allowed_networks: key.allowed_networks,
        rate_limit: key.rate_limit.map(RateLimitView::of),
        group_ids: key.group_ids,
        role_ids: key.role_ids,
        permissions: key.permissions,
    }
}
