//! Recovery codes: ten single-use codes that stand in for a second factor, issued with the
//! first factor and replaced all together on request.

use sqlx::AnyConnection;

use super::SecondFactors;
use crate::auth::key_secret::SecretHasher;
use crate::auth::recovery_codes;
use crate::error::{AppError, AppResult};
use crate::service::accounts::own_entry;
use crate::service::audit::{self, SUCCESS};
use crate::service::repo;

/// Replaces the person's recovery codes with ten new ones, returned to be shown once. Only a
/// person with a second factor has codes. Audited as `user.recovery_codes_generated`.
pub async fn regenerate_recovery_codes(
    factors: SecondFactors<'_>,
    user_id: &str,
    client_ip: &str,
    once: &crate::service::once::FormOnce,
) -> AppResult<Vec<String>> {
    let now = factors.clock.unix();
    let mut tx = crate::db::begin_write(factors.pool).await?;
    // A reload of the page that shows the codes must not replace them again behind its back.
    once.spend(&mut tx, user_id, user_id, now, RECOVERY_ALREADY_GENERATED)
        .await?;
    let user = repo::users::find(&mut tx, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !super::has_second_factor(&mut tx, user_id).await? {
        return Err(AppError::Conflict(
            "Recovery codes stand in for a second factor: set up an authenticator app first."
                .into(),
        ));
    }
    let codes = issue(&mut tx, factors.codes, user_id, now).await?;
    let action = "user.recovery_codes_generated";
    let entry = own_entry(user_id, &user.email, action, client_ip, SUCCESS);
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    Ok(codes)
}

/// What a second post of "Generate new recovery codes" is told.
pub const RECOVERY_ALREADY_GENERATED: &str = "This form was already sent: new recovery codes \
    were generated then and shown once. They cannot be shown again; if they were lost, generate \
    new ones from Account security.";

/// Writes ten new codes (hashed) in place of the person's old ones and returns them.
pub(super) async fn issue(
    conn: &mut AnyConnection,
    hasher: &SecretHasher,
    user_id: &str,
    now: i64,
) -> sqlx::Result<Vec<String>> {
    let codes = recovery_codes::generate();
    let hashes: Vec<String> = codes
        .iter()
        .map(|code| recovery_codes::hash(hasher, user_id, code))
        .collect();
    repo::factors::replace_recovery_codes(conn, user_id, &hashes, now).await?;
    Ok(codes)
}
