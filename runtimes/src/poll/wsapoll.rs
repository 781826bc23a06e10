//! The poll runtime's fallback reactor on Windows, on `WSAPoll`, for where `polling` cannot
//! open an IOCP port (its AFD-based backend needs a driver some systems, sandboxes and
//! emulators lack).
//!
//! [`start`](super::start) picks it when `polling::Poller::new()` fails, or when the environment
//! variable `WEFT_POLL_BACKEND` is `wsapoll` (see [`backend`]).
//!
//! # Design
//!
//! `WSAPoll` is level-triggered and stateless: every wait passes the whole set. The reactor keeps
//! its interest set in a [`Registry`] (socket → key and the readiness it is armed for) and rebuilds
//! the `WSAPOLLFD` array from it on each wait. It presents itself to the event loop as one-shot,
//! like `polling`: an event disarms its socket, and the loop arms it again for the readiness it
//! then waits for, so a level-triggered "writable" does not fire on every turn.
//!
//! Wake-ups from other threads go through a connected pair of loopback UDP sockets: the
//! notifier sends a byte, the receiving end sits in every wait's set, and the reactor drains it
//! when it turns readable. A full send buffer means a wake-up is pending already.
//!
//! The cost is linear in the number of registered sockets per wait, which is why this is only the
//! fallback. The one `unsafe` block is the `WSAPoll` call, in [`wsa_poll`].

use std::collections::HashMap;
use std::env::{self, VarError};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::windows::io::{AsRawSocket, RawSocket};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use polling::Poller;
use windows_sys::Win32::Networking::WinSock::{
    POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLRDNORM, POLLWRNORM, SOCKET, SOCKET_ERROR,
    WSAGetLastError, WSAPOLLFD, WSAPoll,
};

use weft_adapters::driver::{Interest, Notify, Ready, Registry as DriverRegistry, Socket};

use crate::event_loop::{Reactor, WAKE_KEY};

/// The environment variable that picks the poll runtime's backend on Windows: unset, empty or
/// `auto` (IOCP through `polling`, falling back to `WSAPoll` when it cannot be opened),
/// `polling` (IOCP only) or `wsapoll` (`WSAPoll` only).
pub(crate) const BACKEND_VAR: &str = "WEFT_POLL_BACKEND";

/// Bytes drained from the wake-up socket per wait at most (it is level-triggered: what is left
/// wakes the next wait).
const WAKE_DRAIN: usize = 64;

/// The readiness a socket is armed for once its event fired: none.
const DISARMED: Interest = Interest {
    read: false,
    write: false,
};

/// The backend the poll runtime runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `polling` (IOCP).
    Polling,
    /// [`WsaPollReactor`].
    WsaPoll,
}

/// The backend asked for by [`BACKEND_VAR`], or else the one that works here: `polling` if it
/// can open a poller, `WSAPoll` otherwise.
pub(crate) fn backend() -> io::Result<Backend> {
    match env::var(BACKEND_VAR) {
        Ok(value) if value == "wsapoll" => return Ok(Backend::WsaPoll),
        Ok(value) if value == "polling" => return Ok(Backend::Polling),
        Ok(value) if value.is_empty() || value == "auto" => {}
        Err(VarError::NotPresent) => {}
        Ok(value) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{BACKEND_VAR}={value:?}: expected auto, polling or wsapoll"),
            ));
        }
        Err(VarError::NotUnicode(_)) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{BACKEND_VAR} is not Unicode: expected auto, polling or wsapoll"),
            ));
        }
    }
    match Poller::new() {
        Ok(_) => Ok(Backend::Polling),
        Err(error) => {
            tracing::warn!(%error, "cannot open an IOCP poller; falling back to WSAPoll");
            Ok(Backend::WsaPoll)
        }
    }
}

/// The interest set of one reactor: each registered socket's key and the readiness it is armed
/// for. Shared with the sockets, which leave it when dropped.
type Registry = Arc<Mutex<HashMap<RawSocket, Entry>>>;

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: usize,
    interest: Interest,
}

fn lock(registry: &Registry) -> MutexGuard<'_, HashMap<RawSocket, Entry>> {
    // The map stays consistent whatever panicked while holding it: every change is one call.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A `WSAPoll` interest set, a wake-up socket pair and the arrays of one wait.
pub(crate) struct WsaPollReactor {
    registry: Registry,
    /// The receiving end of the wake-up pair, in every wait's set.
    wake: UdpSocket,
    /// The sending end, cloned into the notifier.
    wake_sender: UdpSocket,
    /// Rebuilt per wait, kept for their allocations.
    fds: Vec<WSAPOLLFD>,
    keys: Vec<usize>,
}

/// A socket in a reactor's interest set, removed from it when dropped, before the socket closes
/// (so a new socket reusing the handle never meets a stale entry).
pub(crate) struct Registered<T: AsRawSocket> {
    io: T,
    registry: Registry,
}

impl<T: AsRawSocket> Registered<T> {
    fn add(registry: &Registry, io: T, key: usize, interest: Interest) -> Self {
        let previous = lock(registry).insert(io.as_raw_socket(), Entry { key, interest });
        debug_assert!(previous.is_none(), "a socket registered twice");
        Registered {
            io,
            registry: Arc::clone(registry),
        }
    }

    fn arm(&self, key: usize, interest: Interest) -> io::Result<()> {
        match lock(&self.registry).get_mut(&self.io.as_raw_socket()) {
            Some(entry) => {
                *entry = Entry { key, interest };
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "socket not registered with this reactor",
            )),
        }
    }
}

impl<T: AsRawSocket> Drop for Registered<T> {
    fn drop(&mut self) {
        lock(&self.registry).remove(&self.io.as_raw_socket());
    }
}

impl Read for Registered<TcpStream> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.io).read(buf)
    }
}

impl Write for Registered<TcpStream> {
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

impl Socket for Registered<TcpStream> {
    fn shutdown_write(&self) -> io::Result<()> {
        self.io.shutdown(Shutdown::Write)
    }
}

/// Wakes a reactor's wait: a byte to its wake-up socket.
struct WakeSender(UdpSocket);

impl Notify for WakeSender {
    fn notify(&self) -> io::Result<()> {
        match self.0.send(&[1]) {
            Ok(_) => Ok(()),
            // The receiver's buffer is full of wake-ups not yet drained: one is pending.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// A `WSAPOLLFD` waiting for `events` on `socket`.
fn pollfd(socket: RawSocket, events: i16) -> WSAPOLLFD {
    WSAPOLLFD {
        fd: socket as SOCKET,
        events,
        revents: 0,
    }
}

/// `timeout` in whole milliseconds, rounded up (a deadline is never woken early into a busy
/// turn); `-1`, forever, for none.
fn timeout_ms(timeout: Option<Duration>) -> i32 {
    timeout.map_or(-1, |timeout| {
        i32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    })
}

/// Calls `WSAPoll` on `fds`; returns how many have events.
#[allow(unsafe_code)]
fn wsa_poll(fds: &mut [WSAPOLLFD], timeout: i32) -> io::Result<usize> {
    let count = u32::try_from(fds.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many sockets to poll"))?;
    // SAFETY: `fds` is a valid, exclusively borrowed array of `count` initialised `WSAPOLLFD`s
    // (a `repr(C)` struct of plain integers) for the whole call, which writes only their
    // `revents`. `WSAGetLastError` only reads the calling thread's last error, right after the
    // failing call. Winsock is initialised: std did it when it created the sockets polled.
    let (result, error) = unsafe {
        let result = WSAPoll(fds.as_mut_ptr(), count, timeout);
        let error = if result == SOCKET_ERROR {
            WSAGetLastError()
        } else {
            0
        };
        (result, error)
    };
    match usize::try_from(result) {
        Ok(ready) => Ok(ready),
        Err(_) => Err(io::Error::from_raw_os_error(error)),
    }
}

impl WsaPollReactor {
    /// Empties the wake-up socket (at most [`WAKE_DRAIN`] datagrams; the rest wake the next wait).
    fn drain_wake(&self) {
        let mut buf = [0; 16];
        for _ in 0..WAKE_DRAIN {
            match self.wake.recv(&mut buf) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    tracing::debug!(%error, "reading the wake-up socket failed");
                    break;
                }
            }
        }
    }
}

impl DriverRegistry for WsaPollReactor {
    type Stream = TcpStream;
    type Socket = Registered<TcpStream>;
    const ONESHOT: bool = true;

    fn add(
        &mut self,
        stream: TcpStream,
        key: usize,
        interest: Interest,
    ) -> io::Result<Self::Socket> {
        Ok(Registered::add(&self.registry, stream, key, interest))
    }

    fn rearm(&mut self, socket: &Self::Socket, key: usize, interest: Interest) -> io::Result<()> {
        socket.arm(key, interest)
    }

    fn remove(&mut self, socket: Self::Socket) {
        drop(socket);
    }
}

impl Reactor for WsaPollReactor {
    const NAME: &'static str = "poll";

    type Listener = Registered<TcpListener>;

    fn new() -> io::Result<Self> {
        let wake = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let wake_sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        wake_sender.connect(wake.local_addr()?)?;
        // Connected both ways: the receiver takes datagrams from its sender only.
        wake.connect(wake_sender.local_addr()?)?;
        wake.set_nonblocking(true)?;
        wake_sender.set_nonblocking(true)?;
        Ok(WsaPollReactor {
            registry: Arc::default(),
            wake,
            wake_sender,
            fds: Vec::new(),
            keys: Vec::new(),
        })
    }

    fn notifier(&mut self) -> io::Result<Box<dyn Notify>> {
        Ok(Box::new(WakeSender(self.wake_sender.try_clone()?)))
    }

    fn add_listener(&mut self, listener: TcpListener, key: usize) -> io::Result<Self::Listener> {
        Ok(Registered::add(
            &self.registry,
            listener,
            key,
            Interest::READ,
        ))
    }

    fn rearm_listener(&mut self, listener: &Self::Listener, key: usize) -> io::Result<()> {
        listener.arm(key, Interest::READ)
    }

    fn remove_listener(&mut self, listener: Self::Listener) {
        drop(listener);
    }

    fn accept(listener: &Self::Listener) -> io::Result<(TcpStream, SocketAddr)> {
        crate::listener::accept_nonblocking(&listener.io)
    }

    fn wait(&mut self, timeout: Option<Duration>, ready: &mut Vec<Ready>) -> io::Result<()> {
        self.fds.clear();
        self.keys.clear();
        self.fds.push(pollfd(self.wake.as_raw_socket(), POLLRDNORM));
        self.keys.push(WAKE_KEY);
        for (&socket, entry) in lock(&self.registry).iter() {
            let mut events = 0;
            if entry.interest.read {
                events |= POLLRDNORM;
            }
            if entry.interest.write {
                events |= POLLWRNORM;
            }
            if events != 0 {
                self.fds.push(pollfd(socket, events));
                self.keys.push(entry.key);
            }
        }

        match wsa_poll(&mut self.fds, timeout_ms(timeout)) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(error) => return Err(error),
        }

        let mut registry = lock(&self.registry);
        for (fd, &key) in self.fds.iter().zip(&self.keys) {
            if fd.revents == 0 {
                continue;
            }
            if key == WAKE_KEY {
                self.drain_wake();
                continue;
            }
            // Errors and hang-ups count as both: the next read or write reports them.
            let failed = fd.revents & (POLLERR | POLLHUP | POLLNVAL) != 0;
            // One-shot: the loop arms the socket again for what it waits for next.
            if let Some(entry) = registry.get_mut(&(fd.fd as RawSocket)) {
                entry.interest = DISARMED;
            }
            ready.push(Ready {
                key,
                readable: failed || fd.revents & POLLIN != 0,
                writable: failed || fd.revents & POLLOUT != 0,
                read_closed: false,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_milliseconds() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(5))), 5);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), i32::MAX);
    }
}
