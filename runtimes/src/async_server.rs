//! The accept loop and connection tasks shared by the async runtimes (smol, async-std, tokio).
//! Each runtime only says how to accept, spawn and sleep.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;
use futures_lite::future;
use weft_adapters::Dispatcher;
use weft_adapters::futures_io::{Timer, serve_connection};
use weft_service::runtime::RuntimeServices;
use weft_service::service::{ConnectionInfo, DynService};

use crate::config::{ServerConfig, ServerHandle};
use crate::gate::ConnectionGate;
use crate::listener::{Prepared, prepare};
use crate::services::Lifecycle;
use crate::shutdown::Shutdown;

/// What an async runtime provides to the shared server.
pub(crate) trait AsyncRuntime: Send + Sync + Sized + 'static {
    /// The runtime's listener.
    type Listener: Send + Sync + 'static;
    /// An accepted connection, as `futures_io` traits.
    type Stream: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin + Send + 'static;
    /// The runtime's timer.
    type Timer: Timer + Clone;
    /// The runtime's services for applications.
    type Services: RuntimeServices;

    /// Starts the runtime's threads.
    fn start(workers: usize) -> io::Result<Self>;
    /// Adopts a bound, non-blocking std listener.
    fn listener(&self, listener: TcpListener) -> io::Result<Self::Listener>;
    /// Accepts the next connection, with `TCP_NODELAY` set.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// Runs `task` on the runtime.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);
    /// The runtime's timer.
    fn timer(&self) -> Self::Timer;
    /// The runtime's services for applications; their detached tasks end when `stopped` is
    /// thrown.
    fn services(&self, stopped: Shutdown) -> io::Result<Self::Services>;
    /// Stops the runtime's threads (tasks still running are dropped).
    fn stop(self);
}

/// Binds, starts runtime `R` and serves `service` until shut down.
pub(crate) fn start<R: AsyncRuntime>(
    config: ServerConfig,
    service: Arc<dyn DynService>,
) -> io::Result<ServerHandle> {
    start_with(config, service, R::start)
}

/// Binds, starts a runtime with `runtime(workers)` and serves `service` until shut down.
pub(crate) fn start_with<R: AsyncRuntime>(
    mut config: ServerConfig,
    service: Arc<dyn DynService>,
    runtime: impl FnOnce(usize) -> io::Result<R>,
) -> io::Result<ServerHandle> {
    let Prepared {
        listeners,
        local_addrs,
        tls,
    } = prepare(&config)?;
    let shutdown = Shutdown::new();
    if config.handle_signals {
        shutdown.on_signals()?;
    }
    let tls = tls.map(futures_rustls::TlsAcceptor::from);
    let runtime = runtime(config.workers)?;
    let prepared = (|| {
        let stopped = Shutdown::new();
        let services = runtime.services(stopped.clone())?;
        let lifecycle = Lifecycle::new(&mut config, &shutdown, stopped, services, None);
        let listeners = listeners
            .into_iter()
            .map(|l| runtime.listener(l))
            .collect::<io::Result<Vec<_>>>()?;
        io::Result::Ok((lifecycle, listeners))
    })();
    let (lifecycle, listeners) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            runtime.stop();
            return Err(error);
        }
    };
    let server = Arc::new(Server {
        service,
        gate: ConnectionGate::new(config.max_connections),
        shutdown: shutdown.clone(),
        // Thrown once the drain deadline passes: connections still open are cut.
        hard_stop: Shutdown::new(),
        tls,
        config,
    });
    let runtime = Arc::new(runtime);
    for (listener, local) in listeners.into_iter().zip(local_addrs.iter().copied()) {
        let (server, runtime_for_loop) = (Arc::clone(&server), Arc::clone(&runtime));
        runtime
            .spawn(async move { accept_loop(&*runtime_for_loop, &server, listener, local).await });
    }
    let lifecycle = Arc::new(lifecycle);
    let started = Arc::clone(&lifecycle);
    let thread = std::thread::Builder::new()
        .name("weft-server".into())
        .spawn(move || {
            server.shutdown.wait_blocking_until(None);
            let deadline = Instant::now() + server.config.drain_timeout;
            lifecycle.draining();
            if !server.gate.wait_idle_until(deadline) {
                tracing::warn!(
                    left = server.gate.active(),
                    "drain deadline passed; closing the rest"
                );
                server.hard_stop.trigger();
                server
                    .gate
                    .wait_idle_until(Instant::now() + Duration::from_secs(1));
            }
            // The accept loops hold the runtime too; they end with the shutdown.
            let runtime = wait_for_sole_owner(runtime);
            lifecycle.stopped();
            if let Some(runtime) = runtime {
                runtime.stop();
            }
            Ok(())
        })?;
    started.started(&local_addrs);
    Ok(ServerHandle {
        local_addrs,
        shutdown,
        thread: Some(thread),
    })
}

/// Waits (briefly) for the accept loops to drop their handles on the runtime.
fn wait_for_sole_owner<R>(mut runtime: Arc<R>) -> Option<R> {
    for _ in 0..200 {
        match Arc::try_unwrap(runtime) {
            Ok(runtime) => return Some(runtime),
            Err(shared) => runtime = shared,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

struct Server {
    service: Arc<dyn DynService>,
    config: ServerConfig,
    gate: Arc<ConnectionGate>,
    shutdown: Shutdown,
    hard_stop: Shutdown,
    tls: Option<futures_rustls::TlsAcceptor>,
}

/// Accepts connections on one listener until shutdown, within the connection limit.
async fn accept_loop<R: AsyncRuntime>(
    runtime: &R,
    server: &Arc<Server>,
    listener: R::Listener,
    local: SocketAddr,
) {
    loop {
        let stopped = async {
            server.shutdown.wait().await;
            None
        };
        let admitted =
            async { Some(std::future::poll_fn(|cx| server.gate.poll_acquire(cx)).await) };
        let Some(permit) = admitted.or(stopped).await else {
            return;
        };
        let stopped = async {
            server.shutdown.wait().await;
            None
        };
        let accepted = async { Some(R::accept(&listener).await) };
        let (stream, peer) = match accepted.or(stopped).await {
            None => return,
            Some(Ok(accepted)) => accepted,
            Some(Err(error)) => {
                // Out of descriptors or the like: wait a little rather than spin on the error.
                tracing::warn!(%error, "accept failed");
                runtime
                    .timer()
                    .sleep_until(Instant::now() + Duration::from_millis(50))
                    .await;
                continue;
            }
        };
        let server = Arc::clone(server);
        let timer = runtime.timer();
        runtime.spawn(async move {
            let _permit = permit;
            let hard_stop = server.hard_stop.clone();
            let serve = AssertUnwindSafe(serve_accepted(&server, stream, peer, local, &timer))
                .catch_unwind();
            let cut = async {
                hard_stop.wait().await;
                Ok(Ok(()))
            };
            match future::or(serve, cut).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "connection ended with an I/O error")
                }
                Err(_) => tracing::error!(%peer, "connection task panicked; the server lives on"),
            }
        });
    }
}

/// Serves one accepted connection, after a TLS handshake when the server has TLS.
async fn serve_accepted<IO, T>(
    server: &Server,
    stream: IO,
    peer: SocketAddr,
    local: SocketAddr,
    timer: &T,
) -> io::Result<()>
where
    IO: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin,
    T: Timer,
{
    let mut info = ConnectionInfo::tcp(Some(peer), Some(local));
    let dispatcher = |info| {
        Dispatcher::new(
            Arc::clone(&server.service),
            server.config.dispatch.clone(),
            info,
            Instant::now(),
        )
    };
    let shutdown = server.shutdown.wait();
    let Some(acceptor) = &server.tls else {
        return serve_connection(stream, dispatcher(info), timer, shutdown).await;
    };
    // A handshake that drags on is a slowloris on TLS: it gets the head's deadline.
    let deadline = Instant::now() + server.config.dispatch.limits.head_timeout;
    let timed_out = async {
        timer.sleep_until(deadline).await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        ))
    };
    let stream = acceptor.accept(stream).or(timed_out).await?;
    info.tls = true;
    info.alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    serve_connection(stream, dispatcher(info), timer, shutdown).await
}
