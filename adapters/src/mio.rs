//! Serving connections from a [`mio::Poll`] that the application owns.
//!
//! An application with an event loop of its own keeps its loop and hands weft one
//! [`MioConnection`] per accepted socket. weft never blocks, never sleeps and never owns a
//! thread here: it moves bytes when the application reports readiness, moves time when the
//! application reports a deadline, and asks to be polled again through a
//! [`std::task::Waker`] when the application's own future or body makes progress.
//!
//! # Driving a connection
//!
//! Each connection has a [`Token`] of the application's choosing. The loop:
//!
//! 1. accepts, builds a [`Dispatcher`] and a [`MioConnection`] with a waker from
//!    [`Wakeups::waker`], and calls [`register`](MioConnection::register);
//! 2. passes every event for that token to [`handle_event`](MioConnection::handle_event);
//! 3. when the [`Wakeups`] token fires, takes the woken tokens with [`Wakeups::take`] and calls
//!    [`handle_wake`](MioConnection::handle_wake) on each;
//! 4. folds [`poll_timeout`](MioConnection::poll_timeout) of every connection into the
//!    timeout of `Poll::poll`, and calls [`handle_timeout`](MioConnection::handle_timeout)
//!    once a deadline has passed;
//! 5. after any of these calls, deregisters and drops the connection when it returned an
//!    error or [`is_closed`](MioConnection::is_closed) is true.
//!
//! `examples/embed_mio.rs` is such a loop, serving HTTP next to a UDP socket of its own.
//!
//! # Readiness
//!
//! Sockets are registered for both directions, edge-triggered as mio always is: an event
//! arrives when readiness *changes*. The connection remembers which direction is ready and
//! reads or writes until the socket answers `WouldBlock`, so no event is lost when it stops
//! reading for a while (the application has not taken the request body yet: backpressure).
//! A spurious event or wake-up is harmless; a missed one would stall the connection, so a
//! loop must not filter them.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Wake, Waker};
use std::time::Instant;

use bytes::Buf;
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::Dispatcher;

/// Rounds of read, poll and write one call does before it hands the loop back (and asks, through
/// its waker, to be called again), so that one busy connection cannot starve the others.
const ROUNDS_PER_CALL: usize = 32;

/// Bytes read from the socket at a time (on the stack of the call).
const READ_CHUNK: usize = 16 * 1024;

/// One HTTP/1.1 connection served from a [`mio::Poll`] the application owns.
///
/// See the [module documentation](self) for the calls a loop makes. Every method that moves the
/// connection takes `now`, read once per loop iteration by the application; none reads a clock.
/// An `Err` from any of them means the socket failed and the connection is over: deregister it
/// and drop it.
///
/// A handler that panics is answered with `500` by the [`Dispatcher`]. A panic elsewhere in the
/// application (a response body's `poll_frame`, say) unwinds out of these methods into the
/// loop; a loop that must survive it wraps the call in [`std::panic::catch_unwind`] and drops
/// the connection, as weft's own event-loop runtimes do.
pub struct MioConnection {
    stream: TcpStream,
    dispatcher: Dispatcher,
    waker: Waker,
    /// The socket may have bytes to read: no read has answered `WouldBlock` since the last
    /// readable event.
    readable: bool,
    /// The socket may accept bytes: no write has answered `WouldBlock` since the last writable
    /// event.
    writable: bool,
    /// The exchange is over, its output written and our side of the socket shut.
    closed: bool,
    /// Whether the socket is corked for a file response's head and body.
    cork: crate::file::Cork,
}

impl MioConnection {
    /// A connection on `stream` (accepted from a [`mio::net::TcpListener`], or any non-blocking
    /// stream), served by `dispatcher`. `waker` is how the application's futures and bodies ask
    /// for the connection to be driven again; take it from [`Wakeups::waker`] with the token
    /// the stream is registered under.
    ///
    /// File response bodies ([`weft_service::body::Body::file`]) go out with `sendfile(2)`
    /// on Linux (a read/write copy elsewhere) over cleartext HTTP/1.1: see [`crate::file`].
    pub fn new(stream: TcpStream, mut dispatcher: Dispatcher, waker: Waker) -> Self {
        dispatcher.set_transmit_files(true);
        MioConnection {
            stream,
            dispatcher,
            waker,
            // A fresh socket may already hold the request, and can surely take a response: both
            // are tried once before the first event says so.
            readable: true,
            writable: true,
            closed: false,
            cork: crate::file::Cork::default(),
        }
    }

    /// Registers the socket with `registry` under `token`, for both directions.
    ///
    /// The first call to [`handle_wake`](Self::handle_wake) or [`handle_event`](Self::handle_event)
    /// starts reading; a loop may call `handle_wake` right after registering rather than wait
    /// for the first event.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut self.stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Removes the socket from `registry`; call it before dropping the connection.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut self.stream)
    }

    /// Handles a readiness event for this connection's token.
    pub fn handle_event(&mut self, event: &Event, now: Instant) -> io::Result<()> {
        // An error or hang-up is reported as readiness: the next read or write returns it.
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        let writable = event.is_writable() || event.is_write_closed() || event.is_error();
        self.handle_readiness(readable, writable, now)
    }

    /// Handles readiness reported by other means than a [`mio::event::Event`].
    pub fn handle_readiness(
        &mut self,
        readable: bool,
        writable: bool,
        now: Instant,
    ) -> io::Result<()> {
        self.readable |= readable;
        self.writable |= writable;
        self.drive(now)
    }

    /// The application woke the connection's waker: its future, its response body or its
    /// reading of the request body moved. Also the way to start a connection just registered.
    pub fn handle_wake(&mut self, now: Instant) -> io::Result<()> {
        self.drive(now)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: a head, body or keep-alive
    /// deadline of the protocol, or the send timeout of output the socket refuses. `None` when
    /// no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.dispatcher.poll_timeout()
    }

    /// Handles the deadline from [`poll_timeout`](Self::poll_timeout) if it has passed at `now`
    /// (an early call does no harm).
    pub fn handle_timeout(&mut self, now: Instant) -> io::Result<()> {
        if self.poll_timeout().is_some_and(|deadline| deadline <= now) {
            self.dispatcher.handle_timeout(now);
        }
        self.drive(now)
    }

    /// Closes gracefully, for an application shutting down: at once when idle, else after the
    /// response in progress (see [`Dispatcher::shutdown`]).
    pub fn shutdown(&mut self, now: Instant) -> io::Result<()> {
        self.dispatcher.shutdown();
        self.drive(now)
    }

    /// Whether the connection is over: deregister and drop it.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The dispatcher, for its getters.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Moves bytes both ways and polls the application until nothing moves, the socket blocks
    /// both ways, or the round budget is spent.
    fn drive(&mut self, now: Instant) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..ROUNDS_PER_CALL {
            let mut moved = self.dispatcher.poll(&mut cx);
            moved |= self.write(now)?;
            // After a send timeout the output left cannot get out: close without it.
            if self.dispatcher.is_closed() || self.dispatcher.send_timed_out() {
                self.close();
                return Ok(());
            }
            moved |= self.read(now, &mut buf)?;
            if !moved {
                return Ok(());
            }
        }
        // Budget spent with work left: come back on the next turn of the loop.
        self.waker.wake_by_ref();
        Ok(())
    }

    /// Writes queued output until there is none or the socket blocks, handing back to the
    /// dispatcher what the socket does not accept (it times how long that waits); true when
    /// bytes went out.
    fn write(&mut self, now: Instant) -> io::Result<bool> {
        let mut wrote = false;
        self.cork.sync(&self.stream, self.dispatcher.file_pending());
        while self.writable {
            let Some(mut bytes) = self.dispatcher.poll_transmit(now) else {
                wrote |= self.write_file(now);
                self.cork.sync(&self.stream, self.dispatcher.file_pending());
                break;
            };
            match self.stream.write(&bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    wrote = true;
                    bytes.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            // Offered again first by the next `poll_transmit`.
            self.dispatcher.unsent(now, bytes);
        }
        Ok(wrote)
    }

    /// Sends a file body straight from the file to the socket until it is sent or the socket
    /// blocks; true when bytes went out. A failure cuts the response short (the dispatcher
    /// closes the connection), it does not fail the socket.
    fn write_file(&mut self, now: Instant) -> bool {
        let mut wrote = false;
        while self.writable {
            let Some(region) = self.dispatcher.poll_transmit_file(now) else {
                break;
            };
            match crate::file::transmit(&mut self.stream, &region) {
                Ok(sent) => {
                    wrote = true;
                    self.dispatcher.file_sent(now, sent);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.dispatcher.file_failed(&e);
                    return true;
                }
            }
        }
        wrote
    }

    /// Reads once, when the dispatcher wants bytes and the socket may have some; true when it
    /// read (or learned of the peer's EOF).
    fn read(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<bool> {
        if !self.readable || !self.dispatcher.wants_read() {
            return Ok(false);
        }
        let room = self.dispatcher.receive_capacity().min(buf.len());
        match self.stream.read(&mut buf[..room]) {
            Ok(0) => {
                self.readable = false;
                self.dispatcher.receive_eof();
                Ok(true)
            }
            Ok(n) => {
                let taken = self.dispatcher.receive(now, &buf[..n]);
                debug_assert_eq!(taken, n, "reads are bounded by receive_capacity");
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Ends the connection: our side of the socket is shut, so the peer sees the end of the
    /// stream even before the application drops the socket.
    fn close(&mut self) {
        self.closed = true;
        // A peer that already went away cannot be told anything more.
        if let Err(error) = self.stream.shutdown(Shutdown::Write) {
            tracing::trace!(%error, "shutdown of a closed connection failed");
        }
    }
}

/// Wake-ups from the application to connections in one [`mio::Poll`].
///
/// It owns the poll's [`mio::Waker`] (mio allows one per poll) and a queue of the tokens woken
/// since the loop last looked. Each connection's [`std::task::Waker`] (from
/// [`waker`](Self::waker)) queues its token, at most once until taken, and wakes the poll; the
/// loop sees an event for [`token`](Self::token) and [`take`](Self::take)s the queue. Wakers may
/// be woken from any thread.
pub struct Wakeups {
    shared: Arc<WakeShared>,
}

struct WakeShared {
    poll_waker: mio::Waker,
    token: Token,
    /// Wakers woken and not yet taken.
    ready: Mutex<Vec<Arc<TokenWaker>>>,
}

/// The waker of one connection.
struct TokenWaker {
    /// Weak, so that wakers an application keeps after the loop ended hold nothing alive.
    shared: Weak<WakeShared>,
    token: Token,
    /// Whether this waker sits in the queue already.
    queued: AtomicBool,
}

impl Wakeups {
    /// Wake-ups for the poll that `registry` belongs to; their events arrive under `token`.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Self> {
        Ok(Wakeups {
            shared: Arc::new(WakeShared {
                poll_waker: mio::Waker::new(registry, token)?,
                token,
                ready: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The token that wake-up events arrive under.
    pub fn token(&self) -> Token {
        self.shared.token
    }

    /// A waker that queues `token` and wakes the poll.
    ///
    /// A token reused for a new connection may see a late wake-up meant for the old one; that is
    /// a spurious wake-up, which connections take in their stride.
    pub fn waker(&self, token: Token) -> Waker {
        Waker::from(Arc::new(TokenWaker {
            shared: Arc::downgrade(&self.shared),
            token,
            queued: AtomicBool::new(false),
        }))
    }

    /// Appends to `tokens` every token woken since the last call.
    pub fn take(&self, tokens: &mut Vec<Token>) {
        let woken = std::mem::take(&mut *self.shared.lock());
        tokens.extend(woken.iter().map(|waker| {
            // Cleared before the connection is driven, so a wake-up during the drive is kept.
            waker.queued.store(false, Ordering::Release);
            waker.token
        }));
    }
}

impl WakeShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<TokenWaker>>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        shared.lock().push(Arc::clone(self));
        if let Err(error) = shared.poll_waker.wake() {
            tracing::error!(%error, token = self.token.0, "cannot wake the mio poll");
        }
    }
}

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeups")
            .field("token", &self.shared.token)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::SocketAddr;
    use std::time::Duration;

    use http::{Request, Response};
    use weft_service::body::Body;
    use weft_service::service::ConnectionInfo;

    use super::*;
    use crate::DispatchConfig;

    const LISTENER: Token = Token(0);
    const WAKE: Token = Token(1);
    const CONNECTION: Token = Token(2);

    /// `/slow` is answered from another thread 100 ms later; anything else at once.
    async fn app(request: Request<Body>) -> Response<Body> {
        if request.uri().path() == "/slow" {
            let (sender, done) = Body::channel(1);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                sender.finish();
            });
            let _ = done.collect(0).await;
        }
        Response::new(Body::from(request.uri().path().to_owned()))
    }

    /// A mio loop on its own thread serving the first connection to its listener until that
    /// connection closes; returns how long it was served.
    fn serve_one(config: DispatchConfig) -> (SocketAddr, std::thread::JoinHandle<Duration>) {
        let mut poll = mio::Poll::new().unwrap();
        let mut listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let wakeups = Wakeups::new(poll.registry(), WAKE).unwrap();
            let mut events = mio::Events::with_capacity(16);
            let mut connection = None;
            let mut woken = Vec::new();
            let mut accepted_at = Instant::now();
            loop {
                let timeout = connection
                    .as_ref()
                    .and_then(MioConnection::poll_timeout)
                    .map(|deadline| deadline.saturating_duration_since(Instant::now()));
                poll.poll(&mut events, timeout).unwrap();
                let now = Instant::now();
                for event in events.iter() {
                    match event.token() {
                        LISTENER if connection.is_none() => {
                            let (stream, peer) = listener.accept().unwrap();
                            accepted_at = now;
                            let info = ConnectionInfo::tcp(Some(peer), Some(addr));
                            let dispatcher =
                                Dispatcher::new(Arc::new(app), config.clone(), info, now);
                            let mut served =
                                MioConnection::new(stream, dispatcher, wakeups.waker(CONNECTION));
                            served.register(poll.registry(), CONNECTION).unwrap();
                            served.handle_wake(now).unwrap();
                            connection = Some(served);
                        }
                        WAKE => wakeups.take(&mut woken),
                        CONNECTION => {
                            let served = connection.as_mut().unwrap();
                            served.handle_event(event, now).unwrap();
                        }
                        _ => {}
                    }
                }
                let Some(served) = connection.as_mut() else {
                    continue;
                };
                for _ in woken.drain(..) {
                    served.handle_wake(now).unwrap();
                }
                served.handle_timeout(now).unwrap();
                if served.is_closed() {
                    served.deregister(poll.registry()).unwrap();
                    return accepted_at.elapsed();
                }
            }
        });
        (addr, thread)
    }

    fn read_until(stream: &mut std::net::TcpStream, needle: &str) -> String {
        let mut seen = Vec::new();
        let mut buf = [0; 1024];
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = stream.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(seen).unwrap()
    }

    #[test]
    fn serves_keep_alive_requests_and_a_handler_woken_from_another_thread() {
        let (addr, server) = serve_one(DispatchConfig::default());
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
            .write_all(b"GET /first HTTP/1.1\r\nhost: t\r\n\r\n")
            .unwrap();
        assert!(read_until(&mut client, "/first").starts_with("HTTP/1.1 200"));
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .unwrap();
        assert!(read_until(&mut client, "/slow").starts_with("HTTP/1.1 200"));
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        server.join().unwrap();
    }

    #[test]
    fn a_stalled_head_is_cut_off_at_the_head_timeout() {
        let mut config = DispatchConfig::default();
        config.limits.head_timeout = Duration::from_millis(200);
        let (addr, server) = serve_one(config);
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client.write_all(b"GET /never HT").unwrap();
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        let served = server.join().unwrap();
        assert!(served >= Duration::from_millis(200), "{served:?}");
        assert!(served < Duration::from_secs(5), "{served:?}");
    }

    #[test]
    fn a_waker_queues_its_token_once_until_taken() {
        let poll = mio::Poll::new().unwrap();
        let wakeups = Wakeups::new(poll.registry(), Token(100)).unwrap();
        let waker = wakeups.waker(Token(7));
        waker.wake_by_ref();
        waker.wake_by_ref();
        wakeups.waker(Token(8)).wake();
        let mut tokens = Vec::new();
        wakeups.take(&mut tokens);
        assert_eq!(tokens, [Token(7), Token(8)]);
        tokens.clear();
        wakeups.take(&mut tokens);
        assert!(tokens.is_empty());
        waker.wake();
        wakeups.take(&mut tokens);
        assert_eq!(tokens, [Token(7)]);
    }

    #[test]
    fn a_waker_outliving_its_poll_does_nothing() {
        let poll = mio::Poll::new().unwrap();
        let wakeups = Wakeups::new(poll.registry(), Token(1)).unwrap();
        let waker = wakeups.waker(Token(2));
        drop(wakeups);
        drop(poll);
        waker.wake();
    }
}
