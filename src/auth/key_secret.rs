//! Stored form of key secrets: HMAC-SHA256 under a server key derived from the master key.
//! Secrets are high-entropy, so a keyed fast hash is right (Argon2id is for human passwords);
//! a stolen database without the master key does not allow checking guesses offline.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::zeroize::Zeroizing;
use sha2::Sha256;

use crate::auth::master_key::MasterKey;
use crate::auth::session_store::hex;
use crate::domain::Secret;

/// The derivation label of the HMAC key under the first master key.
pub const FIRST_LABEL: &str = "access-key-secret-v1";

/// Hashes and compares key secrets. Holds the HMAC keyed once (its inner and outer states,
/// wiped from memory when dropped), so that a check hashes only the secret.
#[derive(Clone)]
pub struct SecretHasher {
    keyed: Hmac<Sha256>,
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
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_slice())
            .expect("HMAC takes a key of any length");
        Self { keyed }
    }

    /// The stored form (lower-case hex).
    pub fn hash(&self, secret: &Secret) -> String {
        let mut mac = self.keyed.clone();
        mac.update(secret.expose().as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The stored form of another high-entropy value (a recovery code), under a label that keeps
    /// it apart from key secrets and from values of other purposes.
    pub fn hash_labelled(&self, label: &str, text: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(text.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `secret` matches a stored hash, compared in constant time (the stored hash is
    /// decoded in constant time too; one that is not 64 hex digits matches nothing).
    pub fn matches(&self, secret: &Secret, stored: &str) -> bool {
        let mut tag = [0u8; 32];
        if !base16ct::lower::decode(stored, &mut tag).is_ok_and(|t| t.len() == 32) {
            return false;
        }
        let mut mac = self.keyed.clone();
        mac.update(secret.expose().as_bytes());
        mac.verify_slice(&tag).is_ok()
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
