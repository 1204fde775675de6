//! What the key rules need beyond the database, shared by the key checks here and by key
//! management (`service::keys`): the clock, the secret hasher, the tenant ID and the sender's
//! waker.

use crate::auth::key_secret::SecretHasher;
use crate::clock::Clock;

/// What keys need beyond the database: the clock, the secret hasher and the tenant ID.
pub struct Keyring<'a> {
    pub clock: &'a dyn Clock,
    pub hasher: &'a SecretHasher,
    pub tenant_id: &'a str,
    /// Wakes the outbox sender: a change that committed may have queued emails or webhook
    /// deliveries ([`Keyring::committed`]).
    pub sender: &'a tokio::sync::Notify,
}

impl Keyring<'_> {
    /// Called after a change commits: what it queued goes out now rather than at the next pass.
    pub fn committed(&self) {
        self.sender.notify_one();
    }
}
