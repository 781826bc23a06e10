//! The runtime services each runtime gives applications ([`weft_service::runtime`]), the
//! server's hooks, and what the runtimes share to provide them.
//!
//! | runtime | `spawn` | `sleep`, `timeout` | `spawn_blocking` |
//! |---|---|---|---|
//! | smol | the server's smol executor | async-io's timer | the `blocking` pool |
//! | async-std | async-std's global executor | async-io's timer | the `blocking` pool |
//! | tokio | the tokio runtime | tokio's timer | tokio's blocking pool |
//! | mio, poll, threadpool | a [`TaskPool`]: one executor thread per server, started by the first `spawn` | async-io's timer | the `blocking` pool |
//!
//! Threads this adds: async-io's timer thread (one per process, `async-io`, on the first sleep
//! outside smol and async-std, which run it anyway), the `blocking` pool's threads (on
//! demand, idle ones exit), and on mio, poll and threadpool one `weft-<runtime>-tasks` thread
//! per server once the application spawns a task. With the `tokio-compat` feature, the
//! non-tokio runtimes also start one process-wide tokio runtime thread (`weft-tokio-compat`,
//! see [`crate::tokio_compat`]).
//!
//! [`background_runtime`] gives the same services (one process-wide task thread,
//! `weft-background-tasks`) to code that drives a dispatcher without a server, such as test
//! clients.
//!
//! Detached tasks end with the server: once it has stopped (after the drain), tasks still
//! running are dropped, on every runtime.

// Only the runtimes other than tokio use some of this: with tokio alone, it is unused.
#![cfg_attr(
    not(any(
        feature = "smol",
        feature = "async-std",
        feature = "mio",
        feature = "poll",
        feature = "threadpool"
    )),
    allow(dead_code)
)]

use std::any::Any;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use futures_lite::FutureExt as _;
use weft_service::runtime::{
    BlockingWork, BoxFuture, RuntimeHandle, RuntimeServices, ShutdownSignal, ShutdownSource,
};

use crate::config::{ServerConfig, ShutdownHook, StartHook};
use crate::shutdown::Shutdown;

impl ShutdownSource for Shutdown {
    fn is_triggered(&self) -> bool {
        Shutdown::is_triggered(self)
    }

    fn wait(&self) -> BoxFuture<()> {
        Box::pin(Shutdown::wait(self))
    }
}

/// A server's runtime handle and hooks, from start to stop.
pub(crate) struct Lifecycle {
    handle: RuntimeHandle,
    /// Thrown once the server has stopped: detached tasks still running end.
    stopped: Shutdown,
    start_hook: Option<StartHook>,
    shutdown_hook: Option<ShutdownHook>,
    tasks: Option<Arc<TaskPool>>,
}

impl Lifecycle {
    /// Makes the server's runtime handle on `services` and gives it to the dispatchers
    /// (`config.dispatch.runtime`). `stopped` is what `services` end their tasks on; `tasks` is
    /// the task pool they spawn on, if the server owns one.
    pub(crate) fn new(
        config: &mut ServerConfig,
        shutdown: &Shutdown,
        stopped: Shutdown,
        services: impl RuntimeServices,
        tasks: Option<Arc<TaskPool>>,
    ) -> Lifecycle {
        let handle = RuntimeHandle::new(services, ShutdownSignal::new(shutdown.clone()));
        config.dispatch.runtime = Some(handle.clone());
        Lifecycle {
            handle,
            stopped,
            start_hook: config.start_hook.clone(),
            shutdown_hook: config.shutdown_hook.clone(),
            tasks,
        }
    }

    /// The server listens on `addresses`: the start hook runs.
    pub(crate) fn started(&self, addresses: &[SocketAddr]) {
        if let Some(hook) = &self.start_hook {
            self.run_hook("start", || (hook.0)(addresses));
        }
    }

    /// The server starts draining: the shutdown hook runs.
    pub(crate) fn draining(&self) {
        if let Some(hook) = &self.shutdown_hook {
            self.run_hook("shutdown", || (hook.0)());
        }
    }

    /// The server has stopped: detached tasks end, the task pool's thread exits.
    pub(crate) fn stopped(&self) {
        self.stopped.trigger();
        if let Some(tasks) = &self.tasks {
            tasks.stop();
        }
    }

    fn run_hook(&self, which: &str, hook: impl FnOnce()) {
        if catch_unwind(AssertUnwindSafe(|| self.handle.enter(hook))).is_err() {
            tracing::error!(hook = which, "server hook panicked");
        }
    }
}

/// `task`, ending early when `stopped` is thrown.
pub(crate) fn until_stopped(
    task: BoxFuture<()>,
    stopped: &Shutdown,
) -> impl Future<Output = ()> + Send + 'static {
    task.or(stopped.wait())
}

/// async-io's timer: it works under any executor.
pub(crate) fn async_io_sleep(deadline: Instant) -> BoxFuture<()> {
    Box::pin(async move {
        async_io::Timer::at(deadline).await;
    })
}

/// Blocking work on the `blocking` crate's pool.
pub(crate) fn blocking_pool(work: BlockingWork) -> BoxFuture<Box<dyn Any + Send>> {
    Box::pin(blocking::unblock(work))
}

/// Where the runtimes without an executor of their own (mio, poll, threadpool) run detached
/// tasks: an async-executor run by one thread, started by the first spawn.
#[cfg_attr(
    not(any(feature = "mio", feature = "poll", feature = "threadpool")),
    allow(dead_code)
)]
pub(crate) struct TaskPool {
    executor: Arc<async_executor::Executor<'static>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stop: Shutdown,
    name: String,
}

#[cfg_attr(
    not(any(feature = "mio", feature = "poll", feature = "threadpool")),
    allow(dead_code)
)]
impl TaskPool {
    /// A pool whose thread, once started, is named `name`.
    pub(crate) fn new(name: String) -> Arc<TaskPool> {
        Arc::new(TaskPool {
            executor: Arc::new(async_executor::Executor::new()),
            thread: Mutex::new(None),
            stop: Shutdown::new(),
            name,
        })
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stop.is_triggered() {
            return;
        }
        if thread.is_none() {
            let (executor, stop) = (Arc::clone(&self.executor), self.stop.clone());
            let spawned = std::thread::Builder::new()
                .name(self.name.clone())
                .spawn(move || async_io::block_on(executor.run(stop.wait())));
            match spawned {
                Ok(spawned) => *thread = Some(spawned),
                Err(error) => {
                    tracing::error!(%error, "cannot start the task thread; task dropped");
                    return;
                }
            }
        }
        self.executor.spawn(task).detach();
    }

    /// Stops the thread; the tasks left are dropped with the pool.
    fn stop(&self) {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.stop.trigger();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Where a runtime other than tokio runs applications' detached tasks.
pub(crate) trait Spawner: Send + Sync + 'static {
    /// Runs `task` detached.
    fn spawn(&self, task: BoxFuture<()>);
}

/// The services of the runtimes other than tokio, which differ only in where tasks run:
/// tasks on their [`Spawner`] (ended when the server stops), async-io's timer, the `blocking`
/// pool, and the tokio-compat context around application code.
pub(crate) struct CompatServices<S> {
    name: &'static str,
    spawner: S,
    stopped: Shutdown,
    compat: crate::tokio_compat::Context,
}

impl<S: Spawner> CompatServices<S> {
    /// The services of runtime `name`, spawning on `spawner`, until `stopped` is thrown.
    pub(crate) fn new(name: &'static str, spawner: S, stopped: Shutdown) -> std::io::Result<Self> {
        Ok(CompatServices {
            name,
            spawner,
            stopped,
            compat: crate::tokio_compat::Context::background()?,
        })
    }
}

impl<S: Spawner> RuntimeServices for CompatServices<S> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn spawn(&self, task: BoxFuture<()>) {
        self.spawner
            .spawn(Box::pin(until_stopped(task, &self.stopped)));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        async_io_sleep(deadline)
    }

    fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<Box<dyn Any + Send>> {
        blocking_pool(work)
    }

    fn enter(&self, inside: &mut dyn FnMut()) {
        self.compat.enter(inside);
    }
}

/// The tasks of [`background_runtime`]: on a process-wide [`TaskPool`] that is never stopped.
struct BackgroundSpawner(Arc<TaskPool>);

impl Spawner for BackgroundSpawner {
    fn spawn(&self, task: BoxFuture<()>) {
        self.0.spawn(task);
    }
}

/// Runtime services for application code run outside a server: in-process test clients (the
/// `weft` crate's `weft::test::TestClient`), tools and benchmarks that drive a
/// [`Dispatcher`](weft_adapters::Dispatcher) themselves and still want handlers'
/// `weft_service::runtime::{spawn, sleep, timeout, spawn_blocking}` to work. Give it to the
/// dispatcher as `DispatchConfig::runtime`.
///
/// Every call returns the same process-wide handle, named `background`, started on first use:
/// tasks run on one executor thread (`weft-background-tasks`, started by the first `spawn`),
/// timers are async-io's, blocking work goes to the `blocking` pool, and with the
/// `tokio-compat` feature application code enters the background tokio runtime, as on the
/// non-tokio runtimes. No listener, no signal handling: its shutdown signal never fires, and
/// detached tasks run until they end or the process exits.
///
/// # Panics
/// If the tokio-compat runtime's thread cannot be started (the operating system refused a
/// thread), as the servers themselves would fail to start.
pub fn background_runtime() -> RuntimeHandle {
    static HANDLE: std::sync::OnceLock<RuntimeHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let spawner = BackgroundSpawner(TaskPool::new("weft-background-tasks".to_owned()));
            let services = CompatServices::new("background", spawner, Shutdown::new())
                .unwrap_or_else(|error| panic!("cannot start the background runtime: {error}"));
            RuntimeHandle::new(services, ShutdownSignal::never())
        })
        .clone()
}

/// mio's, poll's and threadpool's tasks: on a [`TaskPool`] the server owns.
#[cfg(any(feature = "mio", feature = "poll", feature = "threadpool"))]
pub(crate) struct PoolSpawner {
    /// Weak: the pool's tasks hold the services, and the pool is the server's to drop.
    tasks: std::sync::Weak<TaskPool>,
}

#[cfg(any(feature = "mio", feature = "poll", feature = "threadpool"))]
impl Spawner for PoolSpawner {
    fn spawn(&self, task: BoxFuture<()>) {
        if let Some(tasks) = self.tasks.upgrade() {
            tasks.spawn(task);
        }
    }
}

/// The services of mio, poll and threadpool.
#[cfg(any(feature = "mio", feature = "poll", feature = "threadpool"))]
pub(crate) type PoolServices = CompatServices<PoolSpawner>;

#[cfg(any(feature = "mio", feature = "poll", feature = "threadpool"))]
impl PoolServices {
    /// The services of runtime `name`, with a task pool for the server to own.
    pub(crate) fn with_pool(
        name: &'static str,
        stopped: Shutdown,
    ) -> std::io::Result<(PoolServices, Arc<TaskPool>)> {
        let tasks = TaskPool::new(format!("weft-{name}-tasks"));
        let spawner = PoolSpawner {
            tasks: Arc::downgrade(&tasks),
        };
        Ok((CompatServices::new(name, spawner, stopped)?, tasks))
    }
}
