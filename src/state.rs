//! What every request handler receives: the services, the settings and the running parts.
//! Built once by `startup`; read by the console (`web`) and the REST API (`api`), never by the
//! floors below them.

use std::sync::Arc;

use sqlx::AnyPool;

use crate::auth::master_key::MasterKey;
use crate::auth::password::PasswordHasher;
use crate::auth::vault::Vault;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Backend;

/// What every request handler can reach.
pub struct AppState {
    pub pool: AnyPool,
    pub backend: Backend,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub hasher: PasswordHasher,
    pub master_key: MasterKey,
    /// Values sealed under the master key.
    pub vault: Vault,
    pub tenant_id: String,
    /// Where email goes, as the mail log names it (an SMTP server, or a folder of files).
    pub mail_transport: String,
    pub metrics: crate::metrics::Metrics,
    /// Hashes key secrets under a key derived once from the master key.
    pub key_hasher: crate::auth::key_secret::SecretHasher,
    /// Checks the keys programs present, and records refusals in batches.
    pub key_checker: crate::service::key_auth::KeyChecker,
    /// Wakes the outbox sender and the webhook deliverer (the job's waker).
    pub sender: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// What the second-factor rules need: the pool, the clock, the vault, the keyed hasher of
    /// recovery codes and the password hasher.
    pub fn second_factors(&self) -> crate::service::accounts::factors::SecondFactors<'_> {
        crate::service::accounts::factors::SecondFactors {
            pool: &self.pool,
            clock: self.clock.as_ref(),
            vault: &self.vault,
            codes: &self.key_hasher,
            passwords: &self.hasher,
        }
    }

    /// What the key rules need: the clock, the secret hasher and the tenant ID.
    pub fn keyring(&self) -> crate::service::keys::Keyring<'_> {
        crate::service::keys::Keyring {
            clock: self.clock.as_ref(),
            hasher: &self.key_hasher,
            tenant_id: &self.tenant_id,
            sender: &self.sender,
        }
    }
}
