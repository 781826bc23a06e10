//! One WebSocket connection after the handshake (RFC 6455 §5-§7), for either role: messages
//! reassembled from fragments with control frames interleaved, pings answered, the close
//! handshake, an optional heartbeat, and every size bounded by [`WsLimits`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use sha1::{Digest, Sha1};

use super::CloseCode;
use super::deflate::{Compressor, Decompressor, DeflateError, DeflateParams, Side};
use super::frame::{
    Decoded, FrameDecoder, FrameError, FrameHeader, MAX_CONTROL_PAYLOAD, OpCode, Peeked, RSV1,
    encode_frame, encoded_header_len,
};
use super::utf8::Utf8Validator;
use crate::WsLimits;

/// Which end of the connection we are; it decides the masking rule (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection: frames we receive must be masked, ours are not. We close
    /// the TCP connection first once the close handshake is done (§7.1.1).
    Server,
    /// We opened the connection: every frame we send is masked with a key derived from
    /// `mask_seed`, which must be 16 bytes from a good random source (the core has no RNG;
    /// §10.3 requires unpredictable keys). After the close handshake we wait for the server
    /// to close the TCP connection, at most `close_timeout`.
    Client {
        /// Random bytes the per-frame masking keys are derived from.
        mask_seed: [u8; 16],
    },
}

/// Whether a message is text or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// A complete received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; the bytes are validated UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Message {
        Message::Text(Bytes::from(text.into()))
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Message {
        Message::Binary(data.into())
    }

    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(bytes) => std::str::from_utf8(bytes).ok(),
            Message::Binary(_) => None,
        }
    }

    /// The payload bytes, whatever the kind.
    pub fn payload(&self) -> &Bytes {
        match self {
            Message::Text(bytes) | Message::Binary(bytes) => bytes,
        }
    }
}

/// Why we failed the connection (§7.1.7); each names the close code we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame broke a header rule or the frame size limit.
    Frame(FrameError),
    /// A continuation frame with no message in progress (1002).
    UnexpectedContinuation,
    /// A new text or binary frame while a message was still in progress (1002).
    ExpectedContinuation,
    /// A message larger than the message size limit (1009).
    MessageTooBig,
    /// A text message or close reason that is not UTF-8 (1007).
    InvalidUtf8,
    /// A Close frame with a one-byte payload or a code that may not be sent (1002).
    InvalidClose,
    /// RSV1 on a continuation or control frame (1002, RFC 7692 §6.1); without a negotiated
    /// permessage-deflate the frame decoder already refuses any reserved bit.
    Compressed,
    /// A compressed message that does not inflate, or inflates past the message size limit.
    Deflate(DeflateError),
    /// No pong came back within [`WsLimits::pong_timeout`] of a heartbeat ping (1011): the
    /// peer, or the path to it, is gone, and only a timer can notice a silent one.
    HeartbeatTimeout,
    /// Output waited untaken by `poll_transmit` for [`WsLimits::send_timeout`]: the peer
    /// stopped reading. Reported with `1006` and no Close frame, which could not get out.
    SendTimeout,
}

impl ProtocolError {
    /// The close code sent for this error.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::Frame(e) => e.close_code(),
            ProtocolError::MessageTooBig => CloseCode::TOO_BIG,
            ProtocolError::InvalidUtf8 => CloseCode::INVALID_DATA,
            ProtocolError::Deflate(e) => CloseCode(e.close_code()),
            ProtocolError::HeartbeatTimeout => CloseCode::INTERNAL_ERROR,
            ProtocolError::SendTimeout => CloseCode::ABNORMAL,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// The reason sent with the close code: only where the code alone does not say what
    /// happened (1011 covers any internal condition).
    fn close_reason(self) -> &'static str {
        match self {
            ProtocolError::HeartbeatTimeout => "heartbeat timeout",
            _ => "",
        }
    }
}

/// Something the connection learned from the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete message.
    Message(Message),
    /// A ping; the pong is already owed and will be sent by `poll_transmit`.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer closed with `code` (`1005` when its Close carried none) and `reason`; or
    /// the connection ended without a Close frame: code `1006`. If we had not sent a Close,
    /// the answer with the same code is owed: the next `poll_transmit` writes it, after the
    /// data sent before then (the end of a message in progress, replies to the messages
    /// received before the Close).
    Close {
        /// The peer's close code.
        code: CloseCode,
        /// The peer's reason, validated UTF-8.
        reason: String,
    },
    /// The peer broke the protocol or a limit, or stopped answering our heartbeat: a Close
    /// with [`ProtocolError::close_code`] is owed (written by the next `poll_transmit`, after
    /// the data sent before then: replies to the messages received before the error) and the
    /// connection ends once it is written, or after `close_timeout` if the peer does not read
    /// it. [`ProtocolError::SendTimeout`] ends the connection at once, with no Close.
    Error(ProtocolError),
}

/// Why a send was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The outgoing buffer is full: call `poll_transmit`, write, and try again.
    Full,
    /// We already sent a Close (or the connection is over); nothing more may be sent
    /// (§5.5.1).
    Closing,
    /// A control frame payload (ping, pong, or a close reason plus 2) over 125 bytes.
    ControlTooLong,
    /// The code may not be sent (1005, 1006, 1015 and unassigned ones).
    InvalidCloseCode,
    /// A continuation of a different kind than the message in progress, or bytes of a text
    /// message that are not UTF-8.
    InvalidMessage,
    /// The compressor failed (a bug, never the peer's doing); fail the connection with 1011.
    Compression,
}

/// The life of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Messages flow both ways.
    Open,
    /// We sent Close; waiting for the peer's until the deadline (`None`: a close timeout too
    /// large to represent, so no deadline).
    CloseSent { deadline: Option<Instant> },
    /// The close handshake is done or we failed the connection; nothing more is read. Without
    /// `await_eof` the connection ends once the output is written; with it (a client after
    /// the handshake, §7.1.1) it takes and drops input until the server's TCP close. Either
    /// way it ends at `deadline` (`close_timeout` later; `None`: too far to represent), so a
    /// peer that never reads nor closes cannot hold it open.
    Closing {
        deadline: Option<Instant>,
        await_eof: bool,
    },
    /// Close the socket.
    Closed,
}

/// The message being received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Incoming {
    kind: MessageKind,
    /// RSV1 was set on its first frame: its frames inflate through the decompressor.
    compressed: bool,
}

/// permessage-deflate's codecs, when it was negotiated.
#[derive(Debug)]
struct Deflate {
    compressor: Compressor,
    decompressor: Decompressor,
}

/// The deflate level our messages are compressed at: zlib's default trade-off.
const DEFLATE_LEVEL: u32 = 6;

/// Frames up to this many bytes on the wire, header included, are left in the caller's buffer
/// by [`Connection::receive_buf`] until all of them has arrived, and then handed out without a
/// copy; larger ones are taken in pieces as they arrive. A caller's buffer holds at least this
/// much.
pub const WHOLE_FRAME_MAX: usize = 64 * 1024;

/// Compressed payload held before it is inflated, even mid-frame.
const INFLATE_CHUNK: usize = 64 * 1024;

/// The heartbeat's clock ([`WsLimits::ping_interval`]): when our next ping is due and, while
/// one is unanswered, when its pong must have arrived. It only decides times; the connection
/// sends the pings and fails on an overdue pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeartbeatTimer {
    /// Time between pings; `None` (or a zero interval, which would ask for a ping at every
    /// instant) turns the heartbeat off.
    interval: Option<Duration>,
    /// When the next ping is due; `None` when off or too far to represent.
    next_ping: Option<Instant>,
    /// The pong deadline of the oldest unanswered ping (any pong answers all of them: peers
    /// may answer only the latest, §5.5.3).
    pong_deadline: Option<Instant>,
    /// Pings sent so far; the next ping's payload, so pongs can be told apart in a capture.
    pings_sent: u64,
}

impl HeartbeatTimer {
    fn new(interval: Option<Duration>, now: Instant) -> Self {
        let interval = interval.filter(|i| !i.is_zero());
        HeartbeatTimer {
            interval,
            next_ping: interval.and_then(|i| now.checked_add(i)),
            pong_deadline: None,
            pings_sent: 0,
        }
    }

    /// The earliest time the heartbeat needs `handle_timeout`.
    fn next_deadline(&self) -> Option<Instant> {
        match (self.next_ping, self.pong_deadline) {
            (Some(ping), Some(pong)) => Some(ping.min(pong)),
            (ping, pong) => ping.or(pong),
        }
    }

    fn pong_overdue(&self, now: Instant) -> bool {
        self.pong_deadline.is_some_and(|deadline| now >= deadline)
    }

    fn ping_due(&self, now: Instant) -> bool {
        self.next_ping.is_some_and(|due| now >= due)
    }

    /// The payload of the next ping: the count of pings before it.
    fn next_payload(&self) -> [u8; 8] {
        self.pings_sent.to_be_bytes()
    }

    /// A due ping was sent at `now` (or did not fit, and waits for the next interval, counted
    /// from `now` so that a late `handle_timeout` does not bring a burst of pings).
    fn ping_attempted(&mut self, now: Instant, sent: bool, pong_timeout: Duration) {
        self.next_ping = self.interval.and_then(|i| now.checked_add(i));
        if sent {
            self.pings_sent = self.pings_sent.wrapping_add(1);
            if self.pong_deadline.is_none() {
                self.pong_deadline = now.checked_add(pong_timeout);
            }
        }
    }

    fn pong_received(&mut self) {
        self.pong_deadline = None;
    }
}

/// What the decoder's current payload belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Current {
    Data { fin: bool },
    Control(OpCode),
}

/// One WebSocket connection (RFC 6455), as a sans-IO state machine, in the shape of
/// [`crate::h1::ServerConnection`]:
/// - **input**: [`receive`](Self::receive) bytes read from the peer (it returns how many it
///   took: it stops after each event, so call it again with the rest once events are drained),
///   [`receive_eof`](Self::receive_eof), [`handle_timeout`](Self::handle_timeout) at
///   [`poll_timeout`](Self::poll_timeout) (the close timeout and the heartbeat);
/// - **events out**: [`poll_event`](Self::poll_event);
/// - **sending**: [`send_text`](Self::send_text), [`send_binary`](Self::send_binary),
///   [`send_fragment`](Self::send_fragment), [`send_ping`](Self::send_ping),
///   [`close`](Self::close);
/// - **output**: [`poll_transmit`](Self::poll_transmit); close the socket once
///   [`is_closed`](Self::is_closed).
///
/// Memory is bounded: a message in progress by `max_message_size`, the output by
/// `max_buffered_output` (plus at most a Close and one coalesced pong), events by one at a
/// time. Extensions: with permessage-deflate negotiated ([`with_deflate`](Self::with_deflate)),
/// RSV1 marks a compressed message, inflated frame by frame under `max_message_size`, and
/// whole messages we send are compressed; otherwise every reserved bit fails with 1002.
///
/// Heartbeat: with [`WsLimits::ping_interval`] set, an open connection sends a ping every
/// interval (the first one interval after creation) and fails with
/// [`ProtocolError::HeartbeatTimeout`] (Close `1011`) when no pong arrives within
/// [`WsLimits::pong_timeout`] of one. Heartbeat pings are ordinary output: one that does not
/// fit the output buffer is skipped until the next interval.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    limits: WsLimits,
    decoder: FrameDecoder,
    state: State,
    now: Instant,
    events: VecDeque<Event>,
    output: BytesMut,
    /// The latest ping's payload whose pong did not fit in the output (§5.5.3: only the
    /// latest is owed).
    owed_pong: Option<Bytes>,
    /// The payload of a Close we owe the peer (our answer to its Close, or the one that fails
    /// the connection), written by the next `poll_transmit` so that data sent before then
    /// goes out ahead of it.
    owed_close: Option<Bytes>,
    /// Since when output has waited untaken, once a call carrying the time saw it waiting
    /// (before that, since `now`).
    pending_since: Option<Instant>,
    /// The connection ended because its output was not taken in time.
    send_timed_out: bool,
    current: Option<Current>,
    incoming: Option<Incoming>,
    message: BytesMut,
    control: BytesMut,
    incoming_utf8: Utf8Validator,
    /// The kind of the message we are sending in fragments, if one is open.
    outgoing: Option<MessageKind>,
    outgoing_utf8: Utf8Validator,
    frames_sent: u64,
    deflate: Option<Deflate>,
    /// The current frame's compressed payload not inflated yet (at most `INFLATE_CHUNK`
    /// bytes before it is, plus one decoder step).
    compressed: BytesMut,
    heartbeat: HeartbeatTimer,
}

impl Connection {
    /// A connection whose handshake completed at `now`, with no extension.
    pub fn new(role: Role, limits: WsLimits, now: Instant) -> Self {
        Self::with_deflate(role, limits, now, None)
    }

    /// A connection whose handshake negotiated permessage-deflate with `deflate` (from
    /// [`super::deflate::accept_offers`] or [`super::deflate::accept_response`]), or no
    /// extension when `None`.
    pub fn with_deflate(
        role: Role,
        limits: WsLimits,
        now: Instant,
        deflate: Option<DeflateParams>,
    ) -> Self {
        let expect_masked = role == Role::Server;
        let side = if expect_masked {
            Side::Server
        } else {
            Side::Client
        };
        let deflate = deflate.map(|params| Deflate {
            compressor: params.compressor(side, DEFLATE_LEVEL),
            decompressor: params.decompressor(side, limits.max_message_size),
        });
        let allowed_rsv = if deflate.is_some() { RSV1 } else { 0 };
        Connection {
            role,
            heartbeat: HeartbeatTimer::new(limits.ping_interval, now),
            decoder: FrameDecoder::new(expect_masked, allowed_rsv, limits.max_frame_size),
            deflate,
            compressed: BytesMut::new(),
            limits,
            state: State::Open,
            now,
            events: VecDeque::new(),
            output: BytesMut::new(),
            owed_pong: None,
            owed_close: None,
            pending_since: None,
            send_timed_out: false,
            current: None,
            incoming: None,
            message: BytesMut::new(),
            control: BytesMut::new(),
            incoming_utf8: Utf8Validator::default(),
            outgoing: None,
            outgoing_utf8: Utf8Validator::default(),
            frames_sent: 0,
        }
    }

    /// The role given at creation.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the socket should be closed now: the close handshake is over (or failed, or
    /// timed out) and the output is written.
    pub fn is_closed(&self) -> bool {
        match self.state {
            State::Closed => true,
            State::Closing {
                await_eof: false, ..
            } => self.output.is_empty() && self.owed_close.is_none(),
            _ => false,
        }
    }

    /// Whether `receive` would read more bytes (open, or waiting for the peer's Close).
    pub fn wants_read(&self) -> bool {
        matches!(self.state, State::Open | State::CloseSent { .. }) && self.events.is_empty()
    }

    /// Compressed payload received and not inflated yet (tests check it stays bounded).
    #[cfg(test)]
    pub(super) fn held_compressed(&self) -> usize {
        self.compressed.len()
    }

    /// Output bytes not yet taken by `poll_transmit`, an owed pong or Close included.
    pub fn pending_output(&self) -> usize {
        let masked = self.role != Role::Server;
        let frame = |payload: &Bytes| encoded_header_len(payload.len(), masked) + payload.len();
        self.output.len()
            + self.owed_pong.as_ref().map_or(0, frame)
            + self.owed_close.as_ref().map_or(0, frame)
    }

    /// Bytes `send_*` can still buffer before refusing (backpressure).
    pub fn send_capacity(&self) -> usize {
        self.limits
            .max_buffered_output
            .saturating_sub(self.output.len())
    }

    /// Reads bytes from the peer; returns how many were taken. It stops after each event
    /// (and takes nothing while one is pending), so drain `poll_event` and call again with
    /// the rest.
    ///
    /// A client that finished the close handshake waits for the server's TCP close: it takes
    /// and drops whatever still arrives (§7.1.1), so keep reading until EOF or the timeout.
    pub fn receive(&mut self, now: Instant, data: &[u8]) -> usize {
        self.tell_time(now);
        if let State::Closing {
            await_eof: true, ..
        } = self.state
        {
            return data.len();
        }
        let mut taken = 0;
        while self.wants_read() {
            let rest = data.get(taken..).unwrap_or_default();
            match self.decode_step(rest) {
                Ok((n, item)) => {
                    taken += n;
                    match item {
                        None => break,
                        Some(item) => self.handle(item),
                    }
                }
                Err(e) => self.fail(ProtocolError::Frame(e)),
            }
        }
        taken
    }

    /// Reads bytes from the peer out of the caller's own buffer, the zero-copy form of
    /// [`receive`](Self::receive): whole frames are taken off the front of `input` and
    /// unmasked where they lie, so a message sent in one frame is handed out as a slice of
    /// `input` (it shares that allocation) rather than copied; a fragmented message is copied
    /// once, as its fragments are joined; a compressed one is inflated from where it lies.
    ///
    /// Every event the bytes make goes to `deliver` as soon as it is known, in order, all of
    /// them in this one call. `deliver` hands back an event it cannot take now (`Err`): it is
    /// kept for [`poll_event`](Self::poll_event) and reading stops there, the rest of the bytes
    /// left in `input` for a later call (after the events were drained). Events already
    /// waiting are offered first.
    ///
    /// A frame that has partly arrived stays in `input` until the rest does, when it is at
    /// most [`WHOLE_FRAME_MAX`] bytes on the wire (hold room for that much); a larger one is
    /// taken in pieces as they arrive, and copied. A client that finished the close handshake
    /// drops what still arrives, as with `receive`.
    pub fn receive_buf(
        &mut self,
        now: Instant,
        input: &mut BytesMut,
        mut deliver: impl FnMut(Event) -> Result<(), Event>,
    ) {
        self.tell_time(now);
        if let State::Closing {
            await_eof: true, ..
        } = self.state
        {
            input.clear();
            return;
        }
        while self.offer_events(&mut deliver)
            && matches!(self.state, State::Open | State::CloseSent { .. })
            && self.receive_step(input)
        {}
    }

    /// One frame (or, for a large frame, one piece of it) off the front of `input`; false
    /// when nothing could be taken before more bytes arrive.
    fn receive_step(&mut self, input: &mut BytesMut) -> bool {
        if !self.decoder.is_between_frames() {
            return self.receive_piece(input);
        }
        match self.decoder.peek(input) {
            Err(e) => {
                self.fail(ProtocolError::Frame(e));
                true
            }
            Ok(None) => false,
            Ok(Some(peeked)) if peeked.frame_len() <= input.len() => {
                self.whole_frame(input, &peeked);
                true
            }
            // Text is validated as it arrives (failing fast on bad UTF-8, RFC 6455 §8.1): a
            // text frame not all here streams, as a large frame does.
            Ok(Some(peeked))
                if peeked.frame_len() <= WHOLE_FRAME_MAX && !self.is_plain_text(&peeked.header) =>
            {
                // Waiting for the rest of the frame, unless its header already breaks a rule.
                let refusal = self.refusal(&peeked.header);
                refusal.map(|error| self.fail(error)).is_some()
            }
            Ok(Some(_)) => self.receive_piece(input),
        }
    }

    /// One step of the streaming decoder on `input`, the payload copied into the buffer of
    /// what the frame belongs to: a control frame, a compressed message, a plain message.
    fn decode_step(&mut self, input: &[u8]) -> Result<(usize, Option<Decoded>), FrameError> {
        let sink = match (self.current, self.incoming) {
            (Some(Current::Control(_)), _) => &mut self.control,
            (
                _,
                Some(Incoming {
                    compressed: true, ..
                }),
            ) => &mut self.compressed,
            _ => &mut self.message,
        };
        self.decoder.decode(input, sink)
    }

    /// The streaming path of [`receive`](Self::receive) on `input`: one step of the decoder,
    /// the payload copied into the message. False when it needs more bytes.
    fn receive_piece(&mut self, input: &mut BytesMut) -> bool {
        match self.decode_step(input) {
            Ok((n, item)) => {
                input.advance(n);
                match item {
                    None => false,
                    Some(item) => {
                        self.handle(item);
                        true
                    }
                }
            }
            Err(e) => {
                self.fail(ProtocolError::Frame(e));
                true
            }
        }
    }

    /// A frame all of which is in `input`: taken off it, its payload used where it lies.
    fn whole_frame(&mut self, input: &mut BytesMut, peeked: &Peeked) {
        self.start_frame(peeked.header);
        let Some(current) = self.current.take() else {
            // The header broke a rule: the connection failed and reads nothing more.
            return;
        };
        let Some(payload) = FrameDecoder::take_frame(input, peeked) else {
            return;
        };
        match current {
            Current::Control(opcode) => self.control_frame(opcode, payload.freeze()),
            Current::Data { fin } => self.data_frame(payload, fin),
        }
    }

    /// The unmasked payload of a whole data frame of the incoming message.
    fn data_frame(&mut self, payload: BytesMut, fin: bool) {
        let Some(incoming) = self.incoming else {
            return;
        };
        if incoming.compressed {
            if self.inflate(&payload, fin) && fin {
                self.end_message();
            }
            return;
        }
        if fin && self.message.is_empty() {
            // The whole message in one frame: handed out as it lies, no copy.
            self.incoming = None;
            let message = match incoming.kind {
                MessageKind::Text if std::str::from_utf8(&payload).is_err() => {
                    return self.fail(ProtocolError::InvalidUtf8);
                }
                MessageKind::Text => Message::Text(payload.freeze()),
                MessageKind::Binary => Message::Binary(payload.freeze()),
            };
            self.events.push_back(Event::Message(message));
            return;
        }
        self.message.extend_from_slice(&payload);
        if incoming.kind == MessageKind::Text {
            self.validate_text_tail(payload.len());
        }
        if fin && self.incoming.is_some() {
            self.end_message();
        }
    }

    /// Offers the waiting events to `deliver`; false when it handed one back.
    fn offer_events(&mut self, deliver: &mut impl FnMut(Event) -> Result<(), Event>) -> bool {
        while let Some(event) = self.events.pop_front() {
            if let Err(event) = deliver(event) {
                self.events.push_front(event);
                return false;
            }
        }
        true
    }

    /// The peer closed its side. Without a finished close handshake this is an abnormal
    /// closure: an [`Event::Close`] with code `1006`.
    pub fn receive_eof(&mut self) {
        if matches!(self.state, State::Open | State::CloseSent { .. }) {
            self.events.push_back(Event::Close {
                code: CloseCode::ABNORMAL,
                reason: String::new(),
            });
        }
        self.state = State::Closed;
        self.output.clear();
        self.owed_pong = None;
        self.owed_close = None;
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called: while open, the next heartbeat ping or the
    /// pending pong's deadline; once closing, the close timeout; and while output waits,
    /// [`WsLimits::send_timeout`] after it began to, if earlier.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match self.state {
            State::Open => self.heartbeat.next_deadline(),
            State::CloseSent { deadline } | State::Closing { deadline, .. } => deadline,
            State::Closed => return None,
        };
        match (state, self.send_deadline()) {
            (Some(state), Some(send)) => Some(state.min(send)),
            (state, send) => state.or(send),
        }
    }

    /// Whether the connection ended because its output was not taken for
    /// [`WsLimits::send_timeout`]: output a driver still holds will not get out either.
    pub fn send_timed_out(&self) -> bool {
        self.send_timed_out
    }

    /// Tells the connection the time. While open it sends a heartbeat ping that is due, and
    /// fails the connection with [`ProtocolError::HeartbeatTimeout`] when a pong is overdue;
    /// past the close timeout the connection is closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tell_time(now);
        if self.send_deadline().is_some_and(|deadline| now >= deadline) {
            return self.time_out_sending();
        }
        match self.state {
            State::Open => self.run_heartbeat(now),
            State::CloseSent { deadline } | State::Closing { deadline, .. } => {
                if deadline.is_some_and(|deadline| now >= deadline) {
                    self.state = State::Closed;
                }
            }
            State::Closed => {}
        }
    }

    /// Fails an overdue pong first (a late ping would not revive a dead peer), else sends a
    /// due ping.
    fn run_heartbeat(&mut self, now: Instant) {
        if self.heartbeat.pong_overdue(now) {
            return self.fail(ProtocolError::HeartbeatTimeout);
        }
        if self.heartbeat.ping_due(now) {
            let payload = self.heartbeat.next_payload();
            let sent = self.send_ping(&payload).is_ok();
            self.heartbeat
                .ping_attempted(now, sent, self.limits.pong_timeout);
        }
    }

    /// Bytes to write to the peer, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.tell_time(now);
        self.pending_since = None;
        if let Some(payload) = self.owed_pong.take() {
            self.write_frame(true, OpCode::Pong, &payload);
        }
        if let Some(payload) = self.owed_close.take() {
            self.write_frame(true, OpCode::Close, &payload);
        }
        if self.output.is_empty() {
            return None;
        }
        let bytes = self.output.split().freeze();
        self.after_flush();
        Some(bytes)
    }

    /// Sends a whole text message, cut into frames of `max_send_frame_size`; all or nothing:
    /// refused with [`SendError::Full`] unless it fits in the free output buffer (use
    /// [`send_fragment`](Self::send_fragment) for messages larger than the buffer).
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_whole(MessageKind::Text, text.as_bytes())
    }

    /// Sends a whole binary message; as [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_whole(MessageKind::Binary, data)
    }

    /// Sends part of a message: starts one of `kind` if none is open, else continues it (the
    /// kind must match). Accepts as many bytes as the output buffer has room for and returns
    /// that count; the message ends when `fin` is set and every byte was accepted. Text may
    /// be cut inside a character, but all of it must be UTF-8. Refused with
    /// [`SendError::Full`] when no byte fits. Messages sent this way are never compressed
    /// (RFC 7692 lets each message choose); `send_text` and `send_binary` compress when
    /// permessage-deflate was negotiated.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<usize, SendError> {
        self.check_can_send()?;
        if self.outgoing.is_some_and(|open| open != kind) {
            return Err(SendError::InvalidMessage);
        }
        let room = self.payload_room();
        // An empty frame still costs its header, which must fit like any other byte.
        let empty_fits = data.is_empty()
            && self.send_capacity() >= encoded_header_len(0, self.role != Role::Server);
        if room == 0 && !empty_fits {
            return Err(SendError::Full);
        }
        let accepted = data.get(..room.min(data.len())).unwrap_or_default();
        let last = fin && accepted.len() == data.len();
        if kind == MessageKind::Text {
            let mut validator = self.outgoing_utf8.clone();
            validator
                .feed(accepted)
                .map_err(|_| SendError::InvalidMessage)?;
            if last && !validator.is_complete() {
                return Err(SendError::InvalidMessage);
            }
            self.outgoing_utf8 = if last {
                Utf8Validator::default()
            } else {
                validator
            };
        }
        self.write_data_frames(kind, accepted, last, 0);
        self.outgoing = if last { None } else { Some(kind) };
        Ok(accepted.len())
    }

    /// Sends a ping (at most 125 bytes of payload).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong);
        }
        if self.send_capacity() < encoded_header_len(payload.len(), true) + payload.len() {
            return Err(SendError::Full);
        }
        self.write_frame(true, OpCode::Ping, payload);
        Ok(())
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes). Nothing more
    /// can be sent; messages still arrive until the peer's Close, which is awaited for
    /// `close_timeout`. A Close always fits: it may pass the output bound by one frame.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.check_open()?;
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode);
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
            return Err(SendError::ControlTooLong);
        }
        self.write_close(Some(code), reason.as_bytes());
        self.state = State::CloseSent {
            deadline: self.now.checked_add(self.limits.close_timeout),
        };
        Ok(())
    }

    /// Control frames of our own (ping, close) need an open connection.
    fn check_open(&self) -> Result<(), SendError> {
        match self.state {
            State::Open => Ok(()),
            _ => Err(SendError::Closing),
        }
    }

    /// Data may be sent while open, and while a Close is owed but not written yet: the end
    /// of a message in progress, or replies to messages received before the peer's Close or
    /// the error, go out ahead of it.
    fn check_can_send(&self) -> Result<(), SendError> {
        match self.state {
            State::Open => Ok(()),
            _ if self.owed_close.is_some() => Ok(()),
            _ => Err(SendError::Closing),
        }
    }

    /// Takes the time from a call that carries it. Output queued since the last such call
    /// has waited since the time known then.
    fn tell_time(&mut self, now: Instant) {
        if self.has_waiting_output() && self.pending_since.is_none() {
            self.pending_since = Some(self.now);
        }
        self.now = self.now.max(now);
    }

    /// Whether anything waits for `poll_transmit`.
    fn has_waiting_output(&self) -> bool {
        !self.output.is_empty() || self.owed_close.is_some() || self.owed_pong.is_some()
    }

    /// When waiting output crosses [`WsLimits::send_timeout`]; `None` while none waits.
    fn send_deadline(&self) -> Option<Instant> {
        if !self.has_waiting_output() || self.state == State::Closed {
            return None;
        }
        self.pending_since
            .unwrap_or(self.now)
            .checked_add(self.limits.send_timeout)
    }

    /// The peer took no output for [`WsLimits::send_timeout`]: nothing more can reach it, so
    /// the connection fails at once with `1006` (no Close frame could get out either).
    fn time_out_sending(&mut self) {
        self.events
            .push_back(Event::Error(ProtocolError::SendTimeout));
        self.state = State::Closed;
        self.send_timed_out = true;
        self.output = BytesMut::new();
        self.owed_pong = None;
        self.owed_close = None;
        self.pending_since = None;
        self.incoming = None;
        self.current = None;
        self.message = BytesMut::new();
        self.compressed = BytesMut::new();
        self.control.clear();
    }

    fn send_whole(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        if self.outgoing.is_some() {
            return Err(SendError::InvalidMessage);
        }
        if self.deflate.is_some() {
            return self.send_compressed(kind, data);
        }
        if self.encoded_message_len(data.len()) > self.send_capacity() {
            return Err(SendError::Full);
        }
        self.write_data_frames(kind, data, true, 0);
        Ok(())
    }

    /// Compresses and sends a whole message with RSV1 set. Room for the worst case (deflate
    /// can grow incompressible data slightly) is checked before compressing: with context
    /// takeover the compressor's state must only advance for a message that is sent.
    fn send_compressed(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        let worst = super::deflate::Compressor::max_compressed_len(data.len());
        if self.encoded_message_len(worst) > self.send_capacity() {
            return Err(SendError::Full);
        }
        let mut compressed = Vec::new();
        if let Some(deflate) = &mut self.deflate {
            if deflate.compressor.compress(data, &mut compressed).is_err() {
                return Err(SendError::Compression);
            }
        }
        self.write_data_frames(kind, &compressed, true, RSV1);
        Ok(())
    }

    /// Bytes a message of `len` payload bytes takes on the wire, headers included.
    fn encoded_message_len(&self, len: usize) -> usize {
        let frame = self.max_send_frame();
        let masked = self.role != Role::Server;
        let full = len / frame;
        let last = len % frame;
        let mut total =
            full.saturating_mul(frame.saturating_add(encoded_header_len(frame, masked)));
        if last > 0 || full == 0 {
            total = total.saturating_add(last + encoded_header_len(last, masked));
        }
        total
    }

    fn max_send_frame(&self) -> usize {
        self.limits.max_send_frame_size.max(1)
    }

    /// Payload bytes that fit in the free output, headers of every frame counted.
    fn payload_room(&self) -> usize {
        let capacity = self.send_capacity();
        let frame = self.max_send_frame();
        let per_frame = frame.saturating_add(encoded_header_len(frame, true));
        let whole = capacity / per_frame * frame;
        let left = capacity % per_frame;
        whole + left.saturating_sub(encoded_header_len(left, true))
    }

    /// Writes `data` as frames of at most `max_send_frame_size`; `rsv` goes on the first
    /// frame of a message only (RFC 7692 §6: RSV1 marks the message, not each frame).
    fn write_data_frames(&mut self, kind: MessageKind, data: &[u8], fin: bool, rsv: u8) {
        let mut opcode = match (self.outgoing, kind) {
            (Some(_), _) => OpCode::Continuation,
            (None, MessageKind::Text) => OpCode::Text,
            (None, MessageKind::Binary) => OpCode::Binary,
        };
        let mut rsv = if opcode == OpCode::Continuation {
            0
        } else {
            rsv
        };
        let frame = self.max_send_frame();
        let mut chunks = data.chunks(frame).peekable();
        if chunks.peek().is_none() {
            self.write_frame_rsv(fin, rsv, opcode, &[]);
            return;
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.write_frame_rsv(fin && last, rsv, opcode, chunk);
            opcode = OpCode::Continuation;
            rsv = 0;
        }
    }

    fn write_frame(&mut self, fin: bool, opcode: OpCode, payload: &[u8]) {
        self.write_frame_rsv(fin, 0, opcode, payload);
    }

    fn write_frame_rsv(&mut self, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) {
        let mask = self.next_mask();
        encode_frame(&mut self.output, fin, rsv, opcode, mask, payload);
    }

    /// The masking key of our next frame: none for a server; for a client, derived from the
    /// seed and a frame counter so that keys do not repeat or follow a visible pattern.
    fn next_mask(&mut self) -> Option<[u8; 4]> {
        let Role::Client { mask_seed } = self.role else {
            return None;
        };
        self.frames_sent = self.frames_sent.wrapping_add(1);
        let digest = Sha1::new()
            .chain_update(mask_seed)
            .chain_update(self.frames_sent.to_le_bytes())
            .finalize();
        let mut key = [0; 4];
        key.copy_from_slice(digest.get(..4).unwrap_or(&[0; 4]));
        Some(key)
    }

    fn write_close(&mut self, code: Option<CloseCode>, reason: &[u8]) {
        let payload = close_payload(code, reason);
        self.owed_pong = None;
        self.write_frame(true, OpCode::Close, &payload);
    }

    /// Owes the peer a Close, written by the next `poll_transmit` (see
    /// [`Self::check_can_send`]); no pong goes out any more.
    fn owe_close(&mut self, code: Option<CloseCode>, reason: &[u8]) {
        self.owed_pong = None;
        self.owed_close = Some(Bytes::from(close_payload(code, reason)));
    }

    fn after_flush(&mut self) {
        if let State::Closing {
            await_eof: false, ..
        } = self.state
        {
            self.state = State::Closed;
        }
    }

    fn handle(&mut self, item: Decoded) {
        match item {
            Decoded::Header(header) => self.start_frame(header),
            Decoded::Payload(n) => self.payload_arrived(n),
            Decoded::End => self.end_frame(),
        }
    }

    fn start_frame(&mut self, header: FrameHeader) {
        if let Some(error) = self.refusal(&header) {
            return self.fail(error);
        }
        if header.opcode.is_control() {
            self.control.clear();
            self.current = Some(Current::Control(header.opcode));
            return;
        }
        let incoming = self.incoming.unwrap_or(Incoming {
            kind: match header.opcode {
                OpCode::Text => MessageKind::Text,
                _ => MessageKind::Binary,
            },
            compressed: header.rsv & RSV1 != 0,
        });
        self.incoming = Some(incoming);
        self.current = Some(Current::Data { fin: header.fin });
    }

    /// Whether a frame with `header` carries uncompressed text: of a text message, not
    /// compressed.
    fn is_plain_text(&self, header: &FrameHeader) -> bool {
        match (header.opcode, self.incoming) {
            (OpCode::Text, None) => header.rsv & RSV1 == 0,
            (OpCode::Continuation, Some(incoming)) => {
                incoming.kind == MessageKind::Text && !incoming.compressed
            }
            _ => false,
        }
    }

    /// The rule a frame with `header` breaks, here and now (what the frame decoder cannot know:
    /// the message in progress, its size so far). Asked as soon as a header is known, so the
    /// zero-copy path refuses a frame before waiting for its payload, as the streaming one does.
    fn refusal(&self, header: &FrameHeader) -> Option<ProtocolError> {
        let compressed = header.rsv & RSV1 != 0;
        if compressed && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Some(ProtocolError::Compressed);
        }
        if header.opcode.is_control() {
            return None;
        }
        match (header.opcode, self.incoming) {
            (OpCode::Continuation, None) => return Some(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Some(ProtocolError::ExpectedContinuation),
        }
        let compressed = self
            .incoming
            .map_or(compressed, |incoming| incoming.compressed);
        // A compressed message is bounded after inflation, by the decompressor.
        let stored = if compressed { 0 } else { header.payload_len };
        let total = u64::try_from(self.message.len())
            .unwrap_or(u64::MAX)
            .saturating_add(stored);
        (total > u64::try_from(self.limits.max_message_size).unwrap_or(u64::MAX))
            .then_some(ProtocolError::MessageTooBig)
    }

    fn payload_arrived(&mut self, n: usize) {
        if self.compressed.len() >= INFLATE_CHUNK {
            // A compressed frame is inflated as it arrives, not held whole: the DEFLATE stream
            // may be cut anywhere, so memory stays at one chunk whatever the frame size.
            self.inflate_frame(false);
            return;
        }
        let Some(Incoming {
            kind: MessageKind::Text,
            compressed: false,
        }) = self.incoming
        else {
            return;
        };
        if !matches!(self.current, Some(Current::Data { .. })) {
            return;
        }
        self.validate_text_tail(n);
    }

    /// Validates the last `n` bytes of the message in progress as its next UTF-8 piece.
    fn validate_text_tail(&mut self, n: usize) {
        let start = self.message.len().saturating_sub(n);
        let new = self.message.get(start..).unwrap_or_default();
        if self.incoming_utf8.feed(new).is_err() {
            self.fail(ProtocolError::InvalidUtf8);
        }
    }

    fn end_frame(&mut self) {
        match self.current.take() {
            Some(Current::Data { fin }) => {
                if self.incoming.is_some_and(|i| i.compressed) && !self.inflate_frame(fin) {
                    return;
                }
                if fin {
                    self.end_message();
                }
            }
            None => {}
            Some(Current::Control(opcode)) => {
                let payload = self.control.split().freeze();
                self.control_frame(opcode, payload);
            }
        }
    }

    /// Inflates the compressed payload received so far onto the message (`fin`: it ends the
    /// message); false when that failed the connection.
    fn inflate_frame(&mut self, fin: bool) -> bool {
        let payload = self.compressed.split();
        self.inflate(&payload, fin)
    }

    /// Inflates `payload` (compressed, unmasked) onto the message; as
    /// [`inflate_frame`](Self::inflate_frame).
    fn inflate(&mut self, payload: &[u8], fin: bool) -> bool {
        let Some(deflate) = &mut self.deflate else {
            self.fail(ProtocolError::Compressed);
            return false;
        };
        let mut inflated = Vec::new();
        if let Err(e) = deflate.decompressor.decompress(payload, fin, &mut inflated) {
            self.fail(ProtocolError::Deflate(e));
            return false;
        }
        self.message.extend_from_slice(&inflated);
        if self.incoming.is_some_and(|i| i.kind == MessageKind::Text) {
            self.validate_text_tail(inflated.len());
        }
        matches!(self.state, State::Open | State::CloseSent { .. })
    }

    fn end_message(&mut self) {
        let Some(incoming) = self.incoming.take() else {
            return;
        };
        let payload = self.message.split().freeze();
        let message = match incoming.kind {
            MessageKind::Text => {
                let complete = self.incoming_utf8.is_complete();
                self.incoming_utf8.reset();
                if !complete {
                    return self.fail(ProtocolError::InvalidUtf8);
                }
                Message::Text(payload)
            }
            MessageKind::Binary => Message::Binary(payload),
        };
        self.events.push_back(Event::Message(message));
    }

    fn control_frame(&mut self, opcode: OpCode, payload: Bytes) {
        match opcode {
            OpCode::Ping => {
                if self.state == State::Open {
                    self.owe_pong(payload.clone());
                }
                self.events.push_back(Event::Ping(payload));
            }
            OpCode::Pong => {
                self.heartbeat.pong_received();
                self.events.push_back(Event::Pong(payload));
            }
            _ => self.close_received(&payload),
        }
    }

    /// Queues a pong now if it fits; else remembers only the latest (§5.5.3).
    fn owe_pong(&mut self, payload: Bytes) {
        let size = encoded_header_len(payload.len(), true) + payload.len();
        if self.owed_pong.is_none() && size <= self.send_capacity() {
            self.write_frame(true, OpCode::Pong, &payload);
        } else {
            self.owed_pong = Some(payload);
        }
    }

    fn close_received(&mut self, payload: &[u8]) {
        let (code, reason) = match payload {
            [] => (CloseCode::NO_STATUS, &[][..]),
            [hi, lo, reason @ ..] => (CloseCode(u16::from_be_bytes([*hi, *lo])), reason),
            [_] => return self.fail(ProtocolError::InvalidClose),
        };
        // A code on the wire must be sendable: 1005 only ever means "no code".
        if !payload.is_empty() && !code.is_sendable() {
            return self.fail(ProtocolError::InvalidClose);
        }
        let Ok(reason) = std::str::from_utf8(reason) else {
            return self.fail(ProtocolError::InvalidUtf8);
        };
        if self.state == State::Open {
            let echo = (code != CloseCode::NO_STATUS).then_some(code);
            self.owe_close(echo, &[]);
        }
        self.events.push_back(Event::Close {
            code,
            reason: reason.to_owned(),
        });
        self.finish_closing();
    }

    /// The close handshake is over on our side: the server closes once the output is
    /// written, the client waits for the server's TCP close.
    fn finish_closing(&mut self) {
        self.state = State::Closing {
            deadline: self.now.checked_add(self.limits.close_timeout),
            await_eof: matches!(self.role, Role::Client { .. }),
        };
        self.message.clear();
        self.control.clear();
    }

    /// Fails the connection (§7.1.7): an error event, a Close with the error's code unless we
    /// already sent one, and no more reading. It ends once the Close is written, or after
    /// `close_timeout` if the peer never reads it.
    fn fail(&mut self, error: ProtocolError) {
        self.events.push_back(Event::Error(error));
        if self.state == State::Open {
            self.owe_close(Some(error.close_code()), error.close_reason().as_bytes());
        }
        self.incoming = None;
        self.current = None;
        self.state = State::Closing {
            deadline: self.now.checked_add(self.limits.close_timeout),
            await_eof: false,
        };
        self.message = BytesMut::new();
        self.compressed = BytesMut::new();
        self.control.clear();
    }
}

/// The payload of a Close frame: the code (if any) then the reason.
fn close_payload(code: Option<CloseCode>, reason: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 + reason.len());
    if let Some(code) = code {
        payload.extend_from_slice(&code.0.to_be_bytes());
        payload.extend_from_slice(reason);
    }
    payload
}
