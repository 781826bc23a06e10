//! Serving a connection over `futures_io::AsyncRead + AsyncWrite`: smol, async-std, and tokio
//! through `tokio_util::compat`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Buf;
use futures_io::{AsyncRead, AsyncWrite};

use crate::Dispatcher;

/// A future that completes at a deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A runtime's timer, so this adapter can wait for a deadline without knowing the runtime.
pub trait Timer: Send + Sync + 'static {
    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

thread_local! {
    /// One read buffer per thread rather than per connection: what a read returns is copied
    /// into the connection before the task yields, so an idle connection holds no buffer
    /// (10 000 idle connections would otherwise hold 640 MiB). 64 KiB, so that a 16 KiB
    /// WebSocket message or HTTP/2 DATA frame with its neighbours takes one system call.
    static READ_BUFFER: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; 64 * 1024].into_boxed_slice());
}

/// Rounds of work a connection does before yielding to other tasks on its executor, so one
/// busy connection cannot starve the rest.
const ROUNDS_BEFORE_YIELD: usize = 32;

/// Serves one connection over `io` until it closes. Errors are I/O errors of the socket;
/// protocol errors are answered on the wire and end the connection with `Ok`. When
/// `shutdown` completes, the connection closes gracefully (see [`Dispatcher::shutdown`]).
///
/// `shutdown` is `Unpin` (box or pin a future that is not) so that the connection is a plain
/// struct, [`Serve`], that holds each thing once: an idle connection's memory is mostly this
/// future, and an `async fn` would keep its arguments beside the locals they move into.
pub fn serve_connection<IO, T, S>(
    io: IO,
    dispatcher: Dispatcher,
    timer: T,
    shutdown: S,
) -> Serve<IO, T, S>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    T: Timer + Unpin,
    S: Future<Output = ()> + Unpin,
{
    Serve {
        connection: Connection {
            io,
            dispatcher,
            sleep: None,
            closing: false,
        },
        timer,
        shutdown: Some(shutdown),
    }
}

/// One connection being served: the future of [`serve_connection`].
pub struct Serve<IO, T, S> {
    connection: Connection<IO>,
    timer: T,
    /// Dropped once it completes, and with it whatever it registered to be woken.
    shutdown: Option<S>,
}

impl<IO, T, S> Serve<IO, T, S> {
    /// Begins the graceful shutdown now, as `shutdown` completing would, for a driver that
    /// learns of it otherwise (then `shutdown` can be [`std::future::pending`]); poll the
    /// future afterwards. Once is enough: later calls, and `shutdown` completing later,
    /// change nothing.
    pub fn shutdown(&mut self) {
        if self.shutdown.take().is_some() {
            self.connection.dispatcher.shutdown();
        }
    }
}

impl<IO, T, S> Future for Serve<IO, T, S>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    T: Timer + Unpin,
    S: Future<Output = ()> + Unpin,
{
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(shutdown) = &mut this.shutdown {
            if Pin::new(shutdown).poll(cx).is_ready() {
                this.shutdown();
            }
        }
        this.connection.poll_drive(cx, &this.timer)
    }
}

struct Connection<IO> {
    io: IO,
    /// Holds the output too: what the socket did not accept is handed back to it
    /// ([`Dispatcher::unsent`]), so that it bounds how long that may wait.
    dispatcher: Dispatcher,
    /// The armed timer and the deadline it was armed for: no later than the dispatcher's
    /// deadline, perhaps earlier (see [`Connection::poll_timer`]).
    sleep: Option<(Instant, Sleep)>,
    closing: bool,
}

impl<IO> Connection<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_drive<T: Timer>(&mut self, cx: &mut Context<'_>, timer: &T) -> Poll<io::Result<()>> {
        for _ in 0..ROUNDS_BEFORE_YIELD {
            // One clock read a round: a round is a few system calls at most.
            let now = Instant::now();
            let mut moved = self.dispatcher.poll(cx);
            moved |= match self.poll_write(cx, now) {
                Poll::Ready(Ok(wrote)) => wrote,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => false,
            };
            if self.dispatcher.send_timed_out() {
                // The peer stopped reading: neither the output left nor a TLS close_notify can
                // get out, and waiting for them would hold the connection for ever. Dropping
                // the stream closes the socket.
                return Poll::Ready(Ok(()));
            }
            if self.dispatcher.is_closed() {
                self.closing = true;
            }
            if self.closing {
                // A peer that already went away cannot be told anything more.
                return Pin::new(&mut self.io).poll_close(cx).map(|_| Ok(()));
            }
            moved |= match self.poll_read(cx, now) {
                Poll::Ready(Ok(read)) => read,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => false,
            };
            // The timer last, when nothing else moved: once per wake-up rather than once a
            // round, as its deadline only matters to a connection about to wait.
            if !moved && !self.poll_timer(cx, timer, now) {
                return Poll::Pending;
            }
        }
        // Busy all along: deadlines are still kept (the next wake-up, which this asks for,
        // acts on one that passed).
        self.poll_timer(cx, timer, Instant::now());
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes queued output, handing back to the dispatcher what the socket does not accept;
    /// `Ready(true)` when bytes were written.
    fn poll_write(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<io::Result<bool>> {
        let mut wrote = false;
        while let Some(mut bytes) = self.dispatcher.poll_transmit(now) {
            match Pin::new(&mut self.io).poll_write(cx, &bytes) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    wrote = true;
                    if n < bytes.len() {
                        // Offered again at once by the next `poll_transmit`.
                        bytes.advance(n);
                        self.dispatcher.unsent(now, bytes);
                    }
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    self.dispatcher.unsent(now, bytes);
                    if wrote {
                        break;
                    }
                    return Poll::Pending;
                }
            }
        }
        if wrote {
            if let Poll::Ready(Err(error)) = Pin::new(&mut self.io).poll_flush(cx) {
                return Poll::Ready(Err(error));
            }
        }
        Poll::Ready(Ok(wrote))
    }

    /// Reads from the socket when the dispatcher wants bytes; `Ready(true)` when it read.
    fn poll_read(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<io::Result<bool>> {
        if !self.dispatcher.wants_read() {
            return Poll::Ready(Ok(false));
        }
        let room = self.dispatcher.receive_capacity();
        READ_BUFFER.with_borrow_mut(|buffer| {
            let room = room.min(buffer.len());
            match Pin::new(&mut self.io).poll_read(cx, &mut buffer[..room]) {
                Poll::Ready(Ok(0)) => {
                    self.dispatcher.receive_eof();
                    Poll::Ready(Ok(true))
                }
                Poll::Ready(Ok(n)) => {
                    let taken = self.dispatcher.receive(now, &buffer[..n]);
                    debug_assert_eq!(taken, n, "reads are bounded by receive_capacity");
                    Poll::Ready(Ok(true))
                }
                Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {
                    Poll::Ready(Ok(true))
                }
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            }
        })
    }

    /// Keeps a timer armed no later than the dispatcher's deadline; true when a deadline
    /// passed or the timer fired.
    ///
    /// The deadline moves on with nearly every request (the head timeout once bytes arrive,
    /// the keep-alive timeout once the response is out), nearly always later. A timer armed
    /// for an earlier deadline is kept rather than replaced: it fires early, once, and is then
    /// armed again for the deadline of that moment. So a busy connection arms its timer once
    /// per timeout period rather than once or twice per request.
    fn poll_timer<T: Timer>(&mut self, cx: &mut Context<'_>, timer: &T, now: Instant) -> bool {
        let Some(deadline) = self.dispatcher.poll_timeout() else {
            // An armed timer stays: firing once for nothing costs less than dropping it and
            // arming another for the next request.
            return self.poll_sleep(cx);
        };
        if deadline <= now {
            self.sleep = None;
            self.dispatcher.handle_timeout(now);
            return true;
        }
        if self
            .sleep
            .as_ref()
            .is_none_or(|(armed, _)| *armed > deadline)
        {
            self.sleep = Some((deadline, timer.sleep_until(deadline)));
        }
        // Fired: the deadline has passed, or it moved on since the timer was armed; the next
        // round tells which.
        self.poll_sleep(cx)
    }

    /// Polls the armed timer, if any; true (and disarmed) when it fired.
    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((_, sleep)) = &mut self.sleep else {
            return false;
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.sleep = None;
        true
    }
}

#[cfg(test)]
mod tests {
    //! The adapter over an in-memory socket and a counting timer, driven by hand: what it
    //! reads and writes, when it arms its timer, and how it ends.

    use std::collections::VecDeque;
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    use futures_io::{AsyncRead, AsyncWrite};
    use http::{Request, Response};
    use weft_core::Limits;
    use weft_service::body::Body;
    use weft_service::service::ConnectionInfo;

    use super::{Serve, Sleep, Timer, serve_connection};
    use crate::{DispatchConfig, Dispatcher};

    /// Both directions of an in-memory connection.
    #[derive(Default)]
    struct Wire {
        to_server: VecDeque<u8>,
        from_server: Vec<u8>,
        /// The client closed its side.
        client_closed: bool,
        /// The server closed the connection.
        server_closed: bool,
    }

    /// The server's end of a [`Wire`].
    #[derive(Clone, Default)]
    struct Socket(Arc<Mutex<Wire>>);

    impl Socket {
        fn send(&self, bytes: &[u8]) {
            self.0.lock().unwrap().to_server.extend(bytes);
        }

        fn received(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap().from_server).into_owned()
        }

        fn server_closed(&self) -> bool {
            self.0.lock().unwrap().server_closed
        }
    }

    impl AsyncRead for Socket {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut wire = self.0.lock().unwrap();
            if wire.to_server.is_empty() {
                // The driver polls again (see `drive`); nothing to register.
                return if wire.client_closed {
                    Poll::Ready(Ok(0))
                } else {
                    Poll::Pending
                };
            }
            let n = buf.len().min(wire.to_server.len());
            for (slot, byte) in buf.iter_mut().zip(wire.to_server.drain(..n)) {
                *slot = byte;
            }
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Socket {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.lock().unwrap().from_server.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.0.lock().unwrap().server_closed = true;
            Poll::Ready(Ok(()))
        }
    }

    /// A timer that counts the timers it arms; each completes once its deadline has passed
    /// (polled again by `drive`, it registers no waker).
    #[derive(Clone, Default)]
    struct CountingTimer(Arc<AtomicUsize>);

    impl CountingTimer {
        fn armed(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Timer for CountingTimer {
        fn sleep_until(&self, deadline: Instant) -> Sleep {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::poll_fn(move |_| {
                if Instant::now() >= deadline {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }))
        }
    }

    fn hello(_: Request<Body>) -> std::future::Ready<Response<Body>> {
        std::future::ready(Response::new(Body::from("hello")))
    }

    /// A connection served with `limits`, over `socket`, its timers counted by `timer`.
    fn serve(
        socket: &Socket,
        timer: &CountingTimer,
        limits: Limits,
    ) -> Serve<Socket, CountingTimer, std::future::Pending<()>> {
        let config = DispatchConfig {
            limits,
            ..DispatchConfig::default()
        };
        let dispatcher = Dispatcher::new(
            Arc::new(hello),
            config,
            ConnectionInfo::tcp(None, None),
            Instant::now(),
        );
        serve_connection(
            socket.clone(),
            dispatcher,
            timer.clone(),
            std::future::pending(),
        )
    }

    /// Polls `serve` until `done` says so or it ends (then `Some` with its result), for at
    /// most `within`.
    fn drive(
        serve: &mut Serve<Socket, CountingTimer, std::future::Pending<()>>,
        within: Duration,
        mut done: impl FnMut() -> bool,
    ) -> Option<io::Result<()>> {
        let mut cx = Context::from_waker(Waker::noop());
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Poll::Ready(result) = Pin::new(&mut *serve).poll(&mut cx) {
                return Some(result);
            }
            if done() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("neither done nor ended within {within:?}");
    }

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

    #[test]
    fn a_busy_connection_arms_its_timer_once_not_per_request() {
        let (socket, timer) = (Socket::default(), CountingTimer::default());
        let mut serve = serve(&socket, &timer, Limits::default());
        for answered in 1..=50 {
            socket.send(REQUEST);
            let ended = drive(&mut serve, Duration::from_secs(10), || {
                socket.received().matches("HTTP/1.1 200").count() == answered
            });
            assert!(ended.is_none(), "the connection lives on");
        }
        assert!(socket.received().ends_with("hello"));
        // The keep-alive deadline armed first (at the first response) is still the earliest
        // it has to honour: the head and keep-alive deadlines of later requests come after it.
        assert!(
            timer.armed() <= 2,
            "{} timers armed for 50 requests",
            timer.armed()
        );
    }

    #[test]
    fn a_timer_armed_for_an_earlier_deadline_fires_and_the_later_one_is_kept() {
        let (socket, timer) = (Socket::default(), CountingTimer::default());
        let mut limits = Limits::default();
        limits.keep_alive_timeout = Duration::from_millis(100);
        let mut serve = serve(&socket, &timer, limits);
        socket.send(REQUEST);
        drive(&mut serve, Duration::from_secs(10), || {
            socket.received().contains("hello")
        });
        // A second exchange moves the keep-alive deadline on: the first timer fires early,
        // and the connection stays open until the second deadline.
        std::thread::sleep(Duration::from_millis(50));
        socket.send(REQUEST);
        let answered = Instant::now();
        drive(&mut serve, Duration::from_secs(10), || {
            socket.received().matches("hello").count() == 2
        });
        let ended = drive(&mut serve, Duration::from_secs(10), || false);
        assert!(
            matches!(ended, Some(Ok(()))),
            "closed at its keep-alive timeout"
        );
        assert!(socket.server_closed());
        assert!(
            answered.elapsed() >= Duration::from_millis(100),
            "not closed before the second exchange's keep-alive deadline"
        );
        assert!(
            timer.armed() >= 2,
            "armed again once the first timer fired early"
        );
    }

    #[test]
    fn shutdown_closes_an_idle_connection_and_later_calls_change_nothing() {
        let (socket, timer) = (Socket::default(), CountingTimer::default());
        let mut serve = serve(&socket, &timer, Limits::default());
        socket.send(REQUEST);
        drive(&mut serve, Duration::from_secs(10), || {
            socket.received().contains("hello")
        });
        serve.shutdown();
        serve.shutdown();
        let ended = drive(&mut serve, Duration::from_secs(10), || false);
        assert!(matches!(ended, Some(Ok(()))));
        assert!(socket.server_closed());
        assert_eq!(socket.received().matches("HTTP/1.1").count(), 1);
    }

    #[test]
    fn the_shutdown_future_completing_closes_the_connection() {
        let (socket, timer) = (Socket::default(), CountingTimer::default());
        let dispatcher = Dispatcher::new(
            Arc::new(hello),
            DispatchConfig::default(),
            ConnectionInfo::tcp(None, None),
            Instant::now(),
        );
        let mut serve = serve_connection(socket.clone(), dispatcher, timer, std::future::ready(()));
        let mut cx = Context::from_waker(Waker::noop());
        let until = Instant::now() + Duration::from_secs(10);
        let ended = loop {
            if let Poll::Ready(result) = Pin::new(&mut serve).poll(&mut cx) {
                break result;
            }
            assert!(Instant::now() < until, "not closed");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(ended.is_ok());
        assert!(socket.server_closed());
    }

    #[test]
    fn a_peer_that_closes_ends_the_connection() {
        let (socket, timer) = (Socket::default(), CountingTimer::default());
        let mut serve = serve(&socket, &timer, Limits::default());
        socket.send(REQUEST);
        socket.0.lock().unwrap().client_closed = true;
        let ended = drive(&mut serve, Duration::from_secs(10), || false);
        assert!(matches!(ended, Some(Ok(()))));
        assert!(
            socket.received().contains("hello"),
            "answered before closing"
        );
    }
}
