//! The tokio runtime: a multi-threaded tokio runtime with `workers` threads, or a tokio runtime
//! the application runs already ([`start_on_handle`]).
//!
//! Application code runs inside the tokio runtime, so libraries built on tokio work in
//! handlers as they do anywhere on tokio; [`weft_service::runtime`]'s services are tokio's
//! (`tokio::spawn`, tokio's timer, `tokio::task::spawn_blocking`).

use std::any::Any;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};
use weft_adapters::futures_io::{Sleep, Timer};
use weft_service::runtime::{BlockingWork, BoxFuture, RuntimeServices};
use weft_service::service::{Service, erase};

use crate::async_server::{self, AsyncRuntime};
use crate::config::{ServerConfig, ServerHandle};
use crate::services::until_stopped;
use crate::shutdown::Shutdown;

/// Serves `service` on a tokio runtime of its own, with `config.workers` threads, until shut
/// down; returns once listening.
///
/// Inside a tokio runtime (`#[tokio::main]`), [`start_on_handle`] serves on that runtime
/// instead of starting a second one.
pub fn start<S: Service>(config: ServerConfig, service: S) -> io::Result<ServerHandle> {
    async_server::start::<TokioRuntime>(config, erase(service))
}

/// Serves `service` on the tokio runtime of `handle` (a multi-threaded one: a current-thread
/// runtime serves only while its thread is inside `block_on`), until shut down; returns once
/// listening. `config.workers` does not apply: the runtime has its threads.
///
/// The runtime is the application's: stopping the server leaves it running (the server's
/// tasks end, and so do the tasks its applications spawned through
/// [`weft_service::runtime::spawn`]). [`ServerHandle::join`] blocks: inside the runtime, call
/// it from `spawn_blocking`, or just keep the handle and call
/// [`shutdown`](ServerHandle::shutdown).
///
/// ```no_run
/// # use weft_service::body::Body;
/// # fn app() -> impl weft_service::service::Service {
/// #     |_: http::Request<Body>| async { http::Response::new(Body::from("hi")) }
/// # }
/// # fn main() -> std::io::Result<()> {
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// // inside #[tokio::main]:
/// let config = weft_runtime::ServerConfig::new(["127.0.0.1:8080".parse().unwrap()]);
/// let server = weft_runtime::tokio::start_on_handle(tokio::runtime::Handle::current(), config, app())?;
/// tokio::task::spawn_blocking(move || server.join()).await?
/// # })
/// # }
/// ```
pub fn start_on_handle<S: Service>(
    handle: tokio::runtime::Handle,
    config: ServerConfig,
    service: S,
) -> io::Result<ServerHandle> {
    async_server::start_with(config, erase(service), |_| {
        Ok(TokioRuntime {
            runtime: Owner::Borrowed(handle),
            id: None,
        })
    })
}

pub(crate) struct TokioRuntime {
    runtime: Owner,
    /// The mark its threads carry, when the runtime is the server's own.
    id: Option<usize>,
}

thread_local! {
    /// Which server-owned runtime this thread belongs to (see [`TokioServices::enter`]); 0
    /// for none.
    static THREAD_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The runtime the server runs on: its own, or the application's.
enum Owner {
    Owned(tokio::runtime::Runtime),
    Borrowed(tokio::runtime::Handle),
}

impl TokioRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.runtime {
            Owner::Owned(runtime) => runtime.handle(),
            Owner::Borrowed(handle) => handle,
        }
    }
}

/// tokio's timer.
#[derive(Clone, Copy)]
pub(crate) struct TokioTimer;

impl Timer for TokioTimer {
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// Applications' services: the tokio runtime's.
pub(crate) struct TokioServices {
    handle: tokio::runtime::Handle,
    stopped: Shutdown,
    /// The runtime's mark, when it is the server's own.
    id: Option<usize>,
}

impl RuntimeServices for TokioServices {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn spawn(&self, task: BoxFuture<()>) {
        self.handle.spawn(until_stopped(task, &self.stopped));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        // A tokio timer belongs to the runtime entered when it is made; then it may be polled
        // anywhere.
        let _entered = self.handle.enter();
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<Box<dyn Any + Send>> {
        let done = self.handle.spawn_blocking(work);
        Box::pin(async move {
            match done.await {
                Ok(output) => output,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => panic!("blocking work cancelled: the tokio runtime shut down"),
            }
        })
    }

    /// Application code is polled by the connection tasks, on the runtime's own threads,
    /// where its context is entered already: entering it again around every poll (a handle
    /// clone and two thread-local writes) would be a tenth of the adapter's cost per request.
    /// Those threads are known by their mark; other threads (and the threads of an
    /// application's runtime, which may enter others) enter it.
    fn enter(&self, inside: &mut dyn FnMut()) {
        if self
            .id
            .is_some_and(|id| THREAD_OF.with(|of| of.get()) == id)
        {
            return inside();
        }
        let _entered = self.handle.enter();
        inside();
    }
}

impl AsyncRuntime for TokioRuntime {
    type Listener = tokio::net::TcpListener;
    type Stream = Compat<tokio::net::TcpStream>;
    type Timer = TokioTimer;
    type Services = TokioServices;

    fn start(workers: usize) -> io::Result<Self> {
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("weft-tokio")
            // Workers and blocking threads alike: each runs with the runtime entered.
            .on_thread_start(move || THREAD_OF.with(|of| of.set(id)))
            .enable_all()
            .build()?;
        Ok(TokioRuntime {
            runtime: Owner::Owned(runtime),
            id: Some(id),
        })
    }

    fn listener(&self, listener: TcpListener) -> io::Result<Self::Listener> {
        let _entered = self.handle().enter();
        tokio::net::TcpListener::from_std(listener)
    }

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream.compat(), peer))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.handle().spawn(task);
    }

    fn timer(&self) -> TokioTimer {
        TokioTimer
    }

    fn services(&self, stopped: Shutdown) -> io::Result<Self::Services> {
        Ok(TokioServices {
            handle: self.handle().clone(),
            stopped,
            id: self.id,
        })
    }

    fn stop(self) {
        match self.runtime {
            Owner::Owned(runtime) => runtime.shutdown_timeout(Duration::from_secs(1)),
            // The application's runtime runs on; the server's tasks have ended.
            Owner::Borrowed(_) => {}
        }
    }
}
