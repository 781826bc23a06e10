//! What a listener is: its id, what it may return, and the options it is registered with.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Events;
use super::registry::{Call, Entry};

/// Names one registered listener: to remove it ([`Events::off`]), and in the
/// [`ListenerFailed`](super::ListenerFailed) reports. Unique in the process, so an id never
/// removes a listener of another emitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

impl ListenerId {
    /// A fresh id: ids count up from 1, process-wide.
    fn next() -> ListenerId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ListenerId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// An id chosen by a unit test.
    #[cfg(test)]
    pub(super) fn for_test(id: u64) -> ListenerId {
        ListenerId(id)
    }

    /// The id as a number, for logs and metrics.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener #{}", self.0)
    }
}

/// What a listener returns: `()`, or `Result<(), E>` with `E: Display` (an error is logged and
/// reported as a [`ListenerFailed`](super::ListenerFailed) event).
///
/// A closure whose body only panics has the never type, which is neither: give it a return
/// type (`|e: &E| -> () { panic!(..) }`).
pub trait ListenerResult {
    /// `Ok`, or the error's message. The message, not the error: listeners of one event may
    /// fail with different error types, and the report is one event type every listener of
    /// it can read.
    fn into_outcome(self) -> Result<(), String>;
}

impl ListenerResult for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> ListenerResult for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|error| error.to_string())
    }
}

/// Registers a listener with options: made by [`Events::listener`], finished by
/// [`on`](Self::on), [`on_async`](Self::on_async) or [`on_blocking`](Self::on_blocking).
///
/// ```
/// # use weft::events::Events;
/// struct Deployed;
/// let events = Events::new();
/// // Runs before the listeners of priority 0, and only for the first `Deployed`.
/// events.listener().priority(10).once().on(|_: &Deployed| println!("first deploy"));
/// ```
#[derive(Debug)]
#[must_use = "a listener is registered by `on`, `on_async` or `on_blocking`"]
pub struct ListenerBuilder<'a> {
    events: &'a Events,
    priority: i32,
    once: bool,
}

impl<'a> ListenerBuilder<'a> {
    pub(super) fn new(events: &'a Events) -> Self {
        ListenerBuilder {
            events,
            priority: 0,
            once: false,
        }
    }

    /// Listeners of higher priority are called (sync) or started (async, blocking) first;
    /// equal priorities go in registration order. The default is 0; negative values run
    /// after it.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Removed after its first event: called exactly once, even when several threads emit at
    /// the same time.
    pub fn once(mut self) -> Self {
        self.once = true;
        self
    }

    /// A synchronous listener, called in place by `emit`, on the emitting thread.
    pub fn on<E, R>(self, listener: impl Fn(&E) -> R + Send + Sync + 'static) -> ListenerId
    where
        E: Send + Sync + 'static,
        R: ListenerResult,
    {
        self.register(Call::Sync(Box::new(move |event: &E| {
            listener(event).into_outcome()
        })))
    }

    /// An async listener: `emit` spawns its future on the current runtime (the process's
    /// [background runtime](weft_runtime::background_runtime) when no weft runtime is current,
    /// outside a server), and returns without waiting for it.
    pub fn on_async<E, Fut>(
        self,
        listener: impl Fn(Arc<E>) -> Fut + Send + Sync + 'static,
    ) -> ListenerId
    where
        E: Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ListenerResult,
    {
        self.register(Call::Async(Box::new(move |event: Arc<E>| {
            let future = listener(event);
            Box::pin(async move { future.await.into_outcome() })
        })))
    }

    /// A blocking listener (file or database I/O, heavy work): `emit` starts it on the
    /// runtime's blocking pool (the background runtime's outside a server) and returns
    /// without waiting for it.
    pub fn on_blocking<E, R>(self, listener: impl Fn(&E) -> R + Send + Sync + 'static) -> ListenerId
    where
        E: Send + Sync + 'static,
        R: ListenerResult,
    {
        self.register(Call::Blocking(Arc::new(move |event: &E| {
            listener(event).into_outcome()
        })))
    }

    fn register<E: Send + Sync + 'static>(self, call: Call<E>) -> ListenerId {
        let id = ListenerId::next();
        self.events
            .registry
            .add(Entry::new(id, self.priority, self.once, call));
        id
    }
}
