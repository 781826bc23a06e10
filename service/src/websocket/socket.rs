//! The application's WebSocket and the server's end of it: two bounded queues between the
//! handler's task and the connection that runs the protocol.
//!
//! - **incoming** (connection → application): complete messages. The connection pushes only
//!   while [`SocketLink::has_room`] (queued bytes below the receive queue size), and stops
//!   reading the socket otherwise: a slow reader slows its peer down (TCP or HTTP/2 flow
//!   control), it never grows memory.
//! - **outgoing** (application → connection): messages, pings and a close. [`WebSocket::send`]
//!   waits while the queued bytes are at the send queue size; [`WebSocketSender::try_send`]
//!   refuses instead, which is what a broadcast hub (`weft::websocket::Hub`) uses to apply
//!   its slow-consumer policy. A message larger than the whole queue is accepted when the
//!   queue is empty (it could never fit otherwise).
//!
//! The socket lives as long as the handler's future: when that future completes, the server
//! closes the connection with `1000` if nobody closed it before, and every
//! [`WebSocketSender`] left (in a hub, in other tasks) sees [`Closed`].

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use weft_core::ws::{CloseCode, Message};

/// Identifies one socket for its lifetime, unique within the process; a broadcast hub
/// (`weft::websocket::Hub`) keys its members by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u64);

/// What the application asks the connection to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outgoing {
    /// A text or binary message.
    Message(Message),
    /// A ping with this payload (at most 125 bytes).
    Ping(Bytes),
    /// Close with this code and reason: sent after the messages queued before it. Nothing
    /// queued after it is sent.
    Close(CloseCode, String),
}

/// The socket is closed: nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the WebSocket is closed")
    }
}

impl std::error::Error for Closed {}

/// Why [`WebSocketSender::try_send`] did not queue a message; the message is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrySendError {
    /// The send queue is at its size: the consumer is slow.
    Full(Message),
    /// The socket is closed.
    Closed(Message),
}

impl std::fmt::Display for TrySendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the WebSocket's send queue is full"),
            TrySendError::Closed(_) => f.write_str("the WebSocket is closed"),
        }
    }
}

impl std::error::Error for TrySendError {}

/// Sizes of a socket's two queues, in payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSizes {
    /// Received messages held for the application before the connection stops reading.
    pub receive: usize,
    /// Messages held for the connection before `send` waits and `try_send` refuses.
    pub send: usize,
}

impl Default for QueueSizes {
    /// 64 KiB received, 1 MiB to send.
    fn default() -> Self {
        QueueSizes {
            receive: 64 * 1024,
            send: 1024 * 1024,
        }
    }
}

/// The state both ends share: one lock, held only for queue operations (never across an
/// await or a wake).
struct Shared {
    state: Mutex<State>,
    sizes: QueueSizes,
}

/// Everything behind [`Shared`]'s lock.
///
/// Queues are bounded in payload bytes and, so that empty messages cannot pile up for free,
/// in entries too (never more entries than the queue's size in bytes).
struct State {
    /// Received messages not taken by the application yet.
    incoming: VecDeque<Message>,
    /// Payload bytes in `incoming`.
    incoming_bytes: usize,
    /// Messages, pings and a Close queued for the connection.
    outgoing: VecDeque<Outgoing>,
    /// Payload bytes in `outgoing`.
    outgoing_bytes: usize,
    /// A [`WebSocketSender::close_now`] not taken by the connection yet.
    close_now: Option<(CloseCode, String)>,
    /// A Close was asked for ([`WebSocketSender::close`] or `close_now`): sends fail.
    closing: bool,
    /// The Close came out of [`SocketLink::poll_outgoing`]: nothing more may follow it.
    close_taken: bool,
    /// Why the connection ended, once [`SocketLink::finish`] said so.
    end: Option<(CloseCode, String)>,
    /// The task waiting in [`WebSocket::poll_recv`].
    receiver: Option<Waker>,
    /// The tasks waiting in `send` for room; at most one per task (deduplicated).
    senders: Vec<Waker>,
    /// The connection's task, registered by [`SocketLink::poll_outgoing`].
    connection: Option<Waker>,
}

/// Longest close reason: a Close payload is at most 125 bytes, two of them the code
/// (RFC 6455 §5.5).
const MAX_CLOSE_REASON: usize = 123;
/// Longest ping payload (RFC 6455 §5.5).
const MAX_PING_PAYLOAD: usize = 125;

/// Source of [`SocketId`]s.
static NEXT_SOCKET_ID: AtomicU64 = AtomicU64::new(1);

impl SocketId {
    /// A new identity, never given before in this process.
    fn next() -> SocketId {
        SocketId(NEXT_SOCKET_ID.fetch_add(1, Ordering::Relaxed))
    }
}

impl Outgoing {
    /// The payload bytes this item holds in the send queue.
    fn payload_len(&self) -> usize {
        match self {
            Outgoing::Message(message) => message.payload().len(),
            Outgoing::Ping(payload) => payload.len(),
            Outgoing::Close(_, reason) => reason.len(),
        }
    }
}

/// Whether a queue holding `entries` items and `bytes` payload bytes takes `len` more bytes
/// under `size`. An empty queue takes anything: a message larger than the whole queue could
/// never be sent otherwise.
fn fits(entries: usize, bytes: usize, len: usize, size: usize) -> bool {
    entries == 0 || (entries < size && bytes.saturating_add(len) <= size)
}

/// `code` if it may be sent in a Close frame, else `1000`.
fn sendable(code: CloseCode) -> CloseCode {
    if code.is_sendable() {
        code
    } else {
        CloseCode::NORMAL
    }
}

/// `reason` cut to fit a Close frame, at a character boundary.
fn close_reason_within_limit(reason: &str) -> String {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    reason.get(..end).unwrap_or_default().to_owned()
}

/// Wakes every waker given, after the lock is released (a woken task may run at once on
/// another thread and would otherwise wait for the lock).
fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for waker in wakers {
        waker.wake();
    }
}

/// Keeps `slot` holding the waker of `cx`, cloning only when it changed.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

impl Shared {
    fn new(sizes: QueueSizes) -> Shared {
        Shared {
            state: Mutex::new(State {
                incoming: VecDeque::new(),
                incoming_bytes: 0,
                outgoing: VecDeque::new(),
                outgoing_bytes: 0,
                close_now: None,
                closing: false,
                close_taken: false,
                end: None,
                receiver: None,
                senders: Vec::new(),
                connection: None,
            }),
            sizes,
        }
    }

    /// Queues a Close after what is queued (see [`WebSocketSender::close`]).
    fn queue_close(&self, code: CloseCode, reason: &str) -> Result<(), Closed> {
        let close = Outgoing::Close(sendable(code), close_reason_within_limit(reason));
        let mut state = self.lock();
        if state.is_closed() {
            return Err(Closed);
        }
        state.closing = true;
        // Queued even when the queue is full: it is the last item, and bounded (123 bytes).
        state.enqueue(close);
        let connection = state.connection.take();
        let senders = state.take_senders();
        drop(state);
        wake_all(connection.into_iter().chain(senders));
        Ok(())
    }

    /// The state; a panic elsewhere while holding the lock leaves it consistent (every update
    /// is a few plain assignments), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Whether nothing more can be queued for sending.
    fn is_closed(&self) -> bool {
        self.closing || self.end.is_some()
    }

    /// Room for one more received message of any size; an empty queue always has room, so
    /// that even a zero size lets messages through one at a time.
    fn incoming_has_room(&self, size: usize) -> bool {
        self.incoming.is_empty() || (self.incoming.len() < size && self.incoming_bytes < size)
    }

    fn outgoing_fits(&self, len: usize, size: usize) -> bool {
        fits(self.outgoing.len(), self.outgoing_bytes, len, size)
    }

    /// Queues `item` for the connection (the caller checked it may).
    fn enqueue(&mut self, item: Outgoing) {
        self.outgoing_bytes = self.outgoing_bytes.saturating_add(item.payload_len());
        self.outgoing.push_back(item);
    }

    /// The waiting senders, to wake when room opened (any byte or entry freed may let one in;
    /// each checks again) or the socket closed (they fail then).
    fn take_senders(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.senders)
    }
}

/// The handler's end of one WebSocket: receive messages, send them, close.
///
/// Dropping it does not close the socket (a [`WebSocketSender`] may go on sending); the
/// handler's future ending does.
pub struct WebSocket {
    shared: Arc<Shared>,
    id: SocketId,
    protocol: Option<String>,
}

/// A cloneable handle that sends on one WebSocket, from any task.
#[derive(Clone)]
pub struct WebSocketSender {
    shared: Arc<Shared>,
    id: SocketId,
}

/// The server's end of one WebSocket: the connection pushes received messages in and takes
/// what the application queued.
pub struct SocketLink {
    shared: Arc<Shared>,
}

impl WebSocket {
    /// A new socket and the server's end of it, with the agreed subprotocol.
    pub fn pair(protocol: Option<String>, sizes: QueueSizes) -> (WebSocket, SocketLink) {
        let shared = Arc::new(Shared::new(sizes));
        let socket = WebSocket {
            shared: Arc::clone(&shared),
            id: SocketId::next(),
            protocol,
        };
        (socket, SocketLink { shared })
    }

    /// This socket's identity.
    pub fn id(&self) -> SocketId {
        self.id
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The next message; `None` once the connection is over (the peer closed, a protocol
    /// error, or the server shut down) and every message received before was taken. Then
    /// [`close_reason`](Self::close_reason) says why.
    pub async fn recv(&mut self) -> Option<Message> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let size = self.shared.sizes.receive;
        let mut state = self.shared.lock();
        let had_room = state.incoming_has_room(size);
        let Some(message) = state.incoming.pop_front() else {
            if state.end.is_some() {
                return Poll::Ready(None);
            }
            register(&mut state.receiver, cx);
            return Poll::Pending;
        };
        state.incoming_bytes = state.incoming_bytes.saturating_sub(message.payload().len());
        // The connection stopped reading when the queue filled up: tell it room opened.
        let connection = if had_room {
            None
        } else {
            state.connection.take()
        };
        drop(state);
        wake_all(connection);
        Poll::Ready(Some(message))
    }

    /// Queues a message, waiting while the send queue is full; `Err(Closed)` once the socket
    /// is closed (or closing).
    pub async fn send(&self, message: Message) -> Result<(), Closed> {
        self.sender().send(message).await
    }

    /// Queues a Close after the messages already queued (see [`WebSocketSender::close`]).
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Closed> {
        self.sender().close(code, reason)
    }

    /// Why the connection ended: the peer's close code and reason (`1005` when it gave none,
    /// `1006` when it vanished without a Close), or the code we closed with, as the
    /// connection reported it to [`SocketLink::finish`]. `None` while open.
    pub fn close_reason(&self) -> Option<(CloseCode, String)> {
        self.shared.lock().end.clone()
    }

    /// A handle that sends on this socket from elsewhere (another task, a hub).
    pub fn sender(&self) -> WebSocketSender {
        WebSocketSender {
            shared: Arc::clone(&self.shared),
            id: self.id,
        }
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl WebSocketSender {
    /// The socket this handle sends on.
    pub fn id(&self) -> SocketId {
        self.id
    }

    /// Queues a message, waiting while the send queue is full; `Err(Closed)` once the socket
    /// is closed or closing.
    pub async fn send(&self, message: Message) -> Result<(), Closed> {
        let mut message = Some(message);
        poll_fn(|cx| self.poll_send(cx, &mut message)).await
    }

    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        message: &mut Option<Message>,
    ) -> Poll<Result<(), Closed>> {
        let size = self.shared.sizes.send;
        let mut state = self.shared.lock();
        if state.is_closed() {
            return Poll::Ready(Err(Closed));
        }
        let Some(len) = message.as_ref().map(|m| m.payload().len()) else {
            // Already queued by an earlier poll.
            return Poll::Ready(Ok(()));
        };
        if !state.outgoing_fits(len, size) {
            if !state.senders.iter().any(|w| w.will_wake(cx.waker())) {
                state.senders.push(cx.waker().clone());
            }
            return Poll::Pending;
        }
        if let Some(message) = message.take() {
            state.enqueue(Outgoing::Message(message));
        }
        let connection = state.connection.take();
        drop(state);
        wake_all(connection);
        Poll::Ready(Ok(()))
    }

    /// Queues a message now or says why not, without waiting.
    pub fn try_send(&self, message: Message) -> Result<(), TrySendError> {
        let size = self.shared.sizes.send;
        let mut state = self.shared.lock();
        if state.is_closed() {
            return Err(TrySendError::Closed(message));
        }
        if !state.outgoing_fits(message.payload().len(), size) {
            return Err(TrySendError::Full(message));
        }
        state.enqueue(Outgoing::Message(message));
        let connection = state.connection.take();
        drop(state);
        wake_all(connection);
        Ok(())
    }

    /// Queues a ping; a payload longer than 125 bytes is cut to 125. The pong is not
    /// reported: the server's heartbeat already checks the peer is alive. When the send queue
    /// is full the ping is skipped (the queue stays bounded, and the connection is behind
    /// anyway); `Err(Closed)` once the socket is closed or closing.
    pub fn ping(&self, mut payload: Bytes) -> Result<(), Closed> {
        payload.truncate(MAX_PING_PAYLOAD);
        let size = self.shared.sizes.send;
        let mut state = self.shared.lock();
        if state.is_closed() {
            return Err(Closed);
        }
        if !state.outgoing_fits(payload.len(), size) {
            return Ok(());
        }
        state.enqueue(Outgoing::Ping(payload));
        let connection = state.connection.take();
        drop(state);
        wake_all(connection);
        Ok(())
    }

    /// Queues a Close with `code` and `reason` (cut to fit 123 bytes at a character boundary)
    /// after the messages already queued; later sends fail with [`Closed`]. A code that may
    /// not be sent (`1005`, `1006`, `1015`, unassigned ones) becomes `1000`.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Closed> {
        self.shared.queue_close(code, reason)
    }

    /// Closes at once: drops whatever is still queued and sends a Close with `code` (the
    /// slow-consumer policy of a hub: `1008` or `1013`), its reason cut like
    /// [`close`](Self::close)'s. Does nothing once a Close was sent or the connection is over;
    /// overrides a [`close`](Self::close) still queued.
    pub fn close_now(&self, code: CloseCode, reason: &str) {
        let close = (sendable(code), close_reason_within_limit(reason));
        let mut state = self.shared.lock();
        if state.end.is_some() || state.close_taken || state.close_now.is_some() {
            return;
        }
        state.closing = true;
        state.close_now = Some(close);
        state.outgoing.clear();
        state.outgoing_bytes = 0;
        let connection = state.connection.take();
        let senders = state.take_senders();
        drop(state);
        wake_all(connection.into_iter().chain(senders));
    }

    /// Whether the socket is closed or closing (no send can succeed).
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// Payload bytes queued and not yet taken by the connection.
    pub fn queued(&self) -> usize {
        self.shared.lock().outgoing_bytes
    }
}

impl std::fmt::Debug for WebSocketSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketSender")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SocketLink {
    /// Whether the incoming queue has room: push only then, and stop reading the peer
    /// otherwise. The connection is woken (through [`poll_outgoing`](Self::poll_outgoing)'s
    /// waker) when the application takes a message and room opens again.
    pub fn has_room(&self) -> bool {
        self.shared
            .lock()
            .incoming_has_room(self.shared.sizes.receive)
    }

    /// Hands a received message to the application. Ignored once the connection
    /// [`finish`](Self::finish)ed.
    pub fn push(&self, message: Message) {
        let mut state = self.shared.lock();
        if state.end.is_some() {
            return;
        }
        state.incoming_bytes = state.incoming_bytes.saturating_add(message.payload().len());
        state.incoming.push_back(message);
        let receiver = state.receiver.take();
        drop(state);
        wake_all(receiver);
    }

    /// The next thing to send, registering `cx`'s waker to be woken when the application
    /// queues more or takes a message (room in the incoming queue).
    /// A [`WebSocketSender::close_now`] comes out first, the queue behind it dropped; nothing
    /// comes out after a Close, nor once the connection [`finish`](Self::finish)ed.
    pub fn poll_outgoing(&self, cx: &mut Context<'_>) -> Option<Outgoing> {
        let mut state = self.shared.lock();
        register(&mut state.connection, cx);
        if state.end.is_some() || state.close_taken {
            return None;
        }
        if let Some((code, reason)) = state.close_now.take() {
            state.close_taken = true;
            return Some(Outgoing::Close(code, reason));
        }
        let item = state.outgoing.pop_front()?;
        state.outgoing_bytes = state.outgoing_bytes.saturating_sub(item.payload_len());
        if matches!(item, Outgoing::Close(..)) {
            state.close_taken = true;
        }
        let senders = state.take_senders();
        drop(state);
        wake_all(senders);
        Some(item)
    }

    /// Queues a Close after what the application queued, exactly like
    /// [`WebSocketSender::close`]: for the server when the handler's future ends, so that no
    /// [`WebSocketSender`] left (in a hub, in another task) can queue more and the Close comes
    /// out of [`poll_outgoing`](Self::poll_outgoing) after a bounded amount.
    /// `Err(Closed)` when a close was asked already or the connection finished.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Closed> {
        self.shared.queue_close(code, reason)
    }

    /// The connection is over with `code` and `reason` (the peer's, or ours): `recv` returns
    /// the messages still queued then `None`, sends fail, and waiting tasks wake. Only the
    /// first call counts.
    pub fn finish(&self, code: CloseCode, reason: &str) {
        let mut state = self.shared.lock();
        if state.end.is_some() {
            return;
        }
        state.end = Some((code, reason.to_owned()));
        // Nothing queued will be sent any more: free it now.
        state.outgoing.clear();
        state.outgoing_bytes = 0;
        state.close_now = None;
        let receiver = state.receiver.take();
        let connection = state.connection.take();
        let senders = state.take_senders();
        drop(state);
        wake_all(receiver.into_iter().chain(connection).chain(senders));
    }
}

impl std::fmt::Debug for SocketLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SocketLink")
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct WakeCounter(AtomicUsize);

    impl WakeCounter {
        fn new() -> (Arc<WakeCounter>, Waker) {
            let counter = Arc::new(WakeCounter::default());
            let waker = Waker::from(Arc::clone(&counter));
            (counter, waker)
        }

        fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Wake for WakeCounter {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Runs `future` on this thread, polling again only when it was woken. Single-threaded:
    /// a future still pending after a poll that left no wake-up behind was never going to be
    /// woken (a lost wake-up), so that fails instead of hanging. The tests with threads are in
    /// `core/tests/websocket_threads.rs`.
    fn block_on<F: Future>(future: F) -> F::Output {
        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        let mut wakes_seen = 0;
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            let wakes = counter.count();
            assert!(wakes > wakes_seen, "pending future never woken");
            wakes_seen = wakes;
        }
    }

    fn sizes(receive: usize, send: usize) -> QueueSizes {
        QueueSizes { receive, send }
    }

    fn text(n: usize) -> Message {
        Message::text("x".repeat(n))
    }

    /// What the connection takes now, with a waker nobody looks at.
    fn take(link: &SocketLink) -> Option<Outgoing> {
        let (_, waker) = WakeCounter::new();
        link.poll_outgoing(&mut Context::from_waker(&waker))
    }

    fn take_all(link: &SocketLink) -> Vec<Outgoing> {
        std::iter::from_fn(|| take(link)).collect()
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<WebSocket>();
        assert_send_sync::<WebSocketSender>();
        assert_send_sync::<SocketLink>();
    }

    #[test]
    fn every_socket_gets_its_own_id() {
        let (a, _) = WebSocket::pair(None, QueueSizes::default());
        let (b, _) = WebSocket::pair(Some("chat".into()), QueueSizes::default());
        assert_ne!(a.id(), b.id());
        assert_eq!(a.sender().id(), a.id());
        assert_eq!(a.protocol(), None);
        assert_eq!(b.protocol(), Some("chat"));
    }

    #[test]
    fn recv_returns_messages_in_order_then_none_after_finish() {
        let (mut socket, link) = WebSocket::pair(None, QueueSizes::default());
        link.push(Message::text("one"));
        link.push(Message::binary(&b"two"[..]));
        link.finish(CloseCode::GOING_AWAY, "bye");
        link.push(Message::text("after the end"));
        assert_eq!(block_on(socket.recv()), Some(Message::text("one")));
        assert_eq!(block_on(socket.recv()), Some(Message::binary(&b"two"[..])));
        assert_eq!(block_on(socket.recv()), None);
        assert_eq!(block_on(socket.recv()), None);
        assert_eq!(
            socket.close_reason(),
            Some((CloseCode::GOING_AWAY, "bye".to_owned()))
        );
    }

    #[test]
    fn close_reason_is_none_until_finish_and_first_finish_counts() {
        let (socket, link) = WebSocket::pair(None, QueueSizes::default());
        socket.close(CloseCode::NORMAL, "done").unwrap();
        assert_eq!(socket.close_reason(), None);
        link.finish(CloseCode::NORMAL, "done");
        link.finish(CloseCode::ABNORMAL, "");
        assert_eq!(
            socket.close_reason(),
            Some((CloseCode::NORMAL, "done".to_owned()))
        );
    }

    #[test]
    fn push_wakes_the_waiting_receiver() {
        let (mut socket, link) = WebSocket::pair(None, QueueSizes::default());
        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        assert!(socket.poll_recv(&mut cx).is_pending());
        assert!(socket.poll_recv(&mut cx).is_pending());
        assert_eq!(counter.count(), 0);
        link.push(Message::text("hi"));
        assert_eq!(counter.count(), 1);
        assert_eq!(
            socket.poll_recv(&mut cx),
            Poll::Ready(Some(Message::text("hi")))
        );
    }

    #[test]
    fn finish_wakes_the_receiver_with_none() {
        let (mut socket, link) = WebSocket::pair(None, QueueSizes::default());
        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        assert!(socket.poll_recv(&mut cx).is_pending());
        link.finish(CloseCode::ABNORMAL, "");
        assert_eq!(counter.count(), 1);
        assert_eq!(socket.poll_recv(&mut cx), Poll::Ready(None));
        assert_eq!(
            socket.close_reason(),
            Some((CloseCode::ABNORMAL, String::new()))
        );
    }

    #[test]
    fn taking_a_message_from_a_full_incoming_queue_wakes_the_connection() {
        let (mut socket, link) = WebSocket::pair(None, sizes(10, 100));
        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        assert!(link.has_room());
        link.push(text(6));
        assert!(link.has_room());
        link.push(text(6));
        assert!(!link.has_room());
        assert_eq!(link.poll_outgoing(&mut cx), None);
        assert_eq!(block_on(socket.recv()), Some(text(6)));
        assert!(link.has_room());
        assert_eq!(counter.count(), 1);
        // Taking when there was room already does not wake it again.
        assert_eq!(link.poll_outgoing(&mut cx), None);
        assert_eq!(block_on(socket.recv()), Some(text(6)));
        assert_eq!(counter.count(), 1);
    }

    #[test]
    fn empty_messages_fill_the_incoming_queue_too() {
        let (mut socket, link) = WebSocket::pair(None, sizes(3, 100));
        for _ in 0..3 {
            assert!(link.has_room());
            link.push(Message::text(""));
        }
        assert!(!link.has_room());
        let (counter, waker) = WakeCounter::new();
        assert_eq!(link.poll_outgoing(&mut Context::from_waker(&waker)), None);
        assert_eq!(block_on(socket.recv()), Some(Message::text("")));
        assert_eq!(counter.count(), 1, "room opened");
        assert!(link.has_room());
    }

    #[test]
    fn send_wakes_the_connection_and_comes_out_in_order() {
        let (socket, link) = WebSocket::pair(None, QueueSizes::default());
        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(link.poll_outgoing(&mut cx), None);
        block_on(socket.send(Message::text("a"))).unwrap();
        assert_eq!(counter.count(), 1);
        assert_eq!(
            link.poll_outgoing(&mut cx),
            Some(Outgoing::Message(Message::text("a")))
        );
        let sender = socket.sender();
        sender.try_send(Message::text("b")).unwrap();
        sender.ping(Bytes::from_static(b"p")).unwrap();
        assert_eq!(counter.count(), 2, "one wake per registration");
        assert_eq!(
            take_all(&link),
            vec![
                Outgoing::Message(Message::text("b")),
                Outgoing::Ping(Bytes::from_static(b"p")),
            ]
        );
        assert_eq!(sender.queued(), 0);
    }

    #[test]
    fn send_waits_while_full_and_resumes_when_the_link_takes() {
        let (socket, link) = WebSocket::pair(None, sizes(100, 10));
        let sender = socket.sender();
        block_on(sender.send(text(6))).unwrap();
        assert_eq!(sender.queued(), 6);

        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        let mut waiting = pin!(sender.send(text(6)));
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            socket.shared.lock().senders.len(),
            1,
            "same waker kept once"
        );
        assert_eq!(sender.queued(), 6);

        assert_eq!(take(&link), Some(Outgoing::Message(text(6))));
        assert_eq!(counter.count(), 1);
        assert_eq!(waiting.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
        assert_eq!(sender.queued(), 6);
        assert_eq!(take(&link), Some(Outgoing::Message(text(6))));
    }

    #[test]
    fn every_waiting_sender_wakes() {
        let (socket, link) = WebSocket::pair(None, sizes(100, 4));
        socket.sender().try_send(text(4)).unwrap();
        let (first, first_waker) = WakeCounter::new();
        let (second, second_waker) = WakeCounter::new();
        let sender = socket.sender();
        let mut a = pin!(sender.send(text(2)));
        let mut b = pin!(sender.send(text(2)));
        assert!(
            a.as_mut()
                .poll(&mut Context::from_waker(&first_waker))
                .is_pending()
        );
        assert!(
            b.as_mut()
                .poll(&mut Context::from_waker(&second_waker))
                .is_pending()
        );
        take(&link);
        assert_eq!((first.count(), second.count()), (1, 1));
        assert!(
            a.as_mut()
                .poll(&mut Context::from_waker(&first_waker))
                .is_ready()
        );
        assert!(
            b.as_mut()
                .poll(&mut Context::from_waker(&second_waker))
                .is_ready()
        );
        assert_eq!(sender.queued(), 4);
    }

    #[test]
    fn try_send_refuses_when_full_and_gives_the_message_back() {
        let (socket, link) = WebSocket::pair(None, sizes(100, 10));
        let sender = socket.sender();
        sender.try_send(text(4)).unwrap();
        sender.try_send(text(6)).unwrap();
        assert_eq!(sender.try_send(text(1)), Err(TrySendError::Full(text(1))));
        take(&link);
        sender.try_send(text(1)).unwrap();
        assert_eq!(sender.queued(), 7);
    }

    #[test]
    fn a_message_larger_than_the_queue_goes_in_only_when_it_is_empty() {
        let (socket, link) = WebSocket::pair(None, sizes(100, 10));
        let sender = socket.sender();
        sender.try_send(text(1)).unwrap();
        assert_eq!(sender.try_send(text(50)), Err(TrySendError::Full(text(50))));
        take(&link);
        sender.try_send(text(50)).unwrap();
        assert_eq!(sender.queued(), 50);
        assert_eq!(sender.try_send(text(1)), Err(TrySendError::Full(text(1))));
    }

    #[test]
    fn empty_messages_fill_the_send_queue_too() {
        let (socket, _link) = WebSocket::pair(None, sizes(100, 3));
        let sender = socket.sender();
        for _ in 0..3 {
            sender.try_send(Message::text("")).unwrap();
        }
        assert_eq!(
            sender.try_send(Message::text("")),
            Err(TrySendError::Full(Message::text("")))
        );
    }

    #[test]
    fn close_comes_after_queued_messages_and_later_sends_fail() {
        let (socket, link) = WebSocket::pair(None, sizes(100, 10));
        let sender = socket.sender();
        sender.try_send(text(10)).unwrap();
        assert!(!sender.is_closed());
        // A full queue does not hold the Close back.
        socket.close(CloseCode(4000), "done").unwrap();
        assert!(sender.is_closed());
        assert_eq!(socket.close(CloseCode::NORMAL, ""), Err(Closed));
        assert_eq!(sender.try_send(text(1)), Err(TrySendError::Closed(text(1))));
        assert_eq!(block_on(sender.send(text(1))), Err(Closed));
        assert_eq!(sender.ping(Bytes::new()), Err(Closed));
        assert_eq!(
            take_all(&link),
            vec![
                Outgoing::Message(text(10)),
                Outgoing::Close(CloseCode(4000), "done".to_owned()),
            ]
        );
    }

    #[test]
    fn the_link_closes_after_queued_messages_and_senders_are_shut_out() {
        let (socket, link) = WebSocket::pair(None, QueueSizes::default());
        let sender = socket.sender();
        sender.try_send(text(2)).unwrap();
        link.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(sender.try_send(text(1)), Err(TrySendError::Closed(text(1))));
        assert_eq!(link.close(CloseCode::NORMAL, ""), Err(Closed));
        assert_eq!(
            take_all(&link),
            vec![
                Outgoing::Message(text(2)),
                Outgoing::Close(CloseCode::NORMAL, String::new()),
            ]
        );
    }

    #[test]
    fn close_now_drops_the_queue_and_comes_out_first() {
        let (socket, link) = WebSocket::pair(None, QueueSizes::default());
        let sender = socket.sender();
        sender.try_send(text(3)).unwrap();
        sender.close(CloseCode::NORMAL, "later").unwrap();
        sender.close_now(CloseCode::TRY_AGAIN_LATER, "slow consumer");
        sender.close_now(CloseCode::POLICY, "second");
        assert_eq!(sender.queued(), 0);
        assert_eq!(
            take_all(&link),
            vec![Outgoing::Close(
                CloseCode::TRY_AGAIN_LATER,
                "slow consumer".to_owned()
            )]
        );
    }

    #[test]
    fn close_now_after_the_close_went_out_sends_nothing_more() {
        let (socket, link) = WebSocket::pair(None, QueueSizes::default());
        let sender = socket.sender();
        sender.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(
            take(&link),
            Some(Outgoing::Close(CloseCode::NORMAL, String::new()))
        );
        sender.close_now(CloseCode::POLICY, "too late");
        assert_eq!(take(&link), None);
    }

    /// Closes `sender` the one way or the other.
    fn close_by(sender: &WebSocketSender, now: bool) {
        if now {
            sender.close_now(CloseCode::POLICY, "");
        } else {
            sender.close(CloseCode::POLICY, "").unwrap();
        }
    }

    #[test]
    fn close_and_close_now_wake_the_connection() {
        for now in [false, true] {
            let (socket, link) = WebSocket::pair(None, QueueSizes::default());
            let (counter, waker) = WakeCounter::new();
            assert_eq!(link.poll_outgoing(&mut Context::from_waker(&waker)), None);
            close_by(&socket.sender(), now);
            assert_eq!(counter.count(), 1, "close_now: {now}");
        }
    }

    #[test]
    fn close_and_close_now_fail_waiting_senders() {
        for now in [false, true] {
            let (socket, _link) = WebSocket::pair(None, sizes(100, 1));
            let sender = socket.sender();
            sender.try_send(text(1)).unwrap();
            let (counter, waker) = WakeCounter::new();
            let mut cx = Context::from_waker(&waker);
            let mut send = pin!(sender.send(text(1)));
            assert!(send.as_mut().poll(&mut cx).is_pending());
            close_by(&sender, now);
            assert_eq!(counter.count(), 1, "close_now: {now}");
            assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Err(Closed)));
        }
    }

    #[test]
    fn invalid_close_codes_become_normal_and_long_reasons_are_cut() {
        let (socket, link) = WebSocket::pair(None, QueueSizes::default());
        let long = "é".repeat(70);
        socket.close(CloseCode::ABNORMAL, &long).unwrap();
        let Some(Outgoing::Close(code, reason)) = take(&link) else {
            panic!("no close");
        };
        assert_eq!(code, CloseCode::NORMAL);
        assert_eq!(reason.len(), 122);
        assert!(long.starts_with(&reason));

        for code in [
            CloseCode::NO_STATUS,
            CloseCode(1015),
            CloseCode(2000),
            CloseCode(5000),
        ] {
            let (socket, link) = WebSocket::pair(None, QueueSizes::default());
            socket.sender().close_now(code, "x");
            assert_eq!(
                take(&link),
                Some(Outgoing::Close(CloseCode::NORMAL, "x".to_owned()))
            );
        }
    }

    #[test]
    fn an_empty_incoming_queue_always_has_room() {
        let (mut socket, link) = WebSocket::pair(None, sizes(0, 0));
        assert!(link.has_room());
        link.push(text(5));
        assert!(!link.has_room());
        assert_eq!(block_on(socket.recv()), Some(text(5)));
        assert!(link.has_room());
    }

    #[test]
    fn a_ping_is_skipped_when_the_send_queue_is_full() {
        let (socket, link) = WebSocket::pair(None, sizes(100, 4));
        let sender = socket.sender();
        sender.try_send(text(4)).unwrap();
        sender.ping(Bytes::from_static(b"p")).unwrap();
        assert_eq!(sender.queued(), 4);
        assert_eq!(take_all(&link), vec![Outgoing::Message(text(4))]);
        sender.ping(Bytes::from_static(b"p")).unwrap();
        assert_eq!(
            take_all(&link),
            vec![Outgoing::Ping(Bytes::from_static(b"p"))]
        );
    }

    #[test]
    fn ping_payload_is_cut_to_125_bytes() {
        let (socket, link) = WebSocket::pair(None, QueueSizes::default());
        socket.sender().ping(Bytes::from(vec![7u8; 300])).unwrap();
        assert_eq!(
            take(&link),
            Some(Outgoing::Ping(Bytes::from(vec![7u8; 125])))
        );
    }

    #[test]
    fn finish_fails_waiting_senders_and_empties_the_send_queue() {
        let (socket, link) = WebSocket::pair(None, sizes(100, 2));
        let sender = socket.sender();
        sender.try_send(text(2)).unwrap();
        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        let mut send = pin!(sender.send(text(1)));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        let (connection, connection_waker) = WakeCounter::new();
        let _ = link.poll_outgoing(&mut Context::from_waker(&connection_waker));
        link.finish(CloseCode::NORMAL, "");
        assert_eq!(counter.count(), 1);
        assert_eq!(connection.count(), 1);
        assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Err(Closed)));
        assert!(sender.is_closed());
        assert_eq!(sender.queued(), 0);
        assert_eq!(take(&link), None);
        assert_eq!(socket.close(CloseCode::NORMAL, ""), Err(Closed));
    }
}
