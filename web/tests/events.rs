//! The typed event emitter: listener order, once-listeners under concurrent emits, removal,
//! failure isolation and its reports, async and blocking listeners on a real runtime, and the
//! app's emitter in handlers (in memory and over a socket).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use weft::ServerConfig;
use weft::events::{Delivery, Events, ListenerFailed, ListenerFailure};
use weft::prelude::*;
use weft::services::Inject;
use weft::test::TestClient;
use weft_service::runtime::RuntimeHandle;

/// Long enough for a busy 2-core machine: waits end as soon as their outcome is seen.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq)]
struct UserCreated {
    name: String,
}

fn user(name: &str) -> UserCreated {
    UserCreated { name: name.into() }
}

/// A shared log of what listeners saw.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log holds `count` entries, and returns them.
    fn wait_for(&self, count: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let entries = self.entries();
            if entries.len() >= count {
                return entries;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "waited {PATIENCE:?} for {count} log entries, have {entries:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Collects the `ListenerFailed` reports of `events`.
fn failures(events: &Events) -> Arc<Mutex<Vec<ListenerFailed>>> {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    events.on(move |failed: &ListenerFailed| sink.lock().unwrap().push(failed.clone()));
    reports
}

#[test]
fn sync_listeners_run_by_priority_then_in_registration_order() {
    let events = Events::new();
    let log = Log::default();
    for (name, priority) in [("low", -5), ("first 0", 0), ("high", 10), ("second 0", 0)] {
        let log = log.clone();
        events
            .listener()
            .priority(priority)
            .on(move |e: &UserCreated| log.push(format!("{name}: {}", e.name)));
    }
    events.emit(user("ada"));
    assert_eq!(
        log.entries(),
        ["high: ada", "first 0: ada", "second 0: ada", "low: ada"]
    );
}

#[test]
fn an_event_reaches_only_the_listeners_of_its_type() {
    struct Other;
    let events = Events::new();
    let log = Log::default();
    let seen = log.clone();
    events.on(move |e: &UserCreated| seen.push(e.name.clone()));
    // No listener: nothing happens, nothing fails.
    events.emit(Other);
    events.emit(user("ada"));
    assert_eq!(log.entries(), ["ada"]);
    assert_eq!(events.listener_count::<UserCreated>(), 1);
    assert_eq!(events.listener_count::<Other>(), 0);
}

#[test]
fn a_once_listener_runs_exactly_once_under_concurrent_emits() {
    const THREADS: usize = 8;
    const EMITS: usize = 200;
    let events = Events::new();
    let once_calls = Arc::new(AtomicUsize::new(0));
    let every_calls = Arc::new(AtomicUsize::new(0));
    let (once, every) = (Arc::clone(&once_calls), Arc::clone(&every_calls));
    events.listener().once().on(move |_: &UserCreated| {
        once.fetch_add(1, Ordering::SeqCst);
    });
    events.on(move |_: &UserCreated| {
        every.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(events.listener_count::<UserCreated>(), 2);

    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (events, start) = (events.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..EMITS {
                    events.emit(user("ada"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(once_calls.load(Ordering::SeqCst), 1);
    assert_eq!(every_calls.load(Ordering::SeqCst), THREADS * EMITS);
    // The once-listener is gone; the other stays.
    assert_eq!(events.listener_count::<UserCreated>(), 1);
}

#[test]
fn off_removes_a_listener_once() {
    let events = Events::new();
    let log = Log::default();
    let (kept, removed) = (log.clone(), log.clone());
    events.on(move |e: &UserCreated| kept.push(format!("kept {}", e.name)));
    let id = events.on(move |e: &UserCreated| removed.push(format!("removed {}", e.name)));
    events.emit(user("ada"));
    assert!(events.off(id));
    assert!(!events.off(id), "a listener is removed once");
    events.emit(user("bob"));
    assert_eq!(log.entries(), ["kept ada", "removed ada", "kept bob"]);
    assert_eq!(events.listener_count::<UserCreated>(), 1);

    // An id names a listener of one emitter only.
    let other = Events::new();
    let foreign = other.on(|_: &UserCreated| ());
    assert!(!events.off(foreign));
    assert_eq!(other.listener_count::<UserCreated>(), 1);
}

#[test]
fn a_listener_removed_while_an_emit_runs_is_not_called_by_it() {
    let events = Events::new();
    let log = Log::default();
    let victim = Arc::new(Mutex::new(None));
    let (remover, target) = (events.clone(), Arc::clone(&victim));
    events.listener().priority(1).on(move |_: &UserCreated| {
        if let Some(id) = target.lock().unwrap().take() {
            assert!(remover.off(id));
        }
    });
    let seen = log.clone();
    *victim.lock().unwrap() = Some(events.on(move |e: &UserCreated| seen.push(e.name.clone())));
    events.emit(user("ada"));
    assert!(log.entries().is_empty());
}

#[test]
fn errors_and_panics_are_isolated_and_reported() {
    let events = Events::new();
    let reports = failures(&events);
    let log = Log::default();
    let erring = events
        .listener()
        .priority(2)
        .on(|_: &UserCreated| Err::<(), _>("mail server down"));
    let panicking = events
        .listener()
        .priority(1)
        .on(|e: &UserCreated| -> () { panic!("no mailbox for {}", e.name) });
    let fine = log.clone();
    events.on(move |e: &UserCreated| -> Result<(), std::fmt::Error> {
        fine.push(e.name.clone());
        Ok(())
    });

    events.emit(user("ada"));
    assert_eq!(
        log.entries(),
        ["ada"],
        "the listener after the failures ran"
    );
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 2, "{reports:?}");
    let event = std::any::type_name::<UserCreated>();
    assert_eq!(reports[0].event, event);
    assert_eq!(reports[0].listener, erring);
    assert_eq!(
        reports[0].failure,
        ListenerFailure::Error("mail server down".into())
    );
    assert_eq!(reports[1].event, event);
    assert_eq!(reports[1].listener, panicking);
    assert_eq!(
        reports[1].failure,
        ListenerFailure::Panic("no mailbox for ada".into())
    );
    assert!(
        reports[1]
            .to_string()
            .contains("panicked: no mailbox for ada")
    );
}

#[test]
fn a_failing_listener_of_failure_reports_is_only_logged() {
    let events = Events::new();
    let reports = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&reports);
    events.on(move |_: &ListenerFailed| -> () {
        counted.fetch_add(1, Ordering::SeqCst);
        panic!("the report listener fails too");
    });
    events.on(|_: &UserCreated| Err::<(), _>("first failure"));
    events.emit(user("ada"));
    // One report of the first failure; the report listener's own panic is not reported.
    assert_eq!(reports.load(Ordering::SeqCst), 1);
}

#[test]
fn async_listeners_run_outside_a_server_and_emit_and_wait_waits_for_them() {
    let events = Events::new();
    let log = Log::default();
    let seen = log.clone();
    events.on_async(move |e: Arc<UserCreated>| {
        let seen = seen.clone();
        async move {
            // A timer on the runtime the listener runs on.
            weft_service::runtime::sleep(Duration::from_millis(20)).await;
            let runtime = RuntimeHandle::current().name();
            seen.push(format!("{} on {runtime}", e.name));
        }
    });
    let delivery = block_on(events.emit_and_wait(user("ada")));
    assert_eq!(log.entries(), ["ada on background"]);
    assert_eq!(delivery.listeners, 1);
    assert_eq!(delivery.failed, 0);
}

#[test]
fn emit_returns_before_deferred_listeners_end() {
    let events = Events::new();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let log = Log::default();
    let seen = log.clone();
    events.on_blocking(move |e: &UserCreated| {
        // Waits for the test, which only sends once `emit` has returned.
        released.lock().unwrap().recv_timeout(PATIENCE).unwrap();
        seen.push(e.name.clone());
    });
    events.emit(user("ada"));
    assert!(log.entries().is_empty());
    release.send(()).unwrap();
    assert_eq!(log.wait_for(1), ["ada"]);
}

#[test]
fn blocking_listeners_run_on_the_blocking_pool() {
    let events = Events::new();
    let threads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&threads);
    events.on_blocking(move |_: &UserCreated| {
        seen.lock().unwrap().push(std::thread::current().id());
    });
    let delivery = block_on(events.emit_and_wait(user("ada")));
    assert_eq!(delivery.listeners, 1);
    let threads = threads.lock().unwrap().clone();
    assert_eq!(threads.len(), 1);
    assert_ne!(threads[0], std::thread::current().id());
}

/// Panics: a listener body with a `()` result type, unlike `panic!` alone.
fn panic_with(message: &str) {
    panic!("{message}")
}

#[test]
fn deferred_failures_are_isolated_reported_and_counted() {
    let events = Events::new();
    let reports = failures(&events);
    let log = Log::default();
    events.on_async(|_: Arc<UserCreated>| async { Err::<(), _>("async failed") });
    events.on_async(|_: Arc<UserCreated>| async { panic_with("async panicked") });
    events.on_blocking(|_: &UserCreated| -> () { panic!("blocking panicked") });
    let (sync_seen, async_seen) = (log.clone(), log.clone());
    events.on(move |e: &UserCreated| sync_seen.push(format!("sync {}", e.name)));
    events.on_async(move |e: Arc<UserCreated>| {
        let async_seen = async_seen.clone();
        async move { async_seen.push(format!("async {}", e.name)) }
    });

    let delivery = block_on(events.emit_and_wait(user("ada")));
    assert_eq!(delivery.listeners, 5);
    assert_eq!(delivery.failed, 3);
    let mut entries = log.entries();
    entries.sort();
    assert_eq!(entries, ["async ada", "sync ada"]);
    let mut failures: Vec<_> = reports
        .lock()
        .unwrap()
        .iter()
        .map(|report| report.failure.to_string())
        .collect();
    failures.sort();
    assert_eq!(
        failures,
        [
            "panicked: async panicked",
            "panicked: blocking panicked",
            "returned an error: async failed",
        ]
    );
}

#[test]
fn a_once_async_listener_runs_once() {
    let events = Events::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    events
        .listener()
        .once()
        .on_async(move |_: Arc<UserCreated>| {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
    let first = block_on(events.emit_and_wait(user("ada")));
    let second = block_on(events.emit_and_wait(user("bob")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(first.listeners, 1);
    assert_eq!(second, Delivery::default());
}

#[test]
fn debug_shows_listener_counts() {
    let events = Events::new();
    events.on(|_: &UserCreated| ());
    events.on_async(|_: Arc<UserCreated>| async {});
    let debug = format!("{events:?}");
    assert!(debug.contains("UserCreated\": 2"), "{debug}");
}

#[derive(serde::Deserialize)]
struct NewUser {
    name: String,
}

/// An app whose POST handler emits `UserCreated` on the app's emitter.
fn app(log: &Log) -> App {
    let (sync_seen, async_seen) = (log.clone(), log.clone());
    App::new()
        .on(move |e: &UserCreated| sync_seen.push(format!("sync {}", e.name)))
        .on_async(move |e: Arc<UserCreated>| {
            let async_seen = async_seen.clone();
            async move {
                let runtime = RuntimeHandle::current().name();
                async_seen.push(format!("async {} on {runtime}", e.name));
            }
        })
        .post(
            "/users",
            |events: Inject<Events>, Json(new): Json<NewUser>| async move {
                events.emit(UserCreated { name: new.name });
                StatusCode::CREATED
            },
        )
}

#[test]
fn handlers_emit_on_the_apps_emitter() {
    let log = Log::default();
    let client = TestClient::new(app(&log).build().unwrap());
    let response = client
        .post("/users")
        .json(&serde_json::json!({ "name": "ada" }))
        .send();
    assert_eq!(response.status(), StatusCode::CREATED);
    // The sync listener ran before the handler answered; the async one runs on the
    // runtime the test client gives handlers.
    assert_eq!(log.entries()[0], "sync ada");
    let mut entries = log.wait_for(2);
    entries.sort();
    assert_eq!(entries, ["async ada on background", "sync ada"]);
}

#[test]
fn app_events_is_the_emitter_handlers_get() {
    let log = Log::default();
    let mut app = App::new().get("/ping", |events: Inject<Events>| async move {
        events.emit(user("from a handler"));
        "pong"
    });
    let seen = log.clone();
    app.events()
        .listener()
        .priority(3)
        .on(move |e: &UserCreated| seen.push(e.name.clone()));
    let events = app.events();
    let client = TestClient::new(app.build().unwrap());
    assert_eq!(client.get("/ping").send().status(), StatusCode::OK);
    events.emit(user("from main"));
    assert_eq!(log.entries(), ["from a handler", "from main"]);
}

#[test]
fn async_listeners_run_on_the_serving_runtime() {
    let log = Log::default();
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = app(&log).listen(config).unwrap();
    let address = server.local_addrs()[0];

    let body = r#"{"name":"ada"}"#;
    let request = format!(
        "POST /users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    let entries = log.wait_for(2);
    assert_eq!(entries[0], "sync ada");
    let served_on = entries[1]
        .strip_prefix("async ada on ")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_ne!(served_on, "background", "the server's own runtime runs it");
    server.shutdown();
    server.join().unwrap();
}
