//! HTTP/2 (RFC 9113): the frame layer, and the server side of a connection on top of it.
//!
//! - [`ServerConnection`] is a whole server connection, sans-IO: preface, SETTINGS, stream
//!   states (§5.1), flow control (§5.2), HPACK field blocks, push, GOAWAY, and the flood
//!   defences of §10.5, every bound taken from [`crate::Limits`].
//! - [`decode`] takes one frame off a byte buffer: it waits for the whole frame, refuses one
//!   larger than our SETTINGS_MAX_FRAME_SIZE before buffering it (§4.2), and checks every
//!   per-type rule of §6 (stream 0 or not, fixed lengths, padding, SETTINGS values, zero
//!   window increments), each failure a [`FrameError`] with its [`ErrorCode`] (§7) and
//!   whether it is a connection or a stream error (§5.4).
//! - [`encode`] writes any [`Frame`] into a caller-owned buffer.
//! - [`PREFACE`] is the client connection preface (§3.4).
//!
//! Field blocks stay HPACK-encoded [`bytes::Bytes`] here; see [`crate::hpack`]. Frame types
//! RFC 9113 does not define come out as [`Frame::Unknown`], for the connection to ignore (§5.5).

mod decode;
mod encode;
mod error;
mod flood;
mod flow;
mod frame;
mod headers;
mod output;
mod priority;
mod server;
mod settings;
mod stream;

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;
pub use error::{ErrorCode, ErrorScope, FrameError, FrameRule, PayloadTooLarge};
pub use frame::{
    DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, Frame, FrameHeader, MAX_PAYLOAD_LEN, Priority,
    Settings, flags, kind,
};
pub use headers::{MalformedHeaders, Protocol, RequestHead};
pub use priority::{PRIORITY_UPDATE, PrioritySignal};
pub use server::{ConnectionError, SendError, ServerConnection, ServerEvent, StreamId};
pub use stream::StreamIdHasher;

/// The client connection preface (RFC 9113 §3.4), sent before the client's first SETTINGS.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
