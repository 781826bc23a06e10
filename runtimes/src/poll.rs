//! The poll runtime, the portable fallback: the event loops of the `mio` runtime (feature `mio`)
//! on the [`polling`](https://docs.rs/polling) crate, which uses epoll, kqueue, event ports,
//! IOCP on Windows, and `poll(2)` on other Unix systems.
//!
//! Sources are registered one-shot, the one mode every `polling` backend has (IOCP has no
//! edge-triggered mode): each event disarms its socket, and the loop arms it again for exactly
//! the readiness it then waits for. That costs a system call per event more than the mio
//! runtime's edge-triggered registration, the price of running everywhere.
//!
//! On Windows, where `polling` cannot open an IOCP port, the loops run on a `WSAPoll` reactor
//! instead. The environment variable `WEFT_POLL_BACKEND` picks the backend there: unset, empty
//! or `auto` (IOCP, falling back to `WSAPoll`), `polling` (IOCP only) or `wsapoll` (`WSAPoll`
//! only). Elsewhere it is ignored.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use polling::{AsRawSource, AsSource, Event, Events, Poller};
use weft_service::service::{Service, erase};

use weft_adapters::driver::{Interest, Notify, Ready, Registry, Socket};

use crate::config::{ServerConfig, ServerHandle};
use crate::event_loop::{self, Reactor};

#[cfg(windows)]
mod wsapoll;

/// Readiness events taken from the OS per wait.
const EVENTS_PER_WAIT: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// Serves `service` on `polling` event loops until shut down; returns once listening.
///
/// ```no_run
/// # use weft_service::body::Body;
/// # fn app() -> impl weft_service::service::Service {
/// #     |_: http::Request<Body>| async { http::Response::new(Body::from("hi")) }
/// # }
/// let config = weft_runtime::ServerConfig::new(["127.0.0.1:8080".parse().unwrap()]);
/// let server = weft_runtime::poll::start(config, app())?;
/// server.join()?;
/// # std::io::Result::Ok(())
/// ```
pub fn start<S: Service>(config: ServerConfig, service: S) -> io::Result<ServerHandle> {
    #[cfg(windows)]
    if wsapoll::backend()? == wsapoll::Backend::WsaPoll {
        tracing::info!("poll runtime: WSAPoll backend");
        return event_loop::start::<wsapoll::WsaPollReactor>(config, erase(service));
    }
    event_loop::start::<PollReactor>(config, erase(service))
}

/// A `polling::Poller` and its event buffer.
pub(crate) struct PollReactor {
    poller: Arc<Poller>,
    events: Events,
}

/// A socket registered with a poller, and deleted from it when dropped: `polling` requires a
/// source to leave the poller before it is closed, and this type makes that hold on every path,
/// unwinding included.
pub(crate) struct Polled<T: AsSource> {
    io: T,
    poller: Arc<Poller>,
}

impl<T: AsSource> Polled<T>
where
    for<'a> &'a T: AsRawSource,
{
    #[allow(unsafe_code)]
    fn add(poller: &Arc<Poller>, io: T, interest: Event) -> io::Result<Self> {
        // SAFETY: `Poller::add` requires the source to be deleted from the poller before it is
        // dropped. `io` is moved into a `Polled` right after, whose `Drop` deletes it from this
        // very poller before the `io` field is dropped, and nothing takes `io` out of a
        // `Polled`. If `add` fails, `io` was not added.
        unsafe { poller.add(&io, interest)? };
        Ok(Polled {
            io,
            poller: Arc::clone(poller),
        })
    }
}

impl<T: AsSource> Drop for Polled<T> {
    fn drop(&mut self) {
        if let Err(error) = self.poller.delete(&self.io) {
            tracing::debug!(%error, "deleting a socket from the poller failed");
        }
    }
}

impl Read for Polled<TcpStream> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.io).read(buf)
    }
}

impl Write for Polled<TcpStream> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.io).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&self.io).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Polled<TcpStream> {
    fn shutdown_write(&self) -> io::Result<()> {
        self.io.shutdown(Shutdown::Write)
    }

    fn transmit_file(&mut self, region: &weft_service::file::FileRegion) -> io::Result<usize> {
        weft_adapters::file::transmit(&mut self.io, region)
    }

    fn sync_cork(&mut self, cork: &mut weft_adapters::file::Cork, file_follows: bool) {
        cork.sync(&self.io, file_follows);
    }
}

/// Wakes a poller's wait.
struct PollNotifier(Arc<Poller>);

impl Notify for PollNotifier {
    fn notify(&self) -> io::Result<()> {
        self.0.notify()
    }
}

fn event(key: usize, interest: Interest) -> Event {
    Event::new(key, interest.read, interest.write)
}

impl Registry for PollReactor {
    type Stream = TcpStream;
    type Socket = Polled<TcpStream>;
    const ONESHOT: bool = true;

    fn add(
        &mut self,
        stream: TcpStream,
        key: usize,
        interest: Interest,
    ) -> io::Result<Self::Socket> {
        Polled::add(&self.poller, stream, event(key, interest))
    }

    fn rearm(&mut self, socket: &Self::Socket, key: usize, interest: Interest) -> io::Result<()> {
        self.poller.modify(&socket.io, event(key, interest))
    }

    fn remove(&mut self, socket: Self::Socket) {
        drop(socket);
    }
}

impl Reactor for PollReactor {
    const NAME: &'static str = "poll";

    type Listener = Polled<TcpListener>;

    fn new() -> io::Result<Self> {
        Ok(PollReactor {
            poller: Arc::new(Poller::new()?),
            events: Events::with_capacity(EVENTS_PER_WAIT),
        })
    }

    fn notifier(&mut self) -> io::Result<Box<dyn Notify>> {
        Ok(Box::new(PollNotifier(Arc::clone(&self.poller))))
    }

    fn add_listener(&mut self, listener: TcpListener, key: usize) -> io::Result<Self::Listener> {
        Polled::add(&self.poller, listener, Event::readable(key))
    }

    fn rearm_listener(&mut self, listener: &Self::Listener, key: usize) -> io::Result<()> {
        self.poller.modify(&listener.io, Event::readable(key))
    }

    fn remove_listener(&mut self, listener: Self::Listener) {
        drop(listener);
    }

    fn accept(listener: &Self::Listener) -> io::Result<(TcpStream, SocketAddr)> {
        crate::listener::accept_nonblocking(&listener.io)
    }

    fn wait(&mut self, timeout: Option<Duration>, ready: &mut Vec<Ready>) -> io::Result<()> {
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(error) => return Err(error),
        }
        ready.extend(self.events.iter().map(|event| Ready {
            key: event.key,
            readable: event.readable,
            writable: event.writable,
            // One-shot: a socket armed again reports an end still unread.
            read_closed: false,
        }));
        Ok(())
    }
}
