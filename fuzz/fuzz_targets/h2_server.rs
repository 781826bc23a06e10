//! A whole HTTP/2 server connection: arbitrary client bytes after a valid preface, fed in
//! fuzz-chosen pieces, with an application that answers, streams bodies, pushes, resets,
//! releases capacity, lets time pass, shuts down and stops reading, as the input says.
//! Properties: no panic; output stays bounded (a client that does not read cannot make the
//! queue grow without end); request data not yet released stays within the windows we
//! advertised; events are sane (new streams odd and increasing, no body past its end or a
//! reset, nothing after the connection error); every byte the server writes decodes as
//! frames and HPACK blocks; output left untaken for `send_timeout` always ends the connection.
//!
//! Input layout, so seeds are plain conversations: byte 0 holds option bits (bit 0: small
//! limits, bit 1: a 1 s send timeout), byte 1 the number `n` of control bytes that follow, then `n` control bytes (one
//! per round: low nibble the size of the next piece of input, high nibble the application's
//! action), then the client bytes that follow the preface.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use weft_core::Limits;
use weft_core::h2::{
    ErrorCode, FRAME_HEADER_LEN, Frame, FrameHeader, PREFACE, ServerConnection, ServerEvent, decode,
};
use weft_core::hpack::Decoder;

/// Sizes of the input pieces, picked by the control byte's low nibble.
const PIECES: [usize; 16] = [
    1,
    2,
    3,
    5,
    8,
    9,
    13,
    17,
    24,
    32,
    64,
    100,
    256,
    1000,
    4096,
    usize::MAX,
];

/// Output the server may queue past `max_buffered_output`: frames it must answer with
/// (ACKs, RST_STREAM, GOAWAY, WINDOW_UPDATE) within the flood budgets, plus response heads.
const OUTPUT_SLACK: usize = 64 * 1024;

fn small_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_head_size = 1024;
    limits.max_headers = 16;
    limits.max_body_size = 4096;
    limits.max_buffered_input = 2048;
    limits.max_buffered_output = 2048;
    limits.h2.max_concurrent_streams = 4;
    limits.h2.initial_window_size = 1000;
    limits.h2.connection_window_size = 70_000;
    limits.h2.header_table_size = 256;
    limits.h2.settings_timeout = Duration::from_secs(2);
    limits.h2.idle_timeout = Duration::from_secs(10);
    limits.h2.send_stall_timeout = Duration::from_secs(5);
    limits.h2.max_streams_per_connection = 20;
    limits.h2.flood_window = Duration::from_secs(5);
    limits.h2.max_client_resets = 4;
    limits.h2.max_error_resets = 4;
    limits.h2.max_stream_errors_total = 8;
    limits.h2.max_continuation_frames = 4;
    limits.h2.max_settings_frames = 8;
    limits.h2.max_ping_frames = 8;
    limits.h2.max_empty_frames = 8;
    limits.h2.max_window_update_frames = 32;
    limits.h2.max_priority_frames = 32;
    limits
}

/// What the harness knows of one request stream.
#[derive(Debug, Default)]
struct StreamState {
    /// The request's body is complete (END_STREAM, trailers) or the stream was reset.
    request_done: bool,
    /// Request-body bytes surfaced and not released yet.
    unreleased: usize,
    /// Request-body bytes surfaced in total.
    body: u64,
    content_length: Option<u64>,
    /// Response bytes still to send, once the head is out.
    to_send: Option<Vec<u8>>,
    reset: bool,
}

/// Follows the client's bytes the server took, to know the largest SETTINGS_MAX_FRAME_SIZE
/// the client ever allowed (our frames must never be larger).
struct ClientView {
    buf: BytesMut,
    /// The client bytes stopped being valid frames: nothing more is learned from them.
    broken: bool,
    max_frame_size: u32,
    /// 65 535 plus every connection WINDOW_UPDATE increment: what we may send in DATA.
    connection_credit: u64,
}

impl ClientView {
    fn took(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            // Only whole frames go to `decode`, which would reserve room for a partial one
            // (up to 16 MiB for a fuzzed length).
            let Some(header) = self.buf.first_chunk::<FRAME_HEADER_LEN>() else {
                return;
            };
            let length = FrameHeader::parse(header).length as usize;
            if self.buf.len() < FRAME_HEADER_LEN + length {
                return;
            }
            match decode(&mut self.buf, 16_777_215) {
                Ok(Some(Frame::Settings {
                    ack: false,
                    settings,
                })) => {
                    if let Some(size) = settings.max_frame_size() {
                        self.max_frame_size = self.max_frame_size.max(size);
                    }
                }
                Ok(Some(Frame::WindowUpdate {
                    stream: 0,
                    increment,
                })) => {
                    self.connection_credit += u64::from(increment);
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) if e.is_connection_error() => {
                    self.broken = true;
                    return;
                }
                Err(_) => {}
            }
        }
    }
}

/// Reassembles and decodes what the server writes, checking it frame by frame.
struct Reader {
    buf: BytesMut,
    /// The largest frame the client allowed so far.
    max_frame_size: u32,
    /// The connection window the client granted so far (unbounded once its bytes were lost).
    connection_credit: u64,
    /// DATA bytes we sent.
    data_sent: u64,
    hpack: Decoder,
    /// A header block is open on this stream (HEADERS or PUSH_PROMISE without END_HEADERS).
    open_block: Option<(u32, Vec<u8>)>,
}

impl Reader {
    fn read(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        loop {
            match decode(&mut self.buf, self.max_frame_size) {
                Ok(Some(frame)) => self.check(frame),
                Ok(None) => return,
                Err(e) => panic!("server wrote an invalid frame: {e}"),
            }
        }
    }

    fn check(&mut self, frame: Frame) {
        if let Some((stream, mut block)) = self.open_block.take() {
            match frame {
                Frame::Continuation {
                    stream: s,
                    end_headers,
                    fragment,
                } if s == stream => {
                    block.extend_from_slice(&fragment);
                    if end_headers {
                        self.block(&block);
                    } else {
                        self.open_block = Some((stream, block));
                    }
                    return;
                }
                other => panic!("server interrupted its header block with {other:?}"),
            }
        }
        match frame {
            Frame::Headers {
                stream,
                end_headers,
                fragment,
                ..
            }
            | Frame::PushPromise {
                stream,
                end_headers,
                fragment,
                ..
            } => {
                assert_ne!(stream, 0);
                if end_headers {
                    self.block(&fragment);
                } else {
                    self.open_block = Some((stream, fragment.to_vec()));
                }
            }
            Frame::Continuation { .. } => panic!("server sent CONTINUATION outside a block"),
            Frame::Data { data, .. } => {
                self.data_sent += data.len() as u64;
                assert!(
                    self.data_sent <= self.connection_credit,
                    "sent {} DATA bytes with a connection window of {}",
                    self.data_sent,
                    self.connection_credit
                );
            }
            Frame::Settings {
                ack: false,
                settings,
            } => {
                assert_ne!(settings.enable_push(), Some(true), "server enabled push");
            }
            _ => {}
        }
    }

    fn block(&mut self, block: &[u8]) {
        if let Err(e) = self.hpack.decode(block) {
            panic!("server wrote an undecodable header block: {e}");
        }
    }
}

struct Harness {
    server: ServerConnection,
    limits: Limits,
    now: Instant,
    reader: Reader,
    client: ClientView,
    reading: bool,
    streams: HashMap<u32, StreamState>,
    /// Requests waiting for a response head, oldest first.
    awaiting: Vec<u32>,
    last_request: u32,
    errored: bool,
    shut_down: bool,
}

impl Harness {
    fn receive(&mut self, mut piece: &[u8]) {
        for _ in 0..64 {
            if piece.is_empty() || !self.server.wants_read() {
                break;
            }
            let capacity = self.server.receive_capacity();
            let offered = piece.len().min(capacity);
            let taken = self.server.receive(self.now, &piece[..offered]);
            assert!(taken <= offered, "took {taken} of {offered} bytes");
            self.client.took(&piece[..taken]);
            self.reader.max_frame_size = self.client.max_frame_size;
            self.reader.connection_credit = if self.client.broken {
                u64::MAX
            } else {
                self.client.connection_credit
            };
            piece = &piece[taken..];
            self.events();
            self.transmit();
            if taken == 0 {
                break;
            }
        }
    }

    fn events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            self.check_event(event);
        }
        self.check_windows();
    }

    fn check_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Request {
                stream,
                head,
                end_stream,
            } => {
                assert!(!self.errored, "request after the connection error");
                assert_eq!(stream % 2, 1, "request on even stream {stream}");
                assert!(
                    stream > self.last_request,
                    "stream {stream} after {}",
                    self.last_request
                );
                self.last_request = stream;
                self.streams.insert(
                    stream,
                    StreamState {
                        request_done: end_stream,
                        content_length: head.content_length,
                        ..StreamState::default()
                    },
                );
                self.awaiting.push(stream);
            }
            ServerEvent::Data {
                stream,
                data,
                end_stream,
            } => {
                assert!(!self.errored, "data after the connection error");
                let state = self
                    .streams
                    .get_mut(&stream)
                    .expect("data on a stream never surfaced");
                assert!(!state.request_done, "data on stream {stream} after its end");
                state.unreleased += data.len();
                state.body += data.len() as u64;
                assert!(
                    state.body <= self.limits.max_body_size,
                    "body past max_body_size"
                );
                if let Some(length) = state.content_length {
                    assert!(state.body <= length, "body past its content-length");
                }
                state.request_done = end_stream;
            }
            ServerEvent::Trailers { stream, trailers } => {
                assert!(trailers.len() <= self.limits.max_headers);
                let state = self
                    .streams
                    .get_mut(&stream)
                    .expect("trailers on an unknown stream");
                assert!(
                    !state.request_done,
                    "trailers on stream {stream} after its end"
                );
                state.request_done = true;
            }
            ServerEvent::Reset { stream, .. } => {
                if let Some(state) = self.streams.get_mut(&stream) {
                    state.request_done = true;
                    state.reset = true;
                    state.to_send = None;
                    // The application drops the body: what it held is given back.
                    if state.unreleased > 0 {
                        self.server.release_capacity(stream, state.unreleased);
                        state.unreleased = 0;
                    }
                }
                self.awaiting.retain(|s| *s != stream);
            }
            ServerEvent::PriorityUpdate { stream, .. } => assert_ne!(stream, 0),
            ServerEvent::Error(_) => {
                assert!(!self.errored, "two connection errors");
                self.errored = true;
            }
            _ => {}
        }
    }

    /// Request bodies surfaced and not released stay within the windows we advertised
    /// (65 535 until the client has acknowledged our SETTINGS).
    fn check_windows(&self) {
        let per_stream = self.limits.h2.initial_window_size.max(65_535) as usize;
        let connection = self.limits.h2.connection_window_size.max(65_535) as usize;
        let mut total = 0;
        for (stream, state) in &self.streams {
            assert!(
                state.unreleased <= per_stream,
                "stream {stream} holds {} bytes",
                state.unreleased
            );
            total += state.unreleased;
        }
        assert!(
            total <= connection,
            "{total} unreleased bytes over the connection"
        );
    }

    fn transmit(&mut self) {
        if self.reading {
            for _ in 0..100_000 {
                match self.server.poll_transmit(self.now) {
                    Some(bytes) => self.reader.read(&bytes),
                    None => break,
                }
            }
        }
        let pending = self.server.pending_output();
        assert!(
            pending <= self.limits.max_buffered_output + OUTPUT_SLACK,
            "{pending} bytes of output queued"
        );
    }

    fn act(&mut self, action: u8) {
        match action {
            6 => self.respond_all(),
            7 => self.send_bodies(),
            8 => self.release_all(),
            9 => self.wait(Duration::from_secs(1)),
            10 => self.wait(Duration::from_secs(30)),
            11 => {
                if let Some(stream) = self.awaiting.first().copied() {
                    self.server.reset(stream, ErrorCode::Cancel);
                    self.awaiting.remove(0);
                }
            }
            12 => self.push(),
            13 => {
                self.server.shutdown();
                self.shut_down = true;
            }
            14 => self.reading = !self.reading,
            15 => self.trailers(),
            _ => {}
        }
        self.events();
        self.transmit();
    }

    fn respond_all(&mut self) {
        for (i, stream) in std::mem::take(&mut self.awaiting).into_iter().enumerate() {
            let status = [
                StatusCode::OK,
                StatusCode::NOT_FOUND,
                StatusCode::NO_CONTENT,
            ][i % 3];
            let body = vec![b'r'; (stream as usize * 37) % 3000];
            let end = body.is_empty() || status == StatusCode::NO_CONTENT;
            let sent = self
                .server
                .send_response(stream, status, &HeaderMap::new(), end);
            if let (Ok(()), false, Some(state)) = (sent, end, self.streams.get_mut(&stream)) {
                state.to_send = Some(body);
            }
        }
        self.send_bodies();
    }

    fn send_bodies(&mut self) {
        let streams: Vec<u32> = self.streams.keys().copied().collect();
        for stream in streams {
            let Some(state) = self.streams.get_mut(&stream) else {
                continue;
            };
            let Some(body) = state.to_send.as_mut() else {
                continue;
            };
            match self.server.send_data(stream, body, true) {
                Ok(taken) => {
                    assert!(taken <= body.len());
                    body.drain(..taken);
                    if body.is_empty() {
                        state.to_send = None;
                    }
                }
                Err(_) => state.to_send = None,
            }
        }
    }

    fn trailers(&mut self) {
        let stream = self
            .streams
            .iter()
            .find(|(_, s)| s.to_send.is_some())
            .map(|(id, _)| *id);
        if let Some(stream) = stream {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-trailer", HeaderValue::from_static("1"));
            let sent = self.server.send_trailers(stream, &trailers);
            if let (Ok(()), Some(state)) = (sent, self.streams.get_mut(&stream)) {
                state.to_send = None;
            }
        }
    }

    fn push(&mut self) {
        let Some(stream) = self.awaiting.first().copied() else {
            return;
        };
        let uri = Uri::from_static("https://example.com/pushed.css");
        if let Ok(promised) =
            self.server
                .push_promise(stream, &Method::GET, &uri, &HeaderMap::new())
        {
            assert_eq!(promised % 2, 0, "promised odd stream {promised}");
            if self
                .server
                .send_response(promised, StatusCode::OK, &HeaderMap::new(), false)
                .is_ok()
            {
                self.streams.insert(
                    promised,
                    StreamState {
                        request_done: true,
                        to_send: Some(b"pushed".to_vec()),
                        ..StreamState::default()
                    },
                );
            }
        }
    }

    fn release_all(&mut self) {
        for (stream, state) in &mut self.streams {
            if state.unreleased > 0 {
                self.server.release_capacity(*stream, state.unreleased);
                state.unreleased = 0;
            }
        }
    }

    fn wait(&mut self, by: Duration) {
        // Output waits since the time last told at the latest, so this wait crosses its
        // send timeout.
        let crosses = !self.reading
            && self.server.pending_output() > 0
            && by >= self.limits.send_timeout;
        self.now += by;
        if self.server.poll_timeout().is_some_and(|at| at <= self.now) {
            self.server.handle_timeout(self.now);
        }
        if crosses {
            assert!(
                self.server.send_timed_out(),
                "output untaken past send_timeout left the connection open"
            );
        }
    }

    /// Everything answered and released, time run out, the client gone: the connection ends.
    fn finish(&mut self) {
        self.reading = true;
        self.act(6);
        for _ in 0..8 {
            self.act(8);
            self.act(7);
            self.act(10);
        }
        self.server.receive_eof();
        self.events();
        self.transmit();
        for _ in 0..8 {
            self.act(10);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return;
    };
    let n = usize::from(n).min(rest.len());
    let (control, mut wire) = rest.split_at(n);
    let mut limits = if options & 1 != 0 {
        small_limits()
    } else {
        Limits::default()
    };
    if options & 2 != 0 {
        limits.send_timeout = Duration::from_secs(1);
    }
    let now = Instant::now();
    let mut h = Harness {
        server: ServerConnection::new(limits.clone(), now),
        limits,
        now,
        client: ClientView {
            buf: BytesMut::new(),
            broken: false,
            max_frame_size: 16_384,
            connection_credit: 65_535,
        },
        reader: Reader {
            buf: BytesMut::new(),
            max_frame_size: 16_384,
            connection_credit: 65_535,
            data_sent: 0,
            hpack: Decoder::new(65_536, usize::MAX),
            open_block: None,
        },
        reading: true,
        streams: HashMap::new(),
        awaiting: Vec::new(),
        last_request: 0,
        errored: false,
        shut_down: false,
    };
    h.transmit();
    h.receive(PREFACE);
    // The preface is not a frame: the client view starts after it.
    h.client.buf.clear();
    let mut round = 0usize;
    while !wire.is_empty() && !h.server.is_closed() {
        let c = control
            .get(round % control.len().max(1))
            .copied()
            .unwrap_or(0x0f);
        round += 1;
        let size = PIECES[usize::from(c & 0x0f)].min(wire.len());
        let (piece, later) = wire.split_at(size);
        h.receive(piece);
        wire = later;
        h.act(c >> 4);
        if round > 100_000 {
            break;
        }
    }
    h.finish();
});
