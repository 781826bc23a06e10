//! WebSocket (RFC 6455), sans-IO: the opening handshake, frames, messages and the close
//! handshake, for the server and the client role, and permessage-deflate (RFC 7692).
//!
//! - [`handshake`]: validate an upgrade request (HTTP/1.1, or HTTP/2 extended CONNECT of
//!   RFC 8441), compute `Sec-WebSocket-Accept`, build the answer; the client's side too.
//! - [`frame`]: the frame decoder and encoder and the masking transform.
//! - [`Connection`]: one WebSocket after the handshake, in the core's handle/poll shape.

mod close;
mod connection;
pub mod deflate;
pub mod frame;
pub mod handshake;
mod utf8;

pub use close::CloseCode;
pub use connection::{
    Connection, Event, Message, MessageKind, ProtocolError, Role, SendError, WHOLE_FRAME_MAX,
};
pub use utf8::{InvalidUtf8, Utf8Validator};

#[cfg(test)]
mod tests;
