//! The Users, Groups and Roles tabs, and the invitation link a new user follows.

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::client_ip::client_ip;
use crate::auth::csrf::AnonymousToken;
use crate::domain::Permission;
use crate::error::AppError;
use crate::repo;
use crate::service::bootstrap::LINK_TOKEN_LEN;
use crate::service::notices::Mailing;
use crate::service::people::{self, GroupInput, NewUser, RoleInput};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::{Granted, GroupsWrite, RolesWrite, UsersRead, UsersWrite};
use crate::web::pages::When;
use crate::web::sign_in::start_session;
use crate::web::{Frame, asset_url, html, see_other};

/// Form fields, with repeated names (checkbox lists) kept.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }
    fn one(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn many(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The fixed text of a notice code carried in a redirect.
fn notice_text(code: &str) -> String {
    match code {
        "invited" => "Invitation sent. The link works once, for 7 days.",
        "reinvited" => "A new invitation was sent; earlier links no longer work.",
        "disabled" => {
            "The user is disabled: they are signed out and their personal keys stop authenticating."
        }
        "enabled" => "The user is enabled again.",
        "group_deleted" => "The group was deleted.",
        "role_deleted" => "The role was deleted.",
        _ => "",
    }
    .to_string()
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
    saved: Option<String>,
}

fn field_error(errors: &FieldErrors, field: &str) -> String {
    errors.get(field).unwrap_or_default().to_string()
}

// ---- Users -------------------------------------------------------------------------------

struct UserItem {
    id: String,
    name: String,
    email: String,
    groups: String,
    active: bool,
    invited: bool,
    personal_keys: i64,
    last_sign_in: Option<When>,
}

#[derive(Template)]
#[template(path = "people/users.html")]
struct UsersPage {
    frame: Frame,
    tab: &'static str,
    users: Vec<UserItem>,
    notice: String,
}

/// GET /user-access/users
pub async fn users(
    user: Granted<UsersRead>,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.unix();
    let mut conn = state.pool.acquire().await?;
    let rows = repo::users::list(&mut conn).await?;
    let counts: HashMap<String, i64> = repo::keys::personal_counts(&mut conn)
        .await?
        .into_iter()
        .collect();
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for (user_id, group) in repo::groups::memberships(&mut conn).await? {
        groups.entry(user_id).or_default().push(group);
    }
    let users = rows
        .into_iter()
        .map(|u| UserItem {
            groups: groups.remove(&u.id).unwrap_or_default().join(", "),
            personal_keys: counts.get(&u.id).copied().unwrap_or(0),
            invited: u.password_hash.is_none(),
            id: u.id,
            name: u.name,
            email: u.email,
            active: u.active == 1,
            last_sign_in: u.last_sign_in_at.map(|t| When::at(t, now)),
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        UsersPage {
            frame: Frame::new(&user, "users-and-keys"),
            tab: "users",
            users,
            notice: notice_text(&query.notice),
        },
    ))
}

#[derive(Template)]
#[template(path = "people/user_new.html")]
struct NewUserPage {
    frame: Frame,
    name: String,
    email: String,
    groups: Vec<(String, String, bool)>,
    errors: FieldErrors,
}

impl NewUserPage {
    fn error(&self, field: &str) -> String {
        field_error(&self.errors, field)
    }
}

async fn group_choices(
    state: &AppState,
    chosen: &[String],
) -> Result<Vec<(String, String, bool)>, AppError> {
    let mut conn = state.pool.acquire().await?;
    Ok(repo::groups::list(&mut conn)
        .await?
        .into_iter()
        .map(|g| {
            let on = chosen.contains(&g.id);
            (g.id, g.name, on)
        })
        .collect())
}

/// GET /user-access/users/new
pub async fn new_user_form(
    user: Granted<UsersWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let groups = group_choices(&state, &[]).await?;
    Ok(html(
        StatusCode::OK,
        NewUserPage {
            frame: Frame::new(&user, "users-and-keys"),
            name: String::new(),
            email: String::new(),
            groups,
            errors: FieldErrors::default(),
        },
    ))
}

/// What queuing an invitation needs: the vault, the public URL and the sender to wake.
fn mailing<'a>(state: &'a AppState, sender: &'a tokio::sync::Notify) -> Mailing<'a> {
    Mailing {
        vault: &state.vault,
        public_url: &state.settings.public_url,
        sender,
    }
}

fn with_notice(path: &str, notice: &str) -> HttpResponse {
    let q = serde_urlencoded::to_string([("notice", notice)]).unwrap_or_default();
    see_other(&format!("{path}?{q}"))
}

/// POST /user-access/users — adds a user and emails the invitation.
pub async fn create_user(
    user: Granted<UsersWrite>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let f = Fields::parse(&body);
    let input = NewUser {
        name: f.one("name"),
        email: f.one("email"),
        group_ids: f.many("groups"),
    };
    let sender = state.sender.clone();
    match people::invite(
        &state.pool,
        state.clock.as_ref(),
        &user.actor(),
        &mailing(&state, &sender),
        input.clone(),
    )
    .await
    {
        Ok(_) => Ok(with_notice("/user-access/users", "invited")),
        Err(FormError::Invalid(errors)) => {
            let groups = group_choices(&state, &input.group_ids).await?;
            Ok(html(
                StatusCode::UNPROCESSABLE_ENTITY,
                NewUserPage {
                    frame: Frame::new(&user, "users-and-keys"),
                    name: input.name,
                    email: input.email,
                    groups,
                    errors,
                },
            ))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "people/user.html")]
struct UserPage {
    frame: Frame,
    id: String,
    name: String,
    email: String,
    active: bool,
    invited: bool,
    groups: Vec<(String, String, bool)>,
    error: String,
    notice: String,
}

impl UserPage {
    fn chosen_names(&self) -> String {
        crate::web::names_of(&self.groups)
    }
}

async fn user_page(
    admin: &CurrentUser,
    state: &AppState,
    id: &str,
    chosen: Option<Vec<String>>,
    error: String,
    notice: String,
) -> Result<UserPage, AppError> {
    let mut conn = state.pool.acquire().await?;
    let u = repo::users::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let current: Vec<String> =
        sqlx::query_scalar("SELECT group_id FROM group_members WHERE user_id = $1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    drop(conn);
    let groups = group_choices(state, &chosen.unwrap_or(current)).await?;
    Ok(UserPage {
        frame: Frame::new(admin, "users-and-keys"),
        id: u.id,
        name: u.name,
        email: u.email,
        active: u.active == 1,
        invited: u.password_hash.is_none(),
        groups,
        error,
        notice,
    })
}

/// GET /user-access/users/{id}
pub async fn user(
    admin: Granted<UsersRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let notice = if q.saved.is_some() {
        "The groups were saved.".to_string()
    } else {
        notice_text(&q.notice)
    };
    let page = user_page(&admin, &state, &path, None, String::new(), notice).await?;
    Ok(html(StatusCode::OK, page))
}

/// POST /user-access/users/{id} — replaces the user's groups.
pub async fn update_user(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let groups = Fields::parse(&body).many("groups");
    match people::set_user_groups(
        &state.pool,
        state.clock.as_ref(),
        &admin.actor(),
        &path,
        &groups,
    )
    .await
    {
        Ok(()) => Ok(see_other(&format!(
            "/user-access/users/{}?saved=1",
            path.as_str()
        ))),
        Err(FormError::Invalid(errors)) => {
            let page = user_page(
                &admin,
                &state,
                &path,
                Some(groups),
                field_error(&errors, "groups"),
                String::new(),
            )
            .await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

/// POST /user-access/users/{id}/disable
pub async fn disable_user(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    people::set_active(
        &state.pool,
        state.clock.as_ref(),
        &admin.actor(),
        &path,
        false,
    )
    .await?;
    Ok(with_notice(
        &format!("/user-access/users/{}", path.as_str()),
        "disabled",
    ))
}

/// POST /user-access/users/{id}/enable
pub async fn enable_user(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    people::set_active(
        &state.pool,
        state.clock.as_ref(),
        &admin.actor(),
        &path,
        true,
    )
    .await?;
    Ok(with_notice(
        &format!("/user-access/users/{}", path.as_str()),
        "enabled",
    ))
}

/// POST /user-access/users/{id}/invite — a new invitation link.
pub async fn reinvite_user(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let sender = state.sender.clone();
    people::reinvite(
        &state.pool,
        state.clock.as_ref(),
        &admin.actor(),
        &mailing(&state, &sender),
        &path,
    )
    .await?;
    Ok(with_notice(
        &format!("/user-access/users/{}", path.as_str()),
        "reinvited",
    ))
}

// ---- Invitation link ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    csrf: String,
    token: String,
    name: String,
    email: String,
    errors: FieldErrors,
    css: String,
    icon: String,
}

impl InvitePage {
    fn error(&self, field: &str) -> String {
        field_error(&self.errors, field)
    }
}

fn invalid_invitation() -> AppError {
    AppError::Conflict("This invitation link is invalid, expired or already used. Ask an administrator to send a new one.".into())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// GET /invite?token=… — writes no session: the form's CSRF token is the anonymous one.
pub async fn invite_form(
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    // A token longer than any we issue is refused before it is hashed or looked up.
    if query.token.len() > LINK_TOKEN_LEN {
        return Err(invalid_invitation());
    }
    let u = people::invitation_user(&state.pool, state.clock.as_ref(), &query.token)
        .await?
        .ok_or_else(invalid_invitation)?;
    let page = InvitePage {
        csrf: csrf.token.clone(),
        token: query.token.clone(),
        name: u.name,
        email: u.email,
        errors: FieldErrors::default(),
        css: asset_url("app.css"),
        icon: asset_url("favicon.svg"),
    };
    let mut res = html(StatusCode::OK, page);
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(csrf.attach(res))
}

#[derive(Deserialize)]
pub struct InviteForm {
    token: String,
    password: String,
    confirm: String,
}

/// POST /invite — sets the password and signs the new user in. The token's length is checked
/// before anything else, the password's before any hashing (in `NewPassword::parse`).
pub async fn accept_invite(
    req: HttpRequest,
    session: Session,
    csrf: AnonymousToken,
    state: web::Data<AppState>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    if form.token.len() > LINK_TOKEN_LEN {
        return Err(invalid_invitation());
    }
    match people::accept_invitation(
        &state.pool,
        &state.hasher,
        state.clock.as_ref(),
        &form.token,
        &form.password,
        &form.confirm,
        &client_ip(&req),
    )
    .await
    {
        Ok(user_id) => {
            start_session(&session, &user_id, state.clock.unix())?;
            Ok(see_other("/"))
        }
        Err(FormError::Invalid(errors)) => {
            let u = people::invitation_user(&state.pool, state.clock.as_ref(), &form.token)
                .await?
                .ok_or_else(invalid_invitation)?;
            let page = InvitePage {
                csrf: csrf.token.clone(),
                token: form.token,
                name: u.name,
                email: u.email,
                errors,
                css: asset_url("app.css"),
                icon: asset_url("favicon.svg"),
            };
            Ok(csrf.attach(html(StatusCode::UNPROCESSABLE_ENTITY, page)))
        }
        Err(FormError::Other(AppError::NotFound)) => Err(invalid_invitation()),
        Err(FormError::Other(e)) => Err(e),
    }
}

// ---- Groups ------------------------------------------------------------------------------

struct GroupItem {
    id: String,
    name: String,
    description: String,
    builtin: bool,
    members: i64,
    roles: String,
}

#[derive(Template)]
#[template(path = "people/groups.html")]
struct GroupsPage {
    frame: Frame,
    tab: &'static str,
    groups: Vec<GroupItem>,
    notice: String,
}

/// GET /user-access/groups
pub async fn groups(
    user: Granted<UsersRead>,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.acquire().await?;
    let mut roles: HashMap<String, Vec<String>> = HashMap::new();
    for (group_id, role) in repo::groups::role_names(&mut conn).await? {
        roles.entry(group_id).or_default().push(role);
    }
    let groups = repo::groups::list(&mut conn)
        .await?
        .into_iter()
        .map(|g| GroupItem {
            roles: roles.remove(&g.id).unwrap_or_default().join(", "),
            id: g.id,
            name: g.name,
            description: g.description,
            builtin: g.builtin == 1,
            members: g.members,
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        GroupsPage {
            frame: Frame::new(&user, "users-and-keys"),
            tab: "groups",
            groups,
            notice: notice_text(&query.notice),
        },
    ))
}

#[derive(Template)]
#[template(path = "people/group.html")]
struct GroupPage {
    frame: Frame,
    id: String,
    title: String,
    builtin: bool,
    name: String,
    description: String,
    users: Vec<(String, String, bool)>,
    roles: Vec<(String, String, bool)>,
    errors: FieldErrors,
    saved: bool,
}

impl GroupPage {
    fn error(&self, field: &str) -> String {
        field_error(&self.errors, field)
    }
    fn chosen_names(&self, choices: &[(String, String, bool)]) -> String {
        crate::web::names_of(choices)
    }
}

async fn group_page(
    admin: &CurrentUser,
    state: &AppState,
    id: Option<&str>,
    form: Option<(GroupInput, FieldErrors)>,
    saved: bool,
) -> Result<GroupPage, AppError> {
    let mut conn = state.pool.acquire().await?;
    let group = match id {
        Some(id) => Some(
            repo::groups::find(&mut conn, id)
                .await?
                .ok_or(AppError::NotFound)?,
        ),
        None => None,
    };
    let (members, roles_now): (Vec<String>, Vec<String>) = match id {
        Some(id) => (
            sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?,
            sqlx::query_scalar("SELECT role_id FROM group_roles WHERE group_id = $1")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let all_users = repo::users::list(&mut conn).await?;
    let all_roles = repo::roles::list(&mut conn).await?;
    let (input, errors) = form.unwrap_or_else(|| {
        (
            GroupInput {
                name: group.as_ref().map(|g| g.name.clone()).unwrap_or_default(),
                description: group
                    .as_ref()
                    .map(|g| g.description.clone())
                    .unwrap_or_default(),
                member_ids: members,
                role_ids: roles_now.clone(),
            },
            FieldErrors::default(),
        )
    });
    let builtin = group.as_ref().is_some_and(|g| g.builtin == 1);
    let role_ids = if builtin { roles_now } else { input.role_ids };
    Ok(GroupPage {
        frame: Frame::new(admin, "users-and-keys"),
        id: id.unwrap_or_default().to_string(),
        title: group.map(|g| g.name).unwrap_or_default(),
        builtin,
        name: input.name,
        description: input.description,
        users: all_users
            .into_iter()
            .map(|u| {
                let on = input.member_ids.contains(&u.id);
                (u.id, format!("{} ({})", u.name, u.email), on)
            })
            .collect(),
        roles: all_roles
            .into_iter()
            .map(|r| {
                let on = role_ids.contains(&r.id);
                (r.id, r.name, on)
            })
            .collect(),
        errors,
        saved,
    })
}

fn group_input(body: &[u8]) -> GroupInput {
    let f = Fields::parse(body);
    GroupInput {
        name: f.one("name"),
        description: f.one("description"),
        member_ids: f.many("members"),
        role_ids: f.many("roles"),
    }
}

/// GET /user-access/groups/new
pub async fn new_group_form(
    admin: Granted<GroupsWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    Ok(html(
        StatusCode::OK,
        group_page(&admin, &state, None, None, false).await?,
    ))
}

/// POST /user-access/groups
pub async fn create_group(
    admin: Granted<GroupsWrite>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let input = group_input(&body);
    match people::create_group(
        &state.pool,
        state.clock.as_ref(),
        &admin.actor(),
        input.clone(),
    )
    .await
    {
        Ok(id) => Ok(see_other(&format!("/user-access/groups/{id}?saved=1"))),
        Err(FormError::Invalid(errors)) => Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            group_page(&admin, &state, None, Some((input, errors)), false).await?,
        )),
        Err(FormError::Other(e)) => Err(e),
    }
}

/// GET /user-access/groups/{id}
pub async fn group(
    admin: Granted<UsersRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    Ok(html(
        StatusCode::OK,
        group_page(&admin, &state, Some(&path), None, query.saved.is_some()).await?,
    ))
}

/// POST /user-access/groups/{id}
pub async fn update_group(
    admin: Granted<GroupsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let input = group_input(&body);
    match people::update_group(
        &state.pool,
        state.clock.as_ref(),
        &admin.actor(),
        &path,
        input.clone(),
    )
    .await
    {
        Ok(()) => Ok(see_other(&format!(
            "/user-access/groups/{}?saved=1",
            path.as_str()
        ))),
        Err(FormError::Invalid(errors)) => Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            group_page(&admin, &state, Some(&path), Some((input, errors)), false).await?,
        )),
        Err(FormError::Other(e)) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "people/group_delete.html")]
struct GroupDeletePage {
    frame: Frame,
    id: String,
    name: String,
    members: i64,
}

/// GET /user-access/groups/{id}/delete
pub async fn delete_group_form(
    admin: Granted<GroupsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.acquire().await?;
    let g = repo::groups::find(&mut conn, &path)
        .await?
        .ok_or(AppError::NotFound)?;
    if g.builtin == 1 {
        return Err(AppError::Conflict(
            "The built-in Administrators group cannot be deleted.".into(),
        ));
    }
    Ok(html(
        StatusCode::OK,
        GroupDeletePage {
            frame: Frame::new(&admin, "users-and-keys"),
            id: g.id,
            name: g.name,
            members: g.members,
        },
    ))
}

/// POST /user-access/groups/{id}/delete
pub async fn delete_group(
    admin: Granted<GroupsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    people::delete_group(&state.pool, state.clock.as_ref(), &admin.actor(), &path).await?;
    Ok(with_notice("/user-access/groups", "group_deleted"))
}

// ---- Roles -------------------------------------------------------------------------------

struct RoleItem {
    id: String,
    name: String,
    description: String,
    builtin: bool,
    permissions: Vec<String>,
}

#[derive(Template)]
#[template(path = "people/roles.html")]
struct RolesPage {
    frame: Frame,
    tab: &'static str,
    roles: Vec<RoleItem>,
    notice: String,
}

/// GET /user-access/roles
pub async fn roles(
    user: Granted<UsersRead>,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.acquire().await?;
    let mut perms: HashMap<String, Vec<String>> = HashMap::new();
    for (role_id, p) in repo::roles::permissions(&mut conn).await? {
        perms.entry(role_id).or_default().push(p);
    }
    let roles = repo::roles::list(&mut conn)
        .await?
        .into_iter()
        .map(|r| RoleItem {
            permissions: perms.remove(&r.id).unwrap_or_default(),
            id: r.id,
            name: r.name,
            description: r.description,
            builtin: r.builtin == 1,
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        RolesPage {
            frame: Frame::new(&user, "users-and-keys"),
            tab: "roles",
            roles,
            notice: notice_text(&query.notice),
        },
    ))
}

#[derive(Template)]
#[template(path = "people/role.html")]
struct RolePage {
    frame: Frame,
    id: String,
    title: String,
    builtin: bool,
    name: String,
    description: String,
    permissions: Vec<(&'static str, String, bool)>,
    errors: FieldErrors,
    saved: bool,
}

impl RolePage {
    fn error(&self, field: &str) -> String {
        field_error(&self.errors, field)
    }
}

async fn role_page(
    admin: &CurrentUser,
    state: &AppState,
    id: Option<&str>,
    form: Option<(RoleInput, FieldErrors)>,
    saved: bool,
) -> Result<RolePage, AppError> {
    let mut conn = state.pool.acquire().await?;
    let role = match id {
        Some(id) => Some(
            repo::roles::find(&mut conn, id)
                .await?
                .ok_or(AppError::NotFound)?,
        ),
        None => None,
    };
    let descriptions: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT name, description FROM permissions")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let current: Vec<String> = match id {
        Some(id) => {
            sqlx::query_scalar("SELECT permission FROM role_permissions WHERE role_id = $1")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?
        }
        None => Vec::new(),
    };
    let (input, errors) = form.unwrap_or_else(|| {
        (
            RoleInput {
                name: role.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
                description: role
                    .as_ref()
                    .map(|r| r.description.clone())
                    .unwrap_or_default(),
                permissions: current,
            },
            FieldErrors::default(),
        )
    });
    Ok(RolePage {
        frame: Frame::new(admin, "users-and-keys"),
        id: id.unwrap_or_default().to_string(),
        builtin: role.as_ref().is_some_and(|r| r.builtin == 1),
        title: role.map(|r| r.name).unwrap_or_default(),
        name: input.name,
        description: input.description,
        permissions: Permission::ALL
            .iter()
            .map(|p| {
                (
                    p.as_str(),
                    descriptions.get(p.as_str()).cloned().unwrap_or_default(),
                    input.permissions.iter().any(|q| q == p.as_str()),
                )
            })
            .collect(),
        errors,
        saved,
    })
}

fn role_input(body: &[u8]) -> RoleInput {
    let f = Fields::parse(body);
    RoleInput {
        name: f.one("name"),
        description: f.one("description"),
        permissions: f.many("permissions"),
    }
}

/// GET /user-access/roles/new
pub async fn new_role_form(
    admin: Granted<RolesWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    Ok(html(
        StatusCode::OK,
        role_page(&admin, &state, None, None, false).await?,
    ))
}

/// POST /user-access/roles
pub async fn create_role(
    admin: Granted<RolesWrite>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let input = role_input(&body);
    match people::create_role(
        &state.pool,
        state.clock.as_ref(),
        &admin.actor(),
        input.clone(),
    )
    .await
    {
        Ok(id) => Ok(see_other(&format!("/user-access/roles/{id}?saved=1"))),
        Err(FormError::Invalid(errors)) => Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            role_page(&admin, &state, None, Some((input, errors)), false).await?,
        )),
        Err(FormError::Other(e)) => Err(e),
    }
}

/// GET /user-access/roles/{id}
pub async fn role(
    admin: Granted<UsersRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    Ok(html(
        StatusCode::OK,
        role_page(&admin, &state, Some(&path), None, query.saved.is_some()).await?,
    ))
}

/// POST /user-access/roles/{id}
pub async fn update_role(
    admin: Granted<RolesWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let input = role_input(&body);
    match people::update_role(
        &state.pool,
        state.clock.as_ref(),
        &admin.actor(),
        &path,
        input.clone(),
    )
    .await
    {
        Ok(()) => Ok(see_other(&format!(
            "/user-access/roles/{}?saved=1",
            path.as_str()
        ))),
        Err(FormError::Invalid(errors)) => Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            role_page(&admin, &state, Some(&path), Some((input, errors)), false).await?,
        )),
        Err(FormError::Other(e)) => Err(e),
    }
}

/// POST /user-access/roles/{id}/delete
pub async fn delete_role(
    admin: Granted<RolesWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    people::delete_role(&state.pool, state.clock.as_ref(), &admin.actor(), &path).await?;
    Ok(with_notice("/user-access/roles", "role_deleted"))
}

/// The routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/user-access/users", web::get().to(users))
        .route("/user-access/users", web::post().to(create_user))
        .route("/user-access/users/new", web::get().to(new_user_form))
        .route("/user-access/users/{id}", web::get().to(user))
        .route("/user-access/users/{id}", web::post().to(update_user))
        .route(
            "/user-access/users/{id}/disable",
            web::post().to(disable_user),
        )
        .route(
            "/user-access/users/{id}/enable",
            web::post().to(enable_user),
        )
        .route(
            "/user-access/users/{id}/invite",
            web::post().to(reinvite_user),
        )
        .route("/invite", web::get().to(invite_form))
        .route("/invite", web::post().to(accept_invite))
        .route("/user-access/groups", web::get().to(groups))
        .route("/user-access/groups", web::post().to(create_group))
        .route("/user-access/groups/new", web::get().to(new_group_form))
        .route("/user-access/groups/{id}", web::get().to(group))
        .route("/user-access/groups/{id}", web::post().to(update_group))
        .route(
            "/user-access/groups/{id}/delete",
            web::get().to(delete_group_form),
        )
        .route(
            "/user-access/groups/{id}/delete",
            web::post().to(delete_group),
        )
        .route("/user-access/roles", web::get().to(roles))
        .route("/user-access/roles", web::post().to(create_role))
        .route("/user-access/roles/new", web::get().to(new_role_form))
        .route("/user-access/roles/{id}", web::get().to(role))
        .route("/user-access/roles/{id}", web::post().to(update_role))
        .route(
            "/user-access/roles/{id}/delete",
            web::post().to(delete_role),
        );
}
