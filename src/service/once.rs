//! Single-use form tokens for the forms that show a secret once (Add key, Generate new secret
//! key, for access keys, webhook signing keys and the bridge key). The form carries a fresh random token; the action spends it in its own transaction. A
//! second post of the same form (a reload of the secret page, a double click) finds the token
//! spent, and the whole action rolls back: no second key, no second secret.

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::auth::session_store::hex;
use crate::error::AppError;
use crate::service::repo::form_submissions;

/// How long a spent token is remembered: a reload a day later is answered like any other.
pub const REMEMBERED_SECS: i64 = 86_400;

/// A fresh token for a form.
pub fn issue() -> String {
    crate::service::repo::new_id("once")
}

/// What a form carried: its token, if any (the REST API and scripts send none).
#[derive(Debug, Clone, Default)]
pub struct FormOnce(pub Option<String>);

impl FormOnce {
    /// The token read from a form field; empty means none.
    pub fn from_field(value: &str) -> Self {
        FormOnce((!value.is_empty()).then(|| value.to_string()))
    }

    /// Spends the token for `key_id` inside the action's transaction, or refuses with
    /// `already` when it was spent before (the caller's transaction then rolls back).
    pub async fn spend(
        &self,
        conn: &mut AnyConnection,
        user_id: &str,
        key_id: &str,
        now: i64,
        already: &str,
    ) -> Result<(), AppError> {
        let Some(token) = &self.0 else {
            return Ok(());
        };
        let hash = hex(&Sha256::digest(token.as_bytes()));
        if form_submissions::spend(conn, &hash, user_id, key_id, now).await? {
            Ok(())
        } else {
            Err(AppError::Conflict(already.to_string()))
        }
    }
}

/// What a second post of Add key is told.
pub const KEY_ALREADY_CREATED: &str = "This form was already sent: the key was created then, and \
    its secret was shown once. It cannot be shown again; if it was lost, open the key and \
    generate a new secret key.";

/// What a second post of Generate new secret key is told.
pub const SECRET_ALREADY_GENERATED: &str = "This form was already sent: a new secret was \
    generated then and shown once. It cannot be shown again; if it was lost, generate another.";

/// What a second post of Add signing key is told.
pub const SIGNING_KEY_ALREADY_CREATED: &str = "This form was already sent: the signing key was \
    created then, and its value was shown once. It cannot be shown again; if it was lost, open \
    the key's menu and generate a new secret key.";
