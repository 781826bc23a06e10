//! The client role of an HTTP/1.1 connection: requests out, responses in.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri, Version};

use super::decode::{BodyDecoder, Decoded};
use super::encode::{self, BodyEncoder};
use super::error::{H1Error, SendError};
use super::framing::BodyFraming;
use super::head::{ResponseHead, parse_response};
use super::scan::{HeadKind, HeadScanner};
use super::server::BodySize;
use crate::Limits;

/// Something the client connection learned from the bytes it was given.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// An interim `1xx` response (`100 Continue`, `103 Early Hints`, ...); the final response
    /// is still to come.
    Informational(Box<ResponseHead>),
    /// The final response head to the oldest outstanding request. Its body follows as `Data`,
    /// `Trailers` and `EndOfMessage`.
    Response(Box<ResponseHead>),
    /// A piece of the response body.
    Data(Bytes),
    /// The trailer section of a chunked response.
    Trailers(HeaderMap),
    /// The response is complete.
    EndOfMessage,
    /// The server switched protocols (`101`, or `2xx` to CONNECT); `leftover` holds the bytes
    /// that arrived after the response head and belong to the new protocol.
    Upgraded {
        /// Bytes received past the end of the response head.
        leftover: Bytes,
    },
    /// The server broke a rule; the connection is unusable and should be closed.
    Error(H1Error),
}

#[derive(Debug, Clone)]
enum Reader {
    /// Waiting for a response head.
    Head,
    /// Reading a response body.
    Body(BodyDecoder),
    /// The protocol switched.
    Upgraded,
    /// Nothing more will be read.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Writer {
    /// Ready to send a request.
    Idle,
    /// A request body is being written.
    Body(BodyEncoder),
    /// No more requests can be sent.
    Closed,
}

/// The client side of one HTTP/1.1 connection, as a sans-IO state machine.
///
/// Requests may be pipelined: each [`send_request`](Self::send_request) after the previous
/// request's body is finished is written at once, and responses are matched to requests in
/// order. The method of each request decides how its response is framed (no body for HEAD,
/// a tunnel after a CONNECT's 2xx).
#[derive(Debug)]
pub struct ClientConnection {
    limits: Limits,
    input: BytesMut,
    output: BytesMut,
    scanner: HeadScanner,
    reader: Reader,
    writer: Writer,
    /// Methods of requests sent whose responses are not complete, oldest first.
    in_flight: VecDeque<Method>,
    /// Whether the response being read lets the connection persist.
    keep_alive: bool,
    peer_closed: bool,
    absolute_form: bool,
}

impl ClientConnection {
    /// A new client connection enforcing `limits` on what the server sends.
    pub fn new(limits: Limits) -> Self {
        ClientConnection {
            limits,
            input: BytesMut::new(),
            output: BytesMut::new(),
            scanner: HeadScanner::default(),
            reader: Reader::Head,
            writer: Writer::Idle,
            in_flight: VecDeque::new(),
            keep_alive: true,
            peer_closed: false,
            absolute_form: false,
        }
    }

    /// Writes request-targets in absolute-form (`http://host/path`), as a client talking to a
    /// forward proxy must (RFC 9112 §3.2.2).
    pub fn use_absolute_form(&mut self, absolute: bool) {
        self.absolute_form = absolute;
    }

    /// Whether the connection is finished and its output drained: close the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.reader, Reader::Closed) && self.output.is_empty()
    }

    /// Requests sent whose responses are not complete yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Starts a request. `Host` is added from the URI when `headers` lacks it; framing fields
    /// are the connection's business, decided by `body` (chunked when `Unknown`).
    pub fn send_request(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: BodySize,
    ) -> Result<(), SendError> {
        match self.writer {
            Writer::Idle => {}
            Writer::Closed => return Err(SendError::Closed),
            Writer::Body(_) => return Err(SendError::InvalidState),
        }
        let target = self.request_target(method, uri);
        let out = &mut self.output;
        encode::write_request_line(out, method, &target, Version::HTTP_11);
        if !headers.contains_key(header::HOST) {
            let host = uri.authority().map_or("", |a| a.as_str());
            encode::write_field(out, b"host", host.as_bytes());
        }
        encode::write_fields_except(out, headers, |name| {
            name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING
        });
        let encoder = match body {
            BodySize::Known(0) if !method_expects_body(method) => BodyEncoder::Length(0),
            BodySize::Known(n) => {
                encode::write_content_length(out, n);
                BodyEncoder::Length(n)
            }
            BodySize::Unknown => {
                encode::write_field(out, b"transfer-encoding", b"chunked");
                BodyEncoder::Chunked
            }
        };
        out.extend_from_slice(b"\r\n");
        self.in_flight.push_back(method.clone());
        self.writer = Writer::Body(encoder);
        Ok(())
    }

    fn request_target(&self, method: &Method, uri: &Uri) -> String {
        if method == Method::CONNECT {
            return uri.authority().map_or_else(String::new, |a| a.to_string());
        }
        if uri == "*" {
            return "*".to_owned();
        }
        if self.absolute_form && uri.scheme().is_some() {
            return uri.to_string();
        }
        uri.path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
    }

    /// Writes request body bytes; all of `data` is taken (the caller bounds what it writes by
    /// draining [`poll_transmit`](Self::poll_transmit)).
    pub fn send_data(&mut self, data: &[u8]) -> Result<(), SendError> {
        match &mut self.writer {
            Writer::Body(encoder) => encoder.encode(&mut self.output, data),
            Writer::Closed => Err(SendError::Closed),
            Writer::Idle => Err(SendError::InvalidState),
        }
    }

    /// Ends the current request.
    pub fn finish(&mut self) -> Result<(), SendError> {
        self.end_request(None)
    }

    /// Ends the current request with trailers (sent when it is chunked).
    pub fn send_trailers(&mut self, trailers: &HeaderMap) -> Result<(), SendError> {
        self.end_request(Some(trailers))
    }

    fn end_request(&mut self, trailers: Option<&HeaderMap>) -> Result<(), SendError> {
        let Writer::Body(encoder) = &mut self.writer else {
            return Err(match self.writer {
                Writer::Closed => SendError::Closed,
                _ => SendError::InvalidState,
            });
        };
        let result = encoder.finish(&mut self.output, trailers);
        self.writer = if result.is_ok() {
            Writer::Idle
        } else {
            Writer::Closed
        };
        result
    }

    /// Takes bytes read from the server, returning how many were taken (fewer when the
    /// buffer is full: drain [`poll_event`](Self::poll_event) and offer the rest again).
    pub fn receive(&mut self, data: &[u8]) -> usize {
        if matches!(self.reader, Reader::Closed | Reader::Upgraded) {
            return 0;
        }
        let limit = self
            .limits
            .max_buffered_input
            .max(self.limits.max_head_size + 32);
        let taken = data.len().min(limit.saturating_sub(self.input.len()));
        self.input.extend_from_slice(&data[..taken]);
        taken
    }

    /// The server closed its side; this ends a close-delimited body.
    pub fn receive_eof(&mut self) {
        self.peer_closed = true;
    }

    /// The next event, or `None` until more input arrives.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        match &mut self.reader {
            Reader::Head => self.read_head(),
            Reader::Body(decoder) => {
                match decoder.decode(&mut self.input, self.peer_closed, &self.limits) {
                    Ok(Decoded::Data(data)) => Some(ClientEvent::Data(data)),
                    Ok(Decoded::Trailers(trailers)) => Some(ClientEvent::Trailers(trailers)),
                    Ok(Decoded::End) => {
                        self.in_flight.pop_front();
                        self.reader = if self.keep_alive {
                            Reader::Head
                        } else {
                            self.closed()
                        };
                        Some(ClientEvent::EndOfMessage)
                    }
                    Ok(Decoded::NeedData) => None,
                    Err(error) => self.fail(error),
                }
            }
            Reader::Upgraded | Reader::Closed => None,
        }
    }

    fn read_head(&mut self) -> Option<ClientEvent> {
        let limits = &self.limits;
        let span = match self
            .scanner
            .scan(&self.input, HeadKind::Response, limits.max_head_size, 0)
        {
            Err(error) => return self.fail(error),
            Ok(Some(span)) => span,
            Ok(None) if self.peer_closed => {
                if self.input.is_empty() && self.in_flight.is_empty() {
                    self.reader = self.closed();
                    return None;
                }
                return self.fail(H1Error::IncompleteMessage);
            }
            Ok(None) => return None,
        };
        let Some(method) = self.in_flight.front().cloned() else {
            return self.fail(H1Error::UnsolicitedResponse);
        };
        let _ = self.input.split_to(span.skip);
        let raw = self.input.split_to(span.end - span.skip).freeze();
        self.scanner.reset();
        let head = match parse_response(raw, &method, &self.limits) {
            Ok(head) => head,
            Err(error) => return self.fail(error),
        };
        let switched = head.status == StatusCode::SWITCHING_PROTOCOLS
            || (method == Method::CONNECT && head.status.is_success());
        if switched {
            self.reader = Reader::Upgraded;
            self.writer = Writer::Closed;
            self.in_flight.clear();
            return Some(ClientEvent::Upgraded {
                leftover: self.input.split().freeze(),
            });
        }
        if head.status.is_informational() {
            return Some(ClientEvent::Informational(Box::new(head)));
        }
        if let BodyFraming::Length(n) = head.body {
            if n > self.limits.max_body_size {
                return self.fail(H1Error::BodyTooLarge);
            }
        }
        self.keep_alive = head.keep_alive;
        if !head.keep_alive {
            // Requests pipelined behind this one will never be answered on this connection.
            self.writer = Writer::Closed;
        }
        self.reader = Reader::Body(BodyDecoder::new(head.body));
        Some(ClientEvent::Response(Box::new(head)))
    }

    /// Bytes to write to the server, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.output.is_empty() {
            None
        } else {
            Some(self.output.split().freeze())
        }
    }

    fn closed(&mut self) -> Reader {
        if !matches!(self.writer, Writer::Body(_)) {
            self.writer = Writer::Closed;
        }
        Reader::Closed
    }

    fn fail(&mut self, error: H1Error) -> Option<ClientEvent> {
        self.input.clear();
        self.reader = Reader::Closed;
        self.writer = Writer::Closed;
        Some(ClientEvent::Error(error))
    }
}

/// Methods whose requests carry a body, so an empty one is stated as `Content-Length: 0`
/// (RFC 9110 §8.6).
fn method_expects_body(method: &Method) -> bool {
    method == Method::POST || method == Method::PUT || method == Method::PATCH
}
