//! Listening sockets, made the same way for every runtime.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Connections the kernel queues for us while we are not accepting.
const BACKLOG: i32 = 1024;

/// A non-blocking listener on `address` with `SO_REUSEADDR` (so a restarted server can bind
/// while old connections linger in TIME_WAIT).
pub(crate) fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds every address, failing with the address that could not be bound.
pub(crate) fn bind_all(addresses: &[SocketAddr]) -> io::Result<Vec<TcpListener>> {
    addresses
        .iter()
        .map(|&address| {
            bind(address)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))
        })
        .collect()
}

/// What every runtime needs before it serves, made before any thread starts so that a bad
/// certificate or a busy port is reported at once.
pub(crate) struct Prepared {
    /// Bound listeners, in the order of `ServerConfig::addresses`.
    pub(crate) listeners: Vec<TcpListener>,
    /// Their addresses, with the ports the OS picked for port 0.
    pub(crate) local_addrs: Vec<SocketAddr>,
    /// The TLS configuration, when the server serves TLS.
    pub(crate) tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// Loads TLS (first: a mistake there should not leave a port bound) and binds every address.
pub(crate) fn prepare(config: &crate::ServerConfig) -> io::Result<Prepared> {
    let tls = config.tls.as_ref().map(crate::TlsFiles::load).transpose()?;
    let listeners = bind_all(&config.addresses)?;
    let local_addrs = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<io::Result<Vec<_>>>()?;
    Ok(Prepared {
        listeners,
        local_addrs,
        tls,
    })
}

/// Accepts one connection for a readiness loop: non-blocking (a blocking socket would stall the
/// loop, so one that cannot be made non-blocking is refused) and with `TCP_NODELAY`.
#[cfg_attr(not(feature = "poll"), allow(dead_code))]
pub(crate) fn accept_nonblocking(
    listener: &TcpListener,
) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept()?;
    if let Err(error) = stream.set_nonblocking(true) {
        tracing::warn!(%peer, %error, "cannot make a connection non-blocking; closing it");
        return Err(io::ErrorKind::ConnectionAborted.into());
    }
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    Ok((stream, peer))
}
