//! Who is acting: a signed-in person or a program presenting a key, with the permissions it
//! holds. Built at the request edge (console session, API key, bridge) and handed to every
//! service function, which decides with it.

use crate::domain::Permission;

/// A permission the actor does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing(pub Permission);

/// Who is acting, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub label: String,
    pub is_admin: bool,
    /// What the actor may do (`keys:read`, `keys:write`, …): a person's roles through their
    /// groups, or a calling key's effective permissions.
    pub permissions: Vec<String>,
    pub client_ip: String,
    /// The key making the request, when a program acts through the API.
    pub acting_key: Option<String>,
    /// Whether that key was presented with its replaced secret (inside the grace period):
    /// such a request may read, never change (see `grants`).
    pub previous_secret: bool,
}

impl Actor {
    /// Whether the actor holds a permission.
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.iter().any(|p| p == permission.as_str())
    }

    /// Refuses, naming the permission, unless the actor holds it (an `AppError` through `?`).
    pub fn require(&self, permission: Permission) -> Result<(), Missing> {
        if self.may(permission) {
            Ok(())
        } else {
            Err(Missing(permission))
        }
    }
}
