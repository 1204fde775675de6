//! The second step of sign-in: after a right password, a person with a second factor proves
//! it with an authenticator code or a recovery code (part of the passkey work adds a passkey),
//! throttled per person and per client like the password, every refusal audited.

use sqlx::{AnyConnection, AnyPool};

use super::SecondFactors;
use crate::auth::recovery_codes;
use crate::auth::totp::TotpSecret;
use crate::auth::vault::Binding;
use crate::error::{AppError, AppResult};
use crate::service::accounts::SignInError;
use crate::service::accounts::sign_in::{Attempt, SECOND_FACTOR, admit, welcome};
use crate::service::audit;
use crate::service::repo;

/// What a person typed at the second step.
#[derive(Clone, Copy)]
pub enum Proof<'a> {
    /// The 6-digit code of their authenticator app.
    AppCode(&'a str),
    /// One of their recovery codes.
    RecoveryCode(&'a str),
}

impl std::fmt::Debug for Proof<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Proof([redacted])")
    }
}

/// How a person proved their second factor, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    AuthenticatorApp,
    RecoveryCode,
    Passkey,
}

impl Method {
    /// The audit log's words.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::AuthenticatorApp => "second factor: authenticator app",
            Method::RecoveryCode => "second factor: recovery code",
            Method::Passkey => "second factor: passkey",
        }
    }
}

/// What the second step offers a person.
#[derive(Debug, Clone, Copy)]
pub struct SecondStep {
    /// They have a confirmed authenticator app.
    pub app: bool,
    /// Their unused recovery codes.
    pub recovery_left: i64,
    /// They have a passkey.
    pub passkeys: bool,
}

/// What the second step offers the person `user_id`.
pub async fn second_step(pool: &AnyPool, user_id: &str) -> AppResult<SecondStep> {
    let mut conn = pool.acquire().await?;
    let app = repo::factors::find_totp(&mut conn, user_id)
        .await?
        .is_some_and(|row| row.confirmed_at.is_some());
    let recovery_left = repo::factors::recovery_codes_left(&mut conn, user_id).await?;
    let passkeys = repo::factors::has_passkey(&mut conn, user_id).await?;
    Ok(SecondStep {
        app,
        recovery_left,
        passkeys,
    })
}

/// Checks the second factor of a person whose password was right. Wrong codes count per person,
/// per (person, address group) and per address group (`throttle::SECOND_FACTOR_*`) and are
/// audited as `sign_in.second_factor`; a code of an app is accepted once, a recovery code is
/// used up. On success the person is signed in (`second_factor_proven`).
pub async fn prove_second_factor(
    factors: SecondFactors<'_>,
    user_id: &str,
    proof: Proof<'_>,
    client_ip: &str,
) -> Result<Method, SignInError> {
    let now = factors.clock.unix();
    let mut conn = factors.pool.acquire().await?;
    let user = match repo::users::find(&mut conn, user_id).await? {
        Some(user) if user.active == 1 => user,
        _ => return Err(SignInError::Refused),
    };
    let attempt = Attempt::new(&SECOND_FACTOR, &user.id, &user.email, client_ip);
    admit(&mut conn, &attempt, now).await?;
    drop(conn);
    let mut tx = crate::db::begin_write(factors.pool).await?;
    let (checked, method) = match proof {
        Proof::AppCode(code) => (
            check_code(&mut tx, factors, user_id, code, now).await,
            Method::AuthenticatorApp,
        ),
        Proof::RecoveryCode(code) => (
            use_recovery_code(&mut tx, factors, user_id, code, now).await,
            Method::RecoveryCode,
        ),
    };
    match checked.map_err(SignInError::Other)? {
        Ok(()) => {
            attempt.succeeded(&mut tx, now).await?;
            second_factor_proven(&mut tx, &user.id, &user.email, method, client_ip, now).await?;
            tx.commit().await?;
            Ok(method)
        }
        Err(reason) => {
            audit::record(&mut tx, now, attempt.failure(reason)).await?;
            tx.commit().await?;
            Err(SignInError::Refused)
        }
    }
}

/// The pending person has proven a second factor: they are signed in (recorded and audited,
/// naming the method). Every second factor ends here, the passkey included.
pub async fn second_factor_proven(
    conn: &mut AnyConnection,
    user_id: &str,
    email: &str,
    method: Method,
    client_ip: &str,
    now: i64,
) -> sqlx::Result<()> {
    welcome(conn, user_id, email, client_ip, method.as_str(), now).await
}

/// Checks a code of the person's confirmed app and accepts its time step once: `Err` with the
/// audited reason for no app, a wrong code, or a code whose step was accepted before.
pub(super) async fn check_code(
    conn: &mut AnyConnection,
    factors: SecondFactors<'_>,
    user_id: &str,
    code: &str,
    now: i64,
) -> AppResult<Result<(), &'static str>> {
    let Some(row) = repo::factors::find_totp(conn, user_id).await? else {
        return Ok(Err("no authenticator app"));
    };
    if row.confirmed_at.is_none() {
        return Ok(Err("no authenticator app"));
    }
    let secret = open_secret(factors, user_id, &row.sealed_secret)?;
    let Some(step) = secret.matching_step(code, now) else {
        return Ok(Err("wrong authenticator code"));
    };
    if !repo::factors::accept_step(conn, user_id, step).await? {
        return Ok(Err("authenticator code used before"));
    }
    Ok(Ok(()))
}

/// Uses up one of the person's recovery codes: `Err` with the audited reason when it is not
/// one of theirs or was used.
pub(super) async fn use_recovery_code(
    conn: &mut AnyConnection,
    factors: SecondFactors<'_>,
    user_id: &str,
    typed: &str,
    now: i64,
) -> AppResult<Result<(), &'static str>> {
    let Some(code) = recovery_codes::normalise(typed) else {
        return Ok(Err("wrong recovery code"));
    };
    let hash = recovery_codes::hash(factors.codes, user_id, &code);
    if repo::factors::use_recovery_code(conn, user_id, &hash, now).await? {
        Ok(Ok(()))
    } else {
        Ok(Err("wrong or used recovery code"))
    }
}

/// The person's app secret, opened from its sealed form.
pub(super) fn open_secret(
    factors: SecondFactors<'_>,
    user_id: &str,
    sealed: &str,
) -> AppResult<TotpSecret> {
    let plain = factors
        .vault
        .open_sealed(Binding::totp_secret(user_id), sealed)
        .map_err(|e| {
            AppError::Unexpected(anyhow::anyhow!("authenticator app of {user_id}: {e}"))
        })?;
    use secrecy::ExposeSecret;
    TotpSecret::from_base32(plain.expose_secret()).ok_or_else(|| {
        AppError::Unexpected(anyhow::anyhow!(
            "authenticator app of {user_id}: the stored secret is not base32"
        ))
    })
}
