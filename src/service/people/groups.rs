//! Groups: creating, changing and deleting them, with their members and roles; the Groups tab
//! and group pages that show them. The built-in Administrators group keeps its name, its role
//! and a member who can sign in, and is never deleted.

use sqlx::{AnyConnection, AnyPool};

use super::membership::{Choice, Edit, Links, choices, notify_membership};
use super::{
    Heading, by_owner, joined, lock_administrators, parse_name, require_read_or, unless_taken,
};
use crate::clock::Clock;
use crate::db::begin_write;
use crate::domain::{Actor, Permission};
use crate::error::AppError;
use crate::service::audit::{self, success as entry};
use crate::service::repo::{self, groups::GroupSummary as GroupRow};
use crate::service::{FieldErrors, FormError};

const NAME_TAKEN: &str = "A group with this name already exists.";

/// A group as typed into a form.
#[derive(Debug, Clone, Default)]
pub struct GroupInput {
    pub name: String,
    pub description: String,
    pub member_ids: Vec<String>,
    pub role_ids: Vec<String>,
}

fn parse_group_text(input: &GroupInput, errors: &mut FieldErrors) -> Option<(String, String)> {
    let name = parse_name(&input.name, "group", errors);
    let description = input.description.trim().to_string();
    if description.chars().count() > 200 {
        errors.add(
            "description",
            "A description can be at most 200 characters.",
        );
    }
    if description.chars().any(char::is_control) {
        errors.add(
            "description",
            "A description cannot contain control characters.",
        );
    }
    name.map(|n| (n, description))
}

async fn find_group(conn: &mut AnyConnection, id: &str) -> Result<GroupRow, AppError> {
    repo::groups::find(conn, id)
        .await?
        .ok_or(AppError::NotFound)
}

/// Refuses deleting the built-in group.
fn require_deletable(group: &GroupRow) -> Result<(), AppError> {
    if group.builtin == 1 {
        return Err(AppError::Conflict(
            "The built-in Administrators group cannot be deleted.".into(),
        ));
    }
    Ok(())
}

/// Creates a group with roles; members are added from the group's page.
pub async fn create_group(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    input: GroupInput,
) -> Result<String, FormError> {
    actor.require(Permission::GroupsWrite)?;
    let now = clock.unix();
    let mut errors = FieldErrors::default();
    let text = parse_group_text(&input, &mut errors);
    let id = repo::new_id("grp");
    let roles = Edit::fresh(Links::RolesOfGroup(&id), &input.role_ids);
    let mut tx = begin_write(pool).await?;
    roles.check(&mut tx, actor, &mut errors).await?;
    let (Some((name, description)), true) = (text, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let inserted = repo::groups::insert(&mut tx, &id, &name, &description, now).await;
    unless_taken(inserted, "name", NAME_TAKEN)?;
    roles.apply(&mut tx, now).await?;
    let audited = entry(actor, "group.created", "group", &id, &name, "");
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes a group's name, description, members and roles. The built-in Administrators group
/// keeps its name and role, and at least one active member. Added and removed members are
/// notified; when the roles change every member is.
pub async fn update_group(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    group_id: &str,
    input: GroupInput,
) -> Result<(), FormError> {
    actor.require(Permission::GroupsWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    lock_administrators(&mut tx).await?;
    let group = find_group(&mut tx, group_id).await?;
    let mut errors = FieldErrors::default();
    let text = parse_group_text(&input, &mut errors);
    let members = Edit::load(&mut tx, Links::MembersOfGroup(group_id), &input.member_ids).await?;
    let mut roles = Edit::load(&mut tx, Links::RolesOfGroup(group_id), &input.role_ids).await?;
    members.check(&mut tx, actor, &mut errors).await?;
    roles.check(&mut tx, actor, &mut errors).await?;
    if group.builtin == 1 {
        roles.keep_current();
        if text.as_ref().is_some_and(|(name, _)| *name != group.name) {
            errors.add(
                "name",
                "The built-in Administrators group cannot be renamed.",
            );
        }
    }
    let (Some((name, description)), true) = (text, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let renamed = repo::groups::update(&mut tx, group_id, &name, &description).await;
    unless_taken(renamed, "name", NAME_TAKEN)?;
    // Members first: a change of roles is told to the members the group has once saved.
    members.apply(&mut tx, now).await?;
    roles.apply(&mut tx, now).await?;
    let details = format!(
        "members: {}; roles: {}",
        members.wanted().len(),
        joined(roles.wanted())
    );
    let audited = entry(actor, "group.updated", "group", group_id, &name, &details);
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a custom group; its members are notified. The built-in group refuses.
pub async fn delete_group(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    group_id: &str,
) -> Result<String, AppError> {
    actor.require(Permission::GroupsWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let group = find_group(&mut tx, group_id).await?;
    require_deletable(&group)?;
    for member in repo::groups::member_ids(&mut tx, group_id).await? {
        notify_membership(&mut tx, &member, &group.name, false, now).await?;
    }
    repo::groups::delete(&mut tx, group_id).await?;
    let audited = entry(actor, "group.deleted", "group", group_id, &group.name, "");
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    Ok(group.name)
}

/// A group as the Groups tab lists it.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub members: i64,
    /// The names of its roles, by name.
    pub roles: Vec<String>,
}

/// Every group, the built-in one first, with its member count and roles.
pub async fn list_groups(pool: &AnyPool, actor: &Actor) -> Result<Vec<GroupSummary>, AppError> {
    actor.require(Permission::UsersRead)?;
    let mut conn = pool.acquire().await?;
    let mut roles = by_owner(repo::groups::role_names(&mut conn).await?);
    Ok(repo::groups::list(&mut conn)
        .await?
        .into_iter()
        .map(|g| GroupSummary {
            roles: roles.remove(&g.id).unwrap_or_default(),
            builtin: g.builtin == 1,
            id: g.id,
            name: g.name,
            description: g.description,
            members: g.members,
        })
        .collect())
}

/// A group as its page shows it (or the Create group page), with the lists of members and
/// roles to choose from.
#[derive(Debug, Clone)]
pub struct GroupDetails {
    pub heading: Heading,
    pub members: Vec<Choice>,
    pub roles: Vec<Choice>,
}

/// A group's page, or the Create group page when `id` is `None`; `form`: what a form said, when
/// it comes back with messages (the built-in group's role stays as stored).
pub async fn group_details(
    pool: &AnyPool,
    actor: &Actor,
    id: Option<&str>,
    form: Option<&GroupInput>,
) -> Result<GroupDetails, AppError> {
    require_read_or(actor, Permission::UsersRead, Permission::GroupsWrite)?;
    let mut conn = pool.acquire().await?;
    let group = match id {
        Some(id) => Some(find_group(&mut conn, id).await?),
        None => None,
    };
    let this = id.unwrap_or_default();
    let builtin = group.as_ref().is_some_and(|g| g.builtin == 1);
    let members_form = form.map(|f| f.member_ids.as_slice());
    let roles_form = form.filter(|_| !builtin).map(|f| f.role_ids.as_slice());
    let stored = group
        .as_ref()
        .map(|g| (g.name.as_str(), g.description.as_str()));
    let typed = form.map(|f| (f.name.as_str(), f.description.as_str()));
    Ok(GroupDetails {
        heading: Heading::new(id, stored, builtin, typed),
        members: choices(&mut conn, Links::MembersOfGroup(this), members_form).await?,
        roles: choices(&mut conn, Links::RolesOfGroup(this), roles_form).await?,
    })
}

/// A custom group as the Delete group page names it.
#[derive(Debug, Clone)]
pub struct GroupToDelete {
    pub id: String,
    pub name: String,
    pub members: i64,
}

/// What the Delete group page asks about; the built-in group refuses.
pub async fn group_to_delete(
    pool: &AnyPool,
    actor: &Actor,
    id: &str,
) -> Result<GroupToDelete, AppError> {
    actor.require(Permission::GroupsWrite)?;
    let mut conn = pool.acquire().await?;
    let group = find_group(&mut conn, id).await?;
    require_deletable(&group)?;
    Ok(GroupToDelete {
        id: group.id,
        name: group.name,
        members: group.members,
    })
}
