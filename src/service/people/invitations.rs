//! Invitations: the single-use link, valid for a week, through which an invited user sets a
//! password. The link exists only sealed in its email; only a hash of its token is stored.

use sqlx::{AnyConnection, AnyPool};

use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::db::begin_write;
use crate::domain::{Actor, NewPassword};
use crate::error::AppError;
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::bootstrap::hash_setup_token;
use crate::service::notices::{self, InvitationMail, Mailing};
use crate::service::repo;
use crate::service::{FieldErrors, FormError};

/// How long an invitation link works.
pub const INVITATION_TTL_SECS: i64 = 7 * 86_400;

/// The person an invitation link is for.
#[derive(Debug, Clone)]
pub struct Invitee {
    pub id: String,
    pub name: String,
    pub email: String,
}

/// Replaces a user's unused invitation with a new one and queues its email, in the caller's
/// transaction: the link exists only sealed in that email, so the invitation and its email
/// commit together or not at all.
pub(super) async fn send(
    conn: &mut AnyConnection,
    mailing: &Mailing<'_>,
    actor: &Actor,
    invitee: &Invitee,
    now: i64,
) -> Result<(), AppError> {
    let (token, token_hash) = crate::service::bootstrap::new_link_token();
    let expires_at = now + INVITATION_TTL_SECS;
    repo::invitations::replace(conn, &invitee.id, &token_hash, now, expires_at).await?;
    let inviter = repo::users::find(conn, &actor.user_id)
        .await?
        .map_or_else(|| actor.label.clone(), |u| u.name);
    let mail = InvitationMail {
        name: &invitee.name,
        email: &invitee.email,
        inviter: &inviter,
        token: &token,
        expires_at,
    };
    notices::queue_invitation(conn, mailing, now, &mail).await?;
    Ok(())
}

/// The enabled user an unused, unexpired invitation token belongs to.
pub async fn invitation_user(
    pool: &AnyPool,
    clock: &dyn Clock,
    token: &str,
) -> Result<Option<Invitee>, AppError> {
    let mut conn = pool.acquire().await?;
    let token_hash = hash_setup_token(token);
    let Some(id) = repo::invitations::user_id(&mut conn, &token_hash, clock.unix()).await? else {
        return Ok(None);
    };
    Ok(repo::users::find(&mut conn, &id)
        .await?
        .filter(|u| u.active == 1)
        .map(|u| Invitee {
            id: u.id,
            name: u.name,
            email: u.email,
        }))
}

/// Sets the invited user's password; the link works once. Returns the user's ID.
pub async fn accept_invitation(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    token: &str,
    password: &str,
    confirm: &str,
    client_ip: &str,
) -> Result<String, FormError> {
    let user = invitation_user(pool, clock, token)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::default();
    let valid = NewPassword::parse(password, Some(&user.email))
        .map_err(|m| errors.add("password", m))
        .ok();
    if password != confirm {
        errors.add("confirm", "The passwords do not match.");
    }
    let (Some(valid), true) = (valid, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let hash = hasher.hash(valid.expose()).await?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    if !repo::invitations::use_once(&mut tx, &hash_setup_token(token), now).await? {
        return Err(AppError::NotFound.into());
    }
    repo::users::set_password(&mut tx, &user.id, &hash, now).await?;
    audit::record(
        &mut tx,
        now,
        NewEntry {
            actor_id: Some(&user.id),
            actor_label: &user.email,
            action: "user.invitation_accepted",
            target_type: "user",
            target_id: &user.id,
            target_label: &user.email,
            client_ip,
            outcome: SUCCESS,
            details: "",
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user.id)
}
