//! The Roles tab, a role's page (its permissions) and the Create role page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::editor::{self, Edited, Sheet};
use super::{Fields, NoticeQuery, notice_text, with_notice};
use crate::domain::Actor;
use crate::error::AppError;
use crate::service::FormError;
use crate::service::people::{self, Heading, RoleInput, RoleSummary};
use crate::state::AppState;
use crate::web::granted::{Granted, RolesWrite, UsersRead};
use crate::web::{Frame, html};

#[derive(Template)]
#[template(path = "people/roles.html")]
struct RolesPage {
    frame: Frame,
    tab: &'static str,
    roles: Vec<RoleSummary>,
    notice: String,
}

/// GET /user-access/roles
pub async fn roles(
    user: Granted<UsersRead>,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let roles = people::list_roles(&state.pool, &user.actor()).await?;
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
pub(super) struct RolePage {
    sheet: Sheet,
    /// (permission, what it allows, ticked).
    permissions: Vec<(&'static str, String, bool)>,
}

impl std::ops::Deref for RolePage {
    type Target = Sheet;
    fn deref(&self) -> &Sheet {
        &self.sheet
    }
}

/// A role: its page shows its permissions.
pub(super) struct Role;

impl Edited for Role {
    type Input = RoleInput;
    type Write = RolesWrite;
    /// Every permission: (name, what it allows, ticked).
    type Lists = Vec<(&'static str, String, bool)>;
    type Page = RolePage;
    const PATH: &'static str = "/user-access/roles";
    const NOUN: &'static str = "role";

    fn input(body: &[u8]) -> RoleInput {
        let f = Fields::parse(body);
        RoleInput {
            name: f.one("name"),
            description: f.one("description"),
            permissions: f.many("permissions"),
        }
    }

    async fn read(
        state: &AppState,
        actor: &Actor,
        id: Option<&str>,
        form: Option<&RoleInput>,
    ) -> Result<(Heading, Self::Lists), AppError> {
        let r = people::role_details(&state.pool, actor, id, form).await?;
        let permissions = r.permissions.into_iter();
        let ticks = permissions.map(|p| (p.name, p.description, p.chosen));
        Ok((r.heading, ticks.collect()))
    }

    fn page(sheet: Sheet, permissions: Self::Lists) -> RolePage {
        RolePage { sheet, permissions }
    }

    async fn create(
        state: &AppState,
        actor: &Actor,
        input: RoleInput,
    ) -> Result<String, FormError> {
        people::create_role(&state.pool, state.clock.as_ref(), actor, input).await
    }

    async fn update(
        state: &AppState,
        actor: &Actor,
        id: &str,
        input: RoleInput,
    ) -> Result<(), FormError> {
        people::update_role(&state.pool, state.clock.as_ref(), actor, id, input).await
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

/// The routes of the Roles tab.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(Role::PATH, web::get().to(roles))
        .configure(editor::routes::<Role>)
        .route(
            "/user-access/roles/{id}/delete",
            web::post().to(delete_role),
        );
}
