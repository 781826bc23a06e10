//! weft-core: the sans-IO protocol core of weft.
//!
//! Pure state machines that parse and produce HTTP/1.1 ([`h1`]), HPACK ([`hpack`]), HTTP/2
//! (frames and the server connection, [`h2`]) and WebSocket (handshake, frames, connection and
//! permessage-deflate, [`ws`]), with no socket, clock or thread inside: bytes in through
//! `receive`, events out through `poll_event`, bytes out through `poll_transmit`, and time in
//! through `handle_timeout`. Plug them into any event loop. Every bound they enforce is in
//! [`Limits`].
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod h1;
pub mod h2;
pub mod hpack;
mod limits;
pub mod multipart;
pub mod ws;

pub use limits::{Http2Limits, Limits, WsLimits};

#[cfg(test)]
#[path = "../tests/support/clock.rs"]
mod test_clock;
