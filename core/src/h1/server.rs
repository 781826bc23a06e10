//! The server role of an HTTP/1.1 connection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use super::decode::{BodyDecoder, Decoded};
use super::encode::{self, BodyEncoder};
use super::error::{H1Error, SendError};
use super::error_pages::ErrorPages;
use super::framing::{BodyFraming, ConnectionOptions, parse_decimal};
use super::head::{RequestHead, parse_request};
use super::scan::{HeadKind, HeadScanner};
use crate::Limits;

/// Something the server connection learned from the bytes it was given.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A request head. Its body (possibly empty) follows as `Data`, `Trailers` and
    /// `EndOfMessage`. Answer it with [`ServerConnection::send_response`].
    Request(Box<RequestHead>),
    /// A piece of the request body.
    Data(Bytes),
    /// The trailer section of a chunked request body.
    Trailers(HeaderMap),
    /// The request body is complete.
    EndOfMessage,
    /// The connection switched protocols (after `101`, or `2xx` to CONNECT). `leftover` holds
    /// the bytes that arrived after the request: they belong to the new protocol. The
    /// connection takes no more input; flush its output, then hand the socket over.
    Upgraded {
        /// Bytes received past the end of the request.
        leftover: Bytes,
    },
    /// The peer broke a rule or crossed a limit. An error response (when one could still be
    /// sent) is in the output, and the connection closes once that output is written.
    Error(H1Error),
}

impl PartialEq for RequestHead {
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw()
    }
}

/// How much and what kind of body a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySize {
    /// Exactly this many bytes; sent with Content-Length.
    Known(u64),
    /// Not known in advance: chunked on HTTP/1.1, close-delimited on HTTP/1.0.
    Unknown,
}

impl BodySize {
    /// No body.
    pub const EMPTY: BodySize = BodySize::Known(0);
}

/// Whether the connection can use more input now (h11's NEED_DATA and PAUSED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// More bytes are needed to make progress.
    NeedData,
    /// Input is not wanted until the application acts: it has to answer the current request
    /// before the next pipelined one is read, call [`ServerConnection::request_body`] for a
    /// body held behind `Expect: 100-continue`, or drain events from a full buffer.
    Paused,
    /// No more input will be read.
    Closed,
}

/// What the reading side is doing.
#[derive(Debug, Clone)]
enum Reader {
    /// Waiting for (or reading) a request head; only while no response is owed.
    Head,
    /// The body is held until the application asks for it (`Expect: 100-continue`).
    AwaitingContinue(BodyDecoder),
    /// Reading the body.
    Body(BodyDecoder),
    /// The response is complete but the body is not: dropping up to `budget` more bytes so the
    /// connection can be reused.
    Discarding { decoder: BodyDecoder, budget: u64 },
    /// The request is fully read.
    Done,
    /// The protocol switched; input is no longer ours.
    Upgraded,
    /// Nothing more will be read.
    Closed,
}

/// What the writing side is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Writer {
    /// No request awaits an answer.
    Idle,
    /// A request awaits its final response head (1xx may have been sent).
    AwaitingHead,
    /// The response head is written; its body is being written.
    Body(BodyEncoder),
    /// The response is complete.
    Done,
    /// The protocol switched.
    Upgraded,
    /// Nothing more will be written.
    Closed,
}

/// What we know about the exchange in progress.
#[derive(Debug, Clone)]
struct Exchange {
    method: Method,
    version: Version,
    /// Whether the connection may persist after this exchange; only ever goes from true to false.
    keep_alive: bool,
    wants_upgrade: bool,
}

/// Which deadline is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    /// The request head must complete (slowloris defence).
    Head,
    /// The request body must not stall.
    BodyIdle,
    /// An idle persistent connection waits for its next request.
    KeepAlive,
}

#[derive(Debug, Clone, Copy)]
struct Timer {
    kind: TimerKind,
    /// Armed from the latest time the connection was told as soon as the timer is set;
    /// `None` only when that is past what an `Instant` can hold.
    deadline: Option<Instant>,
}

/// The server side of one HTTP/1.1 connection, as a sans-IO state machine.
///
/// Its methods fall in four kinds, after quinn-proto:
/// - **input**: [`receive`](Self::receive) bytes read from the peer, [`receive_eof`](Self::receive_eof)
///   when the peer closed, [`handle_timeout`](Self::handle_timeout) when the deadline from
///   [`poll_timeout`](Self::poll_timeout) passed;
/// - **events out**: [`poll_event`](Self::poll_event) until it returns `None`;
/// - **the application's answer**: [`send_response`](Self::send_response),
///   [`send_data`](Self::send_data), [`finish`](Self::finish) or [`send_trailers`](Self::send_trailers),
///   and [`request_body`](Self::request_body) for `Expect: 100-continue`;
/// - **output**: [`poll_transmit`](Self::poll_transmit) gives bytes to write to the peer
///   ([`poll_transmit_vectored`](Self::poll_transmit_vectored) several pieces at once, for
///   bodies queued without a copy by [`send_data_bytes`](Self::send_data_bytes)).
///
/// A driver calls `poll_event` and `poll_transmit` after every input and every send, then waits
/// for the socket or for `poll_timeout`, and closes the socket once [`is_closed`](Self::is_closed).
///
/// Requests are answered one at a time, in order: a pipelined request is read only once the
/// response before it is complete, so a later response never overtakes an earlier one.
///
/// Timers start from the latest time the connection was told (`new`, `receive`,
/// `poll_transmit`, `handle_timeout`), armed at once when set, so that
/// [`poll_timeout`](Self::poll_timeout) always shows them; the connection itself never reads a
/// clock. Output left untaken by `poll_transmit` for `Limits::send_timeout` ends the
/// connection ([`H1Error::SendTimeout`], see [`send_timed_out`](Self::send_timed_out)).
#[derive(Debug)]
pub struct ServerConnection {
    limits: Limits,
    input: BytesMut,
    /// The open end of the output: heads, framing and copied body bytes.
    output: BytesMut,
    /// Output sealed before `output`, in order: pieces `poll_transmit` hands out as they are
    /// (body `Bytes` queued without a copy, and the bytes written before them).
    sealed: VecDeque<Bytes>,
    /// Bytes in `sealed`.
    sealed_len: usize,
    scanner: HeadScanner,
    reader: Reader,
    writer: Writer,
    exchange: Option<Exchange>,
    /// Whether the last decode asked for more bytes (the body is starved, not stalled by us).
    starved: bool,
    /// The peer will send nothing more.
    peer_closed: bool,
    /// Whether any request has started on this connection.
    seen_request: bool,
    /// The server is shutting down: no exchange after the current one.
    draining: bool,
    timer: Option<Timer>,
    /// The latest time the connection was told; timers start from it.
    now: Instant,
    /// Since when output has waited untaken, once a call carrying the time saw it waiting
    /// (before that, it waited since `now`: see [`Self::send_deadline`]).
    pending_since: Option<Instant>,
    /// The connection ended because its output was not taken in time.
    send_timed_out: bool,
    /// The driver is writing the current body to the transport itself
    /// ([`begin_direct_body`](Self::begin_direct_body)); the send timeout watches its progress.
    direct: bool,
    date: Option<HeaderValue>,
    pending_error: Option<H1Error>,
    pending_upgrade: Option<Bytes>,
    /// Bodies for the error responses written by `fail`.
    error_pages: ErrorPages,
}

impl ServerConnection {
    /// A new connection, accepted at `now`: the first request head must arrive within
    /// `limits.head_timeout`.
    pub fn new(limits: Limits, now: Instant) -> Self {
        let mut connection = ServerConnection {
            limits,
            input: BytesMut::new(),
            output: BytesMut::new(),
            sealed: VecDeque::new(),
            sealed_len: 0,
            scanner: HeadScanner::default(),
            reader: Reader::Head,
            writer: Writer::Idle,
            exchange: None,
            starved: true,
            peer_closed: false,
            seen_request: false,
            draining: false,
            timer: None,
            now,
            pending_since: None,
            send_timed_out: false,
            direct: false,
            date: None,
            pending_error: None,
            pending_upgrade: None,
            error_pages: ErrorPages::default(),
        };
        connection.set_timer(Some(TimerKind::Head));
        connection
    }

    // ----- getters -----

    /// The limits this connection enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether more input is useful now.
    pub fn read_status(&self) -> ReadStatus {
        let room = self.receive_capacity() > 0;
        match &self.reader {
            _ if self.peer_closed => ReadStatus::Closed,
            Reader::Closed | Reader::Upgraded => ReadStatus::Closed,
            Reader::Head if self.writer == Writer::Idle && room => ReadStatus::NeedData,
            Reader::Body(_) | Reader::Discarding { .. } if room => ReadStatus::NeedData,
            _ => ReadStatus::Paused,
        }
    }

    /// How many bytes [`receive`](Self::receive) would take now.
    pub fn receive_capacity(&self) -> usize {
        match self.reader {
            _ if self.peer_closed => 0,
            Reader::Closed | Reader::Upgraded => 0,
            _ => self.input_limit().saturating_sub(self.input.len()),
        }
    }

    /// Bytes received and not yet turned into events; never more than the larger of
    /// `Limits::max_buffered_input` and `Limits::max_head_size` (plus a few bytes).
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// Bytes waiting to be taken by [`poll_transmit`](Self::poll_transmit).
    pub fn pending_output(&self) -> usize {
        self.sealed_len + self.output.len()
    }

    /// Whether any output waits for [`poll_transmit`](Self::poll_transmit).
    fn has_output(&self) -> bool {
        !self.output.is_empty() || !self.sealed.is_empty()
    }

    /// Whether the connection is finished and its output drained: close the socket.
    pub fn is_closed(&self) -> bool {
        self.writer == Writer::Closed && !self.has_output() && self.pending_error.is_none()
    }

    /// The deadline by which [`handle_timeout`](Self::handle_timeout) must be called: the
    /// running timer's, or `Limits::send_timeout` after output began to wait, if earlier.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timer.and_then(|t| t.deadline);
        match (timer, self.send_deadline()) {
            (Some(timer), Some(send)) => Some(timer.min(send)),
            (timer, send) => timer.or(send),
        }
    }

    /// Whether the connection ended because its output was not taken by
    /// [`poll_transmit`](Self::poll_transmit) for `Limits::send_timeout` (the peer stopped
    /// reading). Output a driver still holds will not get out either: close the socket
    /// without waiting to write it.
    pub fn send_timed_out(&self) -> bool {
        self.send_timed_out
    }

    // ----- input -----

    /// Takes bytes read from the peer at `now`, returning how many were taken. Fewer than
    /// `data.len()` means the connection's buffer is full: keep the rest and offer it again
    /// after draining [`poll_event`](Self::poll_event) (backpressure).
    pub fn receive(&mut self, now: Instant, data: &[u8]) -> usize {
        self.tell_time(now);
        let taken = data.len().min(self.receive_capacity());
        if taken == 0 {
            return 0;
        }
        self.input.extend_from_slice(&data[..taken]);
        match self.reader {
            Reader::Body(_) | Reader::Discarding { .. } => {
                self.set_timer(Some(TimerKind::BodyIdle))
            }
            Reader::Head if self.timer.is_some_and(|t| t.kind == TimerKind::KeepAlive) => {
                self.set_timer(Some(TimerKind::Head));
            }
            _ => {}
        }
        taken
    }

    /// The peer closed its side: nothing more will be received. Requests already received
    /// are still answered; a message cut short is an error.
    pub fn receive_eof(&mut self) {
        self.peer_closed = true;
    }

    /// Reacts to the deadline from [`poll_timeout`](Self::poll_timeout) having passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tell_time(now);
        if self.send_deadline().is_some_and(|deadline| deadline <= now) {
            self.time_out_sending();
            return;
        }
        let Some(Timer {
            kind,
            deadline: Some(deadline),
        }) = self.timer
        else {
            return;
        };
        if now < deadline {
            return;
        }
        self.timer = None;
        match kind {
            // Nothing was sent: a quiet close, as a pre-connected browser socket deserves.
            TimerKind::KeepAlive => self.close_quietly(),
            TimerKind::Head if self.input.is_empty() => self.close_quietly(),
            TimerKind::Head => self.pending_error = self.fail_silently(H1Error::HeadTimeout),
            TimerKind::BodyIdle if !self.starved => self.set_timer(Some(TimerKind::BodyIdle)),
            TimerKind::BodyIdle => self.pending_error = self.fail_silently(H1Error::BodyTimeout),
        }
    }

    // ----- events out -----

    /// The next event, or `None` when nothing more can be learned until the next input or
    /// send (see [`read_status`](Self::read_status)).
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if let Some(error) = self.pending_error.take() {
            return Some(ServerEvent::Error(error));
        }
        if let Some(leftover) = self.pending_upgrade.take() {
            return Some(ServerEvent::Upgraded { leftover });
        }
        loop {
            let event = match &mut self.reader {
                Reader::Head if self.writer == Writer::Idle => self.read_head(),
                Reader::Body(decoder) => {
                    let decoded = decoder.decode(&mut self.input, self.peer_closed, &self.limits);
                    self.on_body(decoded)
                }
                Reader::Discarding { .. } => {
                    if self.discard() {
                        continue;
                    }
                    None
                }
                _ => None,
            };
            return event.or_else(|| self.pending_error.take().map(ServerEvent::Error));
        }
    }

    fn read_head(&mut self) -> Option<ServerEvent> {
        let limits = &self.limits;
        let scanned = self.scanner.scan(
            &self.input,
            HeadKind::Request,
            limits.max_head_size,
            limits.max_request_target_len,
        );
        let span = match scanned {
            Err(error) => return self.fail(error),
            Ok(Some(span)) => span,
            Ok(None) if self.peer_closed => {
                if self.input.iter().all(|&b| b == b'\r' || b == b'\n') {
                    self.close_quietly();
                    return None;
                }
                return self.fail(H1Error::IncompleteMessage);
            }
            Ok(None) => return None,
        };
        let _ = self.input.split_to(span.skip);
        let raw = self.input.split_to(span.end - span.skip).freeze();
        self.scanner.reset();
        let head = match parse_request(raw, &self.limits) {
            Ok(head) => head,
            Err(error) => return self.fail(error),
        };
        self.seen_request = true;
        self.exchange = Some(Exchange {
            method: head.method.clone(),
            version: head.version,
            keep_alive: head.keep_alive && !self.draining,
            wants_upgrade: head.wants_upgrade,
        });
        self.writer = Writer::AwaitingHead;
        if let BodyFraming::Length(n) = head.body {
            if n > self.limits.max_body_size {
                return self.fail(H1Error::BodyTooLarge);
            }
        }
        let decoder = BodyDecoder::new(head.body);
        if head.expects_continue && head.body != BodyFraming::Empty {
            self.reader = Reader::AwaitingContinue(decoder);
            self.set_timer(None);
        } else {
            self.reader = Reader::Body(decoder);
            self.set_timer(Some(TimerKind::BodyIdle));
        }
        Some(ServerEvent::Request(Box::new(head)))
    }

    fn on_body(&mut self, decoded: Result<Decoded, H1Error>) -> Option<ServerEvent> {
        self.starved = false;
        match decoded {
            Ok(Decoded::Data(data)) => Some(ServerEvent::Data(data)),
            Ok(Decoded::Trailers(trailers)) => Some(ServerEvent::Trailers(trailers)),
            Ok(Decoded::End) => {
                self.reader = Reader::Done;
                self.set_timer(None);
                self.complete_exchange();
                Some(ServerEvent::EndOfMessage)
            }
            Ok(Decoded::NeedData) => {
                self.starved = true;
                None
            }
            Err(error) => self.fail(error),
        }
    }

    /// Drops body bytes the application did not want. Returns true when the body ended and the
    /// connection moved on (so there may be a next request to read).
    fn discard(&mut self) -> bool {
        let Reader::Discarding { decoder, budget } = &mut self.reader else {
            return false;
        };
        loop {
            match decoder.decode(&mut self.input, self.peer_closed, &self.limits) {
                Ok(Decoded::Data(data)) => {
                    if data.len() as u64 > *budget {
                        self.close_quietly();
                        return false;
                    }
                    *budget -= data.len() as u64;
                }
                Ok(Decoded::Trailers(_)) => {}
                Ok(Decoded::End) => {
                    self.reader = Reader::Done;
                    self.complete_exchange();
                    return true;
                }
                Ok(Decoded::NeedData) => {
                    self.starved = true;
                    return false;
                }
                // The answer is already sent; a broken body only ends the connection.
                Err(_) => {
                    self.close_quietly();
                    return false;
                }
            }
        }
    }

    // ----- the application's answer -----

    /// Sets the `Date` value added to responses that lack one (RFC 9110 §6.6.1). The core
    /// reads no clock: the driver refreshes this, typically once a second.
    pub fn set_date(&mut self, date: HeaderValue) {
        self.date = Some(date);
    }

    /// Sets the bodies of the error responses (`400`, `414`, `431`...) the connection writes by
    /// itself when it refuses a request; without a page for a status, its body is empty.
    pub fn set_error_pages(&mut self, pages: ErrorPages) {
        self.error_pages = pages;
    }

    /// The application wants the request body: sends `100 Continue` when the client is
    /// waiting for it (RFC 9110 §10.1.1), and lets body events flow. Without an expectation
    /// this does nothing.
    pub fn request_body(&mut self) {
        if let Reader::AwaitingContinue(decoder) = &self.reader {
            let decoder = decoder.clone();
            if self.writer == Writer::AwaitingHead {
                self.output
                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            self.reader = Reader::Body(decoder);
            self.set_timer(Some(TimerKind::BodyIdle));
        }
    }

    /// Starts the response to the current request.
    ///
    /// Framing fields are the connection's business: any `Content-Length` or
    /// `Transfer-Encoding` in `headers` is replaced by what `body` says (a `Content-Length`
    /// header is read as the size when `body` is `Unknown`). No body is written for HEAD, 204
    /// and 304 whatever is sent. A `1xx` status sends an interim response (dropped for HTTP/1.0
    /// clients, RFC 9110 §15.2), except `101`, which switches protocols once the request
    /// asked to upgrade and its body has been read. Answering without reading the request
    /// body is allowed: the rest of a small body is discarded, a large one closes the connection.
    pub fn send_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        body: BodySize,
    ) -> Result<(), SendError> {
        match (&self.writer, &self.exchange) {
            (Writer::AwaitingHead, Some(_)) => {}
            (Writer::Closed, _) => return Err(SendError::Closed),
            _ => return Err(SendError::InvalidState),
        }
        let Some(exchange) = self.exchange.clone() else {
            return Err(SendError::InvalidState);
        };
        if status == StatusCode::SWITCHING_PROTOCOLS
            || (exchange.method == Method::CONNECT && status.is_success())
        {
            return self.switch_protocols(status, headers, &exchange);
        }
        if status.is_informational() {
            self.send_interim(status, headers, &exchange);
            return Ok(());
        }
        let body = match body {
            BodySize::Unknown => {
                declared_length(headers).map_or(BodySize::Unknown, BodySize::Known)
            }
            known => known,
        };
        let encoder = if status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || exchange.method == Method::HEAD
        {
            BodyEncoder::Suppressed
        } else {
            match body {
                BodySize::Known(n) => BodyEncoder::Length(n),
                BodySize::Unknown if exchange.version == Version::HTTP_11 => BodyEncoder::Chunked,
                BodySize::Unknown => BodyEncoder::CloseDelimited,
            }
        };
        let mut app_connection = ConnectionOptions::default();
        for value in headers.get_all(header::CONNECTION) {
            app_connection.observe(value.as_bytes());
        }
        // The client is still waiting to be told to send its body: we will not read it.
        let unread_held_body = matches!(self.reader, Reader::AwaitingContinue(_));
        let keep_alive = exchange.keep_alive
            && !app_connection.close
            && !unread_held_body
            && encoder != BodyEncoder::CloseDelimited;
        if unread_held_body {
            self.reader = Reader::Closed;
            self.set_timer(None);
        }
        if let Some(current) = &mut self.exchange {
            current.keep_alive = keep_alive;
        }

        let out = &mut self.output;
        encode::write_status_line(out, status);
        if !headers.contains_key(header::DATE) {
            if let Some(date) = &self.date {
                encode::write_field(out, b"date", date.as_bytes());
            }
        }
        encode::write_fields_except(out, headers, |name| {
            is_framing_field(name) || (!keep_alive && name == header::CONNECTION)
        });
        match (&encoder, body) {
            (BodyEncoder::Length(n), _) => encode::write_content_length(out, *n),
            (BodyEncoder::Chunked, _) => encode::write_field(out, b"transfer-encoding", b"chunked"),
            // HEAD states the length a GET would have had. A 304 may only repeat the 200's
            // length (RFC 9110 §8.6), and a 0 would be copied into caches: only a real one.
            (BodyEncoder::Suppressed, BodySize::Known(n))
                if (exchange.method == Method::HEAD && status != StatusCode::NO_CONTENT)
                    || (status == StatusCode::NOT_MODIFIED && n > 0) =>
            {
                encode::write_content_length(out, n);
            }
            _ => {}
        }
        if !keep_alive {
            encode::write_field(out, b"connection", b"close");
        } else if exchange.version == Version::HTTP_10 && !app_connection.keep_alive {
            encode::write_field(out, b"connection", b"keep-alive");
        }
        out.extend_from_slice(b"\r\n");
        self.writer = Writer::Body(encoder);
        Ok(())
    }

    /// Writes a 1xx interim response (HTTP/1.1 clients only).
    fn send_interim(&mut self, status: StatusCode, headers: &HeaderMap, exchange: &Exchange) {
        if exchange.version != Version::HTTP_11 {
            return;
        }
        if status == StatusCode::CONTINUE {
            // The application chose to ask for the body by hand.
            if matches!(self.reader, Reader::AwaitingContinue(_)) {
                self.request_body();
            }
            return;
        }
        encode::write_status_line(&mut self.output, status);
        encode::write_fields_except(&mut self.output, headers, is_framing_field);
        self.output.extend_from_slice(b"\r\n");
    }

    /// Writes the `101` (or CONNECT `2xx`) head and hands the connection over.
    fn switch_protocols(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        exchange: &Exchange,
    ) -> Result<(), SendError> {
        if !exchange.wants_upgrade || !matches!(self.reader, Reader::Done) {
            return Err(SendError::UnexpectedSwitch);
        }
        encode::write_status_line(&mut self.output, status);
        if !headers.contains_key(header::DATE) && status != StatusCode::SWITCHING_PROTOCOLS {
            if let Some(date) = &self.date {
                encode::write_field(&mut self.output, b"date", date.as_bytes());
            }
        }
        // RFC 9110 §9.3.6: no Content-Length or Transfer-Encoding in a 2xx to CONNECT.
        encode::write_fields_except(&mut self.output, headers, is_framing_field);
        self.output.extend_from_slice(b"\r\n");
        self.reader = Reader::Upgraded;
        self.writer = Writer::Upgraded;
        self.set_timer(None);
        self.pending_upgrade = Some(self.input.split().freeze());
        Ok(())
    }

    /// Writes body bytes of the current response, returning how many were taken. Fewer than
    /// `data.len()` (possibly 0) means the output buffer is full: send the rest after
    /// [`poll_transmit`](Self::poll_transmit) drained it (backpressure).
    pub fn send_data(&mut self, data: &[u8]) -> Result<usize, SendError> {
        let room = self.output_room();
        let encoder = body_encoder(&mut self.writer, self.direct, data.len())?;
        if *encoder == BodyEncoder::Suppressed {
            return Ok(data.len());
        }
        let taken = fitting(encoder, room, data.len());
        encoder.encode(&mut self.output, &data[..taken])?;
        Ok(taken)
    }

    /// Like [`send_data`](Self::send_data), for body bytes already in a `Bytes`: a piece of
    /// [`PIECE_MIN`](Self::PIECE_MIN) bytes or more is queued as it is, without a copy, and
    /// [`poll_transmit`](Self::poll_transmit) hands it out as a piece of its own (write the
    /// pieces with one vectored write, [`poll_transmit_vectored`](Self::poll_transmit_vectored));
    /// a smaller one is copied, which costs less than another piece. Returns how many bytes
    /// were taken: fewer than `data.len()` means the output is full (backpressure), as for
    /// `send_data`.
    pub fn send_data_bytes(&mut self, data: &Bytes) -> Result<usize, SendError> {
        if data.len() < Self::PIECE_MIN {
            return self.send_data(data);
        }
        let room = self.output_room();
        let encoder = body_encoder(&mut self.writer, self.direct, data.len())?;
        if *encoder == BodyEncoder::Suppressed {
            return Ok(data.len());
        }
        let taken = fitting(encoder, room, data.len());
        if taken < Self::PIECE_MIN {
            // Too little room for a piece worth its own slot: copy what fits.
            return self.send_data(&data[..taken]);
        }
        let suffix = encoder.begin_piece(&mut self.output, taken)?;
        self.push_piece(data.slice(..taken));
        self.output.extend_from_slice(suffix);
        Ok(taken)
    }

    /// Output bytes the connection still takes before `max_buffered_output`.
    fn output_room(&self) -> usize {
        self.limits
            .max_buffered_output
            .saturating_sub(self.sealed_len + self.output.len())
    }

    /// The smallest body piece [`send_data_bytes`](Self::send_data_bytes) queues without a
    /// copy. Below it the copy is cheap (tens of nanoseconds) while a piece costs a slot of
    /// the driver's `writev` and the kernel's walk over one more iovec; the `pieces`
    /// benchmark (`benches/benches/h1.rs`) shows the two even at 128 bytes and the piece
    /// ahead by about a tenth of the whole exchange at 8 KiB.
    pub const PIECE_MIN: usize = 512;

    /// Hands the rest of the current response body to the driver, which will write it to the
    /// transport itself (`sendfile(2)`, without a copy through this connection), and returns
    /// how many bytes it owes. Valid only for a Content-Length body (not HEAD, chunked or
    /// close-delimited) once [`poll_transmit`](Self::poll_transmit) has taken all output, so
    /// that the head goes out first: [`SendError::InvalidState`] otherwise (the connection is
    /// unchanged; send the body with [`send_data`](Self::send_data) instead).
    ///
    /// Report progress with [`sent_direct`](Self::sent_direct); until the body is complete,
    /// `Limits::send_timeout` runs from the last progress, as it does for waiting output.
    pub fn begin_direct_body(&mut self, now: Instant) -> Result<u64, SendError> {
        self.tell_time(now);
        let remaining = match &self.writer {
            Writer::Body(BodyEncoder::Length(remaining)) if !self.has_output() => *remaining,
            Writer::Closed => return Err(SendError::Closed),
            _ => return Err(SendError::InvalidState),
        };
        self.direct = true;
        self.pending_since = Some(self.now);
        Ok(remaining)
    }

    /// Counts `sent` body bytes the driver wrote to the transport itself at `now`, after
    /// [`begin_direct_body`](Self::begin_direct_body); the last of them finish the response
    /// as [`send_data`](Self::send_data) and [`finish`](Self::finish) would. More than owed
    /// is [`SendError::BodyTooLong`] (nothing counted); without `begin_direct_body`,
    /// [`SendError::InvalidState`]. A driver that cannot send the rest calls
    /// [`abort`](Self::abort).
    pub fn sent_direct(&mut self, now: Instant, sent: u64) -> Result<(), SendError> {
        self.tell_time(now);
        let Writer::Body(BodyEncoder::Length(remaining)) = &mut self.writer else {
            return Err(match self.writer {
                Writer::Closed => SendError::Closed,
                _ => SendError::InvalidState,
            });
        };
        if !self.direct {
            return Err(SendError::InvalidState);
        }
        if sent > *remaining {
            return Err(SendError::BodyTooLong);
        }
        *remaining -= sent;
        if sent > 0 {
            // Progress: the peer is reading, the send timeout starts again.
            self.pending_since = Some(self.now);
        }
        if *remaining == 0 {
            return self.end_response(None);
        }
        Ok(())
    }

    /// Whether the driver is writing the current body itself
    /// ([`begin_direct_body`](Self::begin_direct_body)) and has not finished.
    pub fn is_sending_direct(&self) -> bool {
        self.direct
    }

    /// Ends the current response.
    pub fn finish(&mut self) -> Result<(), SendError> {
        self.end_response(None)
    }

    /// Ends the current response with trailers (sent when it is chunked, dropped otherwise).
    pub fn send_trailers(&mut self, trailers: &HeaderMap) -> Result<(), SendError> {
        self.end_response(Some(trailers))
    }

    fn end_response(&mut self, trailers: Option<&HeaderMap>) -> Result<(), SendError> {
        if std::mem::take(&mut self.direct) {
            self.pending_since = None;
        }
        let Writer::Body(encoder) = &mut self.writer else {
            return Err(match self.writer {
                Writer::Closed => SendError::Closed,
                _ => SendError::InvalidState,
            });
        };
        let close_delimited = *encoder == BodyEncoder::CloseDelimited;
        if let Err(error) = encoder.finish(&mut self.output, trailers) {
            // The peer cannot find the end of this message any more: only closing tells it.
            self.reader = Reader::Closed;
            self.writer = Writer::Closed;
            self.set_timer(None);
            return Err(error);
        }
        self.writer = Writer::Done;
        if close_delimited {
            self.reader = Reader::Closed;
        }
        if let Reader::Body(decoder) = &self.reader {
            // Answered without reading the whole body: drop a small rest, close on a large one.
            let budget = self.limits.max_discard_body;
            self.reader = match decoder.remaining() {
                Some(n) if n <= budget => Reader::Discarding {
                    decoder: decoder.clone(),
                    budget: n,
                },
                None => Reader::Discarding {
                    decoder: decoder.clone(),
                    budget,
                },
                Some(_) => Reader::Closed,
            };
        }
        self.complete_exchange();
        Ok(())
    }

    /// Closes gracefully, for a server shutting down: an idle connection closes now; a request
    /// in progress (or one whose head has begun to arrive) is answered, with
    /// `connection: close` when its response has not started, and then the connection closes.
    pub fn shutdown(&mut self) {
        self.draining = true;
        if let Some(exchange) = &mut self.exchange {
            exchange.keep_alive = false;
        } else if matches!(self.reader, Reader::Head) && self.input.is_empty() {
            self.close_quietly();
        }
    }

    /// Gives up on the connection at once: nothing more is read, and a response in progress
    /// is left unfinished so that the peer sees it cut short rather than complete. Output
    /// already queued can still be written. For when the application's body failed midway.
    pub fn abort(&mut self) {
        self.direct = false;
        self.input.clear();
        self.reader = Reader::Closed;
        self.writer = Writer::Closed;
        self.exchange = None;
        self.set_timer(None);
    }

    // ----- output -----

    /// Bytes to write to the peer, if any: the next piece of the output (all of it, unless
    /// [`send_data_bytes`](Self::send_data_bytes) queued body pieces of their own). Taking
    /// output restarts the send timeout. Also tells the connection the time.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.tell_time(now);
        if !self.direct {
            self.pending_since = None;
        }
        if let Some(piece) = self.sealed.pop_front() {
            self.sealed_len -= piece.len();
            return Some(piece);
        }
        if self.output.is_empty() {
            None
        } else {
            Some(self.output.split().freeze())
        }
    }

    /// Like [`poll_transmit`](Self::poll_transmit), for a vectored write (`writev`): appends
    /// up to `max` pieces of the output to `out`, in order, and returns how many.
    pub fn poll_transmit_vectored(
        &mut self,
        now: Instant,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> usize {
        let mut pieces = 0;
        while pieces < max {
            let Some(piece) = self.poll_transmit(now) else {
                break;
            };
            out.push(piece);
            pieces += 1;
        }
        pieces
    }

    /// Ends the open output buffer as a piece of its own, so that a piece queued next follows it.
    fn seal_output(&mut self) {
        if !self.output.is_empty() {
            let piece = self.output.split().freeze();
            self.sealed_len += piece.len();
            self.sealed.push_back(piece);
        }
    }

    /// Queues `piece` after the output already there, as a piece of its own.
    fn push_piece(&mut self, piece: Bytes) {
        self.seal_output();
        self.sealed_len += piece.len();
        self.sealed.push_back(piece);
    }

    // ----- transitions -----

    /// Moves to the next request once both the request and its response are complete.
    fn complete_exchange(&mut self) {
        let reader_done = matches!(self.reader, Reader::Done | Reader::Closed);
        if self.writer != Writer::Done || !reader_done {
            return;
        }
        let keep_alive = self.exchange.take().is_some_and(|e| e.keep_alive);
        if keep_alive && matches!(self.reader, Reader::Done) {
            self.reader = Reader::Head;
            self.writer = Writer::Idle;
            let kind = if self.input.is_empty() {
                TimerKind::KeepAlive
            } else {
                TimerKind::Head
            };
            self.set_timer(Some(kind));
        } else {
            self.reader = Reader::Closed;
            self.writer = Writer::Closed;
            self.set_timer(None);
        }
    }

    /// Refuses the peer's input: queues the error response if no response has started, and
    /// closes. Returns the event that reports it.
    fn fail(&mut self, error: H1Error) -> Option<ServerEvent> {
        if matches!(self.writer, Writer::Idle | Writer::AwaitingHead) {
            let head = self
                .exchange
                .as_ref()
                .is_some_and(|exchange| exchange.method == Method::HEAD);
            self.write_error_response(error.status(), head);
        }
        self.reader = Reader::Closed;
        self.writer = Writer::Closed;
        self.exchange = None;
        self.input.clear();
        self.set_timer(None);
        Some(ServerEvent::Error(error))
    }

    /// Writes the response to a refused request: its page, if one was set for `status` (the
    /// body left out when answering HEAD), else an empty body.
    fn write_error_response(&mut self, status: StatusCode, head: bool) {
        let out = &mut self.output;
        encode::write_status_line(out, status);
        if let Some(date) = &self.date {
            encode::write_field(out, b"date", date.as_bytes());
        }
        let page = self.error_pages.get(status);
        if let Some(page) = page {
            encode::write_field(out, b"content-type", page.content_type.as_bytes());
        }
        encode::write_content_length(out, page.map_or(0, |page| page.body.len() as u64));
        encode::write_field(out, b"connection", b"close");
        out.extend_from_slice(b"\r\n");
        if let Some(page) = page.filter(|_| !head) {
            out.extend_from_slice(&page.body);
        }
    }

    /// Ends the connection without a response (idle timeout, peer gone, broken discard).
    fn close_quietly(&mut self) {
        self.input.clear();
        self.reader = Reader::Closed;
        // A response being written is allowed to finish; the connection closes after it.
        if !matches!(self.writer, Writer::Body(_)) {
            self.writer = Writer::Closed;
        }
        if let Some(exchange) = &mut self.exchange {
            exchange.keep_alive = false;
        }
        self.set_timer(None);
    }

    /// `fail`, returning the error for the next `poll_event` to report.
    fn fail_silently(&mut self, error: H1Error) -> Option<H1Error> {
        match self.fail(error) {
            Some(ServerEvent::Error(error)) => Some(error),
            _ => None,
        }
    }

    /// Sets the running timer, armed at once from the latest time the connection was told.
    fn set_timer(&mut self, kind: Option<TimerKind>) {
        self.timer = kind.map(|kind| Timer {
            kind,
            deadline: self.now.checked_add(self.timeout_of(kind)),
        });
    }

    /// Takes the time from a call that carries it. Output queued since the last such call
    /// has waited since the time known then; time only moves forward, whatever is passed.
    fn tell_time(&mut self, now: Instant) {
        if self.has_output() && self.pending_since.is_none() {
            self.pending_since = Some(self.now);
        }
        self.now = self.now.max(now);
    }

    /// When waiting output crosses `Limits::send_timeout`; `None` while none waits.
    fn send_deadline(&self) -> Option<Instant> {
        if !self.has_output() && !self.direct {
            return None;
        }
        self.pending_since
            .unwrap_or(self.now)
            .checked_add(self.limits.send_timeout)
    }

    /// The peer took no output for `Limits::send_timeout`: nothing more can reach it, so the
    /// connection ends at once, its output dropped, and the next event reports why.
    fn time_out_sending(&mut self) {
        self.output = BytesMut::new();
        self.sealed = VecDeque::new();
        self.sealed_len = 0;
        self.input = BytesMut::new();
        self.reader = Reader::Closed;
        self.writer = Writer::Closed;
        self.exchange = None;
        self.timer = None;
        self.pending_since = None;
        self.direct = false;
        self.pending_upgrade = None;
        self.send_timed_out = true;
        self.pending_error = Some(H1Error::SendTimeout);
    }

    fn timeout_of(&self, kind: TimerKind) -> Duration {
        match kind {
            TimerKind::Head => self.limits.head_timeout,
            TimerKind::BodyIdle => self.limits.body_idle_timeout,
            TimerKind::KeepAlive => self.limits.keep_alive_timeout,
        }
    }

    /// Input held at most: a whole head must fit, plus a little for leading empty lines.
    fn input_limit(&self) -> usize {
        self.limits
            .max_buffered_input
            .max(self.limits.max_head_size + 32)
    }
}

/// Fields that only the connection may write: it decides the framing.
fn is_framing_field(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING
}

/// A valid Content-Length the application put in its headers.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = parse_decimal(values.next()?.as_bytes())?;
    values
        .all(|v| parse_decimal(v.as_bytes()) == Some(first))
        .then_some(first)
}

/// The encoder of the response body being written, after the checks every body write makes:
/// the driver does not own the transport (a direct body), a body is being written, and `len`
/// more bytes stay within its Content-Length.
fn body_encoder(
    writer: &mut Writer,
    direct: bool,
    len: usize,
) -> Result<&mut BodyEncoder, SendError> {
    if direct {
        // The driver owns the transport until its direct body is complete.
        return Err(SendError::InvalidState);
    }
    let encoder = match writer {
        Writer::Body(encoder) => encoder,
        Writer::Closed => return Err(SendError::Closed),
        _ => return Err(SendError::InvalidState),
    };
    if let BodyEncoder::Length(remaining) = encoder {
        if len as u64 > *remaining {
            return Err(SendError::BodyTooLong);
        }
    }
    Ok(encoder)
}

/// How many of `len` body bytes fit in `room` bytes of output, with the encoder's framing.
fn fitting(encoder: &BodyEncoder, room: usize, len: usize) -> usize {
    len.min(room.saturating_sub(encoder.overhead(len)))
}
