//! Users, groups and roles (SPEC §2.2): invitations, enabling and disabling people, group
//! membership and roles, custom roles. Membership changes notify the people they affect; the
//! built-in Administrators group keeps at least one active member.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::{AnyConnection, AnyPool};

use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::db::{self, begin_write, is_unique_violation};
use crate::domain::{Email, NewPassword, Permission, PersonName};
use crate::error::AppError;
use crate::repo::{self, groups::ADMINISTRATORS};
use crate::service::audit::success as entry;
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::bootstrap::hash_setup_token;
use crate::service::keys::Actor;
use crate::service::notices::{self, InvitationMail, Mailing};
use crate::service::{FieldErrors, FormError};
use secrecy::zeroize::Zeroizing;

/// How long an invitation link works.
pub const INVITATION_TTL_SECS: i64 = 7 * 86_400;

/// Adds a message for each group among `added` that the actor may not give a person (SPEC §11:
/// only groups whose permissions the actor holds; Administrators only by administrators), and
/// refuses taking anyone out of Administrators unless the actor is an administrator.
async fn check_group_grants(
    conn: &mut AnyConnection,
    actor: &Actor,
    added: &[&String],
    removed: &[&String],
    field: &'static str,
    errors: &mut FieldErrors,
) -> Result<(), AppError> {
    if removed.iter().any(|g| g.as_str() == ADMINISTRATORS) && !actor.is_admin {
        errors.add(
            field,
            "Only an administrator can take someone out of the Administrators group.",
        );
    }
    if added.is_empty() {
        return Ok(());
    }
    let groups: Vec<(String, String)> = repo::groups::list(conn)
        .await?
        .into_iter()
        .filter(|g| added.contains(&&g.id))
        .map(|g| (g.id, g.name))
        .collect();
    let map = repo::keys::load_access_map(conn).await?;
    for (_, message) in crate::service::grants::refused_grants(&map, actor, &[], &groups) {
        errors.add(field, message);
    }
    Ok(())
}

/// Refuses acting on a person who may do more than the actor (disabling or enabling them):
/// holding `users:write` does not make anyone the keeper of an administrator's account.
async fn require_holds_theirs(
    conn: &mut AnyConnection,
    actor: &Actor,
    user: &repo::users::UserRow,
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

async fn known_ids(conn: &mut AnyConnection, sql: &'static str) -> sqlx::Result<BTreeSet<String>> {
    Ok(sqlx::query_scalar::<_, String>(sql)
        .fetch_all(conn)
        .await?
        .into_iter()
        .collect())
}

fn chosen(ids: &[String]) -> Vec<String> {
    ids.iter()
        .filter(|i| !i.is_empty())
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A new user as typed into the Add user form.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub group_ids: Vec<String>,
}

/// Replaces a user's unused invitation with a new one and queues its email, in the caller's
/// transaction: the link exists only sealed in that email, so the invitation and its email
/// commit together or not at all.
async fn send_invitation(
    conn: &mut AnyConnection,
    mailing: &Mailing<'_>,
    actor: &Actor,
    user: (&str, &str, &str),
    now: i64,
) -> Result<(), AppError> {
    let (user_id, name, email) = user;
    let (token, expires_at) = new_invitation(conn, user_id, now).await?;
    let inviter = repo::users::find(conn, &actor.user_id)
        .await?
        .map_or_else(|| actor.label.clone(), |u| u.name);
    let mail = InvitationMail {
        name,
        email,
        inviter: &inviter,
        token: &token,
        expires_at,
    };
    notices::queue_invitation(conn, mailing, now, &mail).await?;
    Ok(())
}

async fn new_invitation(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> sqlx::Result<(Zeroizing<String>, i64)> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::fill(&mut bytes[..]);
    let token = Zeroizing::new(URL_SAFE_NO_PAD.encode(*bytes));
    let expires_at = now + INVITATION_TTL_SECS;
    sqlx::query("DELETE FROM invitations WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO invitations (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(hash_setup_token(&token))
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok((token, expires_at))
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
    let groups = chosen(&input.group_ids);
    let mut tx = begin_write(pool).await?;
    let known = known_ids(&mut tx, "SELECT id FROM user_groups").await?;
    if !groups.iter().all(|g| known.contains(g)) {
        errors.add(
            "groups",
            "One of the chosen groups no longer exists. Choose again.",
        );
    }
    let given: Vec<&String> = groups.iter().collect();
    check_group_grants(&mut tx, actor, &given, &[], "groups", &mut errors).await?;
    let (Some(name), Some(email), true) = (name, email, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let id = repo::new_id("usr");
    match repo::users::insert(&mut tx, &id, email.as_str(), name.as_str(), None, now).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => {
            errors.add("email", "A user with this email already exists.");
            return Err(FormError::Invalid(errors));
        }
        Err(e) => return Err(e.into()),
    }
    let names = group_names(&mut tx).await?;
    for g in &groups {
        repo::groups::add_member(&mut tx, g, &id, now).await?;
        notify_membership(&mut tx, &id, &names[g], true, now).await?;
    }
    let invited = (id.as_str(), name.as_str(), email.as_str());
    send_invitation(&mut tx, mailing, actor, invited, now).await?;
    let details = format!(
        "groups: {}",
        if groups.is_empty() {
            "none".to_string()
        } else {
            groups.join(", ")
        }
    );
    audit::record(
        &mut tx,
        now,
        entry(actor, "user.invited", "user", &id, email.as_str(), &details),
    )
    .await?;
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
    let user = repo::users::find(&mut tx, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if user.password_hash.is_some() {
        return Err(AppError::Conflict(format!(
            "{} has already set a password.",
            user.name
        )));
    }
    let invited = (user.id.as_str(), user.name.as_str(), user.email.as_str());
    send_invitation(&mut tx, mailing, actor, invited, now).await?;
    audit::record(
        &mut tx,
        now,
        entry(actor, "user.reinvited", "user", user_id, &user.email, ""),
    )
    .await?;
    tx.commit().await?;
    mailing.wake_sender();
    Ok(())
}

/// The user an unused, unexpired invitation token belongs to.
pub async fn invitation_user(
    pool: &AnyPool,
    clock: &dyn Clock,
    token: &str,
) -> Result<Option<repo::users::UserRow>, AppError> {
    let mut conn = pool.acquire().await?;
    let user_id: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM invitations WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(hash_setup_token(token))
    .bind(clock.unix())
    .fetch_optional(&mut *conn)
    .await?;
    match user_id {
        Some(id) => Ok(repo::users::find(&mut conn, &id)
            .await?
            .filter(|u| u.active == 1)),
        None => Ok(None),
    }
}

/// Sets the invited user's password; the link works once. Returns the user's ID.
pub async fn accept_invitation(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    token: &str,
    password: &str,
    confirm: &str,
    client_ip: &str,
) -> Result<String, FormError> {
    let user = invitation_user(pool, clock, token)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::default();
    let valid = NewPassword::parse(password, Some(&user.email))
        .map_err(|m| errors.add("password", m))
        .ok();
    if password != confirm {
        errors.add("confirm", "The passwords do not match.");
    }
    let (Some(valid), true) = (valid, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let hash = hasher.hash(valid.expose()).await?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let used = sqlx::query(
        "UPDATE invitations SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(hash_setup_token(token))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if used != 1 {
        return Err(AppError::NotFound.into());
    }
    repo::users::set_password(&mut tx, &user.id, &hash, now).await?;
    audit::record(
        &mut tx,
        now,
        NewEntry {
            actor_id: Some(&user.id),
            actor_label: &user.email,
            action: "user.invitation_accepted",
            target_type: "user",
            target_id: &user.id,
            target_label: &user.email,
            client_ip,
            outcome: SUCCESS,
            details: "",
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user.id)
}

/// Serialises every change that could leave Administrators without a member who can sign in:
/// each such transaction first locks the group's row, so two administrators removing each
/// other run one after the other and the second sees the first's change.
async fn lock_administrators(conn: &mut AnyConnection) -> sqlx::Result<()> {
    sqlx::query("UPDATE user_groups SET builtin = builtin WHERE id = $1")
        .bind(ADMINISTRATORS)
        .execute(conn)
        .await?;
    Ok(())
}

/// Members of Administrators who are enabled and have set a password (who can sign in).
async fn active_admin_count(conn: &mut AnyConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members m JOIN users u ON u.id = m.user_id \
         WHERE m.group_id = $1 AND u.active = 1 AND u.password_hash IS NOT NULL",
    )
    .bind(ADMINISTRATORS)
    .fetch_one(conn)
    .await
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
    let user = repo::users::find(&mut tx, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if (user.active == 1) == active {
        return Ok(());
    }
    require_holds_theirs(&mut tx, actor, &user).await?;
    if !active {
        if user.id == actor.user_id {
            return Err(AppError::Conflict(
                "You cannot disable your own account.".into(),
            ));
        }
        if repo::groups::is_member(&mut tx, ADMINISTRATORS, user_id).await?
            && active_admin_count(&mut tx).await? <= 1
        {
            return Err(AppError::Conflict(
                "This is the last active administrator; add another before disabling this one."
                    .into(),
            ));
        }
    }
    sqlx::query("UPDATE users SET active = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(active))
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    if !active {
        repo::sessions::delete_for_user(&mut tx, user_id).await?;
    }
    let action = if active {
        "user.enabled"
    } else {
        "user.disabled"
    };
    audit::record(
        &mut tx,
        now,
        entry(actor, action, "user", user_id, &user.email, ""),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn notify_membership(
    conn: &mut AnyConnection,
    user_id: &str,
    group_name: &str,
    added: bool,
    now: i64,
) -> sqlx::Result<()> {
    let (kind, title) = if added {
        (
            "group.member_added",
            format!("You were added to the group “{group_name}”"),
        )
    } else {
        (
            "group.member_removed",
            format!("You were removed from the group “{group_name}”"),
        )
    };
    let body = "Your permissions, and those of your personal keys, follow your groups' roles.";
    repo::notifications::insert(conn, user_id, now, kind, &title, body, "/my/keys").await
}

async fn group_names(
    conn: &mut AnyConnection,
) -> sqlx::Result<std::collections::HashMap<String, String>> {
    Ok(repo::groups::list(conn)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect())
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
    let wanted: BTreeSet<String> = chosen(group_ids).into_iter().collect();
    let mut tx = begin_write(pool).await?;
    lock_administrators(&mut tx).await?;
    let user = repo::users::find(&mut tx, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let names = group_names(&mut tx).await?;
    let mut errors = FieldErrors::default();
    if !wanted.iter().all(|g| names.contains_key(g)) {
        errors.add(
            "groups",
            "One of the chosen groups no longer exists. Choose again.",
        );
        return Err(FormError::Invalid(errors));
    }
    let current: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT group_id FROM group_members WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let added: Vec<&String> = wanted.difference(&current).collect();
    let removed: Vec<&String> = current.difference(&wanted).collect();
    check_group_grants(&mut tx, actor, &added, &removed, "groups", &mut errors).await?;
    if !errors.is_empty() {
        return Err(FormError::Invalid(errors));
    }
    if current.contains(ADMINISTRATORS)
        && !wanted.contains(ADMINISTRATORS)
        && user.active == 1
        && user.password_hash.is_some()
        && active_admin_count(&mut tx).await? <= 1
    {
        errors.add(
            "groups",
            "Administrators must keep at least one active member; add another administrator first.",
        );
        return Err(FormError::Invalid(errors));
    }
    for g in wanted.difference(&current) {
        repo::groups::add_member(&mut tx, g, user_id, now).await?;
        notify_membership(&mut tx, user_id, &names[g], true, now).await?;
    }
    for g in current.difference(&wanted) {
        sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(g)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        notify_membership(&mut tx, user_id, &names[g], false, now).await?;
    }
    if wanted != current {
        let details = format!(
            "groups: {}",
            wanted
                .iter()
                .map(|g| names[g].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        audit::record(
            &mut tx,
            now,
            entry(
                actor,
                "user.groups_changed",
                "user",
                user_id,
                &user.email,
                &details,
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A group as typed into a form.
#[derive(Debug, Clone, Default)]
pub struct GroupInput {
    pub name: String,
    pub description: String,
    pub member_ids: Vec<String>,
    pub role_ids: Vec<String>,
}

fn parse_group_text(input: &GroupInput, errors: &mut FieldErrors) -> Option<(String, String)> {
    let name = PersonName::parse(&input.name)
        .map_err(|m| errors.add("name", m.replace("a name", "a group name")))
        .ok();
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
    name.map(|n| (n.as_str().to_string(), description))
}

/// Adds a message for each role among `added` that the actor may not give a group (SPEC §11:
/// only roles whose permissions the actor holds; Tenant Administrator only by administrators).
async fn check_role_grants<'a>(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    added: impl Iterator<Item = &'a String>,
    errors: &mut FieldErrors,
) -> Result<(), AppError> {
    let added: Vec<&String> = added.collect();
    if added.is_empty() {
        return Ok(());
    }
    let roles: Vec<(String, String)> = repo::roles::list(conn)
        .await?
        .into_iter()
        .filter(|r| added.contains(&&r.id))
        .map(|r| (r.id, r.name))
        .collect();
    let map = repo::keys::load_access_map(conn).await?;
    for (field, message) in crate::service::grants::refused_grants(&map, actor, &roles, &[]) {
        errors.add(field, message);
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
    let roles = chosen(&input.role_ids);
    let mut tx = begin_write(pool).await?;
    let known_roles = known_ids(&mut tx, "SELECT id FROM roles").await?;
    if !roles.iter().all(|r| known_roles.contains(r)) {
        errors.add(
            "roles",
            "One of the chosen roles no longer exists. Choose again.",
        );
    }
    check_role_grants(&mut tx, actor, roles.iter(), &mut errors).await?;
    let (Some((name, description)), true) = (text, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let id = repo::new_id("grp");
    let inserted = sqlx::query("INSERT INTO user_groups (id, name, description, builtin, created_at) VALUES ($1, $2, $3, 0, $4)")
        .bind(&id)
        .bind(&name)
        .bind(&description)
        .bind(now)
        .execute(&mut *tx)
        .await;
    match inserted {
        Ok(_) => {}
        Err(e) if db::is_unique_violation(&e) => {
            errors.add("name", "A group with this name already exists.");
            return Err(FormError::Invalid(errors));
        }
        Err(e) => return Err(e.into()),
    }
    for r in &roles {
        sqlx::query("INSERT INTO group_roles (group_id, role_id) VALUES ($1, $2)")
            .bind(&id)
            .bind(r)
            .execute(&mut *tx)
            .await?;
    }
    audit::record(
        &mut tx,
        now,
        entry(actor, "group.created", "group", &id, &name, ""),
    )
    .await?;
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
    let group = repo::groups::find(&mut tx, group_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let builtin = group.builtin == 1;
    let mut errors = FieldErrors::default();
    let text = parse_group_text(&input, &mut errors);
    let members: BTreeSet<String> = chosen(&input.member_ids).into_iter().collect();
    let mut roles: BTreeSet<String> = chosen(&input.role_ids).into_iter().collect();
    let known_users = known_ids(&mut tx, "SELECT id FROM users").await?;
    let known_roles = known_ids(&mut tx, "SELECT id FROM roles").await?;
    if !members.is_subset(&known_users) {
        errors.add(
            "members",
            "One of the chosen users no longer exists. Choose again.",
        );
    }
    if !roles.is_subset(&known_roles) {
        errors.add(
            "roles",
            "One of the chosen roles no longer exists. Choose again.",
        );
    }
    let current_roles: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT role_id FROM group_roles WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    check_role_grants(
        &mut tx,
        actor,
        roles.difference(&current_roles),
        &mut errors,
    )
    .await?;
    let current_members: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT user_id FROM group_members WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    // Adding people gives them the group's permissions; taking them out of Administrators
    // is for administrators.
    let this = group_id.to_string();
    let (added, removed): (Vec<&String>, Vec<&String>) = (
        members
            .difference(&current_members)
            .take(1)
            .map(|_| &this)
            .collect(),
        current_members
            .difference(&members)
            .take(1)
            .map(|_| &this)
            .collect(),
    );
    check_group_grants(&mut tx, actor, &added, &removed, "members", &mut errors).await?;
    if builtin {
        roles = current_roles.clone();
        if let Some((name, _)) = &text
            && *name != group.name
        {
            errors.add(
                "name",
                "The built-in Administrators group cannot be renamed.",
            );
        }
        let active_members: i64 = if members.is_empty() {
            0
        } else {
            let mut n = 0;
            for m in &members {
                if repo::users::find(&mut tx, m)
                    .await?
                    .is_some_and(|u| u.active == 1 && u.password_hash.is_some())
                {
                    n += 1;
                }
            }
            n
        };
        if active_members == 0 {
            errors.add(
                "members",
                "Administrators must keep at least one active member.",
            );
        }
    }
    let (Some((name, description)), true) = (text, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let renamed = sqlx::query("UPDATE user_groups SET name = $1, description = $2 WHERE id = $3")
        .bind(&name)
        .bind(&description)
        .bind(group_id)
        .execute(&mut *tx)
        .await;
    if let Err(e) = renamed {
        if is_unique_violation(&e) {
            errors.add("name", "A group with this name already exists.");
            return Err(FormError::Invalid(errors));
        }
        return Err(e.into());
    }
    for m in members.difference(&current_members) {
        repo::groups::add_member(&mut tx, group_id, m, now).await?;
        notify_membership(&mut tx, m, &name, true, now).await?;
    }
    for m in current_members.difference(&members) {
        sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(m)
            .execute(&mut *tx)
            .await?;
        notify_membership(&mut tx, m, &name, false, now).await?;
    }
    if roles != current_roles {
        sqlx::query("DELETE FROM group_roles WHERE group_id = $1")
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        for r in &roles {
            sqlx::query("INSERT INTO group_roles (group_id, role_id) VALUES ($1, $2)")
                .bind(group_id)
                .bind(r)
                .execute(&mut *tx)
                .await?;
        }
        let title = format!("The roles of the group “{name}” changed");
        for m in &members {
            repo::notifications::insert(
                &mut tx,
                m,
                now,
                "group.roles_changed",
                &title,
                "Your permissions follow your groups' roles.",
                "/my/keys",
            )
            .await?;
        }
    }
    let details = format!(
        "members: {}; roles: {}",
        members.len(),
        roles.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    audit::record(
        &mut tx,
        now,
        entry(actor, "group.updated", "group", group_id, &name, &details),
    )
    .await?;
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
    let group = repo::groups::find(&mut tx, group_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if group.builtin == 1 {
        return Err(AppError::Conflict(
            "The built-in Administrators group cannot be deleted.".into(),
        ));
    }
    let members: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&mut *tx)
            .await?;
    for m in &members {
        notify_membership(&mut tx, m, &group.name, false, now).await?;
    }
    sqlx::query("DELETE FROM user_groups WHERE id = $1")
        .bind(group_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        now,
        entry(actor, "group.deleted", "group", group_id, &group.name, ""),
    )
    .await?;
    tx.commit().await?;
    Ok(group.name)
}

/// A custom role as typed into a form.
#[derive(Debug, Clone, Default)]
pub struct RoleInput {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

fn parse_role(
    input: &RoleInput,
    errors: &mut FieldErrors,
) -> Option<(String, String, Vec<Permission>)> {
    let name = PersonName::parse(&input.name)
        .map_err(|m| errors.add("name", m.replace("a name", "a role name")))
        .ok();
    let description = input.description.trim().to_string();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        errors.add(
            "description",
            "A description can be at most 200 characters, without control characters.",
        );
    }
    let mut perms = Vec::new();
    for p in chosen(&input.permissions) {
        match Permission::parse(&p) {
            Some(p) => perms.push(p),
            None => errors.add("permissions", format!("“{p}” is not a permission.")),
        }
    }
    if perms.is_empty() && errors.get("permissions").is_none() {
        errors.add("permissions", "Choose at least one permission.");
    }
    name.map(|n| (n.as_str().to_string(), description, perms))
}

async fn write_role(conn: &mut AnyConnection, id: &str, perms: &[Permission]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for p in perms {
        sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
            .bind(id)
            .bind(p.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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
    let mut errors = FieldErrors::default();
    let parsed = parse_role(&input, &mut errors);
    if let Some((_, _, perms)) = &parsed {
        crate::service::grants::check_permission_grants(actor, perms, &[], &mut errors);
    }
    let (Some((name, description, perms)), true) = (parsed, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let id = repo::new_id("role");
    let mut tx = begin_write(pool).await?;
    let inserted = sqlx::query(
        "INSERT INTO roles (id, name, description, builtin, created_at) VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(&id)
    .bind(&name)
    .bind(&description)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            errors.add("name", "A role with this name already exists.");
            return Err(FormError::Invalid(errors));
        }
        Err(e) => return Err(e.into()),
    }
    write_role(&mut tx, &id, &perms).await?;
    let details = perms
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    audit::record(
        &mut tx,
        now,
        entry(actor, "role.created", "role", &id, &name, &details),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes a custom role; built-in roles refuse.
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
    let role = repo::roles::find(&mut tx, role_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if role.builtin == 1 {
        return Err(AppError::Conflict(format!(
            "“{}” is a built-in role and cannot be changed.",
            role.name
        ))
        .into());
    }
    let mut errors = FieldErrors::default();
    let parsed = parse_role(&input, &mut errors);
    let held = repo::roles::role_permissions(&mut tx, role_id).await?;
    if let Some((_, _, perms)) = &parsed {
        crate::service::grants::check_permission_grants(actor, perms, &held, &mut errors);
    }
    let (Some((name, description, perms)), true) = (parsed, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let updated = sqlx::query("UPDATE roles SET name = $1, description = $2 WHERE id = $3")
        .bind(&name)
        .bind(&description)
        .bind(role_id)
        .execute(&mut *tx)
        .await;
    if let Err(e) = updated {
        if is_unique_violation(&e) {
            errors.add("name", "A role with this name already exists.");
            return Err(FormError::Invalid(errors));
        }
        return Err(e.into());
    }
    write_role(&mut tx, role_id, &perms).await?;
    let affected: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT m.user_id FROM group_roles gr \
         JOIN group_members m ON m.group_id = gr.group_id WHERE gr.role_id = $1",
    )
    .bind(role_id)
    .fetch_all(&mut *tx)
    .await?;
    let title = format!("The permissions of the role “{name}” changed");
    for user in &affected {
        repo::notifications::insert(
            &mut tx,
            user,
            now,
            "role.updated",
            &title,
            "Your permissions follow your groups' roles.",
            "/my/keys",
        )
        .await?;
    }
    let details = perms
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    audit::record(
        &mut tx,
        now,
        entry(actor, "role.updated", "role", role_id, &name, &details),
    )
    .await?;
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
    let role = repo::roles::find(&mut tx, role_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if role.builtin == 1 {
        return Err(AppError::Conflict(format!(
            "“{}” is a built-in role and cannot be deleted.",
            role.name
        )));
    }
    sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(role_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        now,
        entry(actor, "role.deleted", "role", role_id, &role.name, ""),
    )
    .await?;
    tx.commit().await?;
    Ok(role.name)
}
