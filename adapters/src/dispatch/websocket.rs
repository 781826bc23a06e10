//! One WebSocket being served: the sans-IO protocol ([`weft_core::ws::Connection`]) between the
//! bytes of its transport and the application's socket ([`SocketLink`]), and the handler's
//! future.
//!
//! The transport is either a whole connection after an HTTP/1.1 `101`, or one HTTP/2 stream
//! after a `200` to an extended CONNECT (RFC 8441); [`WsSession`] does not know which. It
//! buffers a bounded amount of input, so a transport can always hand over what it read, and
//! reports what the protocol consumed so that HTTP/2 gives exactly that back to the
//! flow-control windows.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use weft_core::ws::{CloseCode, Connection, Event, Message, MessageKind, SendError};
use weft_core::{Limits, WsLimits};
use weft_service::websocket::{Outgoing, PendingSocket, SocketFuture, SocketLink, StartedSocket};

/// Input bytes a session holds for its protocol (read from the socket, not yet parsed): room
/// for the largest frame the protocol waits to have whole before it hands it out.
pub(super) const MAX_INPUT: usize = weft_core::ws::WHOLE_FRAME_MAX;

/// The limits a socket served under `limits` gets: its own, with the smaller of the two send
/// timeouts, so that `Limits::send_timeout` bounds every connection a server holds.
pub(super) fn socket_limits(limits: &Limits) -> WsLimits {
    let mut ws = limits.ws.clone();
    ws.send_timeout = ws.send_timeout.min(limits.send_timeout);
    ws
}

/// A WebSocket in progress.
pub(super) struct WsSession {
    conn: Connection,
    link: SocketLink,
    /// The handler; `None` once it completed (the socket is then closing).
    handler: Option<SocketFuture>,
    /// Bytes received and not yet taken by `conn`.
    input: BytesMut,
    /// Input bytes taken by `conn` and not yet reported by `take_consumed`.
    consumed: usize,
    /// Bytes at the front of `input` already counted in `consumed`: a partial frame the
    /// protocol waits to have whole.
    counted: usize,
    /// A received message the application's queue had no room for yet.
    held: Option<Message>,
    /// A message being sent in parts because it is larger than the whole output buffer.
    fragmenting: Option<(MessageKind, Bytes)>,
    /// Something the application queued that the output buffer had no room for yet.
    unsent: Option<Outgoing>,
    /// The protocol ended (the peer's Close, an error): the code and reason the application
    /// is told once it had its chance to answer the messages received before (see
    /// [`WsSession::poll`]).
    ending: Option<(CloseCode, String)>,
    /// Messages were handed to the application since the handler was last polled.
    delivered: bool,
    /// The protocol's output bound (`WsLimits::max_buffered_output`).
    max_output: usize,
    /// The application was told the socket is over.
    finished: bool,
    /// The handler was polled after `finished`.
    handler_told: bool,
    peer: Option<SocketAddr>,
}

impl WsSession {
    /// Starts the socket `pending` (from the handler's response) at `now`.
    pub(super) fn start(
        pending: PendingSocket,
        limits: &WsLimits,
        now: Instant,
        peer: Option<SocketAddr>,
    ) -> Option<Self> {
        let StartedSocket {
            connection,
            link,
            handler,
        } = pending.start(limits, now)?;
        tracing::debug!(?peer, "WebSocket opened");
        Some(WsSession {
            conn: connection,
            link,
            handler: Some(handler),
            input: BytesMut::new(),
            consumed: 0,
            counted: 0,
            held: None,
            fragmenting: None,
            unsent: None,
            ending: None,
            delivered: false,
            max_output: limits.max_buffered_output,
            finished: false,
            handler_told: false,
            peer,
        })
    }

    /// Input bytes [`receive`](Self::receive) takes now.
    pub(super) fn input_room(&self) -> usize {
        MAX_INPUT.saturating_sub(self.input.len())
    }

    /// Whether reading the transport is useful: the protocol reads, and the input buffer has
    /// room (it fills while the application does not take its messages: backpressure).
    pub(super) fn wants_read(&self) -> bool {
        self.input_room() > 0 && !self.is_closed() && !self.conn_done_reading()
    }

    /// Takes bytes from the transport (all of them: bound them by
    /// [`input_room`](Self::input_room) where that matters) and parses what the application
    /// has room for.
    pub(super) fn receive(&mut self, now: Instant, data: &[u8]) {
        self.input.extend_from_slice(data);
        self.feed(now);
    }

    /// Input bytes the protocol consumed since the last call: what an HTTP/2 stream gives
    /// back to its flow-control windows.
    pub(super) fn take_consumed(&mut self) -> usize {
        std::mem::take(&mut self.consumed)
    }

    /// The transport ended (TCP EOF, or the HTTP/2 stream's END_STREAM).
    pub(super) fn receive_eof(&mut self, now: Instant) {
        self.feed(now);
        self.conn.receive_eof();
        self.deliver_events();
    }

    /// Parses buffered input while the application has room: every message the buffer holds
    /// goes to the application's queue in one pass, each a slice of `input` (unmasked where
    /// it lies, not copied), until the queue is full.
    fn feed(&mut self, now: Instant) {
        self.deliver_events();
        if self.held.is_some() {
            return;
        }
        let before = self.input.len();
        let link = &mut self.link;
        let delivered = &mut self.delivered;
        self.conn
            .receive_buf(now, &mut self.input, |event| match event {
                Event::Message(message) if link.has_room() => {
                    link.push(message);
                    *delivered = true;
                    Ok(())
                }
                // Answered by the protocol; the application does not see them.
                Event::Ping(_) | Event::Pong(_) => Ok(()),
                // A message with no room, the end: `deliver_events` takes them.
                other => Err(other),
            });
        self.count_consumed(before - self.input.len());
        self.deliver_events();
        if self.conn_done_reading() {
            // Drop what the protocol will never read.
            self.count_consumed(self.input.len());
            self.input.clear();
        }
    }

    /// Counts the `parsed` bytes just taken off the front of `input`, and what is left in it
    /// when that is the start of a frame the protocol waits to have whole: those count as
    /// consumed at once (HTTP/2 gives them back to the windows, which must let the rest of
    /// the frame come whatever their size).
    fn count_consumed(&mut self, parsed: usize) {
        self.consumed += parsed.saturating_sub(self.counted);
        self.counted = self.counted.saturating_sub(parsed);
        if self.held.is_none() && self.conn.wants_read() {
            self.consumed += self.input.len().saturating_sub(self.counted);
            self.counted = self.counted.max(self.input.len());
        }
    }

    /// Bytes to write to the transport.
    pub(super) fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.conn.poll_transmit(now)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due (close handshake, heartbeat).
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
        self.deliver_events();
        self.finish_if_closed();
    }

    /// See [`Dispatcher::send_timed_out`](super::Dispatcher::send_timed_out).
    pub(super) fn send_timed_out(&self) -> bool {
        self.conn.send_timed_out()
    }

    /// Server shutdown: close with `1001 Going Away`.
    pub(super) fn shutdown(&mut self) {
        self.start_close(CloseCode::GOING_AWAY, "server shutting down");
    }

    /// Whether the socket is over and its output taken: close the transport. The handler
    /// was polled once after it was told the end, so the code after its receive loop (leaving
    /// a hub, cleaning up) has run unless it waits for something else.
    pub(super) fn is_closed(&self) -> bool {
        self.conn.is_closed() && (self.handler.is_none() || self.handler_told)
    }

    /// Moves the socket forward without I/O: polls the handler, sends what it queued, hands
    /// received messages over. `cx` wakes the transport when the application acts. True when
    /// anything moved.
    ///
    /// When the protocol ended (the peer's Close, a protocol error), the application is told
    /// only after it was polled with every message received before: what it queued by then
    /// (its replies, the rest of a message being sent in parts) goes out ahead of the Close
    /// the protocol owes, as far as the output buffer holds it; the rest is dropped.
    pub(super) fn poll(&mut self, now: Instant, cx: &mut Context<'_>) -> bool {
        let mut moved = self.poll_handler(cx);
        moved |= self.send_outgoing(cx);
        let before = self.input.len();
        self.feed(now);
        moved |= self.input.len() != before;
        if self.ending.is_some() {
            if std::mem::take(&mut self.delivered) {
                self.poll_handler(cx);
                self.send_outgoing(cx);
            }
            if let Some((code, reason)) = self.ending.take() {
                self.finish(code, &reason);
            }
            moved = true;
        }
        self.finish_if_closed();
        if self.finished && !self.handler_told {
            // Its `recv` now returns `None`: let it run to its end.
            self.handler_told = true;
            moved |= self.poll_handler(cx);
        }
        moved
    }

    fn poll_handler(&mut self, cx: &mut Context<'_>) -> bool {
        self.delivered = false;
        let Some(handler) = &mut self.handler else {
            return false;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx)));
        let (code, reason) = match outcome {
            Ok(Poll::Pending) => return false,
            Ok(Poll::Ready(())) => (CloseCode::NORMAL, ""),
            Err(_) => {
                tracing::error!(peer = ?self.peer, "WebSocket handler panicked; closing with 1011");
                (CloseCode::INTERNAL_ERROR, "internal error")
            }
        };
        self.handler = None;
        // What the handler queued before it ended still goes out, then the Close; a hub
        // still holding a sender can no longer add to the queue.
        let _ = self.link.close(code, reason);
        self.send_outgoing(cx);
        true
    }

    /// Sends what the application queued while the output buffer has room.
    fn send_outgoing(&mut self, cx: &mut Context<'_>) -> bool {
        let mut moved = false;
        loop {
            if self.fragmenting.is_some() {
                if !self.send_next_part() {
                    return moved;
                }
                moved = true;
                continue;
            }
            let item = match self.unsent.take() {
                Some(item) => item,
                None => match self.link.poll_outgoing(cx) {
                    Some(item) => item,
                    None => return moved,
                },
            };
            match self.send(item) {
                Sent::Done => moved = true,
                Sent::Wait(item) => {
                    self.unsent = Some(item);
                    return moved;
                }
            }
        }
    }

    fn send(&mut self, item: Outgoing) -> Sent {
        let result = match &item {
            Outgoing::Message(message) => return self.send_message(item.clone(), message),
            Outgoing::Ping(payload) => self.conn.send_ping(payload),
            Outgoing::Close(code, reason) => self.conn.close(*code, reason),
            _ => Ok(()),
        };
        match result {
            Err(SendError::Full) => Sent::Wait(item),
            Err(error) => {
                tracing::debug!(peer = ?self.peer, ?error, "WebSocket control frame not sent");
                Sent::Done
            }
            Ok(()) => Sent::Done,
        }
    }

    fn send_message(&mut self, item: Outgoing, message: &Message) -> Sent {
        let (kind, payload) = match message {
            Message::Text(text) => (MessageKind::Text, text),
            Message::Binary(data) => (MessageKind::Binary, data),
        };
        let result = match kind {
            MessageKind::Text => match std::str::from_utf8(payload) {
                Ok(text) => self.conn.send_text(text),
                Err(_) => Err(SendError::InvalidMessage),
            },
            MessageKind::Binary => self.conn.send_binary(payload),
        };
        match result {
            Ok(()) => Sent::Done,
            // (The output buffer is empty, though a Close may be owed behind it.)
            Err(SendError::Full) if self.conn.send_capacity() >= self.max_output => {
                // Larger than the whole buffer: it goes in parts, uncompressed.
                self.fragmenting = Some((kind, payload.clone()));
                Sent::Done
            }
            Err(SendError::Full) => Sent::Wait(item),
            Err(error) => {
                tracing::warn!(peer = ?self.peer, ?error, "WebSocket message not sent");
                Sent::Done
            }
        }
    }

    /// Sends the next part of a message larger than the output buffer; false when none fit.
    fn send_next_part(&mut self) -> bool {
        let Some((kind, rest)) = &mut self.fragmenting else {
            return false;
        };
        match self.conn.send_fragment(*kind, rest, true) {
            Ok(taken) => {
                rest.advance(taken);
                if rest.is_empty() {
                    self.fragmenting = None;
                }
                true
            }
            Err(SendError::Full) => false,
            Err(error) => {
                tracing::warn!(peer = ?self.peer, ?error, "WebSocket message cut short");
                self.fragmenting = None;
                true
            }
        }
    }

    /// Hands the protocol's events to the application while its queue has room.
    fn deliver_events(&mut self) {
        if let Some(message) = self.held.take() {
            if !self.link.has_room() {
                self.held = Some(message);
                return;
            }
            self.link.push(message);
            self.delivered = true;
        }
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Message(message) if self.link.has_room() => {
                    self.link.push(message);
                    self.delivered = true;
                }
                Event::Message(message) => {
                    self.held = Some(message);
                    return;
                }
                Event::Close { code, reason } => {
                    tracing::debug!(peer = ?self.peer, %code, "WebSocket closed by the peer");
                    self.end(code, reason);
                }
                Event::Error(error) => {
                    tracing::debug!(peer = ?self.peer, ?error, "WebSocket failed");
                    self.end(error.close_code(), String::new());
                }
                _ => {}
            }
        }
    }

    /// The protocol ended: the application is told at the end of the next
    /// [`poll`](Self::poll), after it could answer what it received before.
    fn end(&mut self, code: CloseCode, reason: String) {
        if !self.finished && self.ending.is_none() {
            self.ending = Some((code, reason));
        }
    }

    /// Whether the protocol reads nothing more (closing or closed).
    fn conn_done_reading(&self) -> bool {
        !self.conn.wants_read() && self.held.is_none()
    }

    fn start_close(&mut self, code: CloseCode, reason: &str) {
        self.unsent = None;
        self.fragmenting = None;
        if self.conn.close(code, reason).is_ok() {
            self.finish(code, reason);
        }
    }

    fn finish_if_closed(&mut self) {
        if self.conn.is_closed() {
            let (code, reason) = self
                .ending
                .take()
                .unwrap_or((CloseCode::ABNORMAL, String::new()));
            self.finish(code, &reason);
        }
    }

    /// Tells the application the socket is over (once). A message received and not handed
    /// over yet for lack of room still is, past the queue's bound by one message: the
    /// application gets every message that arrived before the end.
    fn finish(&mut self, code: CloseCode, reason: &str) {
        if !self.finished {
            self.finished = true;
            if let Some(message) = self.held.take() {
                self.link.push(message);
            }
            while let Some(event) = self.conn.poll_event() {
                if let Event::Message(message) = event {
                    self.link.push(message);
                }
            }
            self.link.finish(code, reason);
        }
    }
}

impl Drop for WsSession {
    fn drop(&mut self) {
        // The transport went away (connection closed, stream reset): senders elsewhere (a
        // hub) must learn the socket is gone.
        self.finish(CloseCode::ABNORMAL, "");
    }
}

/// What became of one outgoing item.
enum Sent {
    /// Sent, or dropped for a reason already logged.
    Done,
    /// No room in the output buffer: offer it again after a write.
    Wait(Outgoing),
}
