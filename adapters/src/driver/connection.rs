//! One connection of a driver: a non-blocking socket, TLS when the driver has it, and a
//! [`Dispatcher`], moved forward by readiness, wake-ups and deadlines.
//!
//! Readiness is remembered per direction (`read_ready`, `write_ready`) and forgotten only when
//! the socket answers `WouldBlock` (or, on Unix, a plaintext read comes back short, which says
//! the same without the extra system call), so the connection is correct under edge-triggered reactors
//! (an event only on a change) and one-shot ones (an event only when armed, see
//! [`interest`](Connection::interest)) alike.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Instant;

use weft_service::file::FileRegion;
use weft_service::service::ConnectionInfo;

use super::Server;
use super::mailbox::ConnectionWaker;
use crate::Dispatcher;

/// Rounds of poll, write and read one drive does before the connection yields to the rest of
/// the loop (it is then driven again on the next turn).
const ROUNDS_PER_DRIVE: usize = 32;

/// TLS records one read pulls from the socket at most while looking for application data.
const RECORD_READS_PER_READ: usize = 16;

/// A connected, non-blocking socket as a reactor hands it out: what the driver reads from and
/// writes to.
pub trait Socket: Read + Write + Send + 'static {
    /// Shuts our sending side: the peer reads the end of the stream.
    fn shutdown_write(&self) -> io::Result<()>;

    /// Writes the next bytes of a file body and returns how many, without advancing
    /// `region`; `WouldBlock` when the socket takes none. A read/write copy by default;
    /// sockets with a descriptor use `sendfile(2)` ([`crate::file::transmit`]).
    fn transmit_file(&mut self, region: &FileRegion) -> io::Result<usize> {
        crate::file::copy(self, region)
    }

    /// Corks the socket while a file body follows the output and uncorks it after
    /// ([`crate::file::Cork`]); nothing by default, for sockets without `TCP_CORK`.
    fn sync_cork(&mut self, _cork: &mut crate::file::Cork, _file_follows: bool) {}
}

/// The readiness a connection waits for: what a one-shot reactor arms its socket for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Bytes to read.
    pub read: bool,
    /// Room to write.
    pub write: bool,
}

impl Interest {
    /// Readable only.
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };

    /// Neither direction.
    pub fn is_empty(self) -> bool {
        !self.read && !self.write
    }
}

/// What a drive left the connection as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Waiting for readiness, a wake-up or a deadline.
    Open,
    /// The round budget ran out with work left: drive it again on the next turn.
    Again,
    /// Over, and our side shut: deregister and drop it.
    Closed,
}

// A connection spends nearly all its life serving: boxing the dispatcher would cost every
// connection an allocation to save bytes during TLS handshakes only.
#[allow(clippy::large_enum_variant)]
enum Phase {
    /// TLS handshake under way: the dispatcher is made once it is done, with the ALPN
    /// protocol in its [`ConnectionInfo`].
    Handshaking {
        info: ConnectionInfo,
        deadline: Instant,
    },
    Serving(Dispatcher),
}

/// A connection owned by a driver; `T` is the ticket its owner gave it, dropped with it.
pub(crate) struct Connection<So, T> {
    socket: So,
    tls: Option<Box<rustls::ServerConnection>>,
    phase: Phase,
    /// Bytes at the head of the output handed back to the dispatcher that TLS has taken
    /// already (sealed in records it has not written yet). The connection holds no output of
    /// its own: what the socket has not accepted stays the dispatcher's
    /// ([`Dispatcher::unsent`]), which bounds how long it may wait (`Limits::send_timeout`),
    /// TLS records included; these bytes are skipped, not written again, once the records are
    /// out.
    in_tls: usize,
    /// No read has answered `WouldBlock` since the last readable event.
    read_ready: bool,
    /// The reactor said the peer closed its side: read until the end even after a short read.
    read_closed: bool,
    /// No write has answered `WouldBlock` since the last writable event.
    write_ready: bool,
    /// Whether the socket is corked for a file response's head and body.
    cork: crate::file::Cork,
    waker: Waker,
    wake_mark: Arc<ConnectionWaker>,
    /// The deadline of this connection's live entry in the loop's timer heap.
    pub(crate) timer: Option<Instant>,
    /// The interest armed in a one-shot reactor (`None`: nothing armed, or spent by an event).
    pub(crate) armed: Option<Interest>,
    peer: SocketAddr,
    _ticket: T,
}

impl<So: Socket, T> Connection<So, T> {
    /// A connection accepted at `now`; `tls` is its TLS session when the server has TLS.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        socket: So,
        tls: Option<Box<rustls::ServerConnection>>,
        peer: SocketAddr,
        local: SocketAddr,
        ticket: T,
        waker: Waker,
        wake_mark: Arc<ConnectionWaker>,
        server: &Server,
        now: Instant,
    ) -> Self {
        let info = ConnectionInfo::tcp(Some(peer), Some(local));
        let phase = if tls.is_some() {
            // A handshake that drags on is a slowloris on TLS: it gets the head's deadline.
            let deadline = now + server.dispatch.limits.head_timeout;
            Phase::Handshaking { info, deadline }
        } else {
            Phase::Serving(server.dispatcher(info, now))
        };
        Connection {
            socket,
            tls,
            phase,
            in_tls: 0,
            // A fresh socket may already hold the request and can surely take an answer.
            read_ready: true,
            read_closed: false,
            write_ready: true,
            cork: crate::file::Cork::default(),
            waker,
            wake_mark,
            timer: None,
            armed: None,
            peer,
            _ticket: ticket,
        }
    }

    /// The peer's address, for logs.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The socket, for the reactor.
    pub(crate) fn socket(&self) -> &So {
        &self.socket
    }

    /// The socket, once the connection is dropped from the loop.
    pub(crate) fn into_socket(self) -> So {
        self.socket
    }

    /// Lets the next wake-up queue the connection again; the loop calls it before driving a
    /// woken connection.
    pub(crate) fn clear_wake_mark(&self) {
        self.wake_mark.clear();
    }

    /// Asks for the connection to be driven on the loop's next turn.
    pub(crate) fn wake(&self) {
        self.waker.wake_by_ref();
    }

    /// Records readiness reported by the reactor.
    pub(crate) fn on_ready(&mut self, readable: bool, writable: bool, read_closed: bool) {
        self.read_ready |= readable;
        self.read_closed |= read_closed;
        self.write_ready |= writable;
    }

    /// What the connection waits for from the socket: reading once it found the socket empty
    /// while it still wants bytes, writing once it found the socket full.
    pub(crate) fn interest(&self) -> Interest {
        let wants_bytes = match &self.phase {
            Phase::Handshaking { .. } => true,
            Phase::Serving(dispatcher) => dispatcher.wants_read(),
        };
        Interest {
            read: wants_bytes && !self.read_ready,
            write: !self.write_ready,
        }
    }

    /// The next deadline: the handshake's, then the protocol's.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Handshaking { deadline, .. } => Some(*deadline),
            Phase::Serving(dispatcher) => dispatcher.poll_timeout(),
        }
    }

    /// Handles the deadline if it passed; false when the connection must close at once (a
    /// TLS handshake too slow).
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> bool {
        match &mut self.phase {
            Phase::Handshaking { deadline, .. } if *deadline <= now => {
                tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                false
            }
            Phase::Handshaking { .. } => true,
            Phase::Serving(dispatcher) => {
                if dispatcher
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
                {
                    dispatcher.handle_timeout(now);
                }
                true
            }
        }
    }

    /// Starts a graceful close (server shutdown); false when the connection must close at once
    /// (nothing was asked of it yet).
    pub(crate) fn shutdown(&mut self) -> bool {
        match &mut self.phase {
            Phase::Handshaking { .. } => false,
            Phase::Serving(dispatcher) => {
                dispatcher.shutdown();
                true
            }
        }
    }

    /// Moves the connection as far as the socket, the application and the round budget allow.
    /// An error is the socket's (or the peer's TLS): the connection is over.
    pub(crate) fn drive(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        server: &Server,
    ) -> io::Result<Progress> {
        if matches!(self.phase, Phase::Handshaking { .. }) && !self.handshake(now, server)? {
            return Ok(Progress::Open);
        }
        // This driver writes vectored: body `Bytes` need not be copied (cheap to repeat).
        self.dispatcher().set_vectored_output(true);
        // A clone (a reference count) so that `self` stays free to borrow.
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..ROUNDS_PER_DRIVE {
            let Phase::Serving(dispatcher) = &mut self.phase else {
                unreachable!("the handshake is over");
            };
            let mut moved = dispatcher.poll(&mut cx);
            moved |= self.write(now)?;
            if self.is_finished() {
                self.close();
                return Ok(Progress::Closed);
            }
            moved |= self.read(now, buf)?;
            if !moved {
                return Ok(Progress::Open);
            }
        }
        Ok(Progress::Again)
    }

    fn dispatcher(&mut self) -> &mut Dispatcher {
        match &mut self.phase {
            Phase::Serving(dispatcher) => dispatcher,
            Phase::Handshaking { .. } => unreachable!("only serving connections move bytes"),
        }
    }

    /// Advances the TLS handshake; true once it is done and the dispatcher is in place.
    fn handshake(&mut self, now: Instant, server: &Server) -> io::Result<bool> {
        let Some(tls) = self.tls.as_deref_mut() else {
            unreachable!("only TLS connections shake hands");
        };
        for _ in 0..ROUNDS_PER_DRIVE {
            if tls.wants_write() && self.write_ready {
                match tls.write_tls(&mut self.socket) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_ready = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            if !tls.is_handshaking() {
                let Phase::Handshaking { info, .. } = &mut self.phase else {
                    unreachable!("checked by the caller");
                };
                let mut info = std::mem::take(info);
                info.tls = true;
                info.alpn = tls.alpn_protocol().map(<[u8]>::to_vec);
                self.phase = Phase::Serving(server.dispatcher(info, now));
                return Ok(true);
            }
            if !self.read_ready {
                return Ok(false);
            }
            match tls.read_tls(&mut self.socket) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the connection during the TLS handshake",
                    ));
                }
                Ok(_) => process_tls(tls, &mut self.socket)?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.read_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // A client that keeps the handshake busy this long gets the rest of the turn later.
        self.waker.wake_by_ref();
        Ok(false)
    }

    /// Writes queued output (through TLS when on) until none is left or the socket blocks,
    /// handing back to the dispatcher what the socket has not accepted; true when anything
    /// moved.
    fn write(&mut self, now: Instant) -> io::Result<bool> {
        /// Pieces of output one vectored write takes at most (a batch of pipelined responses
        /// with bodies of their own is two pieces a response).
        const MAX_PIECES: usize = 64;
        let mut moved = false;
        // Allocated only when there is output; its allocation serves every write of the call.
        let mut pieces = Vec::new();
        self.sync_cork();
        loop {
            if let Some(tls) = self.tls.as_deref_mut() {
                // Records already sealed go first; new plaintext waits until they are out, so
                // TLS buffers at most one batch of response pieces.
                while tls.wants_write() {
                    if !self.write_ready {
                        return Ok(moved);
                    }
                    match tls.write_tls(&mut self.socket) {
                        Ok(_) => moved = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_ready = false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if !self.write_ready {
                return Ok(moved);
            }
            let polled = self
                .dispatcher()
                .poll_transmit_vectored(now, &mut pieces, MAX_PIECES);
            if polled == 0 {
                moved |= self.write_file(now);
                self.sync_cork();
                return Ok(moved);
            }
            if self.in_tls > 0 {
                // Their records are out: those bytes are sent (progress, for the dispatcher).
                let sealed = std::mem::take(&mut self.in_tls);
                self.dispatcher().unsent_vectored(now, &mut pieces, sealed);
                continue;
            }
            // Every piece in one system call: a response's head and body, and a whole batch
            // of pipelined responses.
            let mut slices = [IoSlice::new(&[]); MAX_PIECES];
            for (slice, piece) in slices.iter_mut().zip(&pieces) {
                *slice = IoSlice::new(piece);
            }
            let slices = &slices[..pieces.len()];
            let written = match (self.tls.as_deref_mut(), slices) {
                (Some(tls), _) => tls.writer().write_vectored(slices),
                // One piece (a response whose body was copied, or a pipelined batch of them):
                // `send(2)` costs the kernel less than `writev(2)`.
                (None, [one]) => self.socket.write(one),
                (None, _) => self.socket.write_vectored(slices),
            };
            let taken = match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if self.tls.is_some() => {
                    // Sealed, not sent: they stay the dispatcher's until the records are out.
                    self.in_tls = n;
                    moved = true;
                    0
                }
                Ok(n) => {
                    moved = true;
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_ready = false;
                    0
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(e),
            };
            // What the socket did not take is offered again first by the next poll.
            self.dispatcher().unsent_vectored(now, &mut pieces, taken);
        }
    }

    /// Corks the socket while a file body follows the output, uncorks it once none does
    /// ([`crate::file::Cork`]).
    fn sync_cork(&mut self) {
        let follows = self.dispatcher().file_pending();
        self.socket.sync_cork(&mut self.cork, follows);
    }

    /// Sends a file body straight from the file to the socket (cleartext only: the dispatcher
    /// hands no file region out over TLS) until it is sent or the socket blocks; true when
    /// anything moved. A failure cuts the response short and closes the connection, through
    /// the dispatcher. `sendfile` from the page cache costs this thread what a `write` would;
    /// a file not in the cache makes it wait for the disk, once per call.
    fn write_file(&mut self, now: Instant) -> bool {
        if self.tls.is_some() {
            return false;
        }
        let mut moved = false;
        while self.write_ready {
            let Some(region) = self.dispatcher().poll_transmit_file(now) else {
                break;
            };
            match self.socket.transmit_file(&region) {
                Ok(sent) => {
                    moved = true;
                    self.dispatcher().file_sent(now, sent);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.dispatcher().file_failed(&e);
                    return true;
                }
            }
        }
        moved
    }

    /// Reads once when the dispatcher wants bytes and the socket (or TLS) may have some; true
    /// when it read or learned of the end of the stream.
    fn read(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<bool> {
        if !self.read_ready || !self.dispatcher().wants_read() {
            return Ok(false);
        }
        let room = self.dispatcher().receive_capacity().min(buf.len());
        let read = match self.tls.as_deref_mut() {
            Some(tls) => read_plaintext(tls, &mut self.socket, &mut buf[..room]),
            None => self.socket.read(&mut buf[..room]),
        };
        match read {
            Ok(0) => {
                self.read_ready = false;
                self.dispatcher().receive_eof();
                Ok(true)
            }
            Ok(n) => {
                if cfg!(unix) && n < room && self.tls.is_none() && !self.read_closed {
                    // A read that did not fill its room emptied the socket: asking again would
                    // only answer `WouldBlock`, one system call per batch of requests for
                    // nothing. Bytes arriving from now on raise a new readiness event (an
                    // edge-triggered reactor reports each arrival; a one-shot one, armed again
                    // for reading, reports bytes already there). Not on Windows: mio's
                    // emulated readiness there is re-armed only by a `WouldBlock` (a 1 MiB
                    // upload under wine stalled and lost bytes without it). Nor once the peer
                    // closed: its FIN came with these bytes and raises no new event.
                    self.read_ready = false;
                }
                let taken = self.dispatcher().receive(now, &buf[..n]);
                debug_assert_eq!(taken, n, "reads are bounded by receive_capacity");
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.read_ready = false;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The exchange is over and every byte of it written.
    fn is_finished(&self) -> bool {
        let Phase::Serving(dispatcher) = &self.phase else {
            return false;
        };
        // After a send timeout the peer takes nothing: the output left cannot get out.
        dispatcher.send_timed_out()
            || (dispatcher.is_closed() && self.tls.as_ref().is_none_or(|tls| !tls.wants_write()))
    }

    /// Says goodbye: TLS `close_notify` (best effort: a peer that does not read it loses
    /// nothing; none after a send timeout, as the peer reads nothing), then the end of the TCP
    /// stream.
    fn close(&mut self) {
        let timed_out = matches!(&self.phase, Phase::Serving(d) if d.send_timed_out());
        if let Some(tls) = self.tls.as_deref_mut().filter(|_| !timed_out) {
            tls.send_close_notify();
            if let Err(error) = tls.write_tls(&mut self.socket) {
                tracing::trace!(peer = %self.peer, %error, "close_notify not sent");
            }
        }
        if let Err(error) = self.socket.shutdown_write() {
            tracing::trace!(peer = %self.peer, %error, "shutdown of a closed connection failed");
        }
    }
}

/// Takes in the TLS records just read; on a protocol error, sends rustls's alert (best effort)
/// and fails.
fn process_tls(tls: &mut rustls::ServerConnection, socket: &mut impl Write) -> io::Result<()> {
    if let Err(error) = tls.process_new_packets() {
        let _ = tls.write_tls(socket);
        return Err(io::Error::new(io::ErrorKind::InvalidData, error));
    }
    Ok(())
}

/// Reads decrypted bytes, pulling TLS records from the socket as needed. `Ok(0)` is the end of
/// the stream (with or without `close_notify`: requests never end at the close, so a cut is
/// seen as an incomplete message by the protocol); `WouldBlock` means the socket is empty.
fn read_plaintext(
    tls: &mut rustls::ServerConnection,
    socket: &mut (impl Read + Write),
    buf: &mut [u8],
) -> io::Result<usize> {
    for _ in 0..RECORD_READS_PER_READ {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        // No plaintext buffered: one more record from the socket (0 at its end makes the
        // reader above report the end).
        if tls.read_tls(socket)? > 0 {
            process_tls(tls, socket)?;
        }
    }
    // Records without application data kept coming (the peer is busy, or hostile): hand the
    // turn back without claiming the socket is empty, which would lose its readiness.
    Err(io::ErrorKind::Interrupted.into())
}
