//! [`TestRequest`]: a request being built, sent by [`send`](TestRequest::send).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use super::error::TestError;
use super::exchange::{Done, Exchange};
use super::link::Link;
use super::response::TestResponse;
use super::stream::TestStream;
use super::websocket::TestWebSocket;
use super::{Protocol, TestClient};

/// A request a [`TestClient`] is about to send: add headers, a query and a body, then
/// [`send`](Self::send) it. Made by [`TestClient::get`] and its siblings.
///
/// Builder methods panic at once on a value that cannot be sent (a header name with a space,
/// a value that does not serialize): in a test that is the clearest report.
#[must_use = "a request does nothing until it is sent"]
#[derive(Debug)]
pub struct TestRequest {
    client: TestClient,
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Bytes,
    deadline: Duration,
}

/// A request ready for the wire.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) method: Method,
    /// Origin form: path and query.
    pub(crate) target: String,
    /// The `Host`, which HTTP/2 sends as `:authority`.
    pub(crate) authority: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// `GET /path`, for messages.
    pub(crate) label: String,
    pub(crate) deadline: Duration,
    /// A WebSocket handshake: keep the `101`'s fields.
    pub(crate) upgrade: bool,
}

impl TestRequest {
    /// A request to `uri`: a path (`/users?page=2`; the leading `/` may be left out), `*`, or
    /// an absolute URI (`http://example.com/users`), whose authority becomes the `Host`.
    pub(crate) fn new(client: TestClient, method: Method, uri: &str) -> TestRequest {
        let mut headers = HeaderMap::new();
        let target = if uri.starts_with('/') || uri == "*" {
            uri.to_owned()
        } else if let Some((authority, target)) = absolute(uri) {
            if let Ok(host) = HeaderValue::from_str(&authority) {
                headers.insert(header::HOST, host);
            }
            target
        } else {
            format!("/{uri}")
        };
        let deadline = client.deadline;
        TestRequest {
            client,
            method,
            target,
            headers,
            body: Bytes::new(),
            deadline,
        }
    }

    /// Adds a header field (a second one with the same name adds a second value).
    ///
    /// # Panics
    /// If `name` or `value` is not a valid field name or value.
    #[track_caller]
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Debug,
    {
        let name = name
            .try_into()
            .unwrap_or_else(|error| panic!("TestRequest::header: invalid name: {error:?}"));
        let value = value
            .try_into()
            .unwrap_or_else(|error| panic!("TestRequest::header: invalid value: {error:?}"));
        self.headers.append(name, value);
        self
    }

    /// Appends `query` to the target's query string, URL-encoded (`serde_urlencoded`):
    /// `.query(&[("page", "2")])` or a struct.
    ///
    /// # Panics
    /// If `query` does not serialize as URL-encoded pairs.
    #[track_caller]
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        let encoded = serde_urlencoded::to_string(query)
            .unwrap_or_else(|error| panic!("TestRequest::query: {error}"));
        if !encoded.is_empty() {
            let separator = match self.target.find('?') {
                None => '?',
                Some(at) if at + 1 == self.target.len() => '\0',
                Some(_) => '&',
            };
            if separator != '\0' {
                self.target.push(separator);
            }
            self.target.push_str(&encoded);
        }
        self
    }

    /// The body, as it is (no `Content-Type` is added).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body, with `Content-Type: application/json`.
    ///
    /// # Panics
    /// If `value` does not serialize.
    #[track_caller]
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        let body =
            serde_json::to_vec(value).unwrap_or_else(|error| panic!("TestRequest::json: {error}"));
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.body = body.into();
        self
    }

    /// A URL-encoded form body, with `Content-Type: application/x-www-form-urlencoded`.
    ///
    /// # Panics
    /// If `value` does not serialize as URL-encoded pairs.
    #[track_caller]
    pub fn form<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        let body = serde_urlencoded::to_string(value)
            .unwrap_or_else(|error| panic!("TestRequest::form: {error}"));
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self.body = body.into();
        self
    }

    /// How long this request may take before [`send`](Self::send) fails the test (the client's
    /// [`deadline`](TestClient::deadline) otherwise).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sends the request through a new in-memory connection (the client's protocol) and reads
    /// the response to its end, driving the dispatcher and the application on this thread.
    /// Cookies the response sets go into the client's jar.
    ///
    /// It blocks the calling thread: call it from a plain `#[test]` (or a blocking task), not
    /// from an async runtime's thread, whose own tasks it would hold up; there, use
    /// [`send_async`](Self::send_async).
    ///
    /// # Panics
    /// If the response is not complete within the deadline (10 s unless set otherwise), or the
    /// connection fails before it is: the message says which, and what had arrived. Use
    /// [`try_send`](Self::try_send) to examine such failures instead.
    #[track_caller]
    pub fn send(self) -> TestResponse {
        match self.try_send() {
            Ok(response) => response,
            Err(error) => panic!("{error}"),
        }
    }

    /// [`send`](Self::send), returning a missed deadline or a failed connection as an error
    /// instead of panicking: for tests of requests the protocol layer refuses (an HTTP/2
    /// stream reset, say).
    pub fn try_send(self) -> Result<TestResponse, TestError> {
        let (client, mut exchange, deadline) = self.start();
        let outcome = exchange.run(deadline);
        client.finish(exchange, outcome)
    }

    /// [`send`](Self::send) as a future, for async tests: the connection is driven by the
    /// task that awaits it, with the test runtime's wakers and the background runtime's timer,
    /// so it works inside any executor (a `#[tokio::test]`, `smol::block_on`).
    ///
    /// # Panics
    /// As [`send`](Self::send).
    pub async fn send_async(self) -> TestResponse {
        match self.try_send_async().await {
            Ok(response) => response,
            Err(error) => panic!("{error}"),
        }
    }

    /// [`try_send`](Self::try_send) as a future.
    pub async fn try_send_async(self) -> Result<TestResponse, TestError> {
        let (client, mut exchange, deadline) = self.start();
        let outcome = exchange.run_async(deadline).await;
        client.finish(exchange, outcome)
    }

    /// Sends the request and returns once the response head has arrived, to read the body
    /// piece by piece ([`TestStream::next_chunk`]): for event streams and bodies that never
    /// end. Cookies the head sets go into the jar.
    ///
    /// # Panics
    /// If no response head arrives within the deadline, or the connection fails first.
    #[track_caller]
    pub fn send_streaming(self) -> TestStream {
        let (deadline, target) = (self.deadline, self.target.clone());
        let (client, exchange, _) = self.start();
        let stream = TestStream::start(exchange, deadline);
        client.store_cookies(&target, stream.headers());
        stream
    }

    /// Opens a WebSocket with this request as the handshake (always over HTTP/1.1, whatever
    /// the client's protocol): the handshake fields are added, and the application's `101`
    /// checked.
    ///
    /// # Panics
    /// If the application refuses the handshake (any answer but a valid `101`), or the
    /// deadline passes: the message shows the response.
    #[track_caller]
    pub fn websocket(self) -> TestWebSocket {
        match self.try_websocket() {
            Ok(socket) => socket,
            Err(response) => panic!(
                "the WebSocket handshake was refused with status {}: {response:?}",
                response.status()
            ),
        }
    }

    /// [`websocket`](Self::websocket), returning the application's answer when it refuses the
    /// handshake (a `401`, a `426`) instead of panicking (boxed: a response is large beside
    /// a socket).
    ///
    /// # Panics
    /// If the deadline passes or the connection fails, as [`send`](Self::send) does.
    #[track_caller]
    pub fn try_websocket(mut self) -> Result<TestWebSocket, Box<TestResponse>> {
        let key = weft_core::ws::handshake::client_key(super::websocket::random_bytes());
        for (name, value) in &weft_core::ws::handshake::client_request_headers(&key, &[]) {
            self.headers.insert(name, value.clone());
        }
        let client = self.client.clone();
        let prepared = self.prepare(true);
        let deadline = Instant::now() + prepared.deadline;
        let mut exchange = Exchange::start(client.link(), &prepared, Protocol::Http1);
        let outcome = exchange.run(deadline);
        let leftover = match outcome {
            Err(error) => panic!("{error}"),
            Ok(Done::Complete) => {
                return Err(Box::new(
                    client
                        .finish(exchange, outcome)
                        .unwrap_or_else(|error| panic!("{error}")),
                ));
            }
            Ok(Done::Upgraded(leftover)) => leftover,
        };
        let headers = exchange.received().headers.clone();
        client.store_cookies(&prepared.target, &headers);
        let status = exchange
            .received()
            .status
            .unwrap_or(http::StatusCode::SWITCHING_PROTOCOLS);
        if let Err(error) = weft_core::ws::handshake::validate_response(status, &headers, &key, &[])
        {
            panic!(
                "{}: the server's 101 is not a valid WebSocket handshake: {error:?}; headers: {headers:?}",
                prepared.label
            );
        }
        Ok(TestWebSocket::new(
            exchange.into_link(),
            leftover,
            prepared.label,
            prepared.deadline,
        ))
    }

    /// The exchange started on a new connection in the client's protocol, and its deadline.
    fn start(self) -> (TestClient, Exchange, Instant) {
        let client = self.client.clone();
        let prepared = self.prepare(false);
        let deadline = Instant::now() + prepared.deadline;
        let exchange = Exchange::start(client.link(), &prepared, client.protocol);
        (client, exchange, deadline)
    }

    /// The request for the wire: `Host` and cookies added.
    fn prepare(mut self, upgrade: bool) -> Prepared {
        if !self.headers.contains_key(header::HOST) {
            let host = HeaderValue::from_str(&self.client.host)
                .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
            self.headers.insert(header::HOST, host);
        }
        let authority = self
            .headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        let path = self.target.split('?').next().unwrap_or("/");
        if let Some(cookies) = self.client.cookie_header(path) {
            let value = match self.headers.get(header::COOKIE) {
                Some(own) => format!("{}; {cookies}", own.to_str().unwrap_or_default()),
                None => cookies,
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                self.headers.insert(header::COOKIE, value);
            }
        }
        Prepared {
            label: format!("{} {}", self.method, self.target),
            method: self.method,
            target: self.target,
            authority,
            headers: self.headers,
            body: self.body,
            deadline: self.deadline,
            upgrade,
        }
    }
}

/// The authority and the origin-form target of an absolute URI, if `uri` is one.
fn absolute(uri: &str) -> Option<(String, String)> {
    let uri: http::Uri = uri.parse().ok()?;
    let authority = uri.authority()?.to_string();
    uri.scheme()?;
    let target = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    Some((authority, target))
}

impl TestClient {
    /// A new connection to the application.
    pub(crate) fn link(&self) -> Link {
        Link::new(
            self.shared.service.clone(),
            self.shared.config.clone(),
            self.peer,
        )
    }

    /// The response of an exchange that ended with `outcome`; its cookies go into the jar.
    fn finish(
        &self,
        exchange: Exchange,
        outcome: Result<Done, TestError>,
    ) -> Result<TestResponse, TestError> {
        outcome?;
        let received = std::mem::take(&mut *exchange.received());
        self.store_cookies(&exchange.target, &received.headers);
        Ok(TestResponse::new(exchange.label.clone(), received))
    }
}
