//! Access keys in the console: the Access keys tab (every key, administrators) and My access
//! keys (a user's own two), with the same dialogs: Add key, the one-time secret, Key details,
//! Generate new secret key, activate/deactivate, unlock, delete.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::{format_utc, relative};
use crate::domain::{KeyType, Permission, is_system_key_name};
use crate::error::AppError;
use crate::repo;
use crate::repo::keys::{KeyRow, ListFilter, SortKey};
use crate::service::keys::{
    self, Actor, ExpiryChoice, KeyChanges, KeyStatus, NewKey, OneTimeSecret, Scope, Switch,
};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::{Granted, KeysRead, KeysWrite, Signed};
use crate::web::{Frame, html, see_other};

const PAGE_SIZE: i64 = 25;

/// Where a page lives: the tenant's Access keys tab or the user's own keys.
#[derive(Clone, Copy)]
pub struct Place {
    scope: Scope,
    base: &'static str,
}

/// The Access keys tab.
pub const TENANT: Place = Place {
    scope: Scope::Tenant,
    base: "/user-access/keys",
};
/// My access keys.
pub const PERSONAL: Place = Place {
    scope: Scope::Personal,
    base: "/my/keys",
};

impl Place {
    fn section(&self) -> &'static str {
        match self.scope {
            Scope::Tenant => "users-and-keys",
            Scope::Personal | Scope::OwnKey => "my-keys",
        }
    }
}

/// The user as the actor of a change here. Who may open the page was checked by its extractor
/// (`Granted` on the Access keys tab); the service checks the same permission again.
fn actor(user: &CurrentUser) -> Actor {
    user.actor()
}

/// Whether the person may change what a page of `place` shows: their own keys always, the
/// tenant's with `keys:write`. Pages offer the controls that change keys only then.
fn writable(user: &CurrentUser, place: Place) -> bool {
    place.scope != Scope::Tenant || user.may(Permission::KeysWrite)
}

pub(super) fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A key as a table row or a details pane shows it.
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub type_label: &'static str,
    pub owner: String,
    pub personal: bool,
    pub status: &'static str,
    pub status_class: &'static str,
    pub active: bool,
    pub locked: bool,
    pub system: bool,
    pub expires: String,
    pub expires_hint: String,
    pub expires_soon: bool,
    pub expired: bool,
    pub last_used: String,
    pub last_used_hint: String,
    pub last_used_ip: String,
    pub last_used_agent: String,
    pub created: String,
    pub created_by: String,
    pub modified: String,
    pub modified_by: String,
    pub failed_attempts: i64,
    pub networks: String,
    pub regenerated: String,
    pub grace_until: String,
    /// What the viewer may do to the key's secret and state (SPEC §11).
    pub may_regenerate: bool,
    pub may_activate: bool,
    pub may_unlock: bool,
    /// Who deactivated or locked it, in words ("by an administrator").
    pub deactivated_by: &'static str,
    pub locked_by: &'static str,
}

impl KeyView {
    fn of(row: &KeyRow, now: i64, tenant_id: &str, notice_secs: i64, viewer: &str) -> Self {
        let status = KeyStatus::of(row, now);
        let system = is_system_key_name(&row.name, tenant_id);
        let controls = crate::service::grants::controls(viewer, row, system);
        let status_class = match status {
            KeyStatus::Active => "badge-success",
            KeyStatus::Inactive => "badge-neutral",
            KeyStatus::Expired => "badge-warning",
            KeyStatus::Locked => "badge-danger",
        };
        let (expires, expires_hint) = match row.expires_at {
            Some(t) => (format_utc(t), relative(t, now)),
            None => ("Never".to_string(), String::new()),
        };
        let (last_used, last_used_hint) = match row.last_used_at {
            Some(t) => (format_utc(t), relative(t, now)),
            None => ("Never".to_string(), String::new()),
        };
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            type_label: KeyType::parse(&row.key_type).map_or("Access key", KeyType::label),
            owner: row
                .owner_name
                .clone()
                .unwrap_or_else(|| "Tenant".to_string()),
            personal: row.owner_user_id.is_some(),
            status: status.label(),
            status_class,
            active: row.active == 1,
            locked: row.locked == 1,
            system,
            expires,
            expires_hint,
            expires_soon: row
                .expires_at
                .is_some_and(|t| t > now && t - now <= notice_secs),
            expired: row.expires_at.is_some_and(|t| t <= now),
            last_used,
            last_used_hint,
            last_used_ip: row.last_used_ip.clone().unwrap_or_default(),
            last_used_agent: row.last_used_agent.clone().unwrap_or_default(),
            created: format_utc(row.created_at),
            created_by: row.created_by_label.clone(),
            modified: format_utc(row.modified_at),
            modified_by: row.modified_by_label.clone(),
            failed_attempts: row.failed_attempts,
            networks: row.allowed_networks.clone(),
            regenerated: row
                .secret_regenerated_at
                .map(format_utc)
                .unwrap_or_default(),
            grace_until: row
                .previous_valid_until
                .filter(|t| *t > now)
                .map(format_utc)
                .unwrap_or_default(),
            may_regenerate: controls.regenerate,
            may_activate: controls.activate,
            may_unlock: controls.unlock,
            deactivated_by: if row.active == 0 {
                crate::service::grants::decided_by(row.deactivated_by.as_deref())
            } else {
                ""
            },
            locked_by: if row.locked == 1 {
                crate::service::grants::decided_by(row.locked_by.as_deref())
            } else {
                ""
            },
        }
    }
}

fn notice_secs(state: &AppState) -> i64 {
    i64::from(
        state
            .settings
            .expiry_notice_days
            .first()
            .copied()
            .unwrap_or(2),
    ) * 86_400
}

/// Query of the list: search, filters, sort, page.
#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    key_type: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    page: Option<i64>,
    #[serde(default)]
    deleted: String,
}

impl ListQuery {
    fn sort_key(&self) -> SortKey {
        match self.sort.as_str() {
            "name" => SortKey::Name,
            "expires" => SortKey::Expires,
            "last_used" => SortKey::LastUsed,
            _ => SortKey::Created,
        }
    }

    fn sort_name(&self) -> &'static str {
        match self.sort_key() {
            SortKey::Name => "name",
            SortKey::Expires => "expires",
            SortKey::LastUsed => "last_used",
            SortKey::Created => "created",
        }
    }

    fn descending(&self) -> bool {
        match self.dir.as_str() {
            "asc" => false,
            "desc" => true,
            // Newest first by default; names A to Z; soonest expiry first.
            _ => self.sort_key() == SortKey::Created || self.sort_key() == SortKey::LastUsed,
        }
    }

    /// The query string for another page or sort, keeping the filters.
    fn link(&self, sort: &str, dir: &str, page: i64) -> String {
        let page = page.to_string();
        let mut pairs = vec![];
        for (k, v) in [
            ("q", self.q.as_str()),
            ("status", &self.status),
            ("type", &self.key_type),
            ("sort", sort),
            ("dir", dir),
        ] {
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        if page != "1" {
            pairs.push(("page", &page));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// A sortable column header.
pub struct SortLink {
    pub href: String,
    /// "ascending", "descending" or "none", for `aria-sort`.
    pub aria: &'static str,
}

#[derive(Template)]
#[template(path = "keys/list.html")]
struct ListPage {
    frame: Frame,
    tab: &'static str,
    tenant: bool,
    base: &'static str,
    q: ListQuery,
    keys: Vec<KeyView>,
    total: i64,
    first: i64,
    last: i64,
    prev: Option<String>,
    next: Option<String>,
    sort_name: SortLink,
    sort_expires: SortLink,
    sort_last_used: SortLink,
    deleted: String,
    personal_count: i64,
    limit: i64,
    add: AddForm,
    /// Whether to offer Add key and the row actions that change keys.
    writable: bool,
}

/// The Add key form's state (blank, or as submitted with messages).
pub struct AddForm {
    pub name: String,
    pub key_type: String,
    pub validity: String,
    pub custom_date: String,
    pub group_ids: Vec<String>,
    pub role_ids: Vec<String>,
    pub errors: FieldErrors,
    pub conflict: String,
    pub groups: Vec<(String, String)>,
    pub roles: Vec<(String, String)>,
    pub today: String,
}

impl AddForm {
    fn error(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or_default().to_string()
    }
    fn has_group(&self, id: &str) -> bool {
        self.group_ids.iter().any(|g| g == id)
    }
    fn has_role(&self, id: &str) -> bool {
        self.role_ids.iter().any(|r| r == id)
    }
}

async fn choices(
    state: &AppState,
) -> Result<(Vec<(String, String)>, Vec<(String, String)>), AppError> {
    let mut conn = state.pool.acquire().await?;
    let groups = repo::groups::list(&mut conn)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let roles = repo::roles::list(&mut conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    Ok((groups, roles))
}

async fn blank_add_form(state: &AppState, place: Place) -> Result<AddForm, AppError> {
    let (groups, roles) = match place.scope {
        Scope::Tenant => choices(state).await?,
        Scope::Personal | Scope::OwnKey => (Vec::new(), Vec::new()),
    };
    Ok(AddForm {
        name: String::new(),
        key_type: "access".into(),
        validity: "90".into(),
        custom_date: String::new(),
        group_ids: Vec::new(),
        role_ids: Vec::new(),
        errors: FieldErrors::default(),
        conflict: String::new(),
        groups,
        roles,
        today: state.clock.now().format("%Y-%m-%d").to_string(),
    })
}

/// GET the list of keys.
pub async fn list<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let q = query.into_inner();
    let now = state.clock.unix();
    // Pages past the end are empty; the cap keeps every product below in range.
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let filter = ListFilter {
        owner: None,
        search: q.q.chars().take(100).collect(),
        status: match q.status.as_str() {
            "active" | "inactive" | "expired" | "locked" => q.status.clone(),
            _ => String::new(),
        },
        key_type: match q.key_type.as_str() {
            "access" | "api" => q.key_type.clone(),
            _ => String::new(),
        },
        sort: q.sort_key(),
        descending: q.descending(),
        limit: PAGE_SIZE,
        offset: (page - 1).saturating_mul(PAGE_SIZE),
    };
    let mut conn = state.pool.acquire().await?;
    let (rows, total) = keys::list(&mut conn, &actor(user), place.scope, filter, now).await?;
    let personal_count = match place.scope {
        Scope::Personal | Scope::OwnKey => total,
        Scope::Tenant => 0,
    };
    drop(conn);
    let notice = notice_secs(&state);
    let keys: Vec<KeyView> = rows
        .iter()
        .map(|r| KeyView::of(r, now, &state.tenant_id, notice, &user.id))
        .collect();
    let first = if keys.is_empty() {
        0
    } else {
        (page - 1) * PAGE_SIZE + 1
    };
    let last = (page - 1) * PAGE_SIZE + keys.len() as i64;
    let current_sort = q.sort_name();
    let current_desc = q.descending();
    let sort_link = |key: &str| {
        let active = key == current_sort;
        let dir = if active && !current_desc {
            "desc"
        } else if active {
            "asc"
        } else {
            ""
        };
        SortLink {
            href: format!("{}?{}", place.base, q.link(key, dir, 1)),
            aria: match (active, current_desc) {
                (false, _) => "none",
                (true, true) => "descending",
                (true, false) => "ascending",
            },
        }
    };
    let (sort_name, sort_expires, sort_last_used) = (
        sort_link("name"),
        sort_link("expires"),
        sort_link("last_used"),
    );
    let prev = (page > 1).then(|| format!("{}?{}", place.base, q.link(&q.sort, &q.dir, page - 1)));
    let next =
        (last < total).then(|| format!("{}?{}", place.base, q.link(&q.sort, &q.dir, page + 1)));
    let add = blank_add_form(&state, place).await?;
    Ok(html(
        StatusCode::OK,
        ListPage {
            frame: Frame::new(user, place.section()),
            tab: "keys",
            tenant: place.scope == Scope::Tenant,
            base: place.base,
            deleted: q.deleted.clone(),
            q,
            keys,
            total,
            first,
            last,
            prev,
            next,
            sort_name,
            sort_expires,
            sort_last_used,
            personal_count,
            limit: keys::PERSONAL_KEY_LIMIT,
            add,
            writable: writable(user, place),
        },
    ))
}

#[derive(Template)]
#[template(path = "keys/add.html")]
struct AddPage {
    frame: Frame,
    tenant: bool,
    base: &'static str,
    add: AddForm,
}

/// GET the Add key form as a page (the list opens the same form in a dialog when scripts run).
pub async fn add_form<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let add = blank_add_form(&state, place).await?;
    Ok(html(
        StatusCode::OK,
        AddPage {
            frame: Frame::new(user, place.section()),
            tenant: place.scope == Scope::Tenant,
            base: place.base,
            add,
        },
    ))
}

/// A submitted Add key form. Multi-selects arrive as repeated fields.
/// The fields of the Add key and Key details forms, as typed. Multi-selects arrive as repeated
/// fields.
#[derive(Clone, Default)]
struct KeyForm {
    name: String,
    key_type: String,
    validity: String,
    custom_date: String,
    groups: Vec<String>,
    roles: Vec<String>,
    networks: String,
}

impl KeyForm {
    fn parse(body: &[u8]) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let one = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let many = |name: &str| {
            pairs
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        Self {
            name: one("name"),
            key_type: one("key_type"),
            validity: one("validity"),
            custom_date: one("custom_date"),
            groups: many("groups"),
            roles: many("roles"),
            networks: one("allowed_networks"),
        }
    }

    fn new_key(&self) -> NewKey {
        NewKey {
            name: self.name.clone(),
            key_type: self.key_type.clone(),
            expiry: ExpiryChoice::from_form(&self.validity, &self.custom_date),
            group_ids: self.groups.clone(),
            role_ids: self.roles.clone(),
        }
    }

    /// Changes from the Key details form: every part is submitted; "keep" keeps the expiry.
    fn changes(&self) -> KeyChanges {
        KeyChanges {
            name: Some(self.name.clone()),
            description: None,
            expiry: (self.validity != "keep")
                .then(|| ExpiryChoice::from_form(&self.validity, &self.custom_date)),
            group_ids: Some(self.groups.clone()),
            role_ids: Some(self.roles.clone()),
            allowed_networks: Some(self.networks.clone()),
        }
    }
}

#[derive(Template)]
#[template(path = "keys/secret.html")]
struct SecretPage {
    frame: Frame,
    base: &'static str,
    key_id: String,
    name: String,
    secret: String,
    tenant_id: String,
    copy_all: String,
    regenerated: bool,
}

fn secret_page(
    user: &CurrentUser,
    place: Place,
    created: OneTimeSecret,
    regenerated: bool,
) -> HttpResponse {
    let secret = created.secret.expose().to_string();
    let copy_all = format!(
        "key:{}::{},tenant id: {}",
        created.key_id, secret, created.tenant_id
    );
    no_store(html(
        StatusCode::OK,
        SecretPage {
            frame: Frame::new(user, place.section()),
            base: place.base,
            key_id: created.key_id,
            name: created.name,
            secret,
            tenant_id: created.tenant_id,
            copy_all,
            regenerated,
        },
    ))
}

/// POST a new key: the one-time secret page, or the form again with messages.
pub async fn create<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let form = KeyForm::parse(&body);
    let ring = state.keyring();
    match keys::create(
        &state.pool,
        &ring,
        &actor(user),
        place.scope,
        form.new_key(),
    )
    .await
    {
        Ok(created) => Ok(secret_page(user, place, created, false)),
        Err(FormError::Other(AppError::Conflict(message))) => {
            add_again(
                user,
                &state,
                place,
                form,
                FieldErrors::default(),
                message,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(FormError::Invalid(errors)) => {
            add_again(
                user,
                &state,
                place,
                form,
                errors,
                String::new(),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

async fn add_again(
    user: &CurrentUser,
    state: &AppState,
    place: Place,
    input: KeyForm,
    errors: FieldErrors,
    conflict: String,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let mut add = blank_add_form(state, place).await?;
    add.name = input.name;
    add.key_type = input.key_type;
    add.validity = input.validity;
    add.custom_date = input.custom_date;
    add.group_ids = input.groups;
    add.role_ids = input.roles;
    add.errors = errors;
    add.conflict = conflict;
    Ok(html(
        status,
        AddPage {
            frame: Frame::new(user, place.section()),
            tenant: place.scope == Scope::Tenant,
            base: place.base,
            add,
        },
    ))
}

#[derive(Template)]
#[template(path = "keys/details.html")]
struct DetailsPage {
    frame: Frame,
    base: &'static str,
    tenant: bool,
    key: KeyView,
    permissions: Vec<String>,
    groups: Vec<(String, String, bool)>,
    roles: Vec<(String, String, bool)>,
    name: String,
    validity: String,
    custom_date: String,
    networks: String,
    today: String,
    errors: FieldErrors,
    saved: bool,
    notice: String,
    /// Whether to offer the controls and the form that change the key.
    writable: bool,
}

impl DetailsPage {
    fn error(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or_default().to_string()
    }

    /// The names of the chosen groups or roles, for a reader ("None" when there are none).
    fn assigned(&self, choices: &[(String, String, bool)]) -> String {
        crate::web::names_of(choices)
    }
}

#[derive(Deserialize)]
pub struct DetailsQuery {
    saved: Option<String>,
    #[serde(default)]
    notice: String,
}

async fn details_page(
    user: &CurrentUser,
    state: &AppState,
    place: Place,
    id: &str,
    form: Option<(KeyForm, FieldErrors)>,
    saved: bool,
    notice: &str,
) -> Result<DetailsPage, AppError> {
    let now = state.clock.unix();
    let mut conn = state.pool.acquire().await?;
    let row = keys::load(&mut conn, &actor(user), place.scope, id).await?;
    let repo::keys::AuthRow {
        permissions,
        group_ids: assigned_groups,
        role_ids: assigned_roles,
        ..
    } = keys::assignments(&mut conn, state.backend, id).await?;
    drop(conn);
    let (all_groups, all_roles) = if row.owner_user_id.is_none() {
        choices(state).await?
    } else {
        (Vec::new(), Vec::new())
    };
    let (chosen_groups, chosen_roles, name, validity, custom_date, networks, errors) = match form {
        Some((f, e)) => (
            f.groups,
            f.roles,
            f.name,
            f.validity,
            f.custom_date,
            f.networks,
            e,
        ),
        None => (
            assigned_groups,
            assigned_roles,
            row.name.clone(),
            "keep".to_string(),
            String::new(),
            row.allowed_networks.clone(),
            FieldErrors::default(),
        ),
    };
    let groups = all_groups
        .into_iter()
        .map(|(gid, n)| {
            let on = chosen_groups.contains(&gid);
            (gid, n, on)
        })
        .collect();
    let roles = all_roles
        .into_iter()
        .map(|(rid, n)| {
            let on = chosen_roles.contains(&rid);
            (rid, n, on)
        })
        .collect();
    let notice = match notice {
        "activated" => "The key is active again.",
        "deactivated" => "The key is inactive: it no longer authenticates until you activate it.",
        "unlocked" => "The key is unlocked.",
        _ => "",
    };
    Ok(DetailsPage {
        frame: Frame::new(user, place.section()),
        base: place.base,
        tenant: place.scope == Scope::Tenant,
        key: KeyView::of(&row, now, &state.tenant_id, notice_secs(state), &user.id),
        permissions,
        groups,
        roles,
        name,
        validity,
        custom_date,
        networks,
        today: state.clock.now().format("%Y-%m-%d").to_string(),
        errors,
        saved,
        notice: notice.to_string(),
        writable: writable(user, place),
    })
}

/// GET a key's details.
pub async fn details<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DetailsQuery>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let page = details_page(
        user,
        &state,
        **place,
        &path,
        None,
        query.saved.is_some(),
        &query.notice,
    )
    .await?;
    Ok(html(StatusCode::OK, page))
}

/// POST changes from the Key details pane.
pub async fn update<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let form = KeyForm::parse(&body);
    let changes = form.changes();
    let ring = state.keyring();
    match keys::update(
        &state.pool,
        &ring,
        &actor(user),
        place.scope,
        &path,
        changes,
    )
    .await
    {
        Ok(()) => Ok(see_other(&format!(
            "{}/{}?saved=1",
            place.base,
            path.as_str()
        ))),
        Err(FormError::Invalid(errors)) => {
            let page =
                details_page(user, &state, place, &path, Some((form, errors)), false, "").await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "keys/regenerate.html")]
struct RegeneratePage {
    frame: Frame,
    base: &'static str,
    key: KeyView,
}

/// GET the warning before a new secret is generated.
pub async fn regenerate_form<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let now = state.clock.unix();
    let mut conn = state.pool.acquire().await?;
    let row = keys::load(&mut conn, &actor(user), place.scope, &path).await?;
    let key = KeyView::of(&row, now, &state.tenant_id, notice_secs(&state), &user.id);
    if key.system {
        return Err(AppError::Conflict(format!(
            "“{}” is a system key managed by keyward; its secret cannot be regenerated here.",
            key.name
        )));
    }
    if !key.may_regenerate {
        return Err(AppError::Denied(
            "Only its owner can generate a new secret for a personal key. Administrators can \
             deactivate, lock, shorten the expiry of or delete it."
                .into(),
        ));
    }
    Ok(html(
        StatusCode::OK,
        RegeneratePage {
            frame: Frame::new(user, place.section()),
            base: place.base,
            key,
        },
    ))
}

#[derive(Deserialize)]
pub struct RegenerateForm {
    #[serde(default)]
    grace: String,
}

/// POST: a new secret, shown once.
pub async fn regenerate<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RegenerateForm>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let grace = if form.grace.is_empty() {
        0
    } else {
        form.grace.parse::<i64>().map_err(|_| {
            AppError::invalid("grace_period", "Choose one of the offered grace periods.")
        })?
    };
    let ring = state.keyring();
    let created =
        keys::regenerate(&state.pool, &ring, &actor(user), place.scope, &path, grace).await?;
    Ok(secret_page(user, place, created, true))
}

#[derive(Deserialize)]
pub struct ReturnTo {
    #[serde(default)]
    return_to: String,
}

fn back(place: Place, id: &str, return_to: &str, notice: &str) -> HttpResponse {
    if return_to == "list" {
        see_other(place.base)
    } else {
        see_other(&format!("{}/{id}?notice={notice}", place.base))
    }
}

/// POST: activate.
pub async fn activate<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReturnTo>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    flip(
        **place,
        user,
        state,
        path,
        form,
        Switch::Activate,
        "activated",
    )
    .await
}

/// POST: deactivate.
pub async fn deactivate<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReturnTo>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    flip(
        **place,
        user,
        state,
        path,
        form,
        Switch::Deactivate,
        "deactivated",
    )
    .await
}

/// POST: unlock.
pub async fn unlock<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReturnTo>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    flip(**place, user, state, path, form, Switch::Unlock, "unlocked").await
}

async fn flip(
    place: Place,
    user: &CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReturnTo>,
    switch: Switch,
    notice: &str,
) -> Result<HttpResponse, AppError> {
    let ring = state.keyring();
    keys::switch(&state.pool, &ring, &actor(user), place.scope, &path, switch).await?;
    Ok(back(place, &path, &form.return_to, notice))
}

#[derive(Template)]
#[template(path = "keys/delete.html")]
struct DeletePage {
    frame: Frame,
    base: &'static str,
    key: KeyView,
}

/// GET the confirmation before a key is deleted.
pub async fn delete_form<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let now = state.clock.unix();
    let mut conn = state.pool.acquire().await?;
    let row = keys::load(&mut conn, &actor(user), place.scope, &path).await?;
    let key = KeyView::of(&row, now, &state.tenant_id, notice_secs(&state), &user.id);
    if key.system {
        return Err(AppError::Conflict(format!(
            "“{}” is a system key managed by keyward; it cannot be deleted.",
            key.name
        )));
    }
    Ok(html(
        StatusCode::OK,
        DeletePage {
            frame: Frame::new(user, place.section()),
            base: place.base,
            key,
        },
    ))
}

/// POST: delete, then back to the list with a confirmation.
pub async fn delete<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let ring = state.keyring();
    let name = keys::delete(&state.pool, &ring, &actor(user), place.scope, &path).await?;
    let q = serde_urlencoded::to_string([("deleted", name.as_str())]).unwrap_or_default();
    Ok(see_other(&format!("{}?{q}", place.base)))
}

/// Registers the key routes under a place. On the Access keys tab each page and action needs
/// `keys:read` or `keys:write` (SPEC §7); a person's own keys need only the sign-in.
pub fn routes(cfg: &mut web::ServiceConfig, place: Place) {
    match place.scope {
        Scope::Tenant => routes_as::<Granted<KeysRead>, Granted<KeysWrite>>(cfg, place),
        Scope::Personal | Scope::OwnKey => routes_as::<CurrentUser, CurrentUser>(cfg, place),
    }
}

/// The routes of `place`, read by an `R` and changed by a `W`.
fn routes_as<R: Signed, W: Signed>(cfg: &mut web::ServiceConfig, place: Place) {
    cfg.service(
        web::scope(place.base)
            .app_data(web::Data::new(place))
            .route("", web::get().to(list::<R>))
            .route("", web::post().to(create::<W>))
            .route("/new", web::get().to(add_form::<W>))
            .route("/{id}", web::get().to(details::<R>))
            .route("/{id}", web::post().to(update::<W>))
            .route("/{id}/regenerate", web::get().to(regenerate_form::<W>))
            .route("/{id}/regenerate", web::post().to(regenerate::<W>))
            .route("/{id}/activate", web::post().to(activate::<W>))
            .route("/{id}/deactivate", web::post().to(deactivate::<W>))
            .route("/{id}/unlock", web::post().to(unlock::<W>))
            .route("/{id}/delete", web::get().to(delete_form::<W>))
            .route("/{id}/delete", web::post().to(delete::<W>)),
    );
}
