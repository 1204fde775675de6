//! Everything sealed under the master key, and the master key's version.
//!
//! Stored values that keyward must read back (webhook signing secrets, invitation bodies
//! waiting in the outbox) are sealed with XChaCha20-Poly1305 under a key derived from the
//! master key per purpose (HKDF), written as `v<version>.<base64 of nonce and ciphertext>`.
//! The database also holds a check value sealed under the current master key, so a server
//! started with another key refuses at once with a clear message instead of failing later, and
//! the HMAC key of access-key secrets, sealed too: it was derived from the first master key and
//! stays the same across rotations, because the secrets it hashed cannot be hashed again.
//!
//! `keyward master-key rotate` ([`rotate`]) opens every sealed value with the old key and
//! seals it under the new one in one transaction, and bumps the version.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sqlx::AnyConnection;

use crate::auth::key_secret::SecretHasher;
use crate::auth::master_key::MasterKey;
use crate::repo::settings;

/// Settings rows the vault keeps.
const VERSION: &str = "master_key_version";
const CHECK: &str = "master_key_check";
const HASH_KEY: &str = "key_hash_key";
/// What the check value holds.
const CHECK_TEXT: &str = "keyward master key check";

/// What a sealed value is for; each purpose seals under its own derived key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Email bodies that carry a credential.
    Outbox,
    /// Webhook signing secrets.
    SecretKey,
    /// The vault's own rows: the check value and the key-hash key.
    Vault,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            // The label the outbox sealer used before versions existed, so old rows still open.
            Purpose::Outbox => "keyward outbox seal v1",
            Purpose::SecretKey => "keyward secret key seal v1",
            Purpose::Vault => "keyward vault seal v1",
        }
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "the value was sealed under master key version {found}, but this server runs version {current}"
    )]
    OtherVersion { found: i64, current: i64 },
    #[error("the value does not open with this master key (another key, or the value was altered)")]
    WrongKey,
    #[error("the stored value is not a sealed value")]
    Malformed,
}

/// Why the vault did not open.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "this master key does not open the database: it was sealed under master key version {version}. \
         Start keyward with that master key (KEYWARD_MASTER_KEY or master.key in the data directory)"
    )]
    WrongMasterKey { version: i64 },
    #[error("the vault rows in the settings table are damaged: {0}")]
    Damaged(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Seals and opens values under one master key, at one version.
#[derive(Clone)]
pub struct Vault {
    version: i64,
    outbox: XChaCha20Poly1305,
    secret_keys: XChaCha20Poly1305,
    vault: XChaCha20Poly1305,
    hash_key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault(version {}, [redacted])", self.version)
    }
}

impl Vault {
    /// The ciphers of `master` at `version`, with the key-hash key still to be set.
    fn of(master: &MasterKey, version: i64) -> Self {
        let cipher = |p: Purpose| XChaCha20Poly1305::new(&master.derive(p.label()).into());
        Vault {
            version,
            outbox: cipher(Purpose::Outbox),
            secret_keys: cipher(Purpose::SecretKey),
            vault: cipher(Purpose::Vault),
            hash_key: master.derive(crate::auth::key_secret::FIRST_LABEL),
        }
    }

    /// A vault that is not backed by a database, for unit tests.
    pub fn ephemeral(master: &MasterKey) -> Self {
        Self::of(master, 1)
    }

    /// Opens the vault of the database with `master`. On a database that has none yet, it is
    /// created at version 1 (the key-hash key is the one derived from this master key, as before
    /// the vault existed).
    pub async fn open(conn: &mut AnyConnection, master: &MasterKey) -> Result<Self, VaultError> {
        if settings::get(conn, VERSION).await?.is_none() {
            // Two instances starting at once: the first to insert wins, the other reads it.
            let first = Self::of(master, 1);
            let hash_key = STANDARD.encode(first.hash_key);
            settings::get_or_insert(conn, CHECK, &first.seal(Purpose::Vault, CHECK_TEXT)).await?;
            settings::get_or_insert(conn, HASH_KEY, &first.seal(Purpose::Vault, &hash_key)).await?;
            settings::get_or_insert(conn, VERSION, "1").await?;
        }
        let stored = settings::get(conn, VERSION).await?.unwrap_or_default();
        let version = stored
            .parse::<i64>()
            .map_err(|_| VaultError::Damaged(format!("{VERSION} is {stored:?}")))?;
        let mut vault = Self::of(master, version);
        let check = settings::get(conn, CHECK)
            .await?
            .ok_or_else(|| VaultError::Damaged(format!("{CHECK} is missing")))?;
        match vault.open_sealed(Purpose::Vault, &check) {
            Ok(text) if text == CHECK_TEXT => {}
            Ok(_) | Err(SealError::WrongKey) => return Err(VaultError::WrongMasterKey { version }),
            Err(e) => return Err(VaultError::Damaged(format!("{CHECK}: {e}"))),
        }
        let sealed_hash_key = settings::get(conn, HASH_KEY)
            .await?
            .ok_or_else(|| VaultError::Damaged(format!("{HASH_KEY} is missing")))?;
        let hash_key = vault
            .open_sealed(Purpose::Vault, &sealed_hash_key)
            .ok()
            .and_then(|b64| STANDARD.decode(b64).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| VaultError::Damaged(format!("{HASH_KEY} does not open")))?;
        vault.hash_key = hash_key;
        Ok(vault)
    }

    /// `texts` sealed for `purpose`, to be stored in the database. Refuses when the database
    /// has moved to another master key version (a rotation ran while this server was up): what
    /// it sealed now could never be opened.
    pub async fn seal_to_store<const N: usize>(
        &self,
        conn: &mut AnyConnection,
        purpose: Purpose,
        texts: [&str; N],
    ) -> Result<[String; N], crate::error::AppError> {
        let stored = settings::get(conn, VERSION).await?;
        if stored.as_deref() != Some(self.version.to_string().as_str()) {
            return Err(crate::error::AppError::Conflict(
                "The master key was rotated while keyward was running. Restart keyward with the \
                 new master key, then try again."
                    .into(),
            ));
        }
        Ok(texts.map(|t| self.seal(purpose, t)))
    }

    /// The master key version this vault seals under.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The hasher of access-key and bridge secrets.
    pub fn secret_hasher(&self) -> SecretHasher {
        SecretHasher::from_key(self.hash_key)
    }

    fn cipher(&self, purpose: Purpose) -> &XChaCha20Poly1305 {
        match purpose {
            Purpose::Outbox => &self.outbox,
            Purpose::SecretKey => &self.secret_keys,
            Purpose::Vault => &self.vault,
        }
    }

    /// `text` sealed for `purpose`: `v<version>.<base64 of nonce and ciphertext>`.
    pub fn seal(&self, purpose: Purpose, text: &str) -> String {
        let nonce = XNonce::generate();
        let sealed = self
            .cipher(purpose)
            .encrypt(&nonce, text.as_bytes())
            .expect("encrypting a short text cannot fail");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&sealed);
        format!("v{}.{}", self.version, STANDARD.encode(raw))
    }

    /// The text `seal` made. A value without a version prefix is from before versions
    /// existed, which is version 1.
    pub fn open_sealed(&self, purpose: Purpose, sealed: &str) -> Result<String, SealError> {
        let (found, body) = match sealed.split_once('.') {
            Some((v, body)) if v.starts_with('v') => (
                v[1..].parse::<i64>().map_err(|_| SealError::Malformed)?,
                body,
            ),
            _ => (1, sealed),
        };
        if found != self.version {
            return Err(SealError::OtherVersion {
                found,
                current: self.version,
            });
        }
        let raw = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
        if raw.len() < 24 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(24);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Malformed)?;
        let plain = self
            .cipher(purpose)
            .decrypt(&nonce, ciphertext)
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed)
    }
}

/// What a rotation re-sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub version: i64,
    pub secret_keys: usize,
    pub emails: usize,
}

/// Re-seals every stored value under `new` in one transaction: the vault rows, webhook signing
/// secrets and sealed outbox bodies. Fails, changing nothing, when `old` does not open the vault
/// or any value.
pub async fn rotate(
    pool: &sqlx::AnyPool,
    old: &MasterKey,
    new: &MasterKey,
) -> anyhow::Result<Rotation> {
    let mut tx = crate::db::begin_write(pool).await?;
    // Taken first, so that a second rotation waits for this one and then finds the old key no
    // longer opens the vault (SQLite's write transaction already serialises them).
    sqlx::query("UPDATE settings SET value = value WHERE name = $1")
        .bind(VERSION)
        .execute(&mut *tx)
        .await?;
    let current = Vault::open(&mut tx, old).await?;
    let mut next = Vault::of(new, current.version + 1);
    next.hash_key = current.hash_key;
    let reseal = |purpose: Purpose, sealed: &str, what: &str| -> anyhow::Result<String> {
        let plain = current
            .open_sealed(purpose, sealed)
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        Ok(next.seal(purpose, &plain))
    };
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, sealed_secret FROM secret_keys WHERE sealed_secret IS NOT NULL ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, sealed) in &keys {
        let resealed = reseal(Purpose::SecretKey, sealed, &format!("secret key {id}"))?;
        sqlx::query("UPDATE secret_keys SET sealed_secret = $1 WHERE id = $2")
            .bind(resealed)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let emails: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, body_text, body_html FROM outbox WHERE sealed = 1 AND body_text <> '' ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, text, html) in &emails {
        let what = format!("email {id}");
        let (text, html) = (
            reseal(Purpose::Outbox, text, &what)?,
            reseal(Purpose::Outbox, html, &what)?,
        );
        sqlx::query("UPDATE outbox SET body_text = $1, body_html = $2 WHERE id = $3")
            .bind(text)
            .bind(html)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    settings::set(
        &mut tx,
        HASH_KEY,
        &next.seal(Purpose::Vault, &STANDARD.encode(next.hash_key)),
    )
    .await?;
    settings::set(&mut tx, CHECK, &next.seal(Purpose::Vault, CHECK_TEXT)).await?;
    settings::set(&mut tx, VERSION, &next.version.to_string()).await?;
    tx.commit().await?;
    Ok(Rotation {
        version: next.version,
        secret_keys: keys.len(),
        emails: emails.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_purpose_and_version() {
        let a = Vault::ephemeral(&MasterKey::generate());
        let b = Vault::ephemeral(&MasterKey::generate());
        let sealed = a.seal(Purpose::Outbox, "https://example.test/invite?token=abc");
        assert!(sealed.starts_with("v1.") && !sealed.contains("token"));
        assert_eq!(
            a.open_sealed(Purpose::Outbox, &sealed).as_deref(),
            Ok("https://example.test/invite?token=abc")
        );
        assert_eq!(
            b.open_sealed(Purpose::Outbox, &sealed),
            Err(SealError::WrongKey)
        );
        assert_eq!(
            a.open_sealed(Purpose::SecretKey, &sealed),
            Err(SealError::WrongKey)
        );
        let later = sealed.replacen("v1.", "v2.", 1);
        assert_eq!(
            a.open_sealed(Purpose::Outbox, &later),
            Err(SealError::OtherVersion {
                found: 2,
                current: 1
            })
        );
        assert_eq!(
            a.open_sealed(Purpose::Outbox, "not base64!"),
            Err(SealError::Malformed)
        );
    }

    #[test]
    fn values_sealed_before_versions_existed_open_as_version_one() {
        let a = Vault::ephemeral(&MasterKey::generate());
        let sealed = a.seal(Purpose::Outbox, "hello");
        let unversioned = sealed.trim_start_matches("v1.");
        assert_eq!(
            a.open_sealed(Purpose::Outbox, unversioned).as_deref(),
            Ok("hello")
        );
    }
}
