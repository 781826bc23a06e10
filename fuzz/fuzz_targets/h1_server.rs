//! A whole server connection fed arbitrary bytes in arbitrary splits, answered by an arbitrary
//! application (body chunks as slices or as `Bytes` pieces), read by a peer that may stop reading,
//! its output taken in one buffer or in pieces for vectored writes. Properties: no panic; buffers stay
//! within `Limits`; every byte the server writes parses as valid HTTP/1.1 with our client;
//! output left untaken for `send_timeout` always ends the connection.
#![no_main]

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use weft_core::Limits;
use weft_core::h1::{
    BodySize, ClientConnection, ClientEvent, H1Error, ServerConnection, ServerEvent,
};

#[derive(Arbitrary, Debug)]
struct Input {
    small_limits: bool,
    /// Output taken in pieces for vectored writes (`poll_transmit_vectored`), else one buffer
    /// at a time (`poll_transmit`).
    vectored: bool,
    /// A send timeout of this many seconds (else the default, 60 s).
    send_timeout: Option<u8>,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Bytes from the peer.
    Receive(Vec<u8>),
    /// The application answers the request it has, if any.
    Respond(Answer),
    /// The application asks for a body held behind `Expect: 100-continue`.
    RequestBody,
    /// Virtual time passes.
    Wait(u16),
    /// The peer closes its side.
    Eof,
    /// The peer stops (false) or resumes (true) reading: while stopped, output stays queued.
    Reading(bool),
}

#[derive(Arbitrary, Debug)]
struct Answer {
    status: u16,
    known_length: bool,
    chunks: Vec<Vec<u8>>,
    trailer: bool,
    close: bool,
    /// Body chunks given as `Bytes` (`send_data_bytes`: queued as pieces of their own from
    /// `PIECE_MIN` bytes, without a copy) rather than as slices.
    as_bytes: bool,
}

struct Harness {
    server: ServerConnection,
    /// Mirrors the requests the server surfaced, so it can parse the server's responses.
    client: ClientConnection,
    written: Vec<u8>,
    now: Instant,
    limits: Limits,
    /// A request is surfaced and no final response started yet.
    awaiting_response: bool,
    /// Whether the peer takes the server's output.
    reading: bool,
    upgraded: bool,
    vectored: bool,
}

impl Harness {
    fn events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            match event {
                ServerEvent::Request(head) => {
                    self.awaiting_response = true;
                    self.mirror_request(&head.method);
                }
                // Nothing is written for it: no response to mirror.
                ServerEvent::Error(H1Error::SendTimeout) => {
                    assert!(self.server.send_timed_out());
                    self.awaiting_response = false;
                }
                ServerEvent::Error(_) => {
                    if !self.awaiting_response {
                        // The error response answers a request that never surfaced.
                        self.mirror_request(&Method::GET);
                    }
                    self.awaiting_response = false;
                }
                ServerEvent::Upgraded { .. } => self.upgraded = true,
                _ => {}
            }
        }
        self.check_bounds();
    }

    fn mirror_request(&mut self, method: &Method) {
        let uri = Uri::from_static("/");
        if self.client.send_request(method, &uri, &HeaderMap::new(), BodySize::EMPTY).is_ok() {
            let _ = self.client.finish();
        }
        while self.client.poll_transmit().is_some() {}
    }

    fn respond(&mut self, answer: Answer) {
        if !self.awaiting_response {
            return;
        }
        let status = StatusCode::from_u16(100 + answer.status % 500).unwrap_or(StatusCode::OK);
        let total: usize = answer.chunks.iter().map(Vec::len).sum();
        let size = if answer.known_length { BodySize::Known(total as u64) } else { BodySize::Unknown };
        let mut headers = HeaderMap::new();
        if answer.close {
            headers.insert("connection", HeaderValue::from_static("close"));
        }
        if self.server.send_response(status, &headers, size).is_err() {
            return;
        }
        if status.is_informational() {
            self.transmit();
            self.events();
            return;
        }
        self.awaiting_response = false;
        for chunk in &answer.chunks {
            let mut rest = bytes::Bytes::copy_from_slice(chunk);
            for _ in 0..64 {
                if rest.is_empty() {
                    break;
                }
                let sent = if answer.as_bytes {
                    self.server.send_data_bytes(&rest)
                } else {
                    self.server.send_data(&rest)
                };
                let taken = sent.unwrap_or(rest.len());
                rest = rest.slice(taken..);
                self.transmit();
            }
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("x-trailer", HeaderValue::from_static("1"));
        let _ = if answer.trailer { self.server.send_trailers(&trailers) } else { self.server.finish() };
        self.transmit();
        self.events();
    }

    fn transmit(&mut self) {
        if !self.reading {
            return;
        }
        // One buffer at a time, or in pieces for a vectored write (at most three at a time, as
        // the event loops take them): the bytes must be the same either way.
        let mut pieces = Vec::new();
        for _ in 0..1_000_000 {
            if self.vectored {
                self.server.poll_transmit_vectored(self.now, &mut pieces, 3);
            } else {
                pieces.extend(self.server.poll_transmit(self.now));
            }
            if pieces.is_empty() {
                break;
            }
            for piece in pieces.drain(..) {
                self.written.extend_from_slice(&piece);
            }
        }
        assert!(self.server.pending_output() == 0);
    }

    fn check_bounds(&self) {
        let input_limit = self.limits.max_buffered_input.max(self.limits.max_head_size + 32);
        assert!(self.server.buffered_input() <= input_limit);
    }

    /// Everything the server wrote must parse as HTTP/1.1 responses to what it was asked.
    fn check_output(mut self) {
        let mut offered = &self.written[..];
        for _ in 0..1_000_000 {
            let taken = self.client.receive(offered);
            offered = &offered[taken..];
            let mut progressed = taken > 0;
            while let Some(event) = self.client.poll_event() {
                progressed = true;
                match event {
                    ClientEvent::Error(error) => panic!("server wrote invalid HTTP/1.1: {error}"),
                    ClientEvent::Upgraded { .. } => return,
                    _ => {}
                }
            }
            if !progressed {
                break;
            }
        }
        assert!(offered.is_empty() || self.upgraded, "server output left unparsed");
    }
}

fuzz_target!(|input: Input| {
    let mut limits = Limits::default();
    if input.small_limits {
        limits.max_request_target_len = 64;
        limits.max_head_size = 256;
        limits.max_headers = 8;
        limits.max_body_size = 1024;
        limits.max_chunk_line_len = 32;
        limits.max_chunk_extensions_size = 64;
        limits.max_trailer_size = 64;
        limits.max_discard_body = 16;
        limits.max_buffered_input = 512;
        limits.max_buffered_output = 256;
    }
    if let Some(seconds) = input.send_timeout {
        limits.send_timeout = Duration::from_secs(u64::from(seconds));
    }
    let now = Instant::now();
    let mut client_limits = Limits::default();
    client_limits.max_body_size = u64::MAX;
    let mut harness = Harness {
        server: ServerConnection::new(limits.clone(), now),
        client: ClientConnection::new(client_limits),
        written: Vec::new(),
        now,
        limits,
        awaiting_response: false,
        reading: true,
        upgraded: false,
        vectored: input.vectored,
    };
    for step in input.steps {
        if harness.upgraded || harness.server.is_closed() {
            break;
        }
        match step {
            Step::Receive(bytes) => {
                let mut rest = &bytes[..];
                for _ in 0..64 {
                    let taken = harness.server.receive(harness.now, rest);
                    rest = &rest[taken..];
                    harness.events();
                    if taken == 0 || rest.is_empty() {
                        break;
                    }
                }
            }
            Step::Respond(answer) => harness.respond(answer),
            Step::RequestBody => harness.server.request_body(),
            Step::Wait(seconds) => {
                let by = Duration::from_secs(u64::from(seconds));
                // Output waits since the time last told at the latest, so this wait crosses
                // its send timeout.
                let crosses = harness.server.pending_output() > 0 && by >= harness.limits.send_timeout;
                harness.now += by;
                harness.server.handle_timeout(harness.now);
                if crosses {
                    assert!(harness.server.send_timed_out(), "output untaken past send_timeout");
                    harness.events();
                    assert!(harness.server.is_closed());
                }
            }
            Step::Eof => harness.server.receive_eof(),
            Step::Reading(reading) => harness.reading = reading,
        }
        harness.events();
        harness.transmit();
    }
    harness.check_output();
});
