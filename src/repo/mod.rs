//! SQL per table group, with `$N` placeholders that both backends accept. A private module of
//! `service` (declared there, its files here): nothing else can call it, and the compiler says so.
//! Authentication keeps its own two tables (`auth::store`).

pub mod audit;
pub mod expiry_notices;
pub mod factors;
pub mod form_submissions;
pub mod groups;
pub mod inactivity;
pub mod invitations;
pub mod key_addresses;
pub mod key_rate_buckets;
pub mod key_usage;
pub mod keys;
mod named;
pub mod notifications;
pub mod outbox;
pub mod passkeys;
pub mod password_resets;
pub mod queue;
pub mod rate_limits;
pub mod replaced_secrets;
pub mod roles;
pub mod secret_keys;
pub mod setup_tokens;
pub mod users;
pub mod webhooks;

/// A fresh random identifier with a readable prefix, e.g. `usr_k3v9…`.
pub fn new_id(prefix: &str) -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}
