//! Issue 14's Done-when for the cluster-safe scheduler: two processes run the same cron job
//! every second with their tick leases in one real `redis-server`, and each tick runs once.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redis_server::{RedisServer, raw, set_stop_key, wait_for_stop_key};
use weft::backend::redis::RedisBackend;
use weft::clock::unix_millis;
use weft::events::Events;
use weft::schedule::{CronStarted, Scheduler};

/// The environment variables that make [`cron_instance_process`] an instance: the server's
/// URL, the key prefix, and the instance's id.
const INSTANCE_URL: &str = "WEFT_CRON_INSTANCE_URL";
const INSTANCE_PREFIX: &str = "WEFT_CRON_INSTANCE_PREFIX";
const INSTANCE_ID: &str = "WEFT_CRON_INSTANCE_ID";

/// How many ticks the test waits for (one a second).
const TICKS: usize = 5;

/// An instance process (this test binary re-executed as [`cron_instance_process`]), killed
/// when dropped, so that no exit path of the test leaves it running.
struct Instance(Child);

impl Instance {
    fn spawn(url: &str, prefix: &str, id: &str) -> Instance {
        let child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", "cron_instance_process", "--nocapture"])
            .env(INSTANCE_URL, url)
            .env(INSTANCE_PREFIX, prefix)
            .env(INSTANCE_ID, id)
            .stdout(Stdio::null())
            .spawn()
            .expect("re-execute the test binary as an instance");
        Instance(child)
    }

    /// Waits (bounded) for it to exit by itself: its exit status, or `None` if it did not.
    fn exit_within(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long an instance runs at most when nothing sets its stop key.
const INSTANCE_BOUND: Duration = Duration::from_secs(60);

/// An instance of [`two_processes_run_each_cron_tick_once`], re-executed by it with
/// [`INSTANCE_URL`] set: runs [`run_cron_instance`]. Run without it (as part of the suite),
/// it checks that instance on its own: run by the same code against its own server for a
/// few seconds, it records ticks, none twice, and stops when its stop key is set.
#[test]
fn cron_instance_process() {
    if let (Ok(url), Ok(prefix), Ok(instance)) = (
        std::env::var(INSTANCE_URL),
        std::env::var(INSTANCE_PREFIX),
        std::env::var(INSTANCE_ID),
    ) {
        assert!(
            run_cron_instance(&url, &prefix, &instance, INSTANCE_BOUND),
            "the instance was not stopped by its stop key"
        );
        return;
    }
    cron_instance_self_check();
}

/// The instance of the cluster test: a scheduler with the Redis tick lease runs a cron job
/// every second and records each run it starts (`RPUSH p:runs "<tick>,<instance>"`), until
/// `p:stop` is set, or for `bound` at most. `true` if the stop key stopped it and its running
/// work then ended.
fn run_cron_instance(url: &str, prefix: &str, instance: &str, bound: Duration) -> bool {
    let lease = RedisBackend::new(redis::Client::open(url).unwrap(), prefix);
    let events = Events::new();
    let record = Mutex::new(raw(url));
    let (runs, holder) = (format!("{prefix}:runs"), instance.to_owned());
    events.on(move |started: &CronStarted| {
        let run = format!("{},{holder}", unix_millis(started.tick));
        let mut record = record.lock().unwrap();
        redis::cmd("RPUSH")
            .arg(&runs)
            .arg(run)
            .query::<i64>(&mut *record)
            .expect("record a run");
    });
    let scheduler = Scheduler::new()
        .with_lease(Arc::new(lease))
        .with_instance_id(instance.to_owned())
        .with_events(events);
    scheduler
        .add_cron("every-second", "* * * * * *", || async {})
        .unwrap();
    scheduler
        .run_on(&weft_runtime::background_runtime())
        .unwrap();

    let stopped = wait_for_stop_key(&mut raw(url), prefix, bound);
    scheduler.begin_stop();
    scheduler.wait_stopped(Instant::now() + Duration::from_secs(10)) && stopped
}

/// The runs recorded under `prefix` (`"<tick>,<instance>"`), oldest first.
fn recorded_runs(control: &mut redis::Connection, prefix: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(format!("{prefix}:runs"))
        .arg(0)
        .arg(-1)
        .query(control)
        .unwrap()
}

/// The recorded runs by tick (in milliseconds): the instances that ran each.
fn runs_by_tick(runs: &[String]) -> BTreeMap<i64, Vec<String>> {
    let mut by_tick: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for run in runs {
        let (tick, instance) = run.split_once(',').expect("tick,instance");
        by_tick
            .entry(tick.parse().expect("a tick in milliseconds"))
            .or_default()
            .push(instance.to_owned());
    }
    by_tick
}

/// [`cron_instance_process`] on its own: [`run_cron_instance`] on a thread against its own
/// server until it has recorded two ticks (30 s at most), then stopped with its stop key.
fn cron_instance_self_check() {
    let server = RedisServer::start();
    let (url, prefix) = (server.url(), "instance-self-check");
    let instance = {
        let url = url.clone();
        thread::spawn(move || run_cron_instance(&url, prefix, "solo", INSTANCE_BOUND))
    };
    let mut control = raw(&url);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && runs_by_tick(&recorded_runs(&mut control, prefix)).len() < 2
    {
        thread::sleep(Duration::from_millis(100));
    }
    // Stop it whatever happened, so that the thread ends before the assertions.
    set_stop_key(&mut control, prefix);
    let stopped = instance.join().expect("the instance thread panicked");

    let runs = recorded_runs(&mut control, prefix);
    let by_tick = runs_by_tick(&runs);
    assert!(!by_tick.is_empty(), "no tick ran within 30 s");
    for (tick, instances) in &by_tick {
        assert_eq!(instances, &["solo"], "tick {tick} ran {instances:?}");
    }
    assert!(stopped, "the instance was not stopped by its stop key");
}

#[test]
fn two_processes_run_each_cron_tick_once() {
    let server = RedisServer::start();
    let (url, prefix) = (server.url(), "cron-cluster");
    let mut control = raw(&url);
    let mut instances = [
        Instance::spawn(&url, prefix, "a"),
        Instance::spawn(&url, prefix, "b"),
    ];
    let runs = |control: &mut redis::Connection| recorded_runs(control, prefix);

    let deadline = Instant::now() + Duration::from_secs(60);
    let ticks_seen = |runs: &[String]| {
        let ticks: std::collections::HashSet<_> = runs
            .iter()
            .filter_map(|run| run.split_once(','))
            .map(|(tick, _)| tick.to_owned())
            .collect();
        ticks.len()
    };
    while ticks_seen(&runs(&mut control)) < TICKS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    // Let both run a little longer, then stop them and wait for them to exit.
    thread::sleep(Duration::from_secs(1));
    set_stop_key(&mut control, prefix);
    for instance in &mut instances {
        let status = instance.exit_within(Duration::from_secs(30));
        assert!(
            status.is_some_and(|status| status.success()),
            "an instance did not stop cleanly: {status:?}"
        );
    }

    let runs = runs(&mut control);
    let by_tick = runs_by_tick(&runs);
    assert!(by_tick.len() >= TICKS, "too few ticks ran: {runs:?}");
    for (tick, instances) in &by_tick {
        assert_eq!(instances.len(), 1, "tick {tick} ran on {instances:?}");
    }
    // Every second between the first and the last run ran (on one instance or the other).
    let ticks: Vec<i64> = by_tick.keys().copied().collect();
    for pair in ticks.windows(2) {
        assert_eq!(pair[1] - pair[0], 1_000, "a tick is missing: {runs:?}");
    }
    let on = |id: &str| {
        runs.iter()
            .filter(|run| run.ends_with(&format!(",{id}")))
            .count()
    };
    eprintln!(
        "{} ticks: {} on instance a, {} on instance b",
        ticks.len(),
        on("a"),
        on("b")
    );
}
