//! The readiness driver: a set of connections moved forward by readiness events, wake-ups and
//! deadlines, for any event loop. weft's `mio` and `poll` runtimes run on it, and so does
//! [`crate::mio`] for a `mio::Poll` an application owns.
//!
//! # What it owns, and what it leaves to the loop
//!
//! A [`Driver`] owns its connections (in a slab, each under a [`Key`] whose index is the key it
//! is registered with in the reactor), their deadlines (one min-heap), the [`Mailbox`] through
//! which wakers on any thread queue their connection, one read buffer shared by all, and, per
//! connection, the socket, the TLS session (rustls's `ServerConnection` directly on the
//! non-blocking socket) and the [`Dispatcher`]. It never blocks, never sleeps, reads no clock
//! and owns no thread: every call takes the `now` the loop read once for its turn.
//!
//! The loop keeps what is its own business: the reactor and its wait, the listeners and
//! accepting, threads, connection limits (the [ticket](Driver::add) a connection carries is the
//! loop's, dropped when the connection ends) and shutdown coordination. The driver reaches the
//! reactor only through [`Registry`], to register, re-arm and deregister its sockets.
//!
//! # One turn of a loop
//!
//! 1. [`Mailbox::prepare_sleep`]: may the loop block? Then wait in the reactor, bounded by
//!    [`Driver::next_deadline`], and call [`Mailbox::awake`].
//! 2. Read the clock once: `now`.
//! 3. [`Driver::handle_ready`] for each readiness event of a connection.
//! 4. [`Driver::add`] for each accepted connection.
//! 5. [`Driver::handle_woken`] and [`Driver::handle_timers`].
//!
//! Every step is bounded: each connection by its round budget (one with work left queues itself
//! for the next turn, so [`Mailbox::prepare_sleep`] says not to block), timers by
//! [`TIMERS_PER_TURN`] per call.
//!
//! # Readiness
//!
//! Each connection remembers readiness per direction and forgets it only when the socket
//! answers `WouldBlock` (or, on Unix, a cleartext read comes back short), so the driver is
//! correct under edge-triggered reactors (an event only on a change: mio) and one-shot ones
//! (an event only when armed: `polling`, where [`Registry::ONESHOT`] makes the driver re-arm
//! each socket for exactly the readiness it waits for). A spurious event or wake-up is
//! harmless; a missed one would stall the connection, so a loop must not filter them.
//!
//! # Panics
//!
//! A handler that panics is answered with `500` by the [`Dispatcher`]. Anything else panicking
//! while a connection is moved (`Service::call` itself, a body's `Drop`) is caught around that
//! connection's work: the connection is dropped and the loop goes on.

mod connection;
mod mailbox;
mod slab;
mod timers;

#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use weft_service::service::{ConnectionInfo, DynService};

pub use self::connection::{Interest, Socket};
pub use self::mailbox::{Mailbox, Notify};
pub use self::slab::Key;

use self::connection::{Connection, Progress};
use self::mailbox::ConnectionWaker;
use self::slab::Slab;
use self::timers::Timers;
use crate::{DispatchConfig, Dispatcher};

/// Deadlines handled per [`Driver::handle_timers`] call; the rest are due at once on the next.
pub const TIMERS_PER_TURN: usize = 1024;

/// Bytes read from a socket at a time, into one buffer per driver (idle connections hold none).
const READ_BUFFER: usize = 64 * 1024;

/// Readiness of one registered source, as a reactor reports it. Errors and hang-ups are
/// reported as readiness: the next read or write returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The key the source was registered with.
    pub key: usize,
    /// Readable (or closed, or failed).
    pub readable: bool,
    /// Writable (or closed, or failed).
    pub writable: bool,
    /// The peer closed its sending side (as far as the reactor says; `false` when it cannot
    /// tell). An edge-triggered reactor reports a FIN that arrives with the last bytes only
    /// once, so the end must then be read for even after a short read.
    pub read_closed: bool,
}

/// What the driver needs of a reactor: registering its connections' sockets.
///
/// Keys are the [`Key::index`] of each connection; a loop with sources of its own keeps their
/// keys out of the range its connections use (the slab's indices grow from 0, so high keys are
/// safe), or maps keys when it registers.
pub trait Registry {
    /// An accepted stream, not yet registered.
    type Stream;
    /// A registered stream.
    type Socket: Socket;
    /// Whether each event disarms its source until [`rearm`](Self::rearm) (one-shot), rather
    /// than sources staying armed for both directions (edge-triggered).
    const ONESHOT: bool;

    /// Registers a stream under `key`, waiting for `interest` (one-shot reactors) or for both
    /// directions (edge-triggered ones).
    fn add(
        &mut self,
        stream: Self::Stream,
        key: usize,
        interest: Interest,
    ) -> io::Result<Self::Socket>;
    /// Arms a one-shot socket again for `interest` (edge-triggered reactors do nothing).
    fn rearm(&mut self, socket: &Self::Socket, key: usize, interest: Interest) -> io::Result<()>;
    /// Deregisters a socket and closes it.
    fn remove(&mut self, socket: Self::Socket);
}

/// What every connection of a driver shares: the application, the protocol settings and TLS.
struct Server {
    service: Arc<dyn DynService>,
    dispatch: DispatchConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Server {
    /// The dispatcher of a connection whose requests may start from `now`.
    fn dispatcher(&self, info: ConnectionInfo, now: Instant) -> Dispatcher {
        let mut dispatcher =
            Dispatcher::new(Arc::clone(&self.service), self.dispatch.clone(), info, now);
        // File bodies go out with `sendfile(2)` (`Connection::write_file`); the dispatcher
        // ignores this over TLS.
        dispatcher.set_transmit_files(true);
        dispatcher
    }
}

/// The connections of one event loop, on sockets of type `S`, each carrying a ticket `T` of the
/// loop's (a connection-limit permit, say), dropped when the connection ends.
///
/// See the [module documentation](self) for the calls a loop makes each turn. Every method
/// taking a `registry` must be given the same one, the reactor the sockets are registered in.
pub struct Driver<S, T = ()> {
    server: Server,
    connections: Slab<Connection<S, T>>,
    timers: Timers,
    mailbox: Arc<Mailbox>,
    /// Kept across turns, to reuse its allocation.
    woken: Vec<Key>,
    read_buf: Box<[u8]>,
    /// Shutting down: new connections are closed gracefully from the start.
    draining: bool,
}

impl<S: Socket, T> Driver<S, T> {
    /// A driver serving `service` with `dispatch`'s settings, over TLS when `tls` is given
    /// (its ALPN protocols choose HTTP/2 or HTTP/1.1). Its connections' wakers queue them in
    /// `mailbox`, whose notifier wakes the loop's reactor.
    pub fn new(
        service: Arc<dyn DynService>,
        dispatch: DispatchConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        mailbox: Arc<Mailbox>,
    ) -> Self {
        Driver {
            server: Server {
                service,
                dispatch,
                tls,
            },
            connections: Slab::new(),
            timers: Timers::new(),
            mailbox,
            woken: Vec::new(),
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            draining: false,
        }
    }

    /// The mailbox the connections' wakers write to.
    pub fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// The earliest deadline of any connection, to bound the reactor's wait (perhaps one that
    /// has moved later since: waking early is harmless).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Registers an accepted stream, starts serving it (it may hold a request already) and
    /// returns its key. `peer` and `local` are its addresses; `ticket` stays with the
    /// connection until it ends. On an error (TLS refused a session, the reactor refused the
    /// socket) the stream is closed.
    pub fn add<R: Registry<Socket = S>>(
        &mut self,
        registry: &mut R,
        stream: R::Stream,
        peer: SocketAddr,
        local: SocketAddr,
        ticket: T,
        now: Instant,
    ) -> io::Result<Key> {
        let tls = match &self.server.tls {
            Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                Ok(session) => Some(Box::new(session)),
                Err(error) => return Err(io::Error::other(error)),
            },
            None => None,
        };
        let key = self.connections.vacant_key();
        let socket = registry.add(stream, key.index(), Interest::READ)?;
        let (mark, waker) = ConnectionWaker::new(&self.mailbox, key);
        let mut connection = Connection::new(
            socket,
            tls,
            peer,
            local,
            ticket,
            waker,
            mark,
            &self.server,
            now,
        );
        if R::ONESHOT {
            connection.armed = Some(Interest::READ);
        }
        let inserted = self.connections.insert(connection);
        debug_assert_eq!(inserted, key);
        let draining = self.draining;
        self.with_connection(registry, key, |connection, buf, server| {
            if draining && !connection.shutdown() {
                return Ok(Progress::Closed);
            }
            connection.drive(now, buf, server)
        });
        Ok(key)
    }

    /// Handles a readiness event; one for a key that is not a connection's (gone, or never
    /// one) is ignored.
    pub fn handle_ready<R: Registry<Socket = S>>(
        &mut self,
        registry: &mut R,
        ready: Ready,
        now: Instant,
    ) {
        // A late event for a connection gone is dropped; one for a newcomer in its slot is a
        // spurious wake-up, which connections take in their stride.
        let Some(key) = self.connections.key_at(ready.key) else {
            return;
        };
        self.with_connection(registry, key, |connection, buf, server| {
            if R::ONESHOT {
                connection.armed = None;
            }
            connection.on_ready(ready.readable, ready.writable, ready.read_closed);
            connection.drive(now, buf, server)
        });
    }

    /// Drives the connections woken since the last call (from any thread, or by themselves
    /// when their round budget ran out).
    pub fn handle_woken<R: Registry<Socket = S>>(&mut self, registry: &mut R, now: Instant) {
        self.mailbox.take_woken(&mut self.woken);
        let woken = std::mem::take(&mut self.woken);
        for &key in &woken {
            self.with_connection(registry, key, |connection, buf, server| {
                connection.clear_wake_mark();
                connection.drive(now, buf, server)
            });
        }
        self.woken = woken;
        self.woken.clear();
    }

    /// Handles the deadlines that have passed at `now`, up to [`TIMERS_PER_TURN`].
    pub fn handle_timers<R: Registry<Socket = S>>(&mut self, registry: &mut R, now: Instant) {
        for _ in 0..TIMERS_PER_TURN {
            let Some((deadline, key)) = self.timers.pop_due(now) else {
                return;
            };
            let Some(connection) = self.connections.get_mut(key) else {
                continue;
            };
            if connection.timer != Some(deadline) {
                // Superseded by an earlier deadline.
                continue;
            }
            connection.timer = None;
            self.with_connection(registry, key, |connection, buf, server| {
                if connection.deadline().is_none_or(|deadline| deadline > now) {
                    // The deadline moved later since this entry was made: armed again below.
                    return Ok(Progress::Open);
                }
                if !connection.handle_timeout(now) {
                    return Ok(Progress::Closed);
                }
                connection.drive(now, buf, server)
            });
        }
    }

    /// Starts a graceful shutdown: idle connections close at once, requests in flight are
    /// answered with `connection: close`, and connections added from now on are treated alike.
    /// The loop goes on turning until [`is_empty`](Self::is_empty).
    pub fn drain<R: Registry<Socket = S>>(&mut self, registry: &mut R, now: Instant) {
        self.draining = true;
        for key in self.connections.keys() {
            self.with_connection(registry, key, |connection, buf, server| {
                if !connection.shutdown() {
                    return Ok(Progress::Closed);
                }
                connection.drive(now, buf, server)
            });
        }
    }

    /// Closes every connection at once (a drain deadline passed).
    pub fn close_all<R: Registry<Socket = S>>(&mut self, registry: &mut R) {
        let keys = self.connections.keys();
        if !keys.is_empty() {
            tracing::debug!(count = keys.len(), "closing connections still open");
        }
        for key in keys {
            self.close(registry, key);
        }
    }

    /// Runs `work` on a connection, catching a panic that escapes it, then files the
    /// connection according to the outcome: closed, or its timer and interest armed.
    fn with_connection<R: Registry<Socket = S>>(
        &mut self,
        registry: &mut R,
        key: Key,
        work: impl FnOnce(&mut Connection<S, T>, &mut [u8], &Server) -> io::Result<Progress>,
    ) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        let (buf, server) = (&mut *self.read_buf, &self.server);
        let progress = match catch_unwind(AssertUnwindSafe(|| work(connection, buf, server))) {
            Ok(Ok(progress)) => progress,
            Ok(Err(error)) => {
                tracing::debug!(peer = %connection.peer(), %error, "connection ended with an I/O error");
                Progress::Closed
            }
            Err(_) => {
                tracing::error!(
                    peer = %connection.peer(),
                    "connection panicked outside its handler; dropping it, the loop lives on"
                );
                Progress::Closed
            }
        };
        if progress == Progress::Closed {
            self.close(registry, key);
            return;
        }
        if progress == Progress::Again {
            connection.wake();
        }
        let deadline = connection.deadline();
        self.timers.arm(key, &mut connection.timer, deadline);
        if R::ONESHOT {
            let interest = connection.interest();
            if !interest.is_empty() && connection.armed != Some(interest) {
                if let Err(error) = registry.rearm(connection.socket(), key.index(), interest) {
                    tracing::warn!(peer = %connection.peer(), %error, "cannot re-arm a connection; closing it");
                    self.close(registry, key);
                    return;
                }
                connection.armed = Some(interest);
            }
        }
    }

    /// Deregisters and drops a connection.
    fn close<R: Registry<Socket = S>>(&mut self, registry: &mut R, key: Key) {
        let Some(connection) = self.connections.remove(key) else {
            return;
        };
        let peer = connection.peer();
        // Dropping the dispatcher drops the application's future and bodies: their `Drop` may
        // panic too.
        match catch_unwind(AssertUnwindSafe(|| connection.into_socket())) {
            Ok(socket) => registry.remove(socket),
            Err(_) => tracing::error!(%peer, "dropping a connection panicked; the loop lives on"),
        }
    }
}

impl<S, T> std::fmt::Debug for Driver<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("connections", &self.connections.len())
            .field("tls", &self.server.tls.is_some())
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}
