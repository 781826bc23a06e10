//! The glue between an HTTP/1.1 connection and a `Service`: one exchange at a time, the request
//! body through a bounded channel, the response body pumped back, and the hand-offs after a
//! switch: to HTTP/2 (`Upgrade: h2c`), to a WebSocket, or to the application's own protocol
//! or tunnel ([`weft_service::upgrade`]).

use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body::Body as _;
use weft_core::h1::{
    BodyFraming, BodySize, ReadStatus, RequestHead, ServerConnection, ServerEvent,
};
use weft_core::h2::Settings;
use weft_service::body::{Body, BodySender, BoxError};
use weft_service::file::FileRegion;
use weft_service::upgrade::PendingUpgrade;
use weft_service::websocket::PendingSocket;

use super::app::{App, HandlerFuture};
use super::response::{BodySink, Pump, ResponseBody, SinkClosed};
use super::target;
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
    /// The method of the request being answered (CONNECT and HEAD shape the response).
    method: Option<Method>,
    /// The server's end of the [`OnUpgrade`](weft_service::upgrade::OnUpgrade) handed to the
    /// application with a request that asked to switch protocols or to tunnel.
    pending_upgrade: Option<PendingUpgrade>,
    /// The application took the connection after its `101` (or `2xx` to CONNECT).
    tunneled: Option<TunnelSwitch>,
    /// The driver sends file regions itself ([`Dispatcher::set_transmit_files`]).
    ///
    /// [`Dispatcher::set_transmit_files`]: super::Dispatcher::set_transmit_files
    transmit_files: bool,
    /// The rest of a file body the driver sends itself, once the head is written.
    file: Option<FileRegion>,
    /// The driver writes output with vectored writes: body `Bytes` go out as pieces of their
    /// own ([`Dispatcher::set_vectored_output`]).
    ///
    /// [`Dispatcher::set_vectored_output`]: super::Dispatcher::set_vectored_output
    vectored: bool,
}

/// An HTTP/1.1 connection the application took over (an upgrade or CONNECT that is not a
/// WebSocket).
pub(super) struct TunnelSwitch {
    /// Hands the connection to the application's `OnUpgrade`.
    pub(super) pending: PendingUpgrade,
    /// Bytes received after the request: the first bytes of the new protocol.
    pub(super) leftover: Bytes,
    /// Output not written yet: the `101` (or `2xx`) itself.
    pub(super) output: Bytes,
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
    pub(super) fn new(app: &App, now: Instant) -> Self {
        let mut conn = ServerConnection::new(app.config.limits.clone(), now);
        conn.set_error_pages(app.config.error_pages.clone());
        Http1 {
            conn,
            request_body: None,
            handler: None,
            response: None,
            upgrading: None,
            upgraded: None,
            websocket: None,
            switched: None,
            method: None,
            pending_upgrade: None,
            tunneled: None,
            transmit_files: false,
            file: None,
            vectored: false,
        }
    }

    /// See [`Dispatcher::set_transmit_files`](super::Dispatcher::set_transmit_files).
    pub(super) fn set_transmit_files(&mut self, on: bool) {
        self.transmit_files = on;
    }

    /// See [`Dispatcher::set_vectored_output`](super::Dispatcher::set_vectored_output).
    pub(super) fn set_vectored_output(&mut self, on: bool) {
        self.vectored = on;
    }

    /// See [`Dispatcher::poll_transmit_file`](super::Dispatcher::poll_transmit_file).
    pub(super) fn poll_transmit_file(&mut self, now: Instant) -> Option<FileRegion> {
        let region = self.file.as_ref()?;
        if self.conn.pending_output() > 0 {
            return None;
        }
        if !self.conn.is_sending_direct() {
            match self.conn.begin_direct_body(now) {
                Ok(owed) if owed == region.len() => {}
                // The connection gave up meanwhile (a send timeout, an abort), or disagrees
                // about the length: the response cannot be completed.
                result => {
                    tracing::debug!(?result, "file body not sent");
                    self.file = None;
                    self.conn.abort();
                    return None;
                }
            }
        }
        Some(region.clone())
    }

    /// See [`Dispatcher::file_pending`](super::Dispatcher::file_pending).
    pub(super) fn file_pending(&self) -> bool {
        self.file.is_some()
    }

    /// See [`Dispatcher::file_sent`](super::Dispatcher::file_sent).
    pub(super) fn file_sent(&mut self, now: Instant, sent: u64) {
        let Some(region) = &mut self.file else {
            return;
        };
        region.advance(sent);
        if region.is_empty() {
            self.file = None;
        }
        if let Err(error) = self.conn.sent_direct(now, sent) {
            tracing::warn!(%error, "file body miscounted; closing the connection");
            self.file = None;
            self.conn.abort();
        }
    }

    /// See [`Dispatcher::file_failed`](super::Dispatcher::file_failed).
    pub(super) fn file_failed(&mut self) {
        if self.file.take().is_some() {
            self.conn.abort();
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

    /// The switch to the application's own protocol, once our `101` (or `2xx`) is queued.
    pub(super) fn take_tunnel(&mut self, now: Instant) -> Option<TunnelSwitch> {
        let mut switch = self.tunneled.take()?;
        let mut output = bytes::BytesMut::new();
        while let Some(bytes) = self.conn.poll_transmit(now) {
            output.extend_from_slice(&bytes);
        }
        switch.output = output.freeze();
        Some(switch)
    }

    /// Whether the connection switched protocols and is to be handed over.
    fn switched_away(&self) -> bool {
        self.upgraded.is_some() || self.switched.is_some() || self.tunneled.is_some()
    }

    /// See [`Dispatcher::poll`](super::Dispatcher::poll).
    pub(super) fn poll(&mut self, app: &App, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        loop {
            let mut moved = self.deliver_events(app, cx);
            moved |= self.poll_handler(app, cx);
            moved |= self.pump_response(cx);
            if !moved || self.switched_away() {
                return progressed || moved;
            }
            progressed = true;
        }
    }

    /// Hands connection events to the application while its request body has room.
    fn deliver_events(&mut self, app: &App, cx: &mut Context<'_>) -> bool {
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
            if self.switched_away() {
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
                    self.file = None;
                    self.upgrading = None;
                    self.pending_upgrade = None;
                }
                _ => {}
            }
        }
    }

    fn start_request(&mut self, app: &App, head: RequestHead) {
        if let Some(settings) = upgrade::h2c_settings(&head).filter(|_| app.config.h2c) {
            // Answered once its (empty) body is read: a `101` needs the request complete.
            self.upgrading = Some(Box::new((head, settings)));
            return;
        }
        self.call(app, head);
    }

    fn call(&mut self, app: &App, head: RequestHead) {
        let (sender, body) = if head.body == BodyFraming::Empty {
            (None, Body::empty())
        } else {
            let length = match head.body {
                BodyFraming::Length(length) => Some(length),
                _ => None,
            };
            let (sender, body) = Body::channel_with_length(app.config.request_body_buffer, length);
            (Some(sender), body)
        };
        self.request_body = sender;
        self.method = Some(head.method.clone());
        let wants_upgrade = head.wants_upgrade;
        let form = head.target_form;
        let mut request = head.into_request(body);
        target::shape_h1(&mut request, form, app.info.tls);
        // A handle for the application to take the connection, should it accept.
        self.pending_upgrade = wants_upgrade.then(|| {
            let (pending, on_upgrade) = PendingUpgrade::new();
            request.extensions_mut().insert(on_upgrade);
            pending
        });
        self.handler = Some(app.call(request));
    }

    /// Answers an `h2c` upgrade request, now complete, with `101`; the connection reports
    /// [`ServerEvent::Upgraded`] next.
    fn switch_to_h2c(&mut self, app: &App) {
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
        if let Some(pending) = self.pending_upgrade.take() {
            // Only a claimed handle gets this far (`start_response`).
            self.tunneled = Some(TunnelSwitch {
                pending,
                leftover,
                output: Bytes::new(),
            });
            return;
        }
        let Some(upgrading) = self.upgrading.take() else {
            // Not reached: `start_response` lets no other switch through. Nothing could speak
            // the protocol the client was told we switched to.
            tracing::warn!("connection switched with nothing to hand it to; closing");
            self.conn.abort();
            return;
        };
        let (head, settings) = *upgrading;
        let form = head.target_form;
        let mut request = head.into_request(Body::empty());
        target::shape_h1(&mut request, form, false);
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
    fn poll_handler(&mut self, app: &App, cx: &mut Context<'_>) -> bool {
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
        let status = response.status();
        let method = self.method.take();
        let connect = method.as_ref() == Some(&Method::CONNECT);
        let switching =
            status == StatusCode::SWITCHING_PROTOCOLS || (connect && status.is_success());
        if switching {
            self.websocket = PendingSocket::take_from(&mut response);
            let claimed = self
                .pending_upgrade
                .as_ref()
                .is_some_and(PendingUpgrade::is_claimed);
            if self.websocket.is_some() {
                self.pending_upgrade = None;
            } else if !claimed {
                // Nothing would speak the protocol the client would be told we switched to.
                tracing::error!(
                    %status,
                    connect,
                    "handler answered a switch without accepting a WebSocket or taking \
                     OnUpgrade; answering 500"
                );
                self.answer_500();
                return;
            }
        } else {
            // Resolves the application's `OnUpgrade`, if any, to `NotUpgraded`.
            self.pending_upgrade = None;
            if status.is_informational() {
                // An interim status cannot end an exchange: the client would wait forever.
                tracing::error!(%status, "handler answered 1xx as its final response; answering 500");
                self.answer_500();
                return;
            }
        }
        // RFC 9110 §6.4.1: no content in these, whatever the handler gave.
        let bodiless = status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || method == Some(Method::HEAD);
        let (parts, mut body) = response.into_parts();
        let size = body
            .size_hint()
            .exact()
            .map_or(BodySize::Unknown, BodySize::Known);
        // A file body whose bytes the driver moves itself: Content-Length framing (a known
        // size, not bodiless, not a switch) is all it needs.
        let file = if self.transmit_files && !bodiless && !switching && body.is_file() {
            body.take_file_region()
        } else {
            None
        };
        let mut response = ResponseBody::new(body);
        if !bodiless && !switching && file.is_none() {
            // The body is polled once before the head is written: a body that streams the
            // request (an echo, a proxy) asks for it now, and a client waiting on
            // `Expect: 100-continue` must get its `100 Continue` before our final status, or
            // it never sends the body.
            response.take_frame(cx);
        }
        if self
            .request_body
            .as_ref()
            .is_some_and(BodySender::is_wanted)
        {
            self.conn.request_body();
        }
        self.conn.set_date(http_date_now());
        match self.conn.send_response(parts.status, &parts.headers, size) {
            // The connection switched protocols: a `101` (or `2xx` to CONNECT) has no body.
            Ok(()) if switching => {}
            Ok(()) if bodiless => {
                // The body is dropped unpolled: an endless one must not hold the connection.
                drop(response);
                if let Err(error) = self.conn.finish() {
                    tracing::warn!(%error, "bodiless response not finished; closing the connection");
                    self.conn.abort();
                }
            }
            Ok(()) if file.is_some() => self.file = file,
            Ok(()) => self.response = Some(response),
            Err(error) if switching => {
                // A switch the connection refused (the request body not read yet, say): the
                // client still gets an answer.
                tracing::error!(%error, %status, "switch refused; answering 500");
                self.websocket = None;
                self.pending_upgrade = None;
                self.answer_500();
            }
            Err(error) => tracing::debug!(%error, "response dropped"),
        }
    }

    /// Answers the current request `500` with an empty body (closing the connection if even
    /// that cannot be sent).
    fn answer_500(&mut self) {
        self.conn.set_date(http_date_now());
        let sent = self
            .conn
            .send_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &HeaderMap::new(),
                BodySize::EMPTY,
            )
            .and_then(|()| self.conn.finish());
        if let Err(error) = sent {
            tracing::debug!(%error, "500 not sent; closing the connection");
            self.conn.abort();
        }
    }

    /// Copies the response body into the connection until the body or the output buffer
    /// has nothing more for now.
    fn pump_response(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(response) = &mut self.response else {
            return false;
        };
        let pumped = if self.vectored {
            response.pump(&mut Pieces(&mut self.conn), cx)
        } else {
            response.pump(&mut self.conn, cx)
        };
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
            finish_body(self);
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

/// The connection as a sink that queues large body `Bytes` as output pieces of their own,
/// without a copy ([`ServerConnection::send_data_bytes`]), for a driver writing vectored.
struct Pieces<'c>(&'c mut ServerConnection);

impl BodySink for Pieces<'_> {
    fn send_data(&mut self, data: &[u8], last: bool) -> Result<usize, SinkClosed> {
        BodySink::send_data(self.0, data, last)
    }

    fn send_bytes(&mut self, data: &Bytes, last: bool) -> Result<usize, SinkClosed> {
        let taken = if data.is_empty() {
            0
        } else {
            self.0.send_data_bytes(data).map_err(|error| {
                tracing::debug!(%error, "response body not sent");
                SinkClosed
            })?
        };
        if last && taken == data.len() {
            finish_body(self.0);
        }
        Ok(taken)
    }

    fn send_trailers(&mut self, trailers: &HeaderMap) {
        BodySink::send_trailers(self.0, trailers);
    }

    fn fail(&mut self, error: BoxError) {
        BodySink::fail(self.0, error);
    }
}

/// Ends a response body whose last bytes were taken.
fn finish_body(conn: &mut ServerConnection) {
    if let Err(error) = conn.finish() {
        // The client cannot find the end of the response: only closing tells it.
        tracing::warn!(%error, "response body ended early; closing the connection");
        conn.abort();
    }
}
