//! Reading a presented key from an `Authorization` header: `Basic base64(<key ID>:<secret>)` or
//! `Bearer <key ID>::<secret>`. Only well-formed IDs and secrets with a valid checksum are
//! accepted, so a typo or garbage costs no database work.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::{BridgeClientId, KeyId, Secret};

/// A key ID and secret as presented by a program.
#[derive(Debug, Clone)]
pub struct PresentedKey {
    pub id: KeyId,
    pub secret: Secret,
}

/// Reads an `Authorization` header value.
pub fn from_authorization(header: &str) -> Option<PresentedKey> {
    // HTTP's spaces only (`trim` would also strip Unicode ones around a credential).
    let (scheme, rest) = header.trim_ascii().split_once(' ')?;
    let rest = rest.trim_ascii();
    if scheme.eq_ignore_ascii_case("basic") {
        if rest.len() > 200 {
            return None;
        }
        let decoded = STANDARD.decode(rest).ok()?;
        let text = std::str::from_utf8(&decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        from_parts(id, secret)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        from_pair(rest)
    } else {
        None
    }
}

/// Reads `<key ID>::<secret>` (the Bearer form, and the `key` of the verify endpoint).
pub fn from_pair(pair: &str) -> Option<PresentedKey> {
    // A key ID holds no colon, so the first one must begin the `::`.
    let (id, secret) = pair.split_once(':')?;
    from_parts(id, secret.strip_prefix(':')?)
}

/// The bridge's client credentials as presented by the on-premises connector.
#[derive(Debug, Clone)]
pub struct PresentedBridge {
    pub client_id: BridgeClientId,
    pub secret: Secret,
}

/// Reads `Basic base64(<Bridge Client ID>:<secret>)`; `None` for anything else.
pub fn bridge_from_authorization(header: &str) -> Option<PresentedBridge> {
    // HTTP's spaces only (`trim` would also strip Unicode ones around a credential).
    let (scheme, rest) = header.trim_ascii().split_once(' ')?;
    let rest = rest.trim_ascii();
    if !scheme.eq_ignore_ascii_case("basic") || rest.len() > 200 {
        return None;
    }
    let decoded = STANDARD.decode(rest).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(PresentedBridge {
        client_id: BridgeClientId::parse(id)?,
        secret: Secret::parse(secret)?,
    })
}

fn from_parts(id: &str, secret: &str) -> Option<PresentedKey> {
    Some(PresentedKey {
        id: KeyId::parse(id)?,
        secret: Secret::parse(secret)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid() -> (String, String) {
        (
            KeyId::generate().to_string(),
            Secret::generate().expose().to_string(),
        )
    }

    #[test]
    fn both_header_forms_are_read() {
        let (id, secret) = valid();
        let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        let bearer = format!("Bearer {id}::{secret}");
        for header in [basic, bearer] {
            let k = from_authorization(&header).expect("accepted");
            assert_eq!(k.id.as_str(), id);
            assert_eq!(k.secret.expose(), secret);
        }
    }

    #[test]
    fn only_http_spaces_surround_a_credential() {
        let (id, secret) = valid();
        let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        let bearer = format!("Bearer {id}::{secret}");
        for header in [&basic, &bearer] {
            assert!(from_authorization(&format!(" {header}\t")).is_some());
            for odd in [
                format!("{header}\u{a0}"),
                format!("\u{3000}{header}"),
                header.replacen(' ', " \u{2028}", 1),
            ] {
                assert!(from_authorization(&odd).is_none(), "{odd:?}");
            }
        }
    }

    #[test]
    fn malformed_credentials_are_refused() {
        let (id, secret) = valid();
        let mut typo = secret.clone();
        typo.replace_range(10..11, if &secret[10..11] == "a" { "b" } else { "a" });
        for header in [
            String::new(),
            "Basic".into(),
            "Basic !!!".into(),
            format!("Digest {id}::{secret}"),
            format!("Bearer {id}:{secret}"),
            format!("Bearer {id}:::{secret}"),
            format!("Bearer {id}: :{secret}"),
            format!("Bearer :{id}::{secret}"),
            format!("Bearer {id}:x{secret}"),
            format!("Bearer {id}:é{secret}"),
            format!("Bearer {id}::{typo}"),
            format!("Bearer {}::{secret}", id.to_lowercase()),
            format!("Basic {}", STANDARD.encode(format!("{id}::{secret}"))),
        ] {
            assert!(from_authorization(&header).is_none(), "{header}");
        }
        // Verify's `key` is read by `from_pair` alone.
        for pair in [
            format!("{id}:{secret}"),
            format!("{id}:x{secret}"),
            format!("{id}:é{secret}"),
            format!("{id}:::{secret}"),
            format!("{id}é::{secret}"),
            format!("{id}::"),
            "::".to_string(),
        ] {
            assert!(from_pair(&pair).is_none(), "{pair}");
        }
        assert!(from_pair(&format!("{id}::{secret}")).is_some());
    }

    #[test]
    fn bridge_credentials_are_read_from_basic_only() {
        let id = BridgeClientId::generate();
        let secret = Secret::generate();
        let pair = format!("{}:{}", id.as_str(), secret.expose());
        let basic = format!("Basic {}", STANDARD.encode(&pair));
        let read = bridge_from_authorization(&basic).expect("accepted");
        assert_eq!(read.client_id, id);
        assert!(from_authorization(&basic).is_none(), "not an access key");
        assert!(bridge_from_authorization(&format!("Bearer {pair}")).is_none());
        let key = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", KeyId::generate(), secret.expose()))
        );
        assert!(
            bridge_from_authorization(&key).is_none(),
            "an access key is not the bridge"
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepts_only_well_formed_keys(header in ".{0,200}") {
            if let Some(k) = from_authorization(&header) {
                prop_assert!(KeyId::parse(k.id.as_str()).is_some());
                prop_assert!(Secret::parse(k.secret.expose()).is_some());
            }
        }

        #[test]
        fn base64_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let header = format!("Basic {}", STANDARD.encode(&bytes));
            let _ = from_authorization(&header);
        }

        #[test]
        fn any_single_character_change_to_a_secret_is_refused(pos in 4usize..50, c in "[0-9A-Za-z]") {
            let (id, secret) = valid();
            let mut changed = secret.clone();
            changed.replace_range(pos..pos + 1, &c);
            let accepted = from_pair(&format!("{id}::{changed}")).is_some();
            prop_assert_eq!(accepted, changed == secret);
        }
    }
}
