//! The master key: from `KEYWARD_MASTER_KEY`, or a file created with mode 0600 on first start.
//! Every other server key is derived from it with HKDF-SHA256 under a distinct label.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use sha2::Sha256;

/// File name of the master key inside the data directory.
pub const FILE_NAME: &str = "master.key";

/// 32 secret bytes, wiped from memory when dropped. `Debug` never shows them.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl Clone for MasterKey {
    fn clone(&self) -> Self {
        Self::from_bytes(*self.0.expose_secret())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// Decodes base64 of exactly 32 bytes.
    pub fn from_base64(raw: &str) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(raw.trim())
                .map_err(|_| anyhow::anyhow!("KEYWARD_MASTER_KEY: not valid base64"))?,
        );
        let mut key = SecretBox::new(Box::new([0u8; 32]));
        if bytes.len() != 32 {
            anyhow::bail!("KEYWARD_MASTER_KEY: must decode to exactly 32 bytes");
        }
        key.expose_secret_mut().copy_from_slice(&bytes);
        Ok(Self(key))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = SecretBox::new(Box::new([0u8; 32]));
        rand::fill(key.expose_secret_mut());
        Self(key)
    }

    /// The key from the environment value if given, else from `<data_dir>/master.key`, created
    /// (mode 0600) when missing.
    pub fn load_or_create(
        from_env: Option<&secrecy::SecretString>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        if let Some(raw) = from_env {
            return Self::from_base64(raw.expose_secret());
        }
        let path = data_dir.join(FILE_NAME);
        match std::fs::read_to_string(&path).map(Zeroizing::new) {
            Ok(raw) => {
                Self::from_base64(&raw).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::files::private_dir(data_dir)?;
                let key = Self::generate();
                write_private(&path, &Zeroizing::new(format!("{}\n", *key.to_base64())))?;
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok(key)
            }
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    /// The key as `KEYWARD_MASTER_KEY` takes it: base64 of the 32 bytes (wiped when dropped).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.expose_secret()))
    }

    /// A 32-byte key for one purpose, derived with HKDF-SHA256 (wiped when dropped).
    pub fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(b"keyward"), self.0.expose_secret())
            .expand(label.as_bytes(), out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    /// 64 bytes for one purpose (the session cookie key needs that many; wiped when dropped).
    pub fn derive_64(&self, label: &str) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        Hkdf::<Sha256>::new(Some(b"keyward"), self.0.expose_secret())
            .expand(label.as_bytes(), out.as_mut())
            .expect("64 bytes is a valid HKDF-SHA256 output length");
        out
    }

    /// Whether two keys are the same, compared in constant time.
    pub fn same_as(&self, other: &MasterKey) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.expose_secret().ct_eq(other.0.expose_secret()))
    }
}

/// File name of the next master key while a rotation is under way.
pub const NEXT_FILE_NAME: &str = "master.key.next";

/// Writes the key a rotation is moving to beside the current one (mode 0600). A leftover from
/// an earlier rotation that never committed is replaced.
pub fn write_next(data_dir: &Path, key: &MasterKey) -> anyhow::Result<()> {
    let path = data_dir.join(NEXT_FILE_NAME);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::anyhow!("removing {}: {e}", path.display())),
    }
    write_private(&path, &Zeroizing::new(format!("{}\n", *key.to_base64())))?;
    // The file must survive a power cut once the database is sealed under its key.
    sync_dir(data_dir)?;
    Ok(())
}

/// Makes the next key (`key`) the master key file, once the database is sealed under it. A
/// server that started meanwhile may have done so already.
pub fn promote_next(data_dir: &Path, key: &MasterKey) -> anyhow::Result<()> {
    let (next, current) = (data_dir.join(NEXT_FILE_NAME), data_dir.join(FILE_NAME));
    if let Err(e) = std::fs::rename(&next, &current) {
        let done = std::fs::read_to_string(&current)
            .ok()
            .and_then(|raw| MasterKey::from_base64(&raw).ok())
            .is_some_and(|k| k.same_as(key));
        if !done {
            return Err(anyhow::anyhow!(
                "moving {} to {}: {e}; the database is sealed under the key in {}",
                next.display(),
                current.display(),
                next.display()
            ));
        }
    }
    sync_dir(data_dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// File name of the lock a rotation holds.
pub const LOCK_FILE_NAME: &str = "master.key.lock";

/// Held by a running rotation, so that two cannot run at once on one data directory.
pub struct RotationLock(std::path::PathBuf);

impl RotationLock {
    /// Takes the lock, or says why not.
    pub fn take(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(LOCK_FILE_NAME);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => Ok(RotationLock(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(anyhow::anyhow!(
                "another master key rotation is running ({} exists); if none is, remove the file \
                 and try again",
                path.display()
            )),
            Err(e) => Err(anyhow::anyhow!("creating {}: {e}", path.display())),
        }
    }
}

impl Drop for RotationLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_keys_of_the_wrong_length() {
        assert!(MasterKey::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
    }

    #[test]
    fn derived_keys_differ_by_label_and_are_stable() {
        let k = MasterKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert_ne!(k.derive("a"), k.derive("b"));
        assert_eq!(k.derive("a"), k.derive("a"));
        assert!(!format!("{k:?}").contains('7'));
    }
}
