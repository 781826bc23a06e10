//! The peer: apalis 1.0 with its SQLite (`apalis-sqlite`, on sqlx), Redis (`apalis-redis`)
//! and in-memory (`MemoryStorage`) backends, on a tokio runtime.
//!
//! One worker per run, with `.concurrency(n)` (tower's concurrency limit: at most `n` jobs
//! in flight in that worker). Each backend keeps its defaults (batches of 10 fetched jobs,
//! locks and results recorded) except the idle poll, set to [`POLL_INTERVAL`] as weft's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqliteStorage};

use crate::common::{
    Counter, Mode, PHASE_BOUND, POLL_INTERVAL, Payload, RunError, Sample, Scenario, Store, fail,
    flush_redis, remove_sqlite_files,
};

/// The handler: counts the job, nothing else.
async fn noop(job: Payload, counter: Data<Arc<Counter>>) -> Result<(), BoxDynError> {
    std::hint::black_box(job);
    counter.hit();
    Ok(())
}

// apalis's worker and sink traits carry many bounds that differ per backend (its own
// `BackendConfig`, codecs, sinks of encoded tasks): the steps below are macros, expanded for each
// concrete backend, rather than generic functions that would restate those bounds.

/// Adds `$jobs` jobs to `$producer` one at a time (one `push` each, as an application adds
/// them).
macro_rules! push_all {
    ($producer:expr, $jobs:expr) => {{
        let mut result = Ok(());
        for seq in 0..$jobs {
            if let Err(error) = $producer.push(Payload::new(seq)).await {
                result = Err(fail("apalis push", format!("{error:?}")));
                break;
            }
        }
        result
    }};
}

/// Starts a worker on `$storage`, waits for the scenario's jobs to be processed, stops the
/// worker and waits for it to finish (its last acknowledgements written): the time of all
/// that.
macro_rules! consume {
    ($storage:expr, $scenario:expr) => {{
        let scenario: &Scenario = $scenario;
        let counter = Arc::new(Counter::new(scenario.jobs));
        let started = Instant::now();
        let worker = WorkerBuilder::new("jobs-bench")
            .backend($storage)
            .data(Arc::clone(&counter))
            .concurrency(scenario.consumers)
            .build(noop);
        let done = {
            let counter = Arc::clone(&counter);
            async move {
                match tokio::time::timeout(PHASE_BOUND, counter.finished()).await {
                    Ok(()) => Ok::<(), std::io::Error>(()),
                    Err(_) => Err(std::io::Error::other(
                        "the jobs were not all processed in time",
                    )),
                }
            }
        };
        let result = worker.run_until(done).await;
        let elapsed = started.elapsed();
        match result {
            Err(error) => Err(fail("apalis worker", error)),
            Ok(()) if counter.count() < scenario.jobs => Err(RunError(format!(
                "apalis processed {} of {} jobs",
                counter.count(),
                scenario.jobs
            ))),
            Ok(()) => Ok(elapsed),
        }
    }};
}

/// The phased or the mixed measurement on a persistent backend: a clone of the storage
/// pushes while the original is consumed.
macro_rules! measure {
    ($storage:expr, $scenario:expr) => {{
        let storage = $storage;
        let scenario: &Scenario = $scenario;
        let mut producer = storage.clone();
        match scenario.mode {
            Mode::Phased => {
                let started = Instant::now();
                push_all!(producer, scenario.jobs)?;
                let enqueue = started.elapsed();
                let process = consume!(storage, scenario)?;
                Ok(Sample { enqueue, process })
            }
            Mode::Mixed => {
                let started = Instant::now();
                let consumer = tokio::spawn({
                    let scenario = scenario.clone();
                    async move { consume!(storage, &scenario) }
                });
                push_all!(producer, scenario.jobs)?;
                consumer
                    .await
                    .map_err(|e| fail("apalis consumer task", e))??;
                Ok(Sample {
                    enqueue: started.elapsed(),
                    process: Duration::ZERO,
                })
            }
        }
    }};
}

/// Runs `scenario` once on a fresh tokio runtime (multi-threaded, a worker per core, as
/// `#[tokio::main]` makes).
pub fn run(scenario: &Scenario) -> Result<Sample, RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail("tokio runtime", e))?;
    runtime.block_on(async {
        match scenario.store {
            Store::Memory => memory(scenario).await,
            Store::Sqlite => sqlite(scenario).await,
            Store::Redis => redis(scenario).await,
        }
    })
}

/// In memory: apalis's `MemoryStorage` is a channel (no lease, no retry), so only the phased
/// mode (the storage moves into its worker, and no handle to push through is left).
async fn memory(scenario: &Scenario) -> Result<Sample, RunError> {
    let mut storage = MemoryStorage::<Payload>::new();
    let started = Instant::now();
    push_all!(storage, scenario.jobs)?;
    let enqueue = started.elapsed();
    let process = consume!(storage, scenario)?;
    Ok(Sample { enqueue, process })
}

/// On the SQLite file: a fresh file, apalis's own set-up (WAL, its pragmas, its migrations).
async fn sqlite(scenario: &Scenario) -> Result<Sample, RunError> {
    remove_sqlite_files(&scenario.sqlite_path);
    let options = SqliteConnectOptions::new()
        .filename(&scenario.sqlite_path)
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options)
        .await
        .map_err(|e| fail("apalis sqlite connect", e))?;
    SqliteStorage::setup(&pool)
        .await
        .map_err(|e| fail("apalis sqlite setup", e))?;
    let storage = SqliteStorage::<Payload>::new(&pool).poll_with_interval(POLL_INTERVAL);
    let sample = measure!(storage, scenario);
    pool.close().await;
    sample
}

/// On the Redis server, flushed first; one multiplexed connection (a `ConnectionManager`, as
/// `apalis_redis::connect` gives).
async fn redis(scenario: &Scenario) -> Result<Sample, RunError> {
    flush_redis(&scenario.redis_url)?;
    let connection = apalis_redis::connect(scenario.redis_url.as_str())
        .await
        .map_err(|e| fail("apalis redis connect", e))?;
    let storage = RedisStorage::<Payload>::new(connection).poll_with_interval(POLL_INTERVAL);
    measure!(storage, scenario)
}
