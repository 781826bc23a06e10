//! The runtime services applications get ([`weft_service::runtime`]), the shutdown signal and
//! the server hooks, on every runtime compiled in; and runtime selection ([`Runtime`],
//! [`weft_runtime::start`], [`weft_runtime::start_on`], `tokio::start_on_handle`).
//!
//! Like `every_runtime.rs`, [`every_runtime!`] makes one `#[test]` per runtime per case
//! (`mio::handlers_use_the_runtime_services`). Servers listen on 127.0.0.1:0, and every wait is
//! bounded by [`WAIT`].
#![cfg_attr(
    not(any(
        feature = "smol",
        feature = "async-std",
        feature = "tokio",
        feature = "threadpool",
        feature = "mio",
        feature = "poll"
    )),
    allow(dead_code, unused_imports)
)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use weft_runtime::{Runtime, ServerConfig, ServerHandle};
use weft_service::body::Body;
use weft_service::runtime::{self, Elapsed, RuntimeHandle, ShutdownSignal};
use weft_service::service::Service;

/// The longest any single step of a test waits for the server.
const WAIT: Duration = Duration::from_secs(10);

/// A runtime's entry point.
type Start = fn(ServerConfig, ServicesApp) -> io::Result<ServerHandle>;

#[macro_use]
mod every_runtime_macro;

/// The cases for one runtime, in a module named after it.
macro_rules! runtime_suite {
    ($feature:literal, $runtime:ident, { $($case:ident,)* }) => {
        #[cfg(feature = $feature)]
        mod $runtime {
            $(
                #[test]
                fn $case() {
                    super::cases::$case(
                        $feature,
                        weft_runtime::$runtime::start::<super::ServicesApp>,
                    );
                }
            )*
        }
    };
}

every_runtime!({
    handlers_use_the_runtime_services,
    tokio_sleep_works_in_a_handler,
    a_long_poll_ends_when_the_server_drains,
    hooks_run_once_each,
});

/// The application of this suite.
///
/// | route | answer |
/// |---|---|
/// | `/services` | sleeps, spawns a task that sleeps and signals back, runs blocking work, times a pending future out; `ok <runtime>` |
/// | `/tokio-sleep` | `::tokio::time::sleep`, then `tokio slept` |
/// | `/long-poll` | waits for the shutdown signal, then `drained` |
/// | `/name` | the runtime's name, from the handle in the request's extensions |
#[derive(Clone, Default)]
struct ServicesApp {
    long_polls: Arc<Counter>,
}

impl Service for ServicesApp {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        let app = self.clone();
        async move {
            match request.uri().path() {
                "/services" => services().await,
                "/tokio-sleep" => {
                    ::tokio::time::sleep(Duration::from_millis(5)).await;
                    text("tokio slept".to_owned())
                }
                "/long-poll" => app.long_poll(&request).await,
                "/name" => {
                    let handle = request.extensions().get::<RuntimeHandle>();
                    text(handle.map_or("none", RuntimeHandle::name).to_owned())
                }
                _ => {
                    let mut response = text("not found".to_owned());
                    *response.status_mut() = StatusCode::NOT_FOUND;
                    response
                }
            }
        }
    }
}

fn text(body: String) -> Response<Body> {
    Response::new(Body::from(body))
}

/// Every service of [`weft_service::runtime`], through the free functions; a `500` (a panic)
/// when one fails.
async fn services() -> Response<Body> {
    let handle = RuntimeHandle::current();

    runtime::sleep(Duration::from_millis(5)).await;

    // A detached task that sleeps (it sees the handle too) and signals back.
    let (sender, done) = Body::channel(1);
    let task_saw_handle = Arc::new(AtomicBool::new(false));
    let saw = Arc::clone(&task_saw_handle);
    let expected = handle.clone();
    runtime::spawn(async move {
        runtime::sleep(Duration::from_millis(1)).await;
        let current = RuntimeHandle::try_current();
        saw.store(current.is_some_and(|h| h.same(&expected)), Ordering::SeqCst);
        sender.finish();
    });
    done.collect(0)
        .await
        .expect("the spawned task signals back");
    assert!(
        task_saw_handle.load(Ordering::SeqCst),
        "spawned task without its handle"
    );

    let caller = std::thread::current().id();
    let (answer, worker) = runtime::spawn_blocking(|| (6 * 7, std::thread::current().id())).await;
    assert_eq!(answer, 42);
    assert_ne!(worker, caller, "blocking work ran on the serving thread");

    let pending = runtime::timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
    assert_eq!(pending, Err(Elapsed));
    let ready = runtime::timeout(WAIT, async { "in time" }).await;
    assert_eq!(ready, Ok("in time"));

    text(format!("ok {}", handle.name()))
}

impl ServicesApp {
    async fn long_poll(&self, request: &Request<Body>) -> Response<Body> {
        let signal = request
            .extensions()
            .get::<ShutdownSignal>()
            .cloned()
            .expect("a shutdown signal in the request's extensions");
        let before = signal.is_triggered();
        self.long_polls.increment();
        signal.clone().await;
        text(format!(
            "drained (before: {before}, after: {})",
            signal.is_triggered()
        ))
    }
}

/// A count that threads can wait on.
#[derive(Default)]
struct Counter {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Counter {
    fn increment(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.changed.notify_all();
    }

    fn get(&self) -> usize {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the count reached `n` within [`WAIT`].
    fn wait_for(&self, n: usize) -> bool {
        let count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, _) = self
            .changed
            .wait_timeout_while(count, WAIT, |count| *count < n)
            .unwrap_or_else(PoisonError::into_inner);
        *count >= n
    }
}

/// `GET path` on a connection of its own (`connection: close`): the status and the body.
fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("a whole response");
    let response = String::from_utf8(response).expect("UTF-8");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

fn config() -> ServerConfig {
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 2;
    config
}

/// Joins `server` on another thread: true if it stopped within [`WAIT`].
fn joins_within_wait(server: ServerHandle) -> bool {
    let (sender, joined) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(server.join());
    });
    matches!(joined.recv_timeout(WAIT), Ok(Ok(())))
}

mod cases {
    use super::*;

    pub(crate) fn handlers_use_the_runtime_services(name: &str, start: Start) {
        let server = start(config(), ServicesApp::default()).unwrap();
        let addr = server.local_addrs()[0];
        assert_eq!(
            get(addr, "/services"),
            (StatusCode::OK, format!("ok {name}"))
        );
        assert_eq!(get(addr, "/name"), (StatusCode::OK, name.to_owned()));
        server.shutdown();
        assert!(joins_within_wait(server));
    }

    /// With `tokio-compat` (a default feature) tokio's timer works on every runtime; without
    /// it only on tokio, and elsewhere tokio panics ("there is no reactor running"): a `500`.
    pub(crate) fn tokio_sleep_works_in_a_handler(name: &str, start: Start) {
        let server = start(config(), ServicesApp::default()).unwrap();
        let addr = server.local_addrs()[0];
        let (status, body) = get(addr, "/tokio-sleep");
        if cfg!(feature = "tokio-compat") || name == "tokio" {
            assert_eq!((status, body.as_str()), (StatusCode::OK, "tokio slept"));
        } else {
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        }
        server.shutdown();
        assert!(joins_within_wait(server));
    }

    /// A handler waiting on the shutdown signal answers once the server drains, and the drain
    /// ends long before its deadline (a minute: a signal that never fired would hold `join`
    /// that long, past [`WAIT`]).
    pub(crate) fn a_long_poll_ends_when_the_server_drains(_name: &str, start: Start) {
        let app = ServicesApp::default();
        let mut config = config();
        config.drain_timeout = Duration::from_secs(60);
        let server = start(config, app.clone()).unwrap();
        let addr = server.local_addrs()[0];
        let client = std::thread::spawn(move || get(addr, "/long-poll"));
        assert!(app.long_polls.wait_for(1), "the long poll never started");
        server.shutdown();
        assert!(
            joins_within_wait(server),
            "the drain waited for the long poll"
        );
        let reply = client.join().unwrap();
        assert_eq!(
            reply,
            (
                StatusCode::OK,
                "drained (before: false, after: true)".to_owned()
            )
        );
    }

    /// The start hook runs once, before `start` returns, with the runtime entered (it spawns
    /// a task); the shutdown hook runs once, when the drain begins.
    pub(crate) fn hooks_run_once_each(name: &str, start: Start) {
        let started = Arc::new(AtomicUsize::new(0));
        let draining = Arc::new(AtomicUsize::new(0));
        let background = Arc::new(Counter::default());
        let runtime_in_hook = Arc::new(Mutex::new(None::<&'static str>));
        let config = {
            let (started, draining) = (Arc::clone(&started), Arc::clone(&draining));
            let (background, runtime_in_hook) =
                (Arc::clone(&background), Arc::clone(&runtime_in_hook));
            config()
                .on_start(move |addresses| {
                    assert_eq!(addresses.len(), 1);
                    started.fetch_add(1, Ordering::SeqCst);
                    *runtime_in_hook.lock().unwrap() = Some(RuntimeHandle::current().name());
                    let background = Arc::clone(&background);
                    runtime::spawn(async move {
                        runtime::sleep(Duration::from_millis(1)).await;
                        background.increment();
                    });
                })
                .on_shutdown(move || {
                    draining.fetch_add(1, Ordering::SeqCst);
                })
        };
        let server = start(config, ServicesApp::default()).unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 1, "before start returned");
        assert_eq!(*runtime_in_hook.lock().unwrap(), Some(name));
        assert!(background.wait_for(1), "the hook's task never ran");
        assert_eq!(get(server.local_addrs()[0], "/name").0, StatusCode::OK);
        assert_eq!(draining.load(Ordering::SeqCst), 0);
        server.shutdown();
        server.shutdown();
        assert!(joins_within_wait(server));
        assert_eq!(started.load(Ordering::SeqCst), 1);
        assert_eq!(draining.load(Ordering::SeqCst), 1);
        assert_eq!(background.get(), 1);
    }
}

/// `start` serves on the first runtime of [`Runtime::ALL`].
#[test]
fn start_serves_on_the_preferred_runtime() {
    let Some(preferred) = Runtime::preferred() else {
        assert!(weft_runtime::start(config(), ServicesApp::default()).is_err());
        return;
    };
    let server = weft_runtime::start(config(), ServicesApp::default()).unwrap();
    let (status, body) = get(server.local_addrs()[0], "/name");
    assert_eq!((status, body.as_str()), (StatusCode::OK, preferred.name()));
    server.shutdown();
    assert!(joins_within_wait(server));
}

/// `start_on` serves on the runtime named, for each compiled in.
#[test]
fn start_on_serves_on_each_runtime_by_name() {
    for &runtime in Runtime::ALL {
        let parsed: Runtime = runtime.to_string().parse().unwrap();
        let server = weft_runtime::start_on(parsed, config(), ServicesApp::default()).unwrap();
        let (status, body) = get(server.local_addrs()[0], "/name");
        assert_eq!((status, body.as_str()), (StatusCode::OK, runtime.name()));
        server.shutdown();
        assert!(joins_within_wait(server), "{runtime}");
    }
}

/// Inside a tokio runtime (as in `#[tokio::main]`), the server runs on that runtime, which
/// outlives it.
#[cfg(feature = "tokio")]
#[test]
fn tokio_serves_on_an_existing_runtime_handle() {
    let tokio = ::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("app-tokio")
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let server = weft_runtime::tokio::start_on_handle(
            ::tokio::runtime::Handle::current(),
            config(),
            ServicesApp::default(),
        )
        .unwrap();
        let addr = server.local_addrs()[0];
        let reply = ::tokio::task::spawn_blocking(move || get(addr, "/services"))
            .await
            .unwrap();
        assert_eq!(reply, (StatusCode::OK, "ok tokio".to_owned()));
        server.shutdown();
        let joined = ::tokio::task::spawn_blocking(move || joins_within_wait(server));
        assert!(joined.await.unwrap());
        // The application's runtime runs on.
        assert_eq!(::tokio::spawn(async { 7 }).await.unwrap(), 7);
    });
}
