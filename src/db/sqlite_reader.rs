//! Reads on the caller's own thread, for the one SQLite query on every API request: the key
//! lookup of authentication. sqlx runs each SQLite connection on a thread of its own, so every
//! query is a hand-off to that thread and back; for a point lookup that takes microseconds,
//! the two wake-ups cost more than the query. Here a read-only connection runs the query
//! where it is asked, without waiting: a WAL reader never waits for writers, and a rare busy
//! moment is reported as an error so that the caller can use the pool instead.
//!
//! It is the same SQLite library as sqlx's (one `libsqlite3-sys`), so the two share the
//! process's file locks as SQLite requires.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Idle connections kept for reuse; one per thread that reads at the same time is enough.
const MAX_IDLE: usize = 8;

/// Read-only connections to one SQLite file, opened when first needed.
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    /// A reader for the database at `url`; `None` when it is not a SQLite file.
    pub fn for_url(url: &str) -> Option<Self> {
        if !url.starts_with("sqlite:") {
            return None;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename();
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return None;
        }
        Some(SqliteReader {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `read` on an idle connection, opening one when none is idle.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never block the request's thread: a busy moment is an error the caller handles.
        conn.busy_timeout(Duration::ZERO)?;
        Ok(conn)
    }
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
