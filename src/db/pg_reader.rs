//! Connections of their own for the one PostgreSQL query on every API request: the key lookup
//! of authentication. A connection taken from sqlx's pool is pinged when it is taken and again
//! when it is given back, so a point lookup there costs three round trips to the server, each
//! waking a PostgreSQL process; here it costs one. A connection goes back to the idle list only
//! after a query on it succeeded in time; one that failed or timed out is closed and the caller
//! uses the pool instead, so a broken connection costs one request a detour, never an error.
//! (One whose request was dropped half-way is closed too.)

use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a reader that could not connect, or did not answer in time, rests before trying
/// again; meanwhile every read goes to the pool at once.
const REST: Duration = Duration::from_secs(10);

/// Connections idle longer than this are closed rather than used: a server setting
/// (`idle_session_timeout`), a proxy or a firewall may have ended them meanwhile.
const IDLE_LIMIT: Duration = Duration::from_secs(240);

/// The longest a read may take, waiting for a connection included; a key lookup takes well
/// under a millisecond. Past it the read is dropped (its connection closed), the reader rests
/// and the caller uses the pool, whose own timeouts then apply.
const TIME_LIMIT: Duration = Duration::from_secs(3);

/// Why the reader did not answer; the caller uses the pool instead.
#[derive(Debug, thiserror::Error)]
pub enum PgReadError {
    #[error("the reader is resting after failing to connect or answer")]
    Resting,
    #[error("the read took longer than {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// A few PostgreSQL connections for key lookups, opened when first needed.
pub struct PgReader {
    options: PgConnectOptions,
    /// Idle connections with the time each was given back, most recent last.
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    /// One permit per connection that may be open at once.
    permits: Semaphore,
    time_limit: Duration,
    /// Begun when connecting failed or a read timed out.
    rest: super::Rest,
}

impl PgReader {
    /// A reader for the database at `url`; `None` unless it is a PostgreSQL URL. At most
    /// `connections` are open at once (a read waits for one rather than opening more).
    pub fn for_url(url: &str, connections: usize) -> Option<Self> {
        if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            return None;
        }
        let options = PgConnectOptions::from_str(url)
            .ok()?
            .application_name("keyward key checks");
        Some(PgReader {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(connections.max(1)),
            time_limit: TIME_LIMIT,
            rest: super::Rest::of(REST),
        })
    }

    /// The same reader with another time limit (tests).
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Runs `read` on a connection: an idle one, or a new one while fewer than the limit are
    /// open. The connection goes back to the idle list only when `read` succeeded within the
    /// time limit; otherwise it is closed.
    pub async fn read<T>(
        &self,
        read: impl AsyncFnOnce(&mut PgConnection) -> sqlx::Result<T>,
    ) -> Result<T, PgReadError> {
        let attempt = async {
            let mut lease = self.lease().await?;
            let value = read(lease.conn()).await?;
            lease.keep();
            Ok(value)
        };
        match tokio::time::timeout(self.time_limit, attempt).await {
            Ok(result) => result,
            Err(_) => {
                self.rest.start();
                Err(PgReadError::TimedOut(self.time_limit))
            }
        }
    }

    /// Whether the reader is resting after a failed connect or a read that timed out.
    pub fn is_resting(&self) -> bool {
        self.rest.is_on()
    }

    async fn lease(&self) -> Result<Lease<'_>, PgReadError> {
        if self.is_resting() {
            return Err(PgReadError::Resting);
        }
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PgReadError::Resting)?;
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            // Oldest first: close the ones idle too long.
            idle.retain(|(_, since)| since.elapsed() < IDLE_LIMIT);
            idle.pop()
        };
        let conn = match idle {
            Some((conn, _)) => conn,
            // Connecting failed for someone while this read waited: do not try again now.
            None if self.is_resting() => return Err(PgReadError::Resting),
            None => match self.options.connect().await {
                Ok(conn) => conn,
                Err(e) => {
                    self.rest.start();
                    return Err(e.into());
                }
            },
        };
        Ok(Lease {
            reader: self,
            conn: Some(conn),
            keep: false,
            _permit: permit,
        })
    }
}

/// One connection of a [`PgReader`], closed on drop unless [`Lease::keep`] was called.
struct Lease<'r> {
    reader: &'r PgReader,
    conn: Option<PgConnection>,
    keep: bool,
    _permit: SemaphorePermit<'r>,
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// Gives the connection back to the idle list when the lease ends.
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // A connection not kept is in an unknown state: dropping it closes its socket, and
        // the server ends its session.
        if self.keep
            && let Some(conn) = self.conn.take()
        {
            self.reader
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((conn, Instant::now()));
        }
    }
}

impl std::fmt::Debug for PgReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReader")
            .field("host", &self.options.get_host())
            .field("database", &self.options.get_database())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_urls_get_a_reader() {
        assert!(PgReader::for_url("postgres://keyward@localhost/keyward", 4).is_some());
        assert!(
            PgReader::for_url("postgresql://keyward@db:5433/keyward?sslmode=require", 4).is_some()
        );
        assert!(PgReader::for_url("sqlite://data/keyward.db", 4).is_none());
    }

    #[tokio::test]
    async fn a_reader_that_cannot_connect_rests_instead_of_retrying_each_time() {
        // Port 1 on loopback: nothing listens there, so connecting fails at once.
        let reader = PgReader::for_url("postgres://keyward@127.0.0.1:1/keyward", 2).unwrap();
        let read = async || reader.read(async |_| Ok(())).await;
        assert!(matches!(read().await, Err(PgReadError::Sqlx(_))));
        assert!(reader.is_resting());
        assert!(matches!(read().await, Err(PgReadError::Resting)));
    }
}
