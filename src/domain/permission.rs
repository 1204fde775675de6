use std::fmt;

/// A permission a role can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    UsersRead,
    UsersWrite,
    GroupsWrite,
    RolesWrite,
    KeysRead,
    KeysWrite,
    KeysVerify,
    ConfigWrite,
    AuditRead,
}

impl Permission {
    /// Every permission, in the order the specification lists them.
    pub const ALL: [Permission; 9] = [
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::GroupsWrite,
        Permission::RolesWrite,
        Permission::KeysRead,
        Permission::KeysWrite,
        Permission::KeysVerify,
        Permission::ConfigWrite,
        Permission::AuditRead,
    ];

    /// The stored and displayed name, such as `keys:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::UsersRead => "users:read",
            Permission::UsersWrite => "users:write",
            Permission::GroupsWrite => "groups:write",
            Permission::RolesWrite => "roles:write",
            Permission::KeysRead => "keys:read",
            Permission::KeysWrite => "keys:write",
            Permission::KeysVerify => "keys:verify",
            Permission::ConfigWrite => "config:write",
            Permission::AuditRead => "audit:read",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("keys:delete"), None);
    }
}
