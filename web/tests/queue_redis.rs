//! The Redis backend against a real `redis-server` (one per test, on a free loopback port):
//! each `QueueStore` and `TickLease` call, concurrent reservations from two connections, and
//! a worker process killed with SIGKILL mid-job.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use redis_server::RedisServer;
use weft::backend::StoreError;
use weft::backend::redis::RedisBackend;
use weft::queue::store::{
    Added, Backoff, JobState, NewJob, Priority, Progress, QueueCounts, QueueStore,
};
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

/// Reserves every due job of `mail` at `now` and returns their ids in order.
fn drain_ids(store: &RedisBackend, now: i64) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(reserved) = store.reserve("mail", now, now + 1_000).expect("reserve") {
        ids.push(reserved.job.id);
        assert!(ids.len() <= 100, "reserve never ran dry");
    }
    ids
}

#[test]
fn added_job_reads_back_with_every_field() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    let mut new = job("a", Priority::Low, 1_500);
    new.backoff = Backoff::Exponential {
        base_ms: 100,
        max_ms: 5_000,
        jitter: true,
    };
    new.data = vec![0, 159, 146, 150, 255];
    assert_eq!(
        store.add(new.clone(), 1_000).unwrap(),
        Added::New("a".into())
    );

    let stored = store.get("a").unwrap().expect("the job");
    assert_eq!(stored.id, "a");
    assert_eq!(stored.queue, "mail");
    assert_eq!(stored.name, "send");
    assert_eq!(stored.data, new.data, "payloads are binary-safe");
    assert_eq!(stored.priority, Priority::Low);
    assert_eq!(stored.state, JobState::Waiting);
    assert_eq!(stored.run_at, 1_500);
    assert_eq!(stored.created_at, 1_000);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.max_attempts, 3);
    assert_eq!(stored.backoff, new.backoff);
    assert_eq!(stored.progress, None);
    assert_eq!(stored.last_error, None);
    assert_eq!(store.get("missing").unwrap(), None);
}

#[test]
fn adding_a_stored_id_again_is_a_duplicate() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    assert_eq!(
        store.add(job("a", Priority::Normal, 0), 0).unwrap(),
        Added::New("a".into())
    );
    let mut again = job("a", Priority::Urgent, 0);
    again.data = b"other".to_vec();
    assert_eq!(store.add(again, 0).unwrap(), Added::Duplicate("a".into()));
    assert_eq!(store.get("a").unwrap().unwrap().priority, Priority::Normal);
    assert_eq!(store.counts("mail", 0).unwrap().waiting, 1);

    // Still a duplicate while running and when dead; free again once completed.
    let reserved = store.reserve("mail", 0, 100).unwrap().unwrap();
    assert!(matches!(
        store.add(job("a", Priority::Normal, 0), 0).unwrap(),
        Added::Duplicate(_)
    ));
    assert!(store.fail("a", &reserved.token, "boom", None).unwrap());
    assert!(matches!(
        store.add(job("a", Priority::Normal, 0), 0).unwrap(),
        Added::Duplicate(_)
    ));
    assert!(store.requeue_dead("a", 10).unwrap());
    let reserved = store.reserve("mail", 10, 100).unwrap().unwrap();
    assert!(store.complete("a", &reserved.token).unwrap());
    assert_eq!(
        store.add(job("a", Priority::Normal, 0), 0).unwrap(),
        Added::New("a".into())
    );
}

#[test]
fn reserve_orders_by_priority_then_due_time_then_order_added() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    for (id, priority, run_at) in [
        ("low-early", Priority::Low, 0),
        ("normal-late", Priority::Normal, 20),
        ("normal-first", Priority::Normal, 10),
        ("normal-second", Priority::Normal, 10),
        ("urgent", Priority::Urgent, 30),
        ("normal-early", Priority::Normal, 5),
    ] {
        store.add(job(id, priority, run_at), 0).unwrap();
    }
    assert_eq!(
        drain_ids(&store, 100),
        [
            "urgent",
            "normal-early",
            "normal-first",
            "normal-second",
            "normal-late",
            "low-early"
        ]
    );
}

#[test]
fn a_delayed_job_waits_for_its_time() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    store.add(job("later", Priority::Urgent, 5_000), 0).unwrap();
    store.add(job("now", Priority::Low, 0), 0).unwrap();
    assert_eq!(
        store.counts("mail", 1_000).unwrap(),
        QueueCounts {
            waiting: 1,
            delayed: 1,
            active: 0,
            dead: 0
        }
    );
    assert_eq!(drain_ids(&store, 1_000), ["now"]);
    assert_eq!(store.counts("mail", 5_000).unwrap().waiting, 1);
    assert_eq!(drain_ids(&store, 5_000), ["later"]);
    assert_eq!(
        store.counts("mail", 5_000).unwrap(),
        QueueCounts {
            waiting: 0,
            delayed: 0,
            active: 2,
            dead: 0
        }
    );
}

#[test]
fn reserve_counts_the_attempt_and_leases_the_job() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    store.add(job("a", Priority::Normal, 0), 0).unwrap();
    let reserved = store.reserve("mail", 10, 2_000).unwrap().unwrap();
    assert_eq!(reserved.job.attempts, 1);
    assert_eq!(reserved.job.state, JobState::Active);
    assert_eq!(
        reserved.job.run_at, 2_000,
        "an active job's run_at is its lease end"
    );
    assert!(!reserved.token.is_empty());
    assert_eq!(store.get("a").unwrap().unwrap().state, JobState::Active);
    assert_eq!(store.reserve("mail", 10, 2_000).unwrap(), None);
    assert_eq!(
        store.reserve("other", 10, 2_000).unwrap(),
        None,
        "queues are apart"
    );
}

#[test]
fn a_stale_token_changes_nothing() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    store.add(job("a", Priority::Normal, 0), 0).unwrap();
    let reserved = store.reserve("mail", 0, 1_000).unwrap().unwrap();
    let progress = Progress {
        percent: 50,
        message: "half".into(),
    };
    assert!(!store.extend_lease("a", "stale", 9_000).unwrap());
    assert!(!store.set_progress("a", "stale", &progress).unwrap());
    assert!(!store.fail("a", "stale", "no", None).unwrap());
    assert!(!store.complete("a", "stale").unwrap());
    assert!(!store.complete("missing", &reserved.token).unwrap());
    let stored = store.get("a").unwrap().unwrap();
    assert_eq!(stored.state, JobState::Active);
    assert_eq!(stored.run_at, 1_000);
    assert_eq!(stored.progress, None);

    // Once the lease ended and the job was recovered, the old token is stale too.
    assert_eq!(store.recover_stalled("mail", 1_001).unwrap().len(), 1);
    assert!(!store.complete("a", &reserved.token).unwrap());
    let again = store.reserve("mail", 1_001, 2_000).unwrap().unwrap();
    assert_ne!(again.token, reserved.token);
    assert!(store.complete("a", &again.token).unwrap());
    assert_eq!(store.get("a").unwrap(), None, "a completed job is removed");
    assert_eq!(store.counts("mail", 2_000).unwrap(), QueueCounts::default());
}

#[test]
fn progress_is_recorded_while_the_lease_holds() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    store.add(job("a", Priority::Normal, 0), 0).unwrap();
    let reserved = store.reserve("mail", 0, 1_000).unwrap().unwrap();
    let progress = Progress {
        percent: 40,
        message: "rendering ünïcode".into(),
    };
    assert!(store.set_progress("a", &reserved.token, &progress).unwrap());
    assert_eq!(store.get("a").unwrap().unwrap().progress, Some(progress));
}

#[test]
fn extending_the_lease_keeps_the_job_from_stalling() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    store.add(job("a", Priority::Normal, 0), 0).unwrap();
    let reserved = store.reserve("mail", 0, 1_000).unwrap().unwrap();
    assert!(store.extend_lease("a", &reserved.token, 5_000).unwrap());
    assert_eq!(store.get("a").unwrap().unwrap().run_at, 5_000);
    assert_eq!(store.recover_stalled("mail", 2_000).unwrap(), []);
    assert_eq!(
        store.recover_stalled("mail", 5_000).unwrap(),
        [],
        "ended before now"
    );
    let stalled = store.recover_stalled("mail", 5_001).unwrap();
    assert_eq!(stalled.len(), 1);
    assert_eq!(stalled[0].id, "a");
    assert_eq!(stalled[0].state, JobState::Waiting);
}

#[test]
fn a_stalled_job_runs_again_until_its_attempts_are_spent() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    let mut new = job("a", Priority::Normal, 0);
    new.max_attempts = 2;
    store.add(new, 0).unwrap();

    store.reserve("mail", 0, 100).unwrap().unwrap();
    let stalled = store.recover_stalled("mail", 200).unwrap();
    assert_eq!(stalled[0].state, JobState::Waiting);
    let stored = store.get("a").unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.run_at, stored.attempts),
        (JobState::Waiting, 200, 1)
    );
    assert!(stored.last_error.is_some(), "the stall is recorded");

    let second = store.reserve("mail", 200, 300).unwrap().unwrap();
    assert_eq!(second.job.attempts, 2);
    let stalled = store.recover_stalled("mail", 400).unwrap();
    assert_eq!(stalled[0].state, JobState::Dead);
    assert_eq!(
        store.counts("mail", 400).unwrap(),
        QueueCounts {
            dead: 1,
            ..QueueCounts::default()
        }
    );
    assert_eq!(store.dead_letters("mail", 10).unwrap()[0].id, "a");
}

#[test]
fn a_failed_attempt_waits_for_its_retry_time() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    store.add(job("a", Priority::Normal, 0), 0).unwrap();
    let reserved = store.reserve("mail", 0, 1_000).unwrap().unwrap();
    assert!(
        store
            .fail("a", &reserved.token, "smtp down", Some(500))
            .unwrap()
    );
    let stored = store.get("a").unwrap().unwrap();
    assert_eq!(stored.state, JobState::Waiting);
    assert_eq!(stored.run_at, 500);
    assert_eq!(stored.last_error.as_deref(), Some("smtp down"));
    assert_eq!(store.counts("mail", 100).unwrap().delayed, 1);
    assert_eq!(store.reserve("mail", 499, 2_000).unwrap(), None);
    let again = store.reserve("mail", 500, 2_000).unwrap().unwrap();
    assert_eq!(again.job.attempts, 2);
}

#[test]
fn dead_letters_are_listed_in_order_and_requeued() {
    let server = RedisServer::start();
    let store = backend(&server, "t");
    for id in ["first", "second", "third"] {
        store.add(job(id, Priority::Normal, 0), 0).unwrap();
    }
    let mut reserved = Vec::new();
    while let Some(r) = store.reserve("mail", 0, 1_000).unwrap() {
        reserved.push(r);
    }
    // They die in the order second, first, third.
    for index in [1, 0, 2] {
        let r = &reserved[index];
        assert!(store.fail(&r.job.id, &r.token, "fatal", None).unwrap());
    }
    let dead: Vec<_> = store
        .dead_letters("mail", 10)
        .unwrap()
        .into_iter()
        .map(|job| (job.id, job.state, job.last_error))
        .collect();
    assert_eq!(
        dead,
        ["second", "first", "third"].map(|id| (
            id.to_owned(),
            JobState::Dead,
            Some("fatal".to_owned())
        ))
    );
    assert_eq!(store.dead_letters("mail", 2).unwrap().len(), 2);
    assert_eq!(store.dead_letters("mail", 0).unwrap(), []);
    assert_eq!(store.dead_letters("other", 10).unwrap(), []);

    assert!(store.requeue_dead("first", 50).unwrap());
    assert!(!store.requeue_dead("first", 50).unwrap(), "no longer dead");
    assert!(!store.requeue_dead("missing", 50).unwrap());
    let requeued = store.get("first").unwrap().unwrap();
    assert_eq!(
        (requeued.state, requeued.attempts, requeued.run_at),
        (JobState::Waiting, 0, 50)
    );
    assert_eq!(
        store.counts("mail", 50).unwrap(),
        QueueCounts {
            waiting: 1,
            dead: 2,
            ..QueueCounts::default()
        }
    );
    assert_eq!(
        store.reserve("mail", 50, 100).unwrap().unwrap().job.id,
        "first"
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
