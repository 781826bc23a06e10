//! A scripted HTTP/2 client for the server-connection tests.
//!
//! The peer writes frames with [`weft_core::h2::encode`] and header blocks with our HPACK
//! [`Encoder`], hands them to a [`ServerConnection`] at a virtual `now`, and reads the server's
//! bytes back with [`weft_core::h2::decode`] and an HPACK [`Decoder`] of its own, so every test
//! checks the wire, not the connection's internals. Events the connection raises are kept in
//! arrival order; `expect_*` helpers take what a test asserts on and leave the rest.
//!
//! Included with `#[path = "support/h2_peer.rs"] mod h2_peer;` by the HTTP/2 test files only.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use weft_core::Limits;
use weft_core::h2::{
    ErrorCode, Frame, MAX_PAYLOAD_LEN, PREFACE, Priority, RequestHead, ServerConnection,
    ServerEvent, Settings, decode, encode,
};
use weft_core::hpack::{Decoder, Encoder, HeaderField};

/// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3).
pub(crate) const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

/// Bounded loops: no test may spin forever on a connection that stops making progress.
const MAX_ROUNDS: usize = 10_000;

/// A fixed starting instant; every later time is this plus a `Duration`.
pub(crate) fn t0() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `n` seconds.
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Decoded header fields, in wire order, as strings (lossy) for easy comparison.
pub(crate) type Fields = Vec<(String, String)>;

/// The first value of `name` in `fields`.
pub(crate) fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of `name` in `fields`.
pub(crate) fn field_values<'a>(fields: &'a Fields, name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The pseudo-header fields of `GET https://example.com{path}`.
pub(crate) fn get_fields(path: &str) -> Vec<(String, String)> {
    request_fields("GET", path, &[])
}

/// The pseudo-header fields of `{method} https://example.com{path}`, then `extra`.
pub(crate) fn request_fields(
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut fields = vec![
        (":method".to_owned(), method.to_owned()),
        (":scheme".to_owned(), "https".to_owned()),
        (":authority".to_owned(), "example.com".to_owned()),
        (":path".to_owned(), path.to_owned()),
    ];
    fields.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    fields
}

/// Borrowed pairs as owned pairs.
pub(crate) fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// A HeaderMap from pairs.
pub(crate) fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, http::HeaderValue::from_static(value));
    }
    map
}

/// Appends an HPACK integer (RFC 7541 §5.1) with an `prefix_bits`-bit prefix whose high bits
/// are `first`: for hand-built header blocks that our encoder would never produce.
pub(crate) fn hpack_int(value: usize, prefix_bits: u32, first: u8, dst: &mut Vec<u8>) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        dst.push(first | value as u8);
        return;
    }
    dst.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        dst.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    dst.push(rest as u8);
}

/// Appends a raw (not Huffman-coded) HPACK string literal (RFC 7541 §5.2).
pub(crate) fn hpack_str(value: &[u8], dst: &mut Vec<u8>) {
    hpack_int(value.len(), 7, 0, dst);
    dst.extend_from_slice(value);
}

/// What the server wrote, decoded: header blocks already reassembled and HPACK-decoded, every
/// other frame as it came.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    /// HEADERS plus its CONTINUATION frames.
    Headers {
        /// The stream.
        stream: u32,
        /// The decoded fields.
        fields: Fields,
        /// END_STREAM on the HEADERS frame.
        end_stream: bool,
        /// How many CONTINUATION frames the block took.
        continuations: usize,
    },
    /// PUSH_PROMISE plus its CONTINUATION frames.
    PushPromise {
        /// The stream the promise rides on.
        stream: u32,
        /// The promised stream.
        promised: u32,
        /// The decoded request fields.
        fields: Fields,
    },
    /// Any other frame.
    Frame(Frame),
}

/// A header block being reassembled from the server's HEADERS/PUSH_PROMISE + CONTINUATION.
#[derive(Debug)]
struct OpenBlock {
    stream: u32,
    end_stream: bool,
    promised: Option<u32>,
    block: BytesMut,
    continuations: usize,
}

/// The scripted client and the connection under test.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The connection under test.
    pub(crate) conn: ServerConnection,
    /// The virtual clock.
    pub(crate) now: Instant,
    /// The limits the connection was built with.
    pub(crate) limits: Limits,
    encoder: Encoder,
    decoder: Decoder,
    /// Server bytes not decoded yet.
    output: BytesMut,
    open_block: Option<OpenBlock>,
    /// What the server wrote, decoded and not taken by an `expect_*` yet.
    pub(crate) out: Vec<Out>,
    /// Every frame type/stream the server ever wrote, for counting (never taken).
    pub(crate) log: Vec<Out>,
    /// Events not taken yet.
    pub(crate) events: Vec<ServerEvent>,
    /// Every event seen, in order, as text (never taken).
    pub(crate) event_log: Vec<String>,
    /// Client bytes the server did not take yet, offered again before anything new.
    backlog: Vec<u8>,
    /// Whether the client reads what the server writes (else output stays queued).
    pub(crate) reading: bool,
    /// Whether the client answers the server's PINGs.
    pub(crate) auto_pong: bool,
    /// Whether the application takes events as they come (else they stay in the connection).
    pub(crate) polling: bool,
    /// Total bytes the server wrote.
    pub(crate) written: usize,
    /// Total client bytes the server took.
    pub(crate) taken: usize,
    /// Largest frame the client accepts (its SETTINGS_MAX_FRAME_SIZE).
    pub(crate) client_max_frame: u32,
    /// The server's SETTINGS (the first non-ACK one).
    pub(crate) server_settings: Option<Settings>,
    /// The server's output could not be decoded: why.
    pub(crate) garbled: Option<String>,
}

impl Peer {
    /// A connection accepted at [`t0`]; nothing sent yet.
    pub(crate) fn new(limits: Limits) -> Peer {
        let conn = ServerConnection::new(limits.clone(), t0());
        Peer::around(conn, limits)
    }

    /// A connection upgraded from HTTP/1.1 (h2c) with the client's `settings`; nothing sent.
    pub(crate) fn upgraded(limits: Limits, settings: &Settings) -> Peer {
        let conn = ServerConnection::upgraded(limits.clone(), t0(), settings);
        let mut peer = Peer::around(conn, limits);
        if let Some(size) = settings.max_frame_size() {
            peer.client_max_frame = size;
        }
        peer
    }

    fn around(conn: ServerConnection, limits: Limits) -> Peer {
        // Until the server's SETTINGS are acknowledged the client may use 4096 (RFC 9113
        // §6.5.2); never more than the server advertises.
        let table = (limits.h2.header_table_size as usize).min(4096);
        Peer {
            conn,
            now: t0(),
            limits,
            // A smaller table than the 4 096 in force at the start is announced with a size
            // update in the first block (RFC 7541 §4.2).
            encoder: Encoder::with_cap(4096, table),
            decoder: Decoder::new(4096, 1 << 24),
            output: BytesMut::new(),
            open_block: None,
            out: Vec::new(),
            log: Vec::new(),
            events: Vec::new(),
            event_log: Vec::new(),
            backlog: Vec::new(),
            reading: true,
            auto_pong: true,
            polling: true,
            written: 0,
            taken: 0,
            client_max_frame: 16_384,
            server_settings: None,
            garbled: None,
        }
    }

    /// A connection past the handshake: preface, empty client SETTINGS, both ACKs exchanged;
    /// the handshake's frames are consumed.
    pub(crate) fn connect(limits: Limits) -> Peer {
        Peer::connect_with(limits, &[])
    }

    /// [`Peer::connect`] with client SETTINGS parameters.
    pub(crate) fn connect_with(limits: Limits, settings: &[(u16, u32)]) -> Peer {
        let mut peer = Peer::new(limits);
        peer.handshake(settings);
        peer
    }

    /// Preface and SETTINGS, the server's SETTINGS acknowledged, ours acknowledged by it.
    pub(crate) fn handshake(&mut self, settings: &[(u16, u32)]) {
        self.send_raw(PREFACE);
        self.settings(settings);
        let theirs = self.take_settings();
        assert!(
            theirs.is_some(),
            "server sent no SETTINGS; wrote {:?}",
            self.out
        );
        self.settings_ack();
        self.expect_settings_ack();
        self.out.clear();
        assert!(
            self.events.is_empty(),
            "events during the handshake: {:?}",
            self.events
        );
    }

    // ----- sending -----

    /// Offers raw client bytes (after any backlog); returns how many of all offered bytes the
    /// server took in this call. What it refuses stays in the backlog.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) -> usize {
        self.backlog.extend_from_slice(bytes);
        self.flush()
    }

    /// Offers the backlog again; returns the bytes taken.
    pub(crate) fn flush(&mut self) -> usize {
        let mut total = 0;
        for _ in 0..MAX_ROUNDS {
            if self.backlog.is_empty() || !self.conn.wants_read() {
                break;
            }
            let capacity = self.conn.receive_capacity();
            if capacity == 0 {
                break;
            }
            let offer = capacity.min(self.backlog.len());
            let taken = self.conn.receive(self.now, &self.backlog[..offer]);
            assert!(taken <= offer, "receive took {taken} of {offer} bytes");
            self.backlog.drain(..taken);
            total += taken;
            self.taken += taken;
            self.pump();
            if taken == 0 {
                break;
            }
        }
        self.pump();
        total
    }

    /// Client bytes the server has not taken.
    pub(crate) fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Encodes and sends one frame; returns the bytes taken.
    pub(crate) fn send(&mut self, frame: Frame) -> usize {
        let mut wire = BytesMut::new();
        encode(&frame, &mut wire).expect("test frame fits");
        self.send_raw(&wire)
    }

    /// The bytes of one frame.
    pub(crate) fn frame_bytes(frame: &Frame) -> Vec<u8> {
        let mut wire = BytesMut::new();
        encode(frame, &mut wire).expect("test frame fits");
        wire.to_vec()
    }

    /// HPACK-encodes `fields` with the client's encoder (keeps its table in step with the
    /// server's decoder, so every block made must be sent).
    pub(crate) fn block(&mut self, fields: &[(String, String)]) -> Bytes {
        let fields: Vec<HeaderField> = fields
            .iter()
            .map(|(n, v)| HeaderField::new(Bytes::from(n.clone()), Bytes::from(v.clone())))
            .collect();
        let mut dst = BytesMut::new();
        self.encoder.encode(&fields, &mut dst);
        dst.freeze()
    }

    /// HEADERS with END_HEADERS carrying `fields`.
    pub(crate) fn headers(&mut self, stream: u32, fields: &[(String, String)], end_stream: bool) {
        let fragment = self.block(fields);
        self.send(Frame::Headers {
            stream,
            end_stream,
            end_headers: true,
            priority: None,
            pad_len: None,
            fragment,
        });
    }

    /// HEADERS with a raw, hand-built block.
    pub(crate) fn raw_headers(&mut self, stream: u32, block: Vec<u8>, end_stream: bool) {
        self.send(Frame::Headers {
            stream,
            end_stream,
            end_headers: true,
            priority: None,
            pad_len: None,
            fragment: Bytes::from(block),
        });
    }

    /// `GET https://example.com/` on `stream`, no body.
    pub(crate) fn get(&mut self, stream: u32) {
        self.headers(stream, &get_fields("/"), true);
    }

    /// `POST https://example.com/upload`, body to follow, with `extra` fields.
    pub(crate) fn post(&mut self, stream: u32, extra: &[(&str, &str)]) {
        self.headers(stream, &request_fields("POST", "/upload", extra), false);
    }

    /// DATA.
    pub(crate) fn data(&mut self, stream: u32, data: &[u8], end_stream: bool) {
        self.send(Frame::Data {
            stream,
            end_stream,
            pad_len: None,
            data: Bytes::copy_from_slice(data),
        });
    }

    /// RST_STREAM.
    pub(crate) fn rst(&mut self, stream: u32, code: ErrorCode) {
        self.send(Frame::RstStream { stream, code });
    }

    /// WINDOW_UPDATE (an increment of 0 is written as given).
    pub(crate) fn window_update(&mut self, stream: u32, increment: u32) {
        self.send(Frame::WindowUpdate { stream, increment });
    }

    /// PING (not an ACK).
    pub(crate) fn ping(&mut self, data: [u8; 8]) {
        self.send(Frame::Ping { ack: false, data });
    }

    /// PRIORITY (RFC 9113 §6.3).
    pub(crate) fn priority(&mut self, stream: u32, dependency: u32) {
        self.send(Frame::Priority {
            stream,
            priority: Priority {
                exclusive: false,
                dependency,
                weight: 15,
            },
        });
    }

    /// PRIORITY_UPDATE (RFC 9218 §7.1) for `stream` with a `priority` field value.
    pub(crate) fn priority_update(&mut self, stream: u32, value: &str) {
        let mut payload = stream.to_be_bytes().to_vec();
        payload.extend_from_slice(value.as_bytes());
        self.send(Frame::Unknown {
            kind: weft_core::h2::PRIORITY_UPDATE,
            flags: 0,
            stream: 0,
            payload: Bytes::from(payload),
        });
    }

    /// SETTINGS with `pairs`; the client's own decoding follows its MAX_FRAME_SIZE and
    /// HEADER_TABLE_SIZE at once (stricter than RFC 9113 allows a server to assume, so a
    /// server that ignores them is caught).
    pub(crate) fn settings(&mut self, pairs: &[(u16, u32)]) {
        for &(id, value) in pairs {
            if id == Settings::MAX_FRAME_SIZE {
                self.client_max_frame = value;
            }
            if id == Settings::HEADER_TABLE_SIZE {
                self.decoder.set_max_table_size(value as usize);
            }
        }
        self.send(Frame::Settings {
            ack: false,
            settings: pairs.iter().copied().collect(),
        });
    }

    /// SETTINGS ACK.
    pub(crate) fn settings_ack(&mut self) {
        self.send(Frame::Settings {
            ack: true,
            settings: Settings::new(),
        });
    }

    /// GOAWAY from the client.
    pub(crate) fn goaway(&mut self, last_stream: u32, code: ErrorCode) {
        self.send(Frame::GoAway {
            last_stream,
            code,
            debug: Bytes::new(),
        });
    }

    // ----- time -----

    /// Moves the clock by `by` and runs every timer now due.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
        self.fire_timers();
    }

    /// Calls `handle_timeout` while `poll_timeout` is due (bounded).
    pub(crate) fn fire_timers(&mut self) {
        for _ in 0..64 {
            match self.conn.poll_timeout() {
                Some(at) if at <= self.now => {
                    self.conn.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.pump();
    }

    // ----- reading -----

    /// Takes events, and (when reading) the server's output, decoding it.
    pub(crate) fn pump(&mut self) {
        while self.polling {
            let Some(event) = self.conn.poll_event() else {
                break;
            };
            self.event_log.push(describe(&event));
            self.events.push(event);
        }
        if self.reading {
            self.read_output();
        }
    }

    /// Drains `poll_transmit` and decodes what it gave (PINGs answered when `auto_pong`).
    pub(crate) fn read_output(&mut self) {
        for _ in 0..MAX_ROUNDS {
            match self.conn.poll_transmit(self.now) {
                Some(bytes) => {
                    self.written += bytes.len();
                    self.output.extend_from_slice(&bytes);
                }
                None => break,
            }
        }
        self.decode_output();
    }

    fn decode_output(&mut self) {
        let mut pongs = Vec::new();
        while self.garbled.is_none() {
            match decode(&mut self.output, self.client_max_frame) {
                Ok(Some(frame)) => {
                    if let Frame::Ping { ack: false, data } = frame {
                        pongs.push(data);
                    }
                    self.take_frame(frame);
                }
                Ok(None) => break,
                Err(e) => self.garbled = Some(format!("server wrote an invalid frame: {e}")),
            }
        }
        if let Some(why) = &self.garbled {
            panic!("{why}");
        }
        if self.auto_pong {
            for data in pongs {
                self.send(Frame::Ping { ack: true, data });
            }
        }
    }

    fn take_frame(&mut self, frame: Frame) {
        if let Some(open) = self.open_block.as_mut() {
            match frame {
                Frame::Continuation {
                    stream,
                    end_headers,
                    fragment,
                } if stream == open.stream => {
                    open.block.extend_from_slice(&fragment);
                    open.continuations += 1;
                    if end_headers {
                        self.finish_block();
                    }
                    return;
                }
                other => panic!("server interrupted a header block with {other:?}"),
            }
        }
        match frame {
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                fragment,
                ..
            } => self.start_block(stream, end_stream, None, fragment, end_headers),
            Frame::PushPromise {
                stream,
                end_headers,
                promised,
                fragment,
                ..
            } => self.start_block(stream, false, Some(promised), fragment, end_headers),
            Frame::Continuation { .. } => panic!("server sent CONTINUATION outside a block"),
            other => self.record(Out::Frame(other)),
        }
    }

    fn start_block(
        &mut self,
        stream: u32,
        end_stream: bool,
        promised: Option<u32>,
        fragment: Bytes,
        end_headers: bool,
    ) {
        self.open_block = Some(OpenBlock {
            stream,
            end_stream,
            promised,
            block: BytesMut::from(&fragment[..]),
            continuations: 0,
        });
        if end_headers {
            self.finish_block();
        }
    }

    fn finish_block(&mut self) {
        let open = self.open_block.take().expect("a block is open");
        let fields = self
            .decoder
            .decode(&open.block)
            .unwrap_or_else(|e| panic!("server wrote an undecodable header block: {e}"));
        let fields: Fields = fields
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                )
            })
            .collect();
        let out = match open.promised {
            Some(promised) => Out::PushPromise {
                stream: open.stream,
                promised,
                fields,
            },
            None => Out::Headers {
                stream: open.stream,
                fields,
                end_stream: open.end_stream,
                continuations: open.continuations,
            },
        };
        self.record(out);
    }

    fn record(&mut self, out: Out) {
        self.log.push(out.clone());
        self.out.push(out);
    }

    /// Reads everything queued now (also when the peer was not reading).
    pub(crate) fn drain(&mut self) {
        let reading = self.reading;
        self.reading = true;
        self.pump();
        self.reading = reading;
    }

    // ----- the application's side -----

    /// A complete response: `status`, no extra fields, `body` (may be empty), all accepted.
    pub(crate) fn respond(&mut self, stream: u32, status: u16, body: &[u8]) {
        let status = StatusCode::from_u16(status).expect("valid status");
        self.conn
            .send_response(stream, status, &HeaderMap::new(), body.is_empty())
            .expect("send_response");
        if !body.is_empty() {
            let taken = self.conn.send_data(stream, body, true).expect("send_data");
            assert_eq!(
                taken,
                body.len(),
                "send_data took only part of a small body"
            );
        }
        self.pump();
    }

    // ----- expectations on events -----

    /// Removes and returns the Request event for `stream`.
    pub(crate) fn expect_request(&mut self, stream: u32) -> (RequestHead, bool) {
        let at = self
            .events
            .iter()
            .position(|e| matches!(e, ServerEvent::Request { stream: s, .. } if *s == stream));
        match at.map(|i| self.events.remove(i)) {
            Some(ServerEvent::Request {
                head, end_stream, ..
            }) => (*head, end_stream),
            _ => panic!(
                "no Request event for stream {stream}; events: {:?}; wire: {:?}",
                self.events, self.out
            ),
        }
    }

    /// Whether a Request event for `stream` was ever raised.
    pub(crate) fn saw_request(&self, stream: u32) -> bool {
        let needle = format!("Request {{ stream: {stream},");
        self.event_log.iter().any(|e| e.starts_with(&needle))
    }

    /// How many Request events were ever raised.
    pub(crate) fn requests_seen(&self) -> usize {
        self.event_log
            .iter()
            .filter(|e| e.starts_with("Request {"))
            .count()
    }

    /// Removes the Data events of `stream`: their bytes joined, and whether one ended it.
    pub(crate) fn take_body(&mut self, stream: u32) -> (Vec<u8>, bool) {
        let mut body = Vec::new();
        let mut ended = false;
        self.events.retain(|e| match e {
            ServerEvent::Data {
                stream: s,
                data,
                end_stream,
            } if *s == stream => {
                body.extend_from_slice(data);
                ended |= *end_stream;
                false
            }
            _ => true,
        });
        (body, ended)
    }

    /// Removes and returns the Trailers event of `stream`.
    pub(crate) fn expect_trailers(&mut self, stream: u32) -> HeaderMap {
        let at = self
            .events
            .iter()
            .position(|e| matches!(e, ServerEvent::Trailers { stream: s, .. } if *s == stream));
        match at.map(|i| self.events.remove(i)) {
            Some(ServerEvent::Trailers { trailers, .. }) => trailers,
            _ => panic!("no Trailers event for stream {stream}: {:?}", self.events),
        }
    }

    /// Removes the Reset event of `stream`, asserting its code and origin.
    pub(crate) fn expect_reset_event(&mut self, stream: u32, code: ErrorCode, by_peer: bool) {
        let at = self
            .events
            .iter()
            .position(|e| matches!(e, ServerEvent::Reset { stream: s, .. } if *s == stream));
        match at.map(|i| self.events.remove(i)) {
            Some(ServerEvent::Reset {
                code: c,
                by_peer: b,
                ..
            }) => {
                assert_eq!(c, code, "Reset event code on stream {stream}");
                assert_eq!(b, by_peer, "Reset event by_peer on stream {stream}");
            }
            _ => panic!("no Reset event for stream {stream}: {:?}", self.events),
        }
    }

    /// The code of the Error event, if one was raised.
    pub(crate) fn error_event(&self) -> Option<ErrorCode> {
        self.events.iter().find_map(|e| match e {
            ServerEvent::Error(error) => Some(error.code),
            _ => None,
        })
    }

    // ----- expectations on the wire -----

    /// Removes the first GOAWAY, asserts its code, returns its last stream id.
    pub(crate) fn expect_goaway(&mut self, code: ErrorCode) -> u32 {
        let at = self
            .out
            .iter()
            .position(|o| matches!(o, Out::Frame(Frame::GoAway { .. })));
        match at.map(|i| self.out.remove(i)) {
            Some(Out::Frame(Frame::GoAway {
                code: c,
                last_stream,
                ..
            })) => {
                assert_eq!(c, code, "GOAWAY code");
                last_stream
            }
            _ => panic!(
                "no GOAWAY (expected {code}); wire: {:?}; events: {:?}",
                self.out, self.events
            ),
        }
    }

    /// Every GOAWAY the server ever wrote: (last stream, code).
    pub(crate) fn goaways(&self) -> Vec<(u32, ErrorCode)> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Out::Frame(Frame::GoAway {
                    last_stream, code, ..
                }) => Some((*last_stream, *code)),
                _ => None,
            })
            .collect()
    }

    /// Asserts a connection error: the Error event, GOAWAY with `code`, and a connection that
    /// closes once its output is read.
    pub(crate) fn expect_connection_error(&mut self, code: ErrorCode) {
        self.drain();
        assert_eq!(
            self.error_event(),
            Some(code),
            "Error event; events: {:?}; wire: {:?}",
            self.events,
            self.out
        );
        self.expect_goaway(code);
        assert!(
            self.conn.is_closed(),
            "connection not closed after a connection error and its output drained"
        );
    }

    /// Asserts no connection error happened (no GOAWAY, no Error event).
    pub(crate) fn expect_no_connection_error(&self) {
        assert!(
            self.goaways().is_empty(),
            "unexpected GOAWAY {:?}; events: {:?}",
            self.goaways(),
            self.event_log
        );
        assert_eq!(self.error_event(), None, "unexpected Error event");
    }

    /// Removes the first RST_STREAM on `stream`, asserting its code.
    pub(crate) fn expect_rst(&mut self, stream: u32, code: ErrorCode) {
        let at = self.out.iter().position(
            |o| matches!(o, Out::Frame(Frame::RstStream { stream: s, .. }) if *s == stream),
        );
        match at.map(|i| self.out.remove(i)) {
            Some(Out::Frame(Frame::RstStream { code: c, .. })) => {
                assert_eq!(c, code, "RST_STREAM code on stream {stream}")
            }
            _ => panic!(
                "no RST_STREAM on stream {stream} (expected {code}); wire: {:?}; events: {:?}",
                self.out, self.events
            ),
        }
    }

    /// A stream error on `stream` with `code`, or — where the RFC allows either — a connection
    /// error with the same code. Returns whether it was a connection error.
    pub(crate) fn expect_stream_or_connection_error(
        &mut self,
        stream: u32,
        code: ErrorCode,
    ) -> bool {
        self.drain();
        if self.goaways().iter().any(|(_, c)| *c != ErrorCode::NoError) {
            self.expect_goaway(code);
            true
        } else {
            self.expect_rst(stream, code);
            false
        }
    }

    /// The RST_STREAM codes the server ever wrote on `stream`.
    pub(crate) fn rsts_on(&self, stream: u32) -> Vec<ErrorCode> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Out::Frame(Frame::RstStream { stream: s, code }) if *s == stream => Some(*code),
                _ => None,
            })
            .collect()
    }

    /// Removes the first header block on `stream`: its fields and END_STREAM.
    pub(crate) fn expect_headers(&mut self, stream: u32) -> (Fields, bool) {
        let at = self
            .out
            .iter()
            .position(|o| matches!(o, Out::Headers { stream: s, .. } if *s == stream));
        match at.map(|i| self.out.remove(i)) {
            Some(Out::Headers {
                fields, end_stream, ..
            }) => (fields, end_stream),
            _ => panic!(
                "no HEADERS on stream {stream}; wire: {:?}; events: {:?}",
                self.out, self.events
            ),
        }
    }

    /// Removes every DATA frame on `stream`: the bytes joined, whether END_STREAM came, and
    /// the sizes of the frames.
    pub(crate) fn take_data(&mut self, stream: u32) -> (Vec<u8>, bool, Vec<usize>) {
        let mut body = Vec::new();
        let mut ended = false;
        let mut sizes = Vec::new();
        self.out.retain(|o| match o {
            Out::Frame(Frame::Data {
                stream: s,
                data,
                end_stream,
                ..
            }) if *s == stream => {
                body.extend_from_slice(data);
                ended |= *end_stream;
                sizes.push(data.len());
                false
            }
            _ => true,
        });
        (body, ended, sizes)
    }

    /// Takes the server's first SETTINGS (non-ACK) off the wire.
    pub(crate) fn take_settings(&mut self) -> Option<Settings> {
        let at = self
            .out
            .iter()
            .position(|o| matches!(o, Out::Frame(Frame::Settings { ack: false, .. })));
        let settings = match at.map(|i| self.out.remove(i)) {
            Some(Out::Frame(Frame::Settings { settings, .. })) => Some(settings),
            _ => None,
        };
        if self.server_settings.is_none() {
            self.server_settings = settings.clone();
        }
        settings
    }

    /// Removes the server's SETTINGS ACK.
    pub(crate) fn expect_settings_ack(&mut self) {
        let at = self
            .out
            .iter()
            .position(|o| matches!(o, Out::Frame(Frame::Settings { ack: true, .. })));
        assert!(
            at.map(|i| self.out.remove(i)).is_some(),
            "no SETTINGS ACK; wire: {:?}",
            self.out
        );
    }

    /// The flow-control credit the server granted on `stream` (0: the connection): the sum of
    /// its WINDOW_UPDATE increments.
    pub(crate) fn window_credit(&self, stream: u32) -> i64 {
        self.log
            .iter()
            .filter_map(|o| match o {
                Out::Frame(Frame::WindowUpdate {
                    stream: s,
                    increment,
                }) if *s == stream => Some(i64::from(*increment)),
                _ => None,
            })
            .sum()
    }

    /// How many frames the server ever wrote that `pred` picks.
    pub(crate) fn count_written(&self, pred: impl Fn(&Out) -> bool) -> usize {
        self.log.iter().filter(|o| pred(o)).count()
    }

    /// The largest frame payload the server may write to us.
    pub(crate) fn max_payload() -> u32 {
        MAX_PAYLOAD_LEN
    }

    /// Answers the server's output so far, then asserts it is closed.
    pub(crate) fn expect_closed(&mut self) {
        self.drain();
        assert!(self.conn.is_closed(), "connection not closed");
    }
}

/// Whether `o` is a WINDOW_UPDATE.
pub(crate) fn is_window_update(o: &Out) -> bool {
    matches!(o, Out::Frame(Frame::WindowUpdate { .. }))
}

/// Whether `o` is a PING ACK.
pub(crate) fn is_ping_ack(o: &Out) -> bool {
    matches!(o, Out::Frame(Frame::Ping { ack: true, .. }))
}

/// Whether `o` is a SETTINGS ACK.
pub(crate) fn is_settings_ack(o: &Out) -> bool {
    matches!(o, Out::Frame(Frame::Settings { ack: true, .. }))
}

/// Whether `o` is a RST_STREAM.
pub(crate) fn is_rst(o: &Out) -> bool {
    matches!(o, Out::Frame(Frame::RstStream { .. }))
}

/// With `H2_PEER_TRACE` set, a test prints everything the server wrote and raised.
impl Drop for Peer {
    fn drop(&mut self) {
        if std::env::var_os("H2_PEER_TRACE").is_some() {
            eprintln!("server wrote {} bytes:", self.written);
            for out in &self.log {
                eprintln!("  {out:?}");
            }
            eprintln!("events:");
            for event in &self.event_log {
                eprintln!("  {event}");
            }
        }
    }
}

/// An event as one short line for the log (bodies by length only).
fn describe(event: &ServerEvent) -> String {
    match event {
        ServerEvent::Data {
            stream,
            data,
            end_stream,
        } => format!(
            "Data {{ stream: {stream}, len: {}, end_stream: {end_stream} }}",
            data.len()
        ),
        other => format!("{other:?}"),
    }
}
