//! Signing in, throttled per address and per account, and signing out.

use sqlx::{AnyConnection, AnyPool};

use super::own_entry;
use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::domain::{Email, NewPassword};
use crate::error::{AppError, AppResult};
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::repo::{self, users::UserRow};
use crate::service::throttle::{
    self, Limit, SECOND_FACTOR_PER_ACCOUNT, SECOND_FACTOR_PER_ACCOUNT_AND_CLIENT,
    SECOND_FACTOR_PER_CLIENT, SIGN_IN_PER_ACCOUNT, SIGN_IN_PER_ACCOUNT_AND_CLIENT,
    SIGN_IN_PER_CLIENT,
};

/// A person whose password was right, and what they must do before the console opens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: String,
    pub next: NextStep,
}

/// What comes after a right password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Signed in.
    Done,
    /// The person has a second factor: not signed in until they prove it.
    SecondFactor,
    /// The tenant's policy asks for a second factor the person does not have yet: signed in,
    /// but only the enrolment pages open.
    Enrol,
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

/// A kind of credential check that is throttled like sign-in: the prefix of its buckets, the
/// action its refusals are audited as, and its limits per client address group, per (account,
/// address group) and per account.
pub(super) struct Checked {
    prefix: &'static str,
    action: &'static str,
    per_client: Limit,
    per_pair: Limit,
    per_account: Limit,
}

/// Email and password.
const PASSWORD: Checked = Checked {
    prefix: "signin",
    action: "sign_in",
    per_client: SIGN_IN_PER_CLIENT,
    per_pair: SIGN_IN_PER_ACCOUNT_AND_CLIENT,
    per_account: SIGN_IN_PER_ACCOUNT,
};

/// A second factor (an authenticator code, a recovery code, or the password standing in for
/// one when a factor is removed), counted per person.
pub(super) const SECOND_FACTOR: Checked = Checked {
    prefix: "factor",
    action: "sign_in.second_factor",
    per_client: SECOND_FACTOR_PER_CLIENT,
    per_pair: SECOND_FACTOR_PER_ACCOUNT_AND_CLIENT,
    per_account: SECOND_FACTOR_PER_ACCOUNT,
};

/// One attempt: whose account (`account` names its buckets, `label` its audit entries), where
/// it comes from, and the throttle buckets it counts in.
pub(super) struct Attempt<'a> {
    checked: &'static Checked,
    account: &'a str,
    label: &'a str,
    client_ip: &'a str,
    group: String,
    client_bucket: String,
    pair_bucket: String,
    account_bucket: String,
}

impl<'a> Attempt<'a> {
    /// An attempt of kind `checked` on `account` (shown as `label`) from `client_ip`.
    pub(super) fn new(
        checked: &'static Checked,
        account: &'a str,
        label: &'a str,
        client_ip: &'a str,
    ) -> Self {
        let group = throttle::address_group(client_ip);
        let prefix = checked.prefix;
        Attempt {
            client_bucket: format!("{prefix}:client:{group}"),
            pair_bucket: format!("{prefix}:pair:{group}:{account}"),
            account_bucket: format!("{prefix}:account:{account}"),
            checked,
            group,
            account,
            label,
            client_ip,
        }
    }

    /// The audit entry of a refusal.
    pub(super) fn failure(&self, reason: &'a str) -> NewEntry<'a> {
        NewEntry {
            actor_label: self.label,
            action: self.checked.action,
            target_type: "user",
            target_label: self.label,
            client_ip: self.client_ip,
            outcome: FAILURE,
            details: reason,
            ..Default::default()
        }
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
    let attempt = Attempt::new(&PASSWORD, &email, &email, client_ip);
    let now = clock.unix();
    let mut conn = pool.acquire().await?;
    admit(&mut conn, &attempt, now).await?;
    if let Some(reason) = too_long {
        audit::record(&mut conn, now, attempt.failure(reason)).await?;
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
    let user = judge(&mut conn, &attempt, user, verified, now).await?;
    let next = super::factors::next_step(&mut conn, &user.id).await?;
    attempt.succeeded(&mut conn, now).await?;
    if next == NextStep::SecondFactor {
        // Signed in once the second factor is proven (`second_factor_proven`).
        let entry = own_entry(
            &user.id,
            &user.email,
            "sign_in.password",
            client_ip,
            SUCCESS,
        );
        audit::record(&mut conn, now, entry).await?;
    } else {
        welcome(&mut conn, &user.id, &user.email, client_ip, "", now).await?;
    }
    Ok(SignedIn {
        user_id: user.id,
        next,
    })
}

/// Counts the attempt in each bucket before the password is checked, so a burst of parallel
/// guesses cannot all slip past, and refuses it when the address or the account is over its
/// limit. The address's buckets come first: an address over its limits is refused before it
/// can add to the account's count.
pub(super) async fn admit(
    conn: &mut AnyConnection,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<(), SignInError> {
    let (checked, prefix) = (attempt.checked, attempt.checked.prefix);
    let client = throttle::count(conn, &attempt.client_bucket, checked.per_client, now).await?;
    let pair = throttle::count(conn, &attempt.pair_bucket, checked.per_pair, now).await?;
    if client.is_over() || pair.is_over() {
        let retry_after = client.retry_after.max(pair.retry_after).unwrap_or_default();
        let marker = format!("{prefix}:throttled:{}", attempt.group);
        if throttle::first_in_window(conn, &marker, checked.per_client.window_secs, now).await? {
            audit::record(conn, now, attempt.failure("throttled")).await?;
        }
        return Err(SignInError::Throttled { retry_after });
    }
    let account = throttle::count(conn, &attempt.account_bucket, checked.per_account, now).await?;
    if let Some(retry_after) = account.retry_after {
        // Not this address's failure: it gets its attempts back.
        throttle::release(conn, &attempt.client_bucket, checked.per_client, now).await?;
        throttle::release(conn, &attempt.pair_bucket, checked.per_pair, now).await?;
        let marker = format!("{prefix}:account-throttled:{}", attempt.account);
        let window = checked.per_account.window_secs;
        if throttle::first_in_window(conn, &marker, window, now).await? {
            let reason = "throttled: failures from many addresses";
            audit::record(conn, now, attempt.failure(reason)).await?;
        }
        return Err(SignInError::Throttled { retry_after });
    }
    Ok(())
}

/// The account that signs in, or the refusal (audited with its reason): unknown account, wrong
/// password, disabled account.
async fn judge(
    conn: &mut AnyConnection,
    attempt: &Attempt<'_>,
    user: Option<UserRow>,
    verified: bool,
    now: i64,
) -> Result<UserRow, SignInError> {
    let reason = match &user {
        None => "unknown account",
        Some(_) if !verified => "wrong password",
        Some(u) if u.active != 1 => "account disabled",
        Some(_) => return Ok(user.expect("an account was matched")),
    };
    let mut entry = attempt.failure(reason);
    entry.actor_id = user.as_ref().map(|u| u.id.as_str());
    entry.target_id = user.as_ref().map(|u| u.id.as_str()).unwrap_or_default();
    audit::record(conn, now, entry).await?;
    Err(SignInError::Refused)
}

impl Attempt<'_> {
    /// A success is not a failure: its attempt goes back to every bucket, and this address's
    /// earlier failures on the account are forgiven.
    pub(super) async fn succeeded(&self, conn: &mut AnyConnection, now: i64) -> sqlx::Result<()> {
        let checked = self.checked;
        throttle::reset(conn, &self.pair_bucket).await?;
        throttle::release(conn, &self.client_bucket, checked.per_client, now).await?;
        throttle::release(conn, &self.account_bucket, checked.per_account, now).await
    }
}

/// The person is signed in: recorded and audited (`details` names a second factor, if any).
pub(super) async fn welcome(
    conn: &mut AnyConnection,
    user_id: &str,
    email: &str,
    client_ip: &str,
    details: &str,
    now: i64,
) -> sqlx::Result<()> {
    repo::users::touch_sign_in(conn, user_id, now).await?;
    let entry = own_entry(user_id, email, "sign_in", client_ip, SUCCESS);
    audit::record(conn, now, NewEntry { details, ..entry }).await
}

/// Records that the person a session names signed out.
pub async fn sign_out(
    pool: &AnyPool,
    clock: &dyn Clock,
    user_id: &str,
    client_ip: &str,
) -> AppResult<()> {
    let mut conn = pool.acquire().await?;
    let email = repo::users::find(&mut conn, user_id)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let entry = own_entry(user_id, &email, "sign_out", client_ip, SUCCESS);
    audit::record(&mut conn, clock.unix(), entry).await?;
    Ok(())
}
