//! The server side of an HTTP/2 connection (RFC 9113), sans-IO, in the same handle/poll shape
//! as [`crate::h1::ServerConnection`].
//!
//! The connection is split by concern: [`receive`](self::receive) turns the client's frames
//! into events and stream transitions, [`respond`](self::respond) writes the application's
//! answers, [`lifecycle`](self::lifecycle) holds errors, resets and timers,
//! [`shutdown`](self::shutdown) the two-step graceful GOAWAY. The parts
//! it is built from live beside it: stream states and the store (`stream`), flow-control
//! windows (`flow`), every abuse budget (`flood`), the output buffer (`output`) and SETTINGS
//! (`settings`).

mod head_cache;
mod lifecycle;
mod receive;
mod respond;
mod shutdown;

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::error::ErrorCode;
use super::flood::FloodGuard;
use super::flow::{DEFAULT_WINDOW, RecvWindow, SendWindow};
use super::frame::{DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN, Settings};
use super::headers::RequestHead;
use super::output::Output;
use super::priority::PrioritySignal;
use super::settings::{DEFAULT_HEADER_TABLE_SIZE, PeerSettings, local_settings};
use super::stream::{Stream, StreamState, StreamStore};
use crate::hpack::{Decoder, Encoder, HeaderField};
use crate::{Http2Limits, Limits};
use shutdown::Shutdown;

/// A stream identifier (RFC 9113 §5.1.1): odd for client-opened streams, even for pushes.
pub type StreamId = u32;

/// What the connection tells the application, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A new request. `end_stream` when it has no body.
    Request {
        /// The stream to answer on.
        stream: StreamId,
        /// The validated request head.
        head: Box<RequestHead>,
        /// The request has no body.
        end_stream: bool,
    },
    /// Request-body bytes. They count against flow control until given back with
    /// [`ServerConnection::release_capacity`].
    Data {
        /// The stream they belong to.
        stream: StreamId,
        /// The bytes (padding removed).
        data: Bytes,
        /// The last of the body.
        end_stream: bool,
    },
    /// The request's trailers, which end its body.
    Trailers {
        /// The stream they belong to.
        stream: StreamId,
        /// The trailer fields.
        trailers: HeaderMap,
    },
    /// The stream is over before its exchange completed: the client reset it, or we did
    /// because it broke a stream rule. Stop working on it; nothing more can be sent on it.
    Reset {
        /// The stream.
        stream: StreamId,
        /// The error code sent or received.
        code: ErrorCode,
        /// Whether the client sent the reset (else we did).
        by_peer: bool,
    },
    /// A PRIORITY_UPDATE frame (RFC 9218 §7.1) changed a request's priority.
    PriorityUpdate {
        /// The stream it is about.
        stream: StreamId,
        /// The new signal.
        priority: PrioritySignal,
    },
    /// The client sent GOAWAY: it opens no more streams.
    GoAway {
        /// The error code it gave.
        code: ErrorCode,
    },
    /// The connection failed; a GOAWAY with this error is queued and the connection closes
    /// after its output is written. Every open stream is over.
    Error(ConnectionError),
}

/// A connection error (RFC 9113 §5.4.1): why the connection ends, and the GOAWAY code sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    /// The code in our GOAWAY.
    pub code: ErrorCode,
    /// What happened, for logs (also the GOAWAY debug data).
    pub reason: &'static str,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (GOAWAY {})", self.reason, self.code)
    }
}

impl std::error::Error for ConnectionError {}

/// Why a send call was refused. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No such stream open for sending: never opened, already finished, or reset.
    StreamClosed,
    /// The call does not fit the stream's state (e.g. data before the response head, a second
    /// head, trailers after the end).
    InvalidState,
    /// More body bytes than the response's `content-length`, or `end_stream` before all of them.
    ContentLengthMismatch,
    /// A push the client does not accept (SETTINGS_ENABLE_PUSH = 0, GOAWAY received, no
    /// stream identifiers left, or a request that is not safe and cacheable).
    PushRefused,
    /// The connection is closed or closing.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::StreamClosed => "stream not open for sending",
            SendError::InvalidState => "call does not fit the stream's state",
            SendError::ContentLengthMismatch => "body length differs from content-length",
            SendError::PushRefused => "server push refused",
            SendError::Closed => "connection closed",
        })
    }
}

impl std::error::Error for SendError {}

/// The largest flow-control window (§6.9.1).
const MAX_WINDOW_U32: u32 = (1 << 31) - 1;

/// The highest stream identifier (31 bits, RFC 9113 §5.1.1).
const MAX_STREAM_ID: StreamId = (1 << 31) - 1;

/// Events decoded ahead of the application before input processing pauses: keeps memory
/// bounded when the application is slow to poll, while a burst of small frames is still
/// handled in one pass.
const EVENT_BATCH: usize = 16;

/// Where the connection is in its opening sequence (RFC 9113 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the 24 bytes of the client preface.
    Preface,
    /// The preface arrived; the next frame must be the client's SETTINGS.
    FirstSettings,
    /// Frames flow.
    Frames,
}

/// A field block being assembled from HEADERS and CONTINUATION frames (RFC 9113 §4.3).
#[derive(Debug)]
struct FieldBlock {
    head: BlockHead,
    fragments: BytesMut,
    continuations: u32,
}

/// What the HEADERS frame that opened a field block said.
#[derive(Debug, Clone, Copy)]
struct BlockHead {
    stream: StreamId,
    end_stream: bool,
    /// The HEADERS priority fields made the stream depend on itself (§5.3.1).
    self_dependent: bool,
}

/// One HTTP/2 connection, server side.
///
/// A driver calls [`receive`](Self::receive) with bytes from the socket (at most
/// [`receive_capacity`](Self::receive_capacity), only while [`wants_read`](Self::wants_read)),
/// takes events with [`poll_event`](Self::poll_event), answers with the `send_*` calls,
/// writes what [`poll_transmit`](Self::poll_transmit) returns, and calls
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout), until
/// [`is_closed`](Self::is_closed).
///
/// Frames are decoded as they arrive, a few events ahead of the application at most (the
/// rest wait in the input buffer), so connection-level frames (PING, SETTINGS) are answered
/// without the application's help. Nothing is buffered per stream on the sending side:
/// [`send_data`](Self::send_data) takes only what the flow-control windows and the output
/// buffer allow, and the rest stays with the application. Time comes only from the `now`
/// given to `new`, `receive`, `poll_transmit` and `handle_timeout`; the flood budgets count
/// against it.
///
/// What the application owes the connection:
/// - **Give body bytes back** with [`release_capacity`](Self::release_capacity) once
///   consumed, or the client stops sending. Bytes of a stream that is over are given back by
///   the connection itself.
/// - **Retry held-back data**: no event says that a window opened; after each `receive`
///   (and each `poll_transmit`, which makes room in the output buffer), offer the rest again,
///   or ask [`send_capacity`](Self::send_capacity).
/// - **Take resets**: a stream that was reset keeps its place under
///   `limits.h2.max_concurrent_streams` until its [`ServerEvent::Reset`] is taken, so a
///   client cannot open new work faster than the application learns to drop the old
///   (rapid reset and MadeYouReset both rely on the handler stopping).
#[derive(Debug)]
pub struct ServerConnection {
    limits: Limits,
    now: Instant,
    phase: Phase,
    input: BytesMut,
    output: Output,
    events: VecDeque<ServerEvent>,
    streams: StreamStore,
    decoder: Decoder,
    encoder: Encoder,
    /// A field block waiting for its CONTINUATION frames.
    block: Option<FieldBlock>,
    peer: PeerSettings,
    /// What we may still send on the connection.
    conn_send: SendWindow,
    /// What the client may still send on the connection.
    conn_recv: RecvWindow,
    /// The stream receive window the client assumes: 65 535 until it acknowledges our
    /// SETTINGS, then ours (§6.9.2).
    stream_recv_window: u32,
    /// When our SETTINGS must be acknowledged by; `None` once they were.
    settings_deadline: Option<Instant>,
    flood: FloodGuard,
    /// The highest client stream identifier seen; lower absent ones are closed (§5.1.1).
    last_client_stream: StreamId,
    /// The identifier the next push gets.
    next_push_stream: StreamId,
    /// Client streams accepted over the connection's life.
    accepted_streams: u32,
    /// The highest client stream we acted on (served, or answered with a status or a
    /// reset other than `REFUSED_STREAM`): the last-stream-id of every GOAWAY but the first
    /// of a graceful shutdown. Streams ignored after the final GOAWAY never raise it, so no
    /// later GOAWAY names a higher stream than an earlier one (§6.8).
    last_processed_stream: StreamId,
    /// Where the graceful shutdown is (§6.8).
    shutdown: Shutdown,
    /// The code of the client's last reported GOAWAY; `Some` once it sent one.
    peer_goaway: Option<ErrorCode>,
    /// The client closed its side of the transport.
    peer_eof: bool,
    /// The connection is over; it closes once its output is taken.
    closed: bool,
    /// Since when no stream is open (for the idle timeout).
    idle_since: Option<Instant>,
    /// Streams whose response waits on a zero stream window, by when that began.
    stalled: BTreeSet<(Instant, StreamId)>,
    /// Since when a response waits on a zero connection window.
    conn_stalled_since: Option<Instant>,
    /// When request bodies are next checked for silence (`limits.body_idle_timeout`); `None`
    /// while no request body is open.
    body_check_at: Option<Instant>,
    /// The `date` field added to responses, built once per [`set_date`](Self::set_date).
    date: Option<HeaderField>,
    /// Reused for the fields of every head we send.
    fields: Vec<HeaderField>,
    /// Reused for the fields of every block we receive.
    block_fields: Vec<HeaderField>,
    /// The last response head encoded, to send again without encoding it.
    head_cache: head_cache::HeadCache,
    /// Since when output has waited untaken, once a call carrying the time saw it waiting
    /// (before that, since `now`): for `limits.send_timeout`.
    pending_since: Option<Instant>,
    /// The connection ended because its output was not taken in time.
    send_timed_out: bool,
}

impl ServerConnection {
    /// A connection accepted at `now` whose first bytes are the client preface (prior
    /// knowledge or ALPN `h2`). Our SETTINGS (from `limits.h2`) and the connection
    /// WINDOW_UPDATE are queued at once.
    pub fn new(mut limits: Limits, now: Instant) -> Self {
        clamp_to_protocol(&mut limits.h2);
        let h2 = &limits.h2;
        let mut output = Output::new();
        output.settings(local_settings(&limits));
        let conn_target = h2.connection_window_size.max(DEFAULT_WINDOW);
        if conn_target > DEFAULT_WINDOW {
            output.window_update(0, conn_target - DEFAULT_WINDOW);
        }
        let decoder_table = h2.header_table_size.max(DEFAULT_HEADER_TABLE_SIZE);
        ServerConnection {
            now,
            phase: Phase::Preface,
            input: BytesMut::new(),
            output,
            events: VecDeque::new(),
            streams: StreamStore::new(limits.h2.max_concurrent_streams),
            decoder: Decoder::new(to_usize(decoder_table), limits.max_head_size),
            encoder: Encoder::new(to_usize(DEFAULT_HEADER_TABLE_SIZE)),
            block: None,
            peer: PeerSettings::default(),
            conn_send: SendWindow::new(DEFAULT_WINDOW),
            conn_recv: RecvWindow::new(conn_target, conn_target),
            stream_recv_window: DEFAULT_WINDOW,
            settings_deadline: deadline(now, h2.settings_timeout),
            flood: FloodGuard::new(h2, limits.max_head_size, now),
            last_client_stream: 0,
            next_push_stream: 2,
            accepted_streams: 0,
            last_processed_stream: 0,
            shutdown: Shutdown::Running,
            peer_goaway: None,
            peer_eof: false,
            closed: false,
            idle_since: Some(now),
            stalled: BTreeSet::new(),
            conn_stalled_since: None,
            body_check_at: None,
            date: None,
            fields: Vec::new(),
            block_fields: Vec::new(),
            head_cache: head_cache::HeadCache::default(),
            pending_since: None,
            send_timed_out: false,
            limits,
        }
    }

    /// A connection upgraded from HTTP/1.1 with `Upgrade: h2c` (RFC 7540 §3.2) after our `101`
    /// was written: `settings` are the client's from its `HTTP2-Settings` field, and stream 1
    /// is the upgraded request, half-closed (remote), waiting for the application's response.
    /// The client preface still arrives through `receive`.
    ///
    /// The settings are acknowledged by the `101` itself (RFC 7540 §3.2.1): no SETTINGS ACK
    /// is sent for them. Read the field with [`Settings::from_payload`].
    pub fn upgraded(limits: Limits, now: Instant, settings: &Settings) -> Self {
        let mut connection = ServerConnection::new(limits, now);
        connection.apply_peer_settings(settings);
        let stream = Stream::new(
            StreamState::HalfClosedRemote,
            connection.peer.initial_window_size,
            RecvWindow::new(DEFAULT_WINDOW, DEFAULT_WINDOW),
            now,
        );
        connection.streams.insert(1, stream);
        connection.last_client_stream = 1;
        connection.last_processed_stream = 1;
        connection.accepted_streams = 1;
        connection.idle_since = None;
        connection
    }

    /// Whether bytes from the socket are wanted now (false once the peer's side is done, or
    /// while too much output waits to be written). Also false while the input buffer is full
    /// of frames behind events the application has not taken: poll events first.
    pub fn wants_read(&self) -> bool {
        self.receive_capacity() > 0
    }

    /// Most bytes [`receive`](Self::receive) takes now: room left in the input buffer, which
    /// holds at most the larger of `limits.max_buffered_input` and one whole frame; 0 once
    /// the connection or the peer's side is done, or while more than
    /// `limits.max_buffered_output` bytes wait to be written.
    pub fn receive_capacity(&self) -> usize {
        if self.closed || self.peer_eof || self.output.len() > self.limits.max_buffered_output {
            return 0;
        }
        let frame = to_usize(self.limits.h2.max_frame_size).saturating_add(FRAME_HEADER_LEN);
        let limit = self.limits.max_buffered_input.max(frame);
        limit.saturating_sub(self.input.len())
    }

    /// Takes bytes read from the socket at `now`; returns how many were taken.
    pub fn receive(&mut self, now: Instant, data: &[u8]) -> usize {
        self.tell_time(now);
        let taken = data.len().min(self.receive_capacity());
        if let Some(bytes) = data.get(..taken) {
            self.input.extend_from_slice(bytes);
        }
        self.process_input();
        taken
    }

    /// The peer closed its side. Frames already received are still handled (as the
    /// application polls events); then, as nothing more can arrive, every stream still open
    /// is over: the application gets a [`ServerEvent::Reset`] (`CANCEL`, by the peer) for
    /// each, and the connection closes once its output is taken.
    pub fn receive_eof(&mut self) {
        self.peer_eof = true;
        self.process_input();
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if self.events.is_empty() {
            self.process_input();
        }
        let event = self.events.pop_front()?;
        if let ServerEvent::Reset {
            stream, by_peer, ..
        } = &event
        {
            self.forget_reset(*stream, *by_peer);
        }
        Some(event)
    }

    /// The `date` value added to responses that carry none (the core reads no clock).
    pub fn set_date(&mut self, date: HeaderValue) {
        if self
            .date
            .as_ref()
            .is_some_and(|field| field.value[..] == *date.as_bytes())
        {
            // Told once per response, while the value changes once a second: the field
            // already held is kept rather than copied anew.
            return;
        }
        let value = Bytes::copy_from_slice(date.as_bytes());
        self.date = Some(HeaderField::new(Bytes::from_static(b"date"), value));
    }

    /// Starts the response on `stream` (a 1xx may come first, several times). With
    /// `end_stream`, the response has no body.
    ///
    /// `101` is refused ([`SendError::InvalidState`]): HTTP/2 has no protocol switch (§8.6).
    /// For HEAD requests and `204`/`304` no body goes on the wire: body bytes sent are
    /// dropped, as in HTTP/1.1. Otherwise a `content-length` given here is what
    /// [`send_data`](Self::send_data) must add up to.
    pub fn send_response(
        &mut self,
        stream: StreamId,
        status: StatusCode,
        headers: &HeaderMap,
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.respond_head(stream, status, headers, end_stream)
    }

    /// Queues body bytes on `stream`; returns how many were taken, which may be fewer than
    /// given (even 0) when flow-control windows or the output buffer are full: that is the
    /// backpressure. `end_stream` takes effect only if all of `data` was taken.
    ///
    /// Empty `data` without `end_stream` queues nothing. A response that stays unable to send
    /// because the client grants no window for `limits.h2.send_stall_timeout` is reset.
    pub fn send_data(
        &mut self,
        stream: StreamId,
        data: &[u8],
        end_stream: bool,
    ) -> Result<usize, SendError> {
        self.respond_data(stream, data, end_stream)
    }

    /// Body bytes [`send_data`](Self::send_data) would take on `stream` now (`usize::MAX` for
    /// a response without a body, whose bytes are dropped).
    pub fn send_capacity(&self, stream: StreamId) -> usize {
        self.data_capacity(stream)
    }

    /// Ends the response on `stream` with trailers.
    pub fn send_trailers(
        &mut self,
        stream: StreamId,
        trailers: &HeaderMap,
    ) -> Result<(), SendError> {
        self.respond_trailers(stream, trailers)
    }

    /// Promises a pushed response (PUSH_PROMISE on `stream`, RFC 9113 §8.4) for the request
    /// `method uri headers`; returns the promised stream, on which the response is then sent
    /// like any other.
    pub fn push_promise(
        &mut self,
        stream: StreamId,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<StreamId, SendError> {
        self.promise(stream, method, uri, headers)
    }

    /// Resets `stream` with `code` (the application gave up on it).
    pub fn reset(&mut self, stream: StreamId, code: ErrorCode) {
        self.reset_by_app(stream, code);
    }

    /// The application consumed `len` request-body bytes of `stream`: the windows reopen
    /// (WINDOW_UPDATE once enough accumulated, not one per frame).
    ///
    /// Once a stream is over, whatever it still held is given back to the connection window
    /// by the connection itself, and releasing on it does nothing.
    pub fn release_capacity(&mut self, stream: StreamId, len: usize) {
        self.release_body(stream, len);
    }

    /// Bytes to write to the socket (all of the output: the send timeout restarts).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.tell_time(now);
        self.pending_since = None;
        self.output.take()
    }

    /// Whether the connection ended because its output was not taken by
    /// [`poll_transmit`](Self::poll_transmit) for `limits.send_timeout` (the client stopped
    /// reading): the GOAWAY queued then, and output a driver still holds, will not get out
    /// either; close the socket without waiting to write them.
    pub fn send_timed_out(&self) -> bool {
        self.send_timed_out
    }

    /// Bytes queued for the socket and not taken yet.
    pub fn pending_output(&self) -> usize {
        self.output.len()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_deadline()
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tell_time(now);
        self.expire(now);
    }

    /// Graceful shutdown in the two steps RFC 9113 §6.8 recommends: GOAWAY `NO_ERROR` with
    /// last-stream-id 2^31-1 and a PING at once; when the PING's ACK arrives (or
    /// `limits.h2.settings_timeout` later, if it never does) the final GOAWAY with the last
    /// stream processed. Streams opened before the final GOAWAY are served and finish; those
    /// opened after it are ignored; the connection closes once no stream is left and its
    /// output is written. Also how the connection drains after
    /// `limits.h2.max_streams_per_connection` streams. Does nothing once a GOAWAY was sent.
    pub fn shutdown(&mut self) {
        self.start_goaway();
    }

    /// Ends the connection at once with GOAWAY `code`.
    pub fn abort(&mut self, code: ErrorCode) {
        if self.closed {
            return;
        }
        self.output
            .goaway(self.last_processed_stream, code, "aborted by the server");
        self.close();
    }

    /// Whether the connection is over and its output written: close the socket.
    pub fn is_closed(&self) -> bool {
        self.closed && self.output.is_empty()
    }

    /// Time only moves forward, whatever the driver passes. Output queued since the last
    /// call carrying the time has waited since the time known then.
    fn tell_time(&mut self, now: Instant) {
        if !self.output.is_empty() && self.pending_since.is_none() {
            self.pending_since = Some(self.now);
        }
        self.now = self.now.max(now);
    }

    /// When waiting output crosses `limits.send_timeout`; `None` while none waits.
    fn send_deadline(&self) -> Option<Instant> {
        if self.output.is_empty() {
            return None;
        }
        deadline(
            self.pending_since.unwrap_or(self.now),
            self.limits.send_timeout,
        )
    }
}

/// Brings the advertised values into the ranges RFC 9113 §6.5.2 and §6.9.1 allow, so a
/// careless configuration cannot make every client fail the connection.
fn clamp_to_protocol(h2: &mut Http2Limits) {
    h2.max_frame_size = h2
        .max_frame_size
        .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_PAYLOAD_LEN);
    h2.initial_window_size = h2.initial_window_size.min(MAX_WINDOW_U32);
    h2.connection_window_size = h2.connection_window_size.min(MAX_WINDOW_U32);
}

/// `at + after`, or no deadline when that is past what an `Instant` can hold.
fn deadline(at: Instant, after: Duration) -> Option<Instant> {
    at.checked_add(after)
}

fn to_usize(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}
