//! Serving connections from a [`mio::Poll`] that the application owns: the
//! [readiness driver](crate::driver) on mio.
//!
//! An application with an event loop of its own keeps its loop, its listener and its other
//! sources, and hands weft each accepted socket ([`MioDriver::serve`]), or has weft accept
//! from its listener when the listener is ready ([`MioDriver::accept`]). weft never blocks, never sleeps, reads no clock
//! and never owns a thread here: it moves bytes when the loop reports readiness, moves time when
//! the loop passes `now`, and asks to be driven again (through a [`mio::Waker`] of its own)
//! when the application's futures or bodies make progress on other threads.
//!
//! # The loop
//!
//! ```no_run
//! # use std::time::Instant;
//! # use mio::{Events, Interest, Poll, Token, net::TcpListener};
//! # use weft_adapters::{DispatchConfig, mio::MioDriver};
//! # async fn app(_: http::Request<weft_service::body::Body>) -> http::Response<weft_service::body::Body> { todo!() }
//! # fn main() -> std::io::Result<()> {
//! const HTTP: Token = Token(0);
//! const WAKE: Token = Token(1); // weft's connections take the tokens after it
//! let mut poll = Poll::new()?;
//! let mut listener = TcpListener::bind("127.0.0.1:8080".parse().unwrap())?;
//! poll.registry().register(&mut listener, HTTP, Interest::READABLE)?;
//! let mut weft = MioDriver::new(poll.registry(), WAKE, app, DispatchConfig::default(), None)?;
//! let mut events = Events::with_capacity(256);
//! loop {
//!     poll.poll(&mut events, weft.timeout())?;
//!     let now = Instant::now(); // the one clock read of the turn
//!     for event in &events {
//!         match event.token() {
//!             HTTP => weft.accept(poll.registry(), &listener, now),
//!             _ => _ = weft.handle_event(poll.registry(), event, now),
//!         }
//!     }
//!     weft.turn(poll.registry(), now);
//! }
//! # }
//! ```
//!
//! `examples/embed_mio.rs` is such a loop, with TLS and a UDP service of its own.
//!
//! Sockets are registered for both directions, edge-triggered as mio always is; each
//! connection remembers which direction is ready (see [`crate::driver`]). A spurious event or
//! wake-up is harmless; a missed one would stall a connection, so a loop must not filter the
//! events of weft's tokens.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest as MioInterest, Token};
use weft_service::file::FileRegion;
use weft_service::service::{Service, erase};

use crate::DispatchConfig;
use crate::driver::{Driver, Interest, Mailbox, Notify, Ready, Registry, Socket};

/// weft's connections in a [`mio::Poll`] the application owns.
///
/// It takes the [`Token`] given to [`new`](Self::new) for its wake-ups and the tokens above it
/// for its connections: the application keeps its own tokens below. Every method takes the
/// poll's [`mio::Registry`] (the same each time) and, where it moves connections, the `now`
/// the loop read once for its turn.
///
/// A handler that panics is answered with `500`; a panic elsewhere in the application (a
/// response body's `poll_frame`, say) drops its connection, and the loop goes on.
#[derive(Debug)]
pub struct MioDriver {
    driver: Driver<TcpStream>,
    wake: Token,
    /// The latest `now` the loop passed, which [`timeout`](Self::timeout) counts from.
    now: Option<Instant>,
}

impl MioDriver {
    /// Serves `service` with `config`'s settings, over TLS when `tls` is given (its ALPN
    /// protocols choose HTTP/2 or HTTP/1.1; without TLS, HTTP/2 by prior knowledge or `h2c`).
    /// Wake-ups arrive under `wake`; connections take the tokens above it.
    pub fn new(
        registry: &mio::Registry,
        wake: Token,
        service: impl Service,
        config: DispatchConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        let notifier = mio::Waker::new(registry, wake)?;
        let mailbox = Arc::new(Mailbox::new(Box::new(notifier)));
        Ok(MioDriver {
            driver: Driver::new(erase(service), config, tls, mailbox),
            wake,
            now: None,
        })
    }

    /// Serves a stream accepted from a [`mio::net::TcpListener`] at `now` (with `TCP_NODELAY`);
    /// an error (TLS or the registry refused it) has closed the stream.
    pub fn serve(
        &mut self,
        registry: &mio::Registry,
        stream: TcpStream,
        peer: SocketAddr,
        now: Instant,
    ) -> io::Result<()> {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let local = stream.local_addr()?;
        self.now = Some(now);
        let mut tokens = self.tokens(registry);
        self.driver
            .add(&mut tokens, stream, peer, local, (), now)
            .map(drop)
    }

    /// Serves every connection waiting on `listener` (the application's), accepting until it
    /// answers `WouldBlock`: call it on each readiness event of the listener. A connection that
    /// cannot be served is closed and logged; an accept failure (out of descriptors, say) ends
    /// the batch, logged, and the backlog is tried again on the listener's next event.
    pub fn accept(&mut self, registry: &mio::Registry, listener: &TcpListener, now: Instant) {
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(error) = self.serve(registry, stream, peer, now) {
                        tracing::warn!(%peer, %error, "cannot serve a connection; closed");
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before we accepted: the next one may be there.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retried on the listener's next event");
                    return;
                }
            }
        }
    }

    /// Handles an event if its token is weft's (the wake token or a connection's, live or
    /// gone); false when it is not.
    pub fn handle_event(&mut self, registry: &mio::Registry, event: &Event, now: Instant) -> bool {
        let token = event.token();
        if token == self.wake {
            // The notification only ends the wait: `turn` takes the wake-ups.
            return true;
        }
        let Some(key) = token.0.checked_sub(self.wake.0 + 1) else {
            return false;
        };
        let ready = Ready {
            key,
            readable: event.is_readable() || event.is_read_closed() || event.is_error(),
            writable: event.is_writable() || event.is_write_closed() || event.is_error(),
            read_closed: event.is_read_closed(),
        };
        self.now = Some(now);
        let mut tokens = self.tokens(registry);
        self.driver.handle_ready(&mut tokens, ready, now);
        true
    }

    /// Ends the loop's turn: drives the connections woken since the last turn and handles the
    /// deadlines passed at `now`. Call it once per turn, after the events.
    pub fn turn(&mut self, registry: &mio::Registry, now: Instant) {
        self.now = Some(now);
        let mut tokens = self.tokens(registry);
        self.driver.handle_woken(&mut tokens, now);
        self.driver.handle_timers(&mut tokens, now);
    }

    /// The timeout for the next `Poll::poll`: zero when a connection has work left, else until
    /// the nearest deadline (rounded up to the millisecond), `None` without one. It counts
    /// from the `now` of the turn just ended rather than read the clock, so a deadline is
    /// handled late by at most the time the turn's own work took. Call it right before each
    /// wait: it also arms the wake-ups from other threads to wake the poll.
    pub fn timeout(&self) -> Option<Duration> {
        if !self.driver.mailbox().prepare_sleep(|| false) {
            return Some(Duration::ZERO);
        }
        let now = self.now?;
        self.driver.next_deadline().map(|deadline| {
            let left = deadline.saturating_duration_since(now);
            Duration::from_millis(left.as_nanos().div_ceil(1_000_000) as u64)
        })
    }

    /// Starts closing gracefully, for an application shutting down: idle connections close at
    /// once, requests in flight are answered first (with `connection: close`); connections
    /// served from now on are treated alike. Turn the loop until [`is_empty`](Self::is_empty).
    pub fn shutdown(&mut self, registry: &mio::Registry, now: Instant) {
        self.now = Some(now);
        let mut tokens = self.tokens(registry);
        self.driver.drain(&mut tokens, now);
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        self.driver.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.driver.is_empty()
    }

    fn tokens<'a>(&self, registry: &'a mio::Registry) -> Tokens<'a> {
        Tokens {
            registry,
            first: self.wake.0 + 1,
        }
    }
}

/// The driver's registry: connection `k` under `Token(first + k)`.
struct Tokens<'a> {
    registry: &'a mio::Registry,
    first: usize,
}

impl Registry for Tokens<'_> {
    type Stream = TcpStream;
    type Socket = TcpStream;
    const ONESHOT: bool = false;

    fn add(&mut self, mut stream: TcpStream, key: usize, _: Interest) -> io::Result<TcpStream> {
        let token = Token(self.first + key);
        let both = MioInterest::READABLE | MioInterest::WRITABLE;
        self.registry.register(&mut stream, token, both)?;
        Ok(stream)
    }

    fn rearm(&mut self, _: &TcpStream, _: usize, _: Interest) -> io::Result<()> {
        Ok(())
    }

    fn remove(&mut self, mut socket: TcpStream) {
        if let Err(error) = self.registry.deregister(&mut socket) {
            tracing::debug!(%error, "deregistering a connection failed");
        }
    }
}

impl Notify for mio::Waker {
    fn notify(&self) -> io::Result<()> {
        self.wake()
    }
}

impl Socket for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn transmit_file(&mut self, region: &FileRegion) -> io::Result<usize> {
        crate::file::transmit(self, region)
    }

    fn sync_cork(&mut self, cork: &mut crate::file::Cork, file_follows: bool) {
        cork.sync(self, file_follows);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use http::{Request, Response};
    use mio::{Events, Poll};
    use weft_service::body::Body;

    use super::*;

    const LISTENER: Token = Token(0);
    const WAKE: Token = Token(1);

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
    /// connection closes (or 10 s pass); returns how long it was served.
    fn serve_one(config: DispatchConfig) -> (SocketAddr, std::thread::JoinHandle<Duration>) {
        let mut poll = Poll::new().unwrap();
        let mut listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut listener, LISTENER, MioInterest::READABLE)
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut weft = MioDriver::new(poll.registry(), WAKE, app, config, None).unwrap();
            let mut events = Events::with_capacity(16);
            let start = Instant::now();
            let mut accepted = None;
            while start.elapsed() < Duration::from_secs(10) {
                poll.poll(&mut events, weft.timeout()).unwrap();
                let now = Instant::now();
                for event in &events {
                    if event.token() == LISTENER {
                        weft.accept(poll.registry(), &listener, now);
                        accepted.get_or_insert(now);
                    } else {
                        assert!(weft.handle_event(poll.registry(), event, now));
                    }
                }
                weft.turn(poll.registry(), now);
                if let Some(accepted) = accepted.filter(|_| weft.is_empty()) {
                    return accepted.elapsed();
                }
            }
            panic!("the connection was not over within 10 s");
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
    fn connections_take_the_tokens_above_the_wake_token() {
        let poll = Poll::new().unwrap();
        let weft = MioDriver::new(
            poll.registry(),
            Token(5),
            app,
            DispatchConfig::default(),
            None,
        )
        .unwrap();
        assert_eq!(weft.tokens(poll.registry()).first, 6);
        assert!(weft.is_empty());
        assert_eq!(weft.timeout(), None, "no deadline, no work");
    }
}
