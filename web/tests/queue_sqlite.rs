//! The SQLite backend: the `QueueStore` contract (`support/queue_conformance.rs`), tick
//! claims, data surviving a reopen, several connections on one file, and a worker process
//! killed mid-job (issue 14's "nothing is lost"). Every database is a file in a temporary
//! directory.
#![cfg(feature = "sqlite")]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use weft::backend::sqlite::SqliteBackend;
use weft::background::Background;
use weft::clock::unix_millis;
use weft::queue::store::{Backoff, JobState, NewJob, Priority, QueueCounts, QueueStore};
use weft::queue::{Job, Queue, Worker};
use weft::schedule::lease::TickLease;

#[path = "support/queue_conformance.rs"]
mod queue_conformance;

/// A fixed "now" for the tests that drive the store by hand.
const T0: i64 = 1_700_000_000_000;

fn job(id: &str, queue: &str) -> NewJob {
    NewJob {
        id: id.to_owned(),
        queue: queue.to_owned(),
        name: "work".to_owned(),
        data: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        priority: Priority::Normal,
        run_at: T0,
        max_attempts: 3,
        backoff: Backoff::Fixed { delay_ms: 10 },
    }
}

fn open(dir: &Path) -> SqliteBackend {
    SqliteBackend::open(dir.join("queue.db")).unwrap()
}

fn reserve_id(store: &SqliteBackend, queue: &str, now: i64) -> Option<String> {
    store
        .reserve(queue, now, now + 1_000)
        .unwrap()
        .map(|reserved| reserved.job.id)
}

#[test]
fn sqlite_backend_keeps_the_queue_contract() {
    let dir = tempfile::tempdir().unwrap();
    let files = AtomicUsize::new(0);
    queue_conformance::run_all(&|| {
        let n = files.fetch_add(1, Ordering::Relaxed);
        Arc::new(SqliteBackend::open(dir.path().join(format!("{n}.db"))).unwrap())
    });
}

#[test]
fn sqlite_backend_runs_on_the_blocking_pool() {
    let store = SqliteBackend::in_memory().unwrap();
    assert!(!QueueStore::runs_inline(&store));
    assert!(!TickLease::runs_inline(&store));
}

#[test]
fn a_tick_is_claimed_once_and_forgotten_after_keep() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let keep = Duration::from_secs(60);
    assert!(store.claim_tick("report", T0, "a", keep).unwrap());
    assert!(!store.claim_tick("report", T0, "b", keep).unwrap());
    assert!(!store.claim_tick("report", T0, "a", keep).unwrap());
    assert!(store.claim_tick("report", T0 + 1_000, "b", keep).unwrap());
    assert!(store.claim_tick("cleanup", T0, "b", keep).unwrap());

    // A claim a minute later prunes the old ones: that tick could be claimed again.
    assert!(store.claim_tick("report", T0 + 60_001, "a", keep).unwrap());
    assert!(store.claim_tick("report", T0, "c", keep).unwrap());
    assert!(!store.claim_tick("report", T0 + 1_000, "c", keep).unwrap());
}

#[test]
fn jobs_and_claims_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut delayed = job("delayed", "q");
    delayed.run_at = T0 + 60_000;
    store.add(delayed, T0).unwrap();
    store.add(job("running", "q"), T0).unwrap();
    store.add(job("waiting", "q"), T0).unwrap();
    let reserved = store.reserve("q", T0, T0 + 30_000).unwrap().unwrap();
    assert!(
        store
            .claim_tick("report", T0, "before", Duration::from_secs(60))
            .unwrap()
    );
    drop(store);

    let store = open(dir.path());
    assert_eq!(
        store.counts("q", T0).unwrap(),
        QueueCounts {
            waiting: 1,
            delayed: 1,
            active: 1,
            dead: 0,
        }
    );
    assert_eq!(store.get("running").unwrap().unwrap(), reserved.job);
    assert!(
        !store
            .claim_tick("report", T0, "after", Duration::from_secs(60))
            .unwrap()
    );
    assert!(store.complete("running", &reserved.token).unwrap());
    assert_eq!(reserve_id(&store, "q", T0).as_deref(), Some("waiting"));
}

#[test]
fn two_connections_on_one_file_never_reserve_the_same_job() {
    const JOBS: usize = 300;
    const THREADS_PER_BACKEND: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let backends = [Arc::new(open(dir.path())), Arc::new(open(dir.path()))];
    for n in 0..JOBS {
        backends[n % 2]
            .add(job(&format!("job-{n}"), "q"), T0)
            .unwrap();
    }
    let barrier = Arc::new(Barrier::new(2 * THREADS_PER_BACKEND));
    let threads: Vec<_> = (0..2 * THREADS_PER_BACKEND)
        .map(|n| {
            let store = Arc::clone(&backends[n % 2]);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut taken = Vec::new();
                while let Some(reserved) = store.reserve("q", T0, T0 + 600_000).unwrap() {
                    assert!(store.complete(&reserved.job.id, &reserved.token).unwrap());
                    taken.push(reserved.job.id);
                }
                taken
            })
        })
        .collect();
    let mut all = Vec::new();
    for thread in threads {
        all.extend(thread.join().unwrap());
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), JOBS, "every job taken once");
    assert_eq!(distinct.len(), JOBS, "no job taken twice");
    assert_eq!(backends[0].counts("q", T0).unwrap(), QueueCounts::default());
}

// ---- A worker process killed mid-job --------------------------------------------------------

/// The queue the kill test's jobs are in.
const KILL_QUEUE: &str = "kill";
/// Set (to the database's path) in a worker process's environment: makes
/// [`kill_test_worker_process`] act as the worker.
const WORKER_DB: &str = "WEFT_SQLITE_TEST_WORKER_DB";
/// Where the worker records each completion: a file `<job id>.<attempt>` per job run to its end.
const WORKER_DONE: &str = "WEFT_SQLITE_TEST_WORKER_DONE";
/// When set to n, the worker hangs inside the n-th job it takes (after writing the job's id
/// to `hung` beside the database), so that the test kills it mid-job for certain.
const WORKER_HANG_AT: &str = "WEFT_SQLITE_TEST_WORKER_HANG_AT";
/// The worker's lease: how soon after the kill the in-flight job is due again.
const WORKER_LEASE: Duration = Duration::from_millis(1_500);
/// How long each job runs.
const JOB_RUN: Duration = Duration::from_millis(60);

/// A worker process, killed when dropped, so no exit path of the test leaves it running.
struct WorkerProcess(Child);

impl WorkerProcess {
    /// Re-executes this test binary to run [`kill_test_worker_process`] as the worker.
    fn start(db: &Path, done: &Path, hang_at: Option<u32>) -> WorkerProcess {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "kill_test_worker_process", "--nocapture"])
            .env(WORKER_DB, db)
            .env(WORKER_DONE, done)
            .env_remove(WORKER_HANG_AT)
            .stdout(Stdio::null());
        if let Some(n) = hang_at {
            command.env(WORKER_HANG_AT, n.to_string());
        }
        WorkerProcess(command.spawn().unwrap())
    }

    /// Waits (bounded) for the worker to exit by itself; whether it succeeded.
    fn wait_exit(&mut self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the worker process did not exit within {bound:?}");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` every 20 ms until it gives a value; fails the test after `bound`.
fn wait_for<T>(what: &str, bound: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Completions recorded so far: attempts that ran to the end, by job id.
fn completions(done: &Path) -> BTreeMap<String, Vec<u32>> {
    let mut by_job: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for entry in std::fs::read_dir(done).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let (id, attempt) = name.rsplit_once('.').unwrap();
        by_job
            .entry(id.to_owned())
            .or_default()
            .push(attempt.parse().unwrap());
    }
    by_job
}

/// Issue 14's Done-when: a worker process killed with SIGKILL in the middle of a job; a new
/// worker process runs the rest, and the killed job once its lease has ended; every job
/// completes exactly once, and none is dead.
#[test]
fn a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing() {
    const JOBS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let done = dir.path().join("done");
    std::fs::create_dir(&done).unwrap();
    let store = SqliteBackend::open(&db).unwrap();
    let now = unix_millis(SystemTime::now());
    for n in 0..JOBS {
        store
            .add(job(&format!("job-{n:02}"), KILL_QUEUE), now)
            .unwrap();
    }

    // The first worker hangs in its 4th job: kill it there.
    let mut first = WorkerProcess::start(&db, &done, Some(4));
    let hung_path = dir.path().join("hung");
    let hung = wait_for(
        "the first worker reaching its 4th job",
        Duration::from_secs(60),
        || std::fs::read_to_string(&hung_path).ok(),
    );
    let active = store
        .counts(KILL_QUEUE, unix_millis(SystemTime::now()))
        .unwrap()
        .active;
    assert_eq!(active, 1, "the hung job is the one in flight");
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert_eq!(
        completions(&done).len(),
        3,
        "three jobs ran before the kill"
    );
    let in_flight = store.get(&hung).unwrap().unwrap();
    assert_eq!((in_flight.state, in_flight.attempts), (JobState::Active, 1));

    // A new worker takes the rest, and the killed job once its lease has run out.
    let mut second = WorkerProcess::start(&db, &done, None);
    wait_for("every job done", Duration::from_secs(60), || {
        let counts = store
            .counts(KILL_QUEUE, unix_millis(SystemTime::now()))
            .unwrap();
        (counts == QueueCounts::default() && completions(&done).len() == JOBS).then_some(())
    });
    assert!(
        second.wait_exit(Duration::from_secs(30)),
        "the second worker failed"
    );

    let completions = completions(&done);
    assert_eq!(completions.len(), JOBS);
    for (id, attempts) in &completions {
        let expected: &[u32] = if *id == hung { &[2] } else { &[1] };
        assert_eq!(attempts, expected, "job {id} completed exactly once");
    }
    assert!(store.dead_letters(KILL_QUEUE, 100).unwrap().is_empty());
}

/// The worker process of the kill test when that test starts it (with [`WORKER_DB`] set);
/// otherwise a check of the same worker on its own: two jobs on a fresh file, each completed
/// exactly once, and the worker ending once the queue is empty.
#[test]
fn kill_test_worker_process() {
    if let Some(db) = std::env::var_os(WORKER_DB).map(PathBuf::from) {
        let done = PathBuf::from(std::env::var_os(WORKER_DONE).unwrap());
        let hang_at: Option<u32> = std::env::var(WORKER_HANG_AT)
            .ok()
            .map(|n| n.parse().unwrap());
        run_kill_worker(&db, &done, hang_at);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let done = dir.path().join("done");
    std::fs::create_dir(&done).unwrap();
    let store = SqliteBackend::open(&db).unwrap();
    let now = unix_millis(SystemTime::now());
    for id in ["solo-a", "solo-b"] {
        store.add(job(id, KILL_QUEUE), now).unwrap();
    }
    run_kill_worker(&db, &done, None);
    let completions = completions(&done);
    let expected: BTreeMap<String, Vec<u32>> = [("solo-a", vec![1]), ("solo-b", vec![1])]
        .into_iter()
        .map(|(id, attempts)| (id.to_owned(), attempts))
        .collect();
    assert_eq!(completions, expected);
    assert_eq!(
        store
            .counts(KILL_QUEUE, unix_millis(SystemTime::now()))
            .unwrap(),
        QueueCounts::default()
    );
}

/// The kill test's worker: a [`Worker`] with a short lease runs the jobs of the SQLite file
/// `db`; each job works for [`JOB_RUN`], then records its completion in `done`. With
/// `hang_at`, one slot takes jobs one at a time (so that the job it hangs in is the only one in
/// flight). Returns once the queue is empty and the worker has stopped.
fn run_kill_worker(db: &Path, done: &Path, hang_at: Option<u32>) {
    let store = Arc::new(SqliteBackend::open(db).unwrap());
    let queue = Queue::new(KILL_QUEUE, store.clone());
    let taken = AtomicU32::new(0);
    let (db, done) = (db.to_owned(), done.to_owned());
    let worker = Worker::new(queue)
        .concurrency(if hang_at.is_some() { 1 } else { 4 })
        .lease(WORKER_LEASE)
        .poll_interval(Duration::from_millis(50))
        .handle_blocking("work", move |job: Job<serde_json::Value>| {
            if Some(taken.fetch_add(1, Ordering::Relaxed) + 1) == hang_at {
                // Written aside, then renamed: the test never reads half an id.
                std::fs::write(db.with_file_name("hung.part"), job.id()).unwrap();
                std::fs::rename(db.with_file_name("hung.part"), db.with_file_name("hung")).unwrap();
                std::thread::sleep(Duration::from_secs(120));
                panic!("the hung worker was not killed");
            }
            std::thread::sleep(JOB_RUN);
            let record = done.join(format!("{}.{}", job.id(), job.attempt()));
            std::fs::File::create_new(record).map(drop)
        });
    worker.start(&weft_runtime::background_runtime()).unwrap();
    let now = || unix_millis(SystemTime::now());
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.counts(KILL_QUEUE, now()).unwrap() != QueueCounts::default() {
        assert!(Instant::now() < deadline, "the worker ran out of time");
        std::thread::sleep(Duration::from_millis(20));
    }
    worker.begin_stop();
    assert!(worker.wait_stopped(Instant::now() + Duration::from_secs(10)));
}
