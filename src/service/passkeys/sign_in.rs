//! Signing in with a passkey: alone (a discoverable passkey names its person through the user
//! handle it keeps), or as the second step after the password for a person already known.
//! Failed answers count per client address group like failed passwords (`signin:client:…`);
//! starting a ceremony, which stores a row, is limited per address group too.

use sqlx::{AnyConnection, AnyPool};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PublicKeyCredential, Webauthn,
};

use super::{
    Ceremony, credential_key, keep_ceremony, parse_passkey, relying_party, take_ceremony,
    unexpected,
};
use crate::clock::Clock;
use crate::error::AppError;
use crate::service::accounts::{NextStep, SignInError, SignedIn};
use crate::service::audit::{self, FAILURE, NewEntry, SUCCESS};
use crate::service::repo::{self, passkeys::CeremonyRow, passkeys::PasskeyRow, users::UserRow};
use crate::service::throttle::{self, Limit, SIGN_IN_PER_ACCOUNT_AND_CLIENT, SIGN_IN_PER_CLIENT};

const SIGN_IN: &str = "sign_in";
const SECOND_FACTOR: &str = "second_factor";

/// Passkey ceremonies a client address group may start in 15 minutes (each keeps a row until
/// it is answered or expires).
pub const STARTS_PER_CLIENT: Limit = Limit {
    max: 60,
    window_secs: 900,
};

impl From<AppError> for SignInError {
    fn from(e: AppError) -> Self {
        SignInError::Other(e)
    }
}

/// Where an answer comes from and the buckets its failure counts in.
struct Attempt<'a> {
    client_ip: &'a str,
    client_bucket: String,
    /// Per person and address group, for the second step (the person is known).
    pair_bucket: Option<String>,
}

impl<'a> Attempt<'a> {
    fn new(client_ip: &'a str, user_id: Option<&str>) -> Self {
        let group = throttle::address_group(client_ip);
        Attempt {
            client_bucket: format!("signin:client:{group}"),
            pair_bucket: user_id.map(|u| format!("passkey:pair:{group}:{u}")),
            client_ip,
        }
    }

    /// Counts the attempt before the answer is checked; refuses it when over a limit.
    async fn admit(&self, conn: &mut AnyConnection, now: i64) -> Result<(), SignInError> {
        let client = throttle::count(conn, &self.client_bucket, SIGN_IN_PER_CLIENT, now).await?;
        let mut wait = client.retry_after;
        if let (None, Some(pair)) = (wait, &self.pair_bucket) {
            let limit = SIGN_IN_PER_ACCOUNT_AND_CLIENT;
            wait = throttle::count(conn, pair, limit, now).await?.retry_after;
            if wait.is_some() {
                throttle::release(conn, &self.client_bucket, SIGN_IN_PER_CLIENT, now).await?;
            }
        }
        match wait {
            Some(retry_after) => Err(SignInError::Throttled { retry_after }),
            None => Ok(()),
        }
    }

    /// A success gives its attempt back.
    async fn succeeded(&self, conn: &mut AnyConnection, now: i64) -> sqlx::Result<()> {
        throttle::release(conn, &self.client_bucket, SIGN_IN_PER_CLIENT, now).await?;
        if let Some(pair) = &self.pair_bucket {
            throttle::reset(conn, pair).await?;
        }
        Ok(())
    }

    /// The audit entry of a refused answer.
    fn failure(&self, user: Option<&'a UserRow>, reason: &'a str) -> NewEntry<'a> {
        let label = user.map_or("", |u| u.email.as_str());
        NewEntry {
            actor_id: user.map(|u| u.id.as_str()),
            actor_label: label,
            action: "sign_in",
            target_type: "user",
            target_id: user.map_or("", |u| u.id.as_str()),
            target_label: label,
            client_ip: self.client_ip,
            outcome: FAILURE,
            details: reason,
        }
    }
}

/// Counts a ceremony started from this address group; refuses when it started too many.
async fn limit_starts(
    conn: &mut AnyConnection,
    client_ip: &str,
    now: i64,
) -> Result<(), SignInError> {
    let bucket = format!("passkey:start:{}", throttle::address_group(client_ip));
    match throttle::count(conn, &bucket, STARTS_PER_CLIENT, now)
        .await?
        .retry_after
    {
        Some(retry_after) => Err(SignInError::Throttled { retry_after }),
        None => Ok(()),
    }
}

/// Starts a sign-in with a passkey alone: options for `navigator.credentials.get` that let the
/// browser offer any of this site's passkeys.
pub async fn start_sign_in(
    pool: &AnyPool,
    clock: &dyn Clock,
    public_url: &str,
    client_ip: &str,
) -> Result<Ceremony, SignInError> {
    let rp = relying_party(public_url)?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    limit_starts(&mut tx, client_ip, now).await?;
    let (options, state) = rp
        .start_discoverable_authentication()
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("passkey sign-in: {e}")))?;
    let mut options = serde_json::to_value(options).map_err(unexpected)?;
    // The button asks at once (a modal prompt), not through the address field's autofill.
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    let ceremony = CeremonyRow {
        user_id: String::new(),
        name: String::new(),
        state: serde_json::to_string(&state).map_err(unexpected)?,
    };
    let token = keep_ceremony(&mut tx, SIGN_IN, ceremony, now).await?;
    tx.commit().await?;
    Ok(Ceremony {
        options,
        ceremony: token,
    })
}

/// Finishes a sign-in with a passkey alone: the passkey's user handle names the person, whose
/// account must be active. Failures are throttled and audited like wrong passwords and all look
/// the same to the person; a success is audited as `sign_in` with the details `passkey`.
pub async fn finish_sign_in(
    pool: &AnyPool,
    clock: &dyn Clock,
    public_url: &str,
    token: &str,
    answer: &PublicKeyCredential,
    client_ip: &str,
) -> Result<SignedIn, SignInError> {
    let rp = relying_party(public_url)?;
    let now = clock.unix();
    let attempt = Attempt::new(client_ip, None);
    let mut tx = crate::db::begin_write(pool).await?;
    attempt.admit(&mut tx, now).await?;
    let ceremony = take_ceremony(&mut tx, token, SIGN_IN, now).await?;
    let checked = match ceremony {
        None => Err("passkey: sign-in request expired or used"),
        Some(c) => verify_alone(&mut tx, &rp, &c, answer, now).await?,
    };
    let outcome = conclude(&mut tx, &attempt, checked, "passkey", now).await;
    tx.commit().await?;
    // A passkey that verified its user is two factors in one (the device and its PIN or
    // biometric): nothing more is asked, and it counts as a second factor for the policy.
    outcome.map(|user| SignedIn {
        user_id: user.id,
        next: NextStep::Done,
    })
}

/// Starts the second step of a sign-in with one of `user_id`'s passkeys (after their password):
/// options that name only their passkeys. A person without one is told so.
pub async fn start_second_factor(
    pool: &AnyPool,
    clock: &dyn Clock,
    public_url: &str,
    user_id: &str,
    client_ip: &str,
) -> Result<Ceremony, SignInError> {
    let rp = relying_party(public_url)?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    limit_starts(&mut tx, client_ip, now).await?;
    let mut passkeys = Vec::new();
    for row in repo::passkeys::list_for_user(&mut tx, user_id).await? {
        passkeys.push(parse_passkey(&row.credential)?);
    }
    if passkeys.is_empty() {
        return Err(SignInError::Other(super::refused(
            "You have not added a passkey.",
        )));
    }
    let (options, state) = rp
        .start_passkey_authentication(&passkeys)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("passkey second step: {e}")))?;
    let ceremony = CeremonyRow {
        user_id: user_id.to_string(),
        name: String::new(),
        state: serde_json::to_string(&state).map_err(unexpected)?,
    };
    let token = keep_ceremony(&mut tx, SECOND_FACTOR, ceremony, now).await?;
    tx.commit().await?;
    Ok(Ceremony {
        options: serde_json::to_value(options).map_err(unexpected)?,
        ceremony: token,
    })
}

/// Checks a passkey answer as the second factor of `user_id`, who gave the right password: the
/// ceremony must be theirs and the passkey one of theirs, and the account still active.
/// Throttled per address group and per (person, address group); audited as `sign_in` with the
/// details `password and passkey` on success. The caller then signs the person in.
pub async fn check_second_factor(
    pool: &AnyPool,
    clock: &dyn Clock,
    public_url: &str,
    user_id: &str,
    token: &str,
    answer: &PublicKeyCredential,
    client_ip: &str,
) -> Result<(), SignInError> {
    let rp = relying_party(public_url)?;
    let now = clock.unix();
    let attempt = Attempt::new(client_ip, Some(user_id));
    let mut tx = crate::db::begin_write(pool).await?;
    attempt.admit(&mut tx, now).await?;
    let ceremony = take_ceremony(&mut tx, token, SECOND_FACTOR, now)
        .await?
        .filter(|c| c.user_id == user_id);
    let checked = match ceremony {
        None => Err("passkey: second-step request expired or used"),
        Some(c) => verify_for(&mut tx, &rp, &c, answer, now).await?,
    };
    let outcome = conclude(&mut tx, &attempt, checked, "password and passkey", now).await;
    tx.commit().await?;
    outcome.map(|_| ())
}

/// What checking an answer found: the passkey's person, or why it was refused (for the audit).
type Checked = Result<UserRow, &'static str>;

/// Checks an answer to a sign-in by passkey alone.
async fn verify_alone(
    conn: &mut AnyConnection,
    rp: &Webauthn,
    ceremony: &CeremonyRow,
    answer: &PublicKeyCredential,
    now: i64,
) -> Result<Checked, AppError> {
    let Ok((handle, credential_id)) = rp.identify_discoverable_authentication(answer) else {
        return Ok(Err("passkey: no user handle"));
    };
    let Some(row) = stored(conn, credential_id).await? else {
        return Ok(Err("passkey: unknown passkey"));
    };
    let owner = repo::passkeys::user_of_handle(conn, &handle.to_string()).await?;
    if owner.as_deref() != Some(row.user_id.as_str()) {
        return Ok(Err("passkey: user handle does not match"));
    }
    let state: DiscoverableAuthentication = read_state(ceremony)?;
    let mut passkey = parse_passkey(&row.credential)?;
    match rp.finish_discoverable_authentication_v2(answer, state, &passkey) {
        Ok(result) => {
            passkey.update_credential(&result);
            record_use(conn, &row, &passkey, now).await
        }
        Err(_) => Ok(Err("passkey: signature refused")),
    }
}

/// Checks an answer to the second step of `ceremony.user_id`'s sign-in.
async fn verify_for(
    conn: &mut AnyConnection,
    rp: &Webauthn,
    ceremony: &CeremonyRow,
    answer: &PublicKeyCredential,
    now: i64,
) -> Result<Checked, AppError> {
    let row = stored(conn, answer.get_credential_id()).await?;
    let Some(row) = row.filter(|r| r.user_id == ceremony.user_id) else {
        return Ok(Err("passkey: not one of the person's passkeys"));
    };
    let state: PasskeyAuthentication = read_state(ceremony)?;
    let mut passkey = parse_passkey(&row.credential)?;
    match rp.finish_passkey_authentication(answer, &state) {
        Ok(result) if result.cred_id() == passkey.cred_id() => {
            passkey.update_credential(&result);
            record_use(conn, &row, &passkey, now).await
        }
        _ => Ok(Err("passkey: signature refused")),
    }
}

/// The stored passkey with this credential ID.
async fn stored(
    conn: &mut AnyConnection,
    credential_id: &[u8],
) -> sqlx::Result<Option<PasskeyRow>> {
    repo::passkeys::find_by_credential(conn, &credential_key(credential_id)).await
}

fn read_state<T: serde::de::DeserializeOwned>(ceremony: &CeremonyRow) -> Result<T, AppError> {
    serde_json::from_str(&ceremony.state)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("ceremony state unreadable: {e}")))
}

/// Keeps the passkey's updated counter and backup state and when it was used; the person it
/// belongs to.
async fn record_use(
    conn: &mut AnyConnection,
    row: &PasskeyRow,
    passkey: &webauthn_rs::prelude::Passkey,
    now: i64,
) -> Result<Checked, AppError> {
    let json = serde_json::to_string(passkey).map_err(unexpected)?;
    repo::passkeys::record_use(conn, &row.id, &json, now).await?;
    Ok(repo::users::find(conn, &row.user_id)
        .await?
        .ok_or("passkey: account gone"))
}

/// Audits the outcome: a refusal with its reason (a disabled account is refused here too), a
/// success as a sign-in whose attempt is given back.
async fn conclude(
    conn: &mut AnyConnection,
    attempt: &Attempt<'_>,
    checked: Checked,
    how: &str,
    now: i64,
) -> Result<UserRow, SignInError> {
    let user = match checked {
        Ok(user) if user.active == 1 => user,
        Ok(user) => {
            let entry = attempt.failure(Some(&user), "passkey: account disabled");
            audit::record(conn, now, entry).await?;
            return Err(SignInError::Refused);
        }
        Err(reason) => {
            audit::record(conn, now, attempt.failure(None, reason)).await?;
            return Err(SignInError::Refused);
        }
    };
    attempt.succeeded(conn, now).await?;
    repo::users::touch_sign_in(conn, &user.id, now).await?;
    let entry = NewEntry {
        outcome: SUCCESS,
        details: how,
        ..attempt.failure(Some(&user), "")
    };
    audit::record(conn, now, entry).await?;
    Ok(user)
}
