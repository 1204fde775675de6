//! Service secret keys (SPEC §2.4): webhook signing keys, which keyward must read back to sign
//! with and so keeps sealed under the master key, and the tenant's one bridge key, whose
//! secret only has to be checked and so is kept as an HMAC like an access key's. A secret is
//! shown once, when it is generated; generating a new one ends the old one at once.

use sqlx::{AnyConnection, AnyPool};

use crate::auth::key_secret::SecretHasher;
use crate::auth::vault::{Binding, Vault};
use crate::clock::Clock;
use crate::domain::{Actor, BridgeClientId, Permission, Secret};
use crate::error::{AppError, AppResult};
use crate::service::audit::{self, NewEntry};
use crate::service::once::{FormOnce, SECRET_ALREADY_GENERATED, SIGNING_KEY_ALREADY_CREATED};
use crate::service::repo::secret_keys::{self as repo, BRIDGE, BRIDGE_ID, SecretKeyRow};
use crate::service::{FieldErrors, FormError};

/// What a secret key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKeyKind {
    /// The tenant's one bridge key: client credentials of the on-premises connector.
    Bridge,
    /// A key that signs webhook events.
    WebhookSigning,
}

impl SecretKeyKind {
    /// The kind a stored row names.
    fn of(stored: &str) -> Self {
        if stored == BRIDGE {
            SecretKeyKind::Bridge
        } else {
            SecretKeyKind::WebhookSigning
        }
    }

    /// What the console calls it.
    pub fn label(self) -> &'static str {
        match self {
            SecretKeyKind::Bridge => "Bridge key",
            SecretKeyKind::WebhookSigning => "Webhook signing key",
        }
    }
}

/// A secret key as the console shows it: never its secret, only whether it has one.
#[derive(Debug, Clone)]
pub struct SecretKey {
    pub id: String,
    pub name: String,
    pub kind: SecretKeyKind,
    /// The Bridge Client ID, for the bridge key.
    pub client_id: Option<String>,
    pub created_at: i64,
    pub regenerated_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// Whether a secret was ever generated (the bridge key starts without one).
    pub has_secret: bool,
}

impl From<SecretKeyRow> for SecretKey {
    fn from(row: SecretKeyRow) -> Self {
        SecretKey {
            kind: SecretKeyKind::of(&row.kind),
            has_secret: row.secret_hash.is_some() || row.sealed_secret.is_some(),
            id: row.id,
            name: row.name,
            client_id: row.client_id,
            created_at: row.created_at,
            regenerated_at: row.regenerated_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// A secret just generated, to show once.
#[derive(Debug, Clone)]
pub struct GeneratedSecret {
    pub id: String,
    pub name: String,
    pub kind: SecretKeyKind,
    pub secret: Secret,
    /// The Bridge Client ID, for the bridge key.
    pub client_id: Option<String>,
    /// Whether an earlier secret was replaced (it stopped working).
    pub replaced: bool,
}

/// What the services need beyond the database.
#[derive(Clone, Copy)]
pub struct Tools<'a> {
    pub clock: &'a dyn Clock,
    pub vault: &'a Vault,
    pub hasher: &'a SecretHasher,
}

/// Creates the tenant's bridge key, without a secret yet, unless it exists. Called at start.
pub async fn ensure_bridge(conn: &mut AnyConnection, now: i64) -> sqlx::Result<()> {
    repo::insert_bridge_if_absent(conn, BridgeClientId::generate().as_str(), now).await
}

/// Every secret key, the bridge first, then signing keys by name.
pub async fn list(conn: &mut AnyConnection) -> AppResult<Vec<SecretKey>> {
    Ok(repo::list(conn)
        .await?
        .into_iter()
        .map(SecretKey::from)
        .collect())
}

/// The webhook signing keys an endpoint may choose, by name.
pub async fn signing_keys(pool: &AnyPool) -> AppResult<Vec<SecretKey>> {
    let mut conn = pool.acquire().await?;
    signing_keys_in(&mut conn).await
}

/// The webhook signing keys, read on the caller's connection.
pub(crate) async fn signing_keys_in(conn: &mut AnyConnection) -> AppResult<Vec<SecretKey>> {
    let mut keys = list(conn).await?;
    keys.retain(|k| k.kind == SecretKeyKind::WebhookSigning);
    Ok(keys)
}

/// One secret key, for its Generate Secret Key warning; `Gone` when it does not exist.
pub async fn get(pool: &AnyPool, id: &str) -> AppResult<SecretKey> {
    let mut conn = pool.acquire().await?;
    Ok(load(&mut conn, id).await?.into())
}

/// A signing key about to be deleted, and how many endpoints still sign with it.
#[derive(Debug, Clone)]
pub struct KeyToDelete {
    pub key: SecretKey,
    pub endpoints_using: i64,
}

/// What the confirmation before deleting a key shows; `Gone` when it does not exist.
pub async fn to_delete(pool: &AnyPool, id: &str) -> AppResult<KeyToDelete> {
    let mut conn = pool.acquire().await?;
    let key = load(&mut conn, id).await?.into();
    let endpoints_using = repo::endpoints_using(&mut conn, id).await?;
    Ok(KeyToDelete {
        key,
        endpoints_using,
    })
}

fn require(actor: &Actor) -> Result<(), AppError> {
    Ok(actor.require(Permission::ConfigWrite)?)
}

fn entry<'a>(actor: &'a Actor, action: &'a str, key: &'a SecretKeyRow) -> NewEntry<'a> {
    let kind = SecretKeyKind::of(&key.kind).label();
    audit::success(actor, action, "secret_key", &key.id, &key.name, kind)
}

/// The longest name of a signing key.
const NAME_MAX: usize = 100;

/// Creates a webhook signing key and returns its secret, to show once. Audited as
/// `secret_key.created`.
pub async fn create_signing_key(
    pool: &sqlx::AnyPool,
    tools: Tools<'_>,
    actor: &Actor,
    name: &str,
    once: &FormOnce,
) -> Result<GeneratedSecret, FormError> {
    require(actor)?;
    let name = name.trim();
    let mut errors = FieldErrors::default();
    if name.is_empty() {
        errors.add(
            "name",
            "Enter a name, such as the system that receives the webhooks.",
        );
    } else if name.chars().count() > NAME_MAX {
        errors.add("name", format!("Use at most {NAME_MAX} characters."));
    } else if name.chars().any(char::is_control) {
        errors.add("name", "Use letters, digits, spaces and punctuation only.");
    }
    if !errors.is_empty() {
        return Err(FormError::Invalid(errors));
    }
    let now = tools.clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let id = crate::service::repo::new_id("sk");
    // Before the name: a second post of the form was created, not refused for its name.
    once.spend(
        &mut tx,
        &actor.user_id,
        &id,
        now,
        SIGNING_KEY_ALREADY_CREATED,
    )
    .await?;
    if repo::name_taken(&mut tx, name).await? {
        errors.add(
            "name",
            "A secret key with this name exists; choose another name.",
        );
        return Err(FormError::Invalid(errors));
    }
    let secret = Secret::generate();
    let [sealed] = tools
        .vault
        .seal_to_store(&mut tx, [(Binding::signing_key(&id), secret.expose())])
        .await?;
    // The check above is not enough on PostgreSQL, where two creates can pass it together.
    if let Err(e) = repo::insert_signing_key(&mut tx, &id, name, &sealed, now, &actor.label).await {
        if crate::db::is_unique_violation(&e) {
            errors.add(
                "name",
                "A secret key with this name exists; choose another name.",
            );
            return Err(FormError::Invalid(errors));
        }
        return Err(e.into());
    }
    let row = repo::find(&mut tx, &id)
        .await?
        .ok_or(AppError::Gone(KEY_GONE))?;
    audit::record(&mut tx, now, entry(actor, "secret_key.created", &row)).await?;
    tx.commit().await?;
    Ok(GeneratedSecret {
        id,
        name: name.to_string(),
        kind: SecretKeyKind::WebhookSigning,
        secret,
        client_id: None,
        replaced: false,
    })
}

/// Said when a secret key was deleted meanwhile.
pub const KEY_GONE: &str = "This secret key no longer exists.";

/// One stored secret key; `Gone` when it does not exist.
async fn load(conn: &mut AnyConnection, id: &str) -> Result<SecretKeyRow, AppError> {
    repo::find(conn, id).await?.ok_or(AppError::Gone(KEY_GONE))
}

/// Replaces a key's secret and returns the new one, to show once; the old one stops working
/// at once. Audited as `secret_key.regenerated`.
pub async fn regenerate(
    pool: &sqlx::AnyPool,
    tools: Tools<'_>,
    actor: &Actor,
    id: &str,
    once: &FormOnce,
) -> Result<GeneratedSecret, AppError> {
    require(actor)?;
    let now = tools.clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let key = load(&mut tx, id).await?;
    once.spend(&mut tx, &actor.user_id, id, now, SECRET_ALREADY_GENERATED)
        .await?;
    let replaced = key.secret_hash.is_some() || key.sealed_secret.is_some();
    let secret = Secret::generate();
    let kind = SecretKeyKind::of(&key.kind);
    let (hash, sealed) = if kind == SecretKeyKind::Bridge {
        (Some(tools.hasher.hash(&secret)), None)
    } else {
        let [sealed] = tools
            .vault
            .seal_to_store(&mut tx, [(Binding::signing_key(&key.id), secret.expose())])
            .await?;
        (None, Some(sealed))
    };
    repo::replace_secret(
        &mut tx,
        id,
        hash.as_deref(),
        sealed.as_deref(),
        now,
        &actor.label,
    )
    .await?;
    audit::record(&mut tx, now, entry(actor, "secret_key.regenerated", &key)).await?;
    tx.commit().await?;
    Ok(GeneratedSecret {
        id: key.id,
        name: key.name,
        kind,
        secret,
        client_id: key.client_id,
        replaced,
    })
}

/// Deletes a webhook signing key that no endpoint uses. The bridge key stays. Audited as
/// `secret_key.deleted`.
pub async fn delete(
    pool: &sqlx::AnyPool,
    clock: &dyn Clock,
    actor: &Actor,
    id: &str,
) -> Result<String, AppError> {
    require(actor)?;
    let now = clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let key = load(&mut tx, id).await?;
    if key.id == BRIDGE_ID {
        return Err(AppError::Conflict(
            "The bridge key cannot be deleted. If its secret is lost or exposed, generate a new \
             secret key and enter it on the on-premises connector."
                .into(),
        ));
    }
    let users = repo::endpoints_using(&mut tx, id).await?;
    if users > 0 {
        return Err(AppError::Conflict(format!(
            "“{}” signs {users} webhook endpoint{}. Choose another signing key for {} or \
             delete {}, then delete this key.",
            key.name,
            if users == 1 { "" } else { "s" },
            if users == 1 { "it" } else { "them" },
            if users == 1 { "it" } else { "them" },
        )));
    }
    match repo::delete(&mut tx, id).await {
        Err(e) if crate::db::is_foreign_key_violation(&e) => {
            return Err(AppError::Conflict(format!(
                "“{}” was just chosen for a webhook endpoint; it cannot be deleted.",
                key.name
            )));
        }
        other => other?,
    };
    audit::record(&mut tx, now, entry(actor, "secret_key.deleted", &key)).await?;
    tx.commit().await?;
    Ok(key.name)
}
