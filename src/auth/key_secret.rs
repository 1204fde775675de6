//! Stored form of key secrets: HMAC-SHA256 under a server key derived from the master key.
//! Secrets are high-entropy, so a keyed fast hash is right (Argon2id is for human passwords);
//! a stolen database without the master key does not allow checking guesses offline.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::zeroize::Zeroizing;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::auth::master_key::MasterKey;
use crate::auth::session_store::hex;
use crate::domain::Secret;

/// The derivation label of the HMAC key under the first master key.
pub const FIRST_LABEL: &str = "access-key-secret-v1";

/// Hashes and compares key secrets. The HMAC key is wiped from memory when dropped.
#[derive(Clone)]
pub struct SecretHasher {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher([redacted])")
    }
}

impl SecretHasher {
    /// The hasher of access-key secrets under `master` (the key the vault keeps from the
    /// first master key; see `auth::vault`).
    pub fn new(master: &MasterKey) -> Self {
        Self::from_key(master.derive(FIRST_LABEL))
    }

    /// The hasher with this HMAC key.
    pub fn from_key(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key }
    }

    /// The stored form (lower-case hex).
    pub fn hash(&self, secret: &Secret) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(secret.expose().as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The stored form of another high-entropy value (a recovery code), under a label that keeps
    /// it apart from key secrets and from values of other purposes.
    pub fn hash_labelled(&self, label: &str, text: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(text.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `secret` matches a stored hash, compared in constant time.
    pub fn matches(&self, secret: &Secret, stored: &str) -> bool {
        bool::from(self.hash(secret).as_bytes().ct_eq(stored.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_only_their_secret_and_depend_on_the_master_key() {
        let a = SecretHasher::new(&MasterKey::generate());
        let b = SecretHasher::new(&MasterKey::generate());
        let s = Secret::generate();
        let stored = a.hash(&s);
        assert_eq!(stored.len(), 64);
        assert!(!stored.contains(s.expose()));
        assert!(a.matches(&s, &stored));
        assert!(!a.matches(&Secret::generate(), &stored));
        assert!(!b.matches(&s, &stored));
    }
}
