//! People's accounts: the first administrator, sign-in with throttling, password changes.

use sqlx::AnyPool;

use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::db;
use crate::domain::{Email, NewPassword, PersonName};
use crate::error::{AppError, AppResult};
use crate::repo::{self, groups::ADMINISTRATORS};
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::bootstrap::hash_setup_token;
use crate::service::throttle::{self, SIGN_IN_PER_ACCOUNT, SIGN_IN_PER_CLIENT};
use crate::service::{FieldErrors, FormError};

/// What a new administrator is made of, as typed.
#[derive(Debug, Clone)]
pub struct NewAdmin<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub confirm: Option<&'a str>,
}

/// A checked new administrator.
struct ValidAdmin {
    name: PersonName,
    email: Email,
    password: NewPassword,
}

fn validate_admin(input: &NewAdmin<'_>) -> Result<ValidAdmin, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let name = PersonName::parse(input.name)
        .map_err(|m| errors.push(("name", m)))
        .ok();
    let email = Email::parse(input.email)
        .map_err(|m| errors.push(("email", m)))
        .ok();
    let password = NewPassword::parse(input.password, email.as_ref().map(Email::as_str))
        .map_err(|m| errors.push(("password", m)))
        .ok();
    if let Some(confirm) = input.confirm
        && confirm != input.password
    {
        errors.push(("confirm", "The passwords do not match.".into()));
    }
    match (name, email, password) {
        (Some(name), Some(email), Some(password)) if errors.is_empty() => Ok(ValidAdmin {
            name,
            email,
            password,
        }),
        _ => Err(errors),
    }
}

/// Creates an administrator (member of Administrators). `setup_token` makes it the first-run
/// setup, which succeeds once and only while no user exists.
pub async fn create_admin(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    input: NewAdmin<'_>,
    setup_token: Option<&str>,
    client_ip: &str,
) -> Result<String, FormError> {
    let valid = validate_admin(&input).map_err(|e| FormError::Invalid(FieldErrors(e)))?;
    let hash = hasher.hash(valid.password.expose()).await?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    if let Some(token) = setup_token {
        let first = repo::users::count(&mut tx).await? == 0;
        if !first || !repo::setup_tokens::consume(&mut tx, &hash_setup_token(token), now).await? {
            return Err(FormError::Other(AppError::NotFound));
        }
    }
    let id = repo::new_id("usr");
    match repo::users::insert(
        &mut tx,
        &id,
        valid.email.as_str(),
        valid.name.as_str(),
        Some(&hash),
        now,
    )
    .await
    {
        Ok(()) => {}
        Err(e) if db::is_unique_violation(&e) => {
            return Err(FormError::Invalid(FieldErrors(vec![(
                "email",
                "A user with this email already exists.".into(),
            )])));
        }
        Err(e) => return Err(e.into()),
    }
    repo::groups::add_member(&mut tx, ADMINISTRATORS, &id, now).await?;
    let action = if setup_token.is_some() {
        "setup.admin_created"
    } else {
        "user.admin_created"
    };
    audit::record(
        &mut tx,
        now,
        NewEntry {
            actor_id: setup_token.map(|_| id.as_str()),
            actor_label: if setup_token.is_some() {
                valid.email.as_str()
            } else {
                "command line"
            },
            action,
            target_type: "user",
            target_id: &id,
            target_label: valid.email.as_str(),
            client_ip,
            outcome: SUCCESS,
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Whether a setup token still works (unused, unexpired, and no user exists yet).
pub async fn setup_token_is_valid(
    pool: &AnyPool,
    clock: &dyn Clock,
    token: &str,
) -> AppResult<bool> {
    let mut conn = pool.acquire().await?;
    if repo::users::count(&mut conn).await? > 0 {
        return Ok(false);
    }
    Ok(repo::setup_tokens::is_valid(&mut conn, &hash_setup_token(token), clock.unix()).await?)
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: String,
}

/// Why a sign-in was refused. Both refusals look the same to the person signing in whatever
/// the reason (unknown account, wrong password, disabled account).
#[derive(Debug)]
pub enum SignInError {
    Refused,
    Throttled { retry_after: i64 },
    Other(AppError),
}

impl From<sqlx::Error> for SignInError {
    fn from(e: sqlx::Error) -> Self {
        SignInError::Other(e.into())
    }
}

/// Checks an email and password, with throttling per account and per client address.
pub async fn sign_in(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    email: &str,
    password: &str,
    client_ip: &str,
) -> Result<SignedIn, SignInError> {
    let email = email.trim().to_lowercase();
    let account_bucket = format!("signin:account:{email}");
    let client_bucket = format!("signin:client:{client_ip}");
    let now = clock.unix();
    let mut conn = pool.acquire().await?;

    // Both buckets count this attempt before the password is checked.
    let account_wait =
        throttle::reserve(&mut conn, &account_bucket, SIGN_IN_PER_ACCOUNT, now).await?;
    let client_wait = throttle::reserve(&mut conn, &client_bucket, SIGN_IN_PER_CLIENT, now).await?;
    let blocked = account_wait.max(client_wait);
    let failure = |reason: &'static str| NewEntry {
        actor_label: &email,
        action: "sign_in",
        target_type: "user",
        target_label: &email,
        client_ip,
        outcome: FAILURE,
        details: reason,
        ..Default::default()
    };
    if let Some(retry_after) = blocked {
        audit::record(&mut conn, now, failure("throttled")).await?;
        return Err(SignInError::Throttled { retry_after });
    }

    let user = repo::users::find_by_email(&mut conn, &email).await?;
    // Release the connection while hashing: hashing is slow and the pool is shared.
    drop(conn);
    let verified = hasher
        .verify(
            password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await
        .map_err(|e| SignInError::Other(e.into()))?;
    let mut conn = pool.acquire().await?;
    let reason = match &user {
        None => Some("unknown account"),
        Some(_) if !verified => Some("wrong password"),
        Some(u) if u.active != 1 => Some("account disabled"),
        Some(_) => None,
    };
    if let Some(reason) = reason {
        let mut entry = failure(reason);
        entry.actor_id = user.as_ref().map(|u| u.id.as_str());
        entry.target_id = user.as_ref().map(|u| u.id.as_str()).unwrap_or_default();
        audit::record(&mut conn, now, entry).await?;
        return Err(SignInError::Refused);
    }
    let user = user.expect("a missing user was refused above");
    throttle::reset(&mut conn, &account_bucket).await?;
    throttle::release(&mut conn, &client_bucket, SIGN_IN_PER_CLIENT, now).await?;
    repo::users::touch_sign_in(&mut conn, &user.id, now).await?;
    audit::record(
        &mut conn,
        now,
        NewEntry {
            actor_id: Some(&user.id),
            actor_label: &user.email,
            action: "sign_in",
            target_type: "user",
            target_id: &user.id,
            target_label: &user.email,
            client_ip,
            outcome: SUCCESS,
            ..Default::default()
        },
    )
    .await?;
    Ok(SignedIn { user_id: user.id })
}

/// Records a sign-out.
pub async fn record_sign_out(
    pool: &AnyPool,
    clock: &dyn Clock,
    user_id: &str,
    email: &str,
    client_ip: &str,
) -> AppResult<()> {
    let mut conn = pool.acquire().await?;
    audit::record(
        &mut conn,
        clock.unix(),
        NewEntry {
            actor_id: Some(user_id),
            actor_label: email,
            action: "sign_out",
            target_type: "user",
            target_id: user_id,
            target_label: email,
            client_ip,
            outcome: SUCCESS,
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// A password change as typed: the current password, the new one and its confirmation.
#[derive(Clone, Copy)]
pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub new: &'a str,
    pub confirm: &'a str,
}

/// Changes the signed-in user's password after checking the current one; ends the user's other
/// sessions (the caller renews its own).
pub async fn change_password(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    user_id: &str,
    change: PasswordChange<'_>,
    client_ip: &str,
) -> Result<(), FormError> {
    let PasswordChange {
        current,
        new,
        confirm,
    } = change;
    let mut conn = pool.acquire().await?;
    let user = repo::users::find(&mut conn, user_id)
        .await?
        .ok_or(FormError::Other(AppError::NotFound))?;
    drop(conn);
    let mut errors = Vec::new();
    if !hasher
        .verify(current, user.password_hash.as_deref())
        .await?
    {
        errors.push((
            "current",
            "Your current password is not correct.".to_string(),
        ));
    }
    let new_password = NewPassword::parse(new, Some(&user.email))
        .map_err(|m| errors.push(("password", m)))
        .ok();
    if new != confirm {
        errors.push(("confirm", "The passwords do not match.".into()));
    }
    let new_password = match new_password {
        Some(p) if errors.is_empty() => p,
        _ => return Err(FormError::Invalid(FieldErrors(errors))),
    };
    let hash = hasher.hash(new_password.expose()).await?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    repo::users::set_password(&mut tx, user_id, &hash, now).await?;
    repo::sessions::delete_for_user(&mut tx, user_id).await?;
    audit::record(
        &mut tx,
        now,
        NewEntry {
            actor_id: Some(user_id),
            actor_label: &user.email,
            action: "user.password_changed",
            target_type: "user",
            target_id: user_id,
            target_label: &user.email,
            client_ip,
            outcome: SUCCESS,
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
