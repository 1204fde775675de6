//! Authenticator-app codes (TOTP, RFC 6238): HMAC-SHA-1, 30-second time steps, 6 digits, and a
//! code from one step either side accepted for clocks that drift. The check answers the time
//! step a code belongs to, so the caller can accept each step once (RFC 6238 §5.2).

use secrecy::zeroize::Zeroizing;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Seconds in one time step.
pub const STEP_SECS: i64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret: the 160 bits RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "keyward";

/// The secret an authenticator app shares with keyward. Its `Debug` never shows it; the bytes
/// are wiped from memory when it is dropped.
pub struct TotpSecret {
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        rand::fill(bytes.as_mut_slice());
        TotpSecret { bytes }
    }

    /// The secret written in base32 (as stored sealed and as apps take it); `None` when the text
    /// is not base32 or too short for RFC 4226.
    pub fn from_base32(text: &str) -> Option<Self> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = Secret::try_from_base32(&cleaned).ok()?.as_bytes().to_vec();
        (bytes.len() >= 16).then(|| TotpSecret {
            bytes: Zeroizing::new(bytes),
        })
    }

    /// The secret in base32 without padding.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(Secret::from(self.bytes.to_vec()).to_base32())
    }

    /// The base32 secret in groups of four, for a person to read and type.
    pub fn grouped(&self) -> Zeroizing<String> {
        let plain = self.to_base32();
        let groups: Vec<&str> = plain
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        Zeroizing::new(groups.join(" "))
    }

    /// The `otpauth://totp/…` address a QR code carries, naming the account by `account`.
    pub fn uri(&self, account: &str) -> Zeroizing<String> {
        // The key URI format keeps `:` as the issuer's separator; an address cannot need it.
        let account = account.replace(':', "_");
        let totp = self.totp(Some(account));
        Zeroizing::new(totp.to_url().unwrap_or_default())
    }

    fn totp(&self, account: Option<String>) -> Totp {
        let mut builder = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_skew(1)
            .with_step_duration(STEP_SECS as u64)
            .with_secret(self.bytes.to_vec());
        if let Some(account) = account {
            builder = builder.with_account_name(account).with_issuer(Some(ISSUER));
        }
        builder.build_noncompliant()
    }

    /// The time step `code` belongs to, when it is right for the step of `now` or one either
    /// side; `None` for a wrong or malformed code. Spaces in the code are ignored.
    pub fn matching_step(&self, code: &str, now: i64) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != DIGITS || now < STEP_SECS {
            return None;
        }
        let step = self.totp(None).check(&code, u64::try_from(now).ok()?)?;
        i64::try_from(step).ok()
    }

    /// The code of the step that holds the unix time `at` (what an app shows then).
    pub fn code_at(&self, at: i64) -> String {
        self.totp(None)
            .generate(u64::try_from(at).unwrap_or_default())
            .to_string()
    }
}

/// The time step that holds the unix time `at`.
pub fn step_of(at: i64) -> i64 {
    at.div_euclid(STEP_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1: the secret "12345678901234567890" and 8-digit codes, whose
    /// last six digits are the 6-digit codes.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = TotpSecret {
            bytes: Zeroizing::new(b"12345678901234567890".to_vec()),
        };
        for (at, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(secret.code_at(at), eight[2..], "at {at}");
            assert_eq!(secret.matching_step(&eight[2..], at), Some(step_of(at)));
        }
    }

    #[test]
    fn a_code_counts_one_step_either_side_and_no_further() {
        let secret = TotpSecret::generate();
        let now = 1_800_000_015;
        let code = secret.code_at(now);
        for (offset, accepted) in [
            (-60, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let result = secret.matching_step(&code, now + offset);
            assert_eq!(result.is_some(), accepted, "offset {offset}");
        }
        assert_eq!(secret.matching_step(&code, now), Some(step_of(now)));
        assert_eq!(secret.matching_step("12345", now), None);
        assert_eq!(secret.matching_step("abcdef", now), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(secret.matching_step(&spaced, now).is_some());
    }

    #[test]
    fn the_secret_reads_back_from_its_grouped_text_and_never_shows_in_debug() {
        let secret = TotpSecret::generate();
        let grouped = secret.grouped();
        assert_eq!(grouped.split(' ').count(), 8, "{}", grouped.as_str());
        let again = TotpSecret::from_base32(&grouped.to_lowercase()).expect("reads back");
        assert_eq!(again.to_base32().as_str(), secret.to_base32().as_str());
        assert!(!format!("{secret:?}").contains(secret.to_base32().as_str()));
        let uri = secret.uri("ada@example.com");
        assert!(
            uri.starts_with("otpauth://totp/keyward:ada%40example.com?secret="),
            "{}",
            uri.as_str()
        );
        assert!(TotpSecret::from_base32("not base32!").is_none());
    }
}
