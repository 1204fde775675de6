//! The search and filters that the key list (`GET /api/v1/apikeys`, `/api/v1/me/keys`) and the
//! export (`GET /api/v1/apikeys/export`) share: declared once, checked once.

use actix_web::http::StatusCode;

use crate::api::ApiError;
use crate::domain::{KeyStatus, KeyType};
use crate::service::keys::{UsageFilter, UsageParams};

/// Declares a query struct with the list's search and filters and then the fields given, refusing
/// any other parameter (`deny_unknown_fields` does not mix with serde's `flatten`, hence a
/// macro rather than a shared struct).
macro_rules! key_filter_query {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* $field:ident : $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Deserialize, utoipa::IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// Part of the name, or the start of the key ID.
            #[serde(default)]
            q: String,
            /// `active`, `inactive`, `expired` or `locked`; or `out_of_policy`: keys the key
            /// policy no longer allows (they never expire, or expire later than its limit from
            /// today).
            #[serde(default)]
            status: String,
            /// `access` or `api`.
            #[serde(default, rename = "type")]
            #[param(rename = "type")]
            key_type: String,
            /// Keys not yet expired that expire within this many days (1 to 3650).
            #[serde(default)]
            #[param(value_type = Option<i64>)]
            expires_within: String,
            /// `true`: keys never used (never accepted).
            #[serde(default)]
            #[param(value_type = Option<bool>)]
            never_used: String,
            /// Keys used before, but not in this many days (1 to 3650).
            #[serde(default)]
            #[param(value_type = Option<i64>)]
            unused_for: String,
            /// Keys refused lately for this reason (`wrong_secret`, `inactive`, `expired`,
            /// `locked`, `owner_disabled`, `forbidden_network`, `rate_limited`), or `any`.
            #[serde(default)]
            refused_for: String,
            /// The window of `refused_for` in days (1 to 3650; 7 by default).
            #[serde(default)]
            #[param(value_type = Option<i64>)]
            refused_within: String,
            $($(#[$field_meta])* $field: $ty,)*
        }

        impl $name {
            /// The search and filters, checked (a `400` naming the parameter otherwise).
            fn filters(
                &mut self,
            ) -> Result<$crate::api::key_filters::KeyFilters, $crate::api::ApiError> {
                $crate::api::key_filters::KeyFilters::check(
                    std::mem::take(&mut self.q),
                    &self.status,
                    &self.key_type,
                    $crate::service::keys::UsageParams {
                        expires_within: &self.expires_within,
                        never_used: &self.never_used,
                        unused_for: &self.unused_for,
                        refused_for: &self.refused_for,
                        refused_within: &self.refused_within,
                    },
                )
            }
        }
    };
}
pub(crate) use key_filter_query;

/// The list's search and filters, checked.
pub struct KeyFilters {
    pub search: String,
    pub status: Option<KeyStatus>,
    pub key_type: Option<KeyType>,
    pub out_of_policy: bool,
    pub usage: UsageFilter,
}

impl KeyFilters {
    pub fn check(
        search: String,
        status: &str,
        key_type: &str,
        usage: UsageParams<'_>,
    ) -> Result<Self, ApiError> {
        let bad =
            |field: &str, message: &str| ApiError::field(StatusCode::BAD_REQUEST, field, message);
        let out_of_policy = status == "out_of_policy";
        let status = match status {
            "" | "out_of_policy" => None,
            raw => Some(KeyStatus::parse(raw).ok_or_else(|| {
                bad(
                    "status",
                    "must be active, inactive, expired, locked or out_of_policy",
                )
            })?),
        };
        let key_type = match key_type {
            "" => None,
            raw => Some(KeyType::parse(raw).ok_or_else(|| bad("type", "must be access or api"))?),
        };
        if search.chars().count() > 100 {
            return Err(bad("q", "at most 100 characters"));
        }
        let usage = UsageFilter::parse(usage)
            .map_err(|e| ApiError::field(StatusCode::BAD_REQUEST, e.field, e.message))?;
        Ok(KeyFilters {
            search,
            status,
            key_type,
            out_of_policy,
            usage,
        })
    }
}
