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
    /// Most header fields in one head; also bounds the trailer section. Crossing it answers `431`
    /// (HTTP/2: the stream is reset with `PROTOCOL_ERROR`).
    pub max_headers: usize,
    /// Largest message body accepted, in bytes, whatever its framing. Crossing it answers
    /// `413 Content Too Large` (RFC 9110 §15.5.14); a declared Content-Length over it is refused
    /// before a byte of the body is read. (HTTP/2: a declared length over it answers `413`; a
    /// body without one that grows past it has its stream reset with `CANCEL`.)
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
    /// if no response has started, and closes. On HTTP/2 the silent stream alone is reset
    /// with `CANCEL`, and only while the client has flow-control window to send (a client
    /// waiting for the application to read is not silent).
    pub body_idle_timeout: Duration,
    /// Longest an idle keep-alive connection waits for its next request before it closes.
    pub keep_alive_timeout: Duration,
    /// Longest output may wait in a connection without being taken by `poll_transmit`, as
    /// nginx's `send_timeout`: a peer that stops reading fills the socket, the driver stops
    /// taking output, and without this bound the connection (and the response being
    /// produced for it) would wait for ever. The clock starts when output is queued with
    /// none pending (from the latest time the connection was told) and restarts each time
    /// `poll_transmit` takes it. Crossing it ends the connection: HTTP/1.1 closes at once
    /// (the pending output is dropped), HTTP/2 drops its pending output, queues GOAWAY
    /// `ENHANCE_YOUR_CALM` and closes. WebSocket connections use [`WsLimits::send_timeout`]
    /// (a server built on weft-adapters gives a socket the smaller of the two).
    pub send_timeout: Duration,
    /// Bounds that only HTTP/2 connections use: settings we advertise and the flood defences.
    pub h2: Http2Limits,
    /// Bounds that only WebSocket connections use (`weft_core::ws`).
    pub ws: WsLimits,
}

/// The WebSocket part of [`Limits`] (RFC 6455): frame and message sizes, the outgoing buffer
/// and the close handshake's patience. Crossing a size ends the connection with close code
/// `1009 Message Too Big`; both are checked from frame headers, before any byte is buffered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsLimits {
    /// Largest payload of one received frame, in bytes. Crossing it closes with `1009`. It
    /// bounds no buffer (payloads go into the message, compressed ones are inflated as they
    /// arrive), so it defaults to the message size: a message compressed into one frame may
    /// be a little larger than the message itself.
    pub max_frame_size: usize,
    /// Largest received message (all fragments together, after decompression), in bytes.
    /// Crossing it closes with `1009`.
    pub max_message_size: usize,
    /// Most output bytes buffered before `send_*` accepts only part of a message or refuses
    /// it (backpressure). Control frames owed to the peer (pong, close) may pass it by at
    /// most one frame each.
    pub max_buffered_output: usize,
    /// Payload size of the frames our outgoing messages are cut into.
    pub max_send_frame_size: usize,
    /// Time the peer has to answer our Close with its own before we give up and close.
    pub close_timeout: Duration,
    /// Time between the heartbeat pings an open connection sends (the first one this long
    /// after the handshake), so that a peer that vanished without a Close or a TCP reset is
    /// noticed. `None` (the default), or zero, sends none. A ping that does not fit in
    /// `max_buffered_output` is skipped until the next interval.
    pub ping_interval: Option<Duration>,
    /// Time the peer has to answer a heartbeat ping with a pong (any pong counts: peers may
    /// answer only the latest ping, RFC 6455 §5.5.3). When it passes, the connection fails
    /// with close code `1011` and ends within `close_timeout` even if the peer never reads.
    pub pong_timeout: Duration,
    /// Longest output may wait without being taken by `poll_transmit` (see
    /// [`Limits::send_timeout`]). Crossing it fails the connection with close code `1006`,
    /// reported locally only: a peer that does not read would not get a Close frame either.
    pub send_timeout: Duration,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_frame_size: 16 * 1024 * 1024,
            max_message_size: 16 * 1024 * 1024,
            max_buffered_output: 256 * 1024,
            max_send_frame_size: 64 * 1024,
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            pong_timeout: Duration::from_secs(20),
            send_timeout: Duration::from_secs(60),
        }
    }
}

/// The HTTP/2 part of [`Limits`]: what we advertise in SETTINGS, and one budget per kind of
/// abuse (RFC 9113 §10.5). Crossing a budget ends the connection with GOAWAY
/// `ENHANCE_YOUR_CALM` unless the field says otherwise; budgets "per flood window" are counted
/// over [`Http2Limits::flood_window`] using the time the connection is given. Header-list size
/// uses [`Limits::max_head_size`] (advertised as SETTINGS_MAX_HEADER_LIST_SIZE; a larger decoded
/// list answers that request `431`, a larger encoded block ends the connection) and
/// [`Limits::max_headers`]; request bodies use [`Limits::max_body_size`] (a larger declared
/// `content-length` answers `413`, a body growing past it resets its stream with `CANCEL`);
/// input and output buffers use [`Limits::max_buffered_input`] (at least one whole frame) and
/// [`Limits::max_buffered_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Http2Limits {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise; a stream past it is refused with
    /// RST_STREAM `REFUSED_STREAM`.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise: request-body bytes a client may send on one
    /// stream before the application reads them (at most 2^31 - 1; larger is clamped).
    pub initial_window_size: u32,
    /// Receive window of the whole connection (raised from 65 535 by a WINDOW_UPDATE at start;
    /// 65 535 to 2^31 - 1, clamped): bounds the request-body bytes buffered over all streams
    /// together.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise (16 384 to 16 777 215; clamped into that range).
    pub max_frame_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise: the HPACK dynamic table the client may use.
    pub header_table_size: u32,
    /// Time the client has to acknowledge our SETTINGS; then GOAWAY `SETTINGS_TIMEOUT`.
    pub settings_timeout: Duration,
    /// Longest a connection with no open stream waits for a new one before GOAWAY `NO_ERROR`
    /// and close.
    pub idle_timeout: Duration,
    /// Longest a response may wait for flow-control window (a client that never sends
    /// WINDOW_UPDATE): the stream is reset with `CANCEL`, or the connection closed with
    /// GOAWAY `FLOW_CONTROL_ERROR` when the connection window is the one at zero.
    pub send_stall_timeout: Duration,
    /// Streams a connection serves before it sends GOAWAY and drains (also keeps far away
    /// from stream-identifier exhaustion).
    pub max_streams_per_connection: u32,
    /// The window every flood budget below is counted over.
    pub flood_window: Duration,
    /// Streams the client may reset before their response finished, per flood window
    /// (rapid reset, CVE-2023-44487). A reset stream keeps counting against
    /// `max_concurrent_streams` until the application has taken its reset event.
    pub max_client_resets: u32,
    /// Streams we may reset because the client broke a stream rule, per flood window
    /// (MadeYouReset, CVE-2025-8671). Requests refused for an oversized header list (`431`)
    /// or past SETTINGS_MAX_CONCURRENT_STREAMS count too. A reset stream keeps counting
    /// against `max_concurrent_streams` until the application has taken its reset event.
    pub max_error_resets: u32,
    /// Stream errors caused by the client over the connection's whole life (the same events
    /// `max_error_resets` counts).
    pub max_stream_errors_total: u32,
    /// CONTINUATION frames allowed after one HEADERS or PUSH_PROMISE (CONTINUATION flood,
    /// CVE-2024-27316); the whole encoded block is also bounded by `max_head_size`.
    pub max_continuation_frames: u32,
    /// SETTINGS frames per flood window.
    pub max_settings_frames: u32,
    /// PING frames per flood window.
    pub max_ping_frames: u32,
    /// Empty or tiny frames that carry no progress (DATA or HEADERS or CONTINUATION with
    /// nothing in them and no END flag, zero-length DATA) per flood window.
    pub max_empty_frames: u32,
    /// WINDOW_UPDATE frames per flood window.
    pub max_window_update_frames: u32,
    /// PRIORITY and PRIORITY_UPDATE frames per flood window.
    pub max_priority_frames: u32,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_concurrent_streams: 100,
            initial_window_size: 256 * 1024,
            connection_window_size: 1024 * 1024,
            max_frame_size: 16 * 1024,
            header_table_size: 4096,
            settings_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_stall_timeout: Duration::from_secs(30),
            max_streams_per_connection: 100_000,
            flood_window: Duration::from_secs(10),
            max_client_resets: 200,
            max_error_resets: 100,
            max_stream_errors_total: 1000,
            max_continuation_frames: 16,
            max_settings_frames: 100,
            max_ping_frames: 100,
            max_empty_frames: 1000,
            max_window_update_frames: 10_000,
            max_priority_frames: 10_000,
        }
    }
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
            send_timeout: Duration::from_secs(60),
            h2: Http2Limits::default(),
            ws: WsLimits::default(),
        }
    }
}
