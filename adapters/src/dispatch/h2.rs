//! The glue between an HTTP/2 connection and a `Service`: one handler per stream, request
//! bodies whose reading reopens the flow-control windows, response bodies pumped as the
//! windows allow, and each stream's work dropped the moment the stream is reset.
//!
//! Every stream runs under a waker of its own ([`ready`](super::ready)): a poll of the
//! connection drives the streams that were woken, the streams just opened, and the streams
//! whose response waits for window, never all of them.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body::Body as _;
use weft_core::h2::{
    ErrorCode, RequestHead, SendError, ServerConnection, ServerEvent, StreamId, StreamIdHasher,
};
use weft_service::body::{Body, BoxError};
use weft_service::upgrade::PendingUpgrade;
use weft_service::websocket::PendingSocket;

use super::app::{App, HandlerFuture};
use super::flow::RequestBody;
use super::ready::{ReadyStreams, StreamWaker};
use super::response::{BodySink, Pump, ResponseBody, SinkClosed};
use super::upgrade::H2cUpgrade;
use super::websocket::{WsSession, socket_limits};
use crate::date::http_date_now;

#[cfg(test)]
#[path = "h2_tests.rs"]
mod tests;

/// Rounds of one [`Http2::poll`] before it yields to let the driver write: keeps a connection
/// with endless work from starving the others on its thread.
const ROUNDS_PER_POLL: usize = 64;

/// An HTTP/2 connection serving a `Service`.
pub(super) struct Http2 {
    conn: ServerConnection,
    streams: HashMap<StreamId, StreamTask, BuildHasherDefault<StreamIdHasher>>,
    ready: Arc<ReadyStreams>,
    /// Streams to drive in this round: woken ones, and ones that just opened or ended input.
    to_drive: Vec<StreamId>,
    /// Streams whose response has bytes the connection did not take (window or output full).
    blocked: Vec<StreamId>,
    /// Input received before this connection existed (bytes read while the protocol was being
    /// decided, or after an `h2c` upgrade request), not taken by it yet.
    backlog: Bytes,
    /// The latest time the driver told.
    now: Instant,
    /// Wakers of ended streams that nothing else holds, for streams to come: a stream then
    /// costs no allocation for its waker.
    spare_wakers: Vec<Arc<StreamWaker>>,
    /// The connection was told the date during this [`Http2::poll`]: the responses a poll
    /// starts share one reading of the clock, as they are started within it.
    date_told: bool,
    /// Streams carrying a WebSocket (RFC 8441): their timers join the connection's.
    sockets: usize,
}

/// The most wakers [`Http2::spare_wakers`] keeps: about as many as streams a busy client runs
/// at once.
const MAX_SPARE_WAKERS: usize = 128;

/// The application's work on one stream.
struct StreamTask {
    /// Wakes this stream (and the connection).
    waker: Waker,
    wake_state: Arc<StreamWaker>,
    handler: Option<HandlerFuture>,
    request_body: Option<RequestBody>,
    response: Option<ResponseBody>,
    /// A HEAD request: the response goes without its body.
    head_request: bool,
    /// The client waits for `100 Continue` before it sends the body (RFC 9110 §10.1.1),
    /// which is sent once the application asks for the body.
    expects_continue: bool,
    /// In [`Http2::blocked`] already.
    blocked: bool,
    /// An extended CONNECT (RFC 8441): a `200` may turn the stream into a WebSocket.
    extended_connect: bool,
    /// The WebSocket this stream carries, once the application accepted it.
    socket: Option<StreamSocket>,
    /// DATA of an extended CONNECT received before the application answered: the socket's
    /// first bytes if it accepts (bounded by the stream's window, which they hold closed).
    early: BytesMut,
    /// The client ended the stream before the application answered its extended CONNECT.
    early_eof: bool,
    /// A plain CONNECT: the tunnel the application may take ([`OnUpgrade`]), and the stream's
    /// DATA, kept from the request for the tunnel to read.
    tunnel: Option<(PendingUpgrade, Body)>,
}

/// A WebSocket carried by one stream: its DATA frames are the socket's bytes both ways.
struct StreamSocket {
    session: Box<WsSession>,
    /// Socket output the stream's window did not take yet.
    unsent: Bytes,
}

impl Http2 {
    /// A connection that starts with the client preface, `input` being the bytes of it (and
    /// beyond) already received.
    pub(super) fn new(app: &App, now: Instant, input: Bytes) -> Self {
        let conn = ServerConnection::new(app.config.limits.clone(), now);
        Http2::with_connection(conn, now, input)
    }

    /// The connection after an `h2c` upgrade: its request is answered on stream 1.
    pub(super) fn upgraded(app: &App, now: Instant, upgrade: Box<H2cUpgrade>) -> Self {
        let upgrade = *upgrade;
        let conn = ServerConnection::upgraded(app.config.limits.clone(), now, &upgrade.settings);
        let mut http2 = Http2::with_connection(conn, now, upgrade.leftover);
        let mut task = http2.new_task(1, upgrade.request.method() == Method::HEAD);
        task.handler = Some(app.call(upgrade.request));
        http2.insert_stream(1, task);
        http2
    }

    fn with_connection(conn: ServerConnection, now: Instant, input: Bytes) -> Self {
        let mut http2 = Http2 {
            conn,
            streams: HashMap::default(),
            ready: Arc::new(ReadyStreams::default()),
            to_drive: Vec::new(),
            blocked: Vec::new(),
            backlog: input,
            now,
            spare_wakers: Vec::new(),
            date_told: false,
            sockets: 0,
        };
        http2.feed_backlog();
        http2
    }

    /// See [`Dispatcher::wants_read`](super::Dispatcher::wants_read).
    pub(super) fn wants_read(&self) -> bool {
        self.backlog.is_empty() && self.conn.wants_read()
    }

    /// See [`Dispatcher::receive_capacity`](super::Dispatcher::receive_capacity).
    pub(super) fn receive_capacity(&self) -> usize {
        if self.backlog.is_empty() {
            self.conn.receive_capacity()
        } else {
            0
        }
    }

    /// See [`Dispatcher::receive`](super::Dispatcher::receive).
    pub(super) fn receive(&mut self, now: Instant, data: &[u8]) -> usize {
        self.now = now;
        self.feed_backlog();
        if !self.backlog.is_empty() {
            return 0;
        }
        self.conn.receive(now, data)
    }

    /// See [`Dispatcher::receive_eof`](super::Dispatcher::receive_eof).
    pub(super) fn receive_eof(&mut self) {
        self.conn.receive_eof();
    }

    /// See [`Dispatcher::poll_transmit`](super::Dispatcher::poll_transmit).
    pub(super) fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.now = now;
        self.conn.poll_transmit(now)
    }

    /// See [`Dispatcher::poll_timeout`](super::Dispatcher::poll_timeout).
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let connection = self.conn.poll_timeout();
        if self.sockets == 0 {
            return connection;
        }
        self.streams
            .values()
            .filter_map(|task| task.socket.as_ref()?.session.poll_timeout())
            .chain(connection)
            .min()
    }

    /// See [`Dispatcher::handle_timeout`](super::Dispatcher::handle_timeout).
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.conn.handle_timeout(now);
        if self.sockets == 0 {
            return;
        }
        for (&stream, task) in &mut self.streams {
            let Some(socket) = &mut task.socket else {
                continue;
            };
            if socket.session.poll_timeout().is_some_and(|due| due <= now) {
                socket.session.handle_timeout(now);
                self.to_drive.push(stream);
            }
        }
    }

    /// See [`Dispatcher::shutdown`](super::Dispatcher::shutdown): GOAWAY, and the streams
    /// already open are served to their end (RFC 9113 §6.8); WebSockets close with `1001`.
    pub(super) fn shutdown(&mut self) {
        self.conn.shutdown();
        for (&stream, task) in &mut self.streams {
            if let Some(socket) = &mut task.socket {
                socket.session.shutdown();
                self.to_drive.push(stream);
            }
        }
    }

    /// See [`Dispatcher::is_closed`](super::Dispatcher::is_closed).
    pub(super) fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// See [`Dispatcher::send_timed_out`](super::Dispatcher::send_timed_out).
    pub(super) fn send_timed_out(&self) -> bool {
        self.conn.send_timed_out()
    }

    /// See [`Dispatcher::poll`](super::Dispatcher::poll).
    pub(super) fn poll(&mut self, app: &App, cx: &mut Context<'_>) -> bool {
        self.ready.register(cx);
        self.date_told = false;
        let mut progressed = false;
        let mut rounds = 0;
        loop {
            let mut moved = self.feed_backlog();
            moved |= self.deliver_events(app);
            moved |= self.drive_streams(app);
            moved |= self.retry_blocked(app);
            progressed |= moved;
            rounds += 1;
            if !moved {
                break;
            }
            if rounds == ROUNDS_PER_POLL {
                // Work is left: come back once the driver has written what is queued.
                cx.waker().wake_by_ref();
                break;
            }
        }
        if self.streams.is_empty() {
            self.ready.unregister();
        }
        progressed
    }

    /// Offers the backlog to the connection; true when it took any.
    fn feed_backlog(&mut self) -> bool {
        if self.backlog.is_empty() {
            return false;
        }
        let taken = self.conn.receive(self.now, &self.backlog);
        let _ = self.backlog.split_to(taken.min(self.backlog.len()));
        taken > 0
    }

    /// Hands every connection event to the streams.
    fn deliver_events(&mut self, app: &App) -> bool {
        let mut moved = false;
        while let Some(event) = self.conn.poll_event() {
            moved = true;
            match event {
                ServerEvent::Request {
                    stream,
                    head,
                    end_stream,
                } => self.start_stream(app, stream, *head, end_stream),
                ServerEvent::Data {
                    stream,
                    data,
                    end_stream,
                } => self.on_data(stream, data, end_stream),
                ServerEvent::Trailers { stream, trailers } => self.on_trailers(stream, trailers),
                ServerEvent::Reset {
                    stream,
                    code,
                    by_peer,
                } => {
                    tracing::debug!(stream, %code, by_peer, "stream reset; its work stops");
                    self.end_stream(stream);
                }
                ServerEvent::GoAway { code } => {
                    tracing::debug!(peer = ?app.info.peer, %code, "client sent GOAWAY");
                }
                ServerEvent::Error(error) => {
                    tracing::debug!(peer = ?app.info.peer, %error, "HTTP/2 connection failed");
                    // Every stream is over: their work stops.
                    self.streams.clear();
                    self.blocked.clear();
                }
                _ => {}
            }
        }
        moved
    }

    /// A new request: its handler starts at once.
    fn start_stream(&mut self, app: &App, stream: StreamId, head: RequestHead, end_stream: bool) {
        let mut task = self.new_task(stream, head.method == Method::HEAD);
        task.extended_connect = head.protocol.is_some();
        task.expects_continue = !end_stream
            && head
                .headers
                .get(header::EXPECT)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let body = if end_stream || task.extended_connect {
            // An extended CONNECT has no body: its DATA is the tunnel's (`early` until the
            // application answers).
            Body::empty()
        } else {
            let window = app.config.limits.h2.initial_window_size;
            let window = usize::try_from(window).unwrap_or(usize::MAX);
            let (request_body, body) =
                RequestBody::channel(window, head.content_length, task.waker.clone());
            task.request_body = Some(request_body);
            body
        };
        let plain_connect = head.method == Method::CONNECT && !task.extended_connect;
        let mut request = head.into_request(body);
        if plain_connect {
            // The stream's bytes are the tunnel's, read through the `Upgraded` connection.
            let incoming = std::mem::take(request.body_mut());
            let (pending, on_upgrade) = PendingUpgrade::new();
            request.extensions_mut().insert(on_upgrade);
            task.tunnel = Some((pending, incoming));
        }
        super::target::shape_h2(&mut request, app.info.tls);
        task.handler = Some(app.call(request));
        self.insert_stream(stream, task);
    }

    /// A stream with no work yet: the caller sets its handler and request body.
    fn new_task(&mut self, stream: StreamId, head_request: bool) -> StreamTask {
        let spare = self.spare_wakers.pop();
        let wake_state = spare
            .and_then(|mut spare| {
                Arc::get_mut(&mut spare)?.reuse_for(stream);
                Some(spare)
            })
            .unwrap_or_else(|| StreamWaker::new(stream, Arc::clone(&self.ready)));
        StreamTask {
            waker: Waker::from(Arc::clone(&wake_state)),
            wake_state,
            handler: None,
            request_body: None,
            response: None,
            head_request,
            expects_continue: false,
            blocked: false,
            extended_connect: false,
            socket: None,
            early: BytesMut::new(),
            early_eof: false,
            tunnel: None,
        }
    }

    fn insert_stream(&mut self, stream: StreamId, task: StreamTask) {
        self.streams.insert(stream, task);
        self.to_drive.push(stream);
    }

    fn on_data(&mut self, stream: StreamId, data: Bytes, end_stream: bool) {
        if let Some(socket) = self
            .streams
            .get_mut(&stream)
            .and_then(|task| task.socket.as_mut())
        {
            socket.session.receive(self.now, &data);
            if end_stream {
                // The client's side of the stream ended: for the socket, its TCP EOF.
                socket.session.receive_eof(self.now);
            }
            self.to_drive.push(stream);
            return;
        }
        if let Some(task) = self
            .streams
            .get_mut(&stream)
            .filter(|task| task.extended_connect && task.handler.is_some())
        {
            task.early.extend_from_slice(&data);
            task.early_eof |= end_stream;
            return;
        }
        let Some(body) = self
            .streams
            .get_mut(&stream)
            .and_then(|task| task.request_body.as_mut())
        else {
            // Nobody reads this stream any more: its bytes reopen the window at once.
            self.conn.release_capacity(stream, data.len());
            return;
        };
        body.send_data(data);
        if body.is_abandoned() {
            // The application dropped the body while its handler still runs: nobody will
            // read these bytes, so they must not hold the window closed until it finishes.
            let unread = body.take_releasable();
            self.conn.release_capacity(stream, unread);
        }
        if end_stream {
            body.finish();
            self.to_drive.push(stream);
        }
    }

    fn on_trailers(&mut self, stream: StreamId, trailers: HeaderMap) {
        if let Some(body) = self
            .streams
            .get_mut(&stream)
            .and_then(|task| task.request_body.as_mut())
        {
            body.send_trailers(trailers);
            self.to_drive.push(stream);
        }
    }

    /// Drives the streams woken since the last look, and those queued in `to_drive`.
    fn drive_streams(&mut self, app: &App) -> bool {
        let mut streams = std::mem::take(&mut self.to_drive);
        self.ready.drain_into(&mut streams);
        let mut moved = false;
        for &stream in &streams {
            moved |= self.drive_stream(app, stream);
        }
        streams.clear();
        if self.to_drive.is_empty() {
            // Keeps the allocation for the next round.
            self.to_drive = streams;
        }
        moved
    }

    /// Offers the blocked responses' bytes again, to the streams that have window now.
    fn retry_blocked(&mut self, app: &App) -> bool {
        let blocked = std::mem::take(&mut self.blocked);
        let mut moved = false;
        for stream in blocked {
            if self.conn.send_capacity(stream) == 0 && self.streams.contains_key(&stream) {
                self.blocked.push(stream);
                continue;
            }
            if let Some(task) = self.streams.get_mut(&stream) {
                task.blocked = false;
            }
            moved |= self.drive_stream(app, stream);
        }
        moved
    }

    /// Moves one stream forward: gives back the window its reader freed, polls its handler,
    /// pumps its response; ends it once all its work is done.
    fn drive_stream(&mut self, app: &App, stream: StreamId) -> bool {
        let Some(task) = self.streams.get_mut(&stream) else {
            return false;
        };
        task.wake_state.clear();
        let waker = task.waker.clone();
        let mut cx = Context::from_waker(&waker);
        let mut moved = false;
        if let Some(body) = &mut task.request_body {
            let read = body.take_releasable();
            if read > 0 {
                self.conn.release_capacity(stream, read);
                moved = true;
            }
        }
        moved |=
            task.expects_continue && send_continue_if_wanted(&mut self.conn, stream, task, &mut cx);
        if let Some(handler) = &mut task.handler {
            if let Poll::Ready(mut response) = app.poll_handler(handler, &mut cx) {
                task.handler = None;
                moved = true;
                if !self.date_told {
                    self.conn.set_date(http_date_now());
                    self.date_told = true;
                }
                let accepted = task
                    .extended_connect
                    .then(|| PendingSocket::take_from(&mut response))
                    .flatten();
                match accepted {
                    Some(pending) => {
                        let opened = start_socket(
                            &mut self.conn,
                            stream,
                            task,
                            response,
                            pending,
                            app,
                            self.now,
                        );
                        self.sockets += usize::from(opened);
                    }
                    None => {
                        release_early(&mut self.conn, stream, task);
                        if let Some((pending, incoming)) = task.tunnel.take() {
                            let capacity = app.config.request_body_buffer;
                            response = open_tunnel(stream, response, pending, incoming, capacity);
                        }
                        start_response(&mut self.conn, stream, task, response, &mut cx);
                    }
                }
            }
        }
        if let Some(socket) = &mut task.socket {
            let driven = drive_socket(&mut self.conn, stream, socket, self.now, &mut cx);
            moved |= driven.moved;
            if driven.ended {
                task.socket = None;
                self.sockets -= 1;
            } else if driven.blocked && !task.blocked {
                task.blocked = true;
                self.blocked.push(stream);
            }
        }
        if let Some(response) = &mut task.response {
            let mut sink = StreamSink {
                conn: &mut self.conn,
                stream,
            };
            let pumped = response.pump(&mut sink, &mut cx);
            moved |= pumped.moved;
            match pumped.state {
                Pump::Done => task.response = None,
                Pump::Blocked if !task.blocked => {
                    task.blocked = true;
                    self.blocked.push(stream);
                }
                Pump::Blocked | Pump::Waiting => {}
            }
        }
        if !task.is_finished() {
            return moved;
        }
        if task.request_body.as_ref().is_some_and(RequestBody::is_open) {
            // The response is complete and nobody reads the rest of the request: the
            // client may stop sending it (RFC 9113 §8.1).
            self.conn.reset(stream, ErrorCode::NoError);
        }
        // Before the stream ends, so that its waker may be kept for the next stream.
        drop(waker);
        self.end_stream(stream);
        true
    }

    /// Drops a stream's work; the window its unread request body held is given back.
    fn end_stream(&mut self, stream: StreamId) {
        let Some(mut task) = self.streams.remove(&stream) else {
            return;
        };
        if let Some(body) = &mut task.request_body {
            let unread = body.take_outstanding();
            if unread > 0 {
                self.conn.release_capacity(stream, unread);
            }
        }
        if task.socket.take().is_some() {
            self.sockets -= 1;
        }
        release_early(&mut self.conn, stream, &mut task);
        let StreamTask {
            waker,
            mut wake_state,
            ..
        } = task;
        drop(waker);
        // Kept only when no clone of its waker survives the stream's work: a stale clone
        // must never wake the stream that reuses it.
        if self.spare_wakers.len() < MAX_SPARE_WAKERS && Arc::get_mut(&mut wake_state).is_some() {
            self.spare_wakers.push(wake_state);
        }
    }
}

impl StreamTask {
    /// Whether nothing is left to do: the response is sent, and the request body is complete
    /// or nobody reads it.
    fn is_finished(&self) -> bool {
        self.handler.is_none()
            && self.response.is_none()
            && self.socket.is_none()
            && self
                .request_body
                .as_ref()
                .is_none_or(|body| !body.is_open() || body.is_abandoned())
    }
}

/// The answer to a plain CONNECT: a `2xx` with the [`OnUpgrade`] taken turns the stream into
/// a tunnel (the response body is what the application writes, the request's DATA what it
/// reads); a `2xx` without it has nothing to speak through the tunnel and becomes a `500`;
/// any other answer is sent as it is, and the stream's DATA dropped.
fn open_tunnel(
    stream: StreamId,
    response: Response<Body>,
    pending: PendingUpgrade,
    incoming: Body,
    capacity: usize,
) -> Response<Body> {
    if !response.status().is_success() {
        return response;
    }
    if pending.is_claimed() {
        let outgoing = pending.complete_stream(incoming, capacity);
        return response.map(|_| outgoing);
    }
    tracing::error!(
        stream,
        "handler answered 2xx to CONNECT without taking its OnUpgrade; answering 500"
    );
    let mut refused = Response::new(Body::empty());
    *refused.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    refused
}

/// Sends the response head (the connection was told the date); its body follows through
/// [`StreamTask::response`].
fn start_response(
    conn: &mut ServerConnection,
    stream: StreamId,
    task: &mut StreamTask,
    response: Response<Body>,
    cx: &mut Context<'_>,
) {
    let (mut parts, mut body) = response.into_parts();
    if parts.status.is_informational() {
        // A final response cannot be 1xx, and HTTP/2 has no `101` (RFC 9113 §8.6).
        tracing::error!(stream, status = %parts.status, "handler answered 1xx; answering 500");
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        parts.headers.clear();
        body = Body::empty();
    }
    let status = parts.status;
    let bodiless_status = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    if let Some(length) = body.size_hint().exact() {
        // The length HTTP/1.1 would have sent; HEAD states what GET would have (RFC 9110 §9.3.2).
        if !bodiless_status && !parts.headers.contains_key(header::CONTENT_LENGTH) {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, content_length_value(length));
        }
    }
    let mut body = ResponseBody::new(body);
    if task.expects_continue {
        // As over HTTP/1.1: a body that streams the request asks for it now, and the client
        // gets its `100 Continue` before our final status, or it never sends the body.
        body.take_frame(cx);
        send_continue_if_wanted(conn, stream, task, cx);
        task.expects_continue = false;
    }
    let end_stream = task.head_request || bodiless_status || body.is_empty();
    match conn.send_response(stream, status, &parts.headers, end_stream) {
        Ok(()) if end_stream => {}
        Ok(()) => task.response = Some(body),
        Err(error) => {
            tracing::debug!(stream, %error, "response dropped");
            reset_unless_closed(conn, stream, error);
        }
    }
}

/// Answers `200` to an extended CONNECT whose WebSocket the application accepted, and starts
/// the socket on the stream; false when it could not be started.
fn start_socket(
    conn: &mut ServerConnection,
    stream: StreamId,
    task: &mut StreamTask,
    response: Response<Body>,
    pending: PendingSocket,
    app: &App,
    now: Instant,
) -> bool {
    let (parts, _) = response.into_parts();
    if let Err(error) = conn.send_response(stream, parts.status, &parts.headers, false) {
        tracing::debug!(stream, %error, "WebSocket answer dropped");
        reset_unless_closed(conn, stream, error);
        return false;
    }
    let Some(session) = WsSession::start(
        pending,
        &socket_limits(&app.config.limits),
        now,
        app.info.peer,
    ) else {
        conn.reset(stream, ErrorCode::InternalError);
        return false;
    };
    let mut session = Box::new(session);
    let early = std::mem::take(&mut task.early);
    session.receive(now, &early);
    if task.early_eof {
        session.receive_eof(now);
    }
    task.socket = Some(StreamSocket {
        session,
        unsent: Bytes::new(),
    });
    true
}

/// Gives back the window held by DATA that arrived before an extended CONNECT was answered
/// and that no socket will read.
fn release_early(conn: &mut ServerConnection, stream: StreamId, task: &mut StreamTask) {
    if !task.early.is_empty() {
        conn.release_capacity(stream, task.early.len());
        task.early = BytesMut::new();
    }
}

/// What one [`drive_socket`] did.
struct SocketDriven {
    moved: bool,
    /// Output waits for window.
    blocked: bool,
    /// The socket is over and the stream ended.
    ended: bool,
}

/// Moves a stream's WebSocket forward: polls it, gives back the window its protocol
/// consumed, and sends its output as the stream's window allows; ends the stream once the
/// socket closed.
fn drive_socket(
    conn: &mut ServerConnection,
    stream: StreamId,
    socket: &mut StreamSocket,
    now: Instant,
    cx: &mut Context<'_>,
) -> SocketDriven {
    let mut moved = socket.session.poll(now, cx);
    let consumed = socket.session.take_consumed();
    if consumed > 0 {
        conn.release_capacity(stream, consumed);
    }
    loop {
        if socket.unsent.is_empty() {
            match socket.session.poll_transmit(now) {
                Some(bytes) => socket.unsent = bytes,
                None => break,
            }
        }
        match conn.send_data(stream, &socket.unsent, false) {
            Ok(0) => {
                return SocketDriven {
                    moved,
                    blocked: true,
                    ended: false,
                };
            }
            Ok(taken) => {
                let _ = socket.unsent.split_to(taken.min(socket.unsent.len()));
                moved = true;
            }
            Err(error) => {
                tracing::debug!(stream, %error, "WebSocket stream closed");
                return SocketDriven {
                    moved: true,
                    blocked: false,
                    ended: true,
                };
            }
        }
    }
    if !socket.session.is_closed() {
        return SocketDriven {
            moved,
            blocked: false,
            ended: false,
        };
    }
    // The close handshake is over: END_STREAM is the socket's TCP close (RFC 8441 §5).
    if let Err(error) = conn.send_data(stream, &[], true) {
        tracing::debug!(stream, %error, "WebSocket stream already closed");
    }
    SocketDriven {
        moved: true,
        blocked: false,
        ended: true,
    }
}

thread_local! {
    /// The `content-length` value made last on this thread: responses of one route tend to
    /// have one length, and a clone of it costs no allocation.
    static LAST_LENGTH: std::cell::RefCell<Option<(u64, HeaderValue)>> =
        const { std::cell::RefCell::new(None) };
}

/// `length` as a `content-length` value.
fn content_length_value(length: u64) -> HeaderValue {
    LAST_LENGTH.with_borrow_mut(|last| match last {
        Some((cached, value)) if *cached == length => value.clone(),
        _ => {
            let value = HeaderValue::from(length);
            *last = Some((length, value.clone()));
            value
        }
    })
}

/// Sends `100 Continue` to a client waiting for it once the application asked for the
/// request body; true when sent.
fn send_continue_if_wanted(
    conn: &mut ServerConnection,
    stream: StreamId,
    task: &mut StreamTask,
    cx: &mut Context<'_>,
) -> bool {
    let wanted = task
        .request_body
        .as_ref()
        .is_some_and(|body| body.poll_wanted(cx));
    if !task.expects_continue || !wanted {
        return false;
    }
    task.expects_continue = false;
    let _ = conn.send_response(stream, StatusCode::CONTINUE, &HeaderMap::new(), false);
    true
}

/// Resets a stream whose response the connection refused, so the client does not wait for
/// it forever; a stream or connection already closed needs nothing.
fn reset_unless_closed(conn: &mut ServerConnection, stream: StreamId, error: SendError) {
    if !matches!(error, SendError::StreamClosed | SendError::Closed) {
        conn.reset(stream, ErrorCode::InternalError);
    }
}

/// One stream of the connection, as the destination of a response body.
struct StreamSink<'a> {
    conn: &'a mut ServerConnection,
    stream: StreamId,
}

impl BodySink for StreamSink<'_> {
    fn send_data(&mut self, data: &[u8], last: bool) -> Result<usize, SinkClosed> {
        self.conn
            .send_data(self.stream, data, last)
            .map_err(|error| {
                // A body longer or shorter than its `content-length`, typically.
                tracing::debug!(stream = self.stream, %error, "response body not sent");
                reset_unless_closed(self.conn, self.stream, error);
                SinkClosed
            })
    }

    fn send_trailers(&mut self, trailers: &HeaderMap) {
        if let Err(error) = self.conn.send_trailers(self.stream, trailers) {
            tracing::debug!(stream = self.stream, %error, "response trailers not sent");
            reset_unless_closed(self.conn, self.stream, error);
        }
    }

    fn fail(&mut self, error: BoxError) {
        // Ending the stream would make a truncated body look complete: reset it.
        tracing::warn!(stream = self.stream, %error, "response body failed; resetting the stream");
        self.conn.reset(self.stream, ErrorCode::InternalError);
    }
}
