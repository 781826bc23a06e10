//! Where background work keeps its shared state: the jobs of the [queues](crate::queue) and
//! the cron leases of the [scheduler](crate::schedule).
//!
//! | backend | module | state lives | several instances |
//! |---|---|---|---|
//! | in memory (default) | [`memory`] | this process; lost on exit | no |
//! | SQLite (feature `sqlite`) | `sqlite` | one file; survives a restart | processes on one host |
//! | Redis (feature `redis`) | `redis` | a Redis server | yes |
//!
//! Each backend implements [`QueueStore`](crate::queue::store::QueueStore) and
//! [`TickLease`](crate::schedule::lease::TickLease). Their calls are synchronous; the queue
//! and the scheduler make them on the runtime's blocking pool unless the backend says it
//! answers at once ([`QueueStore::runs_inline`](crate::queue::store::QueueStore::runs_inline)).

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Milliseconds since the Unix epoch: every time a backend stores.
pub type UnixMillis = i64;

/// A backend failed: it could not be reached, or what it holds is not what weft wrote.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend's own error (I/O, connection, SQL, Redis).
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// A stored record could not be read back (a field missing or of the wrong type).
    Corrupt(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Backend(error) => write!(f, "backend error: {error}"),
            StoreError::Corrupt(what) => write!(f, "corrupt record in the backend: {what}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Backend(error) => Some(error.as_ref()),
            StoreError::Corrupt(_) => None,
        }
    }
}
