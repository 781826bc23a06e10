//! The glue between an HTTP/1.1 connection and a `Service`.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use http::{Request, Response, StatusCode, header};
use http_body::Body as _;
use weft_core::Limits;
use weft_core::body::{Body, BodySender};
use weft_core::h1::{
    BodyFraming, BodySize, ReadStatus, RequestHead, ServerConnection, ServerEvent,
};
use weft_core::service::{ConnectionInfo, Service};

use crate::date::http_date_now;

/// The application's answer in progress.
type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'static>>;

/// Settings of a [`Dispatcher`] beyond the protocol's [`Limits`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DispatchConfig {
    /// The protocol limits every connection enforces.
    pub limits: Limits,
    /// Request-body bytes held for the application before the connection stops reading the
    /// socket (backpressure).
    pub request_body_buffer: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            limits: Limits::default(),
            request_body_buffer: 64 * 1024,
        }
    }
}

/// A response body being copied into the connection.
struct ResponseInProgress {
    body: Body,
    /// Bytes taken from the body that the connection has not accepted yet.
    unsent: Bytes,
    /// How the body ended, when that was learned before `unsent` could be sent.
    ended: Option<BodyEnd>,
}

/// The last thing a response body yields.
enum BodyEnd {
    Finished,
    Trailers(http::HeaderMap),
    Failed(weft_core::body::BoxError),
}

/// Serves one HTTP/1.1 connection with a [`Service`], still without I/O.
///
/// A driver calls [`receive`](Self::receive) with bytes from the socket (at most
/// [`receive_capacity`](Self::receive_capacity), and only while [`wants_read`](Self::wants_read)),
/// [`poll`](Self::poll) whenever it was woken or moved bytes, and writes what
/// [`poll_transmit`](Self::poll_transmit) returns, until [`is_closed`](Self::is_closed). Time
/// comes in through [`poll_timeout`](Self::poll_timeout) and
/// [`handle_timeout`](Self::handle_timeout). Wake-ups from the application (its future, its
/// response body, room in the request body) arrive through the `Context` given to `poll`.
pub struct Dispatcher<S> {
    conn: ServerConnection,
    service: Arc<S>,
    info: ConnectionInfo,
    config: DispatchConfig,
    /// Feeds the body of the request being answered.
    request_body: Option<BodySender>,
    handler: Option<HandlerFuture>,
    response: Option<ResponseInProgress>,
}

impl<S: Service> Dispatcher<S> {
    /// A dispatcher for a connection accepted at `now`.
    pub fn new(
        service: Arc<S>,
        config: DispatchConfig,
        info: ConnectionInfo,
        now: Instant,
    ) -> Self {
        Dispatcher {
            conn: ServerConnection::new(config.limits.clone(), now),
            service,
            info,
            config,
            request_body: None,
            handler: None,
            response: None,
        }
    }

    /// Whether bytes from the socket are wanted now. False while the application has not
    /// taken the request body already received (backpressure), while a pipelined request
    /// waits for the current response, and after the connection stopped reading.
    pub fn wants_read(&self) -> bool {
        self.conn.read_status() == ReadStatus::NeedData
            && self
                .request_body
                .as_ref()
                .is_none_or(BodySender::has_capacity)
    }

    /// Most bytes [`receive`](Self::receive) takes now.
    pub fn receive_capacity(&self) -> usize {
        self.conn.receive_capacity()
    }

    /// Takes bytes read from the socket at `now`; returns how many were taken.
    pub fn receive(&mut self, now: Instant, data: &[u8]) -> usize {
        self.conn.receive(now, data)
    }

    /// The peer closed its side of the connection.
    pub fn receive_eof(&mut self) {
        self.conn.receive_eof();
    }

    /// Bytes to write to the socket.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.conn.poll_transmit(now)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
    }

    /// Closes gracefully (server shutdown): at once when idle, else after the response in
    /// progress, which tells the client `connection: close`.
    pub fn shutdown(&mut self) {
        self.conn.shutdown();
    }

    /// Whether the connection is over and its output written: close the socket.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Moves the exchange forward as far as it can go without I/O: hands request events to
    /// the application, polls its future and its response body, and queues output. Returns
    /// true when anything moved, so the driver knows to write and poll again.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        loop {
            let mut moved = self.deliver_events(cx);
            moved |= self.poll_handler(cx);
            moved |= self.pump_response(cx);
            if !moved {
                return progressed;
            }
            progressed = true;
        }
    }

    /// Hands connection events to the application while its request body has room.
    fn deliver_events(&mut self, cx: &mut Context<'_>) -> bool {
        let mut moved = false;
        loop {
            if let Some(sender) = &self.request_body {
                // `Expect: 100-continue`: the client sends the body once the application asks.
                if sender.poll_wanted(cx).is_ready() {
                    self.conn.request_body();
                }
                if sender.poll_capacity(cx).is_pending() {
                    return moved;
                }
            }
            let Some(event) = self.conn.poll_event() else {
                return moved;
            };
            moved = true;
            match event {
                ServerEvent::Request(head) => self.start_request(*head),
                ServerEvent::Data(data) => {
                    if let Some(sender) = &mut self.request_body {
                        sender.send_data(data);
                    }
                }
                ServerEvent::Trailers(trailers) => {
                    if let Some(sender) = &mut self.request_body {
                        sender.send_trailers(trailers);
                    }
                }
                ServerEvent::EndOfMessage => {
                    if let Some(sender) = self.request_body.take() {
                        sender.finish();
                    }
                }
                ServerEvent::Upgraded { .. } => {
                    // Protocol switches are handed to upgrade handlers by the runtimes; a bare
                    // dispatcher has nobody to give the connection to.
                    tracing::debug!("connection upgraded without an upgrade handler; closing");
                    self.conn.abort();
                }
                ServerEvent::Error(error) => {
                    tracing::debug!(peer = ?self.info.peer, %error, "request refused");
                    if let Some(sender) = self.request_body.take() {
                        sender.abort();
                    }
                    // The connection is closing: the answer could no longer be sent.
                    self.handler = None;
                    self.response = None;
                }
                _ => {}
            }
        }
    }

    fn start_request(&mut self, head: RequestHead) {
        let (sender, body) = if head.body == BodyFraming::Empty {
            (None, Body::empty())
        } else {
            let (sender, body) = Body::channel(self.config.request_body_buffer);
            (Some(sender), body)
        };
        let mut request: Request<Body> = head.into_request(body);
        request.extensions_mut().insert(self.info.clone());
        self.request_body = sender;
        // A `call` that panics before returning its future is answered like one whose future
        // panics: with a 500, the connection living on.
        self.handler = match catch_unwind(AssertUnwindSafe(|| self.service.call(request))) {
            Ok(future) => Some(Box::pin(future)),
            Err(_) => Some(Box::pin(std::future::ready(self.panic_response()))),
        };
    }

    /// The answer to a handler that panicked.
    fn panic_response(&self) -> Response<Body> {
        tracing::error!(peer = ?self.info.peer, "request handler panicked; answering 500");
        let mut response = Response::new(Body::from("internal server error\n"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        response
    }

    /// Polls the application's future; a panic becomes a `500`.
    fn poll_handler(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(handler) = &mut self.handler else {
            return false;
        };
        let response = match catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return false,
            Ok(Poll::Ready(response)) => response,
            Err(_) => self.panic_response(),
        };
        self.handler = None;
        self.start_response(response, cx);
        true
    }

    fn start_response(&mut self, response: Response<Body>, cx: &mut Context<'_>) {
        let (parts, body) = response.into_parts();
        let size = body
            .size_hint()
            .exact()
            .map_or(BodySize::Unknown, BodySize::Known);
        let mut response = ResponseInProgress {
            body,
            unsent: Bytes::new(),
            ended: None,
        };
        // The body is polled once before the head is written: a body that streams the request
        // (an echo, a proxy) asks for it now, and a client waiting on `Expect: 100-continue`
        // must get its `100 Continue` before our final status, or it never sends the body.
        response.take_frame(cx);
        if self
            .request_body
            .as_ref()
            .is_some_and(BodySender::is_wanted)
        {
            self.conn.request_body();
        }
        self.conn.set_date(http_date_now());
        match self.conn.send_response(parts.status, &parts.headers, size) {
            Ok(()) => self.response = Some(response),
            Err(error) => tracing::debug!(%error, "response dropped"),
        }
    }

    /// Copies the response body into the connection until the body or the output buffer
    /// has nothing more for now.
    fn pump_response(&mut self, cx: &mut Context<'_>) -> bool {
        let mut moved = false;
        while let Some(response) = &mut self.response {
            if !response.unsent.is_empty() {
                match self.conn.send_data(&response.unsent) {
                    // The output buffer is full: the driver writes, then polls again.
                    Ok(0) => return moved,
                    Ok(taken) => {
                        response.unsent.advance(taken);
                        moved = true;
                        continue;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "response body not sent");
                        self.response = None;
                        return true;
                    }
                }
            }
            match response.ended.take() {
                None if !response.take_frame(cx) => return moved,
                None => {}
                Some(BodyEnd::Finished) => {
                    if let Err(error) = self.conn.finish() {
                        tracing::warn!(%error, "response body ended early; closing the connection");
                    }
                    self.response = None;
                }
                Some(BodyEnd::Trailers(trailers)) => {
                    let _ = self.conn.send_trailers(&trailers);
                    self.response = None;
                }
                Some(BodyEnd::Failed(error)) => {
                    // Finishing would make a truncated body look complete: cut it short.
                    tracing::warn!(%error, "response body failed; closing the connection");
                    self.conn.abort();
                    self.response = None;
                }
            }
            moved = true;
        }
        moved
    }
}

impl ResponseInProgress {
    /// Polls the body for its next frame into `unsent` or `ended`; false when it is pending.
    /// A body that panics is treated as one that failed: the response is cut short and the
    /// connection closes, while the server lives on.
    fn take_frame(&mut self, cx: &mut Context<'_>) -> bool {
        let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut self.body).poll_frame(cx)));
        let polled = polled.unwrap_or_else(|_| {
            tracing::error!("response body panicked; cutting the response short");
            Poll::Ready(Some(Err("response body panicked".into())))
        });
        match polled {
            Poll::Pending => return false,
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => self.unsent = data,
                Err(frame) => {
                    // A frame is data or trailers; anything else is ignored.
                    if let Ok(trailers) = frame.into_trailers() {
                        self.ended = Some(BodyEnd::Trailers(trailers));
                    }
                }
            },
            Poll::Ready(Some(Err(error))) => self.ended = Some(BodyEnd::Failed(error)),
            Poll::Ready(None) => self.ended = Some(BodyEnd::Finished),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use http_body::Frame;

    use super::*;

    /// A response body that panics when polled.
    struct PanickingBody;

    impl http_body::Body for PanickingBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            panic!("deliberate panic in a response body");
        }
    }

    fn run(dispatcher: &mut Dispatcher<impl Service>, request: &[u8]) -> Vec<u8> {
        let now = Instant::now();
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(dispatcher.receive(now, request), request.len());
        let mut output = Vec::new();
        for _ in 0..16 {
            dispatcher.poll(&mut cx);
            while let Some(bytes) = dispatcher.poll_transmit(now) {
                output.extend_from_slice(&bytes);
            }
        }
        output
    }

    #[test]
    fn a_panicking_response_body_cuts_the_response_and_closes() {
        let service = |_request: Request<Body>| async { Response::new(Body::new(PanickingBody)) };
        let info = ConnectionInfo::default();
        let mut dispatcher = Dispatcher::new(
            Arc::new(service),
            DispatchConfig::default(),
            info,
            Instant::now(),
        );
        let output = run(&mut dispatcher, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        let output = String::from_utf8(output).unwrap();
        assert!(output.starts_with("HTTP/1.1 200 OK\r\n"), "{output}");
        assert!(output.contains("transfer-encoding: chunked"), "{output}");
        assert!(
            !output.ends_with("0\r\n\r\n"),
            "a cut response must not look complete: {output}"
        );
        assert!(dispatcher.is_closed());
    }

    #[test]
    fn a_panicking_call_is_answered_500() {
        let service = |_request: Request<Body>| -> std::future::Ready<Response<Body>> {
            panic!("deliberate panic in Service::call");
        };
        let info = ConnectionInfo::default();
        let mut dispatcher = Dispatcher::new(
            Arc::new(service),
            DispatchConfig::default(),
            info,
            Instant::now(),
        );
        let output = run(&mut dispatcher, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        assert!(output.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
        assert!(!dispatcher.is_closed(), "the connection lives on");
    }
}
