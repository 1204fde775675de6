//! The handlers a group and a role share: each has a page of its own with one form, a Create
//! page, and the same answers when that form is saved (the page again with messages, or back
//! to the page with "The group was created." or "Your changes were saved.").

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{NoticeQuery, answer, field_error};
use crate::domain::Actor;
use crate::error::AppError;
use crate::service::people::Heading;
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::{Granted, Needed, UsersRead};
use crate::web::{Frame, html, see_other};

/// What a group's and a role's page show alike: the frame, the thing itself, the form's
/// messages, and whether it was just saved. Their pages deref to it, so that the templates
/// read these fields as their own.
pub(super) struct Sheet {
    pub(super) frame: Frame,
    pub(super) id: String,
    pub(super) title: String,
    pub(super) builtin: bool,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) errors: FieldErrors,
    /// What was just done, for the notice ("The group was created."); empty for none.
    pub(super) notice: String,
}

impl Sheet {
    /// The message of a field, or an empty string.
    pub(super) fn error(&self, field: &str) -> String {
        field_error(&self.errors, field)
    }
}

/// A thing the console edits on a page of its own with one form: a group or a role.
pub(super) trait Edited: 'static {
    /// Its form as typed.
    type Input: Clone + 'static;
    /// The permission that saving its form needs (reading it needs `users:read`).
    type Write: Needed;
    /// What its page shows beyond the sheet: a group's members and roles, a role's permissions.
    type Lists;
    /// Its page.
    type Page: Template;
    /// The tab its pages sit under, e.g. `/user-access/groups`.
    const PATH: &'static str;
    /// What it is called in a sentence: "group", "role".
    const NOUN: &'static str;

    /// Reads the form.
    fn input(body: &[u8]) -> Self::Input;

    /// Reads one for its page (the Create page when `id` is `None`) through its service read
    /// function; `form`: what a form said, when it comes back with messages.
    async fn read(
        state: &AppState,
        actor: &Actor,
        id: Option<&str>,
        form: Option<&Self::Input>,
    ) -> Result<(Heading, Self::Lists), AppError>;

    /// Its page.
    fn page(sheet: Sheet, lists: Self::Lists) -> Self::Page;

    /// Creates one; its new ID.
    async fn create(
        state: &AppState,
        actor: &Actor,
        input: Self::Input,
    ) -> Result<String, FormError>;

    /// Saves one.
    async fn update(
        state: &AppState,
        actor: &Actor,
        id: &str,
        input: Self::Input,
    ) -> Result<(), FormError>;
}

/// One's page (the Create page when `id` is `None`); `form`: what a form said, with its
/// messages, when it comes back.
async fn page<E: Edited>(
    viewer: &CurrentUser,
    state: &AppState,
    id: Option<&str>,
    form: Option<(&E::Input, FieldErrors)>,
    notice: String,
) -> Result<E::Page, AppError> {
    let (input, errors) = form.unzip();
    let (heading, lists) = E::read(state, &viewer.actor(), id, input).await?;
    let sheet = Sheet {
        frame: Frame::new(viewer, "users-and-keys"),
        id: heading.id,
        title: heading.title,
        builtin: heading.builtin,
        name: heading.name,
        description: heading.description,
        errors: errors.unwrap_or_default(),
        notice,
    };
    Ok(E::page(sheet, lists))
}

/// Back to one's page after it was created (`created`) or saved, which says so.
fn saved<E: Edited>(id: &str, done: &str) -> HttpResponse {
    see_other(&format!("{}/{id}?{done}=1", E::PATH))
}

/// GET {PATH}/new
async fn new_form<E: Edited>(
    admin: Granted<E::Write>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let page = page::<E>(&admin, &state, None, None, String::new()).await?;
    Ok(html(StatusCode::OK, page))
}

/// POST {PATH}
async fn create<E: Edited>(
    admin: Granted<E::Write>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let input = E::input(&body);
    let created = E::create(&state, &admin.actor(), input.clone()).await;
    answer(
        created,
        |id| saved::<E>(&id, "created"),
        async |errors| {
            let form = Some((&input, errors));
            page::<E>(&admin, &state, None, form, String::new()).await
        },
    )
    .await
}

/// GET {PATH}/{id}
async fn show<E: Edited>(
    viewer: Granted<UsersRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = if query.created.is_some() {
        format!("The {} was created.", E::NOUN)
    } else if query.saved.is_some() {
        "Your changes were saved.".to_string()
    } else {
        String::new()
    };
    let page = page::<E>(&viewer, &state, Some(&path), None, notice).await?;
    Ok(html(StatusCode::OK, page))
}

/// POST {PATH}/{id}
async fn update<E: Edited>(
    admin: Granted<E::Write>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let input = E::input(&body);
    let updated = E::update(&state, &admin.actor(), &path, input.clone()).await;
    answer(
        updated,
        |()| saved::<E>(&path, "saved"),
        async |errors| {
            let form = Some((&input, errors));
            page::<E>(&admin, &state, Some(&path), form, String::new()).await
        },
    )
    .await
}

/// The routes of the Create page and of each one's page.
pub(super) fn routes<E: Edited>(cfg: &mut web::ServiceConfig) {
    cfg.route(E::PATH, web::post().to(create::<E>))
        .route(&format!("{}/new", E::PATH), web::get().to(new_form::<E>))
        .route(&format!("{}/{{id}}", E::PATH), web::get().to(show::<E>))
        .route(&format!("{}/{{id}}", E::PATH), web::post().to(update::<E>));
}
