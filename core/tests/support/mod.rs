//! Shared pieces of the HTTP/1.1 server integration tests: a recording driver with a small
//! application that answers every request, deterministic input splits, and a response reader
//! that is independent of the code under test.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode, Version};
use weft_core::Limits;
use weft_core::h1::{BodySize, H1Error, ReadStatus, ServerConnection, ServerEvent};

/// One event as the tests compare it: owned, and with no `Bytes` sharing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ev {
    Request {
        method: String,
        target: String,
        version: Version,
        raw: Vec<u8>,
    },
    Data(Vec<u8>),
    Trailers(Vec<(String, Vec<u8>)>),
    End,
    Upgraded(Vec<u8>),
    Error(H1Error),
}

impl Ev {
    pub(crate) fn from_event(event: ServerEvent) -> Ev {
        match event {
            ServerEvent::Request(head) => Ev::Request {
                method: head.method.to_string(),
                target: head.uri.to_string(),
                version: head.version,
                raw: head.raw().to_vec(),
            },
            ServerEvent::Data(data) => Ev::Data(data.to_vec()),
            ServerEvent::Trailers(trailers) => Ev::Trailers(header_pairs(&trailers)),
            ServerEvent::EndOfMessage => Ev::End,
            ServerEvent::Upgraded { leftover } => Ev::Upgraded(leftover.to_vec()),
            ServerEvent::Error(error) => Ev::Error(error),
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// Field pairs in map order, for comparisons.
pub(crate) fn header_pairs(map: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    map.iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// Merges adjacent `Data` events (how a body is cut into events depends on how it arrived) and
/// drops empty ones.
pub(crate) fn coalesce(events: Vec<Ev>) -> Vec<Ev> {
    let mut merged: Vec<Ev> = Vec::with_capacity(events.len());
    for event in events {
        match (merged.last_mut(), event) {
            (_, Ev::Data(data)) if data.is_empty() => {}
            (Some(Ev::Data(previous)), Ev::Data(data)) => previous.extend_from_slice(&data),
            (_, event) => merged.push(event),
        }
    }
    merged
}

/// Everything one run of a connection produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// Events, adjacent `Data` coalesced.
    pub(crate) events: Vec<Ev>,
    /// All bytes the connection wrote.
    pub(crate) output: Vec<u8>,
    /// `is_closed()` once everything was fed, the peer closed and the output was drained.
    pub(crate) closed: bool,
}

/// A fixed starting instant; every later time is this plus a `Duration`.
pub(crate) fn t0() -> Instant {
    use std::sync::OnceLock;
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Runs `chunks` through a fresh connection, one `receive` per chunk (re-offering what a full
/// buffer refused), then signals end of input. The application answers each complete request
/// with `200` and the body `ok` (a bare `200` to CONNECT, which opens the tunnel), and asks
/// for any body held behind `Expect: 100-continue` as soon as the head arrives.
pub(crate) fn serve(limits: &Limits, chunks: &[&[u8]]) -> Outcome {
    let now = t0();
    let mut conn = ServerConnection::new(limits.clone(), now);
    let mut app = EchoApp::default();
    let mut upgraded = false;
    'feed: for (index, chunk) in chunks.iter().enumerate() {
        let mut rest = *chunk;
        while !rest.is_empty() {
            if upgraded {
                // The input belongs to the new protocol now: a driver hands it over as is.
                app.append_to_leftover(rest);
                for later in &chunks[index + 1..] {
                    app.append_to_leftover(later);
                }
                break 'feed;
            }
            let taken = conn.receive(now, rest);
            rest = &rest[taken..];
            app.pump(&mut conn, now);
            upgraded = app.upgraded;
            if taken == 0 && !upgraded {
                if conn.read_status() == ReadStatus::Closed {
                    // Input after an error or a close is never read.
                    break 'feed;
                }
                // The app answered everything it was shown, so room must have been made.
                let again = conn.receive(now, rest);
                assert!(
                    again > 0,
                    "connection stalled with {} bytes left",
                    rest.len()
                );
                rest = &rest[again..];
                app.pump(&mut conn, now);
                upgraded = app.upgraded;
            }
        }
    }
    if !upgraded {
        conn.receive_eof();
        app.pump(&mut conn, now);
    }
    Outcome {
        events: coalesce(app.events),
        output: app.output,
        closed: conn.is_closed(),
    }
}

/// The application behind [`serve`].
#[derive(Debug, Default)]
struct EchoApp {
    events: Vec<Ev>,
    output: Vec<u8>,
    method: Option<Method>,
    upgraded: bool,
}

impl EchoApp {
    fn pump(&mut self, conn: &mut ServerConnection, now: Instant) {
        while let Some(event) = conn.poll_event() {
            match &event {
                ServerEvent::Request(head) => {
                    self.method = Some(head.method.clone());
                    if head.expects_continue {
                        conn.request_body();
                    }
                }
                ServerEvent::EndOfMessage => {
                    let method = self.method.take().expect("end of a request never started");
                    if method == Method::CONNECT {
                        conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::EMPTY)
                            .unwrap();
                    } else {
                        conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(2))
                            .unwrap();
                        assert_eq!(conn.send_data(b"ok").unwrap(), 2);
                        conn.finish().unwrap();
                    }
                }
                ServerEvent::Upgraded { .. } => self.upgraded = true,
                _ => {}
            }
            self.events.push(Ev::from_event(event));
        }
        while let Some(bytes) = conn.poll_transmit(now) {
            self.output.extend_from_slice(&bytes);
        }
    }

    fn append_to_leftover(&mut self, bytes: &[u8]) {
        match self.events.last_mut() {
            Some(Ev::Upgraded(leftover)) => leftover.extend_from_slice(bytes),
            _ => panic!("leftover input without an Upgraded event"),
        }
    }
}

/// A tiny xorshift64 generator: deterministic splits without a dependency.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `1..=max`.
    pub(crate) fn between_1_and(&mut self, max: usize) -> usize {
        1 + (self.next_u64() % max.max(1) as u64) as usize
    }
}

/// `data` cut into pieces of random length (1 to `max_piece` bytes).
pub(crate) fn random_split(data: &[u8], seed: u64, max_piece: usize) -> Vec<&[u8]> {
    let mut rng = XorShift::new(seed);
    let mut pieces = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = rng.between_1_and(max_piece).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// `data` one byte per piece.
pub(crate) fn byte_split(data: &[u8]) -> Vec<&[u8]> {
    data.chunks(1).collect()
}

/// A response as read back from the output, by a reader that shares no code with the server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub(crate) trailers: Vec<(String, String)>,
}

impl Response {
    /// Values of the field `name` (lower-case), in order.
    pub(crate) fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let values = self.values(name);
        assert!(values.len() <= 1, "field {name} repeated: {values:?}");
        values.first().copied()
    }

    /// Whether the Connection field holds `token`.
    pub(crate) fn connection_has(&self, token: &str) -> bool {
        self.values("connection")
            .iter()
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Reads consecutive responses out of `output`. `bodiless[i]` says that the i-th final
/// response answers HEAD (so it has no body whatever its fields say). A response with neither
/// Content-Length nor chunked coding runs to the end of the output.
pub(crate) fn read_responses(output: &[u8], bodiless: &[bool]) -> Vec<Response> {
    let mut responses = Vec::new();
    let mut rest = output;
    let mut finals = 0;
    while !rest.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut fields);
        let head_len = match parsed.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "unreadable response ({other:?}) in {:?}",
                String::from_utf8_lossy(rest)
            ),
        };
        assert_eq!(parsed.version, Some(1), "responses are written as HTTP/1.1");
        let status = parsed.code.unwrap();
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect();
        rest = &rest[head_len..];
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        };
        let informational = (100..200).contains(&status);
        let head_request = !informational && bodiless.get(finals).copied().unwrap_or(false);
        if !informational {
            finals += 1;
        }
        let length = response.header("content-length").map(|v| {
            v.parse::<usize>()
                .unwrap_or_else(|_| panic!("bad content-length {v}"))
        });
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if informational
            || head_request
            || status == 204
            || status == 304
            || status == 101
            || (status / 100 == 2 && length.is_none() && !chunked && rest.is_empty())
        {
            // no body
        } else if chunked {
            assert!(length.is_none(), "both content-length and chunked");
            rest = read_chunked(rest, &mut response);
        } else if let Some(n) = length {
            assert!(rest.len() >= n, "body shorter than content-length");
            response.body = rest[..n].to_vec();
            rest = &rest[n..];
        } else {
            response.body = rest.to_vec();
            rest = &[];
        }
        responses.push(response);
    }
    responses
}

fn read_chunked<'a>(mut rest: &'a [u8], response: &mut Response) -> &'a [u8] {
    loop {
        let line_end = find(rest, b"\r\n").expect("chunk-size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
            .expect("hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        response.body.extend_from_slice(&rest[..size]);
        assert_eq!(&rest[size..size + 2], b"\r\n", "chunk data ends in CRLF");
        rest = &rest[size + 2..];
    }
    loop {
        let line_end = find(rest, b"\r\n").expect("trailer line");
        let line = &rest[..line_end];
        rest = &rest[line_end + 2..];
        if line.is_empty() {
            return rest;
        }
        let text = std::str::from_utf8(line).unwrap();
        let (name, value) = text.split_once(':').expect("trailer field");
        response
            .trailers
            .push((name.to_owned(), value.trim().to_owned()));
    }
}

/// Offset of `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// How many times `needle` occurs in `haystack`.
pub(crate) fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

/// A connection under a test's direct control, with a virtual clock.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) conn: ServerConnection,
    pub(crate) now: Instant,
}

impl Peer {
    pub(crate) fn new(limits: Limits) -> Self {
        let now = t0();
        Peer {
            conn: ServerConnection::new(limits, now),
            now,
        }
    }

    pub(crate) fn with_defaults() -> Self {
        Peer::new(Limits::default())
    }

    /// Moves the virtual clock forward.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Offers `data`, returning how many bytes were taken.
    pub(crate) fn receive(&mut self, data: &[u8]) -> usize {
        self.conn.receive(self.now, data)
    }

    /// Offers all of `data`, which must all be taken.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        let taken = self.receive(data);
        assert_eq!(taken, data.len(), "receive refused input");
    }

    /// Every event available now, adjacent data coalesced.
    pub(crate) fn events(&mut self) -> Vec<Ev> {
        let mut events = Vec::new();
        while let Some(event) = self.conn.poll_event() {
            events.push(Ev::from_event(event));
        }
        coalesce(events)
    }

    /// The next event, as the connection gives it.
    pub(crate) fn event(&mut self) -> Option<ServerEvent> {
        self.conn.poll_event()
    }

    /// Everything written so far and not yet taken.
    pub(crate) fn output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(bytes) = self.conn.poll_transmit(self.now) {
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Answers the current request with `200` and `body` (Content-Length).
    pub(crate) fn respond(&mut self, body: &[u8]) {
        self.respond_with(StatusCode::OK, &HeaderMap::new(), body);
    }

    pub(crate) fn respond_with(&mut self, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
        self.conn
            .send_response(status, headers, BodySize::Known(body.len() as u64))
            .unwrap();
        assert_eq!(self.conn.send_data(body).unwrap(), body.len());
        self.conn.finish().unwrap();
    }
}

/// A request `GET target` with a Host field and nothing else.
pub(crate) fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: example.com\r\n\r\n").into_bytes()
}

/// The target of a `Request` event.
pub(crate) fn target_of(event: &Ev) -> &str {
    match event {
        Ev::Request { target, .. } => target,
        other => panic!("not a request: {other:?}"),
    }
}

/// A short way to spell durations.
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
