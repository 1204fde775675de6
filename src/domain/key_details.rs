//! A key as the screens and the API show it: its facts, its state when read, its assignments
//! and the permissions it acts with. Never carries a stored secret.

use crate::domain::{KeyStatus, KeyType};

/// A key as a screen or the API shows it.
#[derive(Debug, Clone)]
pub struct KeyDetails {
    pub id: String,
    pub name: String,
    pub description: String,
    pub key_type: KeyType,
    /// The owner of a personal key; `None` for a tenant key.
    pub owner: Option<KeyOwner>,
    pub status: KeyStatus,
    pub active: bool,
    pub locked: bool,
    /// Named `<tenant ID>@…`: managed by keyward, never regenerated or deleted.
    pub system: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub modified_at: i64,
    pub modified_by: String,
    pub last_used: Option<LastUse>,
    pub failed_attempts: i64,
    /// CIDR ranges the key may be used from; empty: anywhere.
    pub allowed_networks: Vec<String>,
    /// Its rate limit; `None`: no limit.
    pub rate_limit: Option<crate::domain::RateLimit>,
    /// When its secret was last replaced; `None` while it has its first.
    pub secret_regenerated_at: Option<i64>,
    /// Until when the replaced secret still works, while it does.
    pub grace_until: Option<i64>,
    /// Who made it inactive, while it is.
    pub deactivated_by: Option<DecidedBy>,
    /// Who locked it, while it is locked.
    pub locked_by: Option<DecidedBy>,
    /// The key's own group and role assignments (tenant keys), sorted.
    pub group_ids: Vec<String>,
    pub role_ids: Vec<String>,
    /// What the key may do, sorted: exactly what a key check grants it.
    pub permissions: Vec<String>,
}

impl KeyDetails {
    /// Whether it is a personal key (it acts with its owner's permissions).
    pub fn is_personal(&self) -> bool {
        self.owner.is_some()
    }

    /// The owner's user ID, for a personal key.
    pub fn owner_id(&self) -> Option<&str> {
        self.owner.as_ref().map(|o| o.id.as_str())
    }
}

/// The person a personal key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub id: String,
    pub name: String,
}

/// A key's last accepted use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUse {
    pub at: i64,
    pub client_ip: String,
    pub user_agent: String,
}

/// Who deactivated or locked a key: its owner, an administrator, or the lockout after wrong
/// secrets in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    Owner,
    Administrator,
    Lockout,
    /// The key policy's inactivity rule (either the owner or an administrator may reactivate).
    Inactivity,
}

impl DecidedBy {
    /// Reads the stored form (`owner`, `administrator` or `lockout`).
    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "owner" => Some(DecidedBy::Owner),
            "administrator" => Some(DecidedBy::Administrator),
            "lockout" => Some(DecidedBy::Lockout),
            "inactivity" => Some(DecidedBy::Inactivity),
            _ => None,
        }
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Owner => "owner",
            DecidedBy::Administrator => "administrator",
            DecidedBy::Lockout => "lockout",
            DecidedBy::Inactivity => "inactivity",
        }
    }

    /// In words, after "deactivated" or "locked".
    pub fn words(self) -> &'static str {
        match self {
            DecidedBy::Owner => "by its owner",
            DecidedBy::Administrator => "by an administrator",
            DecidedBy::Lockout => "after wrong secrets in a row",
            DecidedBy::Inactivity => "by the key policy, after going unused",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_back_as_stored() {
        for d in [
            DecidedBy::Owner,
            DecidedBy::Administrator,
            DecidedBy::Lockout,
            DecidedBy::Inactivity,
        ] {
            assert_eq!(DecidedBy::parse(d.as_str()), Some(d));
        }
        assert_eq!(DecidedBy::parse(""), None);
    }
}
