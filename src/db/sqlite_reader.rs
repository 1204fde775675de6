//! Reads on the caller's own thread, for the one SQLite query on every API request: the key
//! lookup of authentication. sqlx runs each SQLite connection on a thread of its own, so every
//! query is a hand-off to that thread and back; for a point lookup that takes microseconds,
//! the two wake-ups cost more than the query. Here a read-only connection runs the query
//! where it is asked: a WAL reader does not wait for writers, and a rare busy moment is
//! reported as an error so that the caller can use the pool instead.
//!
//! It is the same SQLite library as sqlx's (one `libsqlite3-sys`), so the two share the
//! process's file locks as SQLite requires.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How long a reader that could not open its file rests before trying again; meanwhile every
/// read goes to the pool at once instead of paying for a failed open.
const REST: Duration = Duration::from_secs(60);

/// Read-only connections to one SQLite file, opened when first needed.
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Idle connections kept: one per thread that may read at the same time.
    max_idle: usize,
    /// Begun when opening failed.
    rest: super::Rest,
}

/// Why the reader did not answer; the caller uses the pool instead.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the reader is resting after failing to open the database")]
    Resting,
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl SqliteReader {
    /// A reader for the database at `url`; `None` unless it is a plain SQLite file. An
    /// in-memory database, a `file:` URI or a URL naming a VFS or immutable mode is left to
    /// the pool, which is the only thing that would open it the same way.
    pub fn for_url(url: &str) -> Option<Self> {
        if !url.starts_with("sqlite:") {
            return None;
        }
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let special = query.split('&').any(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            name == "vfs" || name == "immutable" || (name == "mode" && value == "memory")
        });
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename();
        let name = path.to_string_lossy();
        if special || name.is_empty() || name == ":memory:" || name.starts_with("file:") {
            return None;
        }
        Some(SqliteReader {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            max_idle: std::thread::available_parallelism().map_or(8, |n| n.get().max(8)),
            rest: super::Rest::of(REST),
        })
    }

    /// Runs `read` on an idle connection, opening one when none is idle.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, ReadError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(conn);
        }
        Ok(result?)
    }

    /// Whether the reader is resting after a failed open.
    pub fn is_resting(&self) -> bool {
        self.rest.is_on()
    }

    fn open(&self) -> Result<Connection, ReadError> {
        if self.is_resting() {
            return Err(ReadError::Resting);
        }
        let opened = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|conn| {
            // Do not wait on the request's thread: a busy moment is an error the caller
            // handles (SQLite may still retry a WAL read briefly inside the call).
            conn.busy_timeout(Duration::ZERO)?;
            Ok(conn)
        });
        if opened.is_err() {
            self.rest.start();
        }
        Ok(opened?)
    }
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_sqlite_files_get_a_reader() {
        assert!(SqliteReader::for_url("sqlite:///var/lib/keyward/keyward.db?mode=rwc").is_some());
        assert!(SqliteReader::for_url("sqlite://data/keyward.db").is_some());
        for url in [
            "postgres://keyward@localhost/keyward",
            "sqlite::memory:",
            "sqlite://keyward.db?mode=memory",
            "sqlite://keyward.db?vfs=unix-dotfile",
            "sqlite://keyward.db?immutable=true",
        ] {
            assert!(SqliteReader::for_url(url).is_none(), "{url}");
        }
    }

    #[test]
    fn a_reader_that_cannot_open_rests_instead_of_retrying_each_time() {
        let reader = SqliteReader::for_url("sqlite:///nonexistent-keyward-dir/none.db").unwrap();
        assert!(matches!(reader.read(|_| Ok(())), Err(ReadError::Sqlite(_))));
        assert!(reader.is_resting());
        assert!(matches!(reader.read(|_| Ok(())), Err(ReadError::Resting)));
    }
}
