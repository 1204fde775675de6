//! Whether a key keeps to the tenant's key policy. For now every key is in policy: the real
//! policy (its rules and where it is kept) is being written separately, and this is the one
//! place it plugs into, so the inventory export already has its column.

use sqlx::AnyConnection;

use super::KeyDetails;

/// The tenant's key policy. A placeholder with no rules yet, so that the export and the
/// overview can already ask [`compliance`]; the real policy replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPolicy {}

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

/// How `key` stands against `policy`.
pub fn compliance(_key: &KeyDetails, _policy: &KeyPolicy) -> Compliance {
    Compliance::InPolicy
}

/// The tenant's current key policy.
pub async fn policy(_conn: &mut AnyConnection) -> sqlx::Result<KeyPolicy> {
    Ok(KeyPolicy::default())
}
