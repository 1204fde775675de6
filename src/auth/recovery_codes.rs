//! Recovery codes: ten single-use codes (`xxxx-xxxx-xxxx`) that stand in for a second factor
//! when the device is lost. They are random (60 bits each), so a keyed fast hash is right for
//! storing them (HMAC-SHA-256 under the key-hash key, bound to the person): a database copy
//! without the master key does not allow testing guesses offline.

use crate::auth::key_secret::SecretHasher;

/// How many codes a person gets at a time.
pub const COUNT: usize = 10;
/// No 0/o, 1/l/i: the codes are read off paper.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const GROUPS: usize = 3;
const GROUP_LEN: usize = 4;

/// A fresh set of codes, as shown to the person once.
pub fn generate() -> Vec<String> {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..COUNT)
        .map(|_| {
            let groups: Vec<String> = (0..GROUPS)
                .map(|_| {
                    (0..GROUP_LEN)
                        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                        .collect()
                })
                .collect();
            groups.join("-")
        })
        .collect()
}

/// A typed code in the form it was shown (lower case, dashes between groups), whatever the
/// spaces, dashes and case typed; `None` when it cannot be a code.
pub fn normalise(typed: &str) -> Option<String> {
    let chars: Vec<char> = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if chars.len() != GROUPS * GROUP_LEN || typed.len() > 64 {
        return None;
    }
    let groups: Vec<String> = chars
        .chunks(GROUP_LEN)
        .map(|c| c.iter().collect())
        .collect();
    Some(groups.join("-"))
}

/// The stored form of `code` (normalised) for the person `user_id`.
pub fn hash(hasher: &SecretHasher, user_id: &str, code: &str) -> String {
    hasher.hash_labelled("recovery-code", &format!("{user_id}/{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_ten_distinct_readable_codes_that_normalise_to_themselves() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 14, "{code}");
            assert_eq!(normalise(code).as_deref(), Some(code.as_str()));
            let typed = code.to_uppercase().replace('-', " ");
            assert_eq!(normalise(&typed).as_deref(), Some(code.as_str()));
        }
        assert_eq!(normalise("abcd-efgh"), None);
    }
}
