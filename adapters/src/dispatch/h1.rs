//! The glue between an HTTP/1.1 connection and a `Service`: one exchange at a time, the request
//! body through a bounded channel, the response body pumped back, and the `Upgrade: h2c`
//! hand-off to HTTP/2.

use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body::Body as _;
use weft_core::h1::{
    BodyFraming, BodySize, ReadStatus, RequestHead, ServerConnection, ServerEvent,
};
use weft_core::h2::Settings;
use weft_service::body::{Body, BodySender, BoxError};
use weft_service::service::Service;
use weft_service::websocket::PendingSocket;

use super::app::{App, HandlerFuture};
use super::response::{BodySink, Pump, ResponseBody, SinkClosed};
use super::upgrade::{self, H2cUpgrade};
use crate::date::http_date_now;

/// An HTTP/1.1 connection serving a `Service`.
pub(super) struct Http1 {
    conn: ServerConnection,
    /// Feeds the body of the request being answered.
    request_body: Option<BodySender>,
    handler: Option<HandlerFuture>,
    response: Option<ResponseBody>,
    /// An `h2c` upgrade request, waiting for the end of its (empty) body to be answered `101`
    /// (boxed, like the next field: rare, and large next to the rest).
    upgrading: Option<Box<(RequestHead, Settings)>>,
    /// The upgrade done: the connection goes on in HTTP/2.
    upgraded: Option<Box<H2cUpgrade>>,
    /// The application accepted a WebSocket: its `101` is sent, the switch comes next.
    websocket: Option<PendingSocket>,
    /// The WebSocket switch done: the connection goes on as that socket.
    switched: Option<WebSocketSwitch>,
}

/// An HTTP/1.1 connection that became a WebSocket.
pub(super) struct WebSocketSwitch {
    /// The socket the application accepted.
    pub(super) socket: PendingSocket,
    /// Bytes received after the request: the first WebSocket frames.
    pub(super) leftover: Bytes,
    /// Output not written yet: the `101` itself.
    pub(super) output: Bytes,
}

impl Http1 {
    /// A connection accepted at `now`.
    pub(super) fn new<S>(app: &App<S>, now: Instant) -> Self {
        Http1 {
            conn: ServerConnection::new(app.config.limits.clone(), now),
            request_body: None,
            handler: None,
            response: None,
            upgrading: None,
            upgraded: None,
            websocket: None,
            switched: None,
        }
    }

    /// See [`Dispatcher::wants_read`](super::Dispatcher::wants_read).
    pub(super) fn wants_read(&self) -> bool {
        self.conn.read_status() == ReadStatus::NeedData
            && self
                .request_body
                .as_ref()
                .is_none_or(BodySender::has_capacity)
    }

    /// See [`Dispatcher::receive_capacity`](super::Dispatcher::receive_capacity).
    pub(super) fn receive_capacity(&self) -> usize {
        self.conn.receive_capacity()
    }

    /// See [`Dispatcher::receive`](super::Dispatcher::receive).
    pub(super) fn receive(&mut self, now: Instant, data: &[u8]) -> usize {
        self.conn.receive(now, data)
    }

    /// See [`Dispatcher::receive_eof`](super::Dispatcher::receive_eof).
    pub(super) fn receive_eof(&mut self) {
        self.conn.receive_eof();
    }

    /// See [`Dispatcher::poll_transmit`](super::Dispatcher::poll_transmit).
    pub(super) fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.conn.poll_transmit(now)
    }

    /// See [`Dispatcher::poll_timeout`](super::Dispatcher::poll_timeout).
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// See [`Dispatcher::handle_timeout`](super::Dispatcher::handle_timeout).
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
    }

    /// See [`Dispatcher::shutdown`](super::Dispatcher::shutdown).
    pub(super) fn shutdown(&mut self) {
        self.conn.shutdown();
    }

    /// See [`Dispatcher::send_timed_out`](super::Dispatcher::send_timed_out).
    pub(super) fn send_timed_out(&self) -> bool {
        self.conn.send_timed_out()
    }

    /// See [`Dispatcher::is_closed`](super::Dispatcher::is_closed).
    pub(super) fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// The `h2c` upgrade, once our `101` is queued: the caller goes on in HTTP/2.
    pub(super) fn take_upgrade(&mut self, now: Instant) -> Option<Box<H2cUpgrade>> {
        let mut upgrade = self.upgraded.take()?;
        let mut output = bytes::BytesMut::new();
        while let Some(bytes) = self.conn.poll_transmit(now) {
            output.extend_from_slice(&bytes);
        }
        upgrade.output = output.freeze();
        Some(upgrade)
    }

    /// The WebSocket switch, once our `101` is queued: the caller goes on with the socket.
    pub(super) fn take_websocket(&mut self, now: Instant) -> Option<WebSocketSwitch> {
        let mut switch = self.switched.take()?;
        let mut output = bytes::BytesMut::new();
        while let Some(bytes) = self.conn.poll_transmit(now) {
            output.extend_from_slice(&bytes);
        }
        switch.output = output.freeze();
        Some(switch)
    }

    /// See [`Dispatcher::poll`](super::Dispatcher::poll).
    pub(super) fn poll<S: Service>(&mut self, app: &App<S>, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        loop {
            let mut moved = self.deliver_events(app, cx);
            moved |= self.poll_handler(app, cx);
            moved |= self.pump_response(cx);
            if !moved || self.upgraded.is_some() || self.switched.is_some() {
                return progressed || moved;
            }
            progressed = true;
        }
    }

    /// Hands connection events to the application while its request body has room.
    fn deliver_events<S: Service>(&mut self, app: &App<S>, cx: &mut Context<'_>) -> bool {
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
            if self.upgraded.is_some() || self.switched.is_some() {
                return moved;
            }
            let Some(event) = self.conn.poll_event() else {
                return moved;
            };
            moved = true;
            match event {
                ServerEvent::Request(head) => self.start_request(app, *head),
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
                    self.switch_to_h2c(app);
                }
                ServerEvent::Upgraded { leftover } => self.upgraded_to(leftover),
                ServerEvent::Error(error) => {
                    tracing::debug!(peer = ?app.info.peer, %error, "request refused");
                    if let Some(sender) = self.request_body.take() {
                        sender.abort();
                    }
                    // The connection is closing: the answer could no longer be sent.
                    self.handler = None;
                    self.response = None;
                    self.upgrading = None;
                }
                _ => {}
            }
        }
    }

    fn start_request<S: Service>(&mut self, app: &App<S>, head: RequestHead) {
        if let Some(settings) = upgrade::h2c_settings(&head) {
            // Answered once its (empty) body is read: a `101` needs the request complete.
            self.upgrading = Some(Box::new((head, settings)));
            return;
        }
        self.call(app, head);
    }

    fn call<S: Service>(&mut self, app: &App<S>, head: RequestHead) {
        let (sender, body) = if head.body == BodyFraming::Empty {
            (None, Body::empty())
        } else {
            let (sender, body) = Body::channel(app.config.request_body_buffer);
            (Some(sender), body)
        };
        self.request_body = sender;
        self.handler = Some(app.call(head.into_request(body)));
    }

    /// Answers an `h2c` upgrade request, now complete, with `101`; the connection reports
    /// [`ServerEvent::Upgraded`] next.
    fn switch_to_h2c<S: Service>(&mut self, app: &App<S>) {
        let Some(upgrading) = self.upgrading.take() else {
            return;
        };
        match self.conn.send_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &upgrade::switching_headers(),
            BodySize::EMPTY,
        ) {
            Ok(()) => self.upgrading = Some(upgrading),
            Err(error) => {
                // The connection refused to switch: serve the request over HTTP/1.1.
                tracing::debug!(%error, "h2c upgrade refused; answering over HTTP/1.1");
                self.call(app, upgrading.0);
            }
        }
    }

    /// The connection switched after our `101`.
    fn upgraded_to(&mut self, leftover: Bytes) {
        if let Some(socket) = self.websocket.take() {
            self.switched = Some(WebSocketSwitch {
                socket,
                leftover,
                output: Bytes::new(),
            });
            return;
        }
        let Some(upgrading) = self.upgrading.take() else {
            // A `101` that neither an accepted WebSocket nor `h2c` follows: nothing can speak
            // the protocol the client was told we switched to.
            tracing::warn!("handler answered 101 without accepting a WebSocket; closing");
            self.conn.abort();
            return;
        };
        let (head, settings) = *upgrading;
        let mut request = head.into_request(Body::empty());
        upgrade::strip_upgrade_fields(request.headers_mut());
        // The exchange completes over HTTP/2, and the application answers in HTTP/2 terms.
        *request.version_mut() = http::Version::HTTP_2;
        self.upgraded = Some(Box::new(H2cUpgrade {
            request,
            settings,
            leftover,
            output: Bytes::new(),
        }));
    }

    /// Polls the application's future; a panic becomes a `500`.
    fn poll_handler<S: Service>(&mut self, app: &App<S>, cx: &mut Context<'_>) -> bool {
        let Some(handler) = &mut self.handler else {
            return false;
        };
        let Poll::Ready(response) = app.poll_handler(handler, cx) else {
            return false;
        };
        self.handler = None;
        self.start_response(response, cx);
        true
    }

    fn start_response(&mut self, mut response: Response<Body>, cx: &mut Context<'_>) {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            self.websocket = PendingSocket::take_from(&mut response);
        }
        let (parts, body) = response.into_parts();
        let size = body
            .size_hint()
            .exact()
            .map_or(BodySize::Unknown, BodySize::Known);
        let mut response = ResponseBody::new(body);
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
            // The connection switched protocols: a `101` has no body.
            Ok(()) if parts.status == StatusCode::SWITCHING_PROTOCOLS => {}
            Ok(()) => self.response = Some(response),
            Err(error) if parts.status.is_informational() => {
                // A `101` to a request that asked for no upgrade: the client still gets an
                // answer.
                tracing::error!(%error, status = %parts.status, "handler answered 1xx; answering 500");
                self.websocket = None;
                let _ = self.conn.send_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &HeaderMap::new(),
                    BodySize::EMPTY,
                );
            }
            Err(error) => tracing::debug!(%error, "response dropped"),
        }
    }

    /// Copies the response body into the connection until the body or the output buffer
    /// has nothing more for now.
    fn pump_response(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(response) = &mut self.response else {
            return false;
        };
        let pumped = response.pump(&mut self.conn, cx);
        if pumped.state == Pump::Done {
            self.response = None;
        }
        pumped.moved
    }
}

impl BodySink for ServerConnection {
    fn send_data(&mut self, data: &[u8], last: bool) -> Result<usize, SinkClosed> {
        let taken = if data.is_empty() {
            0
        } else {
            ServerConnection::send_data(self, data).map_err(|error| {
                tracing::debug!(%error, "response body not sent");
                SinkClosed
            })?
        };
        if last && taken == data.len() {
            if let Err(error) = self.finish() {
                tracing::warn!(%error, "response body ended early; closing the connection");
            }
        }
        Ok(taken)
    }

    fn send_trailers(&mut self, trailers: &HeaderMap) {
        let _ = ServerConnection::send_trailers(self, trailers);
    }

    fn fail(&mut self, error: BoxError) {
        // Finishing would make a truncated body look complete: cut it short.
        tracing::warn!(%error, "response body failed; closing the connection");
        self.abort();
    }
}
