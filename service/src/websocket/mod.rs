//! WebSocket for applications: a [`Service`](crate::service::Service) accepts an upgrade and
//! gets an async [`WebSocket`], over HTTP/1.1 (`101 Switching Protocols`) or HTTP/2 (RFC 8441
//! extended CONNECT, answered `200`), on every runtime.
//!
//! - [`upgrade`]: [`WebSocketUpgrade`] checks the handshake in a request; the handler decides
//!   (authentication, subprotocol, compression, heartbeat) before anything is switched, and
//!   answers either a refusal (`401`, `403`, ...) or [`WebSocketUpgrade::on_upgrade`], whose
//!   response carries the socket's handler to the server.
//! - [`socket`]: the [`WebSocket`] the handler gets (receive, send with backpressure, close),
//!   its cloneable [`WebSocketSender`], and the server's end of it ([`SocketLink`]).
//!
//! Broadcast to many sockets (a hub with rooms) is the framework's, `weft::websocket::Hub`,
//! built on [`WebSocketSender::try_send`] and [`WebSocketSender::close_now`].
//!
//! This is not protocol code: the WebSocket protocol itself is the sans-IO [`weft_core::ws`],
//! which the server runs between the socket and the [`SocketLink`]. This module is part of the
//! contract between any server and any application, like [`crate::body`].

pub mod socket;
pub mod upgrade;

pub use socket::{
    Closed, Outgoing, QueueSizes, SocketId, SocketLink, TrySendError, WebSocket, WebSocketSender,
};
pub use upgrade::{
    HandshakeRejection, Heartbeat, PendingSocket, SocketFuture, StartedSocket, WebSocketUpgrade,
};
