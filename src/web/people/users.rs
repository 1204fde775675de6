//! The Users tab, the Add user form and a user's page: groups, disable and enable, a new
//! invitation.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{Fields, NoticeQuery, Ticks, answer, field_error, notice_text, ticks, with_notice};
use crate::error::AppError;
use crate::service::FieldErrors;
use crate::service::notices::Mailing;
use crate::service::people::{self, NewUser};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::{Granted, UsersRead, UsersWrite};
use crate::web::pages::When;
use crate::web::{Frame, html, see_other};

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
    let users = people::list_users(&state.pool, &user.actor())
        .await?
        .into_iter()
        .map(|u| UserItem {
            groups: u.groups.join(", "),
            last_sign_in: u.last_sign_in_at.map(|t| When::at(t, now)),
            id: u.id,
            name: u.name,
            email: u.email,
            active: u.active,
            invited: u.invited,
            personal_keys: u.personal_keys,
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
    groups: Ticks,
    errors: FieldErrors,
}

impl NewUserPage {
    fn error(&self, field: &str) -> String {
        field_error(&self.errors, field)
    }
}

/// The Add user form, empty or as typed with its messages.
async fn new_user_page(
    user: &CurrentUser,
    state: &AppState,
    input: NewUser,
    errors: FieldErrors,
) -> Result<NewUserPage, AppError> {
    let groups = people::new_user_groups(&state.pool, &user.actor(), &input.group_ids).await?;
    Ok(NewUserPage {
        frame: Frame::new(user, "users-and-keys"),
        name: input.name,
        email: input.email,
        groups: ticks(groups),
        errors,
    })
}

/// GET /user-access/users/new
pub async fn new_user_form(
    user: Granted<UsersWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let page = new_user_page(&user, &state, NewUser::default(), FieldErrors::default());
    Ok(html(StatusCode::OK, page.await?))
}

/// What queuing an invitation needs: the vault, the public URL and the sender to wake.
fn mailing(state: &AppState) -> Mailing<'_> {
    Mailing {
        vault: &state.vault,
        public_url: &state.settings.public_url,
        sender: &state.sender,
    }
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
    let actor = user.actor();
    let invited = people::invite(
        &state.pool,
        state.clock.as_ref(),
        &actor,
        &mailing(&state),
        input.clone(),
    )
    .await;
    answer(
        invited,
        |_| with_notice("/user-access/users", "invited"),
        async |errors| new_user_page(&user, &state, input, errors).await,
    )
    .await
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
    groups: Ticks,
    error: String,
    notice: String,
    has_second_factor: bool,
}

impl UserPage {
    fn chosen_names(&self) -> String {
        crate::web::names_of(&self.groups)
    }
}

/// A user's page; `form`: the groups a form chose, with its message, when it comes back.
async fn user_page(
    viewer: &CurrentUser,
    state: &AppState,
    id: &str,
    form: Option<(&[String], String)>,
    notice: String,
) -> Result<UserPage, AppError> {
    let (chosen, error) = form.unzip();
    let u = people::user_details(&state.pool, &viewer.actor(), id, chosen).await?;
    Ok(UserPage {
        frame: Frame::new(viewer, "users-and-keys"),
        id: u.id,
        name: u.name,
        email: u.email,
        active: u.active,
        invited: u.invited,
        groups: ticks(u.groups),
        error: error.unwrap_or_default(),
        notice,
        has_second_factor: u.has_second_factor,
    })
}

/// GET /user-access/users/{id}
pub async fn user(
    viewer: Granted<UsersRead>,
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
    let page = user_page(&viewer, &state, &path, None, notice).await?;
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
    let actor = admin.actor();
    let saved =
        people::set_user_groups(&state.pool, state.clock.as_ref(), &actor, &path, &groups).await;
    answer(
        saved,
        |()| see_other(&format!("/user-access/users/{}?saved=1", path.as_str())),
        async |errors| {
            let form = (groups.as_slice(), field_error(&errors, "groups"));
            user_page(&admin, &state, &path, Some(form), String::new()).await
        },
    )
    .await
}

/// Where a user's actions return to, with their notice.
fn back_to_user(id: &str, notice: &str) -> HttpResponse {
    with_notice(&format!("/user-access/users/{id}"), notice)
}

/// Disables or enables a user, back to their page with the notice that says so.
async fn switch_user(
    admin: &CurrentUser,
    state: &AppState,
    id: &str,
    active: bool,
) -> Result<HttpResponse, AppError> {
    let clock = state.clock.as_ref();
    people::set_active(&state.pool, clock, &admin.actor(), id, active).await?;
    Ok(back_to_user(
        id,
        if active { "enabled" } else { "disabled" },
    ))
}

#[derive(Template)]
#[template(path = "people/user_disable.html")]
struct DisablePage {
    frame: Frame,
    id: String,
    name: String,
    email: String,
}

/// GET /user-access/users/{id}/disable: what disabling stops, before it is done.
pub async fn disable_form(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user = people::user_details(&state.pool, &admin.actor(), &path, None).await?;
    let page = DisablePage {
        frame: Frame::new(&admin, "users-and-keys"),
        id: user.id,
        name: user.name,
        email: user.email,
    };
    Ok(html(StatusCode::OK, page))
}

/// POST /user-access/users/{id}/disable
pub async fn disable_user(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    switch_user(&admin, &state, &path, false).await
}

/// POST /user-access/users/{id}/enable
pub async fn enable_user(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    switch_user(&admin, &state, &path, true).await
}

/// POST /user-access/users/{id}/invite — a new invitation link.
pub async fn reinvite_user(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let clock = state.clock.as_ref();
    let actor = admin.actor();
    people::reinvite(&state.pool, clock, &actor, &mailing(&state), &path).await?;
    Ok(back_to_user(&path, "reinvited"))
}

#[derive(Template)]
#[template(path = "people/user_factors.html")]
struct RemoveFactorsPage {
    frame: Frame,
    id: String,
    name: String,
    email: String,
}

/// GET /user-access/users/{id}/second-factors: what removing them does, before it is done.
pub async fn remove_factors_form(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user = people::user_details(&state.pool, &admin.actor(), &path, None).await?;
    let page = RemoveFactorsPage {
        frame: Frame::new(&admin, "users-and-keys"),
        id: user.id,
        name: user.name,
        email: user.email,
    };
    Ok(html(StatusCode::OK, page))
}

/// POST /user-access/users/{id}/second-factors — removes them (audited).
pub async fn remove_factors(
    admin: Granted<UsersWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let clock = state.clock.as_ref();
    people::remove_second_factors(&state.pool, clock, &admin.actor(), &path).await?;
    Ok(back_to_user(&path, "factors_removed"))
}

/// The routes of the Users tab.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/user-access/users", web::get().to(users))
        .route("/user-access/users", web::post().to(create_user))
        .route("/user-access/users/new", web::get().to(new_user_form))
        .route("/user-access/users/{id}", web::get().to(user))
        .route("/user-access/users/{id}", web::post().to(update_user))
        .route(
            "/user-access/users/{id}/disable",
            web::get().to(disable_form),
        )
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
        .route(
            "/user-access/users/{id}/second-factors",
            web::get().to(remove_factors_form),
        )
        .route(
            "/user-access/users/{id}/second-factors",
            web::post().to(remove_factors),
        );
}
