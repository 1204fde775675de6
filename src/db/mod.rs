//! The database: one `AnyPool` over SQLite or PostgreSQL, per-backend migrations, SQLite pragmas.

mod pg_reader;
mod sqlite_reader;

pub use pg_reader::{PgReadError, PgReader};
pub use sqlite_reader::{ReadError, SqliteReader};

/// Where key checks read keys without the pool's round trips: a SQLite file on the request's
/// own thread, or PostgreSQL connections of their own.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per process, behind an `Arc`
pub enum Reader {
    Sqlite(SqliteReader),
    Postgres(PgReader),
}

/// A reader's pause after a failure (an open or connect that failed, a read that timed out):
/// until it ends every read goes to the pool at once instead of paying for the failure again.
#[derive(Debug)]
pub struct Rest {
    length: std::time::Duration,
    until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Rest {
    /// Pauses of `length`.
    pub fn of(length: std::time::Duration) -> Self {
        Rest {
            length,
            until: std::sync::Mutex::new(None),
        }
    }

    /// Starts a pause now.
    pub fn start(&self) {
        *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(std::time::Instant::now() + self.length);
    }

    /// Whether a pause is under way.
    pub fn is_on(&self) -> bool {
        self.until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|until| std::time::Instant::now() < until)
    }
}

impl Reader {
    /// The reader for the database at `url`, when there is one (see `SqliteReader::for_url`).
    pub fn for_url(url: &str) -> Option<Self> {
        if let Some(reader) = SqliteReader::for_url(url) {
            return Some(Reader::Sqlite(reader));
        }
        let connections =
            std::thread::available_parallelism().map_or(8, |n| (2 * n.get()).clamp(4, 16));
        PgReader::for_url(url, connections).map(Reader::Postgres)
    }
}

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend behind a pool.
    pub fn of_pool(pool: &AnyPool) -> Self {
        if pool.connect_options().database_url.scheme() == "sqlite" {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// Tells the backend from a database URL.
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

/// Opens a pool. SQLite gets WAL, a busy timeout and foreign keys on every connection.
pub async fn connect(url: &str) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url);
    if backend == Backend::Sqlite {
        ensure_sqlite_dir(url)?;
    }
    let options = AnyConnectOptions::from_str(url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        })
        .min_connections(1)
        // A SQLite file cannot drop a connection; pinging it before each use is a wasted round
        // trip to its worker thread. PostgreSQL connections are still checked.
        .test_before_acquire(backend == Backend::Postgres)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies the migrations of the pool's backend (and, on PostgreSQL, gathers planner
/// statistics for the small tables of the key lookup).
pub async fn migrate(pool: &AnyPool, backend: Backend) -> anyhow::Result<()> {
    match backend {
        Backend::Sqlite => SQLITE_MIGRATIONS.run(pool).await?,
        Backend::Postgres => {
            POSTGRES_MIGRATIONS.run(pool).await?;
            // The tables behind a key's permissions hold a few dozen rows from the migrations,
            // too few for autovacuum ever to analyze them; without statistics the key lookup's
            // joins were planned for ten pages each and ran at two thirds of their speed.
            pool.execute(
                "ANALYZE users, user_groups, roles, role_permissions, group_roles, group_members, \
                 key_roles, key_groups",
            )
            .await?;
        }
    }
    Ok(())
}

/// Whether an error is a unique-constraint violation (a duplicate email, name or row).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .map(|d| d.is_unique_violation())
        .unwrap_or(false)
}

/// Whether an error is a foreign-key violation (a row pointing at one deleted meanwhile).
pub fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .map(|d| d.is_foreign_key_violation())
        .unwrap_or(false)
}

/// The SQLite file's directory (private when keyward creates it) and the file itself, created
/// readable by keyward's account only before SQLite opens it: SQLite gives the WAL and
/// shared-memory files the database file's mode.
fn ensure_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let Some(path) = crate::files::sqlite_path(url) else {
        return Ok(());
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        crate::files::private_dir(parent)?;
    }
    crate::files::create_private_file(&path)?;
    Ok(())
}

/// Starts a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so that a transaction that reads before it writes waits its turn behind
/// other writers (busy timeout) instead of failing when its read snapshot goes stale.
pub async fn begin_write(pool: &AnyPool) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
    if Backend::of_pool(pool) == Backend::Sqlite {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}
