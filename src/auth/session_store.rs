//! actix-session storage in the database, so that any number of instances on one PostgreSQL
//! share sessions. Only a SHA-256 of the session key is stored: a copy of the table does not
//! let anyone take over a session. Expiry follows the injected clock.

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::auth::store::sessions;
use crate::clock::Clock;

/// The session state key that holds the signed-in user's ID.
pub const USER_ID: &str = "uid";
/// Session key holding the unix time of sign-in, for the absolute timeout.
pub const SIGNED_IN_AT: &str = "auth_at";
/// Session key holding the unix time the person last proved who they are (the password, or
/// the second factor when they have one), for step-up before sensitive actions.
pub const CONFIRMED_AT: &str = "confirmed_at";
/// Session key holding the ID of a person whose password was right and whose second factor is
/// still to come: not a signed-in session (no console page opens).
pub const PENDING_USER_ID: &str = "pending_uid";
/// Session key holding the unix time the pending state began.
pub const PENDING_AT: &str = "pending_at";
/// Session key holding where to go once the second factor is proven.
pub const PENDING_NEXT: &str = "pending_next";
/// How long a pending second step waits, in seconds.
pub const PENDING_SECS: i64 = 300;
/// A session ends this long after sign-in however active it is.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;
/// Session key holding the session's public ID (how the sessions list names it).
pub const SESSION_ID: &str = "sid";
/// Session key holding the device label read from the User-Agent at sign-in.
pub const DEVICE: &str = "device";
/// Session key holding the client address at sign-in.
pub const CLIENT_IP: &str = "ip";

/// Sessions in the `sessions` table.
#[derive(Clone)]
pub struct DbSessionStore {
    pool: AnyPool,
    clock: Arc<dyn Clock>,
}

impl DbSessionStore {
    /// A store over the pool, telling time by `clock`.
    pub fn new(pool: AnyPool, clock: Arc<dyn Clock>) -> Self {
        Self { pool, clock }
    }
}

fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Lower-case hex of bytes (in constant time: it encodes secrets' hashes too).
pub fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// What the row keeps in columns of its own, read from the session's state.
fn facts_of(state: &HashMap<String, String>) -> sessions::SessionFacts {
    let text = |key: &str| {
        state
            .get(key)
            .and_then(|v| serde_json::from_str::<String>(v).ok())
    };
    sessions::SessionFacts {
        user_id: text(USER_ID),
        public_id: text(SESSION_ID).unwrap_or_default(),
        device: text(DEVICE).unwrap_or_default(),
        client_ip: text(CLIENT_IP).unwrap_or_default(),
        signed_in_at: state
            .get(SIGNED_IN_AT)
            .and_then(|v| serde_json::from_str::<i64>(v).ok())
            .unwrap_or_default(),
    }
}

/// What the session store fails with when the database cannot be reached. actix-session turns
/// every store error into an opaque, empty 500; `unavailable_as_503` recognises this one (by
/// its text, the only part that survives) and answers with the console's 503 page instead.
#[derive(Debug, thiserror::Error)]
#[error("the session store cannot reach the database")]
pub struct StoreUnavailable;

fn store_error(e: sqlx::Error) -> anyhow::Error {
    if crate::error::is_unreachable(&e) {
        tracing::error!(error = %e, "the session store cannot reach the database");
        anyhow::Error::new(StoreUnavailable)
    } else {
        e.into()
    }
}

fn expiry(now: i64, ttl: &Duration) -> i64 {
    now.saturating_add(ttl.whole_seconds())
}

impl SessionStore for DbSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| LoadError::Other(store_error(e)))?;
        let state = sessions::load(&mut conn, &hash_key(key.as_ref()), self.clock.unix())
            .await
            .map_err(|e| LoadError::Other(store_error(e)))?;
        match state {
            None => Ok(None),
            Some(raw) => serde_json::from_str(&raw)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
        }
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let body = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = Alphanumeric.sample_string(&mut rand::rng(), 64);
        let now = self.clock.unix();
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| SaveError::Other(store_error(e)))?;
        sessions::insert(
            &mut conn,
            &hash_key(&key),
            &body,
            &facts_of(&state),
            now,
            expiry(now, ttl),
        )
        .await
        .map_err(|e| SaveError::Other(store_error(e)))?;
        SessionKey::try_from(key).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let now = self.clock.unix();
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| UpdateError::Other(store_error(e)))?;
        let updated = sessions::update(
            &mut conn,
            &hash_key(key.as_ref()),
            &body,
            &facts_of(&state),
            now,
            expiry(now, ttl),
        )
        .await
        .map_err(|e| UpdateError::Other(store_error(e)))?;
        if updated {
            return Ok(key);
        }
        drop(conn);
        // The session expired or was ended elsewhere meanwhile (sign-out, password change, a
        // disabled account): start a new one, but never signed in.
        let mut state = state;
        for key in [USER_ID, SIGNED_IN_AT, SESSION_ID, DEVICE, CLIENT_IP] {
            state.remove(key);
        }
        self.save(state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let now = self.clock.unix();
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        sessions::touch(&mut conn, &hash_key(key.as_ref()), now, expiry(now, ttl))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        sessions::delete(&mut conn, &hash_key(key.as_ref()))
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
