use std::fmt;

/// Longest email address accepted (RFC 5321's path limit less the angle brackets).
pub const EMAIL_MAX: usize = 254;

/// An email address, trimmed and lower-cased so that one person has one account.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Accepts `local@domain.tld` forms of up to 254 characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("Enter an email address.".into());
        }
        // Checked before any other work on the text (a form field may hold 64 KiB).
        if trimmed.len() > EMAIL_MAX {
            return Err(format!(
                "An email address can be at most {EMAIL_MAX} characters."
            ));
        }
        let email = trimmed.to_lowercase();
        if email.len() > EMAIL_MAX {
            return Err(format!(
                "An email address can be at most {EMAIL_MAX} characters."
            ));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("Enter an email address like name@example.com.".into());
        };
        let ok_local = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let ok_domain = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !ok_local || !ok_domain {
            return Err("Enter an email address like name@example.com.".into());
        }
        Ok(Self(email))
    }

    /// Longest address accepted, in characters.
    pub const MAX: usize = EMAIL_MAX;

    /// Whether a typed email is too long to be anyone's address: no account can have it.
    pub fn is_too_long(typed: &str) -> bool {
        typed.trim().len() > EMAIL_MAX
    }

    /// A typed email as the audit log and the throttle buckets record it: trimmed, lower-cased
    /// and cut to [`EMAIL_MAX`] characters whatever was typed, so a row never grows with the
    /// input. A NUL (which PostgreSQL text cannot hold, and no address has) becomes U+FFFD, so
    /// such an attempt is an unknown account, counted like any other.
    pub fn typed_label(typed: &str) -> String {
        if typed.contains('\0') {
            return Self::typed_label(&typed.replace('\0', "\u{FFFD}"));
        }
        let trimmed = typed.trim();
        let cut = trimmed
            .char_indices()
            .nth(EMAIL_MAX)
            .map_or(trimmed, |(at, _)| &trimmed[..at]);
        // Lower-casing can lengthen a few characters; cut again by characters.
        cut.to_lowercase().chars().take(EMAIL_MAX).collect()
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn over_long_emails_are_refused_and_labelled_short() {
        let long = format!("{}@example.com", "a".repeat(60_000));
        assert!(Email::parse(&long).unwrap_err().contains("254"));
        assert!(Email::is_too_long(&long));
        assert!(!Email::is_too_long(" ada@example.com "));
        assert_eq!(Email::typed_label(&long).chars().count(), EMAIL_MAX);
        assert_eq!(Email::typed_label("  Ada@Example.COM "), "ada@example.com");
        let wide = "É".repeat(300);
        assert_eq!(Email::typed_label(&wide).chars().count(), EMAIL_MAX);
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@.com",
            "a da@example.com",
            "ada@exa..mple",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
