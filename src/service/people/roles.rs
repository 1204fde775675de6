//! Roles: creating, changing and deleting custom roles (sets of permissions); the Roles tab and
//! role pages that show them. Built-in roles are fixed.

use std::collections::HashMap;

use sqlx::{AnyConnection, AnyPool};

use super::membership::chosen;
use super::{Heading, by_owner, parse_name, require_read_or, unless_taken};
use crate::clock::Clock;
use crate::db::begin_write;
use crate::domain::{Actor, Permission};
use crate::error::AppError;
use crate::service::audit::{self, success as entry};
use crate::service::grants::check_permission_grants;
use crate::service::repo::{self, roles::RoleRow};
use crate::service::{FieldErrors, FormError};

const NAME_TAKEN: &str = "A role with this name already exists.";

/// A custom role as typed into a form.
#[derive(Debug, Clone, Default)]
pub struct RoleInput {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

/// A role's form, checked: its name, description and permissions.
struct ParsedRole {
    name: String,
    description: String,
    permissions: Vec<Permission>,
}

impl ParsedRole {
    /// The permissions as an audit entry's details.
    fn details(&self) -> String {
        self.permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn permission_names(&self) -> Vec<&'static str> {
        self.permissions.iter().map(|p| p.as_str()).collect()
    }
}

/// Checks a role's form, and that the actor gives it only permissions they hold (`kept`: what
/// the role already had, which is not given again).
fn parse_role(actor: &Actor, input: &RoleInput, kept: &[String]) -> Result<ParsedRole, FormError> {
    let mut errors = FieldErrors::default();
    let name = parse_name(&input.name, "role", &mut errors);
    let description = input.description.trim().to_string();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        errors.add(
            "description",
            "A description can be at most 200 characters, without control characters.",
        );
    }
    let mut permissions = Vec::new();
    for p in chosen(&input.permissions) {
        match Permission::parse(&p) {
            Some(p) => permissions.push(p),
            None => errors.add("permissions", format!("“{p}” is not a permission.")),
        }
    }
    if permissions.is_empty() && errors.get("permissions").is_none() {
        errors.add("permissions", "Choose at least one permission.");
    }
    if name.is_some() {
        check_permission_grants(actor, &permissions, kept, &mut errors);
    }
    match (name, errors.is_empty()) {
        (Some(name), true) => Ok(ParsedRole {
            name,
            description,
            permissions,
        }),
        _ => Err(FormError::Invalid(errors)),
    }
}

/// A custom role; `NotFound` when there is none, a conflict naming what is refused (`refused`:
/// "changed", "deleted") when it is built in.
async fn find_custom_role(
    conn: &mut AnyConnection,
    id: &str,
    refused: &str,
) -> Result<RoleRow, AppError> {
    let role = repo::roles::find(conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if role.builtin == 1 {
        return Err(AppError::Conflict(format!(
            "“{}” is a built-in role and cannot be {refused}.",
            role.name
        )));
    }
    Ok(role)
}

/// Creates a custom role from the permission list.
pub async fn create_role(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    input: RoleInput,
) -> Result<String, FormError> {
    actor.require(Permission::RolesWrite)?;
    let now = clock.unix();
    let role = parse_role(actor, &input, &[])?;
    let id = repo::new_id("role");
    let mut tx = begin_write(pool).await?;
    let inserted = repo::roles::insert(&mut tx, &id, &role.name, &role.description, now).await;
    unless_taken(inserted, "name", NAME_TAKEN)?;
    repo::roles::set_permissions(&mut tx, &id, &role.permission_names()).await?;
    let details = role.details();
    let audited = entry(actor, "role.created", "role", &id, &role.name, &details);
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes a custom role; built-in roles refuse. Everyone who holds it through a group is told.
pub async fn update_role(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    role_id: &str,
    input: RoleInput,
) -> Result<(), FormError> {
    actor.require(Permission::RolesWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    find_custom_role(&mut tx, role_id, "changed").await?;
    let held = repo::roles::role_permissions(&mut tx, role_id).await?;
    let role = parse_role(actor, &input, &held)?;
    let updated = repo::roles::update(&mut tx, role_id, &role.name, &role.description).await;
    unless_taken(updated, "name", NAME_TAKEN)?;
    repo::roles::set_permissions(&mut tx, role_id, &role.permission_names()).await?;
    let title = format!("The permissions of the role “{}” changed", role.name);
    for user in repo::roles::holders(&mut tx, role_id).await? {
        repo::notifications::insert(
            &mut tx,
            &user,
            now,
            "role.updated",
            &title,
            "Your permissions follow your groups' roles.",
            "/my/keys",
        )
        .await?;
    }
    let details = role.details();
    let audited = entry(actor, "role.updated", "role", role_id, &role.name, &details);
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a custom role (its assignments go with it); built-in roles refuse.
pub async fn delete_role(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    role_id: &str,
) -> Result<String, AppError> {
    actor.require(Permission::RolesWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let role = find_custom_role(&mut tx, role_id, "deleted").await?;
    repo::roles::delete(&mut tx, role_id).await?;
    let audited = entry(actor, "role.deleted", "role", role_id, &role.name, "");
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    Ok(role.name)
}

/// A role as the Roles tab lists it.
#[derive(Debug, Clone)]
pub struct RoleSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    /// Its permissions, sorted.
    pub permissions: Vec<String>,
}

/// Every role, built-ins first, with its permissions.
pub async fn list_roles(pool: &AnyPool, actor: &Actor) -> Result<Vec<RoleSummary>, AppError> {
    actor.require(Permission::UsersRead)?;
    let mut conn = pool.acquire().await?;
    let mut permissions = by_owner(repo::roles::permissions(&mut conn).await?);
    Ok(repo::roles::list(&mut conn)
        .await?
        .into_iter()
        .map(|r| RoleSummary {
            permissions: permissions.remove(&r.id).unwrap_or_default(),
            builtin: r.builtin == 1,
            id: r.id,
            name: r.name,
            description: r.description,
        })
        .collect())
}

/// A permission as a role's page offers it.
#[derive(Debug, Clone)]
pub struct PermissionChoice {
    pub name: &'static str,
    /// What it allows.
    pub description: String,
    pub chosen: bool,
}

/// A role as its page shows it (or the Create role page), with every permission to choose
/// from.
#[derive(Debug, Clone)]
pub struct RoleDetails {
    pub heading: Heading,
    pub permissions: Vec<PermissionChoice>,
}

/// A role's page, or the Create role page when `id` is `None`; `form`: what a form said, when it
/// comes back with messages.
pub async fn role_details(
    pool: &AnyPool,
    actor: &Actor,
    id: Option<&str>,
    form: Option<&RoleInput>,
) -> Result<RoleDetails, AppError> {
    require_read_or(actor, Permission::UsersRead, Permission::RolesWrite)?;
    let mut conn = pool.acquire().await?;
    let role = match id {
        Some(id) => Some(
            repo::roles::find(&mut conn, id)
                .await?
                .ok_or(AppError::NotFound)?,
        ),
        None => None,
    };
    let descriptions: HashMap<String, String> = repo::roles::permission_descriptions(&mut conn)
        .await?
        .into_iter()
        .collect();
    let ticked = match (form, &role) {
        (Some(f), _) => f.permissions.clone(),
        (None, Some(r)) => repo::roles::role_permissions(&mut conn, &r.id).await?,
        (None, None) => Vec::new(),
    };
    let permissions = Permission::ALL
        .iter()
        .map(|p| PermissionChoice {
            name: p.as_str(),
            description: descriptions.get(p.as_str()).cloned().unwrap_or_default(),
            chosen: ticked.iter().any(|t| t == p.as_str()),
        })
        .collect();
    let stored = role
        .as_ref()
        .map(|r| (r.name.as_str(), r.description.as_str()));
    let builtin = role.as_ref().is_some_and(|r| r.builtin == 1);
    let typed = form.map(|f| (f.name.as_str(), f.description.as_str()));
    Ok(RoleDetails {
        heading: Heading::new(id, stored, builtin, typed),
        permissions,
    })
}
