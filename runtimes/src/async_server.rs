//! The accept loop and connection tasks shared by the async runtimes (smol, async-std, tokio).
//! Each runtime only says how to accept, spawn and sleep.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;
use futures_lite::future;
use futures_rustls::server::TlsStream;
use weft_adapters::Dispatcher;
use weft_adapters::futures_io::{Serve, Timer, serve_connection};
use weft_service::runtime::RuntimeServices;
use weft_service::service::{ConnectionInfo, DynService};

use crate::config::{ServerConfig, ServerHandle};
use crate::gate::{ConnectionGate, Permit};
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
    type Timer: Timer + Clone + Unpin;
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
        runtime.spawn(connection_task(
            Arc::clone(server),
            permit,
            stream,
            peer,
            local,
            runtime.timer(),
        ));
    }
}

/// One connection's task: serves it, isolates a panic of it, and cuts it at the hard stop.
fn connection_task<IO, T>(
    server: Arc<Server>,
    permit: Permit,
    stream: IO,
    peer: SocketAddr,
    local: SocketAddr,
    timer: T,
) -> impl Future<Output = ()> + Send + 'static
where
    IO: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin + Send + 'static,
    T: Timer + Unpin,
{
    let info = ConnectionInfo::tcp(Some(peer), Some(local));
    let serving = match &server.tls {
        None => {
            let dispatcher = server.dispatcher(info);
            // The task watches the shutdown itself (see `ConnectionTask::watch`).
            Serving::Plain(serve_connection(
                stream,
                dispatcher,
                timer,
                future::pending(),
            ))
        }
        Some(acceptor) => Serving::Handshake(Box::pin(handshake(
            acceptor.clone(),
            stream,
            server.config.dispatch.limits.head_timeout,
            timer,
            info,
        ))),
    };
    ConnectionTask {
        serving: Some(serving),
        watch: Watch::Graceful(server.shutdown.wait(), false),
        server,
        peer,
        _permit: permit,
    }
}

/// The future of a connection's task, written out rather than `async`: an idle connection's
/// memory is mostly this future, and an `async` block keeps what it moves into an awaited
/// future twice, in its captures and in the awaited future. It holds the [`Dispatcher`] once
/// and nothing sized for TLS when there is no TLS (the handshake and the TLS stream live in a
/// box of their own, [`Serving`]).
struct ConnectionTask<IO, T, W> {
    /// `None` once it ended.
    serving: Option<Serving<IO, T>>,
    watch: Watch<W>,
    server: Arc<Server>,
    peer: SocketAddr,
    _permit: Permit,
}

/// How a connection is served.
// Most connections are plain: boxing that variant would cost each one an allocation.
#[allow(clippy::large_enum_variant)]
enum Serving<IO, T> {
    Plain(Serve<IO, T, future::Pending<()>>),
    /// The TLS handshake (boxed, like what follows it: TLS state is large next to an idle
    /// plain connection).
    Handshake(Handshaking<IO, T>),
    Tls(Box<Serve<TlsStream<IO>, T, future::Pending<()>>>),
}

/// A TLS handshake under way.
type Handshaking<IO, T> = Pin<Box<dyn Future<Output = io::Result<Handshaken<IO, T>>> + Send>>;

/// What a TLS handshake leaves: the stream, and what its connection is to be served with.
type Handshaken<IO, T> = (TlsStream<IO>, ConnectionInfo, T);

impl<IO, T> Serving<IO, T> {
    /// Begins the connection's graceful shutdown (one still in its TLS handshake is told once
    /// it is done).
    fn shutdown(&mut self) {
        match self {
            Serving::Plain(serve) => serve.shutdown(),
            Serving::Handshake(_) => {}
            Serving::Tls(serve) => serve.shutdown(),
        }
    }
}

/// The switch a connection's task watches: the graceful shutdown, then the hard stop, which
/// only ever follows it. Each is a [`Shutdown::wait`] polled once, which registers the task's
/// waker, and then told by [`Shutdown::is_triggered`]: the task's waker stays the same for
/// its whole life, and polling the wait again would lock the switch on every wake-up.
enum Watch<W> {
    /// The wait, and whether it was polled.
    Graceful(W, bool),
    /// Boxed: made only once the shutdown began.
    HardStop(Pin<Box<dyn Future<Output = ()> + Send>>, bool),
}

impl<IO, T, W> ConnectionTask<IO, T, W>
where
    W: Future<Output = ()> + Unpin,
{
    /// Follows the switches; true when the hard stop came and the connection must end now.
    fn watch(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            match &mut self.watch {
                Watch::Graceful(wait, polled) => {
                    let thrown = self.server.shutdown.is_triggered()
                        || (!std::mem::replace(polled, true) && Pin::new(wait).poll(cx).is_ready());
                    if !thrown {
                        return false;
                    }
                    if let Some(serving) = &mut self.serving {
                        serving.shutdown();
                    }
                    self.watch = Watch::HardStop(Box::pin(self.server.hard_stop.wait()), false);
                }
                Watch::HardStop(wait, polled) => {
                    return self.server.hard_stop.is_triggered()
                        || (!std::mem::replace(polled, true) && wait.as_mut().poll(cx).is_ready());
                }
            }
        }
    }
}

impl<IO, T, W> Future for ConnectionTask<IO, T, W>
where
    IO: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin,
    T: Timer + Unpin,
    W: Future<Output = ()> + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.watch(cx) {
            return this.end();
        }
        let Some(serving) = &mut this.serving else {
            return Poll::Ready(());
        };
        let server = &this.server;
        let served = std::panic::catch_unwind(AssertUnwindSafe(|| serving.poll(cx, server)));
        let peer = this.peer;
        match served {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(()))) => this.end(),
            Ok(Poll::Ready(Err(error))) => {
                tracing::debug!(%peer, %error, "connection ended with an I/O error");
                this.end()
            }
            Err(_) => {
                tracing::error!(%peer, "connection task panicked; the server lives on");
                this.end()
            }
        }
    }
}

impl<IO, T, W> ConnectionTask<IO, T, W> {
    /// Drops the connection (closing the socket) now rather than when the runtime drops the
    /// task.
    fn end(&mut self) -> Poll<()> {
        self.serving = None;
        Poll::Ready(())
    }
}

impl<IO, T> Serving<IO, T>
where
    IO: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin,
    T: Timer + Unpin,
{
    /// Serves the connection until it ends, past its TLS handshake if it has one.
    fn poll(&mut self, cx: &mut Context<'_>, server: &Server) -> Poll<io::Result<()>> {
        loop {
            match self {
                Serving::Plain(serve) => return Pin::new(serve).poll(cx),
                Serving::Tls(serve) => return Pin::new(&mut **serve).poll(cx),
                Serving::Handshake(handshake) => {
                    let (stream, info, timer) = std::task::ready!(handshake.as_mut().poll(cx))?;
                    let dispatcher = server.dispatcher(info);
                    let mut serve = serve_connection(stream, dispatcher, timer, future::pending());
                    if server.shutdown.is_triggered() {
                        serve.shutdown();
                    }
                    *self = Serving::Tls(Box::new(serve));
                }
            }
        }
    }
}

impl Server {
    /// The dispatcher of a connection accepted now.
    fn dispatcher(&self, info: ConnectionInfo) -> Dispatcher {
        Dispatcher::new(
            Arc::clone(&self.service),
            self.config.dispatch.clone(),
            info,
            Instant::now(),
        )
    }
}

/// The TLS handshake of an accepted connection, within `timeout`: one that drags on is a
/// slowloris on TLS, so it gets the head's deadline.
async fn handshake<IO, T>(
    acceptor: futures_rustls::TlsAcceptor,
    stream: IO,
    timeout: Duration,
    timer: T,
    mut info: ConnectionInfo,
) -> io::Result<Handshaken<IO, T>>
where
    IO: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin,
    T: Timer,
{
    let timed_out = async {
        timer.sleep_until(Instant::now() + timeout).await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        ))
    };
    let stream = acceptor.accept(stream).or(timed_out).await?;
    info.tls = true;
    info.alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    Ok((stream, info, timer))
}

#[cfg(test)]
mod tests {
    use weft_adapters::Dispatcher;

    use super::connection_task;

    /// The size of what `f` returns: here, a future, measured without making one.
    fn output_size<A, B, C, D, E, F, R>(_: fn(A, B, C, D, E, F) -> R) -> usize {
        size_of::<R>()
    }

    /// Each runtime's connection task, by name, with its stream type's size.
    // One push per runtime compiled in: `vec![]` cannot leave out the others.
    #[allow(clippy::vec_init_then_push)]
    fn task_sizes() -> Vec<(&'static str, usize, usize)> {
        #[allow(unused_mut)]
        let mut sizes = Vec::new();
        #[cfg(feature = "smol")]
        sizes.push((
            "smol",
            output_size(connection_task::<smol::net::TcpStream, crate::smol::SmolTimer>),
            size_of::<smol::net::TcpStream>(),
        ));
        #[cfg(feature = "async-std")]
        sizes.push((
            "async-std",
            output_size(
                connection_task::<async_std::net::TcpStream, crate::async_std::AsyncStdTimer>,
            ),
            size_of::<async_std::net::TcpStream>(),
        ));
        #[cfg(feature = "tokio")]
        sizes.push((
            "tokio",
            output_size(
                connection_task::<
                    tokio_util::compat::Compat<tokio::net::TcpStream>,
                    crate::tokio::TokioTimer,
                >,
            ),
            size_of::<tokio_util::compat::Compat<tokio::net::TcpStream>>(),
        ));
        sizes
    }

    /// An idle connection's memory is mostly its task: the dispatcher, the stream, and little
    /// else. Nothing sized for TLS (a handshake, a TLS stream) and no second copy of the
    /// dispatcher (an `async fn`'s argument kept beside the local it moved into).
    #[test]
    fn a_connection_task_is_its_dispatcher_and_stream_and_little_more() {
        let dispatcher = size_of::<Dispatcher>();
        for (runtime, task, stream) in task_sizes() {
            eprintln!("{runtime}: task {task} B, dispatcher {dispatcher} B, stream {stream} B");
            assert!(
                task <= dispatcher + stream + 256,
                "{runtime}: a connection task of {task} B for a dispatcher of {dispatcher} B \
                 and a stream of {stream} B"
            );
        }
    }
}
