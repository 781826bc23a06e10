//! Libraries that need tokio's reactor (reqwest, sqlx, tokio's own timers and sockets) under
//! the runtimes that are not tokio.
//!
//! With the `tokio-compat` feature (on by default), the smol, async-std, mio, poll and
//! threadpool servers enter a background tokio runtime around every poll of application code,
//! as the `async-compat` crate does: `tokio::time::sleep`, `tokio::net` and the libraries on
//! them work in handlers, bodies, WebSocket handlers and spawned tasks on every runtime. That
//! runtime is one per process, with one worker thread (`weft-tokio-compat`), started by the
//! first server that needs it; its I/O and timers are driven there and wake the server's own
//! tasks. On the tokio runtime the server's own tokio runtime is entered instead.
//!
//! Without the feature only the tokio runtime gives application code a tokio context; elsewhere
//! tokio panics with "there is no reactor running", and the handler is answered with `500`.

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

/// The tokio context application code runs in, if any.
#[derive(Clone, Default)]
pub(crate) struct Context {
    #[cfg(feature = "tokio-compat")]
    handle: Option<tokio::runtime::Handle>,
}

impl Context {
    /// The process's background tokio runtime, started on first use (feature `tokio-compat`),
    /// or no context.
    pub(crate) fn background() -> std::io::Result<Context> {
        #[cfg(feature = "tokio-compat")]
        {
            Ok(Context {
                handle: Some(background::handle()?),
            })
        }
        #[cfg(not(feature = "tokio-compat"))]
        {
            Ok(Context::default())
        }
    }

    /// Runs `inside` with the context entered.
    ///
    /// A thread that has no tokio context of its own enters the background runtime once and
    /// keeps it: servers call this around every poll of application code, and entering and
    /// leaving tokio's context each time cost about a tenth of a pipelined request's CPU. The
    /// context is the same process-wide runtime for every server, so keeping it entered on
    /// such a thread changes nothing the next poll would not set again. A thread that has a
    /// tokio context already (a user's runtime) is left as it is.
    pub(crate) fn enter(&self, inside: &mut dyn FnMut()) {
        #[cfg(feature = "tokio-compat")]
        if let Some(handle) = &self.handle {
            background::enter_for_good(handle);
        }
        inside()
    }
}

#[cfg(feature = "tokio-compat")]
mod background {
    use std::cell::Cell;
    use std::sync::{Mutex, OnceLock, PoisonError};

    thread_local! {
        /// Whether this thread has entered the background runtime for good.
        static ENTERED: Cell<bool> = const { Cell::new(false) };
    }

    /// Enters `handle` on this thread for the rest of the thread's life, unless this thread
    /// has done so already or has a tokio context of its own.
    pub(super) fn enter_for_good(handle: &tokio::runtime::Handle) {
        if ENTERED.with(Cell::get) || tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        // Never dropped: the context stays until the thread ends. Guards that other code
        // makes later on this thread nest inside it and restore it as they drop.
        std::mem::forget(handle.enter());
        ENTERED.with(|entered| entered.set(true));
    }

    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

    /// The background runtime's handle; the first call starts it.
    pub(super) fn handle() -> std::io::Result<tokio::runtime::Handle> {
        static STARTING: Mutex<()> = Mutex::new(());
        if let Some(runtime) = RUNTIME.get() {
            return Ok(runtime.handle().clone());
        }
        // One runtime only: a second one built in a race would have to be dropped, which tokio
        // forbids inside an async context (a server started from a task).
        let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(runtime) = RUNTIME.get() {
            return Ok(runtime.handle().clone());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("weft-tokio-compat")
            .enable_all()
            .build()?;
        Ok(RUNTIME.get_or_init(|| runtime).handle().clone())
    }
}
