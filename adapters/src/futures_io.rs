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
pub async fn serve_connection<IO, T>(
    io: IO,
    dispatcher: Dispatcher,
    timer: &T,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    T: Timer,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut shutdown_seen = false;
    let mut connection = Connection {
        io,
        dispatcher,
        sleep: None,
        closing: false,
    };
    std::future::poll_fn(|cx| {
        if !shutdown_seen && shutdown.as_mut().poll(cx).is_ready() {
            shutdown_seen = true;
            connection.dispatcher.shutdown();
        }
        connection.poll_drive(cx, timer)
    })
    .await
}

struct Connection<IO> {
    io: IO,
    /// Holds the output too: what the socket did not accept is handed back to it
    /// ([`Dispatcher::unsent`]), so that it bounds how long that may wait.
    dispatcher: Dispatcher,
    /// The armed timer and the deadline it was armed for.
    sleep: Option<(Instant, Sleep)>,
    closing: bool,
}

impl<IO> Connection<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_drive<T: Timer>(&mut self, cx: &mut Context<'_>, timer: &T) -> Poll<io::Result<()>> {
        for _ in 0..ROUNDS_BEFORE_YIELD {
            let mut moved = self.dispatcher.poll(cx);
            moved |= match self.poll_write(cx) {
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
            moved |= match self.poll_read(cx) {
                Poll::Ready(Ok(read)) => read,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => false,
            };
            moved |= self.poll_timer(cx, timer);
            if !moved {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes queued output, handing back to the dispatcher what the socket does not accept;
    /// `Ready(true)` when bytes were written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let now = Instant::now();
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
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
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
                    let taken = self.dispatcher.receive(Instant::now(), &buffer[..n]);
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

    /// Keeps a timer armed for the dispatcher's deadline; true when it fired.
    fn poll_timer<T: Timer>(&mut self, cx: &mut Context<'_>, timer: &T) -> bool {
        let Some(deadline) = self.dispatcher.poll_timeout() else {
            self.sleep = None;
            return false;
        };
        if self
            .sleep
            .as_ref()
            .is_none_or(|(armed, _)| *armed != deadline)
        {
            self.sleep = Some((deadline, timer.sleep_until(deadline)));
        }
        let Some((_, sleep)) = &mut self.sleep else {
            return false;
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.sleep = None;
        self.dispatcher.handle_timeout(Instant::now());
        true
    }
}
