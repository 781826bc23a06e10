//! weft-service: what every weft server promises every application, whatever the runtime.
//!
//! - [`service`]: the [`Service`](service::Service) contract (a request in, a response future
//!   out) and [`ConnectionInfo`](service::ConnectionInfo);
//! - [`body`]: [`Body`](body::Body), streaming both ways with backpressure, `Send + Sync`;
//! - [`file`](mod@file): [`FileRegion`](file::FileRegion), a region of an open file sent as a body
//!   ([`Body::file`](body::Body::file)), which a driver may send with `sendfile(2)`;
//! - [`request`]: [`RequestTarget`](request::RequestTarget), what a request was addressed
//!   to, the same over HTTP/1.1 and HTTP/2;
//! - [`upgrade`]: [`OnUpgrade`](upgrade::OnUpgrade), the connection after an accepted
//!   HTTP/1.1 upgrade or CONNECT that is not a WebSocket;
//! - [`websocket`]: the WebSocket hand-off (an upgrade checked in the handler, the async socket
//!   and its senders; broadcast to many sockets is the framework's `weft::websocket::Hub`);
//! - [`runtime`]: the runtime's services for applications (detached tasks, timers, timeouts,
//!   blocking work) and the server's [`ShutdownSignal`](runtime::ShutdownSignal), whatever the
//!   runtime.
//!
//! This crate sits between the sans-IO protocol core (`weft-core`), which knows no application,
//! and the adapters and runtimes, which know sockets. It has no sockets and names no runtime.
#![forbid(unsafe_code)]

pub mod body;
pub mod file;
pub mod request;
pub mod runtime;
pub mod service;
pub mod upgrade;
pub mod websocket;
