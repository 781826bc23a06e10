//! What both sides share: the job's payload, the completion counter the handlers bump, the
//! scenario being measured and what one measurement gives.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long one phase (enqueueing N jobs, or processing them) may take before the run is
/// abandoned as failed: far above any expected figure, so that a stuck library shows as an
/// error rather than a hang.
pub const PHASE_BOUND: Duration = Duration::from_secs(600);

/// How often an idle consumer looks at the store, on both sides (weft's default; apalis's
/// SQLite and Redis backends otherwise wait for their 30 s heartbeat after an empty fetch).
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The job's data: a small JSON object, the same for both libraries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// Its number in the run.
    pub seq: u64,
    /// A short string, as a mail job would carry.
    pub to: String,
}

impl Payload {
    /// The `seq`-th job's payload.
    pub fn new(seq: u64) -> Self {
        Payload {
            seq,
            to: format!("user{seq}@example.com"),
        }
    }
}

/// Where the jobs live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// In the process (weft's `MemoryBackend`, apalis's `MemoryStorage`).
    Memory,
    /// One SQLite file.
    Sqlite,
    /// A Redis server.
    Redis,
}

impl Store {
    /// Its name in the table and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Sqlite => "sqlite",
            Store::Redis => "redis",
        }
    }
}

/// How enqueueing and processing are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Enqueue N jobs, then start the consumers and process them: two timings.
    Phased,
    /// Start the consumers, then enqueue N jobs while they run: one timing, to the last job
    /// processed.
    Mixed,
}

impl Mode {
    /// Its name in the table and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Phased => "phased",
            Mode::Mixed => "mixed",
        }
    }
}

/// One measurement's settings.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Where the jobs live.
    pub store: Store,
    /// How many jobs run at once.
    pub consumers: usize,
    /// How many jobs.
    pub jobs: u64,
    /// Phased or mixed.
    pub mode: Mode,
    /// The SQLite file (removed before each run, with its WAL files).
    pub sqlite_path: PathBuf,
    /// The Redis server's URL (flushed before each run).
    pub redis_url: String,
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Adding the N jobs (phased), or adding and processing them together (mixed).
    pub enqueue: Duration,
    /// From starting the consumers to all N jobs processed and the consumers stopped
    /// (phased); zero in mixed mode.
    pub process: Duration,
}

/// Counts completed jobs and wakes whoever waits for the last one.
#[derive(Debug)]
pub struct Counter {
    done: AtomicU64,
    target: u64,
    finished: Mutex<bool>,
    wake: Condvar,
    notify: tokio::sync::Notify,
}

impl Counter {
    /// A counter that is finished after `target` jobs.
    pub fn new(target: u64) -> Self {
        Counter {
            done: AtomicU64::new(0),
            target,
            finished: Mutex::new(false),
            wake: Condvar::new(),
            notify: tokio::sync::Notify::new(),
        }
    }

    /// One more job processed: the handler's only work.
    pub fn hit(&self) {
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            *self.finished.lock().unwrap_or_else(PoisonError::into_inner) = true;
            self.wake.notify_all();
            self.notify.notify_one();
        }
    }

    /// How many jobs were processed.
    pub fn count(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Blocks until the target is reached; `false` after `bound`.
    pub fn wait(&self, bound: Duration) -> bool {
        let finished = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
        let (finished, _) = self
            .wake
            .wait_timeout_while(finished, bound, |finished| !*finished)
            .unwrap_or_else(PoisonError::into_inner);
        *finished
    }

    /// Completes when the target is reached (one waiter).
    pub async fn finished(&self) {
        self.notify.notified().await;
    }
}

/// A failed run: which step, and why.
#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// An error of `step`.
pub fn fail(step: &str, error: impl std::fmt::Display) -> RunError {
    RunError(format!("{step}: {error}"))
}

/// Removes the SQLite file and its WAL and shared-memory files, so each run starts fresh.
pub fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// Empties the Redis database, so each run starts with no keys of the other library's or an
/// earlier run's.
pub fn flush_redis(url: &str) -> Result<(), RunError> {
    let client = redis::Client::open(url).map_err(|e| fail("redis client", e))?;
    let mut connection = client
        .get_connection()
        .map_err(|e| fail("redis connect", e))?;
    redis::cmd("FLUSHALL")
        .query::<()>(&mut connection)
        .map_err(|e| fail("redis FLUSHALL", e))
}
