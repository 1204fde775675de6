//! Whether a key keeps to the tenant's key policy, as the inventory export writes it: the key
//! policy's own judgement (`KeyPolicy::breach`), in the export's words.

use sqlx::AnyConnection;

use super::KeyDetails;

/// The tenant's key policy.
pub use crate::service::key_policy::KeyPolicy;

/// How a key stands against the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compliance {
    InPolicy,
    /// Out of policy, with what the key breaks, in words.
    OutOfPolicy(Vec<String>),
}

impl Compliance {
    /// `in_policy` or `out_of_policy`, as the export writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Compliance::InPolicy => "in_policy",
            Compliance::OutOfPolicy(_) => "out_of_policy",
        }
    }

    /// What the key breaks; empty in policy.
    pub fn reasons(&self) -> &[String] {
        match self {
            Compliance::InPolicy => &[],
            Compliance::OutOfPolicy(reasons) => reasons,
        }
    }
}

/// How `key` stands against `policy` at `now`.
pub fn compliance(key: &KeyDetails, policy: &KeyPolicy, now: i64) -> Compliance {
    match policy.breach(key.key_type, key.expires_at, now) {
        Some(reason) => Compliance::OutOfPolicy(vec![reason]),
        None => Compliance::InPolicy,
    }
}

/// The tenant's current key policy.
pub async fn policy(conn: &mut AnyConnection) -> sqlx::Result<KeyPolicy> {
    crate::service::key_policy::load(conn).await
}
