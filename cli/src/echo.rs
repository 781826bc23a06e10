//! The protocol echo server behind `weft echo`: the application that conformance, load and soak
//! tests aim at, served the same way by every runtime.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET`/`HEAD /plaintext` | `Hello, World!` as `text/plain` |
//! | `GET`/`HEAD /json` | `{"message":"Hello, World!"}` as `application/json` |
//! | `GET`/`HEAD /stream?chunks=N&size=S` | N chunks of S bytes, streamed with no length up front |
//! | any method `/inspect` | the request as parsed, as JSON with every value in base64 |
//! | WebSocket `/ws` | every text and binary message echoed back (HTTP/1.1 `Upgrade` or HTTP/2 extended CONNECT; permessage-deflate when offered) |
//! | `CONNECT host:port` | `200`, then a tunnel that echoes every byte back until the client closes its side (HTTP/1.1, or a stream of HTTP/2) |
//! | any method, any other path | the request body, streamed back as it arrives |
//!
//! Errors are responses: `400` (or `426`) for a `/ws` request that is not a valid WebSocket
//! handshake, `400` for bad `/stream` parameters, `405` for a method a fixed route
//! does not answer, `413` for an `/inspect` body over [`INSPECT_BODY_LIMIT`], each with a short
//! `text/plain` reason.
//!
//! A `HEAD` request is answered with the same response as `GET`, body included: the connection
//! sends the head and drops the body (RFC 9110 §9.3.2), so the `Content-Length` a client sees
//! is the one `GET` would have.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Frame, SizeHint};
use weft_service::body::{Body, BodyError, BoxError};
use weft_service::runtime;
use weft_service::service::Service;
use weft_service::upgrade::OnUpgrade;
use weft_service::websocket::{WebSocket, WebSocketUpgrade};

/// The body of `/plaintext`.
pub const PLAINTEXT: &str = "Hello, World!";

/// The body of `/json`.
pub const JSON: &str = r#"{"message":"Hello, World!"}"#;

/// The number of chunks `/stream` sends when the query has no `chunks`.
pub const DEFAULT_STREAM_CHUNKS: u64 = 8;

/// The size of each chunk `/stream` sends when the query has no `size`.
pub const DEFAULT_STREAM_CHUNK_SIZE: u64 = 1024;

/// The largest chunk `/stream` sends (16 MiB): one chunk is held in memory at a time.
pub const MAX_STREAM_CHUNK_SIZE: u64 = 16 * 1024 * 1024;

/// The most `/stream` sends in total, `chunks × size` (1 GiB).
pub const MAX_STREAM_BYTES: u64 = 1024 * 1024 * 1024;

/// The largest request body `/inspect` reads (16 MiB); a longer one is answered with `413`.
pub const INSPECT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The echo application as a [`Service`]; see the [module documentation](self) for its routes.
///
/// It holds no state: every request is answered on its own.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Echo;

/// The echo application, ready to hand to a runtime.
pub fn echo_service() -> Echo {
    Echo
}

impl Service for Echo {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        answer(request)
    }
}

/// Routes one request. Every route but `/inspect` answers at once, so its future is only the
/// response; `/inspect` waits for the body in a future of its own, boxed so that the common
/// answer stays small (the server boxes each handler's future, and a small one is cheaper).
fn answer(mut request: Request<Body>) -> Answer {
    // A plain CONNECT carries the tunnel's handle; an extended one (a WebSocket over HTTP/2)
    // does not, and is routed by its path.
    if request.method() == Method::CONNECT && OnUpgrade::is_requested(&request) {
        return Answer::Ready(Some(tunnel(&mut request)));
    }
    let response = match request.uri().path() {
        "/plaintext" => only_get(request.method()).unwrap_or_else(plaintext),
        "/json" => only_get(request.method()).unwrap_or_else(json),
        "/stream" => only_get(request.method()).unwrap_or_else(|| stream(request.uri().query())),
        "/inspect" => return Answer::Waiting(Box::pin(inspect(request))),
        "/ws" => websocket(&request),
        _ => echo(request),
    };
    Answer::Ready(Some(response))
}

/// Accepts a CONNECT as a tunnel that echoes what the client sends, run as a task of the
/// server's runtime once the `200` is out.
fn tunnel(request: &mut Request<Body>) -> Response<Body> {
    let Some(on_upgrade) = OnUpgrade::from_request(request) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the tunnel's handle is gone",
        );
    };
    runtime::spawn(async move {
        let Ok(mut tunnel) = on_upgrade.await else {
            return;
        };
        while let Some(bytes) = tunnel.read().await {
            if tunnel.write(bytes).await.is_err() {
                return;
            }
        }
        tunnel.close();
    });
    Response::new(Body::empty())
}

/// The echo application's answer to one request.
enum Answer {
    /// Known already (taken on the first poll).
    Ready(Option<Response<Body>>),
    /// `/inspect`, reading the request body first.
    Waiting(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Future for Answer {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        match self.get_mut() {
            Answer::Ready(response) => match response.take() {
                Some(response) => Poll::Ready(response),
                // Polled again after it completed: nothing is left to give.
                None => Poll::Pending,
            },
            Answer::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

/// `/ws`: accepts the WebSocket (with permessage-deflate when the client offers it) and
/// echoes every message until the client closes.
fn websocket(request: &Request<Body>) -> Response<Body> {
    match WebSocketUpgrade::from_request(request) {
        Ok(upgrade) => upgrade.on_upgrade(echo_messages),
        Err(rejection) => rejection.into_response(),
    }
}

/// Sends every message received back on the same socket, in order.
async fn echo_messages(mut socket: WebSocket) {
    while let Some(message) = socket.recv().await {
        if socket.send(message).await.is_err() {
            return;
        }
    }
}

/// `None` for `GET` and `HEAD`, else the `405` answer naming them (RFC 9110 §15.5.6).
fn only_get(method: &Method) -> Option<Response<Body>> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(response)
}

/// `GET /plaintext`: `Hello, World!` as `text/plain`, with a known length of 13 bytes.
fn plaintext() -> Response<Body> {
    with_type(Body::full(PLAINTEXT), "text/plain")
}

/// `GET /json`: `{"message":"Hello, World!"}` as `application/json`, with a known length.
fn json() -> Response<Body> {
    with_type(Body::full(JSON), "application/json")
}

/// `GET /stream?chunks=N&size=S`: N chunks of S bytes as `application/octet-stream`, produced
/// one at a time and with no length announced, so HTTP/1.1 sends them chunked.
///
/// Byte `k` of the whole body is `b'a' + k % 26`, so a client can check order and content.
/// `chunks` defaults to [`DEFAULT_STREAM_CHUNKS`] and may be 0 (an empty body); `size`
/// defaults to [`DEFAULT_STREAM_CHUNK_SIZE`] and must be 1 to [`MAX_STREAM_CHUNK_SIZE`];
/// `chunks × size` is at most [`MAX_STREAM_BYTES`]. Values are plain decimal digits; anything
/// else is a `400`. Other query parameters are ignored; a repeated one counts its last value.
fn stream(query: Option<&str>) -> Response<Body> {
    match StreamParams::parse(query.unwrap_or("")) {
        Ok(params) => with_type(
            Body::new(PatternStream::new(params)),
            "application/octet-stream",
        ),
        Err(reason) => error(StatusCode::BAD_REQUEST, &reason),
    }
}

/// Any method `/inspect`: the request as parsed, as `application/json`:
/// `{"method":…,"uri":…,"version":…,"headers":[[name,value],…],"body":…}`, where every string
/// is the standard base64 of the raw bytes, so any byte survives the trip.
///
/// The URI is as the server understood it (origin form: path and query, over HTTP/1.1 and
/// HTTP/2 alike, HTTP/2's `:authority` appearing as a `host` header; see
/// `weft_service::request`). The version is
/// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` or `HTTP/3`. Header names are lowercase, repeated headers
/// appear once per value, grouped by name. The body is read whole, up to
/// [`INSPECT_BODY_LIMIT`] bytes (`413` beyond); a body that breaks off is a `400`.
async fn inspect(request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match body.collect(INSPECT_BODY_LIMIT).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body larger than {INSPECT_BODY_LIMIT} bytes"),
            );
        }
        Err(other) => return error(StatusCode::BAD_REQUEST, &format!("request {other}")),
    };
    let uri = parts.uri.to_string();
    let mut out = String::with_capacity(128 + 2 * body.len());
    out.push_str(r#"{"method":""#);
    push_base64(&mut out, parts.method.as_str().as_bytes());
    out.push_str(r#"","uri":""#);
    push_base64(&mut out, uri.as_bytes());
    out.push_str(r#"","version":""#);
    push_base64(&mut out, version_name(parts.version).as_bytes());
    out.push_str(r#"","headers":["#);
    for (index, (name, value)) in parts.headers.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(r#"[""#);
        push_base64(&mut out, name.as_str().as_bytes());
        out.push_str(r#"",""#);
        push_base64(&mut out, value.as_bytes());
        out.push_str(r#""]"#);
    }
    out.push_str(r#"],"body":""#);
    push_base64(&mut out, &body);
    out.push_str(r#""}"#);
    with_type(Body::full(out), "application/json")
}

/// Any method, any other path: `200` with the request body streamed back piece by piece as it
/// arrives (never collected, so a body of any size passes in bounded memory), trailers
/// included, and the request's `Content-Type` when it has one.
///
/// When the request announces a `Content-Length`, the response carries the same length; a
/// request body that then turns out longer or shorter ends the response body with an error.
fn echo(request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let declared = declared_length(&parts.headers);
    let mut response = Response::new(Body::new(EchoBody {
        inner: body,
        declared,
        received: 0,
        failed: false,
    }));
    if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, content_type.clone());
    }
    response
}

/// A `200` carrying `body` as `content_type`.
fn with_type(body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A `status` answer with a one-line `text/plain` reason.
fn error(status: StatusCode, reason: &str) -> Response<Body> {
    let mut response = with_type(Body::full(format!("{reason}\n")), "text/plain");
    *response.status_mut() = status;
    response
}

fn push_base64(out: &mut String, bytes: &[u8]) {
    BASE64.encode_string(bytes, out);
}

fn version_name(version: Version) -> String {
    match version {
        Version::HTTP_09 => "HTTP/0.9".to_owned(),
        Version::HTTP_10 => "HTTP/1.0".to_owned(),
        Version::HTTP_11 => "HTTP/1.1".to_owned(),
        Version::HTTP_2 => "HTTP/2".to_owned(),
        Version::HTTP_3 => "HTTP/3".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The request's single, well-formed `Content-Length`, unless `Transfer-Encoding` overrides it
/// (RFC 9112 §6.3); `None` when the length is not known up front.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_decimal(value.as_bytes())
}

/// Plain decimal digits (no sign, no spaces) that fit a `u64`.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |total, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        total.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// What `/stream` was asked for, checked against the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamParams {
    chunks: u64,
    size: usize,
}

impl StreamParams {
    fn parse(query: &str) -> Result<StreamParams, String> {
        let mut chunks = DEFAULT_STREAM_CHUNKS;
        let mut size = DEFAULT_STREAM_CHUNK_SIZE;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "chunks" => &mut chunks,
                "size" => &mut size,
                _ => continue,
            };
            *slot = parse_decimal(value.as_bytes())
                .ok_or_else(|| format!("{name}: expected a decimal number, got {value:?}"))?;
        }
        if size == 0 || size > MAX_STREAM_CHUNK_SIZE {
            return Err(format!(
                "size: must be from 1 to {MAX_STREAM_CHUNK_SIZE}, got {size}"
            ));
        }
        if chunks
            .checked_mul(size)
            .is_none_or(|total| total > MAX_STREAM_BYTES)
        {
            return Err(format!(
                "chunks * size: must be at most {MAX_STREAM_BYTES}, got {chunks} * {size}"
            ));
        }
        let size = usize::try_from(size).map_err(|_| format!("size: {size} is too large"))?;
        Ok(StreamParams { chunks, size })
    }
}

/// The `/stream` body: yields its chunks one poll at a time, each a zero-copy slice of one
/// pattern buffer, so memory stays at one chunk whatever the total.
struct PatternStream {
    /// `size + 25` bytes of `a..z` repeated: any 26-aligned window of `size` bytes is in it.
    pattern: Bytes,
    size: usize,
    /// Where the next chunk starts in the pattern: the body's offset so far, modulo 26.
    offset: usize,
    remaining: u64,
}

impl PatternStream {
    fn new(params: StreamParams) -> PatternStream {
        let pattern = if params.chunks == 0 {
            Bytes::new()
        } else {
            (0..params.size + 25)
                .map(|index| b'a' + (index % 26) as u8)
                .collect::<Vec<u8>>()
                .into()
        };
        PatternStream {
            pattern,
            size: params.size,
            offset: 0,
            remaining: params.chunks,
        }
    }
}

impl http_body::Body for PatternStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        this.remaining -= 1;
        let chunk = this.pattern.slice(this.offset..this.offset + this.size);
        this.offset = (this.offset + this.size) % 26;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    // `size_hint` stays unknown on purpose: the route exists to exercise streamed responses.
}

/// The echo body: the request body's frames, passed on as they arrive.
struct EchoBody {
    inner: Body,
    /// The request's `Content-Length`, if it had one.
    declared: Option<u64>,
    /// Data bytes passed on so far.
    received: u64,
    /// An error was reported; the body is over.
    failed: bool,
}

impl EchoBody {
    fn fail(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = true;
        Poll::Ready(Some(Err(Box::new(LengthMismatch {
            declared: self.declared.unwrap_or(0),
            received: self.received,
        }))))
    }
}

impl http_body::Body for EchoBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if this
                        .declared
                        .is_some_and(|declared| this.received > declared)
                    {
                        return this.fail();
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                this.failed = true;
                Poll::Ready(Some(Err(error)))
            }
            None => {
                if this
                    .declared
                    .is_some_and(|declared| this.received != declared)
                {
                    return this.fail();
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        match self.declared {
            Some(declared) if inner.exact().is_none() => {
                SizeHint::with_exact(declared.saturating_sub(self.received))
            }
            _ => inner,
        }
    }
}

/// A request body that did not match its `Content-Length`.
#[derive(Debug)]
struct LengthMismatch {
    declared: u64,
    received: u64,
}

impl fmt::Display for LengthMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request body of {} bytes or more does not match its Content-Length of {}",
            self.received, self.declared
        )
    }
}

impl std::error::Error for LengthMismatch {}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    /// Runs `future` to completion on this thread. The futures under test need no outside
    /// wake-up once their input is complete, so a bounded number of polls is enough.
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
        panic!("future still pending after 1000 polls");
    }

    fn call(request: Request<Body>) -> Response<Body> {
        block_on(echo_service().call(request))
    }

    fn get(uri: &str) -> Response<Body> {
        call(Request::get(uri).body(Body::empty()).unwrap())
    }

    fn poll_frame(body: &mut Body) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut cx = Context::from_waker(Waker::noop());
        http_body::Body::poll_frame(Pin::new(body), &mut cx)
    }

    /// Every frame of `body`, which must be ready without waiting.
    fn frames(mut body: Body) -> Vec<Frame<Bytes>> {
        let mut frames = Vec::new();
        loop {
            match poll_frame(&mut body) {
                Poll::Ready(Some(Ok(frame))) => frames.push(frame),
                Poll::Ready(None) => return frames,
                Poll::Ready(Some(Err(error))) => panic!("body failed: {error}"),
                Poll::Pending => panic!("body pending"),
            }
        }
    }

    fn bytes(body: Body) -> Vec<u8> {
        block_on(body.collect(usize::MAX)).unwrap().to_vec()
    }

    fn content_type(response: &Response<Body>) -> &str {
        response.headers()[CONTENT_TYPE].to_str().unwrap()
    }

    fn base64(text: &str) -> Vec<u8> {
        BASE64.decode(text).unwrap()
    }

    /// The base64 strings of an `/inspect` answer, in order of appearance.
    fn json_strings(json: &str) -> Vec<String> {
        json.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn plaintext_says_hello_with_an_exact_length() {
        let response = get("/plaintext");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), "text/plain");
        assert_eq!(
            http_body::Body::size_hint(response.body()).exact(),
            Some(13)
        );
        assert_eq!(bytes(response.into_body()), b"Hello, World!");
    }

    #[test]
    fn head_plaintext_gets_the_get_answer_for_the_connection_to_strip() {
        let response = call(Request::head("/plaintext").body(Body::empty()).unwrap());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            http_body::Body::size_hint(response.body()).exact(),
            Some(13)
        );
    }

    #[test]
    fn plaintext_refuses_post_naming_the_allowed_methods() {
        let response = call(Request::post("/plaintext").body(Body::empty()).unwrap());
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, HEAD");
    }

    #[test]
    fn json_says_hello_as_json() {
        let response = get("/json");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), "application/json");
        assert_eq!(
            bytes(response.into_body()),
            br#"{"message":"Hello, World!"}"#
        );
    }

    #[test]
    fn stream_sends_the_asked_chunks_with_no_length_up_front() {
        let response = get("/stream?chunks=3&size=5");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), "application/octet-stream");
        let hint = http_body::Body::size_hint(response.body());
        assert_eq!(hint.exact(), None);
        assert_eq!(hint.upper(), None);
        let frames = frames(response.into_body());
        assert_eq!(frames.len(), 3);
        let data: Vec<u8> = frames
            .into_iter()
            .flat_map(|frame| frame.into_data().unwrap())
            .collect();
        assert_eq!(data, b"abcdefghijklmno");
    }

    #[test]
    fn stream_pattern_runs_on_across_chunks() {
        let data = bytes(get("/stream?size=7&chunks=10").into_body());
        assert_eq!(data.len(), 70);
        for (index, byte) in data.iter().enumerate() {
            assert_eq!(*byte, b'a' + (index % 26) as u8, "byte {index}");
        }
    }

    #[test]
    fn stream_defaults_to_eight_chunks_of_a_kibibyte() {
        let response = get("/stream");
        assert_eq!(response.status(), StatusCode::OK);
        let frames = frames(response.into_body());
        assert_eq!(frames.len(), 8);
        assert!(frames.iter().all(|f| f.data_ref().unwrap().len() == 1024));
    }

    #[test]
    fn stream_of_zero_chunks_is_an_empty_body() {
        let response = get("/stream?chunks=0");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(frames(response.into_body()).is_empty());
    }

    #[test]
    fn stream_of_the_maximum_is_produced_lazily() {
        let response = get("/stream?chunks=1024&size=1048576");
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let first = poll_frame(&mut body);
        let Poll::Ready(Some(Ok(frame))) = first else {
            panic!("expected a chunk, got {first:?}")
        };
        assert_eq!(frame.into_data().unwrap().len(), 1 << 20);
    }

    #[test]
    fn stream_rejects_bad_parameters() {
        for query in [
            "chunks=x",
            "chunks=",
            "chunks",
            "size=-1",
            "size=+5",
            "size=1.5",
            "size=0",
            "size=16777217",
            "chunks=99999999999999999999999",
            "chunks=1025&size=1048576",
            "chunks=18446744073709551615&size=2",
        ] {
            let response = get(&format!("/stream?{query}"));
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(content_type(&response), "text/plain");
            assert!(!bytes(response.into_body()).is_empty(), "{query}");
        }
    }

    #[test]
    fn stream_ignores_other_parameters() {
        let response = get("/stream?x=y&chunks=2&size=1&&z");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(bytes(response.into_body()), b"ab");
    }

    #[test]
    fn inspect_reports_the_request_in_base64_so_any_byte_survives() {
        let odd_body: Vec<u8> = (0..=255).rev().collect();
        let odd_value = HeaderValue::from_bytes(b"caf\xc3\xa9 \x80\xff\"\\").unwrap();
        let request = Request::post("/inspect?q=%00%ff&x=~!$")
            .version(Version::HTTP_10)
            .header("x-odd", odd_value)
            .header("x-twice", "1")
            .header("x-twice", "2")
            .body(Body::from(odd_body.clone()))
            .unwrap();
        let response = call(request);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), "application/json");
        let json = String::from_utf8(bytes(response.into_body())).unwrap();
        assert!(json.starts_with(r#"{"method":""#), "{json}");
        assert!(json.contains(r#"","headers":[[""#), "{json}");
        let strings = json_strings(&json);
        let keys_and_values: Vec<&str> = strings.iter().map(String::as_str).collect();
        assert_eq!(keys_and_values[0], "method");
        assert_eq!(base64(keys_and_values[1]), b"POST");
        assert_eq!(keys_and_values[2], "uri");
        assert_eq!(base64(keys_and_values[3]), b"/inspect?q=%00%ff&x=~!$");
        assert_eq!(keys_and_values[4], "version");
        assert_eq!(base64(keys_and_values[5]), b"HTTP/1.0");
        assert_eq!(keys_and_values[6], "headers");
        let headers: Vec<(Vec<u8>, Vec<u8>)> = keys_and_values[7..13]
            .chunks(2)
            .map(|pair| (base64(pair[0]), base64(pair[1])))
            .collect();
        assert_eq!(
            headers,
            [
                (b"x-odd".to_vec(), b"caf\xc3\xa9 \x80\xff\"\\".to_vec()),
                (b"x-twice".to_vec(), b"1".to_vec()),
                (b"x-twice".to_vec(), b"2".to_vec()),
            ]
        );
        assert_eq!(keys_and_values[13], "body");
        assert_eq!(base64(keys_and_values[14]), odd_body);
        assert_eq!(keys_and_values.len(), 15);
    }

    #[test]
    fn inspect_of_a_bare_get_has_no_headers_and_an_empty_body() {
        let json = String::from_utf8(bytes(get("/inspect").into_body())).unwrap();
        assert_eq!(
            json,
            r#"{"method":"R0VU","uri":"L2luc3BlY3Q=","version":"SFRUUC8xLjE=","headers":[],"body":""}"#
        );
    }

    #[test]
    fn inspect_reads_a_body_sent_in_pieces() {
        let (mut sender, body) = Body::channel(1024);
        for piece in [&b"one "[..], b"two ", b"three"] {
            sender.send_data(Bytes::from_static(piece));
        }
        sender.finish();
        let response = call(Request::put("/inspect").body(body).unwrap());
        let json = String::from_utf8(bytes(response.into_body())).unwrap();
        let strings = json_strings(&json);
        assert_eq!(base64(strings.last().unwrap()), b"one two three");
    }

    #[test]
    fn inspect_refuses_a_body_over_the_limit() {
        let (mut sender, body) = Body::channel(1024);
        let piece = Bytes::from(vec![b'x'; 1 << 20]);
        for _ in 0..(INSPECT_BODY_LIMIT >> 20) {
            sender.send_data(piece.clone());
        }
        sender.send_data(Bytes::from_static(b"!"));
        sender.finish();
        let response = call(Request::post("/inspect").body(body).unwrap());
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(content_type(&response), "text/plain");
    }

    #[test]
    fn inspect_answers_a_truncated_body_with_400() {
        let (mut sender, body) = Body::channel(1024);
        sender.send_data(Bytes::from_static(b"half"));
        sender.abort();
        let response = call(Request::post("/inspect").body(body).unwrap());
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn echo_streams_a_channel_body_back_piece_by_piece() {
        let (mut sender, body) = Body::channel(16);
        let request = Request::post("/anything/else?x=1")
            .header(CONTENT_TYPE, "application/x-weird")
            .body(body)
            .unwrap();
        let response = call(request);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), "application/x-weird");
        let mut body = response.into_body();
        assert!(poll_frame(&mut body).is_pending(), "nothing sent yet");
        assert!(sender.is_wanted(), "reading the response reads the request");
        for piece in [&b"first"[..], b"second", b"third"] {
            sender.send_data(Bytes::from_static(piece));
            match poll_frame(&mut body) {
                Poll::Ready(Some(Ok(frame))) => assert_eq!(frame.into_data().unwrap(), piece),
                other => panic!("expected {piece:?}, got {other:?}"),
            }
            assert!(poll_frame(&mut body).is_pending(), "no more than was sent");
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", HeaderValue::from_static("abc"));
        sender.send_trailers(trailers);
        sender.finish();
        let rest = frames(body);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].trailers_ref().unwrap()["x-checksum"], "abc");
    }

    #[test]
    fn echo_answers_any_method_and_needs_no_content_type() {
        let response = call(Request::delete("/").body(Body::from("bye")).unwrap());
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get(CONTENT_TYPE).is_none());
        assert_eq!(bytes(response.into_body()), b"bye");
    }

    #[test]
    fn echo_holds_no_more_than_the_channel_does() {
        // 100 MiB through a 64 KiB channel: only one piece exists at a time.
        let (mut sender, body) = Body::channel(64 * 1024);
        let mut response = call(Request::post("/echo").body(body).unwrap()).into_body();
        let piece = Bytes::from(vec![7u8; 64 * 1024]);
        let mut echoed = 0usize;
        for _ in 0..1600 {
            assert!(sender.has_capacity());
            sender.send_data(piece.clone());
            assert!(!sender.has_capacity());
            match poll_frame(&mut response) {
                Poll::Ready(Some(Ok(frame))) => echoed += frame.into_data().unwrap().len(),
                other => panic!("expected data, got {other:?}"),
            }
        }
        sender.finish();
        assert!(frames(response).is_empty());
        assert_eq!(echoed, 100 << 20);
    }

    #[test]
    fn echo_keeps_the_announced_length() {
        let (mut sender, body) = Body::channel(1024);
        let request = Request::post("/echo")
            .header(CONTENT_LENGTH, "10")
            .body(body)
            .unwrap();
        let mut body = call(request).into_body();
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(10));
        sender.send_data(Bytes::from_static(b"0123"));
        assert!(poll_frame(&mut body).is_ready());
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(6));
        sender.send_data(Bytes::from_static(b"456789"));
        sender.finish();
        assert_eq!(frames(body).len(), 1);
    }

    #[test]
    fn echo_fails_a_body_that_breaks_its_content_length() {
        for (declared, sent) in [("3", &b"four"[..]), ("5", b"four")] {
            let (mut sender, body) = Body::channel(64);
            sender.send_data(Bytes::from_static(sent));
            sender.finish();
            let request = Request::post("/echo")
                .header(CONTENT_LENGTH, declared)
                .body(body)
                .unwrap();
            let mut body = call(request).into_body();
            let mut failed = false;
            while let Poll::Ready(Some(frame)) = poll_frame(&mut body) {
                failed |= frame.is_err();
            }
            assert!(failed, "declared {declared}, sent {} bytes", sent.len());
        }
    }

    #[test]
    fn echo_of_a_truncated_request_fails_the_response_body() {
        let (mut sender, body) = Body::channel(64);
        sender.send_data(Bytes::from_static(b"part"));
        drop(sender);
        let mut body = call(Request::post("/x").body(body).unwrap()).into_body();
        assert!(matches!(poll_frame(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(poll_frame(&mut body), Poll::Ready(Some(Err(_)))));
        assert!(matches!(poll_frame(&mut body), Poll::Ready(None)));
    }
}
