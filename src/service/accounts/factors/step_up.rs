//! Step-up: before an action that makes or destroys a secret (SPEC §8), a person whose last
//! confirmation is older than ten minutes confirms it is them again: with a code of their
//! authenticator app or a recovery code when they have an app, else with their password.
//! Throttled like the second step of sign-in; every answer audited as `step_up`.

use super::SecondFactors;
use super::second_step::{check_code, use_recovery_code};
use crate::auth::recovery_codes;
use crate::domain::NewPassword;
use crate::error::{AppError, AppResult};
use crate::service::accounts::SignInError;
use crate::service::accounts::sign_in::{Attempt, SECOND_FACTOR, admit};
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::repo;

/// How long a confirmation lasts.
pub const STEP_UP_SECS: i64 = 600;

/// What the confirmation asks the person for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A code of their authenticator app, or one of their recovery codes.
    Code,
    /// Their password (no authenticator app; a passkey-only account too, until the passkey
    /// ceremony can confirm an action).
    Password,
}

/// What a person with `user_id` is asked to confirm an action with.
pub async fn ask(pool: &sqlx::AnyPool, user_id: &str) -> AppResult<Ask> {
    let mut conn = pool.acquire().await?;
    let app = repo::factors::find_totp(&mut conn, user_id)
        .await?
        .is_some_and(|row| row.confirmed_at.is_some());
    Ok(if app { Ask::Code } else { Ask::Password })
}

/// Why a confirmation was refused, as the form says it next to the field.
#[derive(Debug)]
pub enum Refusal {
    Wrong(&'static str),
    Throttled { retry_after: i64 },
    Other(AppError),
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        Refusal::Other(e.into())
    }
}

/// Checks what the person typed to confirm `action` (the path of the form, for the audit log).
pub async fn confirm(
    factors: SecondFactors<'_>,
    user_id: &str,
    typed: &str,
    action: &str,
    client_ip: &str,
) -> Result<(), Refusal> {
    let now = factors.clock.unix();
    let mut conn = factors.pool.acquire().await?;
    let user = match repo::users::find(&mut conn, user_id).await? {
        Some(user) if user.active == 1 => user,
        _ => return Err(Refusal::Other(AppError::Unauthorized)),
    };
    let attempt = Attempt::new(&SECOND_FACTOR, &user.id, &user.email, client_ip);
    admit(&mut conn, &attempt, now).await.map_err(|e| match e {
        SignInError::Throttled { retry_after } => Refusal::Throttled { retry_after },
        SignInError::Refused => Refusal::Wrong("Your answer could not be checked."),
        SignInError::Other(e) => Refusal::Other(e),
    })?;
    drop(conn);
    let ask = ask(factors.pool, user_id).await.map_err(Refusal::Other)?;
    let password_ok = match ask {
        Ask::Password if !NewPassword::is_too_long(typed) => factors
            .passwords
            .verify(typed, user.password_hash.as_deref())
            .await
            .map_err(|e| Refusal::Other(e.into()))?,
        _ => false,
    };
    let mut tx = crate::db::begin_write(factors.pool).await?;
    let checked = match ask {
        Ask::Password if password_ok => Ok(()),
        Ask::Password => Err("wrong password"),
        Ask::Code if recovery_codes::normalise(typed).is_some() => {
            use_recovery_code(&mut tx, factors, user_id, typed, now)
                .await
                .map_err(Refusal::Other)?
        }
        Ask::Code => check_code(&mut tx, factors, user_id, typed, now)
            .await
            .map_err(Refusal::Other)?,
    };
    let entry = NewEntry {
        action: "step_up",
        details: action,
        ..attempt.failure("")
    };
    match checked {
        Ok(()) => {
            attempt.succeeded(&mut tx, now).await?;
            let (actor_id, outcome) = (Some(user.id.as_str()), SUCCESS);
            let target_id = user.id.as_str();
            let ok = NewEntry {
                actor_id,
                target_id,
                outcome,
                ..entry
            };
            audit::record(&mut tx, now, ok).await?;
            tx.commit().await?;
            Ok(())
        }
        Err(reason) => {
            let details = format!("{action}: {reason}");
            let failed = NewEntry {
                actor_id: Some(user.id.as_str()),
                target_id: user.id.as_str(),
                details: &details,
                ..entry
            };
            audit::record(&mut tx, now, failed).await?;
            tx.commit().await?;
            Err(Refusal::Wrong(match ask {
                Ask::Password => "Your password is not correct.",
                Ask::Code => "That code is not right, or was used already.",
            }))
        }
    }
}
