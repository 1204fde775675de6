/// A person's display name: 1 to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Trims and checks a name typed into a form.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Enter a name.".into());
        }
        if name.chars().count() > 64 {
            return Err("A name can be at most 64 characters.".into());
        }
        if name.chars().any(char::is_control) {
            return Err("A name cannot contain control characters.".into());
        }
        Ok(Self(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The tenant's identifier: 3 to 32 letters, digits or `-`, shown in key details and used as the
/// prefix of system key names (`<tenant ID>@…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantId(String);

impl TenantId {
    /// Checks a configured or stored tenant ID.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (3..=32).contains(&raw.len())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err("must be 3 to 32 letters, digits or '-'".into())
        }
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"a".repeat(65)).is_err());
        assert!(PersonName::parse("Ada\u{0007}").is_err());
    }

    #[test]
    fn tenant_ids_are_plain() {
        assert!(TenantId::parse("T8K2M4Q9ZP3X").is_ok());
        assert!(TenantId::parse("a@b").is_err());
        assert!(TenantId::parse("ab").is_err());
    }
}
