//! Issue 14's Done-when for the cluster-safe scheduler: two processes run the same cron job
//! every second with their tick leases in one real `redis-server`, and each tick runs once.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
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

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("a connection to the test's redis-server")
}

/// An instance process (this test binary re-executed as [`cron_instance_process`]), killed
/// when dropped, so that no exit path of the test leaves it running.
struct Instance(Child);

impl Instance {
    fn spawn(url: &str, prefix: &str, id: &str) -> Instance {
        let child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "cron_instance_process",
                "--nocapture",
                "--include-ignored",
            ])
            .env(INSTANCE_URL, url)
            .env(INSTANCE_PREFIX, prefix)
            .env(INSTANCE_ID, id)
            .stdout(Stdio::null())
            .spawn()
            .expect("re-execute the test binary as an instance");
        Instance(child)
    }

    /// Waits (bounded) for it to exit by itself; `false` if it did not.
    fn exited_within(&mut self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An instance of [`two_processes_run_each_cron_tick_once`]: does nothing unless re-executed
/// by it with [`INSTANCE_URL`] set. A scheduler with the Redis tick lease runs a cron job
/// every second and records each run it starts (`RPUSH p:runs "<tick>,<instance>"`), until
/// `p:stop` is set, or for a minute at most.
#[test]
#[ignore = "an instance process that two_processes_run_each_cron_tick_once starts"]
fn cron_instance_process() {
    let (Ok(url), Ok(prefix), Ok(instance)) = (
        std::env::var(INSTANCE_URL),
        std::env::var(INSTANCE_PREFIX),
        std::env::var(INSTANCE_ID),
    ) else {
        return;
    };
    let lease = RedisBackend::new(redis::Client::open(url.as_str()).unwrap(), prefix.as_str());
    let events = Events::new();
    let record = Mutex::new(raw(&url));
    let (runs, holder) = (format!("{prefix}:runs"), instance.clone());
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
        .with_instance_id(instance)
        .with_events(events);
    scheduler
        .add_cron("every-second", "* * * * * *", || async {})
        .unwrap();
    scheduler
        .run_on(&weft_runtime::background_runtime())
        .unwrap();

    let mut control = raw(&url);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let stop: bool = redis::cmd("EXISTS")
            .arg(format!("{prefix}:stop"))
            .query(&mut control)
            .unwrap();
        if stop {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    scheduler.begin_stop();
    scheduler.wait_stopped(Instant::now() + Duration::from_secs(10));
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
    let runs = |control: &mut redis::Connection| -> Vec<String> {
        redis::cmd("LRANGE")
            .arg(format!("{prefix}:runs"))
            .arg(0)
            .arg(-1)
            .query(control)
            .unwrap()
    };

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
    redis::cmd("SET")
        .arg(format!("{prefix}:stop"))
        .arg(1)
        .query::<()>(&mut control)
        .unwrap();
    for instance in &mut instances {
        assert!(
            instance.exited_within(Duration::from_secs(30)),
            "an instance did not stop"
        );
    }

    let runs = runs(&mut control);
    let mut by_tick: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for run in &runs {
        let (tick, instance) = run.split_once(',').expect("tick,instance");
        by_tick
            .entry(tick.parse().expect("a tick in milliseconds"))
            .or_default()
            .push(instance.to_owned());
    }
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
