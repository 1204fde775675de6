//! Second factors of a person's own account: an authenticator app (TOTP) with recovery codes,
//! the second step of sign-in, and the tenant's policy that can require a second factor.

mod app;
mod policy;
mod recovery;
mod second_step;
mod step_up;

use sqlx::{AnyConnection, AnyPool};

use crate::auth::key_secret::SecretHasher;
use crate::auth::password::PasswordHasher;
use crate::auth::vault::Vault;
use crate::clock::Clock;
use crate::error::AppResult;
use crate::service::repo;

pub use app::{Enrolment, Removal, confirm_app, remove_app, start_app, waiting_app};
pub use policy::{Policy, policy, set_policy, write_policy};
pub use recovery::regenerate_recovery_codes;
pub use second_step::{
    Method, Proof, SecondStep, prove_second_factor, second_factor_proven, second_step,
};
pub use step_up::{Ask, Refusal, STEP_UP_SECS, ask, confirm};

pub(super) use policy::{must_enrol, next_step};

/// What the second-factor rules need: the pool, the clock, the vault that seals app secrets,
/// the keyed hasher of recovery codes and the password hasher (a password can stand in for a
/// code when an app is removed).
#[derive(Clone, Copy)]
pub struct SecondFactors<'a> {
    pub pool: &'a AnyPool,
    pub clock: &'a dyn Clock,
    pub vault: &'a Vault,
    pub codes: &'a SecretHasher,
    pub passwords: &'a PasswordHasher,
}

/// The state of a person's authenticator app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppStatus {
    /// None set up.
    Absent,
    /// Set up, waiting for its first code.
    Waiting,
    /// Confirmed at this unix time: it counts as a second factor.
    Active { since: i64 },
}

/// What `/account/security` shows of a person's second factors.
#[derive(Debug, Clone)]
pub struct Security {
    pub app: AppStatus,
    /// Unused recovery codes.
    pub recovery_left: i64,
    /// Whether the person has a second factor that counts.
    pub has_second_factor: bool,
    /// The tenant's policy.
    pub policy: Policy,
    /// The policy covers the person and they have no second factor yet.
    pub must_enrol: bool,
}

/// The person's second factors and the tenant's policy, for the security page.
pub async fn security(pool: &AnyPool, user_id: &str) -> AppResult<Security> {
    let mut conn = pool.acquire().await?;
    let app = match repo::factors::find_totp(&mut conn, user_id).await? {
        None => AppStatus::Absent,
        Some(row) => match row.confirmed_at {
            None => AppStatus::Waiting,
            Some(since) => AppStatus::Active { since },
        },
    };
    Ok(Security {
        app,
        recovery_left: repo::factors::recovery_codes_left(&mut conn, user_id).await?,
        has_second_factor: has_second_factor(&mut conn, user_id).await?,
        policy: policy::read(&mut conn).await?,
        must_enrol: must_enrol(&mut conn, user_id).await?,
    })
}

/// Whether the person has a second factor that counts. The one place that says which factors
/// count (passkeys join the authenticator app here).
pub(crate) async fn has_second_factor(
    conn: &mut AnyConnection,
    user_id: &str,
) -> sqlx::Result<bool> {
    repo::factors::has_second_factor(conn, user_id).await
}

/// Removes every second factor of a person and their recovery codes (an administrator's
/// action: `people::remove_second_factors`); false when there was none.
pub(crate) async fn delete_all(conn: &mut AnyConnection, user_id: &str) -> sqlx::Result<bool> {
    let had = has_second_factor(conn, user_id).await?;
    repo::factors::delete_totp(conn, user_id).await?;
    repo::factors::delete_recovery_codes(conn, user_id).await?;
    repo::passkeys::delete_all(conn, user_id).await?;
    Ok(had)
}
