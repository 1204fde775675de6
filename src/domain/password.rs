use std::fmt;

/// Shortest password accepted (NIST SP 800-63B recommends at least 8; we ask for more).
pub const PASSWORD_MIN: usize = 12;
/// Longest password accepted; bounds the work a sign-in can cause.
pub const PASSWORD_MAX: usize = 128;
/// Longest password input, in bytes, that is looked at. Every stored password was at most
/// [`PASSWORD_MAX`] characters (at most 4 bytes each), so a longer input cannot be right and is
/// refused before any hashing or counting of characters.
const PASSWORD_INPUT_MAX: usize = PASSWORD_MAX * 4;

/// Passwords that meet the length rule but are guessed first.
const COMMON: &[&str] = &[
    "password1234",
    "password12345",
    "123456789012",
    "1234567890123",
    "qwertyuiopas",
    "qwerty123456",
    "iloveyou1234",
    "administrator",
    "letmein12345",
    "welcome12345",
    "passwordpassword",
    "changeme1234",
    "adminadmin12",
    "keywardkeyward",
];

/// A password someone chose, checked against the policy. Its `Debug` never shows it.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    /// Whether a typed password (new or current) is too long to be anyone's password: refused
    /// before any other work, Argon2 included.
    pub fn is_too_long(typed: &str) -> bool {
        typed.len() > PASSWORD_INPUT_MAX
    }

    /// Checks length, variety and the list of common passwords; `email` is refused as a password too.
    pub fn parse(raw: &str, email: Option<&str>) -> Result<Self, String> {
        if Self::is_too_long(raw) {
            return Err(format!("Use at most {PASSWORD_MAX} characters."));
        }
        let count = raw.chars().count();
        if count == 0 {
            return Err("Enter a password.".into());
        }
        if count < PASSWORD_MIN {
            return Err(format!("Use at least {PASSWORD_MIN} characters."));
        }
        if count > PASSWORD_MAX {
            return Err(format!("Use at most {PASSWORD_MAX} characters."));
        }
        if raw.chars().any(char::is_control) {
            return Err("A password cannot contain control characters.".into());
        }
        let distinct: std::collections::HashSet<char> = raw.chars().collect();
        if distinct.len() < 5 {
            return Err(
                "This password is too easy to guess: use more different characters.".into(),
            );
        }
        let lower = raw.to_lowercase();
        if COMMON.contains(&lower.as_str()) {
            return Err("This password is too common: choose another.".into());
        }
        if let Some(email) = email {
            let email = email.to_lowercase();
            let local = email.split('@').next().unwrap_or_default();
            if lower == email || (local.len() >= 4 && lower.contains(local)) {
                return Err("A password cannot contain your email address.".into());
            }
        }
        Ok(Self(raw.to_string()))
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert!(NewPassword::parse("", None).unwrap_err().contains("Enter"));
        assert!(
            NewPassword::parse("short", None)
                .unwrap_err()
                .contains("12")
        );
        assert!(NewPassword::parse("aaaaaaaaaaaaaaa", None).is_err());
        assert!(
            NewPassword::parse("Password1234", None)
                .unwrap_err()
                .contains("common")
        );
        assert!(NewPassword::parse("ada.lovelace-2026", Some("ada.lovelace@example.com")).is_err());
        assert!(NewPassword::parse(&"x1".repeat(65), None).is_err());
        assert!(
            NewPassword::parse(&"x1".repeat(32_000), None)
                .unwrap_err()
                .contains("128")
        );
        // The longest allowed password in 4-byte characters is still looked at.
        assert!(!NewPassword::is_too_long(&"🦀".repeat(PASSWORD_MAX)));
        assert!(NewPassword::is_too_long(
            &"x".repeat(PASSWORD_INPUT_MAX + 1)
        ));
    }

    #[test]
    fn a_good_password_is_accepted_and_never_printed() {
        let p = NewPassword::parse("correct horse battery", Some("ada@example.com")).unwrap();
        assert_eq!(p.expose(), "correct horse battery");
        assert!(!format!("{p:?}").contains("horse"));
    }
}
