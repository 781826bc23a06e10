//! The runtime's services for applications, whatever the runtime: detached tasks, timers,
//! timeouts, blocking work, and the server's shutdown signal.
//!
//! Every weft server makes a [`RuntimeHandle`] and *enters* it around each poll of application
//! code: handler futures, response bodies, WebSocket handlers, the tasks they spawn and the
//! server's hooks. Inside, the free functions of this module reach the server's runtime without
//! naming it:
//!
//! ```
//! use std::time::Duration;
//! use weft_service::body::Body;
//! use weft_service::runtime;
//!
//! async fn handler(request: http::Request<Body>) -> http::Response<Body> {
//!     // A detached task, on the server's runtime.
//!     runtime::spawn(async { /* send an e-mail */ });
//!     // A timer, on the server's runtime.
//!     runtime::sleep(Duration::from_millis(5)).await;
//!     // Blocking work, on a thread pool; the handler waits for its result.
//!     let sum = runtime::spawn_blocking(|| (1..=10u64).sum::<u64>()).await;
//!     // A deadline for anything.
//!     match runtime::timeout(Duration::from_secs(1), async { sum * 2 }).await {
//!         Ok(doubled) => http::Response::new(Body::from(doubled.to_string())),
//!         Err(runtime::Elapsed) => http::Response::new(Body::from("too slow")),
//!     }
//! }
//! # let _ = handler;
//! ```
//!
//! The free functions panic when called outside a weft server (no handle entered on the
//! thread); [`RuntimeHandle::try_current`] asks without panicking. A handle also travels: every
//! request carries the server's [`RuntimeHandle`] and [`ShutdownSignal`] in its extensions,
//! and a handle's methods work from any thread.
//!
//! This crate names no runtime: each runtime implements [`RuntimeServices`] (weft-runtime does
//! it for all of its runtimes, and so can a user's own event loop).

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A boxed, sendable future: what [`RuntimeServices`] takes and returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Work for [`RuntimeServices::spawn_blocking`], its result type-erased.
pub type BlockingWork = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send + 'static>;

/// What a runtime provides to applications; object-safe, so a [`RuntimeHandle`] holds any.
///
/// Implemented by the runtimes (weft-runtime implements it for each of its own). Applications
/// use the [`RuntimeHandle`] and the free functions of this module instead, which add what every
/// runtime shares: the handle is entered while spawned tasks and blocking work run, a panicking
/// task ends alone, results are typed.
pub trait RuntimeServices: Send + Sync + 'static {
    /// The runtime's name, such as `smol` or `mio`.
    fn name(&self) -> &'static str;

    /// Runs `task` to its end, detached from the caller. A task still running when the server
    /// stops may be dropped.
    fn spawn(&self, task: BoxFuture<()>);

    /// Completes at `deadline`. The future may be polled from any thread.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;

    /// Runs `work` where blocking is allowed (never on a thread that serves connections), and
    /// completes with its result. A panic of `work` resumes in the awaiting task.
    fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<Box<dyn Any + Send>>;

    /// Runs `inside` in the runtime's own context, if it has one that application code may
    /// need (a tokio runtime entered, say). The default just runs it.
    fn enter(&self, inside: &mut dyn FnMut()) {
        inside();
    }
}

/// A server's runtime services and its shutdown signal; cloning shares them.
///
/// Found in every request's extensions (`request.extensions().get::<RuntimeHandle>()`), and as
/// [`RuntimeHandle::current`] wherever the server runs application code.
#[derive(Clone)]
pub struct RuntimeHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    services: Box<dyn RuntimeServices>,
    shutdown: ShutdownSignal,
}

impl fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("runtime", &self.name())
            .field("shutdown", &self.inner.shutdown)
            .finish()
    }
}

thread_local! {
    /// The handle entered on this thread, if any.
    static CURRENT: RefCell<Option<RuntimeHandle>> = const { RefCell::new(None) };
}

/// Puts the previously entered handle back, also when unwinding.
struct Restore(Option<Option<RuntimeHandle>>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            // The thread-local may be gone while a thread exits: then nothing is left to restore.
            // The handle replaced is dropped after the borrow ends.
            let _replaced = CURRENT.try_with(|current| current.replace(previous));
        }
    }
}

impl RuntimeHandle {
    /// A handle on `services`, for a server that drains when `shutdown` fires.
    pub fn new(services: impl RuntimeServices, shutdown: ShutdownSignal) -> Self {
        RuntimeHandle {
            inner: Arc::new(HandleInner {
                services: Box::new(services),
                shutdown,
            }),
        }
    }

    /// The handle entered on this thread.
    ///
    /// # Panics
    /// Outside a weft server: when no server is running application code on this thread.
    pub fn current() -> RuntimeHandle {
        Self::try_current().unwrap_or_else(|| outside("RuntimeHandle::current"))
    }

    /// The handle entered on this thread, or `None` outside a weft server.
    pub fn try_current() -> Option<RuntimeHandle> {
        CURRENT
            .try_with(|current| current.borrow().clone())
            .ok()
            .flatten()
    }

    /// The runtime's name, such as `smol` or `mio`.
    pub fn name(&self) -> &'static str {
        self.inner.services.name()
    }

    /// The server's shutdown signal.
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.inner.shutdown.clone()
    }

    /// Whether `self` and `other` are handles on the same server.
    pub fn same(&self, other: &RuntimeHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Runs `inside` with this handle entered: [`RuntimeHandle::current`] and the free
    /// functions of this module reach it there, and so does the runtime's own context. Servers
    /// call this around every poll of application code; entering the handle already entered
    /// costs a comparison.
    pub fn enter<R>(&self, inside: impl FnOnce() -> R) -> R {
        let entered = CURRENT
            .try_with(|current| current.borrow().as_ref().is_some_and(|h| h.same(self)))
            .unwrap_or(false);
        if entered {
            return inside();
        }
        let previous = CURRENT.try_with(|current| current.replace(Some(self.clone())));
        let _restore = Restore(previous.ok());
        let mut inside = Some(inside);
        let mut output = None;
        self.inner.services.enter(&mut || {
            if let Some(inside) = inside.take() {
                output = Some(inside());
            }
        });
        output.unwrap_or_else(|| {
            panic!(
                "the {} runtime's RuntimeServices::enter did not run its closure",
                self.name()
            )
        })
    }

    /// Runs `task` to its end, detached, on the server's runtime; the task sees this handle as
    /// current. A task that panics ends there (the panic is reported by the panic hook); one
    /// still running when the server has stopped is dropped.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future + Send + 'static,
    {
        let task = Box::pin(async move {
            task.await;
        });
        self.inner.services.spawn(Box::pin(Scoped {
            handle: self.clone(),
            task: Some(task),
        }));
    }

    /// Completes after `duration`, on the server's timer.
    pub fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static + use<> {
        self.inner.services.sleep_until(deadline_after(duration))
    }

    /// Completes at `deadline`, on the server's timer.
    pub fn sleep_until(
        &self,
        deadline: Instant,
    ) -> impl Future<Output = ()> + Send + 'static + use<> {
        self.inner.services.sleep_until(deadline)
    }

    /// Completes with `future`'s output, or with [`Elapsed`] if `duration` passes first (then
    /// `future` is dropped). The timeout is `Send` and `'static` when `future` is.
    pub fn timeout<F>(
        &self,
        duration: Duration,
        future: F,
    ) -> impl Future<Output = Result<F::Output, Elapsed>> + use<F>
    where
        F: Future,
    {
        with_deadline(
            self.inner.services.sleep_until(deadline_after(duration)),
            future,
        )
    }

    /// Runs `work` on a thread where blocking is fine, with this handle entered, and
    /// completes with its result: file I/O, a synchronous driver, CPU-heavy hashing. A panic
    /// of `work` resumes in the awaiting task (a handler answers 500).
    pub fn spawn_blocking<T, F>(
        &self,
        work: F,
    ) -> impl Future<Output = T> + Send + 'static + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let handle = self.clone();
        let work: BlockingWork =
            Box::new(move || Box::new(handle.enter(work)) as Box<dyn Any + Send>);
        let done = self.inner.services.spawn_blocking(work);
        async move {
            match done.await.downcast::<T>() {
                Ok(output) => *output,
                Err(_) => panic!("RuntimeServices::spawn_blocking returned another type"),
            }
        }
    }
}

/// A spawned task, polled with its handle entered; a panic ends it.
struct Scoped {
    handle: RuntimeHandle,
    task: Option<BoxFuture<()>>,
}

impl Future for Scoped {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(task) = &mut this.task else {
            return Poll::Ready(());
        };
        let polled = this
            .handle
            .enter(|| catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(cx))));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) | Err(_) => {
                this.task = None;
                Poll::Ready(())
            }
        }
    }
}

impl Drop for Scoped {
    /// The task's own drop code runs with the handle entered too.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            let handle = self.handle.clone();
            let _ = catch_unwind(AssertUnwindSafe(|| handle.enter(|| drop(task))));
        }
    }
}

/// `now + duration`, or a deadline far away when that overflows.
fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

async fn with_deadline<F: Future>(sleep: BoxFuture<()>, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut sleep = sleep;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[track_caller]
fn outside(what: &str) -> ! {
    panic!(
        "weft_service::runtime::{what} called outside a weft server: no runtime handle is \
         entered on this thread. Call it from a handler, a response body, a task spawned from \
         one or a server hook; elsewhere use the RuntimeHandle from the request's extensions \
         (or RuntimeHandle::try_current)"
    )
}

/// Runs `task` to its end, detached, on the current server's runtime; see
/// [`RuntimeHandle::spawn`].
///
/// # Panics
/// Outside a weft server.
#[track_caller]
pub fn spawn<F>(task: F)
where
    F: Future + Send + 'static,
{
    match RuntimeHandle::try_current() {
        Some(handle) => handle.spawn(task),
        None => outside("spawn"),
    }
}

/// Completes after `duration`, on the current server's timer.
///
/// # Panics
/// Outside a weft server (when called, not when awaited).
#[track_caller]
pub fn sleep(duration: Duration) -> impl Future<Output = ()> + Send + 'static {
    match RuntimeHandle::try_current() {
        Some(handle) => handle.sleep(duration),
        None => outside("sleep"),
    }
}

/// Completes at `deadline`, on the current server's timer.
///
/// # Panics
/// Outside a weft server (when called, not when awaited).
#[track_caller]
pub fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
    match RuntimeHandle::try_current() {
        Some(handle) => handle.sleep_until(deadline),
        None => outside("sleep_until"),
    }
}

/// Completes with `future`'s output, or with [`Elapsed`] if `duration` passes first; see
/// [`RuntimeHandle::timeout`].
///
/// # Panics
/// Outside a weft server (when called, not when awaited).
#[track_caller]
pub fn timeout<F>(duration: Duration, future: F) -> impl Future<Output = Result<F::Output, Elapsed>>
where
    F: Future,
{
    match RuntimeHandle::try_current() {
        Some(handle) => handle.timeout(duration, future),
        None => outside("timeout"),
    }
}

/// Runs blocking `work` on a thread pool and completes with its result; see
/// [`RuntimeHandle::spawn_blocking`].
///
/// # Panics
/// Outside a weft server (when called, not when awaited).
#[track_caller]
pub fn spawn_blocking<T, F>(work: F) -> impl Future<Output = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match RuntimeHandle::try_current() {
        Some(handle) => handle.spawn_blocking(work),
        None => outside("spawn_blocking"),
    }
}

/// Runs blocking `work` on the current server's blocking pool, or in place when no runtime is
/// current (a test, a user's own event loop): for file-system work and the like that must not
/// stall an event-loop thread inside a server, but must still happen outside one.
pub async fn spawn_blocking_or_inline<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match RuntimeHandle::try_current() {
        Some(handle) => handle.spawn_blocking(work).await,
        None => work(),
    }
}

/// The current server's shutdown signal.
///
/// # Panics
/// Outside a weft server.
#[track_caller]
pub fn shutdown_signal() -> ShutdownSignal {
    match RuntimeHandle::try_current() {
        Some(handle) => handle.shutdown_signal(),
        None => outside("shutdown_signal"),
    }
}

/// What [`timeout`] answers when the time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(elapsed: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed)
    }
}

/// Where a [`ShutdownSignal`] comes from: implemented by the runtimes' shutdown switch.
pub trait ShutdownSource: Send + Sync + 'static {
    /// Whether the server has started draining.
    fn is_triggered(&self) -> bool;
    /// Completes once the server starts draining.
    fn wait(&self) -> BoxFuture<()>;
}

/// Fires once the server starts draining (graceful shutdown): a long poll, an event stream or a
/// WebSocket handler waits on it to end cleanly, within the drain deadline, instead of being
/// cut. Every request carries the server's signal in its extensions:
///
/// ```
/// use weft_service::body::Body;
/// use weft_service::runtime::ShutdownSignal;
///
/// async fn long_poll(request: http::Request<Body>) -> http::Response<Body> {
///     let shutdown = request.extensions().get::<ShutdownSignal>().cloned();
///     let shutdown = shutdown.unwrap_or_else(ShutdownSignal::never);
///     let news = std::future::pending::<String>(); // an event that may never come
///     let body = futures_lite_or(news, async move {
///         shutdown.await;
///         "server restarting, poll again".to_owned()
///     })
///     .await;
///     http::Response::new(Body::from(body))
/// }
/// # async fn futures_lite_or<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
/// #     let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
/// #     std::future::poll_fn(|cx| match a.as_mut().poll(cx) {
/// #         std::task::Poll::Ready(v) => std::task::Poll::Ready(v),
/// #         std::task::Poll::Pending => b.as_mut().poll(cx),
/// #     }).await
/// # }
/// # let _ = long_poll;
/// ```
#[derive(Clone)]
pub struct ShutdownSignal {
    source: Arc<dyn ShutdownSource>,
}

impl fmt::Debug for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownSignal")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl ShutdownSignal {
    /// A signal from `source`.
    pub fn new(source: impl ShutdownSource) -> Self {
        ShutdownSignal {
            source: Arc::new(source),
        }
    }

    /// A signal that never fires (for code run outside a server, and tests).
    pub fn never() -> Self {
        struct Never;
        impl ShutdownSource for Never {
            fn is_triggered(&self) -> bool {
                false
            }
            fn wait(&self) -> BoxFuture<()> {
                Box::pin(std::future::pending())
            }
        }
        ShutdownSignal::new(Never)
    }

    /// Whether the server has started draining.
    pub fn is_triggered(&self) -> bool {
        self.source.is_triggered()
    }

    /// Completes once the server starts draining (at once if it has). `signal.await` does the
    /// same.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        self.source.wait()
    }
}

impl IntoFuture for ShutdownSignal {
    type Output = ();
    type IntoFuture = BoxFuture<()>;

    fn into_future(self) -> BoxFuture<()> {
        self.source.wait()
    }
}

#[cfg(test)]
mod tests;
