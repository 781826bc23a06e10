//! The glue between a connection and a `Service`, for HTTP/1.1 and HTTP/2: [`Dispatcher`]
//! picks the protocol of each connection and serves it.
//!
//! - [`detect`]: which protocol (TLS ALPN, else the first bytes: the HTTP/2 preface or not);
//! - [`upgrade`]: the HTTP/1.1 `Upgrade: h2c` request that switches to HTTP/2;
//! - [`h1`] and [`h2`]: each protocol's glue, over what both share: [`app`] (calling the
//!   service, panics) and [`response`] (pumping a response body into a connection);
//! - [`flow`] and [`ready`]: HTTP/2 request bodies read under flow control, and per-stream
//!   wakers.

mod app;
mod detect;
mod flow;
mod h1;
mod h2;
mod ready;
mod response;
mod target;
mod tunnel;
mod upgrade;
mod websocket;

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod unsent_tests;
#[cfg(test)]
mod upgrade_tests;
#[cfg(test)]
mod ws_tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Context;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use weft_core::Limits;
use weft_core::h1::ErrorPages;
use weft_service::file::FileRegion;
use weft_service::runtime::RuntimeHandle;
use weft_service::service::{ConnectionInfo, DynService};

use app::App;
use detect::{Detected, PrefaceMatcher};
use h1::Http1;
use h2::Http2;
use tunnel::Tunnel;
use websocket::WsSession;

/// Settings of a [`Dispatcher`] beyond the protocol's [`Limits`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DispatchConfig {
    /// The protocol limits every connection enforces.
    pub limits: Limits,
    /// HTTP/1.1 request-body bytes held for the application before the connection stops
    /// reading the socket (backpressure). HTTP/2 holds what the flow-control windows of
    /// `limits.h2` let a client send, and reopens them as the application reads.
    pub request_body_buffer: usize,
    /// Bodies and content types for the error responses HTTP/1.1 connections write by
    /// themselves when they refuse a request before the application sees it (`400`, `408`,
    /// `413`, `414`, `417`, `431`, `501`, `505`). Empty by default: those answers have no
    /// body. Build it once per server, from a function of the status if that is handier,
    /// with [`ErrorPages::from_fn`]; each connection gets a copy of the table (the bodies
    /// are shared), so nothing is computed per request.
    ///
    /// HTTP/2 refuses malformed or oversized requests with stream or connection errors
    /// (RST_STREAM, GOAWAY), not responses, so the table does not apply there.
    pub error_pages: ErrorPages,
    /// The server's runtime services: entered around every poll of application code (handler
    /// futures, response bodies, WebSocket handlers), and put with its
    /// [`ShutdownSignal`](weft_service::runtime::ShutdownSignal) in every request's extensions.
    /// weft's runtimes set it; `None` (the default) leaves the application without them.
    pub runtime: Option<RuntimeHandle>,
    /// Whether a connection without ALPN may speak HTTP/2 without TLS (h2c): by prior
    /// knowledge (the HTTP/2 preface as its first bytes) or by an HTTP/1.1 `Upgrade: h2c`.
    /// On by default; off, such a connection is HTTP/1.1 only (a preface is a malformed
    /// request, and `Upgrade: h2c` is ignored), for a server that offers HTTP/2 by TLS alone.
    pub h2c: bool,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            limits: Limits::default(),
            request_body_buffer: 64 * 1024,
            error_pages: ErrorPages::default(),
            runtime: None,
            h2c: true,
        }
    }
}

/// Serves one connection, HTTP/1.1 or HTTP/2, with a [`Service`](weft_service::service::Service), still without I/O.
///
/// The protocol is chosen per connection: HTTP/2 when TLS agreed ALPN `h2`
/// ([`ConnectionInfo::alpn`]), when a cleartext connection starts with the HTTP/2 preface
/// (prior knowledge), or after an HTTP/1.1 `Upgrade: h2c` request without a body (answered
/// `101`, then served on stream 1); HTTP/1.1 otherwise. The decision costs an HTTP/1.1 request
/// nothing: it falls on the first byte that differs from the preface.
///
/// A driver calls [`receive`](Self::receive) with bytes from the socket (at most
/// [`receive_capacity`](Self::receive_capacity), and only while [`wants_read`](Self::wants_read)),
/// [`poll`](Self::poll) whenever it was woken or moved bytes, and writes what
/// [`poll_transmit`](Self::poll_transmit) returns, handing back with
/// [`unsent`](Self::unsent) whatever the socket did not accept, until
/// [`is_closed`](Self::is_closed) (or [`send_timed_out`](Self::send_timed_out)). Time comes in
/// through [`poll_timeout`](Self::poll_timeout) and [`handle_timeout`](Self::handle_timeout).
/// A driver able to write vectored (`writev`) takes the output as pieces instead, with
/// [`poll_transmit_vectored`](Self::poll_transmit_vectored) and
/// [`unsent_vectored`](Self::unsent_vectored), after
/// [`set_vectored_output`](Self::set_vectored_output): response bodies given as `Bytes` then
/// reach the socket without a copy, and a batch of pipelined responses goes out in one write.
/// Wake-ups from the application (its futures, its response bodies, room in request bodies)
/// arrive through the `Context` given to `poll`.
///
/// # Output the socket refuses
///
/// A driver keeps no output of its own across calls: what a write did not take goes back to
/// the dispatcher ([`unsent`](Self::unsent), the same `Bytes`, nothing copied), which offers it
/// again first on the next [`poll_transmit`](Self::poll_transmit). So the dispatcher knows when
/// output is blocked, whatever the protocol (a tunnel's bytes too), and bounds it: output handed
/// back that makes no progress for `Limits::send_timeout` (the smaller WebSocket one on a
/// WebSocket) since it was taken, or since the socket last accepted part of it, ends the
/// connection at the deadline shown in [`poll_timeout`](Self::poll_timeout):
/// [`send_timed_out`](Self::send_timed_out) and [`is_closed`](Self::is_closed) turn true, and
/// the driver closes the socket without writing anything more. This holds when the protocol
/// itself has finished (a response whose last bytes the peer never reads), where its own
/// timers no longer run.
pub struct Dispatcher {
    app: App,
    protocol: Protocol,
    /// Cleartext, protocol not known yet: the first bytes are matched against the HTTP/2
    /// preface, and held back from the HTTP/1.1 connection (already there, its head timeout
    /// running) until they differ from it.
    detecting: Option<PrefaceMatcher>,
    /// Output of the protocol we switched from, to be written before the new one's (the `101`
    /// of an `h2c` upgrade).
    handover: Option<Bytes>,
    /// The latest time the driver told, for the protocol switches `poll` makes.
    now: Instant,
    /// Output the driver took and handed back unwritten ([`unsent`](Self::unsent),
    /// [`unsent_vectored`](Self::unsent_vectored)): offered again before anything else, in
    /// order.
    unsent: VecDeque<Bytes>,
    /// Since when `unsent` has waited without the socket taking any of it (when it was taken
    /// from the protocol, or when the socket last accepted part of it).
    unsent_since: Instant,
    /// What the last [`poll_transmit`](Self::poll_transmit) (or
    /// [`poll_transmit_vectored`](Self::poll_transmit_vectored)) lent: its length and the time
    /// its bytes have waited since, so that [`unsent`](Self::unsent) tells progress from none.
    lent: Option<(usize, Instant)>,
    /// Handed-back output crossed the send timeout: the connection is over.
    send_timed_out: bool,
}

/// The protocol of a connection.
// Most connections are HTTP/1.1 and live in that variant: boxing it would cost each one an
// allocation.
#[allow(clippy::large_enum_variant)]
enum Protocol {
    Http1(Http1),
    /// Boxed so that HTTP/1.1 connections, which never need it, stay as small as before
    /// HTTP/2 existed; an HTTP/2 connection makes many allocations, one more is noise.
    Http2(Box<Http2>),
    /// After a `101` to a WebSocket handshake the application accepted.
    WebSocket(Box<WsSession>),
    /// After a `101` (or `2xx` to CONNECT) whose connection the application took
    /// ([`weft_service::upgrade::OnUpgrade`]).
    Tunnel(Box<Tunnel>),
}

impl Dispatcher {
    /// A dispatcher for a connection accepted at `now`; `info.alpn` is the protocol TLS agreed,
    /// if any. `service` is shared by every connection of a server: make it once with
    /// [`weft_service::service::erase`] (or `Arc::new(service)`).
    pub fn new(
        service: Arc<dyn DynService>,
        config: DispatchConfig,
        info: ConnectionInfo,
        now: Instant,
    ) -> Self {
        let detected = detect::by_alpn(&info);
        let app = App {
            service,
            info,
            config,
        };
        let protocol = match detected {
            Detected::Http2 => Protocol::Http2(Box::new(Http2::new(&app, now, Bytes::new()))),
            Detected::Http1 | Detected::Undecided => Protocol::Http1(Http1::new(&app, now)),
        };
        let detecting =
            (detected == Detected::Undecided && app.config.h2c).then(PrefaceMatcher::default);
        Dispatcher {
            app,
            protocol,
            detecting,
            handover: None,
            now,
            unsent: VecDeque::new(),
            unsent_since: now,
            lent: None,
            send_timed_out: false,
        }
    }

    /// Whether bytes from the socket are wanted now. False while the application has not
    /// taken the request body already received (backpressure), while a pipelined HTTP/1.1
    /// request waits for the current response, and after the connection stopped reading.
    pub fn wants_read(&self) -> bool {
        if self.send_timed_out {
            return false;
        }
        match &self.protocol {
            Protocol::Http1(http1) => http1.wants_read(),
            Protocol::Http2(http2) => http2.wants_read(),
            Protocol::WebSocket(socket) => socket.wants_read(),
            Protocol::Tunnel(tunnel) => tunnel.wants_read(),
        }
    }

    /// Most bytes [`receive`](Self::receive) takes now.
    pub fn receive_capacity(&self) -> usize {
        if self.send_timed_out {
            return 0;
        }
        match &self.protocol {
            // The bytes held back go to HTTP/1.1 first if that is what the connection speaks.
            Protocol::Http1(http1) => http1
                .receive_capacity()
                .saturating_sub(self.detecting.as_ref().map_or(0, |m| m.held().len())),
            Protocol::Http2(http2) => http2.receive_capacity(),
            Protocol::WebSocket(socket) => socket.input_room(),
            Protocol::Tunnel(tunnel) => tunnel.receive_capacity(),
        }
    }

    /// Takes bytes read from the socket at `now`; returns how many were taken.
    pub fn receive(&mut self, now: Instant, data: &[u8]) -> usize {
        self.now = now;
        if self.detecting.is_some() {
            return self.receive_first_bytes(now, data);
        }
        match &mut self.protocol {
            Protocol::Http1(http1) => http1.receive(now, data),
            Protocol::Http2(http2) => http2.receive(now, data),
            Protocol::WebSocket(socket) => {
                socket.receive(now, data);
                data.len()
            }
            Protocol::Tunnel(tunnel) => tunnel.receive(data),
        }
    }

    /// Says whether the driver can send file regions itself ([`poll_transmit_file`]). Only a
    /// driver that calls `poll_transmit_file` turns it on (off by default): the dispatcher
    /// then holds a file body back for it instead of polling it. It applies to HTTP/1.1
    /// without TLS only (a TLS driver's bytes must go through TLS; HTTP/2 interleaves
    /// streams): elsewhere file bodies are polled in chunks whatever this says.
    ///
    /// [`poll_transmit_file`]: Self::poll_transmit_file
    pub fn set_transmit_files(&mut self, on: bool) {
        let on = on && !self.app.info.tls;
        if let Protocol::Http1(http1) = &mut self.protocol {
            http1.set_transmit_files(on);
        }
    }

    /// A file region for the driver to send to the socket itself, once no other output waits
    /// ([`poll_transmit`](Self::poll_transmit) returned `None`): the rest of a response body
    /// made with [`Body::file`](weft_service::body::Body::file), its head already written.
    /// Only after [`set_transmit_files`](Self::set_transmit_files).
    ///
    /// The driver sends what the socket takes (`sendfile(2)`: [`crate::file::transmit`]),
    /// reports it with [`file_sent`](Self::file_sent), and calls this again for the rest (after
    /// the socket became writable, when it took nothing). A failure (the file changed, a
    /// socket error) goes to [`file_failed`](Self::file_failed). The send timeout runs from
    /// the last progress, shown in [`poll_timeout`](Self::poll_timeout).
    pub fn poll_transmit_file(&mut self, now: Instant) -> Option<FileRegion> {
        self.now = self.now.max(now);
        if self.send_timed_out || !self.unsent.is_empty() || self.handover.is_some() {
            return None;
        }
        match &mut self.protocol {
            Protocol::Http1(http1) => http1.poll_transmit_file(now),
            _ => None,
        }
    }

    /// Whether a file region is owed after the output queued now: from the moment a file
    /// response's head is queued until its last byte is sent (or the file failed). A driver
    /// corks the socket meanwhile ([`crate::file::Cork`]), so the head shares a packet with the
    /// file's first bytes.
    pub fn file_pending(&self) -> bool {
        match &self.protocol {
            Protocol::Http1(http1) => http1.file_pending(),
            _ => false,
        }
    }

    /// The driver sent `sent` bytes of the region from [`poll_transmit_file`] at `now`; the
    /// last of them complete the response (the connection then reads the next request: poll
    /// again).
    ///
    /// [`poll_transmit_file`]: Self::poll_transmit_file
    pub fn file_sent(&mut self, now: Instant, sent: usize) {
        self.now = self.now.max(now);
        if let Protocol::Http1(http1) = &mut self.protocol {
            http1.file_sent(now, sent as u64);
        }
    }

    /// Sending the region from [`poll_transmit_file`] failed: the response is cut short (the
    /// client sees fewer bytes than its Content-Length) and the connection closes.
    ///
    /// [`poll_transmit_file`]: Self::poll_transmit_file
    pub fn file_failed(&mut self, error: &std::io::Error) {
        if let Protocol::Http1(http1) = &mut self.protocol {
            let peer = self.app.info.peer;
            let file_changed = error
                .get_ref()
                .is_some_and(|inner| inner.is::<weft_service::file::FileError>());
            if file_changed {
                tracing::warn!(?peer, %error, "file response cut short; closing the connection");
            } else {
                // The peer went away mid-file, most likely: nothing the server did wrong.
                tracing::debug!(?peer, %error, "file response not sent; closing the connection");
            }
            http1.file_failed();
        }
    }

    /// The peer closed its side of the connection.
    pub fn receive_eof(&mut self) {
        if let Some(matcher) = &self.detecting {
            // Whatever arrived is not the preface: HTTP/1.1 answers it (or closes quietly).
            let held = matcher.held();
            self.decide_http1(self.now, held);
        }
        match &mut self.protocol {
            Protocol::Http1(http1) => http1.receive_eof(),
            Protocol::Http2(http2) => http2.receive_eof(),
            Protocol::WebSocket(socket) => socket.receive_eof(self.now),
            Protocol::Tunnel(tunnel) => tunnel.receive_eof(),
        }
    }

    /// Bytes to write to the socket: first those handed back by [`unsent`](Self::unsent),
    /// then the protocol's. Hand back with `unsent` what the socket does not accept.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.now = self.now.max(now);
        if self.send_timed_out {
            return None;
        }
        let (bytes, since) = if let Some(bytes) = self.unsent.pop_front() {
            (bytes, self.unsent_since)
        } else if let Some(handover) = self.handover.take() {
            (handover, self.now)
        } else {
            (self.protocol_transmit(now)?, self.now)
        };
        self.lent = Some((bytes.len(), since));
        Some(bytes)
    }

    /// The protocol's next output.
    fn protocol_transmit(&mut self, now: Instant) -> Option<Bytes> {
        match &mut self.protocol {
            Protocol::Http1(http1) => http1.poll_transmit(now),
            Protocol::Http2(http2) => http2.poll_transmit(now),
            Protocol::WebSocket(socket) => socket.poll_transmit(now),
            Protocol::Tunnel(tunnel) => tunnel.poll_transmit(),
        }
    }

    /// Like [`poll_transmit`](Self::poll_transmit), for one vectored write (`writev`): appends
    /// to `out` up to `max` pieces of output, in order (those handed back first), and returns
    /// how many. Once the write is done, hand back what the socket did not take with
    /// [`unsent_vectored`](Self::unsent_vectored).
    ///
    /// Pieces are the connection's own: the head and copied body bytes of HTTP/1.1 responses
    /// in one buffer, and the body `Bytes` of a response queued as they are (no copy) once
    /// [`set_vectored_output`](Self::set_vectored_output) is on. HTTP/2, WebSocket and tunnels
    /// hand out their output as `poll_transmit` does (copied into their own buffers for now).
    pub fn poll_transmit_vectored(
        &mut self,
        now: Instant,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> usize {
        self.now = self.now.max(now);
        if self.send_timed_out || max == 0 {
            return 0;
        }
        let mut pieces = 0;
        let mut len = 0;
        // What comes back had waited since then; what is new waits from now.
        let since = if self.unsent.is_empty() {
            self.now
        } else {
            self.unsent_since
        };
        while pieces < max {
            let next = match self.unsent.pop_front() {
                Some(bytes) => Some(bytes),
                None => match self.handover.take() {
                    Some(handover) => Some(handover),
                    None => self.protocol_transmit(now),
                },
            };
            let Some(bytes) = next else {
                break;
            };
            len += bytes.len();
            out.push(bytes);
            pieces += 1;
        }
        self.lent = (pieces > 0).then_some((len, since));
        pieces
    }

    /// Says whether the driver writes output with vectored writes
    /// ([`poll_transmit_vectored`](Self::poll_transmit_vectored)): HTTP/1.1 response bodies
    /// given as `Bytes` (a `Full` body, the chunks of a stream) are then queued as pieces of
    /// their own instead of being copied into the output buffer, from
    /// [`PIECE_MIN`](weft_core::h1::ServerConnection::PIECE_MIN) bytes on (smaller ones cost
    /// less copied). Off by default: a driver writing one piece at a time would otherwise make
    /// one write for the head and another for the body.
    pub fn set_vectored_output(&mut self, on: bool) {
        if let Protocol::Http1(http1) = &mut self.protocol {
            http1.set_vectored_output(on);
        }
    }

    /// Hands back the end of the bytes the last [`poll_transmit`](Self::poll_transmit)
    /// returned that the socket did not accept (all of them if it took none), at `now`:
    /// they are offered again first, and the send timeout runs for them. The socket taking
    /// part of them restarts it; taking none does not. Nothing is copied.
    ///
    /// A driver calls it before anything else of the dispatcher, right after the write that
    /// fell short, and holds no output of its own.
    pub fn unsent(&mut self, now: Instant, bytes: Bytes) {
        self.now = self.now.max(now);
        let lent = self.lent.take();
        if self.send_timed_out || bytes.is_empty() {
            return;
        }
        self.hand_back(lent, bytes.len());
        self.unsent.push_front(bytes);
    }

    /// After a vectored write of `pieces` (from
    /// [`poll_transmit_vectored`](Self::poll_transmit_vectored)) at `now` that took the first
    /// `written` bytes: hands back the rest, as [`unsent`](Self::unsent) does for one piece,
    /// and leaves `pieces` empty (its allocation kept for the next write). Call it after every
    /// vectored write, whatever it took (`0` when it failed with `WouldBlock`).
    pub fn unsent_vectored(&mut self, now: Instant, pieces: &mut Vec<Bytes>, written: usize) {
        self.now = self.now.max(now);
        let lent = self.lent.take();
        let mut skip = written;
        let first_kept = pieces
            .iter()
            .position(|piece| {
                if skip < piece.len() {
                    return true;
                }
                skip -= piece.len();
                false
            })
            .unwrap_or(pieces.len());
        pieces.drain(..first_kept);
        if let Some(first) = pieces.first_mut() {
            first.advance(skip);
        }
        let left: usize = pieces.iter().map(Bytes::len).sum();
        if self.send_timed_out || left == 0 {
            pieces.clear();
            return;
        }
        self.hand_back(lent, left);
        // Before whatever `poll_transmit_vectored` left for lack of slots.
        let later = std::mem::take(&mut self.unsent);
        self.unsent.extend(pieces.drain(..));
        self.unsent.extend(later);
    }

    /// Sets when output handed back started waiting: the socket taking part of what was lent
    /// restarts the send timeout; taking none of it does not.
    fn hand_back(&mut self, lent: Option<(usize, Instant)>, returned: usize) {
        self.unsent_since = match lent {
            Some((len, since)) if returned >= len => since,
            // The socket took part of it (or the driver is confused): it is moving.
            _ => self.now,
        };
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: the protocol's deadline, or
    /// the send timeout of output handed back, if earlier.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.send_timed_out {
            return None;
        }
        let protocol = match &self.protocol {
            Protocol::Http1(http1) => http1.poll_timeout(),
            Protocol::Http2(http2) => http2.poll_timeout(),
            Protocol::WebSocket(socket) => socket.poll_timeout(),
            Protocol::Tunnel(_) => None,
        };
        match (protocol, self.send_deadline()) {
            (Some(protocol), Some(send)) => Some(protocol.min(send)),
            (protocol, send) => protocol.or(send),
        }
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.send_timed_out {
            return;
        }
        if self.send_deadline().is_some_and(|deadline| deadline <= now) {
            self.time_out_sending();
            return;
        }
        match &mut self.protocol {
            Protocol::Http1(http1) => http1.handle_timeout(now),
            Protocol::Http2(http2) => http2.handle_timeout(now),
            Protocol::WebSocket(socket) => socket.handle_timeout(now),
            Protocol::Tunnel(_) => {}
        }
    }

    /// When output handed back crosses the send timeout; `None` while none is.
    fn send_deadline(&self) -> Option<Instant> {
        if self.unsent.is_empty() {
            return None;
        }
        let limits = &self.app.config.limits;
        let timeout = match &self.protocol {
            Protocol::WebSocket(_) => websocket::socket_limits(limits).send_timeout,
            _ => limits.send_timeout,
        };
        self.unsent_since.checked_add(timeout)
    }

    /// Output handed back waited past the send timeout: the peer reads nothing, so the
    /// connection ends at once, its output dropped (a tunnel's application sees its connection
    /// fail).
    fn time_out_sending(&mut self) {
        tracing::debug!(
            peer = ?self.app.info.peer,
            "output not accepted by the socket within the send timeout; closing"
        );
        self.send_timed_out = true;
        self.unsent = VecDeque::new();
        self.handover = None;
        self.lent = None;
        if let Protocol::Tunnel(tunnel) = &mut self.protocol {
            tunnel.close();
        }
    }

    /// Closes gracefully (server shutdown). HTTP/1.1: at once when idle, else after the
    /// response in progress, which tells the client `connection: close`. HTTP/2: GOAWAY, and
    /// the streams already open are answered (RFC 9113 §6.8).
    pub fn shutdown(&mut self) {
        match &mut self.protocol {
            Protocol::Http1(http1) => http1.shutdown(),
            Protocol::Http2(http2) => http2.shutdown(),
            Protocol::WebSocket(socket) => socket.shutdown(),
            Protocol::Tunnel(tunnel) => tunnel.shutdown(),
        }
    }

    /// Whether the connection ended because its output was not taken for
    /// `Limits::send_timeout` (the peer stopped reading), by the protocol or by the socket
    /// (output handed back with [`unsent`](Self::unsent)): close the socket at once, without
    /// writing anything more (nor a TLS `close_notify`), which could not get out either.
    pub fn send_timed_out(&self) -> bool {
        self.send_timed_out
            || match &self.protocol {
                Protocol::Http1(http1) => http1.send_timed_out(),
                Protocol::Http2(http2) => http2.send_timed_out(),
                Protocol::WebSocket(socket) => socket.send_timed_out(),
                // A tunnel keeps no time of its own: only the dispatcher's above.
                Protocol::Tunnel(_) => false,
            }
    }

    /// Whether the connection is over and its output written (nothing handed back waits):
    /// close the socket. True at once after a send timeout.
    pub fn is_closed(&self) -> bool {
        if self.send_timed_out {
            return true;
        }
        self.unsent.is_empty()
            && self.handover.is_none()
            && match &self.protocol {
                Protocol::Http1(http1) => http1.is_closed(),
                Protocol::Http2(http2) => http2.is_closed(),
                Protocol::WebSocket(socket) => socket.is_closed(),
                Protocol::Tunnel(tunnel) => tunnel.is_closed(),
            }
    }

    /// Moves the exchanges forward as far as they go without I/O: hands request events to
    /// the application, polls its futures and its response bodies, and queues output. Returns
    /// true when anything moved, so the driver knows to write and poll again.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        if self.send_timed_out {
            return false;
        }
        match self.app.config.runtime.clone() {
            Some(runtime) => runtime.enter(|| self.poll_protocol(cx)),
            None => self.poll_protocol(cx),
        }
    }

    /// [`poll`](Self::poll), with the runtime entered.
    fn poll_protocol(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.protocol {
            Protocol::Http1(http1) => {
                let moved = http1.poll(&self.app, cx);
                if let Some(switch) = http1.take_websocket(self.now) {
                    self.switch_to_websocket(switch, cx);
                    return true;
                }
                if let Some(switch) = http1.take_tunnel(self.now) {
                    self.switch_to_tunnel(switch, cx);
                    return true;
                }
                let Some(upgrade) = http1.take_upgrade(self.now) else {
                    return moved;
                };
                self.handover = Some(upgrade.output.clone());
                let http2 = Http2::upgraded(&self.app, self.now, upgrade);
                self.protocol = Protocol::Http2(Box::new(http2));
                self.poll_protocol(cx);
                true
            }
            Protocol::Http2(http2) => http2.poll(&self.app, cx),
            Protocol::WebSocket(socket) => socket.poll(self.now, cx),
            Protocol::Tunnel(tunnel) => tunnel.poll(cx),
        }
    }

    /// The application took the connection after its `101` (or `2xx` to CONNECT), which is
    /// queued: the connection goes on as the application's bytes.
    fn switch_to_tunnel(&mut self, switch: h1::TunnelSwitch, cx: &mut Context<'_>) {
        self.handover = Some(switch.output);
        let buffer = self.app.config.request_body_buffer;
        let link = switch.pending.complete(switch.leftover, buffer);
        let mut tunnel = Tunnel::new(link, self.app.config.limits.max_buffered_output, buffer);
        tunnel.poll(cx);
        self.protocol = Protocol::Tunnel(Box::new(tunnel));
    }

    /// The application accepted a WebSocket and its `101` is queued: the connection goes on
    /// as that socket.
    fn switch_to_websocket(&mut self, switch: h1::WebSocketSwitch, cx: &mut Context<'_>) {
        self.handover = Some(switch.output);
        let limits = websocket::socket_limits(&self.app.config.limits);
        let Some(mut socket) =
            WsSession::start(switch.socket, &limits, self.now, self.app.info.peer)
        else {
            return;
        };
        socket.receive(self.now, &switch.leftover);
        socket.poll(self.now, cx);
        self.protocol = Protocol::WebSocket(Box::new(socket));
    }

    /// The first bytes of a cleartext connection, the protocol not known yet.
    fn receive_first_bytes(&mut self, now: Instant, data: &[u8]) -> usize {
        let Some(matcher) = &mut self.detecting else {
            return 0;
        };
        let held = matcher.held();
        match matcher.feed(data) {
            Detected::Undecided => data.len(),
            Detected::Http1 => {
                self.decide_http1(now, held);
                match &mut self.protocol {
                    Protocol::Http1(http1) => http1.receive(now, data),
                    Protocol::Http2(_) | Protocol::WebSocket(_) | Protocol::Tunnel(_) => 0,
                }
            }
            Detected::Http2 => {
                self.detecting = None;
                let mut input = BytesMut::with_capacity(held.len() + data.len());
                input.extend_from_slice(held);
                input.extend_from_slice(data);
                let http2 = Http2::new(&self.app, now, input.freeze());
                self.protocol = Protocol::Http2(Box::new(http2));
                data.len()
            }
        }
    }

    /// The connection speaks HTTP/1.1: it gets the bytes held back while that was not known.
    fn decide_http1(&mut self, now: Instant, held: &[u8]) {
        self.detecting = None;
        if let Protocol::Http1(http1) = &mut self.protocol {
            let taken = http1.receive(now, held);
            debug_assert_eq!(
                taken,
                held.len(),
                "capacity was kept for the bytes held back"
            );
        }
    }
}
