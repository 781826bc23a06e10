//! The mio runtime: one event loop per worker thread on [mio](https://docs.rs/mio) (epoll,
//! kqueue, or IOCP through AFD on Windows). Handler futures are polled on the loop thread that
//! owns their connection and woken through [`mio::Waker`]. Sockets are registered once for both
//! directions, edge-triggered, so readiness costs no system call beyond the wait itself.
//!
//! The loops, accepting and shutdown are shared with the `poll` runtime (feature `poll`), the
//! same server on the `polling` crate; connections, timers and TLS are weft-adapters'
//! readiness driver, which also serves a `mio::Poll` an application owns
//! (`weft_adapters::mio`).

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest as MioInterest, Poll, Token};
use weft_adapters::driver::{Interest, Notify, Ready, Registry};
use weft_service::service::{Service, erase};

use crate::config::{ServerConfig, ServerHandle};
use crate::event_loop::{self, Reactor, WAKE_KEY};

/// Readiness events taken from the OS per wait.
const EVENTS_PER_WAIT: usize = 1024;

/// Serves `service` on mio event loops until shut down; returns once listening.
///
/// ```no_run
/// # use weft_service::body::Body;
/// # fn app() -> impl weft_service::service::Service {
/// #     |_: http::Request<Body>| async { http::Response::new(Body::from("hi")) }
/// # }
/// let config = weft_runtime::ServerConfig::new(["127.0.0.1:8080".parse().unwrap()]);
/// let server = weft_runtime::mio::start(config, app())?;
/// server.join()?;
/// # std::io::Result::Ok(())
/// ```
pub fn start<S: Service>(config: ServerConfig, service: S) -> io::Result<ServerHandle> {
    event_loop::start::<MioReactor>(config, erase(service))
}

/// A `mio::Poll` and its event buffer.
pub(crate) struct MioReactor {
    poll: Poll,
    events: Events,
}

// `TcpStream` is a driver `Socket` and `mio::Waker` a `Notify` in weft-adapters' `mio` module.

impl Registry for MioReactor {
    type Stream = TcpStream;
    type Socket = TcpStream;
    const ONESHOT: bool = false;

    fn add(&mut self, mut stream: TcpStream, key: usize, _: Interest) -> io::Result<TcpStream> {
        self.poll.registry().register(
            &mut stream,
            Token(key),
            MioInterest::READABLE | MioInterest::WRITABLE,
        )?;
        Ok(stream)
    }

    fn rearm(&mut self, _socket: &TcpStream, _key: usize, _interest: Interest) -> io::Result<()> {
        Ok(())
    }

    fn remove(&mut self, mut socket: TcpStream) {
        if let Err(error) = self.poll.registry().deregister(&mut socket) {
            tracing::debug!(%error, "deregistering a connection failed");
        }
    }
}

impl Reactor for MioReactor {
    const NAME: &'static str = "mio";

    type Listener = TcpListener;

    fn new() -> io::Result<Self> {
        Ok(MioReactor {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS_PER_WAIT),
        })
    }

    fn notifier(&mut self) -> io::Result<Box<dyn Notify>> {
        Ok(Box::new(mio::Waker::new(
            self.poll.registry(),
            Token(WAKE_KEY),
        )?))
    }

    fn add_listener(&mut self, listener: StdListener, key: usize) -> io::Result<TcpListener> {
        let mut listener = TcpListener::from_std(listener);
        self.poll
            .registry()
            .register(&mut listener, Token(key), MioInterest::READABLE)?;
        Ok(listener)
    }

    fn rearm_listener(&mut self, _listener: &TcpListener, _key: usize) -> io::Result<()> {
        Ok(())
    }

    fn remove_listener(&mut self, mut listener: TcpListener) {
        if let Err(error) = self.poll.registry().deregister(&mut listener) {
            tracing::debug!(%error, "deregistering a listener failed");
        }
    }

    fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = listener.accept()?;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        Ok((stream, peer))
    }

    fn wait(&mut self, timeout: Option<Duration>, ready: &mut Vec<Ready>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(error) => return Err(error),
        }
        ready.extend(self.events.iter().map(|event| Ready {
            key: event.token().0,
            readable: event.is_readable() || event.is_read_closed() || event.is_error(),
            writable: event.is_writable() || event.is_write_closed() || event.is_error(),
            read_closed: event.is_read_closed(),
        }));
        Ok(())
    }
}
