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
