//! The pages that ask before an action (Generate new secret key, Delete, Deactivate) refuse as
//! the action itself would, before anyone confirms.

use sqlx::AnyConnection;

use super::{KeyDetails, Keyring, Scope, details, personal_key_refusal, refuse_system_key};
use crate::domain::Actor;
use crate::error::AppError;
use crate::service::grants;

/// An action on a key that is confirmed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// A new secret ([`super::regenerate`]).
    Regenerate,
    /// Deleting the key ([`super::delete`]).
    Delete,
    /// Deactivating the key ([`super::switch`]): programs using it are refused until it is
    /// activated again.
    Deactivate,
}

impl Confirm {
    /// What cannot be done to a system key, after "“name” is a system key managed by keyward;".
    pub(super) fn system_key(self) -> &'static str {
        match self {
            Confirm::Regenerate => "its secret cannot be regenerated here",
            Confirm::Delete => "it cannot be deleted",
            Confirm::Deactivate => "it cannot be deactivated",
        }
    }
}

/// The key `action` is about to change, for the page that asks first; refused as the action
/// refuses a system key or (for a new secret) someone else's personal key.
pub async fn before(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: Scope,
    id: &str,
    ring: &Keyring<'_>,
    action: Confirm,
) -> Result<KeyDetails, AppError> {
    let key = details(conn, actor, scope, id, ring).await?;
    if action != Confirm::Deactivate {
        refuse_system_key(&key.name, ring.tenant_id, action.system_key())?;
    }
    if action == Confirm::Regenerate && !grants::controls(&actor.user_id, &key).regenerate {
        return Err(personal_key_refusal("generate a new secret for"));
    }
    Ok(key)
}
