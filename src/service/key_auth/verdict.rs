//! What a key check decides: why a presented key is refused (`Refusal`, and `AuthError` for
//! what the caller is answered), the judgement of a key row against what was presented
//! (`judge`), and a key that passed (`AuthenticatedKey`).

use std::sync::Arc;

use crate::auth::key_auth::PresentedKey;
use crate::domain::KeyStatus;
use crate::domain::networks::network_allows;
use crate::error::AppError;
use crate::service::repo::keys::{AuthRow, KeyRow};

use super::{Keyring, rate_limit};

/// Why a presented key was refused. Callers show one answer for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    Malformed,
    NotFound,
    WrongSecret,
    Inactive,
    Expired,
    Locked,
    OwnerDisabled,
    ForbiddenNetwork,
}

impl Refusal {
    /// The reason as the audit log records it.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed credentials",
            Refusal::NotFound => "unknown key",
            Refusal::WrongSecret => "wrong secret",
            Refusal::Inactive => "key inactive",
            Refusal::Expired => "key expired",
            Refusal::Locked => "key locked",
            Refusal::OwnerDisabled => "owner disabled",
            Refusal::ForbiddenNetwork => "client outside the allowed networks",
        }
    }

    /// The verify endpoint's reason code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Malformed | Refusal::NotFound | Refusal::WrongSecret => "NOT_FOUND",
            Refusal::Inactive | Refusal::OwnerDisabled => "INACTIVE",
            Refusal::Expired => "EXPIRED",
            Refusal::Locked => "LOCKED",
            Refusal::ForbiddenNetwork => "FORBIDDEN_NETWORK",
        }
    }
}

/// Why authentication did not succeed.
#[derive(Debug)]
pub enum AuthError {
    Refused(Refusal),
    /// The client address has failed too often this minute (429).
    Throttled {
        retry_after: i64,
    },
    /// The key passed every check but is over its rate limit (429 from the API,
    /// `RATE_LIMITED` from verify): a token is back in `retry_after_ms`.
    RateLimited {
        retry_after_ms: i64,
        limit: crate::domain::RateLimit,
    },
    Internal(AppError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Internal(e.into())
    }
}

/// Which of a key's secrets a presentation matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUsed {
    Current,
    /// The replaced secret, inside its grace period: good for reading and verification only.
    Previous,
}

/// Whether a presented key passes: its secret (current, or the previous one within its grace
/// period, compared in constant time), then its state, its owner's and its allowed networks.
pub(super) fn judge(
    ring: &Keyring<'_>,
    key: &KeyRow,
    presented: &PresentedKey,
    client_ip: &str,
    now: i64,
) -> Result<SecretUsed, Refusal> {
    let current = ring.hasher.matches(&presented.secret, &key.secret_hash);
    let previous = key.previous_valid_until.is_some_and(|t| t > now)
        && key
            .previous_secret_hash
            .as_deref()
            .is_some_and(|h| ring.hasher.matches(&presented.secret, h));
    let used = match (current, previous) {
        (true, _) => SecretUsed::Current,
        (false, true) => SecretUsed::Previous,
        (false, false) => return Err(Refusal::WrongSecret),
    };
    match KeyStatus::at(key.active != 0, key.locked == 1, key.expires_at, now) {
        KeyStatus::Inactive => Err(Refusal::Inactive),
        KeyStatus::Locked => Err(Refusal::Locked),
        KeyStatus::Expired => Err(Refusal::Expired),
        KeyStatus::Active if key.owner_user_id.is_some() && key.owner_active != Some(1) => {
            Err(Refusal::OwnerDisabled)
        }
        KeyStatus::Active if !network_allows(&key.allowed_networks, client_ip) => {
            Err(Refusal::ForbiddenNetwork)
        }
        KeyStatus::Active => Ok(used),
    }
}

/// A key that passed every check, with the permissions it acts with and its assignments.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey {
    /// The key as its check found it, shared with the key checks' memory.
    pub(super) found: Arc<AuthRow>,
    /// Whether it was presented with its replaced secret, inside the grace period: such a
    /// request may read and verify, never change anything.
    pub previous_secret: bool,
    /// Where its rate limit stands after this presentation; `None` without a limit.
    pub rate: Option<rate_limit::RateState>,
}

impl AuthenticatedKey {
    /// The key's ID.
    pub fn id(&self) -> &str {
        &self.found.key.id
    }

    /// Whether it is a personal key (it acts with its owner's permissions).
    pub fn is_personal(&self) -> bool {
        self.found.key.owner_user_id.is_some()
    }

    /// Its row, for the services only (handlers read `id`, `is_personal` and the details).
    pub(in crate::service) fn row(&self) -> &KeyRow {
        &self.found.key
    }

    /// The key with its permissions and assignments as its check found it.
    pub(in crate::service) fn found(&self) -> &AuthRow {
        &self.found
    }

    /// The permissions it acts with, sorted.
    pub fn permissions(&self) -> &[String] {
        &self.found.permissions
    }

    /// Its own group assignments (tenant keys), sorted.
    pub fn group_ids(&self) -> &[String] {
        &self.found.group_ids
    }

    /// Its own role assignments (tenant keys), sorted.
    pub fn role_ids(&self) -> &[String] {
        &self.found.role_ids
    }

    /// Whether it holds `permission`.
    pub fn holds(&self, permission: crate::domain::Permission) -> bool {
        self.permissions().iter().any(|p| p == permission.as_str())
    }

    /// Whether it acts as an administrator (see `AuthRow::administrator`).
    pub fn administrator(&self) -> bool {
        self.found.administrator
    }
}
