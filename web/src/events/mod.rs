//! A typed in-process event emitter: the event's type is its name
//! (`events.emit(UserCreated { .. })`, any `Send + Sync + 'static` type).
//!
//! ```
//! use weft::events::Events;
//!
//! struct UserCreated {
//!     name: String,
//! }
//!
//! let events = Events::new();
//! events.on(|user: &UserCreated| println!("welcome, {}", user.name));
//! events.emit(UserCreated { name: "ada".into() });
//! ```
//!
//! # Listeners
//! - **sync** ([`Events::on`]): called in place by [`emit`](Events::emit), on the emitting
//!   thread, before it returns; for quick work (a counter, a log line, a channel send);
//! - **async** ([`Events::on_async`]): takes the event as an `Arc<E>` and returns a future,
//!   spawned as a task on the current weft runtime;
//! - **blocking** ([`Events::on_blocking`]): started on the runtime's blocking pool.
//!
//! Outside a weft runtime (a `main` before the server starts, a test thread), async and
//! blocking listeners run on the process's
//! [`background_runtime`](weft_runtime::background_runtime): they still run, and `emit` still
//! returns without waiting for them. [`emit_and_wait`](Events::emit_and_wait) waits for them.
//!
//! [`Events::listener`] registers with options: a priority (higher first; equal priorities in
//! registration order; async and blocking listeners are *started* in that order, and end when
//! they end) and once-listeners (called for one event only, exactly once even when threads
//! emit concurrently). Every registration returns a [`ListenerId`] for [`Events::off`].
//!
//! # Failures
//! A listener returns `()` or `Result<(), E>` with `E: Display` ([`ListenerResult`]). An error
//! or a panic in one listener never reaches the others nor the emitter: it is logged
//! (`tracing`, level error) and reported as a [`ListenerFailed`] event on the same emitter.
//! A listener of `ListenerFailed` that fails is only logged, so reports never loop.
//!
//! # Cost
//! Listeners are kept per event type in an immutable list, replaced whole when a listener is
//! added or removed: an emit takes a read lock to clone an `Arc`, and an event type without
//! listeners costs a map lookup and no allocation. With listeners, the event is put in an
//! `Arc` (async and blocking listeners share it).
//!
//! An app has one emitter, made on first use by [`App::on`], [`App::on_async`] or
//! [`App::events`] and injected into handlers as `Inject<Events>`; the scheduler and the
//! queues emit their events through it.

mod delivery;
mod failure;
mod listener;
mod registry;

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use futures_lite::FutureExt as _;
use weft_service::runtime::RuntimeHandle;

use crate::App;

pub use delivery::Delivery;
pub use failure::{ListenerFailed, ListenerFailure};
pub use listener::{ListenerBuilder, ListenerId, ListenerResult};

use delivery::{Tally, Ticket};
use registry::{AsyncCall, Call, Registry, SyncCall};

/// The emitter: cheap to clone, every clone shares the listeners.
#[derive(Clone, Default)]
pub struct Events {
    registry: Arc<Registry>,
}

impl Events {
    /// An emitter with no listener.
    pub fn new() -> Self {
        Events::default()
    }

    /// Registers a listener with options (priority, once); see [`ListenerBuilder`].
    pub fn listener(&self) -> ListenerBuilder<'_> {
        ListenerBuilder::new(self)
    }

    /// Calls `listener` in place with every event of type `E` emitted from now on (priority 0).
    pub fn on<E, R>(&self, listener: impl Fn(&E) -> R + Send + Sync + 'static) -> ListenerId
    where
        E: Send + Sync + 'static,
        R: ListenerResult,
    {
        self.listener().on(listener)
    }

    /// Runs `listener`'s future as a task for every event of type `E` (priority 0); see
    /// [`ListenerBuilder::on_async`].
    pub fn on_async<E, Fut>(
        &self,
        listener: impl Fn(Arc<E>) -> Fut + Send + Sync + 'static,
    ) -> ListenerId
    where
        E: Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ListenerResult,
    {
        self.listener().on_async(listener)
    }

    /// Runs `listener` on the blocking pool for every event of type `E` (priority 0); see
    /// [`ListenerBuilder::on_blocking`].
    pub fn on_blocking<E, R>(
        &self,
        listener: impl Fn(&E) -> R + Send + Sync + 'static,
    ) -> ListenerId
    where
        E: Send + Sync + 'static,
        R: ListenerResult,
    {
        self.listener().on_blocking(listener)
    }

    /// Removes listener `id`: emits that start after this returns do not call it (nor do
    /// running emits that have not reached it yet). `false` if it was not registered here or
    /// was already removed (a once-listener that ran is removed).
    pub fn off(&self, id: ListenerId) -> bool {
        self.registry.remove(id)
    }

    /// How many listeners events of type `E` have.
    pub fn listener_count<E: 'static>(&self) -> usize {
        self.registry.count::<E>()
    }

    /// Sends `event` to the listeners of its type: sync ones are called in place, in priority
    /// order; async and blocking ones are started. Returns without waiting for them; never
    /// panics because of a listener.
    pub fn emit<E: Send + Sync + 'static>(&self, event: E) {
        self.dispatch(event, None);
    }

    /// Sends `event` as [`emit`](Self::emit) does, at once (not when awaited); the future
    /// completes when its async and blocking listeners have ended too. For tests, and for
    /// work that must follow the listeners.
    ///
    /// Await it; do not `block_on` it on a runtime's task thread, where the listeners it
    /// waits for may need that very thread to run.
    pub fn emit_and_wait<E: Send + Sync + 'static>(
        &self,
        event: E,
    ) -> impl Future<Output = Delivery> + Send + 'static + use<E> {
        let tally = Arc::new(Tally::default());
        self.dispatch(event, Some(&tally));
        tally.wait()
    }

    /// Calls, spawns or starts each listener of `E`, counting them in `tally` if given.
    fn dispatch<E: Send + Sync + 'static>(&self, event: E, tally: Option<&Arc<Tally>>) {
        let Some(listeners) = self.registry.snapshot::<E>() else {
            return;
        };
        let event = Arc::new(event);
        // Looked up once per emit, and only when a listener needs it.
        let mut runtime = None;
        for entry in &listeners.entries {
            if !entry.claim() {
                continue;
            }
            if entry.is_once() {
                self.registry.remove_in(TypeId::of::<E>(), entry.id);
            }
            match &entry.call {
                Call::Sync(call) => {
                    let outcome = catch_unwind(AssertUnwindSafe(|| call(&event)));
                    let failed = self.settle::<E>(entry.id, outcome);
                    if let Some(tally) = tally {
                        tally.record(failed);
                    }
                }
                Call::Async(call) => {
                    let runtime = runtime.get_or_insert_with(current_runtime);
                    let ticket = tally.map(Tally::ticket);
                    self.start_async(runtime, entry.id, call, Arc::clone(&event), ticket);
                }
                Call::Blocking(call) => {
                    let runtime = runtime.get_or_insert_with(current_runtime);
                    let ticket = tally.map(Tally::ticket);
                    self.start_blocking(runtime, entry.id, call, Arc::clone(&event), ticket);
                }
            }
        }
    }

    /// Spawns async listener `id`'s future on `runtime`.
    fn start_async<E: Send + Sync + 'static>(
        &self,
        runtime: &RuntimeHandle,
        id: ListenerId,
        call: &AsyncCall<E>,
        event: Arc<E>,
        ticket: Option<Ticket>,
    ) {
        // Making the future runs user code too: a panic there is the listener's.
        let future = match catch_unwind(AssertUnwindSafe(|| call(event))) {
            Ok(future) => future,
            Err(panic) => return self.finish::<E>(id, Err(panic), ticket),
        };
        let events = self.clone();
        runtime.spawn(async move {
            let outcome = AssertUnwindSafe(future).catch_unwind().await;
            events.finish::<E>(id, outcome, ticket);
        });
    }

    /// Starts blocking listener `id` on `runtime`'s blocking pool.
    fn start_blocking<E: Send + Sync + 'static>(
        &self,
        runtime: &RuntimeHandle,
        id: ListenerId,
        call: &Arc<SyncCall<E>>,
        event: Arc<E>,
        ticket: Option<Ticket>,
    ) {
        let call = Arc::clone(call);
        let events = self.clone();
        let work = move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| call(&event)));
            events.finish::<E>(id, outcome, ticket);
        };
        // Spawned rather than dropped: a runtime may start blocking work only when its
        // future is polled.
        runtime.spawn(runtime.spawn_blocking(work));
    }

    /// Ends a deferred listener: reports a failure and counts it in its wait, if any.
    fn finish<E: 'static>(
        &self,
        id: ListenerId,
        outcome: std::thread::Result<Result<(), String>>,
        ticket: Option<Ticket>,
    ) {
        let failed = self.settle::<E>(id, outcome);
        if let Some(ticket) = ticket {
            ticket.finish(failed);
        }
    }

    /// Logs and reports listener `id`'s failure, if it failed; `true` if it did.
    fn settle<E: 'static>(
        &self,
        id: ListenerId,
        outcome: std::thread::Result<Result<(), String>>,
    ) -> bool {
        let failure = match outcome {
            Ok(Ok(())) => return false,
            Ok(Err(message)) => ListenerFailure::Error(message),
            Err(panic) => ListenerFailure::panicked(&*panic),
        };
        let event = std::any::type_name::<E>();
        tracing::error!(event, listener = id.get(), %failure, "an event listener failed");
        // A failed report is only logged: reporting it would loop.
        if TypeId::of::<E>() != TypeId::of::<ListenerFailed>() {
            self.emit(ListenerFailed {
                event,
                listener: id,
                failure,
            });
        }
        true
    }
}

/// The runtime deferred listeners run on: the current one, or the process's background
/// runtime outside a weft runtime.
fn current_runtime() -> RuntimeHandle {
    RuntimeHandle::try_current().unwrap_or_else(weft_runtime::background_runtime)
}

impl fmt::Debug for Events {
    /// The event types with listeners, by name, and how many each has.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Counts(Vec<(&'static str, usize)>);
        impl fmt::Debug for Counts {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.iter().copied()).finish()
            }
        }
        f.debug_struct("Events")
            .field("listeners", &Counts(self.registry.counts()))
            .finish()
    }
}

/// The app's emitter, made and registered as a service (`Inject<Events>`) on first use: the
/// scheduler and the queues emit their events through it.
pub(crate) fn app_events(app: &mut App) -> Events {
    app.part(|app| {
        let events = Events::new();
        app.providers
            .push(crate::services::Provider::value(events.clone()));
        events
    })
}

impl App {
    /// Calls `listener` in place with every event of type `E` the app's [`Events`] emits.
    pub fn on<E, R>(mut self, listener: impl Fn(&E) -> R + Send + Sync + 'static) -> Self
    where
        E: Send + Sync + 'static,
        R: ListenerResult,
    {
        app_events(&mut self).on(listener);
        self
    }

    /// Runs `listener`'s future as a task for every event of type `E` the app's [`Events`]
    /// emits.
    pub fn on_async<E, Fut>(
        mut self,
        listener: impl Fn(Arc<E>) -> Fut + Send + Sync + 'static,
    ) -> Self
    where
        E: Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ListenerResult,
    {
        app_events(&mut self).on_async(listener);
        self
    }

    /// The app's emitter (the one handlers get as `Inject<Events>`): to register listeners
    /// with options ([`Events::listener`]) or to emit from outside a handler.
    pub fn events(&mut self) -> Events {
        app_events(self)
    }
}
