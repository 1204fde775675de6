//! Service secret keys (SPEC §2.4): webhook signing keys, which keyward must read back to sign
//! with and so keeps sealed under the master key, and the tenant's one bridge key, whose
//! secret only has to be checked and so is kept as an HMAC like an access key's. A secret is
//! shown once, when it is generated; generating a new one ends the old one at once.

use sqlx::AnyConnection;

use crate::auth::key_secret::SecretHasher;
use crate::auth::vault::{Binding, Vault};
use crate::clock::Clock;
use crate::domain::{BridgeClientId, Permission, Secret};
use crate::error::AppError;
use crate::repo::secret_keys::{self as repo, BRIDGE, BRIDGE_ID, SecretKeyRow, WEBHOOK};
use crate::service::audit::{self, NewEntry};
use crate::service::keys::Actor;
use crate::service::{FieldErrors, FormError};

/// A secret just generated, to show once.
#[derive(Debug, Clone)]
pub struct GeneratedSecret {
    pub id: String,
    pub name: String,
    pub kind: String,
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

/// Every secret key, the bridge first.
pub async fn list(conn: &mut AnyConnection) -> sqlx::Result<Vec<SecretKeyRow>> {
    repo::list(conn).await
}

/// What the console calls a kind.
pub fn kind_label(kind: &str) -> &'static str {
    if kind == BRIDGE {
        "Bridge key"
    } else {
        "Webhook signing key"
    }
}

fn require(actor: &Actor) -> Result<(), AppError> {
    actor.require(Permission::ConfigWrite)
}

fn entry<'a>(actor: &'a Actor, action: &'a str, key: &'a SecretKeyRow) -> NewEntry<'a> {
    let kind = kind_label(&key.kind);
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
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_keys WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
    if taken > 0 {
        errors.add(
            "name",
            "A secret key with this name exists; choose another name.",
        );
        return Err(FormError::Invalid(errors));
    }
    let id = crate::repo::new_id("sk");
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
        kind: WEBHOOK.into(),
        secret,
        client_id: None,
        replaced: false,
    })
}

/// Said when a secret key was deleted meanwhile.
pub const KEY_GONE: &str = "This secret key no longer exists.";

/// One secret key; `Gone` when it does not exist.
pub async fn load(conn: &mut AnyConnection, id: &str) -> Result<SecretKeyRow, AppError> {
    repo::find(conn, id).await?.ok_or(AppError::Gone(KEY_GONE))
}

/// Replaces a key's secret and returns the new one, to show once; the old one stops working
/// at once. Audited as `secret_key.regenerated`.
pub async fn regenerate(
    pool: &sqlx::AnyPool,
    tools: Tools<'_>,
    actor: &Actor,
    id: &str,
) -> Result<GeneratedSecret, AppError> {
    require(actor)?;
    let now = tools.clock.unix();
    let mut tx = crate::db::begin_write(pool).await?;
    let key = load(&mut tx, id).await?;
    let replaced = key.secret_hash.is_some() || key.sealed_secret.is_some();
    let secret = Secret::generate();
    let (hash, sealed) = if key.kind == BRIDGE {
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
        kind: key.kind,
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
