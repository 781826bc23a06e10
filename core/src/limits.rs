//! Every bound the protocol core enforces, in one place.
//!
//! A connection never holds more memory or waits longer than these numbers allow, whatever its
//! peer sends. The defaults are safe for a public server; raise them per deployment, never
//! remove them.

use std::time::Duration;

/// Bounds applied by every connection state machine in the core.
///
/// Each field names the answer a peer gets for crossing it. Construct with
/// [`Limits::default`] and adjust fields:
///
/// ```
/// let mut limits = weft_core::Limits::default();
/// limits.max_body_size = 64 * 1024 * 1024;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest request-target (the URI in the request line), in bytes. Crossing it answers
    /// `414 URI Too Long` (RFC 9112 §3: servers ought to accept at least 8000 octets).
    pub max_request_target_len: usize,
    /// Largest request or response head (start line plus header fields plus the blank line),
    /// in bytes. Crossing it answers `431 Request Header Fields Too Large` (RFC 6585 §5).
    pub max_head_size: usize,
    /// Most header fields in one head; also bounds the trailer section. Crossing it answers `431`.
    pub max_headers: usize,
    /// Largest message body accepted, in bytes, whatever its framing. Crossing it answers
    /// `413 Content Too Large` (RFC 9110 §15.5.14); a declared Content-Length over it is refused
    /// before a byte of the body is read.
    pub max_body_size: u64,
    /// Longest chunk-size line (hex size plus chunk extensions), in bytes (RFC 9112 §7.1.1).
    /// Crossing it answers `400`.
    pub max_chunk_line_len: usize,
    /// Total bytes of chunk extensions accepted over one body. Extensions carry nothing we use,
    /// so a peer sending many of them is only spending our CPU. Crossing it answers `400`.
    pub max_chunk_extensions_size: usize,
    /// Largest trailer section, in bytes (RFC 9112 §7.1.2). Crossing it answers `431`.
    pub max_trailer_size: usize,
    /// Largest unread request body the server discards to keep a connection alive when the
    /// application answered without reading it. A longer remainder closes the connection instead.
    pub max_discard_body: u64,
    /// Most input bytes buffered while the connection cannot use them (a pipelined request
    /// waiting for the current response). Past it, `receive` accepts no more: backpressure.
    pub max_buffered_input: usize,
    /// Most output bytes buffered before `send_data` accepts only part of what it is given.
    pub max_buffered_output: usize,
    /// Time allowed from the first byte of a request head to its last (slowloris defence);
    /// for a connection's first request, from the moment it was accepted. Crossing it answers
    /// `408 Request Timeout` and closes (or closes quietly when not a byte has arrived).
    pub head_timeout: Duration,
    /// Longest silence allowed while a request body is being read. Crossing it answers `408`
    /// if no response has started, and closes.
    pub body_idle_timeout: Duration,
    /// Longest an idle keep-alive connection waits for its next request before it closes.
    pub keep_alive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_target_len: 8 * 1024,
            max_head_size: 16 * 1024,
            max_headers: 100,
            max_body_size: 8 * 1024 * 1024,
            max_chunk_line_len: 1024,
            max_chunk_extensions_size: 16 * 1024,
            max_trailer_size: 8 * 1024,
            max_discard_body: 64 * 1024,
            max_buffered_input: 64 * 1024,
            max_buffered_output: 256 * 1024,
            head_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(5),
        }
    }
}
