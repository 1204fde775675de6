//! Password reset (SPEC §8): a person who forgot their password asks for a link by email; the
//! single-use link, valid for an hour, lets them choose a new one and signs them out everywhere.
//! The answer to a request is the same whether or not the address has an account, and both
//! cases do the same work. An administrator can send the link too.

use askama::Template;
use secrecy::zeroize::Zeroizing;
use sqlx::{AnyConnection, AnyPool};

use super::own_entry;
use crate::auth::password::PasswordHasher;
use crate::clock::{Clock, format_utc};
use crate::db::begin_write;
use crate::domain::{Actor, Email, NewPassword, Permission};
use crate::error::AppError;
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::bootstrap::{LINK_TOKEN_LEN, hash_setup_token};
use crate::service::notices::{Mailing, queue_sealed};
use crate::service::repo::{self, outbox::NewMail, password_resets, users::UserRow};
use crate::service::throttle::{self, RESET_REQUESTS_PER_ADDRESS, RESET_REQUESTS_PER_CLIENT};
use crate::service::{FieldErrors, FormError};

/// How long a reset link works.
pub const RESET_TTL_SECS: i64 = 3600;

/// The person a working reset link is for.
#[derive(Debug, Clone)]
pub struct ResetFor {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Template)]
#[template(path = "emails/password_reset.txt")]
struct ResetText<'a> {
    name: &'a str,
    asked: &'a str,
    link: &'a str,
    expires: &'a str,
}

#[derive(Template)]
#[template(path = "emails/password_reset.html")]
struct ResetHtml<'a> {
    name: &'a str,
    asked: &'a str,
    link: &'a str,
    expires: &'a str,
}

/// Who a link goes to: their ID (none for an address without an account), name and address.
struct Recipient<'a> {
    user_id: Option<&'a str>,
    name: &'a str,
    email: &'a str,
}

/// Writes a new link for `to` (superseding their older ones) and queues its email sealed, in
/// the caller's transaction. `asked` is the email's opening sentence (who asked for it).
async fn issue(
    conn: &mut AnyConnection,
    mailing: &Mailing<'_>,
    to: &Recipient<'_>,
    asked: &str,
    now: i64,
) -> Result<(), AppError> {
    let (token, token_hash) = crate::service::bootstrap::new_link_token();
    let expires_at = now + RESET_TTL_SECS;
    password_resets::replace(conn, to.user_id, &token_hash, now, expires_at).await?;
    let link = Zeroizing::new(format!(
        "{}/reset-password?token={}",
        mailing.public_url, *token
    ));
    let expires = format_utc(expires_at);
    let name = if to.name.is_empty() {
        to.email
    } else {
        to.name
    };
    let (text, html) = (
        ResetText {
            name,
            asked,
            link: &link,
            expires: &expires,
        },
        ResetHtml {
            name,
            asked,
            link: &link,
            expires: &expires,
        },
    );
    let text = Zeroizing::new(text.render().map_err(anyhow::Error::from)?);
    let html = Zeroizing::new(html.render().map_err(anyhow::Error::from)?);
    let mail = NewMail {
        kind: "password_reset",
        key_id: None,
        recipient: to.email,
        recipient_name: to.name,
        subject: "Reset your keyward password",
        body_text: &text,
        body_html: &html,
        sealed: true,
    };
    queue_sealed(conn, mailing.vault, now, mail).await?;
    Ok(())
}

/// What the person asking is told in the email they get.
const SELF_ASKED: &str =
    "Someone, probably you, asked to reset the password of your keyward account.";

/// Answers a request for a reset link. The answer is the same (`Ok`) whether the address has an
/// active account, a disabled one or none, and whether the address has been asked for too often;
/// only an invalid address (a message for the field) or a client asking too often
/// (`TooManyRequests`) differ, and neither says anything about the account. Both cases write the
/// link and its sealed email inside a savepoint, which is kept for an active account and rolled
/// back otherwise, then audit and commit: the same statements, so the same time.
pub async fn request_reset(
    pool: &AnyPool,
    clock: &dyn Clock,
    mailing: &Mailing<'_>,
    typed: &str,
    client_ip: &str,
) -> Result<(), FormError> {
    let email = Email::parse(typed).map_err(|m| {
        let mut errors = FieldErrors::default();
        errors.add("email", m);
        FormError::Invalid(errors)
    })?;
    let email = email.as_str();
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let admission = admit(&mut tx, email, client_ip, now).await?;
    if let Admission::Quiet | Admission::Refused(_) = admission {
        // The count and its audit entry are kept; no link is written.
        tx.commit().await?;
        return match admission {
            Admission::Refused(retry_after) => Err(FormError::Other(AppError::TooManyRequests {
                retry_after: u64::try_from(retry_after).unwrap_or(1),
            })),
            _ => Ok(()),
        };
    }
    let user = repo::users::find_by_email(&mut tx, email).await?;
    let active = user.as_ref().filter(|u| u.active == 1);
    let to = Recipient {
        user_id: active.map(|u| u.id.as_str()),
        name: active.map_or("", |u| u.name.as_str()),
        email,
    };
    password_resets::savepoint(&mut tx).await?;
    issue(&mut tx, mailing, &to, SELF_ASKED, now).await?;
    password_resets::end_savepoint(&mut tx, active.is_some()).await?;
    let details = match &user {
        Some(u) if u.active == 1 => "link sent",
        Some(_) => "no link: account disabled",
        None => "no link: unknown account",
    };
    let entry = request_entry(user.as_ref(), email, client_ip, SUCCESS, details);
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    mailing.wake_sender();
    Ok(())
}

/// The audit entry of a reset request for `email` (for administrators, so it may say whether
/// the account exists).
fn request_entry<'a>(
    user: Option<&'a UserRow>,
    email: &'a str,
    client_ip: &'a str,
    outcome: &'a str,
    details: &'a str,
) -> NewEntry<'a> {
    NewEntry {
        actor_id: user.map(|u| u.id.as_str()),
        actor_label: email,
        action: "user.password_reset_requested",
        target_type: "user",
        target_id: user.map_or("", |u| u.id.as_str()),
        target_label: email,
        client_ip,
        outcome,
        details,
    }
}

/// What the throttle says of a request.
enum Admission {
    /// Within both limits.
    Go,
    /// The address was asked for too often: the usual answer, without a link.
    Quiet,
    /// The client asked too often: refused, to retry after this many seconds.
    Refused(i64),
}

/// Counts the request per client and per address; each limit reached is audited once per
/// window.
async fn admit(
    conn: &mut AnyConnection,
    email: &str,
    client_ip: &str,
    now: i64,
) -> sqlx::Result<Admission> {
    let group = throttle::address_group(client_ip);
    let client_bucket = format!("reset:client:{group}");
    let client = throttle::count(conn, &client_bucket, RESET_REQUESTS_PER_CLIENT, now).await?;
    let window = RESET_REQUESTS_PER_CLIENT.window_secs;
    if let Some(retry_after) = client.retry_after {
        let marker = format!("reset:throttled:{group}");
        if throttle::first_in_window(conn, &marker, window, now).await? {
            let entry = request_entry(None, email, client_ip, FAILURE, "throttled: client");
            audit::record(conn, now, entry).await?;
        }
        return Ok(Admission::Refused(retry_after));
    }
    let address_bucket = format!("reset:address:{email}");
    let limit = RESET_REQUESTS_PER_ADDRESS;
    if throttle::count(conn, &address_bucket, limit, now)
        .await?
        .is_over()
    {
        let marker = format!("reset:address-throttled:{email}");
        if throttle::first_in_window(conn, &marker, limit.window_secs, now).await? {
            let details = "no link: too many requests for this address";
            let entry = request_entry(None, email, client_ip, FAILURE, details);
            audit::record(conn, now, entry).await?;
        }
        return Ok(Admission::Quiet);
    }
    Ok(Admission::Go)
}

/// Sends a reset link to a user from their page (`users:write`); not to a disabled user. The
/// link, its email and the audit entry (the administrator as actor) commit together.
pub async fn send_reset(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    mailing: &Mailing<'_>,
    user_id: &str,
) -> Result<(), AppError> {
    actor.require(Permission::UsersWrite)?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    let user = repo::users::find(&mut tx, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if user.active != 1 {
        return Err(AppError::Conflict(format!(
            "{} is disabled. Enable the user before sending a password reset link.",
            user.name
        )));
    }
    let to = Recipient {
        user_id: Some(&user.id),
        name: &user.name,
        email: &user.email,
    };
    let sender = repo::users::find(&mut tx, &actor.user_id)
        .await?
        .map_or_else(|| actor.label.clone(), |u| u.name);
    let asked = format!("{sender} asked keyward to send you a link to choose a new password.");
    issue(&mut tx, mailing, &to, &asked, now).await?;
    let entry = audit::success(
        actor,
        "user.password_reset_sent",
        "user",
        &user.id,
        &user.email,
        "",
    );
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    mailing.wake_sender();
    Ok(())
}

/// Why a link does not work, as audited.
fn refusal(
    row: Option<&password_resets::ResetRow>,
    user: Option<&UserRow>,
    now: i64,
) -> &'static str {
    match (row, user) {
        (None, _) => "unknown link",
        (Some(r), _) if r.used_at.is_some() => "link already used",
        (Some(r), _) if r.superseded_at.is_some() => "link superseded by a newer one",
        (Some(r), _) if r.expires_at <= now => "link expired",
        (Some(_), Some(u)) if u.active != 1 => "account disabled",
        (Some(_), _) => "unknown link",
    }
}

/// The person a reset link is for while it works; `None` (audited with the reason) when it is
/// unknown, used, superseded or expired, or the account is disabled. Links that were never
/// issued are audited once per client address and window, not one by one.
pub async fn reset_link(
    pool: &AnyPool,
    clock: &dyn Clock,
    token: &str,
    client_ip: &str,
) -> Result<Option<ResetFor>, AppError> {
    let now = clock.unix();
    let mut conn = pool.acquire().await?;
    let row = if token.len() == LINK_TOKEN_LEN {
        password_resets::find(&mut conn, &hash_setup_token(token)).await?
    } else {
        None
    };
    let user = match row.as_ref().and_then(|r| r.user_id.as_deref()) {
        Some(id) => repo::users::find(&mut conn, id).await?,
        None => None,
    };
    let reason = refusal(row.as_ref(), user.as_ref(), now);
    if let (Some(r), Some(u)) = (&row, &user)
        && r.used_at.is_none()
        && r.superseded_at.is_none()
        && r.expires_at > now
        && u.active == 1
    {
        return Ok(Some(ResetFor {
            id: u.id.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
        }));
    }
    let group = throttle::address_group(client_ip);
    let marker = format!("reset:bad-link:{group}");
    if user.is_some() || throttle::first_in_window(&mut conn, &marker, 900, now).await? {
        let label = user.as_ref().map_or("", |u| u.email.as_str());
        let entry = NewEntry {
            actor_label: label,
            action: "user.password_reset_refused",
            target_type: "user",
            target_id: user.as_ref().map_or("", |u| u.id.as_str()),
            target_label: label,
            client_ip,
            outcome: FAILURE,
            details: reason,
            ..Default::default()
        };
        audit::record(&mut conn, now, entry).await?;
    }
    Ok(None)
}

/// A new password chosen through a reset link.
#[derive(Clone, Copy)]
pub struct ResetInput<'a> {
    pub token: &'a str,
    pub password: &'a str,
    pub confirm: &'a str,
}

impl std::fmt::Debug for ResetInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetInput([redacted])")
    }
}

/// Sets a new password through a working link: the link is used up, every session of the
/// person ends, and the reset is audited, in one transaction. `AppError::NotFound` when the link
/// does not work (any more).
pub async fn reset_password(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    input: ResetInput<'_>,
    client_ip: &str,
) -> Result<String, FormError> {
    let user = reset_link(pool, clock, input.token, client_ip)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::default();
    let valid = NewPassword::parse(input.password, Some(&user.email))
        .map_err(|m| errors.add("password", m))
        .ok();
    if input.password != input.confirm {
        errors.add("confirm", "The passwords do not match.");
    }
    let (Some(valid), true) = (valid, errors.is_empty()) else {
        return Err(FormError::Invalid(errors));
    };
    let hash = hasher.hash(valid.expose()).await?;
    let now = clock.unix();
    let mut tx = begin_write(pool).await?;
    if !password_resets::use_once(&mut tx, &hash_setup_token(input.token), now).await? {
        return Err(AppError::NotFound.into());
    }
    repo::users::set_password(&mut tx, &user.id, &hash, now).await?;
    let ended = crate::auth::store::sessions::delete_for_user(&mut tx, &user.id).await?;
    let details = format!("{ended} sessions signed out");
    let entry = NewEntry {
        details: &details,
        ..own_entry(
            &user.id,
            &user.email,
            "user.password_reset",
            client_ip,
            SUCCESS,
        )
    };
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;
    Ok(user.id)
}
