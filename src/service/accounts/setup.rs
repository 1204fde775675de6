//! The first administrator: the one-time setup link and the command line's `admin create`.

use sqlx::{AnyConnection, AnyPool};

use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::db;
use crate::domain::{Email, NewPassword, PersonName};
use crate::error::{AppError, AppResult};
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::bootstrap::{LINK_TOKEN_LEN, hash_setup_token};
use crate::service::repo::{self, groups::ADMINISTRATORS};
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
    let id = insert_admin(
        &mut tx,
        &valid,
        &hash,
        now,
        setup_token.is_some(),
        client_ip,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Stores a checked administrator, a member of Administrators, with its audit entry: the first
/// one made by setup (`setup.admin_created`, by themselves) or one from the command line
/// (`user.admin_created`). A taken email is a field error.
async fn insert_admin(
    conn: &mut AnyConnection,
    valid: &ValidAdmin,
    hash: &str,
    now: i64,
    by_setup: bool,
    client_ip: &str,
) -> Result<String, FormError> {
    let id = repo::new_id("usr");
    let email = valid.email.as_str();
    match repo::users::insert(conn, &id, email, valid.name.as_str(), Some(hash), now).await {
        Ok(()) => {}
        Err(e) if db::is_unique_violation(&e) => {
            return Err(FormError::Invalid(FieldErrors(vec![(
                "email",
                "A user with this email already exists.".into(),
            )])));
        }
        Err(e) => return Err(e.into()),
    }
    repo::groups::add_member(conn, ADMINISTRATORS, &id, now).await?;
    let entry = NewEntry {
        actor_id: by_setup.then_some(id.as_str()),
        actor_label: if by_setup { email } else { "command line" },
        action: if by_setup {
            "setup.admin_created"
        } else {
            "user.admin_created"
        },
        target_type: "user",
        target_id: &id,
        target_label: email,
        client_ip,
        outcome: SUCCESS,
        ..Default::default()
    };
    audit::record(conn, now, entry).await?;
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
