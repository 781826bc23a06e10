//! One exchange over HTTP/1.1 with weft-core's client role
//! ([`ClientConnection`](weft_core::h1::ClientConnection)).

use std::task::Poll;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri, Version};
use weft_core::Limits;
use weft_core::h1::{BodySize, ClientConnection, ClientEvent};

use super::error::TestError;
use super::link::{Link, lock};
use super::request::Prepared;
use super::response::Received;

/// How an HTTP/1.1 exchange ended.
pub(crate) enum Outcome {
    /// A complete response.
    Complete(Received),
    /// The server switched protocols (`101`): the head, and the bytes after it, which belong
    /// to the new protocol.
    Upgraded { head: Received, leftover: Bytes },
}

/// Sends `request` on `link` as HTTP/1.1 and reads the response, until `deadline`.
pub(crate) fn exchange(
    link: &mut Link,
    request: &Prepared,
    deadline: Instant,
) -> Result<Outcome, TestError> {
    let mut limits = Limits::default();
    // A test reads whatever its application sends; the server side keeps its own limits.
    limits.max_body_size = u64::MAX;
    let mut client = ClientConnection::new(limits);
    let uri: Uri = match request.target.parse() {
        Ok(uri) => uri,
        Err(error) => panic!("{}: not a request target: {error}", request.label),
    };
    let length = BodySize::Known(request.body.len() as u64);
    let sent = client
        .send_request(&request.method, &uri, &request.headers, length)
        .and_then(|()| client.send_data(&request.body))
        .and_then(|()| client.finish());
    if let Err(error) = sent {
        panic!("{}: the request cannot be written: {error}", request.label);
    }
    let mut reader = Reader {
        received: Received::default(),
        upgrade: request.upgrade,
        head_bytes: BytesMut::new(),
        eof_given: false,
    };
    let pipe = link.pipe().clone();
    let outcome = link.drive(deadline, |_| {
        let mut pipe = lock(&pipe);
        while let Some(bytes) = client.poll_transmit() {
            pipe.to_server.extend_from_slice(&bytes);
        }
        loop {
            if let Some(done) = reader.drain(&mut client) {
                return Poll::Ready(done);
            }
            if pipe.to_client.is_empty() {
                break;
            }
            let taken = client.receive(&pipe.to_client);
            if reader.upgrade {
                reader
                    .head_bytes
                    .extend_from_slice(&pipe.to_client[..taken]);
            }
            pipe.to_client.advance(taken);
            if taken == 0 {
                break;
            }
        }
        if pipe.server_closed && pipe.to_client.is_empty() && !reader.eof_given {
            reader.eof_given = true;
            client.receive_eof();
            if let Some(done) = reader.drain(&mut client) {
                return Poll::Ready(done);
            }
            return Poll::Ready(Err(format!(
                "the server closed the connection before a complete response; {}",
                reader.received.describe()
            )));
        }
        Poll::Pending
    });
    match outcome {
        Some(Ok(outcome)) => Ok(outcome),
        Some(Err(reason)) => Err(TestError::Connection {
            request: request.label.clone(),
            reason,
        }),
        None => Err(TestError::Deadline {
            request: request.label.clone(),
            deadline: request.deadline,
            received: reader.received.describe(),
        }),
    }
}

/// The response as the client role reads it.
struct Reader {
    received: Received,
    /// The request asked to switch protocols: keep the bytes of the heads, since the client
    /// role reports a `101` without its fields.
    upgrade: bool,
    head_bytes: BytesMut,
    eof_given: bool,
}

impl Reader {
    /// Takes the client's events; the outcome once the exchange is over.
    fn drain(&mut self, client: &mut ClientConnection) -> Option<Result<Outcome, String>> {
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::Informational(_) => {}
                ClientEvent::Response(head) => {
                    self.received.status = Some(head.status);
                    self.received.version = Some(head.version);
                    self.received.headers = head.headers;
                }
                ClientEvent::Data(data) => self.received.chunks.push(data),
                ClientEvent::Trailers(trailers) => self.received.trailers = Some(trailers),
                ClientEvent::EndOfMessage => {
                    return Some(Ok(Outcome::Complete(std::mem::take(&mut self.received))));
                }
                ClientEvent::Upgraded { leftover } => {
                    let head_len = self.head_bytes.len().saturating_sub(leftover.len());
                    let head = match last_head(&self.head_bytes[..head_len]) {
                        Some(head) => head,
                        None => {
                            return Some(Err(
                                "the server switched protocols with a head that does not parse"
                                    .to_owned(),
                            ));
                        }
                    };
                    return Some(Ok(Outcome::Upgraded { head, leftover }));
                }
                ClientEvent::Error(error) => {
                    return Some(Err(format!(
                        "the response broke HTTP/1.1: {error}; {}",
                        self.received.describe()
                    )));
                }
                _ => {}
            }
        }
        None
    }
}

/// The last response head in `bytes` (interim `1xx` heads may come before it).
fn last_head(mut bytes: &[u8]) -> Option<Received> {
    let mut last = None;
    while !bytes.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 128];
        let mut response = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(length) = response.parse(bytes).ok()? else {
            return None;
        };
        let mut headers = HeaderMap::new();
        for field in response.headers.iter() {
            let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
            let value = HeaderValue::from_bytes(field.value).ok()?;
            headers.append(name, value);
        }
        last = Some(Received {
            status: StatusCode::from_u16(response.code?).ok(),
            version: Some(Version::HTTP_11),
            headers,
            chunks: Vec::new(),
            trailers: None,
        });
        bytes = &bytes[length..];
    }
    last
}
