//! The authenticator app: set up with a new secret, confirmed by a first code before it counts,
//! removed with a code or the password.

use secrecy::zeroize::Zeroizing;

use super::SecondFactors;
use super::second_step::{check_code, open_secret};
use crate::auth::totp::TotpSecret;
use crate::auth::vault::Binding;
use crate::domain::NewPassword;
use crate::error::{AppError, AppResult};
use crate::service::accounts::sign_in::{Attempt, SECOND_FACTOR, admit};
use crate::service::accounts::{SignInError, own_entry};
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::repo::{self, users::UserRow};
use crate::service::{FieldErrors, FormError};

/// A waiting app's secret as the enrolment page shows it: in groups of four to type, and the
/// `otpauth://` address for the QR code. Never logged: its `Debug` shows neither.
pub struct Enrolment {
    pub grouped: Zeroizing<String>,
    pub uri: Zeroizing<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// What proves the person may remove their app: a current code, or their password.
#[derive(Clone, Copy)]
pub enum Removal<'a> {
    Code(&'a str),
    Password(&'a str),
}

/// Gives the person a new app secret waiting for its first code (replacing a waiting one).
/// Refused while a confirmed app exists: it must be removed first.
pub async fn start_app(factors: SecondFactors<'_>, user_id: &str) -> AppResult<()> {
    let secret = TotpSecret::generate();
    let mut tx = crate::db::begin_write(factors.pool).await?;
    let plain = secret.to_base32();
    let place = (Binding::totp_secret(user_id), plain.as_str());
    let [sealed] = factors.vault.seal_to_store(&mut tx, [place]).await?;
    let now = factors.clock.unix();
    if !repo::factors::insert_pending_totp(&mut tx, user_id, &sealed, now).await? {
        return Err(AppError::Conflict(
            "An authenticator app is set up already. Remove it before setting up another.".into(),
        ));
    }
    tx.commit().await?;
    Ok(())
}

/// The secret of the person's app that waits for its first code, if one does.
pub async fn waiting_app(
    factors: SecondFactors<'_>,
    user_id: &str,
    account: &str,
) -> AppResult<Option<Enrolment>> {
    let mut conn = factors.pool.acquire().await?;
    let row = match repo::factors::find_totp(&mut conn, user_id).await? {
        Some(row) if row.confirmed_at.is_none() => row,
        _ => return Ok(None),
    };
    let secret = open_secret(factors, user_id, &row.sealed_secret)?;
    Ok(Some(Enrolment {
        grouped: secret.grouped(),
        uri: secret.uri(account),
    }))
}

/// Confirms the waiting app with its first code: from then on it counts, and its code's time
/// step is used. A person who had no recovery codes gets ten, returned to be shown once.
/// Audited as `user.second_factor_added`.
pub async fn confirm_app(
    factors: SecondFactors<'_>,
    user_id: &str,
    code: &str,
    client_ip: &str,
) -> Result<Option<Vec<String>>, FormError> {
    let now = factors.clock.unix();
    let mut tx = crate::db::begin_write(factors.pool).await?;
    let user = find(&mut tx, user_id).await?;
    let row = match repo::factors::find_totp(&mut tx, user_id).await? {
        Some(row) if row.confirmed_at.is_none() => row,
        Some(_) => {
            return Err(
                AppError::Conflict("This authenticator app is set up already.".into()).into(),
            );
        }
        None => {
            return Err(AppError::Gone(
                "There is no authenticator app waiting to be set up. Start again.",
            )
            .into());
        }
    };
    let secret = open_secret(factors, user_id, &row.sealed_secret)?;
    let Some(step) = secret.matching_step(code, now) else {
        let message = if code.trim().is_empty() {
            "Enter the 6-digit code your app shows."
        } else {
            "That code is not right. Check the app's clock and enter the code it shows now."
        };
        return Err(FormError::Invalid(FieldErrors(vec![(
            "code",
            message.into(),
        )])));
    };
    repo::factors::confirm_totp(&mut tx, user_id, step, now).await?;
    let codes = if repo::factors::has_recovery_codes(&mut tx, user_id).await? {
        None
    } else {
        Some(super::recovery::issue(&mut tx, factors.codes, user_id, now).await?)
    };
    let entry = own_entry(
        user_id,
        &user.email,
        "user.second_factor_added",
        client_ip,
        SUCCESS,
    );
    let details = "authenticator app";
    audit::record(&mut tx, now, NewEntry { details, ..entry }).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Removes the person's app after checking a current code or their password (throttled and
/// audited like the second step). Without another second factor, the recovery codes go too.
/// Audited as `user.second_factor_removed`.
pub async fn remove_app(
    factors: SecondFactors<'_>,
    user_id: &str,
    proof: Removal<'_>,
    client_ip: &str,
) -> Result<(), FormError> {
    let now = factors.clock.unix();
    let mut conn = factors.pool.acquire().await?;
    let user = find(&mut conn, user_id).await?;
    let attempt = Attempt::new(&SECOND_FACTOR, &user.id, &user.email, client_ip);
    admit(&mut conn, &attempt, now).await.map_err(|e| match e {
        SignInError::Throttled { retry_after } => FormError::Other(AppError::TooManyRequests {
            retry_after: u64::try_from(retry_after).unwrap_or(1),
        }),
        SignInError::Refused => FormError::Other(AppError::Forbidden),
        SignInError::Other(e) => FormError::Other(e),
    })?;
    drop(conn);
    let password_ok = match proof {
        Removal::Password(typed) if !NewPassword::is_too_long(typed) => {
            let hash = user.password_hash.as_deref();
            factors.passwords.verify(typed, hash).await?
        }
        _ => false,
    };
    let mut tx = crate::db::begin_write(factors.pool).await?;
    let checked = match proof {
        Removal::Code(code) => check_code(&mut tx, factors, user_id, code, now).await?,
        Removal::Password(_) if password_ok => Ok(()),
        Removal::Password(_) => Err("wrong password"),
    };
    if let Err(reason) = checked {
        let refused = "user.second_factor_removal_refused";
        audit::record(
            &mut tx,
            now,
            NewEntry {
                action: refused,
                ..attempt.failure(reason)
            },
        )
        .await?;
        tx.commit().await?;
        let message = match proof {
            Removal::Code(_) => {
                "That code is not right, or was used already. Enter the code your app shows now."
            }
            Removal::Password(_) => "Your password is not correct.",
        };
        let field = match proof {
            Removal::Code(_) => "code",
            Removal::Password(_) => "password",
        };
        return Err(FormError::Invalid(FieldErrors(vec![(
            field,
            message.into(),
        )])));
    }
    attempt.succeeded(&mut tx, now).await?;
    repo::factors::delete_totp(&mut tx, user_id).await?;
    if !super::has_second_factor(&mut tx, user_id).await? {
        repo::factors::delete_recovery_codes(&mut tx, user_id).await?;
    }
    let entry = own_entry(
        user_id,
        &user.email,
        "user.second_factor_removed",
        client_ip,
        SUCCESS,
    );
    let details = "authenticator app";
    audit::record(&mut tx, now, NewEntry { details, ..entry }).await?;
    tx.commit().await?;
    Ok(())
}

async fn find(conn: &mut sqlx::AnyConnection, user_id: &str) -> AppResult<UserRow> {
    repo::users::find(conn, user_id)
        .await?
        .ok_or(AppError::NotFound)
}
