//! People's accounts: the first administrator, sign-in with throttling, password changes.

use sqlx::AnyPool;

use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::db;
use crate::domain::{Email, NewPassword, PersonName};
use crate::error::{AppError, AppResult};
use crate::repo::{self, groups::ADMINISTRATORS};
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::bootstrap::{LINK_TOKEN_LEN, hash_setup_token};
use crate::service::throttle::{
    self, PASSWORD_CHECK_PER_USER, PASSWORD_CHECK_PER_USER_AND_CLIENT, SIGN_IN_PER_ACCOUNT,
    SIGN_IN_PER_ACCOUNT_AND_CLIENT, SIGN_IN_PER_CLIENT,
};
use crate::service::{FieldErrors, FormError};

/// What a new administrator is made of, as typed. Its `Debug` never shows the passwords.
#[derive(Clone)]
pub struct NewAdmin<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub confirm: Option<&'a str>,
}

impl std::fmt::Debug for NewAdmin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAdmin")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .field("confirm", &self.confirm.map(|_| "[redacted]"))
            .finish()
    }
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
/// setup, which succeeds once and only while no user exists: the link is checked before any
/// other work (no Argon2 for a wrong token or once someone exists); `AppError::NotFound` once a
/// user exists, `AppError::Conflict` for a link that does not work.
pub async fn create_admin(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    input: NewAdmin<'_>,
    setup_token: Option<&str>,
    client_ip: &str,
) -> Result<String, FormError> {
    if let Some(token) = setup_token {
        let link = setup_link(pool, clock, token).await?;
        if link != SetupLink::Usable {
            return Err(FormError::Other(link.refusal()));
        }
    }
    let valid = validate_admin(&input).map_err(|e| FormError::Invalid(FieldErrors(e)))?;
    let hash = hasher.hash(valid.password.expose()).await?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    if let Some(token) = setup_token {
        // Checked again where it counts: two setups racing each other, one wins.
        if repo::users::count(&mut tx).await? > 0 {
            return Err(FormError::Other(SetupLink::Done.refusal()));
        }
        if !repo::setup_tokens::consume(&mut tx, &hash_setup_token(token), now).await? {
            return Err(FormError::Other(SetupLink::Invalid.refusal()));
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

/// What a setup link is worth now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupLink {
    /// Unused, unexpired, and no user exists yet.
    Usable,
    /// Wrong, expired or used, while no user exists.
    Invalid,
    /// Someone exists: setup is over whatever the token.
    Done,
}

/// What a person following an invalid setup link is told.
pub const INVALID_SETUP_LINK: &str = "This setup link is invalid, expired or already used. \
     Restart keyward to print a new link while no administrator exists, or create one with \
     `keyward admin create`.";

impl SetupLink {
    /// The answer to a setup request with a link that is not usable: 404 once setup is over
    /// (nothing is there any more), else a page saying the link does not work.
    pub fn refusal(self) -> AppError {
        match self {
            SetupLink::Done => AppError::NotFound,
            _ => AppError::Conflict(INVALID_SETUP_LINK.into()),
        }
    }
}

/// Whether a setup link works: cheap checks only (a count, the token's length, one lookup).
pub async fn setup_link(pool: &AnyPool, clock: &dyn Clock, token: &str) -> AppResult<SetupLink> {
    let mut conn = pool.acquire().await?;
    if repo::users::count(&mut conn).await? > 0 {
        return Ok(SetupLink::Done);
    }
    if token.is_empty() || token.len() > LINK_TOKEN_LEN {
        return Ok(SetupLink::Invalid);
    }
    let valid =
        repo::setup_tokens::is_valid(&mut conn, &hash_setup_token(token), clock.unix()).await?;
    Ok(if valid {
        SetupLink::Usable
    } else {
        SetupLink::Invalid
    })
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

/// Checks an email and password. Failures count per (account, client address group), per
/// address group and, at a much higher threshold, per account (see `service::throttle`), so
/// one address can never lock a person out. Input longer than any address or password is
/// refused as a wrong password without hashing. A throttled attempt is refused before the
/// password is looked at and is audited once per window, not one by one.
pub async fn sign_in(
    pool: &AnyPool,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    email: &str,
    password: &str,
    client_ip: &str,
) -> Result<SignedIn, SignInError> {
    // Lengths first: nothing longer than an address or a password can be anyone's.
    let too_long = if Email::is_too_long(email) {
        Some("email too long")
    } else if NewPassword::is_too_long(password) {
        Some("password too long")
    } else {
        None
    };
    let email = Email::typed_label(email);
    let group = throttle::address_group(client_ip);
    let client_bucket = format!("signin:client:{group}");
    let pair_bucket = format!("signin:pair:{group}:{email}");
    let account_bucket = format!("signin:account:{email}");
    let now = clock.unix();
    let mut conn = pool.acquire().await?;
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

    // Each bucket counts this attempt before the password is checked, so a burst of parallel
    // guesses cannot all slip past. The address's buckets come first: an address over its
    // limits is refused before it can add to the account's count.
    let client = throttle::count(&mut conn, &client_bucket, SIGN_IN_PER_CLIENT, now).await?;
    let pair =
        throttle::count(&mut conn, &pair_bucket, SIGN_IN_PER_ACCOUNT_AND_CLIENT, now).await?;
    if client.is_over() || pair.is_over() {
        let retry_after = client.retry_after.max(pair.retry_after).unwrap_or_default();
        let marker = format!("signin:throttled:{group}");
        if throttle::first_in_window(&mut conn, &marker, SIGN_IN_PER_CLIENT.window_secs, now)
            .await?
        {
            audit::record(&mut conn, now, failure("throttled")).await?;
        }
        return Err(SignInError::Throttled { retry_after });
    }
    let account = throttle::count(&mut conn, &account_bucket, SIGN_IN_PER_ACCOUNT, now).await?;
    if let Some(retry_after) = account.retry_after {
        // Not this address's failure: it gets its attempts back.
        throttle::release(&mut conn, &client_bucket, SIGN_IN_PER_CLIENT, now).await?;
        throttle::release(&mut conn, &pair_bucket, SIGN_IN_PER_ACCOUNT_AND_CLIENT, now).await?;
        let marker = format!("signin:account-throttled:{email}");
        if throttle::first_in_window(&mut conn, &marker, SIGN_IN_PER_ACCOUNT.window_secs, now)
            .await?
        {
            audit::record(
                &mut conn,
                now,
                failure("throttled: failures from many addresses"),
            )
            .await?;
        }
        return Err(SignInError::Throttled { retry_after });
    }
    if let Some(reason) = too_long {
        audit::record(&mut conn, now, failure(reason)).await?;
        return Err(SignInError::Refused);
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
    // A success is not a failure: its attempt goes back to every bucket, and this address's
    // earlier failures on the account are forgiven.
    throttle::reset(&mut conn, &pair_bucket).await?;
    throttle::release(&mut conn, &client_bucket, SIGN_IN_PER_CLIENT, now).await?;
    throttle::release(&mut conn, &account_bucket, SIGN_IN_PER_ACCOUNT, now).await?;
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
    let PasswordChange {
        current,
        new,
        confirm,
    } = change;
    let now = clock.unix();
    let mut conn = pool.acquire().await?;
    let user = repo::users::find(&mut conn, user_id)
        .await?
        .ok_or(FormError::Other(AppError::NotFound))?;
    let group = throttle::address_group(client_ip);
    let pair_bucket = format!("password:pair:{group}:{user_id}");
    let user_bucket = format!("password:user:{user_id}");
    let refused = |details: &'static str| NewEntry {
        actor_id: Some(user_id),
        actor_label: &user.email,
        action: "user.password_change_refused",
        target_type: "user",
        target_id: user_id,
        target_label: &user.email,
        client_ip,
        outcome: FAILURE,
        details,
    };
    let too_many = |retry_after: i64| {
        FormError::Other(AppError::TooManyRequests {
            retry_after: u64::try_from(retry_after).unwrap_or(1),
        })
    };
    let pair = throttle::count(
        &mut conn,
        &pair_bucket,
        PASSWORD_CHECK_PER_USER_AND_CLIENT,
        now,
    )
    .await?;
    if let Some(retry_after) = pair.retry_after {
        let marker = format!("password:throttled:{group}:{user_id}");
        let window = PASSWORD_CHECK_PER_USER_AND_CLIENT.window_secs;
        if throttle::first_in_window(&mut conn, &marker, window, now).await? {
            audit::record(&mut conn, now, refused("throttled")).await?;
        }
        return Err(too_many(retry_after));
    }
    let all = throttle::count(&mut conn, &user_bucket, PASSWORD_CHECK_PER_USER, now).await?;
    if let Some(retry_after) = all.retry_after {
        throttle::release(
            &mut conn,
            &pair_bucket,
            PASSWORD_CHECK_PER_USER_AND_CLIENT,
            now,
        )
        .await?;
        let marker = format!("password:user-throttled:{user_id}");
        let window = PASSWORD_CHECK_PER_USER.window_secs;
        if throttle::first_in_window(&mut conn, &marker, window, now).await? {
            let details = "throttled: wrong passwords from many addresses";
            audit::record(&mut conn, now, refused(details)).await?;
        }
        return Err(too_many(retry_after));
    }
    drop(conn);
    // An over-long input cannot be the password: wrong without hashing.
    let current_ok = !NewPassword::is_too_long(current)
        && hasher
            .verify(current, user.password_hash.as_deref())
            .await?;
    let mut conn = pool.acquire().await?;
    let mut errors = Vec::new();
    if current_ok {
        throttle::release(
            &mut conn,
            &pair_bucket,
            PASSWORD_CHECK_PER_USER_AND_CLIENT,
            now,
        )
        .await?;
        throttle::release(&mut conn, &user_bucket, PASSWORD_CHECK_PER_USER, now).await?;
    } else {
        audit::record(&mut conn, now, refused("wrong current password")).await?;
        errors.push((
            "current",
            "Your current password is not correct.".to_string(),
        ));
    }
    drop(conn);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_passwords_never_reach_debug_output() {
        let admin = NewAdmin {
            name: "Ada",
            email: "ada@example.com",
            password: "secret-horse-battery",
            confirm: Some("secret-horse-battery"),
        };
        let shown = format!("{admin:?}");
        assert!(shown.contains("ada@example.com"));
        assert!(!shown.contains("secret-horse"), "{shown}");
        let change = PasswordChange {
            current: "old-secret-words",
            new: "new-secret-words",
            confirm: "new-secret-words",
        };
        assert!(!format!("{change:?}").contains("secret"));
    }
}

/// The person behind a session, as every console page needs them.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub email: String,
    /// Member of the built-in Administrators group.
    pub is_admin: bool,
    /// The union of the permissions of the person's roles, through their groups.
    pub permissions: Vec<String>,
    pub unread_notifications: i64,
}

/// The person a session names, while they exist and are active; `None` ends the session.
pub async fn signed_in(pool: &AnyPool, user_id: &str) -> AppResult<Option<Person>> {
    let mut conn = pool.acquire().await?;
    let user = match repo::users::find(&mut conn, user_id).await? {
        Some(user) if user.active == 1 => user,
        _ => return Ok(None),
    };
    let permissions = repo::roles::user_permissions(&mut conn, &user.id).await?;
    let is_admin = repo::groups::is_member(&mut conn, ADMINISTRATORS, &user.id).await?;
    let unread_notifications = repo::notifications::unread_count(&mut conn, &user.id).await?;
    Ok(Some(Person {
        id: user.id,
        name: user.name,
        email: user.email,
        is_admin,
        permissions,
        unread_notifications,
    }))
}
