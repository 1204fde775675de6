//! Everything sealed under the master key, and the master key's version.
//!
//! Stored values that keyward must read back (webhook signing secrets, invitation bodies
//! waiting in the outbox) are sealed with XChaCha20-Poly1305 under a key derived from the
//! master key per purpose (HKDF), written as `v<version>.b.<base64 of nonce and ciphertext>`.
//! Each value is bound to where it is stored: its purpose, row and column are its associated
//! data ([`Binding`]), so a value copied into another row or column does not open there (a
//! database writer cannot make one webhook endpoint sign with another key's secret).
//!
//! The database also holds a check value sealed under the current master key, so a server
//! started with another key refuses at once with a clear message instead of failing later, and
//! the HMAC key of access-key secrets, sealed too: it was derived from the first master key and
//! stays the same across rotations, because the secrets it hashed cannot be hashed again.
//!
//! Values written before binding existed (`v<version>.<base64>`, or bare base64 before
//! versions) are bound once, at the first start of a keyward that binds them ([`Vault::open`]),
//! in one transaction; the settings row `sealed_values_bound` records that it happened. From
//! then on an unbound value is refused, never bound: it can only have been copied in.
//!
//! `keyward master-key rotate` ([`rotate`]) opens every sealed value with the old key and
//! seals it under the new one in one transaction, and bumps the version.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use sqlx::AnyConnection;

use crate::auth::key_secret::SecretHasher;
use crate::auth::master_key::{self, MasterKey};
use crate::auth::store::settings;

/// Settings rows the vault keeps.
const VERSION: &str = "master_key_version";
const CHECK: &str = "master_key_check";
const HASH_KEY: &str = "key_hash_key";
/// Set once every sealed value is bound to its place; unbound values are refused from then on.
const BOUND: &str = "sealed_values_bound";
/// What the check value holds.
const CHECK_TEXT: &str = "keyward master key check";
/// Marks a value sealed with its binding as associated data, after the version.
const BOUND_TAG: &str = "b.";

/// What a sealed value is for; each purpose seals under its own derived key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Email bodies that carry a credential.
    Outbox,
    /// Webhook signing secrets.
    SecretKey,
    /// The vault's own rows: the check value and the key-hash key.
    Vault,
    /// Authenticator-app (TOTP) secrets.
    Totp,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            // The label the outbox sealer used before versions existed, so old rows still open.
            Purpose::Outbox => "keyward outbox seal v1",
            Purpose::SecretKey => "keyward secret key seal v1",
            Purpose::Vault => "keyward vault seal v1",
            Purpose::Totp => "keyward totp seal v1",
        }
    }

    /// The purpose's name in the associated data.
    fn tag(self) -> &'static str {
        match self {
            Purpose::Outbox => "outbox",
            Purpose::SecretKey => "signing-key",
            Purpose::Vault => "settings",
            Purpose::Totp => "totp",
        }
    }
}

/// Where a sealed value is stored: its purpose, row and column, sealed with it as associated
/// data so that it opens only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    purpose: Purpose,
    row: &'a str,
    column: &'static str,
}

impl<'a> Binding<'a> {
    /// The secret of the webhook signing key `id` (`secret_keys.sealed_secret`).
    pub fn signing_key(id: &'a str) -> Self {
        Binding {
            purpose: Purpose::SecretKey,
            row: id,
            column: "sealed_secret",
        }
    }

    /// The plain-text body of the email `id` (`outbox.body_text`).
    pub fn email_text(id: &'a str) -> Self {
        Binding {
            purpose: Purpose::Outbox,
            row: id,
            column: "body_text",
        }
    }

    /// The HTML body of the email `id` (`outbox.body_html`).
    pub fn email_html(id: &'a str) -> Self {
        Binding {
            purpose: Purpose::Outbox,
            row: id,
            column: "body_html",
        }
    }

    /// The authenticator-app secret of the person `user_id` (`totp_factors.sealed_secret`).
    pub fn totp_secret(user_id: &'a str) -> Self {
        Binding {
            purpose: Purpose::Totp,
            row: user_id,
            column: "sealed_secret",
        }
    }

    /// One of the vault's rows in the settings table.
    fn setting(name: &'a str) -> Self {
        Binding {
            purpose: Purpose::Vault,
            row: name,
            column: "value",
        }
    }

    /// `keyward/v2/<purpose>/<row>/<column>`. The columns are fixed names, so no two places
    /// share one (a row ID containing `/` still ends in a different column).
    fn associated_data(&self) -> Vec<u8> {
        format!(
            "keyward/v2/{}/{}/{}",
            self.purpose.tag(),
            self.row,
            self.column
        )
        .into_bytes()
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "the value was sealed under master key version {found}, but this server runs version {current}"
    )]
    OtherVersion { found: i64, current: i64 },
    #[error(
        "the value does not open here: it was sealed under another master key, for another row, \
         or altered"
    )]
    WrongKey,
    #[error(
        "the value is not bound to its row: it was sealed the old way after every value had been \
         bound, so it was copied in; generate a new secret or send the email again"
    )]
    Unbound,
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

/// Seals and opens values under one master key, at one version. The derived keys are wiped
/// from memory when it is dropped.
#[derive(Clone)]
pub struct Vault {
    version: i64,
    outbox: XChaCha20Poly1305,
    secret_keys: XChaCha20Poly1305,
    vault: XChaCha20Poly1305,
    totp: XChaCha20Poly1305,
    hash_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault(version {}, [redacted])", self.version)
    }
}

/// A stored sealed value, taken apart.
struct Parsed<'a> {
    version: i64,
    bound: bool,
    body: &'a str,
}

/// Splits `v<version>.b.<base64>` (bound), `v<version>.<base64>` (unbound) and bare base64
/// (unbound, from before versions existed: version 1). Base64 has no `.`, so the forms cannot
/// be mistaken for each other.
fn parse(sealed: &str) -> Result<Parsed<'_>, SealError> {
    let (version, rest) = match sealed.split_once('.') {
        Some((v, rest)) if v.starts_with('v') => (
            v[1..].parse::<i64>().map_err(|_| SealError::Malformed)?,
            rest,
        ),
        _ => (1, sealed),
    };
    Ok(match rest.strip_prefix(BOUND_TAG) {
        Some(body) => Parsed {
            version,
            bound: true,
            body,
        },
        None => Parsed {
            version,
            bound: false,
            body: rest,
        },
    })
}

/// Whether every sealed value of the database is bound to its place.
async fn all_bound(conn: &mut AnyConnection) -> sqlx::Result<bool> {
    Ok(settings::get(conn, BOUND).await?.as_deref() == Some("1"))
}

/// Takes the version row's lock, so that rotations and the binding of old values run one at a
/// time (SQLite's write transaction already serialises them).
async fn lock_version(conn: &mut AnyConnection) -> sqlx::Result<()> {
    sqlx::query("UPDATE settings SET value = value WHERE name = $1")
        .bind(VERSION)
        .execute(conn)
        .await?;
    Ok(())
}

impl Vault {
    /// The ciphers of `master` at `version`, with the key-hash key still to be set.
    fn of(master: &MasterKey, version: i64) -> Self {
        let cipher = |p: Purpose| {
            XChaCha20Poly1305::new_from_slice(master.derive(p.label()).as_slice())
                .expect("a derived key is 32 bytes")
        };
        Vault {
            version,
            outbox: cipher(Purpose::Outbox),
            secret_keys: cipher(Purpose::SecretKey),
            vault: cipher(Purpose::Vault),
            totp: cipher(Purpose::Totp),
            hash_key: master.derive(crate::auth::key_secret::FIRST_LABEL),
        }
    }

    /// A vault that is not backed by a database, for unit tests.
    pub fn ephemeral(master: &MasterKey) -> Self {
        Self::of(master, 1)
    }

    /// Opens the vault of the database with `master`. On a database that has none yet, it is
    /// created at version 1 (the key-hash key is the one derived from this master key, as before
    /// the vault existed). On the first start after an upgrade, every value sealed before
    /// binding existed is bound to its place, in one transaction.
    pub async fn open(conn: &mut AnyConnection, master: &MasterKey) -> Result<Self, VaultError> {
        if settings::get(conn, VERSION).await?.is_none() {
            // Two instances starting at once: the first to insert wins, the other reads it.
            let first = Self::of(master, 1);
            let hash_key = Zeroizing::new(STANDARD.encode(first.hash_key.as_slice()));
            let check = first.seal(Binding::setting(CHECK), CHECK_TEXT);
            settings::get_or_insert(conn, CHECK, &check).await?;
            let sealed_hash_key = first.seal(Binding::setting(HASH_KEY), &hash_key);
            settings::get_or_insert(conn, HASH_KEY, &sealed_hash_key).await?;
            settings::get_or_insert(conn, VERSION, "1").await?;
        }
        let stored = settings::get(conn, VERSION).await?.unwrap_or_default();
        let version = stored
            .parse::<i64>()
            .map_err(|_| VaultError::Damaged(format!("{VERSION} is {stored:?}")))?;
        let bound = all_bound(conn).await?;
        let mut vault = Self::of(master, version);
        let check = settings::get(conn, CHECK)
            .await?
            .ok_or_else(|| VaultError::Damaged(format!("{CHECK} is missing")))?;
        match vault.open_in(Binding::setting(CHECK), &check, !bound) {
            Ok(text) if text.expose_secret() == CHECK_TEXT => {}
            Ok(_) | Err(SealError::WrongKey) => return Err(VaultError::WrongMasterKey { version }),
            Err(e) => return Err(VaultError::Damaged(format!("{CHECK}: {e}"))),
        }
        let sealed_hash_key = settings::get(conn, HASH_KEY)
            .await?
            .ok_or_else(|| VaultError::Damaged(format!("{HASH_KEY} is missing")))?;
        let hash_key = vault
            .open_in(Binding::setting(HASH_KEY), &sealed_hash_key, !bound)
            .ok()
            .and_then(|b64| STANDARD.decode(b64.expose_secret()).ok())
            .map(Zeroizing::new)
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| VaultError::Damaged(format!("{HASH_KEY} does not open")))?;
        vault.hash_key.copy_from_slice(&hash_key);
        if !bound {
            vault.bind_old_values(conn).await?;
        }
        Ok(vault)
    }

    /// Seals again, bound to its place, every value sealed before binding existed, and records
    /// that it happened; in one transaction, once per database. A value that does not open is
    /// left as it is (it fails where it is used, as it did before) and logged.
    async fn bind_old_values(&self, conn: &mut AnyConnection) -> Result<(), VaultError> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        lock_version(&mut tx).await?;
        // Another instance starting at the same time may have done it meanwhile.
        if all_bound(&mut tx).await? {
            tx.commit().await?;
            return Ok(());
        }
        let mut bound = 0;
        for name in [CHECK, HASH_KEY] {
            let Some(sealed) = settings::get(&mut tx, name).await? else {
                continue;
            };
            if let Some(resealed) = self.rebind(Binding::setting(name), &sealed) {
                settings::set(&mut tx, name, &resealed).await?;
                bound += 1;
            }
        }
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, sealed_secret FROM secret_keys WHERE sealed_secret IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (id, sealed) in &keys {
            if let Some(resealed) = self.rebind(Binding::signing_key(id), sealed) {
                sqlx::query("UPDATE secret_keys SET sealed_secret = $1 WHERE id = $2")
                    .bind(resealed)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                bound += 1;
            }
        }
        let emails: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, body_text, body_html FROM outbox WHERE sealed = 1 AND body_text <> '' \
             ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (id, text, html) in &emails {
            let text = self.rebind(Binding::email_text(id), text);
            let html = self.rebind(Binding::email_html(id), html);
            if let (Some(text), Some(html)) = (text, html) {
                sqlx::query("UPDATE outbox SET body_text = $1, body_html = $2 WHERE id = $3")
                    .bind(text)
                    .bind(html)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                bound += 1;
            }
        }
        settings::set(&mut tx, BOUND, "1").await?;
        tx.commit().await?;
        if bound > 0 {
            tracing::info!(
                values = bound,
                "bound every sealed value to its row (values sealed by an earlier keyward)"
            );
        }
        Ok(())
    }

    /// An unbound value sealed again, bound to `binding`; `None` when it is bound already or
    /// does not open.
    fn rebind(&self, binding: Binding<'_>, sealed: &str) -> Option<String> {
        if parse(sealed).is_ok_and(|p| p.bound) {
            return None;
        }
        match self.open_in(binding, sealed, true) {
            Ok(plain) => Some(self.seal(binding, plain.expose_secret())),
            Err(e) => {
                tracing::warn!(
                    row = binding.row,
                    purpose = ?binding.purpose,
                    error = %e,
                    "a value sealed by an earlier keyward does not open; it is left as it is"
                );
                None
            }
        }
    }

    /// Values for `places`, sealed to be stored there. Refuses when the database has moved to
    /// another master key version (a rotation ran while this server was up): what it sealed now
    /// could never be opened.
    pub async fn seal_to_store<const N: usize>(
        &self,
        conn: &mut AnyConnection,
        places: [(Binding<'_>, &str); N],
    ) -> Result<[String; N], crate::error::AppError> {
        let stored = settings::get(conn, VERSION).await?;
        if stored.as_deref() != Some(self.version.to_string().as_str()) {
            return Err(crate::error::AppError::Conflict(
                "The master key was rotated while keyward was running. Restart keyward with the \
                 new master key, then try again."
                    .into(),
            ));
        }
        Ok(places.map(|(binding, text)| self.seal(binding, text)))
    }

    /// The master key version this vault seals under.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The hasher of access-key and bridge secrets.
    pub fn secret_hasher(&self) -> SecretHasher {
        SecretHasher::from_key(self.hash_key.clone())
    }

    fn cipher(&self, purpose: Purpose) -> &XChaCha20Poly1305 {
        match purpose {
            Purpose::Outbox => &self.outbox,
            Purpose::SecretKey => &self.secret_keys,
            Purpose::Vault => &self.vault,
            Purpose::Totp => &self.totp,
        }
    }

    /// `text` sealed to be stored at `binding`: `v<version>.b.<base64 of nonce and ciphertext>`.
    pub fn seal(&self, binding: Binding<'_>, text: &str) -> String {
        let nonce = XNonce::generate();
        let aad = binding.associated_data();
        let payload = Payload {
            msg: text.as_bytes(),
            aad: &aad,
        };
        let sealed = self
            .cipher(binding.purpose)
            .encrypt(&nonce, payload)
            .expect("encrypting a short text cannot fail");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&sealed);
        format!("v{}.{BOUND_TAG}{}", self.version, STANDARD.encode(raw))
    }

    /// The text `seal` made for `binding`. Fails, without a panic, for a value sealed for
    /// another place, under another key or version, altered, or not bound at all.
    pub fn open_sealed(
        &self,
        binding: Binding<'_>,
        sealed: &str,
    ) -> Result<SecretString, SealError> {
        self.open_in(binding, sealed, false)
    }

    /// Opens a bound value, and with `unbound_ok` also one sealed before binding existed.
    fn open_in(
        &self,
        binding: Binding<'_>,
        sealed: &str,
        unbound_ok: bool,
    ) -> Result<SecretString, SealError> {
        let parsed = parse(sealed)?;
        if parsed.version != self.version {
            return Err(SealError::OtherVersion {
                found: parsed.version,
                current: self.version,
            });
        }
        let raw = STANDARD
            .decode(parsed.body)
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < 24 {
            return Err(SealError::Malformed);
        }
        if !parsed.bound && !unbound_ok {
            return Err(SealError::Unbound);
        }
        let (nonce, ciphertext) = raw.split_at(24);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Malformed)?;
        // Unbound values were sealed without associated data, which is the same as empty.
        let aad = if parsed.bound {
            binding.associated_data()
        } else {
            Vec::new()
        };
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let plain = Zeroizing::new(
            self.cipher(binding.purpose)
                .decrypt(&nonce, payload)
                .map_err(|_| SealError::WrongKey)?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| SealError::Malformed)?;
        Ok(SecretString::from(text))
    }
}

/// What a rotation re-sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub version: i64,
    pub secret_keys: usize,
    pub emails: usize,
    pub totp_secrets: usize,
}

/// Re-seals every stored value under `new` in one transaction, bound to its place: the vault
/// rows, webhook signing secrets, sealed outbox bodies and authenticator-app secrets. Fails, changing nothing, when `old`
/// does not open the vault or any value.
pub async fn rotate(
    pool: &sqlx::AnyPool,
    old: &MasterKey,
    new: &MasterKey,
) -> anyhow::Result<Rotation> {
    let mut tx = crate::db::begin_write(pool).await?;
    // Taken first, so that a second rotation waits for this one and then finds the old key no
    // longer opens the vault (SQLite's write transaction already serialises them).
    lock_version(&mut tx).await?;
    // Binds values sealed by an earlier keyward first, if this database still has any.
    let current = Vault::open(&mut tx, old).await?;
    let mut next = Vault::of(new, current.version + 1);
    next.hash_key = current.hash_key.clone();
    let reseal = |binding: Binding<'_>, sealed: &str, what: &str| -> anyhow::Result<String> {
        let plain = current
            .open_sealed(binding, sealed)
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        Ok(next.seal(binding, plain.expose_secret()))
    };
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, sealed_secret FROM secret_keys WHERE sealed_secret IS NOT NULL ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, sealed) in &keys {
        let resealed = reseal(
            Binding::signing_key(id),
            sealed,
            &format!("secret key {id}"),
        )?;
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
            reseal(Binding::email_text(id), text, &what)?,
            reseal(Binding::email_html(id), html, &what)?,
        );
        sqlx::query("UPDATE outbox SET body_text = $1, body_html = $2 WHERE id = $3")
            .bind(text)
            .bind(html)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let totp: Vec<(String, String)> =
        sqlx::query_as("SELECT user_id, sealed_secret FROM totp_factors ORDER BY user_id")
            .fetch_all(&mut *tx)
            .await?;
    for (user_id, sealed) in &totp {
        let what = format!("authenticator app of {user_id}");
        let resealed = reseal(Binding::totp_secret(user_id), sealed, &what)?;
        sqlx::query("UPDATE totp_factors SET sealed_secret = $1 WHERE user_id = $2")
            .bind(resealed)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    let hash_key = Zeroizing::new(STANDARD.encode(next.hash_key.as_slice()));
    let sealed_hash_key = next.seal(Binding::setting(HASH_KEY), &hash_key);
    settings::set(&mut tx, HASH_KEY, &sealed_hash_key).await?;
    let check = next.seal(Binding::setting(CHECK), CHECK_TEXT);
    settings::set(&mut tx, CHECK, &check).await?;
    settings::set(&mut tx, VERSION, &next.version.to_string()).await?;
    settings::set(&mut tx, BOUND, "1").await?;
    tx.commit().await?;
    Ok(Rotation {
        version: next.version,
        secret_keys: keys.len(),
        emails: emails.len(),
        totp_secrets: totp.len(),
    })
}

/// After a rotation that committed but stopped before replacing the key file: opens the vault
/// with the next key and, when that works, makes it the master key file.
pub async fn finish_rotation(
    data_dir: &std::path::Path,
    conn: &mut sqlx::AnyConnection,
) -> anyhow::Result<(MasterKey, Vault)> {
    let path = data_dir.join(master_key::NEXT_FILE_NAME);
    let current = MasterKey::load_or_create(None, data_dir)?;
    let next = match std::fs::read_to_string(&path).map(Zeroizing::new) {
        Ok(raw) => MasterKey::from_base64(&raw)?,
        // No rotation was under way: the file simply holds another key.
        Err(_) => {
            return Err(Vault::open(conn, &current).await.err().map_or_else(
                || anyhow::anyhow!("the master key does not open the database"),
                anyhow::Error::from,
            ));
        }
    };
    let vault = Vault::open(conn, &next).await?;
    master_key::promote_next(data_dir, &next)?;
    tracing::warn!(
        "finished an interrupted master key rotation: {} now holds master key version {}",
        data_dir.join(master_key::FILE_NAME).display(),
        vault.version()
    );
    Ok((next, vault))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What keyward sealed before binding existed: no associated data, no `b.` tag.
    fn seal_unbound(vault: &Vault, purpose: Purpose, text: &str) -> String {
        let nonce = XNonce::generate();
        let sealed = vault
            .cipher(purpose)
            .encrypt(&nonce, text.as_bytes())
            .unwrap();
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&sealed);
        format!("v{}.{}", vault.version, STANDARD.encode(raw))
    }

    fn opened(r: Result<SecretString, SealError>) -> Result<String, SealError> {
        r.map(|s| s.expose_secret().to_string())
    }

    #[test]
    fn sealed_text_opens_only_with_its_key_place_and_version() {
        let a = Vault::ephemeral(&MasterKey::generate());
        let b = Vault::ephemeral(&MasterKey::generate());
        let here = Binding::email_text("mail_1");
        let sealed = a.seal(here, "https://example.test/invite?token=abc");
        assert!(sealed.starts_with("v1.b.") && !sealed.contains("token"));
        assert_eq!(
            opened(a.open_sealed(here, &sealed)).as_deref(),
            Ok("https://example.test/invite?token=abc")
        );
        assert_eq!(
            opened(b.open_sealed(here, &sealed)),
            Err(SealError::WrongKey)
        );
        for elsewhere in [
            Binding::email_text("mail_2"),
            Binding::email_html("mail_1"),
            Binding::signing_key("mail_1"),
        ] {
            assert_eq!(
                opened(a.open_sealed(elsewhere, &sealed)),
                Err(SealError::WrongKey),
                "{elsewhere:?}"
            );
        }
        let later = sealed.replacen("v1.", "v2.", 1);
        assert_eq!(
            opened(a.open_sealed(here, &later)),
            Err(SealError::OtherVersion {
                found: 2,
                current: 1
            })
        );
        // Stripping the tag does not turn it into an old value that opens without binding.
        let untagged = sealed.replacen("v1.b.", "v1.", 1);
        assert_eq!(
            opened(a.open_in(here, &untagged, true)),
            Err(SealError::WrongKey)
        );
        assert_eq!(
            opened(a.open_sealed(here, "not base64!")),
            Err(SealError::Malformed)
        );
        assert_eq!(
            opened(a.open_sealed(here, "v1.b.AAAA")),
            Err(SealError::Malformed)
        );
    }

    #[test]
    fn values_sealed_before_binding_open_only_while_being_bound() {
        let a = Vault::ephemeral(&MasterKey::generate());
        let here = Binding::signing_key("sk_1");
        let old = seal_unbound(&a, Purpose::SecretKey, "kws_old");
        assert_eq!(opened(a.open_sealed(here, &old)), Err(SealError::Unbound));
        assert_eq!(
            opened(a.open_in(here, &old, true)).as_deref(),
            Ok("kws_old")
        );
        // Before versions existed there was no prefix at all: version 1.
        let unversioned = old.trim_start_matches("v1.");
        assert_eq!(
            opened(a.open_in(here, unversioned, true)).as_deref(),
            Ok("kws_old")
        );
        let rebound = a.rebind(here, &old).expect("an old value is bound");
        assert!(rebound.starts_with("v1.b."));
        assert_eq!(
            opened(a.open_sealed(here, &rebound)).as_deref(),
            Ok("kws_old")
        );
        assert_eq!(a.rebind(here, &rebound), None, "bound values stay");
        assert_eq!(
            opened(a.open_sealed(Binding::signing_key("sk_2"), &rebound)),
            Err(SealError::WrongKey)
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let master = MasterKey::generate();
        let vault = Vault::ephemeral(&master);
        let shown = format!("{vault:?} {master:?} {:?}", vault.secret_hasher());
        assert!(!shown.contains(master.to_base64().as_str()));
        assert!(shown.contains("redacted"), "{shown}");
    }
}
