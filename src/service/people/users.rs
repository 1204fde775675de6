//! Users: inviting people, disabling and enabling them, the groups they belong to, and the Users
//! tab and user pages that show them.

use std::collections::HashMap;

use sqlx::{AnyConnection, AnyPool};

use super::invitations::{self, Invitee};
use super::membership::{Choice, Edit, Links, choices};
use super::{by_owner, joined, lock_administrators, require_read_or, unless_taken};
use crate::clock::Clock;
use crate::db::begin_write;
use crate::domain::{Actor, Email, Permission, PersonName};
use crate::error::AppError;
use crate::service::audit::{self, success as entry};
use crate::service::notices::Mailing;
use crate::service::repo::{self, groups::ADMINISTRATORS, users::UserRow};
use crate::service::{FieldErrors, FormError};

/// A new user as typed into the Add user form.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub group_ids: Vec<String>,
}

async fn find_user(conn: &mut AnyConnection, id: &str) -> Result<UserRow, AppError> {
    repo::users::find(conn, id).await?.ok_or(AppError::NotFound)
}

/// Adds a user who sets a password through an invitation link: the user, their groups, the
/// bell notices, the audit entry and the invitation email in one transaction; the sender is
/// woken after the commit. Returns the new user's ID.
pub async fn invite(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    mailing: &Mailing<'_>,
    input: NewUser,
) -> Result<String, FormError> {
    actor.require(Permission::UsersWrite)?;
    let now = clock.unix();
    let mut errors = FieldErrors::default();
    let name = PersonName::parse(&input.name)
        .map_err(|m| errors.add("name", m))
        .ok();
    let email = Email::parse(&input.email)
        .map_err(|m| errors.add("email", m))
        .ok();
    let id = repo::new_id("usr");
    let groups = Edit::fresh(Links::GroupsOfUser(&id), &input.group_ids);
    let mut tx = begin_write(pool).await?;
    groups.check(&mut tx, actor, &mut errors).await?;
    let (Some(name), Some(email), true) = (name, email, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let inserted = repo::users::insert(&mut tx, &id, email.as_str(), name.as_str(), None, now);
    unless_taken(
        inserted.await,
        "email",
        "A user with this email already exists.",
    )?;
    groups.apply(&mut tx, now).await?;
    let invitee = Invitee {
        id: id.clone(),
        name: name.as_str().to_string(),
        email: email.as_str().to_string(),
    };
    invitations::send(&mut tx, mailing, actor, &invitee, now).await?;
    let details = if groups.wanted().is_empty() {
        "groups: none".to_string()
    } else {
        format!("groups: {}", joined(groups.wanted()))
    };
    let audited = entry(actor, "user.invited", "user", &id, email.as_str(), &details);
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    mailing.wake_sender();
    Ok(id)
}

/// A fresh invitation for a user who has not set a password yet; earlier links stop working.
/// The new link, its email and the audit entry commit together; the sender is woken after.
pub async fn reinvite(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    mailing: &Mailing<'_>,
    user_id: &str,
) -> Result<(), AppError> {
    actor.require(Permission::UsersWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let user = find_user(&mut tx, user_id).await?;
    if user.password_hash.is_some() {
        return Err(AppError::Conflict(format!(
            "{} has already set a password.",
            user.name
        )));
    }
    let invitee = Invitee {
        id: user.id,
        name: user.name,
        email: user.email,
    };
    invitations::send(&mut tx, mailing, actor, &invitee, now).await?;
    let audited = entry(actor, "user.reinvited", "user", user_id, &invitee.email, "");
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    mailing.wake_sender();
    Ok(())
}

/// Refuses acting on a person who may do more than the actor (disabling or enabling them):
/// holding `users:write` does not make anyone the keeper of an administrator's account.
async fn require_holds_theirs(
    conn: &mut AnyConnection,
    actor: &Actor,
    user: &UserRow,
) -> Result<(), AppError> {
    let theirs = repo::roles::user_permissions(conn, &user.id).await?;
    let lacking = crate::service::grants::lacking(actor, &theirs);
    if lacking.is_empty() {
        Ok(())
    } else {
        Err(AppError::Denied(format!(
            "{} may do more than you may ({}); only someone who holds all of their permissions \
             can disable or enable them.",
            user.name,
            lacking.join(", ")
        )))
    }
}

/// Refuses disabling oneself or the last active administrator.
async fn require_may_disable(
    conn: &mut AnyConnection,
    actor: &Actor,
    user: &UserRow,
) -> Result<(), AppError> {
    if user.id == actor.user_id {
        return Err(AppError::Conflict(
            "You cannot disable your own account.".into(),
        ));
    }
    if repo::groups::is_member(conn, ADMINISTRATORS, &user.id).await?
        && repo::groups::members_who_can_sign_in(conn, ADMINISTRATORS)
            .await?
            .len()
            <= 1
    {
        return Err(AppError::Conflict(
            "This is the last active administrator; add another before disabling this one.".into(),
        ));
    }
    Ok(())
}

/// Disables or enables a user. A disabled user cannot sign in, their sessions end at once and
/// their personal keys stop authenticating. Nobody disables themselves or the last active
/// administrator.
pub async fn set_active(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    user_id: &str,
    active: bool,
) -> Result<(), AppError> {
    actor.require(Permission::UsersWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    lock_administrators(&mut tx).await?;
    let user = find_user(&mut tx, user_id).await?;
    if (user.active == 1) == active {
        return Ok(());
    }
    require_holds_theirs(&mut tx, actor, &user).await?;
    if !active {
        require_may_disable(&mut tx, actor, &user).await?;
    }
    repo::users::set_active(&mut tx, user_id, active, now).await?;
    if !active {
        crate::auth::store::sessions::delete_for_user(&mut tx, user_id).await?;
    }
    let action = if active {
        "user.enabled"
    } else {
        "user.disabled"
    };
    let audited = entry(actor, action, "user", user_id, &user.email, "");
    audit::record(&mut tx, now, audited).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a person's second factors and recovery codes, for someone who lost their device and
/// their codes: they sign in with their password alone (or are led to set one up again, under
/// the policy). Needs `users:write` and every permission the person holds; audited as
/// `user.second_factors_removed`.
pub async fn remove_second_factors(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    user_id: &str,
) -> Result<(), AppError> {
    actor.require(Permission::UsersWrite)?;
    let mut tx = begin_write(pool).await?;
    let user = find_user(&mut tx, user_id).await?;
    require_holds_theirs(&mut tx, actor, &user).await?;
    if crate::service::accounts::factors::delete_all(&mut tx, user_id).await? {
        let action = "user.second_factors_removed";
        let audited = entry(actor, action, "user", user_id, &user.email, "");
        audit::record(&mut tx, clock.unix(), audited).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Replaces the groups a user belongs to, notifying them of each change.
pub async fn set_user_groups(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    user_id: &str,
    group_ids: &[String],
) -> Result<(), FormError> {
    actor.require(Permission::UsersWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    lock_administrators(&mut tx).await?;
    let user = find_user(&mut tx, user_id).await?;
    let groups = Edit::load(&mut tx, Links::GroupsOfUser(user_id), group_ids).await?;
    let mut errors = FieldErrors::default();
    groups.check(&mut tx, actor, &mut errors).await?;
    if !errors.is_empty() {
        return Err(FormError::Invalid(errors));
    }
    groups.apply(&mut tx, now).await?;
    if groups.changes() {
        let names: HashMap<String, String> = repo::groups::list(&mut tx)
            .await?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect();
        let details = format!(
            "groups: {}",
            joined(groups.wanted().iter().map(|g| &names[g]))
        );
        let audited = entry(
            actor,
            "user.groups_changed",
            "user",
            user_id,
            &user.email,
            &details,
        );
        audit::record(&mut tx, now, audited).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A user as the Users tab lists them.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: String,
    pub name: String,
    pub email: String,
    /// The names of their groups, by name.
    pub groups: Vec<String>,
    pub active: bool,
    /// Has not set a password yet.
    pub invited: bool,
    pub personal_keys: i64,
    pub last_sign_in_at: Option<i64>,
}

/// Every user, by name, with their groups and how many personal keys they hold.
pub async fn list_users(pool: &AnyPool, actor: &Actor) -> Result<Vec<UserSummary>, AppError> {
    actor.require(Permission::UsersRead)?;
    let mut conn = pool.acquire().await?;
    let rows = repo::users::list(&mut conn).await?;
    let counts: HashMap<String, i64> = repo::keys::personal_counts(&mut conn)
        .await?
        .into_iter()
        .collect();
    let mut groups = by_owner(repo::groups::memberships(&mut conn).await?);
    Ok(rows
        .into_iter()
        .map(|u| UserSummary {
            groups: groups.remove(&u.id).unwrap_or_default(),
            personal_keys: counts.get(&u.id).copied().unwrap_or(0),
            invited: u.password_hash.is_none(),
            active: u.active == 1,
            last_sign_in_at: u.last_sign_in_at,
            id: u.id,
            name: u.name,
            email: u.email,
        })
        .collect())
}

/// A user as their page shows them, with the list of groups to choose from.
#[derive(Debug, Clone)]
pub struct UserDetails {
    pub id: String,
    pub name: String,
    pub email: String,
    pub active: bool,
    /// Has not set a password yet.
    pub invited: bool,
    pub groups: Vec<Choice>,
    /// Has a second factor (an authenticator app).
    pub has_second_factor: bool,
}

/// A user's page; `form`: the groups a form chose, when it comes back with messages.
pub async fn user_details(
    pool: &AnyPool,
    actor: &Actor,
    id: &str,
    form: Option<&[String]>,
) -> Result<UserDetails, AppError> {
    require_read_or(actor, Permission::UsersRead, Permission::UsersWrite)?;
    let mut conn = pool.acquire().await?;
    let user = find_user(&mut conn, id).await?;
    let groups = choices(&mut conn, Links::GroupsOfUser(id), form).await?;
    let has_second_factor =
        crate::service::accounts::factors::has_second_factor(&mut conn, id).await?;
    Ok(UserDetails {
        has_second_factor,
        active: user.active == 1,
        invited: user.password_hash.is_none(),
        id: user.id,
        name: user.name,
        email: user.email,
        groups,
    })
}

/// The groups the Add user form offers, ticked as `chosen`.
pub async fn new_user_groups(
    pool: &AnyPool,
    actor: &Actor,
    chosen: &[String],
) -> Result<Vec<Choice>, AppError> {
    actor.require(Permission::UsersWrite)?;
    let mut conn = pool.acquire().await?;
    Ok(choices(&mut conn, Links::GroupsOfUser(""), Some(chosen)).await?)
}
