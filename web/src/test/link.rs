//! One in-memory connection between a test client and a [`Dispatcher`]: the bytes each side
//! sends wait in a [`Pipe`], and [`Link::drive`] moves them, polls the dispatcher and the
//! client, and hands the dispatcher its timeouts, on the calling thread, until the client is
//! done or the deadline passes. No socket, no thread of its own.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use weft_adapters::{DispatchConfig, Dispatcher};
use weft_service::runtime::RuntimeHandle;
use weft_service::service::{ConnectionInfo, DynService};

/// Bytes the client may have waiting for the dispatcher, or the dispatcher for the client,
/// before the side that writes is held back (backpressure, as a socket buffer would).
const PIPE_BUFFER: usize = 1024 * 1024;

/// The bytes in flight between the client and the dispatcher, both ways.
#[derive(Default)]
pub(crate) struct Pipe {
    /// Written by the client, not taken by the dispatcher yet.
    pub(crate) to_server: BytesMut,
    /// Written by the dispatcher, not read by the client yet.
    pub(crate) to_client: BytesMut,
    /// The dispatcher closed the connection: once `to_client` is read, the client reads EOF.
    pub(crate) server_closed: bool,
    /// The client shut down its writing side.
    pub(crate) client_closed: bool,
    /// The client's task, waiting for bytes or for room.
    waker: Option<Waker>,
}

impl Pipe {
    /// Whether the client may write more now.
    pub(crate) fn has_room(&self) -> bool {
        self.to_server.len() < PIPE_BUFFER
    }

    fn wake_client(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// Turns that moved something before [`Link::drive_async`] lets other tasks run.
const TURNS_PER_POLL: usize = 64;

/// A timer of the runtime, boxed.
type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What one round of a link did.
enum Turn<T> {
    /// The client is done.
    Ready(T),
    /// Bytes moved or the dispatcher made progress: go round again.
    Moved,
    /// Only a waker or a timer can move it now.
    Idle,
}

/// The pipe, shared by the link and the client's I/O object.
pub(crate) type SharedPipe = Arc<Mutex<Pipe>>;

/// Locks the pipe; a panic elsewhere does not make its bytes unusable.
pub(crate) fn lock(pipe: &SharedPipe) -> MutexGuard<'_, Pipe> {
    pipe.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The waker every poll on a link gets: it notes the wake-up and unparks the driving thread.
struct LoopWaker {
    woken: AtomicBool,
    thread: Mutex<Thread>,
}

impl Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unpark();
    }
}

/// A dispatcher serving one in-memory connection, and the pipe to its client.
pub(crate) struct Link {
    dispatcher: Dispatcher,
    pipe: SharedPipe,
    waker: Arc<LoopWaker>,
    /// The dispatcher was told the client closed its side.
    eof_given: bool,
    /// The timer of [`drive_async`](Self::drive_async).
    runtime: RuntimeHandle,
}

impl Link {
    /// A new connection to `service`, accepted now, from `peer`.
    pub(crate) fn new(
        service: Arc<dyn DynService>,
        config: DispatchConfig,
        peer: std::net::SocketAddr,
    ) -> Link {
        let runtime = config
            .runtime
            .clone()
            .unwrap_or_else(weft_runtime::background_runtime);
        let peer = Some(peer);
        let local = Some(([127, 0, 0, 1], 80).into());
        let info = ConnectionInfo::tcp(peer, local);
        Link {
            dispatcher: Dispatcher::new(service, config, info, Instant::now()),
            pipe: SharedPipe::default(),
            waker: Arc::new(LoopWaker {
                woken: AtomicBool::new(false),
                thread: Mutex::new(std::thread::current()),
            }),
            eof_given: false,
            runtime,
        }
    }

    /// The pipe, for the client side.
    pub(crate) fn pipe(&self) -> &SharedPipe {
        &self.pipe
    }

    /// Runs the connection on this thread until `client` is ready, and returns its output, or
    /// `None` once `deadline` has passed.
    ///
    /// `client` is polled at every turn: it reads `to_client` and writes `to_server` of the
    /// pipe. Between turns the thread parks until a waker fires (the application's, or the
    /// client's own), the dispatcher's next timeout, or the deadline; it never spins.
    pub(crate) fn drive<T>(
        &mut self,
        deadline: Instant,
        mut client: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Option<T> {
        *self
            .waker
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = std::thread::current();
        let waker = Waker::from(Arc::clone(&self.waker));
        let mut cx = Context::from_waker(&waker);
        loop {
            let turn = self.turn(&mut cx, &mut client);
            let now = Instant::now();
            match turn {
                Turn::Ready(output) => return Some(output),
                _ if now >= deadline => return None,
                Turn::Moved => {}
                Turn::Idle => {
                    if !self.waker.woken.swap(false, Ordering::SeqCst) {
                        let until = self.wake_at(deadline);
                        std::thread::park_timeout(until.saturating_duration_since(now));
                    }
                }
            }
        }
    }

    /// [`drive`](Self::drive) as a future, for async tests: it waits for wakers and for the
    /// runtime's timer instead of parking the thread, and yields to the executor every
    /// [`TURNS_PER_POLL`] turns that moved.
    pub(crate) async fn drive_async<T>(
        &mut self,
        deadline: Instant,
        mut client: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Option<T> {
        let mut timer: Option<(Instant, Sleep)> = None;
        std::future::poll_fn(|cx| {
            for _ in 0..TURNS_PER_POLL {
                let turn = self.turn(cx, &mut client);
                let now = Instant::now();
                match turn {
                    Turn::Ready(output) => return Poll::Ready(Some(output)),
                    _ if now >= deadline => return Poll::Ready(None),
                    Turn::Moved => continue,
                    Turn::Idle => {}
                }
                let until = self.wake_at(deadline);
                if timer.as_ref().is_none_or(|(at, _)| *at != until) {
                    timer = Some((until, Box::pin(self.runtime.sleep_until(until))));
                }
                if let Some((_, sleep)) = &mut timer {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                timer = None;
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    /// When an idle connection must be looked at again at the latest.
    fn wake_at(&self, deadline: Instant) -> Instant {
        match self.dispatcher.poll_timeout() {
            Some(due) => due.min(deadline),
            None => deadline,
        }
    }

    /// One round: the client, the bytes both ways, the dispatcher, its timers.
    fn turn<T>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Turn<T> {
        let before = self.pipe_lengths();
        if let Poll::Ready(output) = client(cx) {
            return Turn::Ready(output);
        }
        let mut moved = self.pipe_lengths() != before;
        moved |= self.feed_dispatcher();
        moved |= self.dispatcher.poll(cx);
        moved |= self.take_output();
        let now = Instant::now();
        if self.dispatcher.poll_timeout().is_some_and(|due| due <= now) {
            self.dispatcher.handle_timeout(now);
            moved = true;
        }
        if self.dispatcher.is_closed() {
            let mut pipe = lock(&self.pipe);
            if !pipe.server_closed {
                pipe.server_closed = true;
                pipe.wake_client();
                moved = true;
            }
        }
        if moved { Turn::Moved } else { Turn::Idle }
    }

    fn pipe_lengths(&self) -> (usize, usize, bool) {
        let pipe = lock(&self.pipe);
        (
            pipe.to_server.len(),
            pipe.to_client.len(),
            pipe.client_closed,
        )
    }

    /// The client's bytes into the dispatcher, as far as it wants them.
    fn feed_dispatcher(&mut self) -> bool {
        let mut pipe = lock(&self.pipe);
        let mut moved = false;
        while !pipe.to_server.is_empty() && self.dispatcher.wants_read() {
            let room = self.dispatcher.receive_capacity().min(pipe.to_server.len());
            if room == 0 {
                break;
            }
            let taken = self
                .dispatcher
                .receive(Instant::now(), &pipe.to_server[..room]);
            if taken == 0 {
                break;
            }
            pipe.to_server.advance(taken);
            moved = true;
        }
        if moved {
            pipe.wake_client();
        }
        if pipe.client_closed && pipe.to_server.is_empty() && !self.eof_given {
            self.eof_given = true;
            self.dispatcher.receive_eof();
            moved = true;
        }
        moved
    }

    /// The dispatcher's output to the client, while the pipe has room for it.
    fn take_output(&mut self) -> bool {
        let mut pipe = lock(&self.pipe);
        let mut moved = false;
        while pipe.to_client.len() < PIPE_BUFFER {
            let Some(bytes) = self.dispatcher.poll_transmit(Instant::now()) else {
                break;
            };
            pipe.to_client.extend_from_slice(&bytes);
            moved = true;
        }
        if moved {
            pipe.wake_client();
        }
        moved
    }
}

/// The client's end of a link as tokio I/O, for the `h2` crate's client: reads take what the
/// dispatcher wrote, writes go to the dispatcher.
pub(crate) struct PipeIo(pub(crate) SharedPipe);

impl tokio::io::AsyncRead for PipeIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut pipe = lock(&self.0);
        if pipe.to_client.is_empty() {
            if pipe.server_closed {
                return Poll::Ready(Ok(())); // EOF
            }
            pipe.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.remaining().min(pipe.to_client.len());
        buf.put_slice(&pipe.to_client[..n]);
        pipe.to_client.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for PipeIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.0);
        if pipe.server_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if !pipe.has_room() {
            pipe.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        pipe.to_server.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.0).client_closed = true;
        Poll::Ready(Ok(()))
    }
}
