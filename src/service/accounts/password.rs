//! Changing one's own password: the current one checked (throttled like sign-in), the new one
//! stored, every other session ended.

use sqlx::{AnyConnection, AnyPool};

use super::own_entry;
use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::domain::NewPassword;
use crate::error::AppError;
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::repo::{self, users::UserRow};
use crate::service::throttle::{self, PASSWORD_CHECK_PER_USER, PASSWORD_CHECK_PER_USER_AND_CLIENT};
use crate::service::{FieldErrors, FormError};

/// A password change as typed: the current password, the new one and its confirmation. Its
/// `Debug` never shows them.
#[derive(Clone, Copy)]
pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub new: &'a str,
    pub confirm: &'a str,
}

impl std::fmt::Debug for PasswordChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange([redacted])")
    }
}

/// One check of a person's current password: who, from where, and the throttle buckets it
/// counts in.
struct Check<'a> {
    user: &'a UserRow,
    client_ip: &'a str,
    group: String,
    pair_bucket: String,
    user_bucket: String,
}

impl<'a> Check<'a> {
    fn new(user: &'a UserRow, client_ip: &'a str) -> Self {
        let group = throttle::address_group(client_ip);
        Check {
            pair_bucket: format!("password:pair:{group}:{}", user.id),
            user_bucket: format!("password:user:{}", user.id),
            group,
            user,
            client_ip,
        }
    }

    /// The audit entry of a refused change (never with what was typed).
    fn refused(&self, details: &'a str) -> NewEntry<'a> {
        let action = "user.password_change_refused";
        NewEntry {
            details,
            ..own_entry(
                &self.user.id,
                &self.user.email,
                action,
                self.client_ip,
                FAILURE,
            )
        }
    }
}

/// Changes the signed-in user's password after checking the current one; ends the user's other
/// sessions (the caller renews its own). The current-password check is throttled like sign-in,
/// per (user, address group) and per user, and every wrong current password is audited
/// (`user.password_change_refused`, never with what was typed); throttled attempts answer
/// `AppError::TooManyRequests` and are audited once per window.
pub async fn change_password(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    user_id: &str,
    change: PasswordChange<'_>,
    client_ip: &str,
) -> Result<(), FormError> {
    let now = clock.unix();
    let mut conn = pool.acquire().await?;
    let user = repo::users::find(&mut conn, user_id)
        .await?
        .ok_or(FormError::Other(AppError::NotFound))?;
    let check = Check::new(&user, client_ip);
    admit(&mut conn, &check, now).await?;
    drop(conn);
    // An over-long input cannot be the password: wrong without hashing.
    let current_ok = !NewPassword::is_too_long(change.current)
        && hasher
            .verify(change.current, user.password_hash.as_deref())
            .await?;
    let mut conn = pool.acquire().await?;
    let mut errors = Vec::new();
    if current_ok {
        let pair_limit = PASSWORD_CHECK_PER_USER_AND_CLIENT;
        throttle::release(&mut conn, &check.pair_bucket, pair_limit, now).await?;
        throttle::release(&mut conn, &check.user_bucket, PASSWORD_CHECK_PER_USER, now).await?;
    } else {
        let entry = check.refused("wrong current password");
        audit::record(&mut conn, now, entry).await?;
        errors.push((
            "current",
            "Your current password is not correct.".to_string(),
        ));
    }
    drop(conn);
    let new_password = NewPassword::parse(change.new, Some(&user.email))
        .map_err(|m| errors.push(("password", m)))
        .ok();
    if change.new != change.confirm {
        errors.push(("confirm", "The passwords do not match.".into()));
    }
    let new_password = match new_password {
        Some(p) if errors.is_empty() => p,
        _ => return Err(FormError::Invalid(FieldErrors(errors))),
    };
    let hash = hasher.hash(new_password.expose()).await?;
    let mut tx = crate::db::begin_write(pool).await?;
    repo::users::set_password(&mut tx, user_id, &hash, now).await?;
    crate::auth::store::sessions::delete_for_user(&mut tx, user_id).await?;
    let entry = own_entry(
        user_id,
        &user.email,
        "user.password_changed",
        client_ip,
        SUCCESS,
    );
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Counts the check in its buckets before the password is looked at, and refuses it (audited
/// once per window) when the address or the person is over the limit.
async fn admit(conn: &mut AnyConnection, check: &Check<'_>, now: i64) -> Result<(), FormError> {
    let too_many = |retry_after: i64| {
        FormError::Other(AppError::TooManyRequests {
            retry_after: u64::try_from(retry_after).unwrap_or(1),
        })
    };
    let user_id = &check.user.id;
    let pair_limit = PASSWORD_CHECK_PER_USER_AND_CLIENT;
    let pair = throttle::count(conn, &check.pair_bucket, pair_limit, now).await?;
    if let Some(retry_after) = pair.retry_after {
        let marker = format!("password:throttled:{}:{user_id}", check.group);
        if throttle::first_in_window(conn, &marker, pair_limit.window_secs, now).await? {
            audit::record(conn, now, check.refused("throttled")).await?;
        }
        return Err(too_many(retry_after));
    }
    let all = throttle::count(conn, &check.user_bucket, PASSWORD_CHECK_PER_USER, now).await?;
    if let Some(retry_after) = all.retry_after {
        throttle::release(conn, &check.pair_bucket, pair_limit, now).await?;
        let marker = format!("password:user-throttled:{user_id}");
        let window = PASSWORD_CHECK_PER_USER.window_secs;
        if throttle::first_in_window(conn, &marker, window, now).await? {
            let details = "throttled: wrong passwords from many addresses";
            audit::record(conn, now, check.refused(details)).await?;
        }
        return Err(too_many(retry_after));
    }
    Ok(())
}
