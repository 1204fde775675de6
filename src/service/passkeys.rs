//! Passkeys (WebAuthn, SPEC §8): adding, naming, listing and removing a person's passkeys, and
//! signing in with one, alone or after the password (`sign_in`). The WebAuthn checks are
//! webauthn-rs's; the relying party is the configured public URL's host. Each ceremony's state
//! stays on the server (`passkey_ceremonies`), found by a random token the browser sends back,
//! used once and for five minutes at most.

mod sign_in;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool};
use webauthn_rs::prelude::{
    Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::clock::Clock;
use crate::domain::{Actor, PersonName};
use crate::error::{AppError, AppResult};
use crate::service::audit::{self, NewEntry, SUCCESS};
use crate::service::repo::{self, passkeys::CeremonyRow};
use crate::service::{FieldErrors, FormError};

pub use sign_in::{check_second_factor, finish_sign_in, start_second_factor, start_sign_in};

/// How long the browser has to answer a ceremony.
pub const CEREMONY_SECS: i64 = 300;

/// Why passkeys cannot work with this public URL.
pub const UNAVAILABLE: &str = "Passkeys need keyward to be reached at a domain name \
    (KEYWARD_PUBLIC_URL), not an IP address.";

const REGISTER: &str = "register";

/// One of the person's passkeys, as the security page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeySummary {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What the browser needs to run a ceremony: the options for `navigator.credentials`, and the
/// token that finds the ceremony's state when it answers.
#[derive(Debug, Serialize)]
pub struct Ceremony {
    pub options: serde_json::Value,
    pub ceremony: String,
}

/// The relying party for a public URL: its host is the RP ID, and the URL's origin the only one
/// accepted. An IP address cannot be an RP ID (browsers refuse it).
fn relying_party(public_url: &str) -> AppResult<Webauthn> {
    let url = Url::parse(public_url).map_err(|_| AppError::Conflict(UNAVAILABLE.into()))?;
    let host = url
        .domain()
        .ok_or_else(|| AppError::Conflict(UNAVAILABLE.into()))?;
    WebauthnBuilder::new(host, &url)
        .map(|b| b.rp_name("keyward"))
        .and_then(WebauthnBuilder::build)
        .map_err(|_| AppError::Conflict(UNAVAILABLE.into()))
}

/// Whether passkeys can work with this public URL (it names a domain, not an IP address).
pub fn available(public_url: &str) -> bool {
    relying_party(public_url).is_ok()
}

/// The person's passkeys, oldest first.
pub async fn list(pool: &AnyPool, user_id: &str) -> AppResult<Vec<PasskeySummary>> {
    let mut conn = pool.acquire().await?;
    let rows = repo::passkeys::list_for_user(&mut conn, user_id).await?;
    Ok(rows
        .into_iter()
        .map(|r| PasskeySummary {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
        .collect())
}

/// One of the person's passkeys; another person's is not found.
pub async fn find(pool: &AnyPool, user_id: &str, id: &str) -> AppResult<PasskeySummary> {
    let mut conn = pool.acquire().await?;
    let row = repo::passkeys::find_for_user(&mut conn, user_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(PasskeySummary {
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    })
}

/// Checks a passkey's name as typed.
fn parse_name(raw: &str) -> Result<PersonName, FormError> {
    PersonName::parse(raw).map_err(|message| {
        let message = message.replace("A name", "A passkey's name");
        FormError::Invalid(FieldErrors(vec![("name", message)]))
    })
}

/// A fresh ceremony token and its hash (only the hash is stored).
fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keeps a ceremony's state and returns the token that finds it again.
async fn keep_ceremony(
    conn: &mut AnyConnection,
    purpose: &str,
    ceremony: CeremonyRow,
    now: i64,
) -> AppResult<String> {
    let (token, hash) = new_token();
    repo::passkeys::insert_ceremony(conn, &hash, purpose, &ceremony, now, now + CEREMONY_SECS)
        .await?;
    Ok(token)
}

/// Takes a ceremony's state once; an unknown, used or expired token finds nothing.
async fn take_ceremony(
    conn: &mut AnyConnection,
    token: &str,
    purpose: &str,
    now: i64,
) -> AppResult<Option<CeremonyRow>> {
    if token.len() > 64 {
        return Ok(None);
    }
    Ok(repo::passkeys::take_ceremony(conn, &token_hash(token), purpose, now).await?)
}

/// The stored passkey's record, as webauthn-rs reads it.
fn parse_passkey(json: &str) -> AppResult<Passkey> {
    serde_json::from_str(json)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("stored passkey unreadable: {e}")))
}

/// The credential ID as stored: unpadded base64url.
fn credential_key(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// The person's WebAuthn user handle, given on first use.
async fn handle_for(conn: &mut AnyConnection, user_id: &str) -> AppResult<Uuid> {
    if repo::passkeys::handle_of(conn, user_id).await?.is_none() {
        repo::passkeys::insert_handle(conn, user_id, &Uuid::new_v4().to_string()).await?;
    }
    let handle = repo::passkeys::handle_of(conn, user_id)
        .await?
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("passkey handle missing")))?;
    Uuid::parse_str(&handle).map_err(|e| AppError::Unexpected(e.into()))
}

/// Starts adding a passkey named `name` for the signed-in person: the options for
/// `navigator.credentials.create`, asking for a discoverable credential (so it can sign in on
/// its own) with user verification, and excluding the person's passkeys already stored.
pub async fn start_registration(
    pool: &AnyPool,
    clock: &dyn Clock,
    public_url: &str,
    actor: &Actor,
    name: &str,
) -> Result<Ceremony, FormError> {
    let name = parse_name(name)?;
    let rp = relying_party(public_url)?;
    let mut tx = crate::db::begin_write(pool).await?;
    let user = repo::users::find(&mut tx, &actor.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let handle = handle_for(&mut tx, &user.id).await?;
    let mut known = Vec::new();
    for row in repo::passkeys::list_for_user(&mut tx, &user.id).await? {
        known.push(parse_passkey(&row.credential)?.cred_id().clone());
    }
    let (options, state) = rp
        .start_passkey_registration(handle, &user.email, &user.name, Some(known))
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("passkey registration: {e}")))?;
    let mut options = serde_json::to_value(options).map_err(unexpected)?;
    // A passkey that can sign in alone must be discoverable (kept on the authenticator with
    // the user handle): ask for that, as webauthn-rs's passkey flow leaves it optional.
    if let Some(selection) = options["publicKey"]["authenticatorSelection"].as_object_mut() {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    let ceremony = CeremonyRow {
        user_id: user.id,
        name: name.as_str().to_string(),
        state: serde_json::to_string(&state).map_err(unexpected)?,
    };
    let token = keep_ceremony(&mut tx, REGISTER, ceremony, clock.unix()).await?;
    tx.commit().await?;
    Ok(Ceremony {
        options,
        ceremony: token,
    })
}

/// A refusal of the browser's answer to a ceremony, said next to the passkey controls.
fn refused(message: &str) -> AppError {
    AppError::Validation {
        field: "passkey",
        message: message.to_string(),
    }
}

/// Finishes adding a passkey: the ceremony (used once, the signed-in person's own) and the
/// authenticator's answer are checked, the passkey is stored under the name given at the start,
/// and it is audited (`passkey.added`), in one transaction.
pub async fn finish_registration(
    pool: &AnyPool,
    clock: &dyn Clock,
    public_url: &str,
    actor: &Actor,
    token: &str,
    answer: &RegisterPublicKeyCredential,
) -> AppResult<PasskeySummary> {
    let rp = relying_party(public_url)?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let ceremony = take_ceremony(&mut tx, token, REGISTER, now)
        .await?
        .filter(|c| c.user_id == actor.user_id)
        .ok_or_else(|| refused("This request to add a passkey has expired. Try again."))?;
    let state: PasskeyRegistration = serde_json::from_str(&ceremony.state)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("ceremony state unreadable: {e}")))?;
    let passkey = rp
        .finish_passkey_registration(answer, &state)
        .map_err(|e| {
            tracing::info!(error = %e, "a passkey registration was refused");
            refused("The passkey could not be added: the authenticator's answer was not valid.")
        })?;
    let id = repo::new_id("pk");
    let credential = serde_json::to_string(&passkey).map_err(unexpected)?;
    let new = repo::passkeys::NewPasskey {
        id: &id,
        user_id: &actor.user_id,
        credential_id: &credential_key(passkey.cred_id()),
        name: &ceremony.name,
        credential: &credential,
        now,
    };
    if !repo::passkeys::insert(&mut tx, &new).await? {
        return Err(AppError::Conflict("This passkey is already added.".into()));
    }
    audit::record(
        &mut tx,
        now,
        own_passkey_entry(actor, "passkey.added", &id, &ceremony.name),
    )
    .await?;
    tx.commit().await?;
    Ok(PasskeySummary {
        id,
        name: ceremony.name,
        created_at: now,
        last_used_at: None,
    })
}

/// The audit entry of something a person did to one of their passkeys.
fn own_passkey_entry<'a>(
    actor: &'a Actor,
    action: &'a str,
    id: &'a str,
    name: &'a str,
) -> NewEntry<'a> {
    NewEntry {
        actor_id: Some(&actor.user_id),
        actor_label: &actor.label,
        action,
        target_type: "passkey",
        target_id: id,
        target_label: name,
        client_ip: &actor.client_ip,
        outcome: SUCCESS,
        ..Default::default()
    }
}

/// Renames one of the person's passkeys (audited as `passkey.renamed`); another person's
/// passkey is not found.
pub async fn rename(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    id: &str,
    name: &str,
) -> Result<(), FormError> {
    let name = parse_name(name)?;
    let mut tx = crate::db::begin_write(pool).await?;
    if !repo::passkeys::rename(&mut tx, &actor.user_id, id, name.as_str()).await? {
        return Err(AppError::NotFound.into());
    }
    let entry = own_passkey_entry(actor, "passkey.renamed", id, name.as_str());
    audit::record(&mut tx, clock.unix(), entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes one of the person's passkeys (audited as `passkey.removed`) and returns its name;
/// another person's passkey is not found.
pub async fn remove(
    pool: &AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    id: &str,
) -> AppResult<String> {
    let mut tx = crate::db::begin_write(pool).await?;
    let row = repo::passkeys::find_for_user(&mut tx, &actor.user_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    repo::passkeys::delete(&mut tx, &actor.user_id, id).await?;
    let entry = own_passkey_entry(actor, "passkey.removed", id, &row.name);
    audit::record(&mut tx, clock.unix(), entry).await?;
    tx.commit().await?;
    Ok(row.name)
}

/// A value that could not be turned into JSON (never expected).
fn unexpected(e: serde_json::Error) -> AppError {
    AppError::Unexpected(e.into())
}
