//! A whole server WebSocket connection (RFC 6455) driven by a script: peer bytes in arbitrary
//! pieces, with or without permessage-deflate (RFC 7692, parameters from the input), with sends,
//! closes, heartbeat timeouts (time moved by the script) and EOF between them.
//!
//! Properties: no panic; input taken never exceeds input given; the buffered output stays
//! within `max_buffered_output` plus one Close, and one transmitted chunk within that plus one
//! owed pong; every transmitted chunk is whole, valid server frames, nothing follows our Close,
//! and the messages read back from it (inflated when compressed) are exactly the ones whose
//! sends were accepted; events respect the limits (UTF-8 text, sizes, sendable codes).
//! Heartbeat: a ping never comes before the interval since the last one, nor while closing,
//! nor past the output bound; the connection fails with `HeartbeatTimeout` exactly when a ping
//! went `pong_timeout` without any pong after it, and its Close says `1011 heartbeat timeout`;
//! while open with a heartbeat there is always a timer. Time: a timer never stays due after
//! `handle_timeout`; a closing connection has a deadline at most `close_timeout` after it
//! began closing, and is closed by then even if its output was never taken. Output left
//! untaken for `send_timeout` always ends the connection (`SendTimeout`, 1006, output
//! dropped). Nothing happens after EOF.
//!
//! The input (missing bytes read as zero; integers little-endian):
//! - a 13-byte configuration: `max_frame_size`, `max_message_size`, `max_buffered_output`,
//!   `max_send_frame_size` (u16 each); deflate flags (bit 0 negotiated, bit 1
//!   `server_no_context_takeover`, bit 2 `client_no_context_takeover`); window bits (server
//!   `8 + (b & 7)`, client `8 + (b >> 4 & 7)`); ping interval, pong timeout and close timeout
//!   in units of 100 ms (a zero interval: no heartbeat); then the send timeout in units of
//!   100 ms (zero: the default, 60 s);
//! - then operations, each an opcode byte ([`Op`], modulo their count) and its arguments.
#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use weft_core::WsLimits;
use weft_core::ws::deflate::{Compressor, Decompressor, DeflateParams, Side, WindowBits};
use weft_core::ws::frame::{OpCode, RSV1, encode_frame};
use weft_core::ws::{CloseCode, Connection, Event, Message, MessageKind, ProtocolError, Role};

/// The largest control frame a server writes: a 2-byte header (unmasked, length ≤ 125) and
/// 125 payload bytes.
const MAX_CONTROL_FRAME: usize = 2 + 125;
/// The unit of the script's durations.
const TICK: Duration = Duration::from_millis(100);
/// Operations run per input, so a long input cannot make one run slow.
const MAX_OPS: usize = 1000;
/// The masking key of the peer's frames built by the harness.
const PEER_MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// The deflate level of the peer's messages built by the harness.
const PEER_LEVEL: u32 = 6;
/// A heartbeat ping on the wire: a 2-byte header and the 8-byte counter.
const HEARTBEAT_PING_LEN: usize = 2 + 8;

/// The operations, by opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `len: u16, step: u8, bytes[len]`: the peer's bytes, offered `step` at a time (0: all).
    Feed,
    /// `step: u8`: offer what the connection has not taken yet again.
    Receive,
    /// `compress_text_split: u8, len: u8, bytes[len]`: a masked message built by the harness,
    /// compressed by the peer's own compressor when bit 0 is set (and deflate negotiated),
    /// text when bit 1, in two frames when bit 2; then offered whole.
    PeerMessage,
    /// `len: u8`: a masked pong with `len % 126` bytes from the peer, offered whole.
    PeerPong,
    /// `len: u8, bytes[len]`: `send_text` of the bytes (invalid UTF-8 replaced).
    SendText,
    /// `len: u16, fill: u8`: `send_binary` of a repeated byte (odd `fill`) or of noise.
    SendBinary,
    /// `len: u16, flags: u8`: `send_fragment` of `len` bytes, fin when bit 0, text when bit 1.
    SendFragment,
    /// `len: u8`: `send_ping` with `len` bytes (over 125 is refused).
    Ping,
    /// `code: u16, reason_len: u8`: `close`.
    Close,
    /// Take the output once and check it as the peer reads it.
    Transmit,
    /// `ticks: u16`: move time forward `ticks` × 10 ms and call `handle_timeout`.
    Advance,
    /// Move time to `poll_timeout` (if any, and not back) and call `handle_timeout`.
    AdvanceToTimeout,
    /// The peer closed the TCP connection.
    Eof,
}

const OPS: [Op; 13] = [
    Op::Feed,
    Op::Receive,
    Op::PeerMessage,
    Op::PeerPong,
    Op::SendText,
    Op::SendBinary,
    Op::SendFragment,
    Op::Ping,
    Op::Close,
    Op::Transmit,
    Op::Advance,
    Op::AdvanceToTimeout,
    Op::Eof,
];

/// Reads the input front to back; past its end every read is zero.
struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        let (first, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        *first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }
}

/// The connection's configuration, from the input's first bytes.
struct Config {
    limits: WsLimits,
    deflate: Option<DeflateParams>,
}

fn read_config(script: &mut Script) -> Config {
    let mut limits = WsLimits::default();
    limits.max_frame_size = usize::from(script.u16());
    limits.max_message_size = usize::from(script.u16());
    limits.max_buffered_output = usize::from(script.u16());
    limits.max_send_frame_size = usize::from(script.u16());
    let flags = script.u8();
    let bits = script.u8();
    let deflate = (flags & 1 != 0).then(|| DeflateParams {
        server_no_context_takeover: flags & 2 != 0,
        client_no_context_takeover: flags & 4 != 0,
        server_max_window_bits: window_bits(bits),
        client_max_window_bits: window_bits(bits >> 4),
    });
    let interval = script.u8();
    limits.ping_interval = (interval > 0).then(|| TICK * u32::from(interval));
    limits.pong_timeout = TICK * u32::from(script.u8());
    limits.close_timeout = TICK * u32::from(script.u8());
    let send_timeout = script.u8();
    if send_timeout > 0 {
        limits.send_timeout = TICK * u32::from(send_timeout);
    }
    Config { limits, deflate }
}

fn window_bits(bits: u8) -> WindowBits {
    WindowBits::new(8 + (bits & 7)).unwrap_or(WindowBits::MAX)
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script { data };
    let config = read_config(&mut script);
    let mut run = Run::new(config);
    for _ in 0..MAX_OPS {
        if script.is_empty() {
            break;
        }
        let op = OPS[usize::from(script.u8()) % OPS.len()];
        run.step(op, &mut script);
    }
    run.finish();
});

/// One connection under test and what the harness knows about it.
struct Run {
    conn: Connection,
    limits: WsLimits,
    now: Instant,
    /// Peer bytes the connection has not taken yet.
    pending: Vec<u8>,
    /// The peer's compressor for [`Op::PeerMessage`] (with deflate negotiated).
    peer_compressor: Option<Compressor>,
    wire: WireCheck,
    /// When the connection last started or advanced its ending (our Close, or an `Error` or
    /// `Close` event): it must be closed `close_timeout` later.
    ending_since: Option<Instant>,
    eof: bool,
    /// Since when output has waited untaken (as of the last operation).
    waiting_since: Option<Instant>,
    /// The connection failed with `SendTimeout`: its output was dropped.
    send_timed_out: bool,
    /// When the last heartbeat ping was written (seen as output growing by one ping during
    /// `handle_timeout`, the only thing it writes besides a Close), or the connection made.
    last_ping: Instant,
    /// When the oldest heartbeat ping not followed by a pong was written.
    unanswered_ping: Option<Instant>,
}

impl Run {
    fn new(config: Config) -> Run {
        let now = Instant::now();
        let limits = config.limits;
        Run {
            conn: Connection::with_deflate(Role::Server, limits.clone(), now, config.deflate),
            now,
            pending: Vec::new(),
            peer_compressor: config
                .deflate
                .map(|params| params.compressor(Side::Client, PEER_LEVEL)),
            wire: WireCheck::new(config.deflate),
            ending_since: None,
            eof: false,
            waiting_since: None,
            send_timed_out: false,
            last_ping: now,
            unanswered_ping: None,
            limits,
        }
    }

    fn step(&mut self, op: Op, script: &mut Script) {
        match op {
            Op::Feed => {
                let len = usize::from(script.u16());
                let step = script.u8();
                self.pending.extend_from_slice(script.take(len));
                self.offer(step);
            }
            Op::Receive => {
                let step = script.u8();
                self.offer(step);
            }
            Op::PeerMessage => {
                let flags = script.u8();
                let len = usize::from(script.u8());
                let payload = script.take(len).to_vec();
                self.queue_peer_message(flags, &payload);
                self.offer(0);
            }
            Op::PeerPong => {
                let len = usize::from(script.u8()) % 126;
                let mut frame = BytesMut::new();
                encode_frame(
                    &mut frame,
                    true,
                    0,
                    OpCode::Pong,
                    Some(PEER_MASK),
                    &vec![b'p'; len],
                );
                self.pending.extend_from_slice(&frame);
                self.offer(0);
            }
            Op::SendText => {
                let len = usize::from(script.u8());
                let text = String::from_utf8_lossy(script.take(len)).into_owned();
                if self.conn.send_text(&text).is_ok() {
                    self.wire.sent_whole(MessageKind::Text, text.as_bytes());
                }
            }
            Op::SendBinary => {
                let len = usize::from(script.u16());
                let data = filler(len, script.u8());
                if self.conn.send_binary(&data).is_ok() {
                    self.wire.sent_whole(MessageKind::Binary, &data);
                }
            }
            Op::SendFragment => {
                let len = usize::from(script.u16());
                let flags = script.u8();
                let fin = flags & 1 != 0;
                let kind = if flags & 2 != 0 {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                let data = vec![b'a'; len];
                if let Ok(n) = self.conn.send_fragment(kind, &data, fin) {
                    assert!(n <= data.len());
                    self.wire
                        .sent_part(kind, &data[..n], fin && n == data.len());
                }
            }
            Op::Ping => {
                let len = usize::from(script.u8());
                let _ = self.conn.send_ping(&vec![b'i'; len]);
            }
            Op::Close => {
                let code = CloseCode(script.u16());
                let reason = "r".repeat(usize::from(script.u8()));
                if self.conn.close(code, &reason).is_ok() {
                    assert!(code.is_sendable() && reason.len() <= 123);
                    self.ending_since = Some(self.now);
                }
            }
            Op::Transmit => self.transmit(),
            Op::Advance => {
                self.now += Duration::from_millis(10) * u32::from(script.u16());
                self.timeout();
            }
            Op::AdvanceToTimeout => {
                if let Some(deadline) = self.conn.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                self.timeout();
            }
            Op::Eof => {
                self.conn.receive_eof();
                self.drain_events(1);
                self.eof = true;
                // The output was dropped: messages not yet taken never reach the peer.
                self.wire.discard();
            }
        }
        self.check_state();
    }

    /// Offers the pending peer bytes `step` at a time (0: all), draining events after each
    /// call, until the connection takes nothing more.
    fn offer(&mut self, step: u8) {
        for _ in 0..=self.pending.len() {
            let n = match step {
                0 => self.pending.len(),
                step => usize::from(step).min(self.pending.len()),
            };
            let taken = self.conn.receive(self.now, &self.pending[..n]);
            assert!(taken <= n, "took {taken} of {n}");
            self.pending.drain(..taken);
            self.drain_events(2);
            if taken == 0 {
                break;
            }
        }
    }

    /// A message from the peer, built as a client would (masked, compressed when asked and
    /// negotiated, RSV1 on its first frame only).
    fn queue_peer_message(&mut self, flags: u8, payload: &[u8]) {
        let opcode = if flags & 2 != 0 {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        let mut body = payload.to_vec();
        let mut rsv = 0;
        if let (true, Some(compressor)) = (flags & 1 != 0, &mut self.peer_compressor) {
            body.clear();
            if compressor.compress(payload, &mut body).is_err() {
                return;
            }
            rsv = RSV1;
        }
        let mut wire = BytesMut::new();
        if flags & 4 != 0 {
            let (first, second) = body.split_at(body.len() / 2);
            encode_frame(&mut wire, false, rsv, opcode, Some(PEER_MASK), first);
            encode_frame(
                &mut wire,
                true,
                0,
                OpCode::Continuation,
                Some(PEER_MASK),
                second,
            );
        } else {
            encode_frame(&mut wire, true, rsv, opcode, Some(PEER_MASK), &body);
        }
        self.pending.extend_from_slice(&wire);
    }

    fn transmit(&mut self) {
        if let Some(chunk) = self.conn.poll_transmit(self.now) {
            let bound = self.limits.max_buffered_output + 2 * MAX_CONTROL_FRAME;
            assert!(chunk.len() <= bound, "chunk {} > {bound}", chunk.len());
            self.wire.read(&chunk);
        }
    }

    /// `handle_timeout` at the current time, as a driver would: again while the connection
    /// says it is due, a few times at most.
    fn timeout(&mut self) {
        for _ in 0..4 {
            let before = self.conn.pending_output();
            self.conn.handle_timeout(self.now);
            if self.conn.pending_output() == before + HEARTBEAT_PING_LEN {
                self.heartbeat_ping_sent();
            }
            self.drain_events(1);
            if !self.conn.poll_timeout().is_some_and(|t| t <= self.now) {
                break;
            }
        }
        assert!(
            self.conn.poll_timeout().is_none_or(|t| t > self.now),
            "a timer stays due after handle_timeout"
        );
        if self
            .ending_since
            .is_some_and(|since| since + self.limits.close_timeout <= self.now)
        {
            assert!(
                self.conn.is_closed(),
                "not closed close_timeout after ending"
            );
        }
        if self
            .waiting_since
            .is_some_and(|since| since + self.limits.send_timeout <= self.now)
        {
            assert!(
                self.conn.send_timed_out() || self.conn.is_closed(),
                "output untaken past send_timeout left the connection open"
            );
        }
        if self.pong_overdue() && !self.eof {
            assert!(
                self.ending_since.is_some(),
                "an overdue pong left the connection open"
            );
        }
    }

    /// A heartbeat ping was written now: never before the interval since the last one (or
    /// since the start), never while closing, and only if it fit in the output bound.
    fn heartbeat_ping_sent(&mut self) {
        let interval = self
            .limits
            .ping_interval
            .expect("a heartbeat ping without a heartbeat");
        assert!(
            self.now >= self.last_ping + interval,
            "a heartbeat ping too early"
        );
        assert!(
            self.ending_since.is_none(),
            "a heartbeat ping while closing"
        );
        assert!(
            self.conn.pending_output() <= self.limits.max_buffered_output,
            "a heartbeat ping past the output bound"
        );
        self.last_ping = self.now;
        self.unanswered_ping.get_or_insert(self.now);
    }

    fn pong_overdue(&self) -> bool {
        self.unanswered_ping
            .is_some_and(|sent| sent + self.limits.pong_timeout <= self.now)
    }

    fn drain_events(&mut self, at_most: usize) {
        let mut count = 0;
        while let Some(event) = self.conn.poll_event() {
            count += 1;
            assert!(!self.eof, "an event after EOF");
            self.check_event(&event);
        }
        assert!(count <= at_most, "{count} events at once");
    }

    fn check_event(&mut self, event: &Event) {
        let limits = &self.limits;
        match event {
            Event::Message(Message::Text(bytes)) => {
                assert!(std::str::from_utf8(bytes).is_ok());
                assert!(bytes.len() <= limits.max_message_size);
            }
            Event::Message(Message::Binary(bytes)) => {
                assert!(bytes.len() <= limits.max_message_size);
            }
            Event::Ping(p) => assert!(p.len() <= 125),
            Event::Pong(p) => {
                assert!(p.len() <= 125);
                // Any pong answers every ping before it.
                self.unanswered_ping = None;
            }
            Event::Close { code, reason } => {
                assert!(code.is_sendable() || [1005, 1006].contains(&code.0));
                assert!(reason.len() <= 123);
                self.ending_since = Some(self.now);
            }
            Event::Error(ProtocolError::SendTimeout) => {
                assert!(
                    self.waiting_since
                        .is_some_and(|since| since + self.limits.send_timeout <= self.now),
                    "a send timeout before send_timeout passed"
                );
                assert_eq!(ProtocolError::SendTimeout.close_code(), CloseCode::ABNORMAL);
                assert_eq!(self.conn.pending_output(), 0, "output kept after a send timeout");
                self.send_timed_out = true;
                self.ending_since = Some(self.now);
                // The output was dropped: messages not yet taken never reach the peer.
                self.wire.discard();
            }
            Event::Error(e) => {
                assert!(e.close_code().is_sendable());
                if *e == ProtocolError::HeartbeatTimeout {
                    assert!(
                        self.pong_overdue(),
                        "a heartbeat failure with no pong overdue"
                    );
                    self.wire.heartbeat_failed = true;
                }
                self.ending_since = Some(self.now);
            }
            _ => {}
        }
    }

    fn check_state(&mut self) {
        let bound = self.limits.max_buffered_output + MAX_CONTROL_FRAME;
        let pending = self.conn.pending_output();
        if pending == 0 {
            self.waiting_since = None;
        } else {
            self.waiting_since.get_or_insert(self.now);
        }
        assert!(pending <= bound, "output {pending} > {bound}");
        if self.limits.ping_interval.is_some() && self.ending_since.is_none() && !self.eof {
            assert!(
                self.conn.poll_timeout().is_some(),
                "an open heartbeat without a timer"
            );
        }
        if let (Some(since), false) = (self.ending_since, self.conn.is_closed()) {
            let deadline = self.conn.poll_timeout();
            assert!(
                deadline.is_some_and(|t| t <= since + self.limits.close_timeout),
                "ending with no deadline within close_timeout"
            );
        }
        if self.eof {
            assert!(self.conn.is_closed());
            assert_eq!(self.conn.receive(self.now, b"\x81\x80\0\0\0\0"), 0);
        }
    }

    /// The peer reads everything left, so every accepted message must have reached it (unless
    /// EOF dropped the output).
    fn finish(&mut self) {
        self.transmit();
        if !self.eof && !self.send_timed_out {
            assert!(self.wire.sent.is_empty(), "an accepted message never left");
        }
    }
}

/// `len` bytes to send: a repeated byte for an odd `fill` (compresses well), else noise (does
/// not compress, the worst case for the output budget).
fn filler(len: usize, fill: u8) -> Vec<u8> {
    if fill & 1 == 1 {
        return vec![fill; len];
    }
    let mut state = u32::from(fill) | 0x9e37_0000;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Our output as the peer reads it: whole frames, nothing after our Close, and the messages
/// we accepted to send, in order, inflated when compressed.
struct WireCheck {
    deflate: bool,
    inflater: Option<Decompressor>,
    /// Messages accepted by a send and not yet read back.
    sent: VecDeque<(MessageKind, Vec<u8>)>,
    /// The message being sent in fragments.
    sending: Option<(MessageKind, Vec<u8>)>,
    /// The message being read back: its kind, whether compressed, its bytes so far.
    reading: Option<(MessageKind, bool, Vec<u8>)>,
    close_seen: bool,
    heartbeat_failed: bool,
}

impl WireCheck {
    fn new(deflate: Option<DeflateParams>) -> Self {
        WireCheck {
            deflate: deflate.is_some(),
            inflater: deflate.map(|params| params.decompressor(Side::Client, 1 << 20)),
            sent: VecDeque::new(),
            sending: None,
            reading: None,
            close_seen: false,
            heartbeat_failed: false,
        }
    }

    fn sent_whole(&mut self, kind: MessageKind, data: &[u8]) {
        assert!(
            self.sending.is_none(),
            "a whole message inside a fragmented one"
        );
        self.sent.push_back((kind, data.to_vec()));
    }

    fn sent_part(&mut self, kind: MessageKind, data: &[u8], last: bool) {
        let (open_kind, bytes) = self.sending.get_or_insert_with(|| (kind, Vec::new()));
        assert_eq!(*open_kind, kind, "a fragment of another kind was accepted");
        bytes.extend_from_slice(data);
        if last {
            self.sent.extend(self.sending.take());
        }
    }

    /// EOF dropped the output: nothing more can be checked against it.
    fn discard(&mut self) {
        self.sent.clear();
        self.reading = None;
        self.close_seen = true;
    }

    fn read(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            assert!(!self.close_seen, "a frame after our Close");
            let (frame, len) = parse_server_frame(chunk);
            chunk = &chunk[len..];
            self.frame(frame);
        }
    }

    fn frame(&mut self, frame: WireFrame<'_>) {
        let compressed = frame.rsv & RSV1 != 0;
        assert_eq!(frame.rsv & !RSV1, 0, "RSV2/RSV3 set");
        match frame.opcode {
            0x8..=0xA => {
                assert!(frame.fin && !compressed && frame.payload.len() <= 125);
                if frame.opcode == 0x8 {
                    self.close(frame.payload);
                }
            }
            0x1 | 0x2 => {
                assert!(self.reading.is_none(), "a new message inside another");
                assert!(!compressed || self.deflate, "RSV1 without deflate");
                let kind = if frame.opcode == 0x1 {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.reading = Some((kind, compressed, Vec::new()));
                self.data(frame.payload, frame.fin);
            }
            0x0 => {
                assert!(!compressed, "RSV1 on a continuation");
                assert!(self.reading.is_some(), "a continuation outside a message");
                self.data(frame.payload, frame.fin);
            }
            other => panic!("opcode {other:#x} sent"),
        }
    }

    fn close(&mut self, payload: &[u8]) {
        self.close_seen = true;
        if let [hi, lo, reason @ ..] = payload {
            assert!(CloseCode(u16::from_be_bytes([*hi, *lo])).is_sendable());
            assert!(std::str::from_utf8(reason).is_ok());
        } else {
            assert!(payload.is_empty(), "a one-byte Close");
        }
        if self.heartbeat_failed {
            assert_eq!(payload, b"\x03\xf3heartbeat timeout");
        }
    }

    fn data(&mut self, payload: &[u8], fin: bool) {
        let Some((kind, compressed, bytes)) = &mut self.reading else {
            return;
        };
        if *compressed {
            let inflater = self.inflater.as_mut().expect("RSV1 only with deflate");
            inflater
                .decompress(payload, fin, bytes)
                .expect("our compressed message inflates");
        } else {
            bytes.extend_from_slice(payload);
        }
        if fin {
            let read = (*kind, std::mem::take(bytes));
            self.reading = None;
            let expected = self.sent.pop_front().expect("a message we never accepted");
            assert!(
                read == expected,
                "the message read back differs from the one sent"
            );
        }
    }
}

/// One frame of our output.
struct WireFrame<'a> {
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &'a [u8],
}

/// The frame at the start of `chunk` and its length on the wire; the chunk must hold it
/// whole (the output is always whole frames) and it must not be masked (we are the server).
fn parse_server_frame(chunk: &[u8]) -> (WireFrame<'_>, usize) {
    assert!(chunk.len() >= 2, "output ends inside a frame header");
    assert_eq!(chunk[1] & 0x80, 0, "a server frame is masked");
    let (len, header) = match chunk[1] & 0x7f {
        126 => {
            assert!(chunk.len() >= 4, "output ends inside a frame header");
            let len = u16::from_be_bytes([chunk[2], chunk[3]]);
            assert!(len >= 126, "length not in its shortest form");
            (usize::from(len), 4)
        }
        127 => {
            assert!(chunk.len() >= 10, "output ends inside a frame header");
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&chunk[2..10]);
            let len = u64::from_be_bytes(bytes);
            assert!(len > u64::from(u16::MAX), "length not in its shortest form");
            (
                usize::try_from(len).expect("a frame larger than memory"),
                10,
            )
        }
        short => (usize::from(short), 2),
    };
    assert!(
        chunk.len() - header >= len,
        "output ends inside a frame payload"
    );
    let frame = WireFrame {
        fin: chunk[0] & 0x80 != 0,
        rsv: chunk[0] & 0x70,
        opcode: chunk[0] & 0x0f,
        payload: &chunk[header..header + len],
    };
    (frame, header + len)
}
