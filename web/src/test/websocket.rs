//! [`TestWebSocket`]: the client end of a WebSocket whose handshake a
//! [`TestClient`](super::TestClient) made, speaking weft-core's WebSocket connection in the
//! client role through the same dispatcher.

use std::collections::VecDeque;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use weft_core::WsLimits;
use weft_core::ws::{CloseCode, Connection, Event, Message, Role, SendError};

use super::link::{Link, lock};

/// 16 bytes for a handshake key or a masking seed. Not from a cryptographic source: a test
/// client's keys only need to differ (RFC 6455 §10.3 asks more of real clients).
pub(crate) fn random_bytes() -> [u8; 16] {
    let state = std::collections::hash_map::RandomState::new();
    let mut bytes = [0; 16];
    for (index, half) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(index);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos()),
        );
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes
}

/// The client end of an open WebSocket to the application, made by
/// [`TestClient::websocket`](super::TestClient::websocket).
///
/// Every call drives the connection (the dispatcher, the application's socket handler) on the
/// calling thread until it has what it waits for, within the client's deadline: a test that
/// waits for a message that never comes fails with a message instead of hanging. Pings from
/// the server are answered by themselves.
pub struct TestWebSocket {
    link: Link,
    state: State,
    label: String,
    deadline: Duration,
}

/// The socket's side of the client, apart from the link that drives it.
struct State {
    socket: Connection,
    /// Messages received and not returned by `recv` yet.
    received: VecDeque<Message>,
    /// The server's close code and reason, once it closed.
    closed: Option<(CloseCode, String)>,
    eof_given: bool,
}

impl fmt::Debug for TestWebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestWebSocket")
            .field("request", &self.label)
            .field("closed", &self.state.closed)
            .finish_non_exhaustive()
    }
}

impl TestWebSocket {
    /// The socket after the `101` to `label`; `leftover` is what came after the head.
    pub(crate) fn new(link: Link, leftover: Bytes, label: String, deadline: Duration) -> Self {
        let mut limits = WsLimits::default();
        // The test decides when to ping; the server's heartbeat is answered.
        limits.ping_interval = None;
        let role = Role::Client {
            mask_seed: random_bytes(),
        };
        let socket = Connection::new(role, limits, Instant::now());
        {
            // The bytes after the head are the new protocol's: read them first.
            let mut pipe = lock(link.pipe());
            let rest = pipe.to_client.split();
            pipe.to_client.extend_from_slice(&leftover);
            pipe.to_client.extend_from_slice(&rest);
        }
        TestWebSocket {
            link,
            state: State {
                socket,
                received: VecDeque::new(),
                closed: None,
                eof_given: false,
            },
            label,
            deadline,
        }
    }

    /// Sends a text message.
    ///
    /// # Panics
    /// If the socket is closing or closed, or the message cannot be sent within the deadline.
    #[track_caller]
    pub fn send_text(&mut self, text: &str) {
        self.send(|socket| socket.send_text(text));
    }

    /// Sends a binary message.
    ///
    /// # Panics
    /// As [`send_text`](Self::send_text).
    #[track_caller]
    pub fn send_binary(&mut self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        self.send(|socket| socket.send_binary(data));
    }

    /// Sends a ping (at most 125 bytes); the server's pong is taken in passing.
    ///
    /// # Panics
    /// As [`send_text`](Self::send_text).
    #[track_caller]
    pub fn ping(&mut self, payload: &[u8]) {
        self.send(|socket| socket.send_ping(payload));
    }

    /// The next message from the application, or `None` once the socket is closed (see
    /// [`close_reason`](Self::close_reason) for the server's close code).
    ///
    /// # Panics
    /// If no message comes and the socket stays open until the deadline.
    #[track_caller]
    pub fn recv(&mut self) -> Option<Message> {
        let received = self.drive(|state| {
            if let Some(message) = state.received.pop_front() {
                return Poll::Ready(Some(message));
            }
            if state.is_over() {
                return Poll::Ready(None);
            }
            Poll::Pending
        });
        match received {
            Some(message) => message,
            None => panic!(
                "{}: no WebSocket message within the test deadline of {:?}",
                self.label, self.deadline
            ),
        }
    }

    /// The next message, which must be text: its text.
    ///
    /// # Panics
    /// If the socket closes, the message is binary, or none comes within the deadline.
    #[track_caller]
    pub fn recv_text(&mut self) -> String {
        match self.recv() {
            Some(Message::Text(text)) => String::from_utf8_lossy(&text).into_owned(),
            Some(other) => panic!("{}: expected a text message, got {other:?}", self.label),
            None => panic!(
                "{}: expected a text message, the socket closed ({:?})",
                self.label, self.state.closed
            ),
        }
    }

    /// Closes with `1000 Normal Closure` and waits for the end of the close handshake;
    /// messages that arrive meanwhile are kept for [`recv`](Self::recv). Returns the server's
    /// close code and reason. Closing a socket already closed returns how it closed.
    ///
    /// # Panics
    /// If the server does not finish the close handshake within the deadline.
    #[track_caller]
    pub fn close(&mut self) -> Option<(CloseCode, String)> {
        if !self.state.is_over() {
            let _ = self.state.socket.close(CloseCode::NORMAL, "");
        }
        let finished = self.drive(|state| {
            if state.is_over() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        if finished.is_none() {
            panic!(
                "{}: the server did not finish the WebSocket close handshake within {:?}",
                self.label, self.deadline
            );
        }
        self.state.closed.clone()
    }

    /// The server's close code and reason, once it closed (`1006` if the connection ended
    /// without a Close).
    pub fn close_reason(&self) -> Option<&(CloseCode, String)> {
        self.state.closed.as_ref()
    }

    #[track_caller]
    fn send(&mut self, mut write: impl FnMut(&mut Connection) -> Result<(), SendError>) {
        loop {
            match write(&mut self.state.socket) {
                Ok(()) => break,
                Err(SendError::Full) => {
                    let room = self.drive(|state| {
                        if state.socket.pending_output() == 0 {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    });
                    if room.is_none() {
                        panic!(
                            "{}: the application does not read the WebSocket",
                            self.label
                        );
                    }
                }
                Err(error) => panic!("{}: cannot send on the WebSocket: {error:?}", self.label),
            }
        }
        // Hand the frames to the dispatcher, so that the application gets them.
        let pipe = self.link.pipe().clone();
        let sent = self.drive(|state| {
            if state.socket.pending_output() == 0 && lock(&pipe).to_server.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        if sent.is_none() {
            panic!(
                "{}: the dispatcher did not take the WebSocket message within {:?}",
                self.label, self.deadline
            );
        }
    }

    /// Moves the socket until `ready` says it is done: `None` when the deadline passed.
    fn drive<T>(&mut self, mut ready: impl FnMut(&mut State) -> Poll<T>) -> Option<T> {
        let deadline = Instant::now() + self.deadline;
        let pipe = self.link.pipe().clone();
        let state = &mut self.state;
        self.link.drive(deadline, |_| {
            state.exchange(&pipe);
            ready(state)
        })
    }
}

impl State {
    /// Whether the socket is closed, or its close handshake is over.
    fn is_over(&self) -> bool {
        self.closed.is_some() || self.socket.is_closed()
    }

    /// Moves frames between the socket and the pipe, and the socket's time.
    fn exchange(&mut self, pipe: &super::link::SharedPipe) {
        let now = Instant::now();
        if self.socket.poll_timeout().is_some_and(|due| due <= now) {
            self.socket.handle_timeout(now);
        }
        let mut pipe = lock(pipe);
        loop {
            while let Some(event) = self.socket.poll_event() {
                match event {
                    Event::Message(message) => self.received.push_back(message),
                    Event::Close { code, reason } => self.closed = Some((code, reason)),
                    Event::Error(error) => {
                        self.closed = Some((error.close_code(), format!("{error:?}")));
                    }
                    _ => {}
                }
            }
            if pipe.to_client.is_empty() || !self.socket.wants_read() {
                break;
            }
            let taken = self.socket.receive(now, &pipe.to_client);
            pipe.to_client.advance(taken);
            if taken == 0 && self.socket.wants_read() {
                break;
            }
        }
        if pipe.server_closed && pipe.to_client.is_empty() && !self.eof_given {
            self.eof_given = true;
            self.socket.receive_eof();
            while let Some(event) = self.socket.poll_event() {
                match event {
                    Event::Message(message) => self.received.push_back(message),
                    Event::Close { code, reason } => {
                        self.closed.get_or_insert((code, reason));
                    }
                    _ => {}
                }
            }
        }
        while let Some(bytes) = self.socket.poll_transmit(now) {
            if pipe.server_closed {
                break;
            }
            pipe.to_server.extend_from_slice(&bytes);
        }
    }
}
