//! Who may give what, and whose decisions stick (SPEC §11). One home for the rules that keep a
//! caller from widening what it, or anything it makes, may do:
//! - a caller gives a key or a group only roles whose permissions it holds itself, and only an
//!   administrator gives Tenant Administrator or the Administrators group;
//! - a key never widens its own roles, groups or allowed networks;
//! - a secret for a key goes only to someone who may do everything the key may do, and never to
//!   anyone but its owner for a personal key;
//! - a request made with a replaced secret inside its grace period changes nothing;
//! - the owner of a personal key reverses only what the owner decided.

use std::collections::BTreeSet;

use crate::domain::{Actor, KeyDetails};
use crate::error::AppError;
use crate::service::repo::keys::{AccessMap, KeyRow};

/// The built-in role that holds every permission.
pub const TENANT_ADMINISTRATOR: &str = "role_tenant_admin";
/// The built-in group of administrators.
pub const ADMINISTRATORS: &str = crate::service::repo::groups::ADMINISTRATORS;

/// Refusal of any change made with a replaced secret.
pub const PREVIOUS_SECRET_READ_ONLY: &str = "This request used the key's previous secret, which \
     was replaced. During its grace period it may read and verify, but not change anything: \
     use the new secret.";

/// Who made a decision about a key: its owner, or someone managing the tenant's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    Owner,
    Administrator,
}

impl Decider {
    /// Who is deciding about `key`: the owner of a personal key (in person or through one of
    /// their personal keys), else the administration.
    pub fn of(actor: &Actor, key: &KeyRow) -> Self {
        Self::of_user(&actor.user_id, key.owner_user_id.as_deref())
    }

    /// Who a person is to a key owned by `owner` (`None`: a tenant key).
    pub fn of_user(user_id: &str, owner: Option<&str>) -> Self {
        if owner == Some(user_id) {
            Decider::Owner
        } else {
            Decider::Administrator
        }
    }

    /// As stored in `deactivated_by` / `locked_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decider::Owner => "owner",
            Decider::Administrator => "administrator",
        }
    }

    /// Whether this decider may reverse a decision recorded as `recorded` (`None`: unknown,
    /// taken as the administration's). The lockout's locks are the owner's to end; the key
    /// policy's deactivations for inactivity are either's.
    pub fn may_reverse(self, recorded: Option<&str>) -> bool {
        match self {
            Decider::Owner => matches!(recorded, Some("owner" | "lockout" | "inactivity")),
            Decider::Administrator => {
                matches!(recorded, None | Some("administrator" | "inactivity"))
            }
        }
    }
}

/// The state changes a person may make to a key, so that pages offer only controls that work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyControls {
    pub regenerate: bool,
    pub activate: bool,
    pub unlock: bool,
}

/// What `user_id` may do to `key`'s secret and state (system keys are not regenerated).
pub fn controls(user_id: &str, key: &KeyDetails) -> KeyControls {
    let decider = Decider::of_user(user_id, key.owner_id());
    let personal = key.is_personal();
    let may_reverse = |recorded: Option<crate::domain::DecidedBy>| {
        !personal || decider.may_reverse(recorded.map(|d| d.as_str()))
    };
    KeyControls {
        regenerate: !key.system && (!personal || decider == Decider::Owner),
        activate: !key.active && may_reverse(key.deactivated_by),
        unlock: key.locked && may_reverse(key.locked_by),
    }
}

/// What `actor` may not give among `roles` and `groups` (added, not kept), each as a field and a
/// message; empty when it may give them all.
pub fn refused_grants(
    map: &AccessMap,
    actor: &Actor,
    roles: &[(String, String)],
    groups: &[(String, String)],
) -> Vec<(&'static str, String)> {
    let mut refused = Vec::new();
    let held: BTreeSet<&str> = actor.permissions.iter().map(String::as_str).collect();
    let missing = |permissions: Vec<String>| -> Vec<String> {
        permissions
            .into_iter()
            .filter(|p| !held.contains(p.as_str()))
            .collect()
    };
    for (id, name) in roles {
        if id == TENANT_ADMINISTRATOR && !actor.is_admin {
            refused.push((
                "roles",
                format!("Only an administrator can give the {name} role."),
            ));
            continue;
        }
        let lacking = missing(map.role_permissions(id));
        if !lacking.is_empty() {
            refused.push((
                "roles",
                format!(
                    "You can give only roles whose permissions you hold: {name} needs {}.",
                    lacking.join(", ")
                ),
            ));
        }
    }
    for (id, name) in groups {
        if id == ADMINISTRATORS && !actor.is_admin {
            refused.push((
                "groups",
                format!("Only an administrator can give the {name} group."),
            ));
            continue;
        }
        let lacking = missing(map.group_permissions(id));
        if !lacking.is_empty() {
            refused.push((
                "groups",
                format!(
                    "You can give only groups whose permissions you hold: {name} needs {}.",
                    lacking.join(", ")
                ),
            ));
        }
    }
    refused
}

/// Adds a message when a role is given a permission the actor does not hold (`kept`: what the
/// role already had, which is not given again).
pub fn check_permission_grants(
    actor: &Actor,
    permissions: &[crate::domain::Permission],
    kept: &[String],
    errors: &mut crate::service::FieldErrors,
) {
    let lacking: Vec<&str> = permissions
        .iter()
        .map(|p| p.as_str())
        .filter(|p| !kept.iter().any(|k| k == p) && !actor.permissions.iter().any(|h| h == p))
        .collect();
    if !lacking.is_empty() {
        errors.add(
            "permissions",
            format!(
                "You can give a role only permissions you hold yourself: not {}.",
                lacking.join(", ")
            ),
        );
    }
}

/// Refuses a change made with a replaced secret.
pub fn require_current_secret(actor: &Actor) -> Result<(), AppError> {
    if actor.previous_secret {
        Err(AppError::Denied(PREVIOUS_SECRET_READ_ONLY.into()))
    } else {
        Ok(())
    }
}

/// The permissions among `permissions` that `actor` does not hold.
pub fn lacking<'a>(actor: &Actor, permissions: &'a [String]) -> Vec<&'a str> {
    permissions
        .iter()
        .filter(|p| !actor.permissions.contains(p))
        .map(String::as_str)
        .collect()
}

/// Refuses to hand `actor` a secret for a key that may do more than the actor: it would give
/// the actor those permissions.
pub fn require_holds_all(actor: &Actor, key_permissions: &[String]) -> Result<(), AppError> {
    let lacking = lacking(actor, key_permissions);
    if lacking.is_empty() {
        Ok(())
    } else {
        Err(AppError::Denied(format!(
            "This key may do more than you may ({}); only someone who holds all of its \
             permissions can generate a new secret for it.",
            lacking.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(permissions: &[&str], is_admin: bool) -> Actor {
        Actor {
            user_id: "usr_a".into(),
            label: "a".into(),
            is_admin,
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            client_ip: String::new(),
            acting_key: None,
            previous_secret: false,
        }
    }

    #[test]
    fn only_held_permissions_and_administrators_give_roles_and_groups() {
        let map = AccessMap::from_parts(
            &[
                ("grp_administrators", TENANT_ADMINISTRATOR),
                ("grp_ops", "role_ops"),
            ],
            &[
                (TENANT_ADMINISTRATOR, "keys:write"),
                (TENANT_ADMINISTRATOR, "config:write"),
                ("role_ops", "keys:write"),
                ("role_cfg", "config:write"),
            ],
        );
        let role = |id: &str| vec![(id.to_string(), id.to_string())];
        let key_admin = actor(&["keys:write"], false);
        assert!(refused_grants(&map, &key_admin, &role("role_ops"), &role("grp_ops")).is_empty());
        assert_eq!(
            refused_grants(&map, &key_admin, &role("role_cfg"), &[]).len(),
            1
        );
        assert_eq!(
            refused_grants(
                &map,
                &key_admin,
                &role(TENANT_ADMINISTRATOR),
                &role(ADMINISTRATORS)
            ),
            vec![
                (
                    "roles",
                    format!("Only an administrator can give the {TENANT_ADMINISTRATOR} role.")
                ),
                (
                    "groups",
                    format!("Only an administrator can give the {ADMINISTRATORS} group.")
                ),
            ]
        );
        // Holding every permission is not enough to hand out administration.
        let almighty = actor(&["keys:write", "config:write"], false);
        assert_eq!(
            refused_grants(&map, &almighty, &role(TENANT_ADMINISTRATOR), &[]).len(),
            1
        );
        let admin = actor(&["keys:write", "config:write"], true);
        assert!(
            refused_grants(
                &map,
                &admin,
                &role(TENANT_ADMINISTRATOR),
                &role(ADMINISTRATORS)
            )
            .is_empty()
        );
    }

    #[test]
    fn roles_get_only_permissions_the_actor_holds_unless_kept() {
        use crate::domain::Permission;
        let mut errors = crate::service::FieldErrors::default();
        let a = actor(&["keys:read"], false);
        check_permission_grants(&a, &[Permission::KeysRead], &[], &mut errors);
        assert!(errors.is_empty());
        check_permission_grants(
            &a,
            &[Permission::KeysWrite],
            &["keys:write".into()],
            &mut errors,
        );
        assert!(errors.is_empty());
        check_permission_grants(&a, &[Permission::ConfigWrite], &[], &mut errors);
        assert!(errors.get("permissions").unwrap().contains("config:write"));
    }

    #[test]
    fn owners_reverse_only_their_own_decisions() {
        assert!(Decider::Owner.may_reverse(Some("owner")));
        assert!(Decider::Owner.may_reverse(Some("lockout")));
        assert!(!Decider::Owner.may_reverse(Some("administrator")));
        assert!(!Decider::Owner.may_reverse(None));
        assert!(Decider::Administrator.may_reverse(Some("administrator")));
        assert!(Decider::Administrator.may_reverse(None));
        assert!(!Decider::Administrator.may_reverse(Some("owner")));
        assert!(!Decider::Administrator.may_reverse(Some("lockout")));
    }
}
