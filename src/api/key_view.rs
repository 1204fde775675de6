//! How a key looks in the REST API's answers (`KeyView`, with its owner, last use and rate
//! limit; `KeyWithSecret` for the one answer that carries a new secret) and the rate limit a
//! request may set (`RateLimitBody`).

use serde::{Deserialize, Serialize};

use super::json_text::Object;
use crate::domain::{KeyDetails, RateLimit};

use crate::clock::rfc3339;

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

impl KeyView {
    /// The view as its `Serialize` writes it (compact), written directly (see `json_text`):
    /// every answer that is one key (`GET /api/v1/apikeys/current` on every call).
    pub fn json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let mut o = Object::begin(&mut out);
        o.str("id", &self.id);
        o.str("name", &self.name);
        o.str("description", &self.description);
        o.str("type", &self.key_type);
        match &self.owner {
            Some(owner) => {
                let mut w = Object::begin(o.member("owner"));
                w.str("id", &owner.id);
                w.str("name", &owner.name);
                w.end();
            }
            None => o.null("owner"),
        }
        o.str("status", self.status);
        o.bool("active", self.active);
        o.bool("locked", self.locked);
        o.bool("system", self.system);
        o.opt_str("expires_at", self.expires_at.as_deref());
        o.opt_str("created_at", self.created_at.as_deref());
        o.str("created_by", &self.created_by);
        o.opt_str("modified_at", self.modified_at.as_deref());
        o.str("modified_by", &self.modified_by);
        match &self.last_used {
            Some(used) => {
                let mut u = Object::begin(o.member("last_used"));
                u.opt_str("at", used.at.as_deref());
                u.str("client_ip", &used.client_ip);
                u.str("user_agent", &used.user_agent);
                u.end();
            }
            None => o.null("last_used"),
        }
        o.int("failed_attempts", self.failed_attempts);
        o.strings("allowed_networks", &self.allowed_networks);
        match &self.rate_limit {
            Some(limit) => {
                let mut l = Object::begin(o.member("rate_limit"));
                l.float("per_second", limit.per_second);
                l.int("burst", limit.burst);
                l.end();
            }
            None => o.null("rate_limit"),
        }
        o.strings("group_ids", &self.group_ids);
        o.strings("role_ids", &self.role_ids);
        o.permissions("permissions", &self.permissions);
        o.end();
        out
    }

    /// The answer that is this view.
    pub fn answer(&self, mut answer: actix_web::HttpResponseBuilder) -> actix_web::HttpResponse {
        answer
            .content_type(actix_web::http::header::ContentType::json())
            .body(self.json())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn view(odd: &str, full: bool) -> KeyView {
        let text = |s: &str| format!("{s}{odd}");
        KeyView {
            id: text("AK0123"),
            name: text("name"),
            description: text("description"),
            key_type: "tenant".into(),
            owner: full.then(|| Owner {
                id: text("u1"),
                name: text("Ann"),
            }),
            status: "active",
            active: full,
            locked: !full,
            system: full,
            expires_at: full.then(|| "2026-12-04T10:00:00Z".into()),
            created_at: Some("2026-01-01T00:00:00Z".into()),
            created_by: text("admin@example.com"),
            modified_at: full.then(|| "2026-02-01T00:00:00Z".into()),
            modified_by: text(""),
            last_used: full.then(|| LastUsed {
                at: None,
                client_ip: "2001:db8::1".into(),
                user_agent: text("curl/8.5"),
            }),
            failed_attempts: if full { 3 } else { 0 },
            allowed_networks: if full {
                vec!["10.0.0.0/8".into(), text("::1/128")]
            } else {
                Vec::new()
            },
            rate_limit: full.then_some(RateLimitView {
                per_second: 0.25,
                burst: 1_000_000,
            }),
            group_ids: if full { vec![text("g1")] } else { Vec::new() },
            role_ids: vec![text("r1"), "r2".into()],
            permissions: if full {
                vec!["keys:read".into(), "keys:verify".into()]
            } else {
                vec![text("not:known"), "keys:read".into()]
            },
        }
    }

    #[test]
    fn the_written_view_is_what_serde_writes() {
        for odd in ["", "\"", "\\", "\n", "\u{1}", "é🔑", "\u{7f}"] {
            for full in [true, false] {
                let v = view(odd, full);
                assert_eq!(
                    String::from_utf8(v.json()).unwrap(),
                    serde_json::to_string(&v).unwrap(),
                    "{odd:?} {full}"
                );
            }
        }
        for per_second in [1_000_000.0, 1.0, 0.01, 12.5] {
            let mut v = view("", true);
            v.rate_limit = Some(RateLimitView {
                per_second,
                burst: 1,
            });
            assert_eq!(v.json(), serde_json::to_vec(&v).unwrap());
        }
    }
}
