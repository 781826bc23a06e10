//! weft-adapters: drive weft's sans-IO connections over I/O that someone else owns.
//!
//! [`Dispatcher`] joins a connection to a [`Service`](weft_service::service::Service), speaking
//! HTTP/1.1 ([`weft_core::h1::ServerConnection`]) or HTTP/2 ([`weft_core::h2::ServerConnection`])
//! as each connection chooses (TLS ALPN, the HTTP/2 preface, or `Upgrade: h2c`): it turns
//! request events into `http::Request`s with streaming bodies, runs the application's futures
//! (one per HTTP/2 stream), and streams the responses back, with backpressure both ways. It
//! still owns no I/O: each adapter below only moves bytes, time and wake-ups between it and one
//! kind of I/O, and serves both protocols without knowing which.
//!
//! - `blocking` (feature `blocking`): blocking `std::io::Read + Write` with read timeouts,
//!   a thread per connection or a pool that parks quiet connections elsewhere.
//! - `futures_io` (feature `futures-io`): `AsyncRead + AsyncWrite`, for smol, async-std,
//!   and tokio through its compat layer.
//! - [`file`](mod@file): file response bodies sent straight to the socket (`sendfile(2)` on Linux), for
//!   the cleartext HTTP/1.1 drivers ([`Dispatcher::poll_transmit_file`]).
//! - `driver` (feature `driver`): the readiness driver, a set of connections (TLS included)
//!   moved forward by readiness events, wake-ups and deadlines, for any event loop: weft's
//!   `mio` and `poll` runtimes run on it.
//! - `mio` (feature `mio`): the driver on a `mio::Poll` the application owns, next to its own
//!   sources; see `examples/embed_mio.rs` (a loop serving HTTP and TLS beside a UDP socket).

#[cfg(feature = "blocking")]
pub mod blocking;
mod date;
mod dispatch;
#[cfg(feature = "driver")]
pub mod driver;
pub mod file;
#[cfg(feature = "futures-io")]
pub mod futures_io;
#[cfg(feature = "mio")]
pub mod mio;

pub use dispatch::{DispatchConfig, Dispatcher};
