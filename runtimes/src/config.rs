//! What a server is told, and what it hands back.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use weft_adapters::DispatchConfig;

use crate::shutdown::Shutdown;
use crate::tls::TlsFiles;

/// How to run a server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Addresses to listen on; port 0 picks a free port (see [`ServerHandle::local_addrs`]).
    pub addresses: Vec<SocketAddr>,
    /// Worker threads; defaults to the number of CPUs.
    pub workers: usize,
    /// Most connections served at once (default 10 000). Past it the server stops accepting
    /// until one ends, leaving new clients in the kernel's backlog: backpressure, not refusal.
    pub max_connections: usize,
    /// Time in-flight requests get to finish after shutdown begins (default 30 s).
    pub drain_timeout: Duration,
    /// Whether SIGINT and SIGTERM start a graceful shutdown (Unix; default false, as a library
    /// should not take over a process's signals unasked).
    pub handle_signals: bool,
    /// Protocol limits and buffering of each connection.
    pub dispatch: DispatchConfig,
    /// Serve TLS with this certificate and key (every listener), or plain TCP when `None`.
    pub tls: Option<TlsFiles>,
    /// Run once the server listens, before `start` returns, with its addresses; see
    /// [`on_start`](Self::on_start).
    pub start_hook: Option<StartHook>,
    /// Run once when the server starts draining; see [`on_shutdown`](Self::on_shutdown).
    pub shutdown_hook: Option<ShutdownHook>,
}

impl ServerConfig {
    /// A configuration listening on `addresses`, with defaults for everything else.
    pub fn new(addresses: impl IntoIterator<Item = SocketAddr>) -> Self {
        ServerConfig {
            addresses: addresses.into_iter().collect(),
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(30),
            handle_signals: false,
            dispatch: DispatchConfig::default(),
            tls: None,
            start_hook: None,
            shutdown_hook: None,
        }
    }

    /// Runs `hook` once the server listens, with the addresses it listens on (the ports the
    /// OS picked for port 0), on the thread that called `start`, before `start` returns. The
    /// runtime is entered: the hook can start background work with
    /// [`weft_service::runtime::spawn`], which can end itself on
    /// [`weft_service::runtime::shutdown_signal`]. A hook that panics is logged; the server
    /// runs on.
    pub fn on_start(mut self, hook: impl Fn(&[SocketAddr]) + Send + Sync + 'static) -> Self {
        self.start_hook = Some(StartHook(Arc::new(hook)));
        self
    }

    /// Runs `hook` once when the server starts draining (on [`ServerHandle::shutdown`] or a
    /// signal), on the server's coordinating thread, with the runtime entered, while the
    /// requests in flight finish. The drain deadline runs meanwhile. A hook that panics is
    /// logged.
    pub fn on_shutdown(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.shutdown_hook = Some(ShutdownHook(Arc::new(hook)));
        self
    }
}

/// A start hook: see [`ServerConfig::on_start`].
#[derive(Clone)]
pub struct StartHook(pub(crate) Arc<StartFn>);

/// What a [`StartHook`] runs.
type StartFn = dyn Fn(&[SocketAddr]) + Send + Sync;

/// A shutdown hook: see [`ServerConfig::on_shutdown`].
#[derive(Clone)]
pub struct ShutdownHook(pub(crate) Arc<dyn Fn() + Send + Sync>);

impl StartHook {
    /// Runs the hook, as the server does once it listens: lets a layer above wrap a hook it
    /// was given with its own (the framework starts its background work this way).
    pub fn call(&self, addresses: &[SocketAddr]) {
        (self.0)(addresses);
    }
}

impl ShutdownHook {
    /// Runs the hook, as the server does when it starts draining.
    pub fn call(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for StartHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartHook")
    }
}

impl std::fmt::Debug for ShutdownHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownHook")
    }
}

/// A running server: where it listens, and how to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    pub(crate) local_addrs: Vec<SocketAddr>,
    pub(crate) shutdown: Shutdown,
    pub(crate) thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// The addresses the server listens on, with the ports the OS picked for port 0.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Starts a graceful shutdown; [`join`](Self::join) waits for it to end.
    pub fn shutdown(&self) {
        self.shutdown.trigger();
    }

    /// A handle that can start the shutdown from elsewhere.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Waits until the server has stopped.
    pub fn join(mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    /// Dropping the handle shuts the server down and waits for it.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shutdown.trigger();
            let _ = thread.join();
        }
    }
}
