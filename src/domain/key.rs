//! Access key identifiers, secrets, names and types (SPEC §3).

use std::fmt;

use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A Bridge Client ID: 20 characters, uppercase letters and digits, starting `BC`. Not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BridgeClientId(String);

impl BridgeClientId {
    /// A new random client ID.
    pub fn generate() -> Self {
        Self(random_id("BC"))
    }

    /// Checks the form of a presented client ID.
    pub fn parse(raw: &str) -> Option<Self> {
        is_id(raw, "BC").then(|| Self(raw.to_string()))
    }

    /// The ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key ID: 20 characters, uppercase letters and digits, starting `AK`. Not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

/// 20 characters: `prefix` and random uppercase letters and digits.
fn random_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let tail: String = (prefix.len()..20)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// Whether `raw` is 20 uppercase letters and digits starting with `prefix`.
fn is_id(raw: &str, prefix: &str) -> bool {
    raw.len() == 20
        && raw.starts_with(prefix)
        && raw
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl KeyId {
    /// A new random key ID.
    pub fn generate() -> Self {
        Self(random_id("AK"))
    }

    /// Checks the form of a presented key ID.
    pub fn parse(raw: &str) -> Option<Self> {
        is_id(raw, "AK").then(|| Self(raw.to_string()))
    }

    /// The ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key secret: `kws_` + 40 base62 characters + a 6-character base62 CRC32 of the first 44.
/// Held in a `SecretString`: wiped from memory when dropped, and `Debug` never shows it;
/// equality is checked in constant time.
#[derive(Clone)]
pub struct Secret(SecretString);

/// Length of a secret.
pub const SECRET_LEN: usize = 50;
const SECRET_PREFIX: &str = "kws_";

/// The six base62 digits of the CRC32 of `body` (ASCII).
fn checksum(body: &str) -> [u8; 6] {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

impl Secret {
    /// A new secret from the operating system's CSPRNG (through `rand`'s thread RNG, which is
    /// seeded from it and cryptographically secure).
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        // Built in place at its final length, so that no copy of it is left behind unwiped.
        let mut secret = String::with_capacity(SECRET_LEN);
        secret.push_str(SECRET_PREFIX);
        for _ in 0..40 {
            secret.push(BASE62[rng.random_range(0..BASE62.len())] as char);
        }
        let sum = checksum(&secret);
        secret.extend(sum.iter().map(|&b| char::from(b)));
        Self(secret.into())
    }

    /// Accepts only well-formed secrets with a matching checksum: a typo costs no lookup.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != SECRET_LEN || !raw.is_ascii() || !raw.starts_with(SECRET_PREFIX) {
            return None;
        }
        let (body, sum) = raw.split_at(44);
        // Everything after the prefix is base62: the 40 random characters and the checksum.
        // (Every byte looked at, no early exit: the loop runs as vector instructions.)
        let well_formed = raw.as_bytes()[SECRET_PREFIX.len()..]
            .iter()
            .fold(true, |ok, b| ok & b.is_ascii_alphanumeric());
        let sum_matches = bool::from(checksum(body).ct_eq(sum.as_bytes()));
        (well_formed && sum_matches).then(|| Self(raw.into()))
    }

    /// The secret itself, for hashing or the one-time display.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.expose().as_bytes().ct_eq(other.expose().as_bytes()))
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A key's name: a label for people, 1 to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    /// Trims and checks a typed name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Enter a name for the key.".into());
        }
        if name.chars().count() > 64 {
            return Err("A key name can be at most 64 characters.".into());
        }
        if name.chars().any(char::is_control) {
            return Err("A key name cannot contain control characters.".into());
        }
        Ok(Self(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name marks a system key of the tenant (`<tenant ID>@…`).
    pub fn is_system(&self, tenant_id: &str) -> bool {
        is_system_key_name(&self.0, tenant_id)
    }
}

/// Whether a key name marks a system key of the tenant (`<tenant ID>@…`).
pub fn is_system_key_name(name: &str, tenant_id: &str) -> bool {
    name.strip_prefix(tenant_id)
        .is_some_and(|rest| rest.starts_with('@'))
}

/// Access keys call keyward's API; API keys are presented to other services, which verify them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Access,
    Api,
}

impl KeyType {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Access => "access",
            KeyType::Api => "api",
        }
    }

    /// What the console shows.
    pub fn label(self) -> &'static str {
        match self {
            KeyType::Access => "Access key",
            KeyType::Api => "API",
        }
    }

    /// Parses the stored or submitted form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "access" => Some(KeyType::Access),
            "api" => Some(KeyType::Api),
            _ => None,
        }
    }
}

/// A key's state as people see it: inactive before locked before expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
    Expired,
    Locked,
}

impl KeyStatus {
    /// The state at `now` of a key with these switches and expiry.
    pub fn at(active: bool, locked: bool, expires_at: Option<i64>, now: i64) -> Self {
        if !active {
            KeyStatus::Inactive
        } else if locked {
            KeyStatus::Locked
        } else if expires_at.is_some_and(|t| t <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// The label shown in the console.
    pub fn label(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
            KeyStatus::Expired => "Expired",
            KeyStatus::Locked => "Locked",
        }
    }

    /// The state as the API names it: `active`, `inactive`, `expired` or `locked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
            KeyStatus::Expired => "expired",
            KeyStatus::Locked => "locked",
        }
    }

    /// Reads the API's (and the console's filter's) name of a state.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(KeyStatus::Active),
            "inactive" => Some(KeyStatus::Inactive),
            "expired" => Some(KeyStatus::Expired),
            "locked" => Some(KeyStatus::Locked),
            _ => None,
        }
    }
}

/// Kinds of email about a key, as the outbox records them.
pub mod mail {
    /// The key expires within the notice window.
    pub const EXPIRING: &str = "key.expiring";
    /// The key has expired.
    pub const EXPIRED: &str = "key.expired";
    /// The key locked after wrong secrets.
    pub const LOCKED: &str = "key.locked";
    /// A secret the key no longer has was presented (the replaced-secret tripwire).
    pub const REPLACED_SECRET_USED: &str = "key.replaced_secret_used";
    /// The key has gone unused and will be deactivated by the key policy.
    pub const INACTIVE_WARNING: &str = "key.inactive_warning";
    /// The key policy deactivated the key after it went unused.
    pub const DEACTIVATED_INACTIVE: &str = "key.deactivated_inactive";
    /// A secret of the key was reported exposed (the console, the API or secret scanning).
    pub const EXPOSED: &str = "key.exposed";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_documented_form() {
        for _ in 0..100 {
            let id = KeyId::generate();
            assert!(KeyId::parse(id.as_str()).is_some(), "{id}");
        }
        assert!(KeyId::parse("AK123").is_none());
        assert!(KeyId::parse("ak000000000000000000").is_none());
        assert!(KeyId::parse("XK000000000000000000").is_none());
    }

    #[test]
    fn generated_secrets_parse_and_typos_do_not() {
        for _ in 0..100 {
            let s = Secret::generate();
            assert_eq!(s.expose().len(), SECRET_LEN);
            assert!(s.expose().starts_with("kws_"));
            assert!(Secret::parse(s.expose()).is_some());
            // Change one character of the random part: the checksum no longer matches.
            let mut typo = s.expose().as_bytes().to_vec();
            typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
            assert!(Secret::parse(std::str::from_utf8(&typo).unwrap()).is_none());
        }
        assert!(Secret::parse("").is_none());
        assert!(Secret::parse("kws_").is_none());
        assert!(!format!("{:?}", Secret::generate()).contains("kws_"));
    }

    #[test]
    fn checksum_is_crc32_in_six_base62_digits() {
        // CRC32("kws_" + 40 zeros) = 0x5F1BF0E8 per the IEEE polynomial; checked by value below.
        let body = format!("kws_{}", "0".repeat(40));
        let crc = crc32fast::hash(body.as_bytes());
        let mut n = u64::from(crc);
        let mut expect = String::new();
        for _ in 0..6 {
            expect.insert(0, BASE62[(n % 62) as usize] as char);
            n /= 62;
        }
        assert_eq!(checksum(&body), expect.as_bytes());
        assert!(Secret::parse(&format!("{body}{expect}")).is_some());
    }

    #[test]
    fn system_keys_are_named_after_the_tenant() {
        assert!(is_system_key_name(
            "T8K2M4Q9ZP3X@monitoring",
            "T8K2M4Q9ZP3X"
        ));
        assert!(!is_system_key_name(
            "T8K2M4Q9ZP3Xmonitoring",
            "T8K2M4Q9ZP3X"
        ));
        assert!(!is_system_key_name("ci deploy", "T8K2M4Q9ZP3X"));
    }

    #[test]
    fn status_goes_inactive_then_locked_then_expired() {
        assert_eq!(KeyStatus::at(false, true, Some(0), 10), KeyStatus::Inactive);
        assert_eq!(KeyStatus::at(true, true, Some(0), 10), KeyStatus::Locked);
        assert_eq!(KeyStatus::at(true, false, Some(10), 10), KeyStatus::Expired);
        assert_eq!(KeyStatus::at(true, false, Some(11), 10), KeyStatus::Active);
        assert_eq!(KeyStatus::at(true, false, None, 10), KeyStatus::Active);
        for s in ["active", "inactive", "expired", "locked"] {
            assert_eq!(KeyStatus::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn key_names_are_bounded() {
        assert!(KeyName::parse(" ").is_err());
        assert!(KeyName::parse(&"k".repeat(65)).is_err());
        assert!(KeyName::parse("tab\tinside").is_err());
        assert_eq!(KeyName::parse(" ci deploy ").unwrap().as_str(), "ci deploy");
    }
}
