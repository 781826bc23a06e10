//! One exchange over HTTP/1.1 with weft-core's client role
//! ([`ClientConnection`](weft_core::h1::ClientConnection)).

use std::sync::Arc;
use std::task::Poll;

use bytes::{Buf, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri, Version};
use weft_core::Limits;
use weft_core::h1::{BodySize, ClientConnection, ClientEvent};

use super::exchange::{Done, Progress};
use super::link::{SharedPipe, lock};
use super::request::Prepared;
use super::response::Received;

/// The client side of an HTTP/1.1 exchange: weft-core's client role, reading the pipe.
pub(crate) struct Client {
    connection: ClientConnection,
    pipe: SharedPipe,
    progress: Progress,
    /// The request asked to switch protocols: keep the bytes of the heads, since the client
    /// role reports a `101` without its fields.
    upgrade: bool,
    head_bytes: BytesMut,
    eof_given: bool,
}

impl Client {
    /// Writes `request` into `pipe`; what is read goes into `progress`.
    pub(crate) fn start(request: &Prepared, pipe: SharedPipe, progress: Progress) -> Client {
        let mut limits = Limits::default();
        // A test reads whatever its application sends; the server side keeps its own limits.
        limits.max_body_size = u64::MAX;
        let mut connection = ClientConnection::new(limits);
        let uri: Uri = match request.target.parse() {
            Ok(uri) => uri,
            Err(error) => panic!("{}: not a request target: {error}", request.label),
        };
        let length = BodySize::Known(request.body.len() as u64);
        let sent = connection
            .send_request(&request.method, &uri, &request.headers, length)
            .and_then(|()| connection.send_data(&request.body))
            .and_then(|()| connection.finish());
        if let Err(error) = sent {
            panic!("{}: the request cannot be written: {error}", request.label);
        }
        Client {
            connection,
            pipe,
            progress,
            upgrade: request.upgrade,
            head_bytes: BytesMut::new(),
            eof_given: false,
        }
    }

    /// Moves the exchange: the request out, the response in.
    pub(crate) fn poll(&mut self) -> Poll<Result<Done, String>> {
        let pipe = Arc::clone(&self.pipe);
        let mut pipe = lock(&pipe);
        while let Some(bytes) = self.connection.poll_transmit() {
            pipe.to_server.extend_from_slice(&bytes);
        }
        loop {
            if let Some(done) = self.drain() {
                return Poll::Ready(done);
            }
            if pipe.to_client.is_empty() {
                break;
            }
            let taken = self.connection.receive(&pipe.to_client);
            if self.upgrade {
                self.head_bytes.extend_from_slice(&pipe.to_client[..taken]);
            }
            pipe.to_client.advance(taken);
            if taken == 0 {
                break;
            }
        }
        if pipe.server_closed && pipe.to_client.is_empty() && !self.eof_given {
            self.eof_given = true;
            self.connection.receive_eof();
            if let Some(done) = self.drain() {
                return Poll::Ready(done);
            }
            return Poll::Ready(Err(
                "the server closed the connection before a complete response".to_owned(),
            ));
        }
        Poll::Pending
    }

    /// Takes the client role's events; the outcome once the exchange is over.
    fn drain(&mut self) -> Option<Result<Done, String>> {
        while let Some(event) = self.connection.poll_event() {
            let mut received = self.progress.lock();
            match event {
                ClientEvent::Informational(_) => {}
                ClientEvent::Response(head) => {
                    received.status = Some(head.status);
                    received.version = Some(head.version);
                    received.headers = head.headers;
                }
                ClientEvent::Data(data) => received.chunks.push(data),
                ClientEvent::Trailers(trailers) => received.trailers = Some(trailers),
                ClientEvent::EndOfMessage => return Some(Ok(Done::Complete)),
                ClientEvent::Upgraded { leftover } => {
                    let head_len = self.head_bytes.len().saturating_sub(leftover.len());
                    let Some(head) = last_head(&self.head_bytes[..head_len]) else {
                        return Some(Err(
                            "the server switched protocols with a head that does not parse"
                                .to_owned(),
                        ));
                    };
                    *received = head;
                    return Some(Ok(Done::Upgraded(leftover)));
                }
                ClientEvent::Error(error) => {
                    return Some(Err(format!("the response broke HTTP/1.1: {error}")));
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
