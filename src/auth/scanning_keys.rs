//! GitHub secret scanning's request signatures: each request names one of GitHub's public keys
//! (`Github-Public-Key-Identifier`) and carries an ECDSA P-256 / SHA-256 signature of its raw
//! body, base64 of ASN.1 DER (`Github-Public-Key-Signature`). The public keys come from a JSON
//! file in GitHub's own format (what `GET https://api.github.com/meta/public_keys/secret_scanning`
//! answers), named by `KEYWARD_GITHUB_SCANNING_KEYS`. The file is read for each request, so a
//! replaced file takes effect without a restart; every listed key is accepted, current or not,
//! since GitHub may still sign with the previous one while it rotates.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

/// The largest key file read (GitHub's holds a handful of keys, about 1 KB).
const MAX_FILE: u64 = 256 * 1024;

/// GitHub's public keys for secret scanning, by identifier.
#[derive(Debug, Clone)]
pub struct ScanningKeys {
    keys: Vec<(String, VerifyingKey)>,
}

#[derive(Deserialize)]
struct KeyFile {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

/// Why a request's signature was refused. All of them answer 401 alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureRefusal {
    /// A header is missing or empty.
    Missing,
    /// No key in the file has the identifier.
    UnknownKey,
    /// The signature is not base64 of a DER ECDSA signature.
    Malformed,
    /// The signature does not match the body under the key.
    Mismatch,
}

impl SignatureRefusal {
    /// The reason as the log records it.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureRefusal::Missing => "signature headers missing",
            SignatureRefusal::UnknownKey => "unknown public key identifier",
            SignatureRefusal::Malformed => "malformed signature",
            SignatureRefusal::Mismatch => "signature does not match the body",
        }
    }
}

impl ScanningKeys {
    /// Reads GitHub's JSON key list; an error says what is wrong with it.
    pub fn parse(json: &str) -> Result<Self, String> {
        let file: KeyFile = serde_json::from_str(json)
            .map_err(|e| format!("not a GitHub public key list ({e})"))?;
        let mut keys = Vec::with_capacity(file.public_keys.len());
        for entry in file.public_keys {
            let id = entry.key_identifier.trim().to_string();
            if id.is_empty() {
                return Err("a key has an empty key_identifier".into());
            }
            let key = VerifyingKey::from_public_key_pem(entry.key.trim())
                .map_err(|_| format!("key {id} is not a PEM P-256 public key"))?;
            keys.push((id, key));
        }
        if keys.is_empty() {
            return Err("the file lists no public keys".into());
        }
        Ok(Self { keys })
    }

    /// Reads the key file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {shown}: {e}"))?
            .len();
        if size > MAX_FILE {
            return Err(format!("{shown} is larger than {MAX_FILE} bytes"));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("{shown}: {e}"))
    }

    /// Checks a request: the key `identifier` names, and its `signature` (base64 DER) of
    /// `body`.
    pub fn verify(
        &self,
        identifier: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), SignatureRefusal> {
        let (identifier, signature) = (identifier.trim(), signature.trim());
        if identifier.is_empty() || signature.is_empty() {
            return Err(SignatureRefusal::Missing);
        }
        let key = self
            .keys
            .iter()
            .find(|(id, _)| id == identifier)
            .map(|(_, key)| key)
            .ok_or(SignatureRefusal::UnknownKey)?;
        // A DER P-256 signature is at most 72 bytes; anything much longer is not one.
        if signature.len() > 200 {
            return Err(SignatureRefusal::Malformed);
        }
        let der = STANDARD
            .decode(signature)
            .map_err(|_| SignatureRefusal::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| SignatureRefusal::Malformed)?;
        key.verify(body, &signature)
            .map_err(|_| SignatureRefusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    fn key_pair() -> (SigningKey, String) {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let signing = SigningKey::from_slice(&bytes).expect("a scalar");
        let pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM");
        (signing, pem)
    }

    fn file(entries: &[(&str, &str)]) -> String {
        let keys: Vec<serde_json::Value> = entries
            .iter()
            .map(|(id, pem)| {
                serde_json::json!({"key_identifier": id, "key": pem, "is_current": true})
            })
            .collect();
        serde_json::json!({ "public_keys": keys }).to_string()
    }

    fn sign(key: &SigningKey, body: &[u8]) -> String {
        let signature: Signature = key.sign(body);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    #[test]
    fn a_signature_by_a_listed_key_is_accepted_and_nothing_else() {
        let (old, old_pem) = key_pair();
        let (new, new_pem) = key_pair();
        let keys = ScanningKeys::parse(&file(&[("old", &old_pem), ("new", &new_pem)])).unwrap();
        let body = br#"[{"token":"x","type":"keyward_secret"}]"#;
        assert_eq!(keys.verify("new", &sign(&new, body), body), Ok(()));
        assert_eq!(keys.verify("old", &sign(&old, body), body), Ok(()));
        assert_eq!(
            keys.verify("new", &sign(&old, body), body),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(
            keys.verify("new", &sign(&new, body), b"[]"),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(
            keys.verify("other", &sign(&new, body), body),
            Err(SignatureRefusal::UnknownKey)
        );
        assert_eq!(
            keys.verify("new", "not base64!", body),
            Err(SignatureRefusal::Malformed)
        );
        assert_eq!(
            keys.verify("new", &STANDARD.encode(b"\x30\x02"), body),
            Err(SignatureRefusal::Malformed)
        );
        assert_eq!(keys.verify("", "x", body), Err(SignatureRefusal::Missing));
    }

    #[test]
    fn key_files_that_cannot_be_used_say_why() {
        assert!(ScanningKeys::parse("{}").is_err());
        assert!(ScanningKeys::parse(r#"{"public_keys":[]}"#).is_err());
        let bad = file(&[(
            "k",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        )]);
        assert!(ScanningKeys::parse(&bad).unwrap_err().contains("key k"));
    }
}
