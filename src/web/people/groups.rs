//! The Groups tab, a group's page (its members and roles) and the Create and Delete group pages.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::editor::{self, Edited, Sheet};
use super::{Fields, NoticeQuery, Ticks, notice_text, ticks, with_notice};
use crate::domain::Actor;
use crate::error::AppError;
use crate::service::FormError;
use crate::service::people::{self, GroupInput, Heading};
use crate::state::AppState;
use crate::web::granted::{Granted, GroupsWrite, UsersRead};
use crate::web::{Frame, html};

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
    let groups = people::list_groups(&state.pool, &user.actor())
        .await?
        .into_iter()
        .map(|g| GroupItem {
            roles: g.roles.join(", "),
            id: g.id,
            name: g.name,
            description: g.description,
            builtin: g.builtin,
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
pub(super) struct GroupPage {
    sheet: Sheet,
    users: Ticks,
    roles: Ticks,
}

impl std::ops::Deref for GroupPage {
    type Target = Sheet;
    fn deref(&self) -> &Sheet {
        &self.sheet
    }
}

impl GroupPage {
    fn chosen_names(&self, choices: &[(String, String, bool)]) -> String {
        crate::web::names_of(choices)
    }
}

/// A group: its page shows its members and roles.
pub(super) struct Group;

impl Edited for Group {
    type Input = GroupInput;
    type Write = GroupsWrite;
    /// Its members and its roles.
    type Lists = (Ticks, Ticks);
    type Page = GroupPage;
    const PATH: &'static str = "/user-access/groups";
    const NOUN: &'static str = "group";

    fn input(body: &[u8]) -> GroupInput {
        let f = Fields::parse(body);
        GroupInput {
            name: f.one("name"),
            description: f.one("description"),
            member_ids: f.many("members"),
            role_ids: f.many("roles"),
        }
    }

    async fn read(
        state: &AppState,
        actor: &Actor,
        id: Option<&str>,
        form: Option<&GroupInput>,
    ) -> Result<(Heading, (Ticks, Ticks)), AppError> {
        let g = people::group_details(&state.pool, actor, id, form).await?;
        Ok((g.heading, (ticks(g.members), ticks(g.roles))))
    }

    fn page(sheet: Sheet, (users, roles): (Ticks, Ticks)) -> GroupPage {
        GroupPage {
            sheet,
            users,
            roles,
        }
    }

    async fn create(
        state: &AppState,
        actor: &Actor,
        input: GroupInput,
    ) -> Result<String, FormError> {
        people::create_group(&state.pool, state.clock.as_ref(), actor, input).await
    }

    async fn update(
        state: &AppState,
        actor: &Actor,
        id: &str,
        input: GroupInput,
    ) -> Result<(), FormError> {
        people::update_group(&state.pool, state.clock.as_ref(), actor, id, input).await
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
    let g = people::group_to_delete(&state.pool, &admin.actor(), &path).await?;
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

/// The routes of the Groups tab.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(Group::PATH, web::get().to(groups))
        .configure(editor::routes::<Group>)
        .route(
            "/user-access/groups/{id}/delete",
            web::get().to(delete_group_form),
        )
        .route(
            "/user-access/groups/{id}/delete",
            web::post().to(delete_group),
        );
}
