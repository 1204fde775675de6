//! Users, groups and roles (SPEC §2.2): invitations, enabling and disabling people, group
//! membership and roles, custom roles. Membership changes notify the people they affect; the
//! built-in Administrators group keeps at least one active member.
//!
//! One module per thing a page edits (`users`, `invitations`, `groups`, `roles`); the lists that
//! link them (a user's groups, a group's members and roles) are saved by the one membership
//! editor in `membership`.

mod groups;
mod invitations;
mod membership;
mod roles;
mod users;

pub use groups::{
    GroupDetails, GroupInput, GroupSummary, GroupToDelete, create_group, delete_group,
    group_details, group_to_delete, list_groups, update_group,
};
pub use invitations::{INVITATION_TTL_SECS, Invitee, accept_invitation, invitation_user};
pub use membership::Choice;
pub use roles::{
    PermissionChoice, RoleDetails, RoleInput, RoleSummary, create_role, delete_role, list_roles,
    role_details, update_role,
};
pub use users::{
    NewUser, UserDetails, UserSummary, invite, list_users, new_user_groups, reinvite,
    remove_second_factors, set_active, set_user_groups, user_details,
};

use std::collections::HashMap;

use sqlx::AnyConnection;

use crate::domain::{Actor, Permission, PersonName};
use crate::error::AppError;
use crate::service::repo::groups::ADMINISTRATORS;
use crate::service::{FieldErrors, FormError};

/// Serialises every change that could leave Administrators without a member who can sign in:
/// each such transaction first locks the group's row, so two administrators removing each
/// other run one after the other and the second sees the first's change.
async fn lock_administrators(conn: &mut AnyConnection) -> sqlx::Result<()> {
    crate::service::repo::groups::lock(conn, ADMINISTRATORS).await
}

/// A group's or role's name from a form; `kind` names it in the message ("Enter a group name.").
fn parse_name(input: &str, kind: &str, errors: &mut FieldErrors) -> Option<String> {
    PersonName::parse(input)
        .map_err(|m| errors.add("name", m.replace("a name", &format!("a {kind} name"))))
        .ok()
        .map(|n| n.as_str().to_string())
}

/// A write that fails when a name or email is taken: the clash becomes `message` on `field`
/// (the form's only message: the write comes after every other check).
fn unless_taken(
    written: sqlx::Result<()>,
    field: &'static str,
    message: &str,
) -> Result<(), FormError> {
    match written {
        Ok(()) => Ok(()),
        Err(e) if crate::db::is_unique_violation(&e) => {
            let mut errors = FieldErrors::default();
            errors.add(field, message);
            Err(FormError::Invalid(errors))
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses, naming `read`, unless the actor may see a page (`read`) or save its form (`write`).
fn require_read_or(actor: &Actor, read: Permission, write: Permission) -> Result<(), AppError> {
    if actor.may(write) {
        Ok(())
    } else {
        Ok(actor.require(read)?)
    }
}

/// IDs or names joined for an audit entry's details.
fn joined<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a group's or a role's page shows of the thing itself, alike for both.
#[derive(Debug, Clone, Default)]
pub struct Heading {
    /// Empty on a Create page.
    pub id: String,
    /// Its stored name (the page's heading), whatever the form says.
    pub title: String,
    pub builtin: bool,
    /// Its name and description as the form shows them.
    pub name: String,
    pub description: String,
}

impl Heading {
    /// The heading of a stored group or role (`stored`: its name and description; `None` on a
    /// Create page), with what `form` says when it comes back with messages.
    fn new(
        id: Option<&str>,
        stored: Option<(&str, &str)>,
        builtin: bool,
        form: Option<(&str, &str)>,
    ) -> Self {
        let (title, description) = stored.unwrap_or_default();
        let (name, description) = form.unwrap_or((title, description));
        Self {
            id: id.unwrap_or_default().to_string(),
            title: title.to_string(),
            builtin,
            name: name.to_string(),
            description: description.to_string(),
        }
    }
}

/// (owner, item) pairs gathered per owner, in the pairs' order: a user's group names, a group's
/// role names, a role's permissions.
fn by_owner(pairs: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut owned: HashMap<String, Vec<String>> = HashMap::new();
    for (owner, item) in pairs {
        owned.entry(owner).or_default().push(item);
    }
    owned
}
