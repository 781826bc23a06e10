//! The SQLite backend: one file, survives a restart, shared by the processes of one host.
//!
//! [`SqliteBackend::open`] opens (or creates) a database file and its tables (`weft_jobs`
//! for the [queues](crate::queue), `weft_ticks` for the cron leases of the
//! [scheduler](crate::schedule); the `weft_` prefix lets them live beside an app's own tables).
//! The file is in WAL mode with `synchronous=NORMAL`: a committed call survives the process
//! being killed (the last ones may be lost on a power cut), and readers do not block the
//! writer.
//!
//! # Several processes, one file
//! Every call is one SQLite transaction that takes the write lock before it reads (a single
//! `UPDATE`/`INSERT`/`DELETE` statement does; calls of several statements open the
//! transaction with `BEGIN IMMEDIATE`), so two processes, or two backends in one process,
//! never reserve the same job: the second waits for the first to commit, then sees the job
//! taken. A writer waits up to [`BUSY_TIMEOUT`] for the lock before the call fails.
//!
//! # One connection per backend
//! A backend holds one connection behind a mutex: its calls are serialised. SQLite admits one
//! writer at a time per file anyway, and nearly every call writes: with 8 threads reserving
//! and completing no-op jobs on a 2-core machine, a pool of 4 connections (or 8 backends)
//! was no faster than one connection, within the measurement's noise. Open several backends
//! on the file to read (`counts`, `get`) beside a busy writer.

mod jobs;
mod schema;
mod ticks;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use crate::backend::StoreError;

/// How long a call waits for another connection's write lock before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL pages (4 KiB each) written before SQLite copies them back into the database file:
/// 10 times SQLite's default. Every job call rewrites the same few hot pages (the tail of
/// the due index), so a longer WAL means far fewer page copies and fsyncs per job: about
/// 1.5 times the throughput on a disk, for a WAL file of up to 40 MiB.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// The size the WAL file is truncated back to after a checkpoint, should it have grown past
/// it (a long read holding a checkpoint back).
const WAL_SIZE_LIMIT_BYTES: i64 = 64 << 20;

/// A queue store and cron-lease store in one SQLite file.
///
/// It implements [`QueueStore`](crate::queue::store::QueueStore) and
/// [`TickLease`](crate::schedule::lease::TickLease); see the [module docs](self) for how
/// several processes share the file.
pub struct SqliteBackend {
    connection: Mutex<Connection>,
    /// The file, or `None` in memory: for `Debug`.
    path: Option<PathBuf>,
}

impl SqliteBackend {
    /// Opens the database at `path`, creating the file and weft's tables if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteBackend, StoreError> {
        let path = path.as_ref();
        let connection = Connection::open(path).map_err(store_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
        // WAL: readers do not block the writer, and a commit appends instead of rewriting
        // pages. NORMAL: no fsync per commit in WAL mode; a commit survives the process.
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(store_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(Box::new(OpenError::NotWal { mode })));
        }
        SqliteBackend::with_connection(connection, Some(path.to_path_buf()))
    }

    /// A database in this process's memory, lost when the backend is dropped: for tests.
    pub fn in_memory() -> Result<SqliteBackend, StoreError> {
        let connection = Connection::open_in_memory().map_err(store_error)?;
        SqliteBackend::with_connection(connection, None)
    }

    /// Sets the pragmas every connection needs and creates the schema.
    fn with_connection(
        mut connection: Connection,
        path: Option<PathBuf>,
    ) -> Result<SqliteBackend, StoreError> {
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(store_error)?;
        connection
            .pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(store_error)?;
        let _limit: i64 = connection
            .query_row(
                &format!("PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}"),
                [],
                |row| row.get(0),
            )
            .map_err(store_error)?;
        schema::create(&mut connection)?;
        Ok(SqliteBackend {
            connection: Mutex::new(connection),
            path,
        })
    }

    /// Runs `call` on the connection, holding it for the call.
    fn with<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        call(&mut self.lock()).map_err(store_error)
    }

    /// The connection. A panic while it was held cannot leave a transaction open (rusqlite
    /// rolls back on drop), so a poisoned lock is still a usable connection.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(path) => f.debug_struct("SqliteBackend").field("path", path).finish(),
            None => f
                .debug_struct("SqliteBackend")
                .field("path", &":memory:")
                .finish(),
        }
    }
}

/// Why [`SqliteBackend::open`] refused a file (inside [`StoreError::Backend`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// SQLite would not put the file in WAL mode (it answered this journal mode), which
    /// several processes sharing it need.
    NotWal {
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// The file's weft tables were written by a newer weft, whose schema this one cannot read.
    SchemaTooNew {
        /// The file's schema version.
        found: i64,
        /// The newest version this weft reads.
        supported: i64,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotWal { mode } => {
                write!(
                    f,
                    "SQLite refused WAL mode for the file (journal mode {mode})"
                )
            }
            OpenError::SchemaTooNew { found, supported } => write!(
                f,
                "the file's weft schema is version {found}, newer than this weft's ({supported})"
            ),
        }
    }
}

impl std::error::Error for OpenError {}

/// A stored value weft cannot read back is [`StoreError::Corrupt`]; anything else is
/// SQLite's own error.
fn store_error(error: rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(error.to_string()),
        other => StoreError::Backend(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sets_wal_normal_sync_busy_timeout_and_the_longer_checkpoint_interval() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(dir.path().join("q.db")).unwrap();
        let pragma = |name: &str| -> String {
            backend
                .with(|connection| {
                    connection.query_row(&format!("PRAGMA {name}"), [], |row| {
                        row.get::<_, rusqlite::types::Value>(0)
                    })
                })
                .map(|value| format!("{value:?}"))
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), r#"Text("wal")"#);
        assert_eq!(pragma("synchronous"), "Integer(1)", "NORMAL");
        assert_eq!(pragma("busy_timeout"), "Integer(10000)");
        assert_eq!(pragma("wal_autocheckpoint"), "Integer(10000)");
        assert_eq!(
            pragma("journal_size_limit"),
            format!("Integer({})", 64 << 20)
        );
        assert_eq!(pragma("user_version"), "Integer(1)");
    }

    #[test]
    fn a_schema_from_a_newer_weft_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        drop(SqliteBackend::open(&path).unwrap());
        let connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "user_version", 2).unwrap();
        drop(connection);
        let error = SqliteBackend::open(&path).unwrap_err();
        let StoreError::Backend(error) = error else {
            panic!("not a backend error: {error}");
        };
        assert_eq!(
            error.downcast_ref::<OpenError>(),
            Some(&OpenError::SchemaTooNew {
                found: 2,
                supported: 1
            })
        );
    }
}
