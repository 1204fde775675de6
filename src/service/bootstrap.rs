//! First start: the tenant ID, and while no user exists a one-time setup link.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::auth::session_store::hex;
use crate::auth::store::settings;
use crate::service::repo::{setup_tokens, users};

/// Length of a setup or invitation token: 32 random bytes in unpadded base64url. A longer
/// token is refused before it is hashed or looked up.
pub const LINK_TOKEN_LEN: usize = 43;

/// How long a setup link works.
pub const SETUP_TOKEN_TTL_SECS: i64 = 3600;

/// The stored tenant ID; a configured one replaces it, else one is generated on first start.
pub async fn tenant_id(conn: &mut AnyConnection, configured: Option<&str>) -> sqlx::Result<String> {
    if let Some(id) = configured {
        settings::set(conn, "tenant_id", id).await?;
        return Ok(id.to_string());
    }
    settings::get_or_insert(conn, "tenant_id", &generate_tenant_id()).await
}

fn generate_tenant_id() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The stored form of a setup token.
pub fn hash_setup_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A new emailed-link token (an invitation, a password reset): 32 random bytes as
/// [`LINK_TOKEN_LEN`] characters, wiped when dropped, with the hash that is stored of it.
pub fn new_link_token() -> (secrecy::zeroize::Zeroizing<String>, String) {
    let mut bytes = secrecy::zeroize::Zeroizing::new([0u8; 32]);
    rand::fill(&mut bytes[..]);
    let token = secrecy::zeroize::Zeroizing::new(URL_SAFE_NO_PAD.encode(*bytes));
    let hash = hash_setup_token(&token);
    (token, hash)
}

/// While no user exists, a fresh setup token (earlier ones stop working); `None` otherwise.
pub async fn issue_setup_token(conn: &mut AnyConnection, now: i64) -> sqlx::Result<Option<String>> {
    if users::count(conn).await? > 0 {
        return Ok(None);
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    setup_tokens::replace(
        conn,
        &hash_setup_token(&token),
        now,
        now + SETUP_TOKEN_TTL_SECS,
    )
    .await?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_tokens_have_their_stated_length() {
        use base64::Engine;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0u8; 32]);
        assert_eq!(token.len(), super::LINK_TOKEN_LEN);
    }

    #[test]
    fn tenant_ids_are_valid() {
        let id = super::generate_tenant_id();
        assert!(crate::domain::TenantId::parse(&id).is_ok());
        assert_eq!(id.len(), 12);
    }
}
