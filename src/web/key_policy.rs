//! Configuration > Key policy (SPEC §9): the form, and bringing keys into policy from the
//! Access keys tab (a summary of what will change first, then the change).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::service::accounts::factors::{self, Policy as SecondFactor};
use crate::service::key_policy::{self, KeyPolicy, OnExposed, OnReplaced, PolicyInput};
use crate::service::keys::{self, MOST_AT_ONCE};
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;
use crate::web::granted::{ConfigWrite, Granted, KeysWrite};
use crate::web::{Frame, html, see_other};

const PAGE: &str = "/configuration/key-policy";
const CONFORM: &str = "/user-access/keys/conform";

/// The routes (registered before the Access keys tab's `/user-access/keys/{id}`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(PAGE, web::get().to(page))
        .route(PAGE, web::post().to(save))
        .route(CONFORM, web::get().to(conform_summary))
        .route(CONFORM, web::post().to(conform));
}

/// The form's values as shown (typed, or as stored).
struct Shown {
    max_days_access: String,
    max_days_api: String,
    expiry_required: bool,
    default_validity: String,
    inactive_days: String,
    inactive_warn_days: String,
    replaced_secret: String,
    exposure: String,
    second_factor: String,
}

impl Shown {
    fn of(policy: &KeyPolicy, second: SecondFactor) -> Self {
        let days = |d: Option<i64>| d.map(|d| d.to_string()).unwrap_or_default();
        Shown {
            max_days_access: days(policy.max_days_access),
            max_days_api: days(policy.max_days_api),
            expiry_required: policy.expiry_required,
            default_validity: policy.default_validity.to_string(),
            inactive_days: days(policy.inactive_days),
            inactive_warn_days: policy.inactive_warn_days.to_string(),
            replaced_secret: policy.replaced_secret.as_str().into(),
            exposure: policy.exposure.as_str().into(),
            second_factor: second.as_str().into(),
        }
    }

    fn typed(input: &PolicyInput) -> Self {
        Shown {
            max_days_access: input.max_days_access.clone(),
            max_days_api: input.max_days_api.clone(),
            expiry_required: input.expiry_required,
            default_validity: input.default_validity.clone(),
            inactive_days: input.inactive_days.clone(),
            inactive_warn_days: input.inactive_warn_days.clone(),
            replaced_secret: input.replaced_secret.clone(),
            exposure: input.exposure.clone(),
            second_factor: input.second_factor.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "configuration/key_policy.html")]
struct PolicyPage {
    frame: Frame,
    form: Shown,
    errors: FieldErrors,
    notice: String,
    out_of_policy: i64,
    validity_days: [i64; 5],
    replaced: Vec<(&'static str, &'static str)>,
    exposure: Vec<(&'static str, &'static str)>,
    second: Vec<(&'static str, &'static str)>,
}

impl PolicyPage {
    fn error(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or_default().to_string()
    }
}

#[derive(Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    done: String,
}

async fn render(
    user: &Granted<ConfigWrite>,
    state: &AppState,
    form: Shown,
    errors: FieldErrors,
    notice: String,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let out_of_policy = {
        let mut conn = state.pool.acquire().await?;
        keys::out_of_policy_count(&mut conn, state.clock.unix()).await?
    };
    let page = PolicyPage {
        frame: Frame::new(user, "key-policy"),
        form,
        errors,
        notice,
        out_of_policy,
        validity_days: key_policy::VALIDITY_DAYS,
        replaced: OnReplaced::ALL.map(|p| (p.as_str(), p.label())).to_vec(),
        exposure: OnExposed::ALL.map(|p| (p.as_str(), p.label())).to_vec(),
        second: SecondFactor::ALL.map(|p| (p.as_str(), p.label())).to_vec(),
    };
    Ok(html(status, page))
}

/// GET /configuration/key-policy — needs `config:write`.
pub async fn page(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    q: web::Query<Done>,
) -> Result<HttpResponse, AppError> {
    let policy = key_policy::current(&state.pool).await?;
    let second = factors::policy(&state.pool).await?;
    let notice = match q.done.as_str() {
        "saved" => "The key policy was saved.".to_string(),
        "unchanged" => "Nothing changed: the key policy already said that.".to_string(),
        _ => String::new(),
    };
    let form = Shown::of(&policy, second);
    render(
        &user,
        &state,
        form,
        FieldErrors::default(),
        notice,
        StatusCode::OK,
    )
    .await
}

/// The form as posted; a missing field is empty (an unchecked box is absent).
#[derive(Deserialize, Default)]
pub struct PolicyForm {
    #[serde(default)]
    max_days_access: String,
    #[serde(default)]
    max_days_api: String,
    #[serde(default)]
    expiry_required: String,
    #[serde(default)]
    default_validity: String,
    #[serde(default)]
    inactive_days: String,
    #[serde(default)]
    inactive_warn_days: String,
    #[serde(default)]
    replaced_secret: String,
    #[serde(default)]
    exposure: String,
    #[serde(default)]
    second_factor: String,
}

/// POST /configuration/key-policy — needs `config:write` (and a recent confirmation: the
/// step-up guard); each change audited.
pub async fn save(
    user: Granted<ConfigWrite>,
    state: web::Data<AppState>,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.into_inner();
    let input = PolicyInput {
        max_days_access: f.max_days_access,
        max_days_api: f.max_days_api,
        expiry_required: !f.expiry_required.is_empty(),
        default_validity: f.default_validity,
        inactive_days: f.inactive_days,
        inactive_warn_days: f.inactive_warn_days,
        replaced_secret: f.replaced_secret,
        exposure: f.exposure,
        second_factor: f.second_factor,
    };
    match key_policy::save(&state.pool, state.clock.as_ref(), &user.actor(), &input).await {
        Ok(0) => Ok(see_other(&format!("{PAGE}?done=unchanged"))),
        Ok(_) => Ok(see_other(&format!("{PAGE}?done=saved"))),
        Err(FormError::Invalid(errors)) => {
            let shown = Shown::typed(&input);
            render(
                &user,
                &state,
                shown,
                errors,
                String::new(),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(FormError::Other(e)) => Err(e),
    }
}

/// A mend as the summary shows it.
struct MendView {
    id: String,
    name: String,
    key_type: &'static str,
    from: String,
    to: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "keys/conform.html")]
struct ConformPage {
    frame: Frame,
    mends: Vec<MendView>,
    in_policy: Vec<String>,
    missing: usize,
    limit_hint: String,
}

/// The selection: `ids` (repeated), or `all=1` for every key out of policy (up to the most
/// one action takes).
fn selection(raw: &[u8]) -> (Vec<String>, bool) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw).unwrap_or_default();
    let ids = pairs
        .iter()
        .filter(|(k, _)| k == "ids")
        .map(|(_, v)| v.clone())
        .take(MOST_AT_ONCE + 1)
        .collect();
    let all = pairs.iter().any(|(k, v)| k == "all" && v == "1");
    (ids, all)
}

async fn chosen_ids(state: &AppState, raw: &[u8]) -> Result<Vec<String>, AppError> {
    let (ids, all) = selection(raw);
    if !all {
        return Ok(ids);
    }
    let mut conn = state.pool.acquire().await?;
    keys::out_of_policy_ids(&mut conn, state.clock.unix(), MOST_AT_ONCE as i64).await
}

/// GET /user-access/keys/conform?ids=…|all=1 — what bringing the selection into policy will
/// change, with the button that does it (needs `keys:write`).
pub async fn conform_summary(
    user: Granted<KeysWrite>,
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, AppError> {
    let ids = chosen_ids(&state, req.query_string().as_bytes()).await?;
    let ring = state.keyring();
    let plan = keys::plan(&state.pool, &ring, &user.actor(), &ids).await?;
    let policy = key_policy::current(&state.pool).await?;
    let date = |t: Option<i64>| match t {
        Some(t) => crate::clock::format_utc(t),
        None => "Never".to_string(),
    };
    let page = ConformPage {
        frame: Frame::new(&user, "users-and-keys"),
        mends: plan
            .mends
            .iter()
            .map(|m| MendView {
                id: m.key_id.clone(),
                name: m.name.clone(),
                key_type: m.key_type.label(),
                from: date(m.from),
                to: date(Some(m.to)),
                reason: m.reason.clone(),
            })
            .collect(),
        in_policy: plan.in_policy,
        missing: plan.missing,
        limit_hint: policy.limits_hint(),
    };
    Ok(html(StatusCode::OK, page))
}

/// POST /user-access/keys/conform — brings the selected keys into policy (needs `keys:write`);
/// back to the list with what was done.
pub async fn conform(
    user: Granted<KeysWrite>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (ids, _) = selection(&body);
    let ring = state.keyring();
    let done = keys::conform(&state.pool, &ring, &user.actor(), &ids).await?;
    let mut pairs = vec![
        ("status", "out_of_policy".to_string()),
        ("done", "conformed".to_string()),
        ("count", done.changed.len().to_string()),
    ];
    // Only a number goes into the link (a link must not carry words to show on the page); the
    // keys that could not be changed are still out of policy, listed on the page it leads to.
    if !done.refused.is_empty() {
        pairs.push(("refused", done.refused.len().to_string()));
    }
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    Ok(see_other(&format!("/user-access/keys?{query}")))
}
