//! Serving a connection over blocking `std::io::Read + Write`: a thread per connection, or a
//! thread pool that parks quiet connections elsewhere (the `threadpool` runtime of weft-runtime).
//!
//! The thread that serves a connection waits in one of two ways only, never in a spin or
//! sleep loop:
//! - a **blocking read** whose read timeout ends at the dispatcher's next deadline
//!   ([`Dispatcher::poll_timeout`]), when the connection wants bytes (a short fixed one when
//!   bytes are known to wait, which then needs no `setsockopt` per read: the timeout is set
//!   only when it changes);
//! - a **park** ([`std::thread::park_timeout`]) until that deadline, when it waits for the
//!   application; the application's [`Waker`] unparks the thread.
//!
//! The trade-off of blocking I/O: while the thread is blocked in a read, a wake-up from the
//! application (its future completed from another thread, say) waits until the read returns.
//! So while the application may still wake the connection and the connection also wants bytes
//! (a request body still arriving; any open HTTP/2 connection), reads are bounded to a few
//! milliseconds (`APP_WAKE_LATENCY`, 2 ms), which is the most such a wake-up is delayed.
//! Readiness-driven adapters have no such delay; this one needs nothing but `Read + Write` and
//! a read timeout.
//!
//! Writes block until the stream takes every byte, so no output ever waits in the dispatcher
//! (nothing is handed back with [`Dispatcher::unsent`]) and `Limits::send_timeout` cannot fire
//! there: give the stream a write timeout of that length ([`TcpStream::set_write_timeout`], as
//! the `threadpool` runtime does), or a peer that stops reading holds the serving thread for as
//! long as it stays connected. A write that times out fails the connection, which drops it.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use weft_service::file::FileRegion;

use crate::Dispatcher;

/// Bytes read from the socket at most at once (one buffer per thread, lent to the connection
/// it serves): large enough for several 16 KiB WebSocket messages or HTTP/2 frames per read.
const READ_BUFFER: usize = 64 * 1024;

/// Longest a blocking read may delay a wake-up from the application that comes while the
/// connection also wants bytes (an HTTP/2 connection always does while it is open).
const APP_WAKE_LATENCY: Duration = Duration::from_millis(2);

/// The read timeout of a read expected to find bytes at once (the socket was reported
/// readable, or a TLS layer holds input): fixed, so that the timeout set for one such read
/// serves the next ones without a `setsockopt` each; short, because should the readiness have
/// been spurious, the read gives up after this long and the connection waits elsewhere.
const EXPECTED_READ_TIMEOUT: Duration = APP_WAKE_LATENCY;

/// A blocking byte stream whose reads can be given a timeout.
pub trait BlockingIo: Read + Write {
    /// Bounds every following read: after `timeout` without data it fails with
    /// [`io::ErrorKind::WouldBlock`] or [`io::ErrorKind::TimedOut`]; `None` blocks without
    /// bound. See [`TcpStream::set_read_timeout`].
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Whether bytes taken from the socket already wait inside this stream (a TLS layer's
    /// decrypted records), so that the socket's readiness does not show them.
    fn has_buffered_input(&self) -> bool {
        false
    }

    /// Writes the next bytes of a file body (at most [`crate::file::TRANSMIT_MAX`]) and
    /// returns how many, without advancing `region`. By default a read/write copy through
    /// [`Write`] ([`crate::file::copy`]); sockets override it with `sendfile(2)`
    /// ([`crate::file::transmit`]).
    fn transmit_file(&mut self, region: &FileRegion) -> io::Result<usize> {
        crate::file::copy(self, region)
    }

    /// Corks the socket while a file body follows the output and uncorks it after
    /// ([`crate::file::Cork`]); nothing by default, for streams without `TCP_CORK`.
    fn sync_cork(&mut self, _cork: &mut crate::file::Cork, _file_follows: bool) {}

    /// A read that does not block, whatever the read timeout ([`io::ErrorKind::WouldBlock`]
    /// when nothing waits), made when bytes are expected (the socket was reported readable),
    /// so that a readiness that turns out stale costs one syscall rather than a timed-out
    /// read. `None` when the stream cannot: a read with a short timeout is made instead. By
    /// default `None`; sockets on Linux override it ([`read_now`]).
    fn read_now(&mut self, _buf: &mut [u8]) -> Option<io::Result<usize>> {
        None
    }
}

/// A read from `socket` that does not block (`recv(2)` with `MSG_DONTWAIT`) though the
/// socket does: for [`BlockingIo::read_now`] implementations over a [`TcpStream`]. `None` off
/// Linux.
pub fn read_now(socket: &TcpStream, buf: &mut [u8]) -> Option<io::Result<usize>> {
    #[cfg(target_os = "linux")]
    {
        let received = rustix::net::recv(socket, buf, rustix::net::RecvFlags::DONTWAIT);
        Some(received.map(|(read, _)| read).map_err(io::Error::from))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (socket, buf);
        None
    }
}

impl BlockingIo for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn transmit_file(&mut self, region: &FileRegion) -> io::Result<usize> {
        crate::file::transmit(self, region)
    }

    fn sync_cork(&mut self, cork: &mut crate::file::Cork, file_follows: bool) {
        cork.sync(self, file_follows);
    }

    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        read_now(self, buf)
    }
}

#[cfg(unix)]
impl BlockingIo for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }

    fn transmit_file(&mut self, region: &FileRegion) -> io::Result<usize> {
        crate::file::transmit(self, region)
    }
}

/// What the owner of a connection asks of it; consulted every time the serving thread wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep serving.
    Continue,
    /// Close gracefully (see [`Dispatcher::shutdown`]): idle connections close now, a request
    /// in progress is answered first.
    Graceful,
    /// Give up on the connection at once.
    Now,
}

/// Why [`Connection::serve_until_waiting`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The connection is over (or was told to [`Stop::Now`]): close the socket.
    Closed,
    /// Only the socket, the clock (and with a [`WakeHook`], the application) can move the
    /// connection now: no output is pending, no byte waits in the stream, and unless `app`
    /// the application holds none of its wakers and did not wake the connection since its
    /// last poll, so no wake-up can come from anywhere else. Wait elsewhere for the socket to
    /// be readable (when `read`) or for `deadline`, then resume with
    /// [`Connection::serve_until_waiting`]. With neither `read`, `deadline` nor `app`,
    /// nothing can ever move the connection again (the application's future is pending
    /// without a waker): close it.
    Waiting {
        /// Whether bytes from the peer are wanted.
        read: bool,
        /// When [`Dispatcher::handle_timeout`] is due.
        deadline: Option<Instant>,
        /// The application may wake the connection too (a WebSocket handler waiting for a
        /// message to send, say): it then calls the [`WakeHook`] given to
        /// [`Connection::set_wake_hook`], and the connection must be resumed. Only with a hook.
        app: bool,
    },
    /// The connection still has work but used up its turn ([`TURN_ROUNDS`] rounds that moved):
    /// queue it behind the other ready connections and resume it with
    /// [`Connection::serve_until_waiting`]. A busy HTTP/2 connection is never idle, so without
    /// turns it would keep its thread for as long as the client keeps streams in flight.
    Yielded,
}

/// Rounds of progress [`Connection::serve_until_waiting`] makes before it yields the thread.
pub const TURN_ROUNDS: usize = 64;

/// Serves one connection over `io` on the calling thread until it closes, or until `stop`
/// says [`Stop::Now`]. Errors are I/O errors of the stream; protocol errors are answered on
/// the wire and end the connection with `Ok`.
///
/// `stop` is consulted whenever the thread wakes. To have it consulted soon, unpark the
/// serving thread ([`Thread::unpark`]); a thread blocked in a read notices only once the read
/// returns, which shutting the socket down ([`TcpStream::shutdown`]) makes immediate.
pub fn serve_connection<IO>(
    io: IO,
    dispatcher: Dispatcher,
    mut stop: impl FnMut() -> Stop,
) -> io::Result<()>
where
    IO: BlockingIo,
{
    Connection::new(io, dispatcher).serve(&mut stop)
}

/// One connection served over blocking I/O, for drivers that want to stop between requests:
/// [`serve`](Self::serve) runs it to the end, [`serve_until_waiting`](Self::serve_until_waiting)
/// returns whenever only the socket and the clock can move it, so that a thread pool can wait
/// for many such connections at once elsewhere (with `poll`, `epoll` and the like) instead of
/// holding a thread for each.
pub struct Connection<IO> {
    io: IO,
    dispatcher: Dispatcher,
    /// What the connection and every waker it hands out share: whom a wake-up goes to, and
    /// whether one came since the last poll. Held here for the connection's whole life, so a
    /// wake-up is recorded even when the waker it came through is gone by the time the
    /// serving thread looks (see `Connection::app_wake`).
    signal: Arc<WakeSignal>,
    /// The waker handed to the application. Only the application holds it between polls, so
    /// it is alive exactly while the application may still wake the connection.
    waker: Weak<AppWaker>,
    /// Where the application's wake-ups go while the owner has the connection parked.
    wake_hook: Option<WakeHook>,
    shutdown_seen: bool,
    /// Whether the socket is corked for a file response's head and body.
    cork: crate::file::Cork,
    /// The read timeout last given to the stream (`None`: not given yet), so that it is set
    /// again only when it changes.
    read_timeout: Option<Option<Duration>>,
    /// The stream may hold bytes not read yet: it was reported readable, or the last read
    /// filled all the room it was given (so the next read is made at once, rather than after
    /// another readiness). Cleared by a read that comes back short or finds nothing.
    unread: bool,
}

/// What a connection's owner is told through when the application wakes a connection it
/// parked ([`Outcome::Waiting`] with `app`): resume it with
/// [`Connection::serve_until_waiting`]. Called from whichever thread wakes, possibly while the
/// connection is still on its way to being parked: check [`Connection::app_woken`] when
/// parking it.
pub type WakeHook = Arc<dyn Fn() + Send + Sync>;

impl<IO> Connection<IO>
where
    IO: BlockingIo,
{
    /// A connection serving `dispatcher` over `io`.
    pub fn new(io: IO, mut dispatcher: Dispatcher) -> Self {
        // Every blocking stream can take a file body (`BlockingIo::transmit_file`); the
        // dispatcher still polls it in chunks over TLS and HTTP/2.
        dispatcher.set_transmit_files(true);
        Connection {
            io,
            dispatcher,
            signal: Arc::new(WakeSignal::new()),
            waker: Weak::new(),
            wake_hook: None,
            shutdown_seen: false,
            cork: crate::file::Cork::default(),
            read_timeout: None,
            unread: false,
        }
    }

    /// Lets [`serve_until_waiting`](Self::serve_until_waiting) return while the application
    /// may still wake the connection (a WebSocket handler, a long poll): its wake-ups then
    /// call `hook`. Without a hook the serving thread keeps such a connection, so one idle
    /// WebSocket would hold a thread.
    pub fn set_wake_hook(&mut self, hook: WakeHook) {
        self.wake_hook = Some(hook);
    }

    /// Whether the application woke the connection since it was last polled, or dropped
    /// every waker it held (which also calls the hook): a connection that returned
    /// [`Outcome::Waiting`] with `app` must then be resumed, not parked.
    pub fn app_woken(&self) -> bool {
        !matches!(self.app_wake(), AppWake::MayWake)
    }

    /// The stream.
    pub fn io(&self) -> &IO {
        &self.io
    }

    /// The stream, mutably. Leave its read timeout alone: the connection sets it only when
    /// the timeout it wants changes, trusting the stream to keep the last one.
    pub fn io_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// The dispatcher.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The dispatcher, mutably (to call [`Dispatcher::shutdown`] from outside, say).
    pub fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        &mut self.dispatcher
    }

    /// The stream and the dispatcher.
    pub fn into_parts(self) -> (IO, Dispatcher) {
        (self.io, self.dispatcher)
    }

    /// Serves on the calling thread until the connection closes, or until `stop` says
    /// [`Stop::Now`] (see [`serve_connection`]).
    pub fn serve(&mut self, stop: &mut dyn FnMut() -> Stop) -> io::Result<()> {
        match self.drive(false, false, stop)? {
            Outcome::Closed => Ok(()),
            Outcome::Waiting { .. } | Outcome::Yielded => {
                unreachable!("a connection served to the end never waits nor yields")
            }
        }
    }

    /// Serves on the calling thread while anything but the socket and the clock can move the
    /// connection: while a response is being produced, the thread reads and parks as
    /// [`serve`](Self::serve) does. Returns [`Outcome::Waiting`] as soon as nothing but the
    /// peer's bytes or a deadline can make progress — an idle keep-alive connection, a
    /// request head still arriving — and [`Outcome::Closed`] when the connection is over.
    ///
    /// `readable`: the socket is known to have bytes (or an EOF) to read, so a read is made
    /// (without blocking where the stream can, [`BlockingIo::read_now`]) before the connection
    /// may report `Waiting` again; reads go on while they fill the room they are given. A
    /// short read does not prove the socket drained (an EOF may follow the bytes): watch it
    /// level-triggered (or one-shot, re-armed), not edge-triggered. The serving thread may
    /// change between calls.
    pub fn serve_until_waiting(
        &mut self,
        readable: bool,
        stop: &mut dyn FnMut() -> Stop,
    ) -> io::Result<Outcome> {
        self.drive(true, readable, stop)
    }

    fn drive(
        &mut self,
        return_when_waiting: bool,
        readable: bool,
        stop: &mut dyn FnMut() -> Stop,
    ) -> io::Result<Outcome> {
        self.unread |= readable;
        let mut buffer = ReadBuffer::default();
        let mut rounds = 0usize;
        loop {
            rounds += 1;
            if return_when_waiting && rounds > TURN_ROUNDS {
                return Ok(Outcome::Yielded);
            }
            match stop() {
                Stop::Now => return Ok(Outcome::Closed),
                Stop::Graceful if !self.shutdown_seen => {
                    self.shutdown_seen = true;
                    self.dispatcher.shutdown();
                }
                Stop::Graceful | Stop::Continue => {}
            }
            let mut moved = self.poll_dispatcher();
            moved |= self.write_output()?;
            if self.dispatcher.is_closed() {
                return Ok(Outcome::Closed);
            }
            let now = Instant::now();
            let deadline = self.dispatcher.poll_timeout();
            if deadline.is_some_and(|deadline| deadline <= now) {
                self.dispatcher.handle_timeout(now);
                continue;
            }
            if moved {
                continue;
            }
            // Woken since the poll (possibly through a waker gone since) counts as "may wake":
            // the wake-up unparked this thread, so the park below returns at once, a bounded
            // read returns within APP_WAKE_LATENCY, and a hand-off to the hook refuses; the
            // next round polls again. Not a `continue` of its own, so that a future waking
            // itself on every poll does not keep the socket from being read.
            let app_may_wake = self.app_wake() != AppWake::Cannot;
            let wants_read = self.dispatcher.wants_read();
            let socket_has_bytes = self.unread || self.io.has_buffered_input();
            if return_when_waiting && app_may_wake && !(wants_read && socket_has_bytes) {
                if let Some(hook) = &self.wake_hook {
                    // From here on wake-ups call the hook. One that came since the check
                    // above is seen by `hand_to` (poll again); one after it calls the hook,
                    // and the owner checks `app_woken` when parking: neither is lost. The
                    // last waker dropped after the check wakes too (`AppWaker`'s drop).
                    if self.signal.hand_to(hook) {
                        return Ok(Outcome::Waiting {
                            read: wants_read,
                            deadline,
                            app: true,
                        });
                    }
                    continue;
                }
            }
            if wants_read
                && (!return_when_waiting
                    || self.unread
                    || app_may_wake
                    || self.io.has_buffered_input())
            {
                // While the application may still wake us (a handler running elsewhere, an
                // HTTP/2 stream in flight beside an open socket), a read may not block longer
                // than APP_WAKE_LATENCY: its wake-up is noticed when the read returns.
                let wake_check = app_may_wake.then(|| now + APP_WAKE_LATENCY);
                let read_deadline = match (deadline, wake_check) {
                    (Some(deadline), Some(check)) => Some(deadline.min(check)),
                    (deadline, check) => deadline.or(check),
                };
                self.read(buffer.get(), read_deadline, socket_has_bytes, now)?;
                continue;
            }
            if app_may_wake {
                // Woken by the application's waker, by its last clone being dropped, or by
                // the deadline.
                park_until(deadline, now);
                continue;
            }
            if return_when_waiting {
                return Ok(Outcome::Waiting {
                    read: wants_read,
                    deadline,
                    app: false,
                });
            }
            match deadline {
                Some(deadline) => park_until(Some(deadline), now),
                None => {
                    // No bytes wanted, no deadline, and nobody left who could wake us: the
                    // application's future is pending without having kept its waker.
                    return Err(io::Error::other(
                        "connection stalled: the application is pending but holds no waker",
                    ));
                }
            }
        }
    }

    /// Polls the dispatcher with a waker that unparks this thread; true when anything moved.
    fn poll_dispatcher(&mut self) -> bool {
        // Before the poll: a wake-up from here on is seen after it, earlier ones it answers.
        self.signal.retarget();
        let shared = match self.waker.upgrade() {
            // The same waker as last time while the application keeps it, so that
            // `Waker::will_wake` spares it a clone.
            Some(shared) => shared,
            None => {
                let shared = Arc::new(AppWaker {
                    signal: Arc::clone(&self.signal),
                });
                self.waker = Arc::downgrade(&shared);
                shared
            }
        };
        // Declared first, so dropped last: after `waker`, whose drop must not unpark us.
        let _polling = PollingMark::set(&shared);
        // The only strong reference this side keeps lives in `waker` until the end of the
        // poll, so that afterwards `self.waker` is alive only if the application kept a clone.
        let waker = Waker::from(shared);
        self.dispatcher.poll(&mut Context::from_waker(&waker))
    }

    /// Writes all queued output; true when anything was written.
    fn write_output(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        self.io
            .sync_cork(&mut self.cork, self.dispatcher.file_pending());
        while let Some(bytes) = self.dispatcher.poll_transmit(Instant::now()) {
            self.io.write_all(&bytes)?;
            wrote = true;
        }
        if wrote {
            self.io.flush()?;
        }
        // One call per round (at most `TRANSMIT_MAX` bytes), so that `stop` is consulted and
        // turns are taken during a long file too.
        if let Some(region) = self.dispatcher.poll_transmit_file(Instant::now()) {
            match self.io.transmit_file(&region) {
                Ok(sent) => {
                    wrote = true;
                    self.dispatcher.file_sent(Instant::now(), sent);
                }
                // Nothing sent, but the file is still owed: try again at once.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => wrote = true,
                // The socket's write timeout, a broken peer or a changed file: the response is
                // cut short and the dispatcher closes the connection.
                Err(error) => {
                    self.dispatcher.file_failed(&error);
                    wrote = true;
                }
            }
        }
        // The file is sent (or failed): its last segment goes out now, not after 200 ms.
        self.io
            .sync_cork(&mut self.cork, self.dispatcher.file_pending());
        Ok(wrote)
    }

    /// One read, bounded by `deadline`; a timeout is not an error (the caller handles it).
    /// `expected`: bytes are known to wait, so the read should not block at all.
    fn read(
        &mut self,
        buffer: &mut [u8],
        deadline: Option<Instant>,
        expected: bool,
        now: Instant,
    ) -> io::Result<()> {
        let room = self.dispatcher.receive_capacity().min(buffer.len());
        let read = match expected.then(|| self.io.read_now(&mut buffer[..room])) {
            Some(Some(read)) => read,
            _ => self.timed_read(&mut buffer[..room], deadline, expected, now),
        };
        match read {
            Ok(0) => {
                self.unread = false;
                self.dispatcher.receive_eof();
            }
            Ok(n) => {
                // A full read may have left more behind; a short one drained the socket.
                self.unread = n == room;
                let taken = self.dispatcher.receive(Instant::now(), &buffer[..n]);
                debug_assert_eq!(taken, n, "reads are bounded by receive_capacity");
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.unread = false;
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// A read bounded by `deadline` through the stream's read timeout.
    fn timed_read(
        &mut self,
        buffer: &mut [u8],
        deadline: Option<Instant>,
        expected: bool,
        now: Instant,
    ) -> io::Result<usize> {
        let mut timeout = deadline.map(|deadline| round_up_to_millis(deadline - now));
        if expected {
            // Any timeout up to the deadline will do: the usual one spares a `setsockopt`.
            timeout = Some(timeout.map_or(EXPECTED_READ_TIMEOUT, |left| {
                left.min(EXPECTED_READ_TIMEOUT)
            }));
        }
        if self.read_timeout != Some(timeout) {
            self.io.set_read_timeout(timeout)?;
            self.read_timeout = Some(timeout);
        }
        self.io.read(buffer)
    }
}

impl<IO> Connection<IO> {
    /// Whether the application woke the connection since the last poll, may still wake it,
    /// or cannot: what decides, after a poll that moved nothing, between polling again,
    /// waiting with an ear for the application, and waiting for the socket or clock alone.
    ///
    /// Why a wake-up cannot be lost here, whenever it comes: the application wakes through a
    /// waker it holds, so a wake-up it sends happens before it drops that waker. Whether a
    /// waker is alive is therefore read *first*, then whether a wake-up came:
    /// - a waker was alive: a wake-up after the read of `woken` finds the signal pointing at
    ///   this thread (an unpark, which the next park or bounded read notices) or, once handed
    ///   over, at the owner's hook ([`WakeSignal::hand_to`]); dropping the last waker later
    ///   wakes the same way;
    /// - none was: the application dropped its last one before the read; the fence makes
    ///   everything it did before (its wake-up included, recorded in the [`WakeSignal`] this
    ///   connection keeps) visible to the read of `woken`. Not woken then means nothing can
    ///   wake the connection any more: only then may it wait for nothing but its socket and
    ///   its deadline, or be closed when it has neither.
    ///
    /// The bug this order and the lasting signal fix: the flag lived in the waker, so a
    /// wake-up from another thread followed by the drop of that waker (a blocking-pool read
    /// completing) between the end of a poll and this check looked like "nobody can wake
    /// us", and the threadpool closed a connection whose response body was still coming.
    fn app_wake(&self) -> AppWake {
        let alive = self.waker.strong_count() > 0;
        // `strong_count` is a relaxed load; when it reads the application's last (release)
        // decrement, this fence makes that release synchronize with us.
        fence(Ordering::Acquire);
        if self.signal.woken.load(Ordering::SeqCst) {
            AppWake::Woken
        } else if alive {
            AppWake::MayWake
        } else {
            AppWake::Cannot
        }
    }
}

impl<IO> std::fmt::Debug for Connection<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("app_wake", &self.app_wake())
            .field("shutdown_seen", &self.shutdown_seen)
            .finish_non_exhaustive()
    }
}

/// Parks the thread until `deadline` (or until unparked); without a deadline, until unparked.
fn park_until(deadline: Option<Instant>, now: Instant) {
    match deadline {
        Some(deadline) => thread::park_timeout(deadline.saturating_duration_since(now)),
        None => thread::park(),
    }
}

/// A read timeout never shorter than the time left, so a read does not end just before its
/// deadline only to wait again for the remaining microseconds; never zero, which
/// `set_read_timeout` refuses.
fn round_up_to_millis(left: Duration) -> Duration {
    let millis = left.as_nanos().div_ceil(1_000_000).max(1);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// After a poll that moved nothing: what the application can still do to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppWake {
    /// It woke the connection since the poll (or dropped its last waker off the serving
    /// thread, which wakes too).
    Woken,
    /// It holds a waker and may wake the connection later.
    MayWake,
    /// It holds no waker and did not wake the connection: nothing but the socket and the
    /// clock can move it.
    Cannot,
}

/// What a [`Connection`] and the wakers it hands out share. It lives as long as the
/// connection, so a wake-up stays recorded after the waker it came through is gone.
struct WakeSignal {
    target: Mutex<WakeTarget>,
    /// A wake-up came since the serving thread last polled.
    woken: AtomicBool,
}

/// Whom a wake-up goes to.
enum WakeTarget {
    /// Nobody yet: the connection was never polled, so no waker exists.
    Nobody,
    /// The thread serving the connection.
    Thread(Thread),
    /// The connection's owner, which parked it.
    Hook(WakeHook),
}

impl WakeSignal {
    fn new() -> Self {
        WakeSignal {
            target: Mutex::new(WakeTarget::Nobody),
            woken: AtomicBool::new(false),
        }
    }

    /// Points wake-ups at the calling thread, which serves (and is about to poll) the
    /// connection from now on, and forgets earlier wake-ups: the coming poll answers them.
    fn retarget(&self) {
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        self.woken.store(false, Ordering::SeqCst);
        match &*target {
            WakeTarget::Thread(thread) if thread.id() == thread::current().id() => {}
            _ => *target = WakeTarget::Thread(thread::current()),
        }
    }

    /// Points wake-ups at the owner's hook; false when a wake-up already came since the last
    /// poll (the connection must be polled again rather than parked). Under the target's
    /// lock, so a wake-up either came before (and is seen here) or finds the hook.
    fn hand_to(&self, hook: &WakeHook) -> bool {
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        *target = WakeTarget::Hook(Arc::clone(hook));
        !self.woken.load(Ordering::SeqCst)
    }

    /// Records a wake-up, then tells whom it concerns.
    fn wake(&self) {
        let first = !self.woken.swap(true, Ordering::SeqCst);
        match &*self.target.lock().unwrap_or_else(PoisonError::into_inner) {
            WakeTarget::Nobody => {}
            WakeTarget::Thread(thread) => thread.unpark(),
            // The owner needs telling once per park: the connection is queued by then.
            WakeTarget::Hook(hook) if first => hook(),
            WakeTarget::Hook(_) => {}
        }
    }
}

/// The waker handed to the application: wakes through the connection's [`WakeSignal`]. Its
/// last clone being dropped wakes too: the application can no longer wake the connection,
/// which must be looked at again (and may now be parked without an ear for the application,
/// or closed when it waits for nothing else).
struct AppWaker {
    signal: Arc<WakeSignal>,
}

impl Wake for AppWaker {
    fn wake(self: Arc<Self>) {
        self.signal.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.signal.wake();
    }
}

impl Drop for AppWaker {
    fn drop(&mut self) {
        // Unless this is the serving thread dropping its own reference after a poll, the
        // last clone just went: the serving thread (or the owner) must look again.
        let address = std::ptr::from_ref::<AppWaker>(self) as usize;
        if POLLING.with(Cell::get) != address {
            self.signal.wake();
        }
    }
}

thread_local! {
    /// The address of the [`AppWaker`] this thread is polling with, 0 when none. Constant
    /// and without destructor, so reading it works even in other thread-locals' destructors,
    /// where a waker may be dropped too (and where `thread::current` may fail).
    static POLLING: Cell<usize> = const { Cell::new(0) };
}

/// Marks the thread as polling with a waker, until dropped (also when a poll unwinds).
struct PollingMark;

impl PollingMark {
    fn set(waker: &Arc<AppWaker>) -> PollingMark {
        POLLING.set(Arc::as_ptr(waker) as usize);
        PollingMark
    }
}

impl Drop for PollingMark {
    fn drop(&mut self) {
        POLLING.set(0);
    }
}

thread_local! {
    /// One read buffer per thread, lent to whichever connection the thread serves, so a
    /// connection waiting elsewhere holds no buffer.
    static SPARE_BUFFER: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

/// The thread's read buffer, taken on first use and given back on drop.
#[derive(Default)]
struct ReadBuffer(Option<Box<[u8]>>);

impl ReadBuffer {
    fn get(&mut self) -> &mut [u8] {
        self.0.get_or_insert_with(|| {
            SPARE_BUFFER
                .take()
                .unwrap_or_else(|| vec![0; READ_BUFFER].into_boxed_slice())
        })
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.0.take() {
            SPARE_BUFFER.set(Some(buffer));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    use http::{Request, Response};
    use weft_service::body::Body;
    use weft_service::service::{ConnectionInfo, Service};

    use super::*;
    use crate::DispatchConfig;

    /// The longest any step of a test waits.
    const WAIT: Duration = Duration::from_secs(10);

    /// Serves one accepted connection with `service` on a thread of its own; returns the
    /// client's end and the serving thread's result.
    fn serve_one<S: Service>(
        service: S,
        config: DispatchConfig,
        stop: Arc<AtomicBool>,
    ) -> (TcpStream, mpsc::Receiver<io::Result<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let (done, result) = mpsc::channel();
        thread::spawn(move || {
            let info = ConnectionInfo::tcp(Some(peer), None);
            let dispatcher = Dispatcher::new(Arc::new(service), config, info, Instant::now());
            let stop = move || {
                if stop.load(Ordering::SeqCst) {
                    Stop::Graceful
                } else {
                    Stop::Continue
                }
            };
            let _ = done.send(serve_connection(server, dispatcher, stop));
        });
        (client, result)
    }

    /// Reads one response with a `content-length`; returns its head (lowercased) and body.
    fn read_response(reader: &mut BufReader<TcpStream>) -> (String, String) {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "EOF inside a head"
            );
            head.push_str(&line.to_ascii_lowercase());
            if line == "\r\n" {
                break;
            }
        }
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    async fn echo(request: Request<Body>) -> Response<Body> {
        let body = request.into_body().collect(1 << 20).await.unwrap();
        Response::new(Body::from(body))
    }

    #[test]
    fn serves_keep_alive_requests_then_closes_on_eof() {
        let stop = Arc::new(AtomicBool::new(false));
        let (mut client, result) = serve_one(echo, DispatchConfig::default(), stop);
        let mut reader = BufReader::new(client.try_clone().unwrap());
        client
            .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello")
            .unwrap();
        let (head, body) = read_response(&mut reader);
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert_eq!(body, "hello");
        client
            .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nbye")
            .unwrap();
        assert_eq!(read_response(&mut reader).1, "bye");
        client.shutdown(std::net::Shutdown::Write).unwrap();
        result.recv_timeout(WAIT).unwrap().unwrap();
    }

    #[test]
    fn a_wake_from_another_thread_unparks_the_serving_thread() {
        let service = |_request: Request<Body>| async {
            let (sender, body) = Body::channel(1);
            thread::spawn(move || {
                let mut sender = sender;
                sender.send_data("from a thread".into());
                sender.finish();
            });
            Response::new(Body::from(body.collect(1024).await.unwrap()))
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (mut client, result) = serve_one(service, DispatchConfig::default(), stop);
        let mut reader = BufReader::new(client.try_clone().unwrap());
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut reader).1, "from a thread");
        result.recv_timeout(WAIT).unwrap().unwrap();
    }

    /// Feeds `chunks` pieces of `piece` into `sender`, each once the receiver has room: every
    /// piece wakes the connection from this thread, which then drops the waker it woke.
    fn produce(mut sender: weft_service::body::BodySender, piece: &'static [u8], chunks: usize) {
        struct Unpark(Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        for _ in 0..chunks {
            // Bounded: the connection takes the body or drops it, which gives room too.
            while sender
                .poll_capacity(&mut Context::from_waker(&waker))
                .is_pending()
            {
                thread::park_timeout(WAIT);
            }
            if !sender.send_data(bytes::Bytes::from_static(piece)) {
                return;
            }
        }
        sender.finish();
    }

    #[test]
    fn a_body_fed_from_another_thread_arrives_whole() {
        // Each piece is a wake-up from another thread followed by the drop of its waker: if
        // either lands between a poll and the check for live wakers, the connection must
        // still see it (it once saw nobody who could wake it, and gave up on the body).
        const PIECE: &[u8] = &[b'x'; 1024];
        const CHUNKS: usize = 8192;
        let service = |_request: Request<Body>| async {
            let length = (PIECE.len() * CHUNKS) as u64;
            let (sender, body) = Body::channel_with_length(2 * PIECE.len(), Some(length));
            thread::spawn(move || produce(sender, PIECE, CHUNKS));
            Response::new(body)
        };
        // A few connections, for more chances at the race.
        for _ in 0..3 {
            let stop = Arc::new(AtomicBool::new(false));
            let (mut client, result) = serve_one(service, DispatchConfig::default(), stop);
            client
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .unwrap();
            let mut response = Vec::new();
            client.read_to_end(&mut response).unwrap();
            let body_start = response
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a head")
                + 4;
            let body = &response[body_start..];
            assert_eq!(body.len(), PIECE.len() * CHUNKS, "the body was cut short");
            assert!(body.iter().all(|&b| b == b'x'));
            result.recv_timeout(WAIT).unwrap().unwrap();
        }
    }

    #[test]
    fn with_a_wake_hook_a_pending_application_lets_the_thread_go_until_it_wakes() {
        // The handler waits for a message from outside (as a WebSocket handler waits for a
        // hub); meanwhile nothing should hold the serving thread.
        let (release, released) = mpsc::channel::<&'static str>();
        let released = Arc::new(Mutex::new(Some(released)));
        let service = move |_request: Request<Body>| {
            let released = Arc::clone(&released);
            async move {
                let (sender, body) = Body::channel(64);
                let receiver = released.lock().unwrap().take().unwrap();
                thread::spawn(move || {
                    let mut sender = sender;
                    let text = receiver.recv_timeout(WAIT).unwrap();
                    sender.send_data(text.into());
                    sender.finish();
                });
                Response::new(Body::from(body.collect(1024).await.unwrap()))
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        let (server, _) = listener.accept().unwrap();
        let dispatcher = Dispatcher::new(
            Arc::new(service),
            DispatchConfig::default(),
            ConnectionInfo::default(),
            Instant::now(),
        );
        let mut connection = Connection::new(server, dispatcher);
        let (hooked, hook_calls) = mpsc::channel();
        connection.set_wake_hook(Arc::new(move || {
            let _ = hooked.send(());
        }));
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut stop = || Stop::Continue;
        let outcome = connection.serve_until_waiting(true, &mut stop).unwrap();
        assert!(
            matches!(outcome, Outcome::Waiting { app: true, .. }),
            "returned while the application works: {outcome:?}"
        );
        assert!(!connection.app_woken());
        release.send("woken").unwrap();
        hook_calls.recv_timeout(WAIT).expect("the hook is called");
        assert!(connection.app_woken());
        for _ in 0..100 {
            if connection.serve_until_waiting(false, &mut stop).unwrap() == Outcome::Closed {
                break;
            }
            hook_calls.recv_timeout(WAIT).expect("woken again");
        }
        let mut reader = BufReader::new(client);
        assert_eq!(read_response(&mut reader).1, "woken");
    }

    #[test]
    fn a_stale_readiness_returns_waiting_rather_than_blocking_until_the_deadline() {
        let mut config = DispatchConfig::default();
        // Were the read to block, it would end at this deadline with a 408 and `Closed`.
        config.limits.head_timeout = Duration::from_secs(2);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        let (server, _) = listener.accept().unwrap();
        let dispatcher = Dispatcher::new(
            Arc::new(echo),
            config,
            ConnectionInfo::default(),
            Instant::now(),
        );
        let mut connection = Connection::new(server, dispatcher);
        let mut stop = || Stop::Continue;
        // Told readable, though the client sent nothing (a readiness someone else consumed).
        let outcome = connection.serve_until_waiting(true, &mut stop).unwrap();
        assert!(
            matches!(
                outcome,
                Outcome::Waiting {
                    read: true,
                    deadline: Some(_),
                    app: false
                }
            ),
            "{outcome:?}"
        );
        // Bytes in two sends, the first filling no read: the request is still served.
        client.write_all(b"POST / HTTP/1.1\r\nhost: x\r\n").unwrap();
        assert!(matches!(
            connection.serve_until_waiting(true, &mut stop).unwrap(),
            Outcome::Waiting { read: true, .. }
        ));
        client
            .write_all(b"content-length: 2\r\nconnection: close\r\n\r\nhi")
            .unwrap();
        let mut outcome = Outcome::Yielded;
        for _ in 0..100 {
            outcome = connection.serve_until_waiting(true, &mut stop).unwrap();
            if outcome == Outcome::Closed {
                break;
            }
        }
        assert_eq!(outcome, Outcome::Closed);
        let mut reader = BufReader::new(client);
        assert_eq!(read_response(&mut reader).1, "hi");
    }

    #[test]
    fn the_keep_alive_deadline_closes_an_idle_connection() {
        let mut config = DispatchConfig::default();
        config.limits.keep_alive_timeout = Duration::from_millis(50);
        let stop = Arc::new(AtomicBool::new(false));
        let (mut client, result) = serve_one(echo, config, stop);
        let mut reader = BufReader::new(client.try_clone().unwrap());
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        read_response(&mut reader);
        // The server closes by itself: the next read sees the end of the stream.
        assert_eq!(reader.read(&mut [0; 16]).unwrap(), 0);
        result.recv_timeout(WAIT).unwrap().unwrap();
    }

    #[test]
    fn a_graceful_stop_seen_on_wake_up_closes_after_the_response_in_progress() {
        // The handler waits for a body whose sender it hands to the test.
        let (senders, started) = mpsc::channel();
        let senders = Mutex::new(senders);
        let service = move |_request: Request<Body>| {
            let (sender, body) = Body::channel(1);
            senders.lock().unwrap().send(sender).unwrap();
            async move {
                body.collect(0).await.unwrap();
                Response::new(Body::from("done"))
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (mut client, result) = serve_one(service, DispatchConfig::default(), Arc::clone(&stop));
        let mut reader = BufReader::new(client.try_clone().unwrap());
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let sender = started.recv_timeout(WAIT).unwrap();
        stop.store(true, Ordering::SeqCst);
        // Finishing the body wakes the serving thread, which then sees the stop.
        sender.finish();
        let (_head, body) = read_response(&mut reader);
        assert_eq!(body, "done");
        // Whether the head says `connection: close` depends on whether the thread saw the stop
        // before or after its wake-up poll finished the handler (a spurious unpark can put it
        // between the two); either way the connection closes once the response is out.
        assert_eq!(reader.read(&mut [0; 16]).unwrap(), 0);
        result.recv_timeout(WAIT).unwrap().unwrap();
    }

    #[test]
    fn read_timeouts_round_up_and_are_never_zero() {
        assert_eq!(round_up_to_millis(Duration::ZERO), Duration::from_millis(1));
        assert_eq!(
            round_up_to_millis(Duration::from_micros(1500)),
            Duration::from_millis(2)
        );
        assert_eq!(
            round_up_to_millis(Duration::from_millis(7)),
            Duration::from_millis(7)
        );
    }
}
