//! The Redis backend against a real `redis-server` (one per test, on a free loopback port):
//! each `QueueStore` and `TickLease` call, concurrent reservations from two connections, and
//! a worker process killed with SIGKILL mid-job.

#![cfg(feature = "redis")]

#[path = "support/queue_conformance.rs"]
mod queue_conformance;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use redis_server::{RedisServer, raw, set_stop_key, wait_for_stop_key};
use weft::backend::StoreError;
use weft::backend::redis::RedisBackend;
use weft::background::Background;
use weft::queue::store::{Added, Backoff, NewJob, Priority, Progress, QueueCounts, QueueStore};
use weft::queue::{Job, Queue, Worker};
use weft::schedule::lease::TickLease;

/// A backend on `server` with its own key prefix.
fn backend(server: &RedisServer, prefix: &str) -> RedisBackend {
    RedisBackend::new(
        redis::Client::open(server.url()).expect("a valid URL"),
        prefix,
    )
}

fn job(id: &str, priority: Priority, run_at: i64) -> NewJob {
    NewJob {
        id: id.to_owned(),
        queue: "mail".to_owned(),
        name: "send".to_owned(),
        data: format!("{{\"to\":\"{id}\"}}").into_bytes(),
        priority,
        run_at,
        max_attempts: 3,
        backoff: Backoff::Fixed { delay_ms: 10 },
    }
}

#[test]
fn redis_backend_keeps_the_queue_contract() {
    let server = RedisServer::start();
    // One server, a fresh key prefix per store: each property starts empty.
    let stores = AtomicUsize::new(0);
    queue_conformance::run_all(&|| {
        let n = stores.fetch_add(1, Ordering::Relaxed);
        Arc::new(backend(&server, &format!("conformance-{n}")))
    });
}

#[test]
fn payloads_and_texts_are_stored_as_given() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    let mut new = job("ïd:with:colons", Priority::Low, 1_500);
    new.queue = "q:wait:0".to_owned();
    new.data = vec![0, 159, 146, 150, 255, b'\r', b'\n'];
    assert_eq!(
        store.add(new.clone(), 1_000).unwrap(),
        Added::New(new.id.clone())
    );
    let stored = store.get(&new.id).unwrap().expect("the job");
    assert_eq!(stored.data, new.data, "payloads are binary-safe");
    assert_eq!(stored.queue, new.queue);
    let reserved = store.reserve(&new.queue, 2_000, 3_000).unwrap().unwrap();
    assert_eq!(reserved.job.id, new.id);
    assert_eq!(store.counts("q", 2_000).unwrap(), QueueCounts::default());
    let progress = Progress {
        percent: 40,
        message: "rendering ünïcode \0 and \r\n".into(),
    };
    assert!(
        store
            .set_progress(&new.id, &reserved.token, &progress)
            .unwrap()
    );
    assert_eq!(
        store.get(&new.id).unwrap().unwrap().progress,
        Some(progress)
    );
}

#[test]
fn key_prefixes_keep_apps_apart_on_one_server() {
    let server = RedisServer::start();
    let one = backend(&server, "one");
    let two = backend(&server, "two");
    one.add(job("a", Priority::Normal, 0), 0).unwrap();
    assert_eq!(
        two.add(job("a", Priority::Normal, 0), 0).unwrap(),
        Added::New("a".into())
    );
    assert!(one.reserve("mail", 0, 10).unwrap().is_some());
    assert_eq!(two.counts("mail", 0).unwrap().waiting, 1);
    assert!(
        one.claim_tick("report", 60_000, "x", Duration::from_secs(5))
            .unwrap()
    );
    assert!(
        two.claim_tick("report", 60_000, "y", Duration::from_secs(5))
            .unwrap()
    );
}

#[test]
fn each_tick_is_claimed_once_until_its_claim_expires() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    let keep = Duration::from_millis(300);
    assert!(store.claim_tick("report", 1_000, "a", keep).unwrap());
    assert!(!store.claim_tick("report", 1_000, "b", keep).unwrap());
    assert!(!store.claim_tick("report", 1_000, "a", keep).unwrap());
    assert!(store.claim_tick("report", 2_000, "b", keep).unwrap());
    assert!(store.claim_tick("other", 1_000, "b", keep).unwrap());

    // Forgotten after `keep`: poll (bounded) rather than assume the server's timing.
    let mut forgotten = false;
    for _ in 0..200 {
        thread::sleep(Duration::from_millis(50));
        if store.claim_tick("report", 1_000, "c", keep).unwrap() {
            forgotten = true;
            break;
        }
    }
    assert!(forgotten, "the claim never expired");
}

#[test]
fn concurrent_claims_of_a_tick_have_one_winner() {
    let server = RedisServer::start();
    let stores: Vec<_> = (0..4).map(|_| Arc::new(backend(&server, "t"))).collect();
    for tick in 0..20 {
        let barrier = Arc::new(Barrier::new(stores.len()));
        let winners: usize = stores
            .iter()
            .enumerate()
            .map(|(holder, store)| {
                let (store, barrier) = (store.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    store
                        .claim_tick("job", tick, &holder.to_string(), Duration::from_secs(10))
                        .unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| usize::from(thread.join().unwrap()))
            .sum();
        assert_eq!(winners, 1, "tick {tick}");
    }
}

#[test]
fn two_backends_reserving_at_once_never_share_a_job() {
    let server = RedisServer::start();
    let jobs = 400;
    let producer = backend(&server, "t");
    for n in 0..jobs {
        producer
            .add(job(&format!("job-{n}"), Priority::Normal, 0), 0)
            .unwrap();
    }
    let stores = [
        Arc::new(backend(&server, "t")),
        Arc::new(backend(&server, "t")),
    ];
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let (store, barrier) = (stores[n % 2].clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                let mut ids = Vec::new();
                while let Some(reserved) = store.reserve("mail", 0, 60_000).unwrap() {
                    assert!(store.complete(&reserved.job.id, &reserved.token).unwrap());
                    ids.push(reserved.job.id);
                }
                ids
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for thread in threads {
        for id in thread.join().unwrap() {
            total += 1;
            assert!(seen.insert(id.clone()), "{id} was reserved twice");
        }
    }
    assert_eq!(total, jobs);
    assert_eq!(producer.counts("mail", 0).unwrap(), QueueCounts::default());
}

#[test]
fn an_unreachable_server_is_a_backend_error() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = RedisBackend::connect(&format!("redis://127.0.0.1:{port}/")).unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error}");
    assert!(matches!(
        RedisBackend::connect("not a url").unwrap_err(),
        StoreError::Backend(_)
    ));
}

#[test]
fn the_backend_reconnects_after_the_server_restarts() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    store.add(job("a", Priority::Normal, 0), 0).unwrap();
    let port = server.port();
    drop(server);
    // The pooled connection is dead: the call fails, and is not a panic.
    assert!(store.get("a").is_err());
    let restarted = RedisServer::start_on(port);
    let mut answered = false;
    for _ in 0..100 {
        if let Ok(None) = store.get("a") {
            answered = true;
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(answered, "no answer after the restart");
    drop(restarted);
}

/// The environment variables that make [`kill_worker_process`] a worker: the server's URL
/// and the key prefix.
const WORKER_URL: &str = "WEFT_REDIS_WORKER_URL";
const WORKER_PREFIX: &str = "WEFT_REDIS_WORKER_PREFIX";

/// The queue the kill test's jobs are in.
const KILL_QUEUE: &str = "kill";

/// The workers' lease: short, so that the killed worker's job runs again soon.
const KILL_LEASE: Duration = Duration::from_secs(2);

/// How long a job of the kill test works: long enough for the test to kill its worker in the
/// middle.
const KILL_JOB_TIME: Duration = Duration::from_millis(1_200);

fn now_ms() -> i64 {
    weft::clock::unix_millis(std::time::SystemTime::now())
}

/// A worker process (this test binary re-executed as [`kill_worker_process`]), killed with
/// SIGKILL when dropped, so that no exit path of the test leaves it running.
struct WorkerProcess(std::process::Child);

impl WorkerProcess {
    fn spawn(url: &str, prefix: &str) -> WorkerProcess {
        let child = std::process::Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", "kill_worker_process", "--nocapture"])
            .env(WORKER_URL, url)
            .env(WORKER_PREFIX, prefix)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("re-execute the test binary as a worker");
        WorkerProcess(child)
    }

    /// Waits (bounded) for it to exit by itself: its exit status, or `None` if it did not.
    fn exit_within(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills it with SIGKILL (what `Child::kill` sends on Unix): no chance to clean up.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How long a worker of the kill test runs at most when nothing sets its stop key.
const KILL_WORKER_BOUND: Duration = Duration::from_secs(120);

/// The worker of [`a_worker_killed_mid_job_loses_nothing`], re-executed by it with
/// [`WORKER_URL`] set: runs [`run_kill_worker`]. Run without it (as part of the suite), it
/// checks that worker on its own: one job, run by the same code, completes exactly once and
/// the worker stops when its stop key is set.
#[test]
fn kill_worker_process() {
    if let (Ok(url), Ok(prefix)) = (std::env::var(WORKER_URL), std::env::var(WORKER_PREFIX)) {
        assert!(
            run_kill_worker(&url, &prefix, KILL_WORKER_BOUND),
            "the worker was not stopped by its stop key"
        );
        return;
    }
    kill_worker_self_check();
}

/// The worker of the kill test: a [`Worker`] with a short lease runs the jobs of
/// [`KILL_QUEUE`]; each records its start (`RPUSH p:started <id>`), works for
/// [`KILL_JOB_TIME`], and records its end (`INCR p:done:<id>`). It stops when `p:stop` is
/// set, or after `bound`. `true` if the stop key stopped it and its slots then stopped.
fn run_kill_worker(url: &str, prefix: &str, bound: Duration) -> bool {
    let store = RedisBackend::new(redis::Client::open(url).unwrap(), prefix);
    let queue = Queue::new(KILL_QUEUE, Arc::new(store));
    let (job_url, job_prefix) = (url.to_owned(), prefix.to_owned());
    let worker = Worker::new(queue)
        .lease(KILL_LEASE)
        .poll_interval(Duration::from_millis(50))
        .handle_blocking("send", move |job: Job<serde_json::Value>| {
            let mut record = raw(&job_url);
            redis::cmd("RPUSH")
                .arg(format!("{job_prefix}:started"))
                .arg(job.id())
                .query::<i64>(&mut record)
                .map_err(|e| e.to_string())?;
            thread::sleep(KILL_JOB_TIME);
            redis::cmd("INCR")
                .arg(format!("{job_prefix}:done:{}", job.id()))
                .query::<i64>(&mut record)
                .map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        });
    worker
        .start(&weft_runtime::background_runtime())
        .expect("the worker starts");
    let stopped = wait_for_stop_key(&mut raw(url), prefix, bound);
    worker.begin_stop();
    worker.wait_stopped(Instant::now() + Duration::from_secs(10)) && stopped
}

/// [`kill_worker_process`] on its own: [`run_kill_worker`] on a thread, against its own
/// server, with one job; waits (30 s at most) for the job to be done and the queue empty,
/// then stops the worker with its stop key.
fn kill_worker_self_check() {
    let server = RedisServer::start();
    let (url, prefix) = (server.url(), "worker-self-check");
    let store = backend(&server, prefix);
    let mut new = job("only", Priority::Normal, now_ms());
    new.queue = KILL_QUEUE.to_owned();
    store.add(new, now_ms()).unwrap();
    let worker = {
        let url = url.clone();
        thread::spawn(move || run_kill_worker(&url, prefix, KILL_WORKER_BOUND))
    };
    let mut record = raw(&url);
    let done = |record: &mut redis::Connection| -> i64 {
        redis::cmd("GET")
            .arg(format!("{prefix}:done:only"))
            .query::<Option<i64>>(record)
            .unwrap()
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && !(done(&mut record) >= 1
            && store.counts(KILL_QUEUE, now_ms()).unwrap() == QueueCounts::default())
    {
        thread::sleep(Duration::from_millis(50));
    }
    // Stop it whatever happened, so that the thread ends before the assertions.
    set_stop_key(&mut record, prefix);
    let stopped = worker.join().expect("the worker thread panicked");

    let starts: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{prefix}:started"))
        .arg(0)
        .arg(-1)
        .query(&mut record)
        .unwrap();
    assert_eq!(starts, ["only"], "the job should have started once");
    assert_eq!(done(&mut record), 1, "the job should have completed once");
    assert_eq!(
        store.counts(KILL_QUEUE, now_ms()).unwrap(),
        QueueCounts::default(),
        "the queue should be empty"
    );
    assert!(stopped, "the worker was not stopped by its stop key");
}

/// Issue 14's Done-when: a worker process killed with SIGKILL in the middle of a job; a new
/// worker recovers the job once its lease ends, and every job completes exactly once.
#[test]
fn a_worker_killed_mid_job_loses_nothing() {
    const JOBS: usize = 5;
    let server = RedisServer::start();
    let (url, prefix) = (server.url(), "kill-test");
    let store = backend(&server, prefix);
    let mut record = raw(&url);
    let ids: Vec<String> = (0..JOBS).map(|n| format!("job-{n}")).collect();
    for id in &ids {
        let mut new = job(id, Priority::Normal, now_ms());
        new.queue = KILL_QUEUE.to_owned();
        store.add(new, now_ms()).unwrap();
    }
    let started = |record: &mut redis::Connection| -> Vec<String> {
        redis::cmd("LRANGE")
            .arg(format!("{prefix}:started"))
            .arg(0)
            .arg(-1)
            .query(record)
            .unwrap()
    };
    let done = |record: &mut redis::Connection, id: &str| -> i64 {
        redis::cmd("GET")
            .arg(format!("{prefix}:done:{id}"))
            .query::<Option<i64>>(record)
            .unwrap()
            .unwrap_or(0)
    };

    // Kill the first worker once it has finished a job and is running the next one.
    let mut first = WorkerProcess::spawn(&url, prefix);
    let mut killed = None;
    for _ in 0..3_000 {
        let started = started(&mut record);
        if let [.., previous, current] = started.as_slice() {
            if done(&mut record, previous) == 1 && done(&mut record, current) == 0 {
                first.kill();
                killed = Some(current.clone());
                break;
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
    let killed = killed.expect("the first worker never got to a second job within 30 s");
    assert_eq!(
        done(&mut record, &killed),
        0,
        "the kill came after {killed} finished: the test proves nothing"
    );

    // A new worker takes over, recovers the killed job when its lease ends, and runs the rest.
    let mut second = WorkerProcess::spawn(&url, prefix);
    let mut finished = false;
    for _ in 0..600 {
        if ids.iter().all(|id| done(&mut record, id) >= 1)
            && store.counts(KILL_QUEUE, now_ms()).unwrap() == QueueCounts::default()
        {
            finished = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let runs: Vec<(String, i64)> = ids
        .iter()
        .map(|id| (id.clone(), done(&mut record, id)))
        .collect();
    assert!(finished, "not every job completed within 60 s: {runs:?}");
    for (id, count) in &runs {
        assert_eq!(*count, 1, "{id} completed {count} times");
    }
    let starts = started(&mut record);
    assert_eq!(
        starts.iter().filter(|id| **id == killed).count(),
        2,
        "the killed job ran again: {starts:?}"
    );
    // Its stop key stops the second worker, which exits as a passing test.
    set_stop_key(&mut record, prefix);
    let status = second.exit_within(Duration::from_secs(30));
    assert!(
        status.is_some_and(|status| status.success()),
        "the second worker did not stop cleanly: {status:?}"
    );
}
