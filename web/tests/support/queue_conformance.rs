//! The contract of `weft::queue::store::QueueStore`, checked against any backend.
//!
//! Each backend's test file includes this module and calls [`run_all`] (or one property at a
//! time) with a function that makes an **empty** store: a fresh map, a fresh file, a fresh key
//! prefix. Every call takes its time as an argument, so nothing here sleeps: the times below are
//! plain numbers of milliseconds.
//!
//! ```ignore
//! #[path = "support/queue_conformance.rs"]
//! mod queue_conformance;
//!
//! #[test]
//! fn memory_backend_keeps_the_queue_contract() {
//!     queue_conformance::run_all(&|| Arc::new(MemoryBackend::new()));
//! }
//! ```

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::sync::Arc;

use weft::queue::store::{
    Added, Backoff, JobState, NewJob, Priority, Progress, QueueCounts, QueueStore, Stalled,
};

/// Makes an empty store.
pub type MakeStore<'a> = &'a dyn Fn() -> Arc<dyn QueueStore>;

/// A start time far from zero, so that "before" and "after" are both representable.
pub const T0: i64 = 1_700_000_000_000;

/// One property of the contract, checked on stores `make` gives.
pub type Property = fn(MakeStore<'_>);

/// Every property, one after another; each on a store of its own.
pub fn run_all(make: MakeStore<'_>) {
    let properties: &[(&str, Property)] = &[
        ("add_then_get", add_then_get),
        ("duplicate_ids_are_not_added", duplicate_ids_are_not_added),
        (
            "completed_ids_can_be_added_again",
            completed_ids_can_be_added_again,
        ),
        ("reserve_order", reserve_order),
        ("delayed_jobs_wait_until_due", delayed_jobs_wait_until_due),
        (
            "reserve_leases_and_counts_attempts",
            reserve_leases_and_counts_attempts,
        ),
        ("queues_are_separate", queues_are_separate),
        ("stale_tokens_do_nothing", stale_tokens_do_nothing),
        ("complete_removes", complete_removes),
        ("fail_with_retry_waits", fail_with_retry_waits),
        ("fail_without_retry_is_dead", fail_without_retry_is_dead),
        ("dead_letters_and_requeue", dead_letters_and_requeue),
        ("recover_stalled", recover_stalled),
        ("extend_lease_defers_recovery", extend_lease_defers_recovery),
        ("progress_is_recorded", progress_is_recorded),
        ("counts_by_state", counts_by_state),
        (
            "concurrent_reserves_hand_out_each_job_once",
            concurrent_reserves_hand_out_each_job_once,
        ),
        ("complete_and_reserve", complete_and_reserve),
        (
            "complete_and_reserve_with_a_stale_token",
            complete_and_reserve_with_a_stale_token,
        ),
        ("fail_and_reserve", fail_and_reserve),
        ("reserve_many_order_and_max", reserve_many_order_and_max),
        ("reserve_many_due_times", reserve_many_due_times),
    ];
    for (name, property) in properties {
        eprintln!("queue conformance: {name}");
        property(make);
    }
}

/// A job of queue `q`, name `send`, due at [`T0`], three attempts.
pub fn job(id: &str) -> NewJob {
    NewJob {
        id: id.to_owned(),
        queue: "q".to_owned(),
        name: "send".to_owned(),
        data: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        priority: Priority::Normal,
        run_at: T0,
        max_attempts: 3,
        backoff: Backoff::Fixed { delay_ms: 500 },
    }
}

fn add(store: &dyn QueueStore, job: NewJob) {
    let id = job.id.clone();
    assert_eq!(store.add(job, T0).unwrap(), Added::New(id));
}

/// Adds job `id` of `q` with `priority`, due at `run_at`.
fn add_at(store: &dyn QueueStore, id: &str, priority: Priority, run_at: i64) {
    let mut new = job(id);
    new.priority = priority;
    new.run_at = run_at;
    add(store, new);
}

/// Reserves the next job of `q` at `now`, leased for 30 s, and answers its id and token.
fn reserve(store: &dyn QueueStore, now: i64) -> Option<(String, String)> {
    store
        .reserve("q", now, now + 30_000)
        .unwrap()
        .map(|r| (r.job.id, r.token))
}

pub fn add_then_get(make: MakeStore<'_>) {
    let store = make();
    let mut new = job("a");
    new.priority = Priority::Low;
    new.max_attempts = 5;
    new.backoff = Backoff::Exponential {
        base_ms: 10,
        max_ms: 1_000,
        jitter: true,
    };
    add(&*store, new);
    let record = store.get("a").unwrap().expect("the job just added");
    assert_eq!(record.id, "a");
    assert_eq!(record.queue, "q");
    assert_eq!(record.name, "send");
    assert_eq!(record.data, b"{\"id\":\"a\"}");
    assert_eq!(record.priority, Priority::Low);
    assert_eq!(record.state, JobState::Waiting);
    assert_eq!(record.run_at, T0);
    assert_eq!(record.created_at, T0);
    assert_eq!(record.attempts, 0);
    assert_eq!(record.max_attempts, 5);
    assert_eq!(
        record.backoff,
        Backoff::Exponential {
            base_ms: 10,
            max_ms: 1_000,
            jitter: true
        }
    );
    assert_eq!(record.progress, None);
    assert_eq!(record.last_error, None);
    assert_eq!(store.get("nope").unwrap(), None);
}

pub fn duplicate_ids_are_not_added(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let mut again = job("a");
    again.data = b"other".to_vec();
    assert_eq!(store.add(again, T0).unwrap(), Added::Duplicate("a".into()));
    // The first job is kept as it was.
    assert_eq!(store.get("a").unwrap().unwrap().data, b"{\"id\":\"a\"}");
    assert_eq!(store.counts("q", T0).unwrap().waiting, 1);

    // Still a duplicate while it runs...
    let (_, token) = reserve(&*store, T0).unwrap();
    assert_eq!(
        store.add(job("a"), T0).unwrap(),
        Added::Duplicate("a".into())
    );
    // ...and while it is dead, even from another queue.
    assert!(store.fail("a", &token, "boom", None).unwrap());
    let mut elsewhere = job("a");
    elsewhere.queue = "other".into();
    assert_eq!(
        store.add(elsewhere, T0).unwrap(),
        Added::Duplicate("a".into())
    );
    assert_eq!(store.counts("other", T0).unwrap(), QueueCounts::default());
}

pub fn completed_ids_can_be_added_again(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let (_, token) = reserve(&*store, T0).unwrap();
    assert!(store.complete("a", &token).unwrap());
    add(&*store, job("a"));
    assert_eq!(store.get("a").unwrap().unwrap().attempts, 0);
}

/// Urgent before normal before low; within a priority, the earliest due, then the earliest
/// added.
pub fn reserve_order(make: MakeStore<'_>) {
    let store = make();
    let with = |id: &str, priority: Priority, run_at: i64| add_at(&*store, id, priority, run_at);
    with("low", Priority::Low, T0 - 50);
    with("normal-1", Priority::Normal, T0 - 10);
    with("normal-2", Priority::Normal, T0 - 10);
    with("urgent", Priority::Urgent, T0);
    with("normal-early", Priority::Normal, T0 - 20);
    with("normal-3", Priority::Normal, T0 - 10);
    // Not due yet: an urgent job in the future does not hold the others back.
    with("urgent-later", Priority::Urgent, T0 + 1_000);

    let order: Vec<String> =
        std::iter::from_fn(|| reserve(&*store, T0).map(|(id, _)| id)).collect();
    assert_eq!(
        order,
        [
            "urgent",
            "normal-early",
            "normal-1",
            "normal-2",
            "normal-3",
            "low"
        ]
    );
    assert_eq!(reserve(&*store, T0 + 1_000).unwrap().0, "urgent-later");
}

pub fn delayed_jobs_wait_until_due(make: MakeStore<'_>) {
    let store = make();
    let mut later = job("later");
    later.run_at = T0 + 5_000;
    add(&*store, later);
    assert_eq!(reserve(&*store, T0), None);
    assert_eq!(reserve(&*store, T0 + 4_999), None);
    let counts = store.counts("q", T0).unwrap();
    assert_eq!((counts.waiting, counts.delayed), (0, 1));
    let counts = store.counts("q", T0 + 5_000).unwrap();
    assert_eq!((counts.waiting, counts.delayed), (1, 0));
    assert_eq!(reserve(&*store, T0 + 5_000).unwrap().0, "later");
}

pub fn reserve_leases_and_counts_attempts(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let reserved = store.reserve("q", T0, T0 + 7_000).unwrap().unwrap();
    assert_eq!(reserved.job.id, "a");
    assert_eq!(reserved.job.state, JobState::Active);
    assert_eq!(reserved.job.attempts, 1);
    assert_eq!(
        reserved.job.run_at,
        T0 + 7_000,
        "an active job's run_at is its lease's end"
    );
    assert_eq!(reserved.job.data, b"{\"id\":\"a\"}");
    assert!(!reserved.token.is_empty());
    let stored = store.get("a").unwrap().unwrap();
    assert_eq!(stored.state, JobState::Active);
    assert_eq!(stored.attempts, 1);
    // Held: not handed out again.
    assert_eq!(reserve(&*store, T0 + 1), None);
}

pub fn queues_are_separate(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let mut other = job("b");
    other.queue = "other".into();
    add(&*store, other);
    assert_eq!(store.reserve("nobody", T0, T0 + 1_000).unwrap(), None);
    let from_other = store.reserve("other", T0, T0 + 1_000).unwrap().unwrap();
    assert_eq!(from_other.job.id, "b");
    assert_eq!(from_other.job.queue, "other");
    assert_eq!(store.reserve("other", T0, T0 + 1_000).unwrap(), None);
    assert_eq!(reserve(&*store, T0).unwrap().0, "a");
    assert_eq!(store.counts("other", T0).unwrap().active, 1);
    assert_eq!(store.counts("q", T0).unwrap().active, 1);
    // Recovery and the dead-letter queue are per queue too.
    assert!(store.recover_stalled("other", T0 + 500).unwrap().is_empty());
    assert_eq!(store.dead_letters("other", 10).unwrap(), Vec::new());
}

pub fn stale_tokens_do_nothing(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let (_, first) = reserve(&*store, T0).unwrap();
    let progress = Progress {
        percent: 10,
        message: "x".into(),
    };
    // A token that was never issued.
    assert!(!store.complete("a", "not-a-token").unwrap());
    assert!(!store.fail("a", "not-a-token", "e", None).unwrap());
    assert!(!store.set_progress("a", "not-a-token", &progress).unwrap());
    assert!(!store.extend_lease("a", "not-a-token", T0 + 99_000).unwrap());
    // Unknown ids.
    assert!(!store.complete("nope", &first).unwrap());
    assert!(!store.extend_lease("nope", &first, T0).unwrap());

    // The lease ends, the job is recovered and reserved again: the first token is stale.
    assert_eq!(
        store.recover_stalled("q", T0 + 30_001).unwrap(),
        vec![Stalled {
            id: "a".into(),
            state: JobState::Waiting
        }]
    );
    let (_, second) = reserve(&*store, T0 + 30_001).unwrap();
    assert_ne!(first, second);
    assert!(!store.complete("a", &first).unwrap());
    assert!(!store.fail("a", &first, "late", Some(T0)).unwrap());
    assert!(!store.set_progress("a", &first, &progress).unwrap());
    assert!(!store.extend_lease("a", &first, T0 + 99_000).unwrap());
    let record = store.get("a").unwrap().unwrap();
    assert_eq!(record.state, JobState::Active);
    assert_eq!(record.progress, None);
    assert_eq!(record.run_at, T0 + 60_001);
    // The current token works.
    assert!(store.complete("a", &second).unwrap());

    // A token is also stale once its job has failed and waits for a retry.
    add(&*store, job("b"));
    let (_, token) = reserve(&*store, T0).unwrap();
    assert!(store.fail("b", &token, "e", Some(T0 + 10)).unwrap());
    assert!(!store.complete("b", &token).unwrap());
    assert!(!store.fail("b", &token, "e", None).unwrap());
    assert_eq!(store.get("b").unwrap().unwrap().state, JobState::Waiting);
}

pub fn complete_removes(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let (_, token) = reserve(&*store, T0).unwrap();
    assert!(store.complete("a", &token).unwrap());
    assert_eq!(store.get("a").unwrap(), None);
    assert_eq!(store.counts("q", T0).unwrap(), QueueCounts::default());
    assert!(!store.complete("a", &token).unwrap(), "completing twice");
    assert_eq!(reserve(&*store, T0 + 1_000_000), None);
}

pub fn fail_with_retry_waits(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let (_, token) = reserve(&*store, T0).unwrap();
    assert!(
        store
            .fail("a", &token, "smtp down", Some(T0 + 2_000))
            .unwrap()
    );
    let record = store.get("a").unwrap().unwrap();
    assert_eq!(record.state, JobState::Waiting);
    assert_eq!(record.run_at, T0 + 2_000);
    assert_eq!(record.attempts, 1);
    assert_eq!(record.last_error.as_deref(), Some("smtp down"));
    let counts = store.counts("q", T0 + 1).unwrap();
    assert_eq!((counts.delayed, counts.active), (1, 0));
    assert_eq!(reserve(&*store, T0 + 1_999), None);
    let again = store.reserve("q", T0 + 2_000, T0 + 3_000).unwrap().unwrap();
    assert_eq!(again.job.id, "a");
    assert_eq!(again.job.attempts, 2);
}

pub fn fail_without_retry_is_dead(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let (_, token) = reserve(&*store, T0).unwrap();
    assert!(store.fail("a", &token, "bad address", None).unwrap());
    let record = store.get("a").unwrap().unwrap();
    assert_eq!(record.state, JobState::Dead);
    assert_eq!(record.last_error.as_deref(), Some("bad address"));
    assert_eq!(store.counts("q", T0).unwrap().dead, 1);
    assert_eq!(
        reserve(&*store, T0 + 1_000_000),
        None,
        "dead jobs are not reserved"
    );
    assert!(
        store
            .recover_stalled("q", T0 + 1_000_000)
            .unwrap()
            .is_empty()
    );
}

/// The dead-letter queue lists oldest first (by when the jobs were added, then the order they
/// were added), up to the limit; a requeued job is due at once with its attempts reset.
pub fn dead_letters_and_requeue(make: MakeStore<'_>) {
    let store = make();
    // Added a, b, c in that order (b and c at the same time), killed c, a, b.
    store.add(job("a"), T0).unwrap();
    store.add(job("b"), T0 + 1).unwrap();
    store.add(job("c"), T0 + 1).unwrap();
    let mut tokens = std::collections::HashMap::new();
    while let Some((id, token)) = reserve(&*store, T0 + 10) {
        tokens.insert(id, token);
    }
    for id in ["c", "a", "b"] {
        assert!(
            store
                .fail(id, &tokens[id], &format!("{id} failed"), None)
                .unwrap()
        );
    }
    let ids = |limit| -> Vec<String> {
        store
            .dead_letters("q", limit)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(10), ["a", "b", "c"]);
    assert_eq!(ids(2), ["a", "b"]);
    assert_eq!(ids(0), Vec::<String>::new());
    let dead = store.dead_letters("q", 1).unwrap().remove(0);
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("a failed"));
    assert_eq!(dead.attempts, 1);

    // Requeue: waiting, due at the given time, attempts reset.
    assert!(store.requeue_dead("b", T0 + 500).unwrap());
    let record = store.get("b").unwrap().unwrap();
    assert_eq!(record.state, JobState::Waiting);
    assert_eq!(record.attempts, 0);
    assert_eq!(record.run_at, T0 + 500);
    assert_eq!(ids(10), ["a", "c"]);
    assert_eq!(store.counts("q", T0 + 500).unwrap().waiting, 1);
    let again = store.reserve("q", T0 + 500, T0 + 600).unwrap().unwrap();
    assert_eq!((again.job.id.as_str(), again.job.attempts), ("b", 1));

    // Only dead jobs can be requeued.
    assert!(!store.requeue_dead("b", T0 + 500).unwrap(), "an active job");
    assert!(
        !store.requeue_dead("nope", T0 + 500).unwrap(),
        "an unknown job"
    );
    store.add(job("d"), T0).unwrap();
    assert!(!store.requeue_dead("d", T0 + 500).unwrap(), "a waiting job");
}

pub fn recover_stalled(make: MakeStore<'_>) {
    let store = make();
    let mut one_attempt = job("last");
    one_attempt.max_attempts = 1;
    add(&*store, job("retry"));
    add(&*store, one_attempt);
    add(&*store, job("fine"));
    let a = store.reserve("q", T0, T0 + 1_000).unwrap().unwrap();
    let b = store.reserve("q", T0, T0 + 1_000).unwrap().unwrap();
    let c = store.reserve("q", T0, T0 + 5_000).unwrap().unwrap();
    assert_eq!(
        [a.job.id.as_str(), b.job.id.as_str(), c.job.id.as_str()],
        ["retry", "last", "fine"]
    );

    // No lease has ended yet.
    assert!(store.recover_stalled("q", T0 + 999).unwrap().is_empty());

    let mut stalled = store.recover_stalled("q", T0 + 1_001).unwrap();
    stalled.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        stalled,
        vec![
            Stalled {
                id: "last".into(),
                state: JobState::Dead
            },
            Stalled {
                id: "retry".into(),
                state: JobState::Waiting
            },
        ]
    );
    let retry = store.get("retry").unwrap().unwrap();
    assert_eq!(retry.state, JobState::Waiting);
    assert_eq!(retry.run_at, T0 + 1_001, "due again at once");
    assert_eq!(retry.attempts, 1, "the stalled attempt counts");
    assert_eq!(store.get("last").unwrap().unwrap().state, JobState::Dead);
    assert_eq!(store.get("fine").unwrap().unwrap().state, JobState::Active);
    assert_eq!(store.dead_letters("q", 10).unwrap()[0].id, "last");

    // Recovered once only.
    assert!(store.recover_stalled("q", T0 + 1_002).unwrap().is_empty());
    let again = store.reserve("q", T0 + 1_002, T0 + 2_000).unwrap().unwrap();
    assert_eq!((again.job.id.as_str(), again.job.attempts), ("retry", 2));
}

pub fn extend_lease_defers_recovery(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let reserved = store.reserve("q", T0, T0 + 1_000).unwrap().unwrap();
    assert!(
        store
            .extend_lease("a", &reserved.token, T0 + 10_000)
            .unwrap()
    );
    assert_eq!(store.get("a").unwrap().unwrap().run_at, T0 + 10_000);
    assert!(store.recover_stalled("q", T0 + 5_000).unwrap().is_empty());
    assert_eq!(store.recover_stalled("q", T0 + 10_001).unwrap().len(), 1);
}

pub fn progress_is_recorded(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    let (_, token) = reserve(&*store, T0).unwrap();
    let half = Progress {
        percent: 50,
        message: "half way".into(),
    };
    assert!(store.set_progress("a", &token, &half).unwrap());
    assert_eq!(store.get("a").unwrap().unwrap().progress, Some(half));
    let done = Progress {
        percent: 100,
        message: String::new(),
    };
    assert!(store.set_progress("a", &token, &done).unwrap());
    assert_eq!(store.get("a").unwrap().unwrap().progress, Some(done));
}

pub fn counts_by_state(make: MakeStore<'_>) {
    let store = make();
    assert_eq!(store.counts("q", T0).unwrap(), QueueCounts::default());
    for id in ["w1", "w2", "active", "dead"] {
        add(&*store, job(id));
    }
    let mut delayed = job("delayed");
    delayed.run_at = T0 + 60_000;
    add(&*store, delayed);
    let (first, _) = reserve(&*store, T0).unwrap();
    assert_eq!(first, "w1");
    let (_, token) = reserve(&*store, T0).unwrap();
    assert!(store.fail("w2", &token, "e", None).unwrap());
    // w1 active, w2 dead, `active` and `dead` waiting, `delayed` delayed.
    assert_eq!(
        store.counts("q", T0).unwrap(),
        QueueCounts {
            waiting: 2,
            delayed: 1,
            active: 1,
            dead: 1
        }
    );
    assert_eq!(
        store.counts("elsewhere", T0).unwrap(),
        QueueCounts::default()
    );
}

/// Several threads reserve at once: every job is handed out exactly once.
pub fn concurrent_reserves_hand_out_each_job_once(make: MakeStore<'_>) {
    let store = make();
    const JOBS: usize = 200;
    for n in 0..JOBS {
        add(&*store, job(&format!("j{n}")));
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut taken = Vec::new();
                // Bounded: at most every job, plus one empty answer.
                for _ in 0..=JOBS {
                    match store.reserve("q", T0, T0 + 60_000).unwrap() {
                        Some(reserved) => {
                            assert!(store.complete(&reserved.job.id, &reserved.token).unwrap());
                            taken.push(reserved.job.id);
                        }
                        None => break,
                    }
                }
                taken
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for thread in threads {
        for id in thread.join().expect("a reserving thread panicked") {
            assert!(seen.insert(id.clone()), "{id} was handed out twice");
        }
    }
    assert_eq!(seen.len(), JOBS);
    assert_eq!(store.counts("q", T0).unwrap(), QueueCounts::default());
}

/// Completes a job and reserves the next in one call: the order is `reserve`'s, and an empty
/// queue gives no job.
pub fn complete_and_reserve(make: MakeStore<'_>) {
    let store = make();
    let mut urgent = job("urgent");
    urgent.priority = Priority::Urgent;
    add(&*store, job("a"));
    add(&*store, job("b"));
    add(&*store, urgent);
    let (id, mut token) = reserve(&*store, T0).unwrap();
    assert_eq!(id, "urgent");
    let mut order = vec![id.clone()];
    let mut current = id;
    loop {
        let (completed, next) = store
            .complete_and_reserve(&current, &token, "q", T0, T0 + 9_000)
            .unwrap();
        assert!(completed, "completing {current}");
        assert_eq!(store.get(&current).unwrap(), None, "{current} is removed");
        let Some(next) = next else { break };
        assert_eq!(next.job.state, JobState::Active);
        assert_eq!(next.job.attempts, 1);
        assert_eq!(next.job.run_at, T0 + 9_000);
        assert_ne!(next.token, token);
        (current, token) = (next.job.id, next.token);
        order.push(current.clone());
    }
    assert_eq!(order, ["urgent", "a", "b"]);
    assert_eq!(store.counts("q", T0).unwrap(), QueueCounts::default());
}

/// A stale token completes nothing, and the next job is reserved all the same.
pub fn complete_and_reserve_with_a_stale_token(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    add(&*store, job("b"));
    let (id, token) = reserve(&*store, T0).unwrap();
    assert_eq!(id, "a");
    let (completed, next) = store
        .complete_and_reserve("a", "not-a-token", "q", T0, T0 + 30_000)
        .unwrap();
    assert!(!completed);
    let next = next.expect("b is due");
    assert_eq!(next.job.id, "b");
    // `a` is still held under its lease, and its token still works.
    assert_eq!(store.get("a").unwrap().unwrap().state, JobState::Active);
    let (completed, none) = store
        .complete_and_reserve("a", &token, "q", T0, T0 + 30_000)
        .unwrap();
    assert!(completed);
    assert_eq!(none, None, "b is held, nothing else is due");
    // Completing twice: stale, and nothing to reserve.
    assert_eq!(
        store
            .complete_and_reserve("a", &token, "q", T0, T0 + 30_000)
            .unwrap(),
        (false, None)
    );
    assert!(store.complete("b", &next.token).unwrap());
}

/// Fails a job and reserves the next in one call; a retry due by then may be that next job.
pub fn fail_and_reserve(make: MakeStore<'_>) {
    let store = make();
    add(&*store, job("a"));
    add(&*store, job("b"));
    let (_, token) = reserve(&*store, T0).unwrap();
    let (failed, next) = store
        .fail_and_reserve("a", &token, "boom", Some(T0 + 500), "q", T0, T0 + 30_000)
        .unwrap();
    assert!(failed);
    let next = next.expect("b is due");
    assert_eq!(next.job.id, "b");
    let a = store.get("a").unwrap().unwrap();
    assert_eq!((a.state, a.run_at), (JobState::Waiting, T0 + 500));
    assert_eq!(a.last_error.as_deref(), Some("boom"));
    // b dies (no retry); at T0 + 500, a is due again and is the next job.
    let (failed, again) = store
        .fail_and_reserve("b", &next.token, "dead", None, "q", T0 + 500, T0 + 30_500)
        .unwrap();
    assert!(failed);
    assert_eq!(store.get("b").unwrap().unwrap().state, JobState::Dead);
    let again = again.expect("a's retry is due");
    assert_eq!((again.job.id.as_str(), again.job.attempts), ("a", 2));
    // A stale token fails nothing.
    assert_eq!(
        store
            .fail_and_reserve("a", &token, "late", None, "q", T0 + 500, T0 + 30_500)
            .unwrap(),
        (false, None)
    );
    assert_eq!(store.get("a").unwrap().unwrap().state, JobState::Active);
}

/// `reserve_many` hands out jobs in `reserve`'s order, at most `max`, each under its own
/// lease.
pub fn reserve_many_order_and_max(make: MakeStore<'_>) {
    let store = make();
    let with = |id: &str, priority: Priority, run_at: i64| add_at(&*store, id, priority, run_at);
    with("low", Priority::Low, T0 - 50);
    with("normal-1", Priority::Normal, T0 - 10);
    with("normal-2", Priority::Normal, T0 - 10);
    with("urgent", Priority::Urgent, T0);
    with("normal-early", Priority::Normal, T0 - 20);
    assert_eq!(store.reserve_many("q", T0, T0 + 1_000, 0).unwrap(), vec![]);
    let first = store.reserve_many("q", T0, T0 + 1_000, 3).unwrap();
    let ids: Vec<&str> = first.iter().map(|r| r.job.id.as_str()).collect();
    assert_eq!(ids, ["urgent", "normal-early", "normal-1"]);
    let tokens: HashSet<&str> = first.iter().map(|r| r.token.as_str()).collect();
    assert_eq!(tokens.len(), 3, "one token per job");
    for reserved in &first {
        assert_eq!(reserved.job.state, JobState::Active);
        assert_eq!(reserved.job.attempts, 1);
        assert_eq!(reserved.job.run_at, T0 + 1_000);
        assert_eq!(
            store.get(&reserved.job.id).unwrap().unwrap().state,
            JobState::Active
        );
    }
    // Fewer left than asked for.
    let rest = store.reserve_many("q", T0, T0 + 1_000, 10).unwrap();
    let ids: Vec<&str> = rest.iter().map(|r| r.job.id.as_str()).collect();
    assert_eq!(ids, ["normal-2", "low"]);
    assert_eq!(store.reserve_many("q", T0, T0 + 1_000, 10).unwrap(), vec![]);
    assert_eq!(store.counts("q", T0).unwrap().active, 5);
    // Each lease is its own: completing one with its token leaves the others.
    assert!(store.complete("urgent", &first[0].token).unwrap());
    assert!(!store.complete("normal-early", &first[0].token).unwrap());
    assert!(store.complete("normal-early", &first[1].token).unwrap());
    assert_eq!(store.counts("q", T0).unwrap().active, 3);
}

/// `reserve_many` takes only due jobs, and not other queues'.
pub fn reserve_many_due_times(make: MakeStore<'_>) {
    let store = make();
    let mut later = job("later");
    later.run_at = T0 + 5_000;
    let mut urgent_later = job("urgent-later");
    urgent_later.priority = Priority::Urgent;
    urgent_later.run_at = T0 + 5_000;
    let mut other = job("other");
    other.queue = "other".into();
    add(&*store, later);
    add(&*store, urgent_later);
    add(&*store, job("now"));
    add(&*store, other);
    let due = store.reserve_many("q", T0, T0 + 1_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].job.id, "now");
    assert_eq!(
        store.reserve_many("q", T0 + 4_999, T0 + 9_000, 10).unwrap(),
        vec![]
    );
    let due = store.reserve_many("q", T0 + 5_000, T0 + 9_000, 10).unwrap();
    let ids: Vec<&str> = due.iter().map(|r| r.job.id.as_str()).collect();
    assert_eq!(ids, ["urgent-later", "later"]);
    assert_eq!(store.counts("other", T0).unwrap().waiting, 1);
}
