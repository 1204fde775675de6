//! Authentication: passwords (Argon2id), the master key and keys derived from it, sessions in the
//! database, CSRF tokens, and the client's address.

pub mod client_ip;
pub mod csrf;
pub mod key_auth;
pub mod key_secret;
pub mod master_key;
pub mod password;
pub mod recovery_codes;
pub mod scanning_keys;
pub mod session_store;
pub mod store;
pub mod totp;
pub mod vault;
