//! Job queues end to end on a real runtime (the process-wide background runtime, and a served
//! app): workers take jobs in order, retry them with backoff, move them to the dead-letter
//! queue, report progress, survive panics, respect their concurrency, stop gracefully, and
//! run a stalled job again.
//!
//! Waits are polls with a generous bound that fail the test when what they wait for never
//! happens; no assertion depends on how fast the machine is.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_lite::future::block_on;
use serde::{Deserialize, Serialize};
use weft::backend::memory::MemoryBackend;
use weft::background::Background;
use weft::clock::unix_millis;
use weft::events::Events;
use weft::prelude::*;
use weft::queue::store::QueueStore;
use weft::queue::{
    Backoff, Job, JobCompleted, JobFailed, JobOptions, JobProgress, JobStalled, JobState, Priority,
    Queue, Queues, Worker,
};
use weft::services::Inject;

const BOUND: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Email {
    to: String,
}

fn email(to: &str) -> Email {
    Email { to: to.to_owned() }
}

/// A queue on a fresh in-memory store, with its own emitter.
fn queue() -> (Queue, Events) {
    let events = Events::new();
    let queue = Queue::new("mail", Arc::new(MemoryBackend::new())).with_events(events.clone());
    (queue, events)
}

/// Starts `worker` on the process-wide background runtime.
fn start(worker: Worker) -> Worker {
    worker
        .start(&weft_runtime::background_runtime())
        .expect("the worker starts");
    worker
}

/// Stops `worker` and waits for it.
fn stop(worker: &Worker) {
    worker.begin_stop();
    assert!(
        worker.wait_stopped(Instant::now() + BOUND),
        "the worker stops"
    );
}

/// Polls `done` until it holds; fails after [`BOUND`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Collects the events of type `E`.
fn collect<E: Clone + Send + Sync + 'static>(events: &Events) -> Arc<Mutex<Vec<E>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    events.on(move |event: &E| sink.lock().unwrap().push(event.clone()));
    seen
}

fn is_empty(queue: &Queue) -> bool {
    block_on(queue.counts()).unwrap() == Default::default()
}

#[test]
fn added_jobs_are_processed_with_their_data() {
    let (queue, events) = queue();
    let completed = collect::<JobCompleted>(&events);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let worker = start(
        Worker::new(queue.clone()).handle("welcome", move |job: Job<Email>| {
            let sink = Arc::clone(&sink);
            async move {
                assert_eq!(
                    (job.name(), job.queue(), job.attempt()),
                    ("welcome", "mail", 1)
                );
                sink.lock().unwrap().push(job.into_data());
                Ok::<(), String>(())
            }
        }),
    );
    let mut ids = HashSet::new();
    for to in ["a@x", "b@x", "c@x"] {
        ids.insert(block_on(queue.add("welcome", &email(to))).unwrap());
    }
    wait_until("three jobs completed", || {
        completed.lock().unwrap().len() == 3
    });
    let mut got: Vec<String> = seen.lock().unwrap().iter().map(|e| e.to.clone()).collect();
    got.sort();
    assert_eq!(got, ["a@x", "b@x", "c@x"]);
    let done: HashSet<_> = completed
        .lock()
        .unwrap()
        .iter()
        .map(|e| weft::queue::JobId(e.id.clone()))
        .collect();
    assert_eq!(done, ids);
    assert!(is_empty(&queue), "completed jobs are removed");
    stop(&worker);
}

#[test]
fn jobs_run_by_priority_then_in_order_added() {
    let (queue, _) = queue();
    for (to, priority) in [
        ("low", Priority::Low),
        ("normal-1", Priority::Normal),
        ("urgent", Priority::Urgent),
        ("normal-2", Priority::Normal),
    ] {
        block_on(queue.add_with("welcome", &email(to), JobOptions::new().priority(priority)))
            .unwrap();
    }
    let order = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&order);
    // One at a time, started after the jobs are in: the order is the store's.
    let worker = start(Worker::new(queue.clone()).concurrency(1).handle(
        "welcome",
        move |job: Job<Email>| {
            sink.lock().unwrap().push(job.data().to.clone());
            async { Ok::<(), String>(()) }
        },
    ));
    wait_until("four jobs", || order.lock().unwrap().len() == 4);
    assert_eq!(
        *order.lock().unwrap(),
        ["urgent", "normal-1", "normal-2", "low"]
    );
    stop(&worker);
}

#[test]
fn a_delayed_job_does_not_run_before_its_delay() {
    let (queue, _) = queue();
    let ran_at = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&ran_at);
    let worker = start(
        Worker::new(queue.clone())
            .poll_interval(Duration::from_millis(20))
            .handle("welcome", move |job: Job<Email>| {
                sink.lock()
                    .unwrap()
                    .push((job.data().to.clone(), unix_millis(SystemTime::now())));
                async { Ok::<(), String>(()) }
            }),
    );
    let added = unix_millis(SystemTime::now());
    block_on(queue.add_with(
        "welcome",
        &email("later"),
        JobOptions::new().delay(Duration::from_millis(300)),
    ))
    .unwrap();
    block_on(queue.add("welcome", &email("now"))).unwrap();
    wait_until("both jobs ran", || ran_at.lock().unwrap().len() == 2);
    let ran = ran_at.lock().unwrap().clone();
    assert_eq!(ran[0].0, "now");
    assert_eq!(ran[1].0, "later");
    assert!(
        ran[1].1 >= added + 300,
        "ran {} ms after it was added",
        ran[1].1 - added
    );
    stop(&worker);
}

#[test]
fn a_job_id_de_duplicates() {
    let (queue, _) = queue();
    let first =
        block_on(queue.add_with("welcome", &email("a"), JobOptions::new().id("once"))).unwrap();
    let second =
        block_on(queue.add_with("welcome", &email("b"), JobOptions::new().id("once"))).unwrap();
    assert_eq!(first.as_str(), "once");
    assert_eq!(first, second);
    assert_eq!(block_on(queue.counts()).unwrap().waiting, 1);
    let stored = block_on(queue.get("once")).unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<Email>(&stored.data).unwrap(),
        email("a")
    );
    // Generated ids are unique.
    let a = block_on(queue.add("welcome", &email("a"))).unwrap();
    let b = block_on(queue.add("welcome", &email("a"))).unwrap();
    assert_ne!(a, b);
}

#[test]
fn failures_retry_then_go_to_the_dead_letter_queue_and_can_be_requeued() {
    let (queue, events) = queue();
    let failed = collect::<JobFailed>(&events);
    let completed = collect::<JobCompleted>(&events);
    let healthy = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let (ok, count) = (Arc::clone(&healthy), Arc::clone(&attempts));
    let worker = start(
        Worker::new(queue.clone()).handle("welcome", move |job: Job<Email>| {
            count.fetch_add(1, Ordering::SeqCst);
            let ok = ok.load(Ordering::SeqCst);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(format!("smtp down (attempt {})", job.attempt()))
                }
            }
        }),
    );
    let options = JobOptions::new()
        .attempts(3)
        .backoff(Backoff::Fixed { delay_ms: 20 });
    let id = block_on(queue.add_with("welcome", &email("a"), options)).unwrap();
    wait_until("the job is dead", || {
        block_on(queue.dead_letters(10)).unwrap().len() == 1
    });
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let dead = block_on(queue.dead_letters(10)).unwrap().remove(0);
    assert_eq!(dead.id, id.as_str());
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("smtp down (attempt 3)"));
    let failures: Vec<(u32, bool, bool)> = failed
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.attempt, e.will_retry, e.dead))
        .collect();
    assert_eq!(
        failures,
        [(1, true, false), (2, true, false), (3, false, true)]
    );
    assert_eq!(
        failed.lock().unwrap()[0].retry_in,
        Some(Duration::from_millis(20))
    );

    // Re-queued, with its attempts reset: it runs again and now succeeds.
    healthy.store(true, Ordering::SeqCst);
    assert!(block_on(queue.requeue(id.as_str())).unwrap());
    assert!(
        !block_on(queue.requeue(id.as_str())).unwrap(),
        "not dead any more"
    );
    wait_until("the requeued job completed", || {
        completed.lock().unwrap().len() == 1
    });
    assert_eq!(completed.lock().unwrap()[0].attempt, 1);
    assert!(is_empty(&queue));
    stop(&worker);
}

#[test]
fn a_job_without_handler_fails_with_a_clear_error() {
    let (queue, _) = queue();
    let worker = start(
        Worker::new(queue.clone())
            .handle("welcome", |_: Job<Email>| async { Ok::<(), String>(()) }),
    );
    block_on(queue.add_with("unknown", &email("a"), JobOptions::new().attempts(1))).unwrap();
    wait_until("the job is dead", || {
        block_on(queue.dead_letters(1)).unwrap().len() == 1
    });
    let error = block_on(queue.dead_letters(1)).unwrap()[0]
        .last_error
        .clone()
        .unwrap();
    assert_eq!(error, "no handler for jobs named `unknown` in queue `mail`");

    // Data that does not read as the handler's type fails too.
    block_on(queue.add_with("welcome", &42, JobOptions::new().attempts(1))).unwrap();
    wait_until("the second job is dead", || {
        block_on(queue.dead_letters(10)).unwrap().len() == 2
    });
    let error = block_on(queue.dead_letters(10)).unwrap()[1]
        .last_error
        .clone()
        .unwrap();
    assert!(error.starts_with("cannot read the data of job"), "{error}");
    stop(&worker);
}

#[test]
fn progress_is_stored_and_emitted() {
    let (queue, events) = queue();
    let progress = collect::<JobProgress>(&events);
    let stored = Arc::new(Mutex::new(None));
    let (sink, store) = (Arc::clone(&stored), Arc::clone(queue.store()));
    let worker = start(
        Worker::new(queue.clone()).handle("welcome", move |job: Job<Email>| {
            let (sink, store) = (Arc::clone(&sink), Arc::clone(&store));
            async move {
                job.progress(50, "half way")
                    .await
                    .map_err(|e| e.to_string())?;
                *sink.lock().unwrap() = store.get(job.id()).unwrap().unwrap().progress;
                job.progress(200, "done").await.map_err(|e| e.to_string())
            }
        }),
    );
    block_on(queue.add("welcome", &email("a"))).unwrap();
    wait_until("two progress events", || {
        progress.lock().unwrap().len() == 2
    });
    let reported: Vec<(u8, String)> = progress
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.progress.percent, e.progress.message.clone()))
        .collect();
    assert_eq!(
        reported,
        [(50, "half way".to_owned()), (100, "done".to_owned())],
        "percent is capped at 100"
    );
    let stored = stored.lock().unwrap().clone().unwrap();
    assert_eq!((stored.percent, stored.message.as_str()), (50, "half way"));
    stop(&worker);
}

#[test]
fn a_panicking_handler_fails_its_job_only() {
    let (queue, events) = queue();
    let completed = collect::<JobCompleted>(&events);
    let worker = start(
        Worker::new(queue.clone())
            .handle("async", |job: Job<Email>| async move {
                if job.data().to == "boom" {
                    panic!("async handler exploded");
                }
                Ok::<(), String>(())
            })
            .handle_blocking("blocking", |job: Job<Email>| {
                if job.data().to == "boom" {
                    panic!("blocking handler exploded");
                }
                Ok::<(), String>(())
            }),
    );
    let once = || JobOptions::new().attempts(1);
    for name in ["async", "blocking"] {
        block_on(queue.add_with(name, &email("boom"), once())).unwrap();
        block_on(queue.add_with(name, &email("fine"), once())).unwrap();
    }
    wait_until("two dead, two completed", || {
        block_on(queue.dead_letters(10)).unwrap().len() == 2 && completed.lock().unwrap().len() == 2
    });
    let mut errors: Vec<String> = block_on(queue.dead_letters(10))
        .unwrap()
        .into_iter()
        .map(|job| job.last_error.unwrap())
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            "the handler panicked: async handler exploded",
            "the handler panicked: blocking handler exploded"
        ]
    );
    // The worker still runs jobs.
    block_on(queue.add("async", &email("after"))).unwrap();
    wait_until("a job after the panics", || {
        completed.lock().unwrap().len() == 3
    });
    stop(&worker);
}

#[test]
fn the_concurrency_limit_is_respected() {
    let (queue, events) = queue();
    let completed = collect::<JobCompleted>(&events);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (Arc::clone(&running), Arc::clone(&most));
    let worker = start(Worker::new(queue.clone()).concurrency(3).handle(
        "work",
        move |_: Job<()>| {
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            async move {
                let here = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(here, Ordering::SeqCst);
                weft_service::runtime::sleep(Duration::from_millis(30)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        },
    ));
    for _ in 0..12 {
        block_on(queue.add("work", &())).unwrap();
    }
    wait_until("twelve jobs", || completed.lock().unwrap().len() == 12);
    let peak = most.load(Ordering::SeqCst);
    assert!(peak <= 3, "{peak} jobs ran at once");
    assert!(peak >= 2, "the slots ran side by side (peak {peak})");
    stop(&worker);
}

#[test]
fn blocking_handlers_run_off_the_task_threads_and_report_progress() {
    let (queue, events) = queue();
    let progress = collect::<JobProgress>(&events);
    let completed = collect::<JobCompleted>(&events);
    let threads = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&threads);
    let task_thread = Arc::new(Mutex::new(None));
    let task_sink = Arc::clone(&task_thread);
    let worker = start(
        Worker::new(queue.clone())
            .concurrency(2)
            .handle_blocking("resize", move |job: Job<u32>| {
                sink.lock().unwrap().push(std::thread::current().id());
                job.progress_blocking(100, format!("resized to {}", job.data()))
            })
            .handle("probe", move |_: Job<()>| {
                *task_sink.lock().unwrap() = Some(std::thread::current().id());
                async { Ok::<(), String>(()) }
            }),
    );
    block_on(queue.add("probe", &())).unwrap();
    for size in [64, 128] {
        block_on(queue.add("resize", &size)).unwrap();
    }
    wait_until("three jobs", || completed.lock().unwrap().len() == 3);
    let task_thread = task_thread.lock().unwrap().unwrap();
    assert!(threads.lock().unwrap().iter().all(|id| *id != task_thread));
    let mut messages: Vec<String> = progress
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.progress.message.clone())
        .collect();
    messages.sort();
    assert_eq!(messages, ["resized to 128", "resized to 64"]);
    stop(&worker);
}

#[test]
fn a_graceful_stop_waits_for_the_running_job_and_takes_no_new_one() {
    let (queue, events) = queue();
    let completed = collect::<JobCompleted>(&events);
    let started = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let (began, go) = (Arc::clone(&started), Arc::clone(&release));
    let worker = start(
        Worker::new(queue.clone()).handle("slow", move |_: Job<()>| {
            let (began, go) = (Arc::clone(&began), Arc::clone(&go));
            async move {
                began.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + BOUND;
                while !go.load(Ordering::SeqCst) && Instant::now() < deadline {
                    weft_service::runtime::sleep(Duration::from_millis(5)).await;
                }
                Ok::<(), String>(())
            }
        }),
    );
    block_on(queue.add("slow", &())).unwrap();
    wait_until("the job started", || started.load(Ordering::SeqCst));
    worker.begin_stop();
    // A deadline already passed: the job is still running.
    assert!(!worker.wait_stopped(Instant::now()));
    block_on(queue.add("slow", &())).unwrap();
    release.store(true, Ordering::SeqCst);
    assert!(worker.wait_stopped(Instant::now() + BOUND));
    assert_eq!(completed.lock().unwrap().len(), 1);
    let counts = block_on(queue.counts()).unwrap();
    assert_eq!(
        (counts.waiting, counts.active),
        (1, 0),
        "the second job was not taken"
    );
}

#[test]
fn a_stalled_job_runs_again() {
    let (queue, events) = queue();
    let stalled = collect::<JobStalled>(&events);
    let completed = collect::<JobCompleted>(&events);
    let id = block_on(queue.add("welcome", &email("a"))).unwrap();
    // A worker that died mid-job: it reserved the job and never came back.
    let now = unix_millis(SystemTime::now());
    let abandoned = queue
        .store()
        .reserve("mail", now, now + 50)
        .unwrap()
        .unwrap();
    assert_eq!(abandoned.job.id, id.as_str());

    let worker = start(
        Worker::new(queue.clone())
            .lease(Duration::from_millis(90))
            .handle("welcome", |_: Job<Email>| async { Ok::<(), String>(()) }),
    );
    wait_until("the job completed", || completed.lock().unwrap().len() == 1);
    assert_eq!(
        completed.lock().unwrap()[0].attempt,
        2,
        "the lost attempt counts"
    );
    let stalled = stalled.lock().unwrap().clone();
    assert_eq!(stalled.len(), 1);
    assert_eq!(
        (
            stalled[0].id.as_str(),
            stalled[0].name.as_str(),
            stalled[0].dead
        ),
        (id.as_str(), "welcome", false)
    );
    // The abandoned attempt's late outcome is refused.
    assert!(
        !queue
            .store()
            .complete(id.as_str(), &abandoned.token)
            .unwrap()
    );
    stop(&worker);
}

#[test]
fn an_idle_worker_wakes_at_once_for_a_job_added_in_process() {
    let (queue, events) = queue();
    let completed = collect::<JobCompleted>(&events);
    // A poll interval far longer than the wait below: only the in-process signal can wake it.
    let worker = start(
        Worker::new(queue.clone())
            .concurrency(2)
            .poll_interval(Duration::from_secs(3_600))
            .handle("welcome", |_: Job<Email>| async { Ok::<(), String>(()) }),
    );
    // Let the slots find the queue empty and go idle.
    std::thread::sleep(Duration::from_millis(50));
    // Another Queue value, same store and name: it shares the signal.
    let producer = Queue::new("mail", Arc::clone(queue.store()));
    block_on(producer.add("welcome", &email("a"))).unwrap();
    wait_until("the job completed", || completed.lock().unwrap().len() == 1);
    stop(&worker);
}

#[test]
fn an_app_injects_its_queues_and_runs_its_workers_with_its_events() {
    let store: Arc<dyn QueueStore> = Arc::new(MemoryBackend::new());
    let completed = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&completed);
    let mail = Queue::new("mail", Arc::clone(&store));
    let app = App::new()
        .queue(mail.clone())
        .queue(Queue::new("images", Arc::clone(&store)))
        .worker(
            Worker::new(mail.clone())
                .handle("welcome", |_: Job<Email>| async { Ok::<(), String>(()) }),
        )
        .on(move |event: &JobCompleted| sink.lock().unwrap().push(event.id.clone()))
        .post(
            "/signup/{to}",
            |queues: Inject<Queues>, Path(to): Path<String>| async move {
                assert_eq!(queues.names(), ["images", "mail"]);
                let id = queues
                    .get("mail")
                    .unwrap()
                    .add("welcome", &email(&to))
                    .await
                    .unwrap();
                id.to_string()
            },
        );
    let mut config = weft::ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = app.listen(config).unwrap();
    let answer = exchange(
        server.local_addrs()[0],
        b"POST /signup/ada HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let id = answer.rsplit("\r\n\r\n").next().unwrap().to_owned();
    wait_until("the app's worker ran the job", || {
        completed.lock().unwrap().contains(&id)
    });
    drop(server);
    assert!(is_empty(&mail));
}

fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

mod backoff {
    use super::*;

    #[test]
    fn fixed_waits_the_same_every_time() {
        let fixed = Backoff::Fixed { delay_ms: 250 };
        for attempt in [1, 2, 10, u32::MAX] {
            assert_eq!(fixed.delay(attempt), Duration::from_millis(250));
        }
    }

    #[test]
    fn exponential_doubles_up_to_its_maximum() {
        let exponential = Backoff::Exponential {
            base_ms: 100,
            max_ms: 1_000,
            jitter: false,
        };
        let delays: Vec<u128> = (1..=6)
            .map(|attempt| exponential.delay(attempt).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
        // No overflow however many attempts.
        assert_eq!(exponential.delay(u32::MAX), Duration::from_millis(1_000));
        assert_eq!(exponential.delay(0), Duration::from_millis(100));
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_computed_delay() {
        let jittered = Backoff::Exponential {
            base_ms: 100,
            max_ms: 10_000,
            jitter: true,
        };
        for attempt in 1..=8 {
            let ceiling = jittered.ceiling(attempt);
            assert_eq!(
                ceiling,
                Duration::from_millis((100u64 << (attempt - 1)).min(10_000))
            );
            let samples: HashSet<Duration> = (0..200).map(|_| jittered.delay(attempt)).collect();
            assert!(samples.iter().all(|delay| *delay <= ceiling));
            // 200 draws from at least 101 values: the chance that they all agree is nil.
            assert!(samples.len() > 1, "no jitter at attempt {attempt}");
        }
    }
}
