//! Key details: the facts, the effective permissions and (for those who may change the key)
//! the form that renames it, changes its expiry, networks and assignments.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::KeyDetails;
use crate::error::AppError;
use crate::service::keys::{self, Choices};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::current_user::CurrentUser;
use crate::web::granted::Signed;
use crate::web::{Frame, html, see_other};

use super::form::{KeyForm, choices};
use super::usage::{self, UsageChart};
use super::view::{KeyView, notice_secs};
use super::{Place, writable};
use crate::service::keys::usage::Granularity;

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
    /// The rate limit's fields (empty: no limit).
    rate_per_second: String,
    rate_burst: String,
    /// The key's last used addresses.
    addresses: Vec<AddressView>,
    /// The networks field was filled with those addresses, for review ("Allow only these").
    reviewing_addresses: bool,
    today: String,
    /// The expiry choices the key policy allows for this key.
    choices: super::form::Validity,
    /// Why the key is out of the key policy; empty when it is in policy.
    out_of_policy: String,
    errors: FieldErrors,
    saved: bool,
    notice: String,
    /// Whether to offer the controls and the form that change the key.
    writable: bool,
    /// "Usage, last 30 days".
    usage: UsageChart,
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
    /// `seen`: fill the allowed networks with the last used addresses, for review.
    #[serde(default)]
    allow: String,
}

/// One last used address as the table shows it.
struct AddressView {
    address: String,
    first_seen: String,
    last_seen: String,
    user_agent: String,
    uses: i64,
}

/// The edit form as the key is, before anything was submitted.
fn form_of(key: &KeyDetails) -> KeyForm {
    KeyForm {
        name: key.name.clone(),
        validity: "keep".to_string(),
        groups: key.group_ids.clone(),
        roles: key.role_ids.clone(),
        networks: key.allowed_networks.join(", "),
        rate_per_second: key.rate_limit.map(|l| l.rate_text()).unwrap_or_default(),
        rate_burst: key
            .rate_limit
            .map(|l| l.burst.to_string())
            .unwrap_or_default(),
        ..KeyForm::default()
    }
}

/// Every choice, marked when it is among `chosen`.
fn marked(all: Vec<(String, String)>, chosen: &[String]) -> Vec<(String, String, bool)> {
    all.into_iter()
        .map(|(id, name)| {
            let on = chosen.contains(&id);
            (id, name, on)
        })
        .collect()
}

/// What a switch's notice says on the page it comes back to.
fn notice_text(notice: &str) -> &'static str {
    match notice {
        "activated" => "The key is active again.",
        "deactivated" => "The key is inactive: it no longer authenticates until you activate it.",
        "unlocked" => "The key is unlocked.",
        _ => "",
    }
}

/// What the details page shows besides the key: a submitted form with its messages (or the
/// key as it is), whether it was just saved, and a switch's notice.
struct Shown {
    form: Option<(KeyForm, FieldErrors)>,
    saved: bool,
    notice: &'static str,
    /// "Allow only these addresses" was chosen.
    allow_seen: bool,
}

async fn details_page(
    user: &CurrentUser,
    state: &AppState,
    place: Place,
    id: &str,
    shown: Shown,
) -> Result<DetailsPage, AppError> {
    let mut conn = state.pool.acquire().await?;
    let ring = state.keyring();
    let key = keys::details(&mut conn, &user.actor(), place.scope, id, &ring).await?;
    let seen = keys::last_addresses(&mut conn, &user.actor(), place.scope, id).await?;
    let policy = crate::service::key_policy::load(&mut conn).await?;
    let now = state.clock.unix();
    let day = Granularity::Day;
    let from = day.start_of(now) - (usage::DAYS - 1) * day.seconds();
    let window = (from, from + usage::DAYS * day.seconds());
    let counts = keys::usage::usage(&mut conn, &user.actor(), place.scope, id, window, day).await?;
    drop(conn);
    let out_of_policy = policy
        .breach(key.key_type, key.expires_at, now)
        .unwrap_or_default();
    let expiry_choices = super::form::Validity::for_type(&policy, key.key_type.as_str());
    let Choices { groups, roles } = choices(state, !key.is_personal()).await?;
    let reviewing_addresses = shown.form.is_none() && shown.allow_seen && !seen.is_empty();
    let (mut form, errors) = shown
        .form
        .unwrap_or_else(|| (form_of(&key), FieldErrors::default()));
    if reviewing_addresses {
        form.networks = seen
            .iter()
            .map(|a| a.address.as_str())
            .collect::<Vec<_>>()
            .join(", ");
    }
    let addresses = seen
        .into_iter()
        .map(|a| AddressView {
            address: a.address,
            first_seen: crate::clock::format_utc(a.first_seen),
            last_seen: crate::clock::format_utc(a.last_seen),
            user_agent: a.user_agent,
            uses: a.uses,
        })
        .collect();
    Ok(DetailsPage {
        frame: Frame::new(user, place.section()),
        base: place.base,
        tenant: place.tenant(),
        key: KeyView::of(&key, state.clock.unix(), notice_secs(state), &user.id),
        permissions: key.permissions,
        groups: marked(groups, &form.groups),
        roles: marked(roles, &form.roles),
        name: form.name,
        validity: form.validity,
        custom_date: form.custom_date,
        networks: form.networks,
        rate_per_second: form.rate_per_second,
        rate_burst: form.rate_burst,
        addresses,
        reviewing_addresses,
        today: state.clock.now().format("%Y-%m-%d").to_string(),
        choices: expiry_choices,
        out_of_policy,
        errors,
        saved: shown.saved,
        notice: shown.notice.to_string(),
        writable: writable(user, place),
        usage: UsageChart::of(&counts),
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
    let shown = Shown {
        form: None,
        saved: query.saved.is_some(),
        notice: notice_text(&query.notice),
        allow_seen: query.allow == "seen",
    };
    let page = details_page(who.user(), &state, **place, &path, shown).await?;
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
    let ring = state.keyring();
    let changes = form.changes();
    match keys::update(
        &state.pool,
        &ring,
        &user.actor(),
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
            let shown = Shown {
                form: Some((form, errors)),
                saved: false,
                notice: "",
                allow_seen: false,
            };
            let page = details_page(user, &state, place, &path, shown).await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(FormError::Other(e)) => Err(e),
    }
}
