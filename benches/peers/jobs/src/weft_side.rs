//! weft's side: a [`Queue`] on the memory, SQLite or Redis backend, and a [`Worker`] with
//! `.concurrency(n)` (n slots, each a task that takes a job, runs it, records the outcome and
//! takes the next), both on weft's background runtime (one task thread; the store calls of
//! the SQLite and Redis backends go to its blocking pool), as an app's would run.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weft::backend::memory::MemoryBackend;
use weft::backend::redis::RedisBackend;
use weft::backend::sqlite::SqliteBackend;
use weft::background::Background;
use weft::queue::store::QueueStore;
use weft::queue::{Job, Queue, Worker};
use weft_service::runtime::RuntimeHandle;

use crate::common::{
    Counter, Mode, PHASE_BOUND, POLL_INTERVAL, Payload, RunError, Sample, Scenario, Store, fail,
    flush_redis, remove_sqlite_files,
};

/// The job name the worker handles.
const JOB: &str = "noop";

/// Runs `scenario` once.
pub fn run(scenario: &Scenario) -> Result<Sample, RunError> {
    let store = open(scenario)?;
    let sample = measure(scenario, Arc::clone(&store));
    close(store)?;
    sample
}

/// Waits until `store` is only referenced here (the worker's tasks, which hold it, end a
/// little after the worker stops), then drops it: the SQLite file is closed (its last
/// connection checkpoints and removes the `-wal` file by name) before apalis's run removes
/// and re-creates the file.
fn close(store: Arc<dyn QueueStore>) -> Result<(), RunError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Arc::strong_count(&store) > 1 {
        if Instant::now() > deadline {
            return Err(RunError(
                "weft's store is still in use 30 s after the run".to_owned(),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(store);
    Ok(())
}

/// The phased or the mixed measurement.
fn measure(scenario: &Scenario, store: Arc<dyn QueueStore>) -> Result<Sample, RunError> {
    let queue = Queue::new("jobs-bench", store);
    let runtime = weft_runtime::background_runtime();
    match scenario.mode {
        Mode::Phased => {
            let started = Instant::now();
            enqueue(&runtime, &queue, scenario.jobs)?;
            let enqueue = started.elapsed();
            let counter = Arc::new(Counter::new(scenario.jobs));
            let started = Instant::now();
            let worker = start_worker(&runtime, &queue, scenario, &counter)?;
            finish(&worker, &counter, scenario)?;
            Ok(Sample {
                enqueue,
                process: started.elapsed(),
            })
        }
        Mode::Mixed => {
            let counter = Arc::new(Counter::new(scenario.jobs));
            let started = Instant::now();
            let worker = start_worker(&runtime, &queue, scenario, &counter)?;
            enqueue(&runtime, &queue, scenario.jobs)?;
            finish(&worker, &counter, scenario)?;
            Ok(Sample {
                enqueue: started.elapsed(),
                process: Duration::ZERO,
            })
        }
    }
}

/// The scenario's store, empty: a fresh SQLite file, a flushed Redis server.
fn open(scenario: &Scenario) -> Result<Arc<dyn QueueStore>, RunError> {
    Ok(match scenario.store {
        Store::Memory => Arc::new(MemoryBackend::new()),
        Store::Sqlite => {
            remove_sqlite_files(&scenario.sqlite_path);
            Arc::new(
                SqliteBackend::open(&scenario.sqlite_path)
                    .map_err(|e| fail("weft sqlite open", e))?,
            )
        }
        Store::Redis => {
            flush_redis(&scenario.redis_url)?;
            Arc::new(
                RedisBackend::connect(&scenario.redis_url)
                    .map_err(|e| fail("weft redis connect", e))?,
            )
        }
    })
}

/// Adds `jobs` jobs one at a time from a task on the runtime (as a request handler adds
/// them), and waits for the last one to be stored.
fn enqueue(runtime: &RuntimeHandle, queue: &Queue, jobs: u64) -> Result<(), RunError> {
    let (sender, receiver) = mpsc::channel();
    let queue = queue.clone();
    runtime.spawn(async move {
        let mut result = Ok(());
        for seq in 0..jobs {
            if let Err(error) = queue.add(JOB, &Payload::new(seq)).await {
                result = Err(fail("weft add", error));
                break;
            }
        }
        let _ = sender.send(result);
    });
    receiver
        .recv_timeout(PHASE_BOUND)
        .map_err(|e| fail("weft enqueue did not finish", e))?
}

/// Starts a worker whose handler counts the job.
fn start_worker(
    runtime: &RuntimeHandle,
    queue: &Queue,
    scenario: &Scenario,
    counter: &Arc<Counter>,
) -> Result<Worker, RunError> {
    let counter = Arc::clone(counter);
    let worker = Worker::new(queue.clone())
        .concurrency(scenario.consumers)
        .poll_interval(POLL_INTERVAL)
        .handle(JOB, move |job: Job<Payload>| {
            let counter = Arc::clone(&counter);
            async move {
                std::hint::black_box(job.data());
                counter.hit();
                Ok::<(), std::convert::Infallible>(())
            }
        });
    worker
        .start(runtime)
        .map_err(|e| fail("weft worker start", e))?;
    Ok(worker)
}

/// Waits for every job to be processed, then stops the worker and waits for its slots to
/// exit (each records its last job's completion before it does).
fn finish(worker: &Worker, counter: &Counter, scenario: &Scenario) -> Result<(), RunError> {
    let processed = counter.wait(PHASE_BOUND);
    worker.begin_stop();
    let stopped = worker.wait_stopped(Instant::now() + PHASE_BOUND);
    if !processed {
        return Err(RunError(format!(
            "weft processed {} of {} jobs",
            counter.count(),
            scenario.jobs
        )));
    }
    if !stopped {
        return Err(RunError("weft worker did not stop".to_owned()));
    }
    Ok(())
}
