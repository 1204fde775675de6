//! `/api/v1/apikeys` and `/api/v1/me/keys`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::DateTime;
use serde::{Deserialize, Deserializer, Serialize};

use crate::api::error::ErrorBody;
use crate::api::key_filters::key_filter_query;
use crate::api::{ApiCaller, ApiError};
use crate::domain::Permission;
use crate::service::keys::{
    self, ExpiryChoice, KeyChanges, KeyQuery, KeySort, NewKey, OneTimeSecret, Scope, Switch,
};
use crate::service::once::FormOnce;
use crate::service::{FieldErrors, FormError};
use crate::state::AppState;

pub use super::key_view::{
    KeyView, KeyWithSecret, LastUsed, Owner, RateLimitBody, RateLimitView, shape,
};

async fn with_secret(
    state: &AppState,
    caller: &ApiCaller,
    scope: Scope,
    shown: OneTimeSecret,
) -> Result<KeyWithSecret, ApiError> {
    Ok(KeyWithSecret {
        key: load_view(state, caller, scope, &shown.key_id).await?,
        secret_key: shown.secret.expose().to_string(),
        tenant_id: shown.tenant_id,
    })
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    res
}

/// Tells a present `null` from an absent field.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The expiry an API body asks for: absent is `default` (the policy's first choice when a key
/// is created, no change when one is updated), `null` never, else an RFC 3339 instant.
fn expiry_from(
    value: Option<Option<String>>,
    default: Option<ExpiryChoice>,
) -> Option<Result<ExpiryChoice, String>> {
    match value {
        None => default.map(Ok),
        Some(None) => Some(Ok(ExpiryChoice::Never)),
        Some(Some(raw)) => Some(
            DateTime::parse_from_rfc3339(&raw)
                .map(|t| ExpiryChoice::At(t.timestamp()))
                .map_err(|_| {
                    format!("“{raw}” is not an RFC 3339 date-time such as 2027-01-31T12:00:00Z.")
                }),
        ),
    }
}

fn form_error(e: FormError) -> ApiError {
    match e {
        FormError::Invalid(errors) => first_field_error(errors),
        FormError::Other(e) => e.into(),
    }
}

fn first_field_error(errors: FieldErrors) -> ApiError {
    let (field, message) = errors
        .0
        .into_iter()
        .next()
        .unwrap_or(("request", "The request is not valid.".into()));
    let field = match field {
        "validity" => "expires_at",
        "key_type" => "type",
        "groups" => "group_ids",
        "roles" => "role_ids",
        "rate_per_second" => "rate_limit.per_second",
        "rate_burst" => "rate_limit.burst",
        other => other,
    };
    ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message)
}

key_filter_query! {
    /// Query of `GET /api/v1/apikeys`.
    pub struct ListQuery {
        /// `created` (default), `name`, `expires` or `last_used`.
        #[serde(default)]
        sort: String,
        /// `asc` or `desc`.
        #[serde(default)]
        order: String,
        /// From 1.
        page: Option<i64>,
        /// 1 to 100; 25 by default.
        per_page: Option<i64>,
    }
}

/// A page of keys.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyPage {
    items: Vec<KeyView>,
    total: i64,
    page: i64,
    per_page: i64,
}

fn key_query(mut q: ListQuery) -> Result<KeyQuery, ApiError> {
    let bad = |field: &str, message: &str| ApiError::field(StatusCode::BAD_REQUEST, field, message);
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(25);
    if !(1..=1_000_000).contains(&page) {
        return Err(bad("page", "must be between 1 and 1000000"));
    }
    if !(1..=100).contains(&per_page) {
        return Err(bad("per_page", "must be between 1 and 100"));
    }
    let filters = q.filters()?;
    let sort = match q.sort.as_str() {
        "" => KeySort::default(),
        raw => KeySort::parse(raw)
            .ok_or_else(|| bad("sort", "must be created, name, expires or last_used"))?,
    };
    let descending = match q.order.as_str() {
        "" => None,
        "desc" => Some(true),
        "asc" => Some(false),
        _ => return Err(bad("order", "must be asc or desc")),
    };
    Ok(KeyQuery {
        search: filters.search,
        status: filters.status,
        key_type: filters.key_type,
        out_of_policy: filters.out_of_policy,
        usage: filters.usage,
        sort,
        descending,
        page,
        per_page,
    })
}

async fn list_in(
    state: &AppState,
    caller: &ApiCaller,
    scope: Scope,
    q: ListQuery,
) -> Result<HttpResponse, ApiError> {
    let query = key_query(q)?;
    let (page, per_page) = (query.page, query.per_page);
    let mut conn = state.pool.acquire().await?;
    let found =
        keys::list_details(&mut conn, &caller.actor, scope, query, &state.keyring()).await?;
    Ok(HttpResponse::Ok().json(KeyPage {
        items: found.items.into_iter().map(shape).collect(),
        total: found.total,
        page,
        per_page,
    }))
}

/// GET /api/v1/apikeys
#[utoipa::path(get, path = "/api/v1/apikeys", tag = "keys", params(ListQuery), responses((status = 200, description = "OK", body = KeyPage), (status = 400, description = "The request could not be read", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn list(
    caller: ApiCaller,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysRead)?;
    list_in(&state, &caller, Scope::Tenant, q.into_inner()).await
}

/// Body of `POST /api/v1/apikeys` and `POST /api/v1/me/keys`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// 1 to 64 characters (trimmed), no control characters.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    #[serde(default, rename = "type")]
    key_type: Option<String>,
    /// RFC 3339; `null` for never; absent for 90 days.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<String>>,
    #[serde(default)]
    group_ids: Vec<String>,
    #[serde(default)]
    role_ids: Vec<String>,
    /// Requests per second and burst; absent or `null`: no limit.
    #[serde(default)]
    rate_limit: Option<RateLimitBody>,
}

async fn create_in(
    state: &AppState,
    caller: &ApiCaller,
    scope: Scope,
    body: CreateBody,
) -> Result<HttpResponse, ApiError> {
    let input = NewKey {
        name: body.name,
        key_type: body.key_type.unwrap_or_else(|| "access".into()),
        expiry: expiry_from(body.expires_at, Some(ExpiryChoice::PolicyDefault))
            .unwrap_or(Ok(ExpiryChoice::PolicyDefault)),
        group_ids: body.group_ids,
        role_ids: body.role_ids,
        rate_limit: RateLimitBody::asked(body.rate_limit),
        once: FormOnce::default(),
    };
    let shown = keys::create(&state.pool, &state.keyring(), &caller.actor, scope, input)
        .await
        .map_err(form_error)?;
    let body = with_secret(state, caller, scope, shown).await?;
    Ok(no_store(HttpResponse::Created().json(body)))
}

/// POST /api/v1/apikeys — a tenant key; the response carries its secret once.
#[utoipa::path(post, path = "/api/v1/apikeys", tag = "keys", request_body = CreateBody, responses((status = 201, description = "Created; the secret is shown this once", body = KeyWithSecret), (status = 400, description = "The request could not be read", body = ErrorBody), (status = 413, description = "The body is too large", body = ErrorBody), (status = 422, description = "A value breaks a rule", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn create(
    caller: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysWrite)?;
    create_in(&state, &caller, Scope::Tenant, body.into_inner()).await
}

async fn load_view(
    state: &AppState,
    caller: &ApiCaller,
    scope: Scope,
    id: &str,
) -> Result<KeyView, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let key = keys::details(&mut conn, &caller.actor, scope, id, &state.keyring()).await?;
    Ok(shape(key))
}

/// GET /api/v1/apikeys/{id}
#[utoipa::path(get, path = "/api/v1/apikeys/{id}", tag = "keys", params(("id" = String, Path, description = "Key ID")), responses((status = 200, description = "OK", body = KeyView), (status = 404, description = "No such key", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn describe(
    caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysRead)?;
    Ok(load_view(&state, &caller, Scope::Tenant, &id)
        .await?
        .answer(HttpResponse::Ok()))
}

/// Body of `PATCH /api/v1/apikeys/{id}`: each field present is changed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    /// 1 to 64 characters (trimmed), no control characters.
    #[schema(min_length = 1, max_length = 64)]
    name: Option<String>,
    /// At most 500 characters, no control characters.
    #[schema(max_length = 500)]
    description: Option<String>,
    /// RFC 3339, or `null` for never.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<String>>,
    active: Option<bool>,
    locked: Option<bool>,
    role_ids: Option<Vec<String>>,
    group_ids: Option<Vec<String>>,
    allowed_networks: Option<Vec<String>>,
    /// Requests per second and burst, or `null` to remove the limit. A key changing itself
    /// may only lower its limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RateLimitBody>)]
    rate_limit: Option<Option<RateLimitBody>>,
}

/// PATCH /api/v1/apikeys/{id}
#[utoipa::path(patch, path = "/api/v1/apikeys/{id}", tag = "keys", params(("id" = String, Path, description = "Key ID")), request_body = PatchBody, responses((status = 200, description = "OK", body = KeyView), (status = 400, description = "The request could not be read", body = ErrorBody), (status = 404, description = "No such key", body = ErrorBody), (status = 409, description = "A limit or a system key", body = ErrorBody), (status = 422, description = "A value breaks a rule", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn update(
    caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysWrite)?;
    let body = body.into_inner();
    let ring = state.keyring();
    let changes = KeyChanges {
        name: body.name,
        description: body.description,
        expiry: expiry_from(body.expires_at, None),
        group_ids: body.group_ids,
        role_ids: body.role_ids,
        allowed_networks: body.allowed_networks.map(|n| n.join(", ")),
        rate_limit: body.rate_limit.map(RateLimitBody::asked),
    };
    // Everything that can be refused is checked in this first call; only then do the state
    // switches run, so a bad request writes nothing.
    keys::update(
        &state.pool,
        &ring,
        &caller.actor,
        Scope::Tenant,
        &id,
        changes,
    )
    .await
    .map_err(form_error)?;
    let switches = [
        body.active.map(|a| {
            if a {
                Switch::Activate
            } else {
                Switch::Deactivate
            }
        }),
        body.locked
            .map(|l| if l { Switch::Lock } else { Switch::Unlock }),
    ];
    for switch in switches.into_iter().flatten() {
        keys::switch(
            &state.pool,
            &ring,
            &caller.actor,
            Scope::Tenant,
            &id,
            switch,
        )
        .await?;
    }
    Ok(load_view(&state, &caller, Scope::Tenant, &id)
        .await?
        .answer(HttpResponse::Ok()))
}

/// DELETE /api/v1/apikeys/{id}
#[utoipa::path(delete, path = "/api/v1/apikeys/{id}", tag = "keys", params(("id" = String, Path, description = "Key ID")), responses((status = 204, description = "Deleted"), (status = 404, description = "No such key", body = ErrorBody), (status = 409, description = "A system key", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn delete(
    caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysWrite)?;
    keys::delete(
        &state.pool,
        &state.keyring(),
        &caller.actor,
        Scope::Tenant,
        &id,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of the secret-replacing endpoints.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateBody {
    /// How long the old secret keeps working: 0 (default) to 604800 (7 days).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    grace_seconds: i64,
}

async fn regenerate_in(
    state: &AppState,
    caller: &ApiCaller,
    scope: Scope,
    id: &str,
    body: Option<web::Json<RegenerateBody>>,
) -> Result<HttpResponse, ApiError> {
    let grace = body.map(|b| b.grace_seconds).unwrap_or(0);
    let shown = keys::regenerate(
        &state.pool,
        &state.keyring(),
        &caller.actor,
        scope,
        id,
        grace,
        &FormOnce::default(),
    )
    .await?;
    let body = with_secret(state, caller, scope, shown).await?;
    Ok(no_store(HttpResponse::Ok().json(body)))
}

/// POST /api/v1/apikeys/{id}/secretkey — a new secret; the old one stops (after `grace_seconds`).
#[utoipa::path(post, path = "/api/v1/apikeys/{id}/secretkey", tag = "keys", params(("id" = String, Path, description = "Key ID")), request_body(content = Option<RegenerateBody>), responses((status = 200, description = "OK", body = KeyWithSecret), (status = 404, description = "No such key", body = ErrorBody), (status = 409, description = "A limit or a system key", body = ErrorBody), (status = 422, description = "A value breaks a rule", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn regenerate(
    caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Option<web::Json<RegenerateBody>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::KeysWrite)?;
    regenerate_in(&state, &caller, Scope::Tenant, &id, body).await
}

/// GET /api/v1/apikeys/current — the calling key.
#[utoipa::path(get, path = "/api/v1/apikeys/current", tag = "keys", responses((status = 200, description = "OK", body = KeyView), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn current(
    caller: ApiCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = keys::own_details(caller.own_key()?, &state.keyring());
    Ok(shape(key).answer(HttpResponse::Ok()))
}

/// POST /api/v1/apikeys/current/secretkey — the calling key rotates its own secret.
#[utoipa::path(post, path = "/api/v1/apikeys/current/secretkey", tag = "keys", request_body(content = Option<RegenerateBody>), responses((status = 200, description = "OK", body = KeyWithSecret), (status = 409, description = "A limit or a system key", body = ErrorBody), (status = 422, description = "A value breaks a rule", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn rotate_current(
    caller: ApiCaller,
    state: web::Data<AppState>,
    body: Option<web::Json<RegenerateBody>>,
) -> Result<HttpResponse, ApiError> {
    let id = caller.own_key()?.id().to_string();
    regenerate_in(&state, &caller, Scope::OwnKey, &id, body).await
}

fn personal_only(caller: &ApiCaller) -> Result<(), ApiError> {
    if !caller.own_key()?.is_personal() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This is a tenant key: it has no personal keys. Call with one of your personal keys.",
        ));
    }
    Ok(())
}

/// GET /api/v1/me/keys — the personal keys of the calling key's owner.
#[utoipa::path(get, path = "/api/v1/me/keys", tag = "me", params(ListQuery), responses((status = 200, description = "OK", body = KeyPage), (status = 400, description = "The request could not be read", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn my_keys(
    caller: ApiCaller,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    personal_only(&caller)?;
    list_in(&state, &caller, Scope::Personal, q.into_inner()).await
}

/// POST /api/v1/me/keys — a personal key (at most two); 409 beyond that.
#[utoipa::path(post, path = "/api/v1/me/keys", tag = "me", request_body = CreateBody, responses((status = 201, description = "Created; the secret is shown this once", body = KeyWithSecret), (status = 400, description = "The request could not be read", body = ErrorBody), (status = 409, description = "Two personal keys already", body = ErrorBody), (status = 422, description = "A value breaks a rule", body = ErrorBody), (status = 401, description = "No valid access key", body = ErrorBody), (status = 403, description = "Missing permission", body = ErrorBody), (status = 429, description = "Too many failures from this address, or the calling key is over its rate limit (code `RATE_LIMITED`, with `Retry-After`, `RateLimit-Policy` and `RateLimit`)", body = ErrorBody)), security(("basic" = []), ("bearer" = [])))]
pub async fn create_my_key(
    caller: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    personal_only(&caller)?;
    create_in(&state, &caller, Scope::Personal, body.into_inner()).await
}
