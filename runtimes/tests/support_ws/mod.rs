//! What the WebSocket runtime suite runs against each server: an application with the routes
//! the Python clients of `runtimes/tests/ws/` expect ([`WsApp`]), a server under test
//! ([`WsServer`]), a certificate, our own raw client ([`raw`]) and the Python runner
//! ([`python`]).
//!
//! Every wait is bounded: a server that stops answering fails a test instead of hanging it.

#[path = "../support_h2/certificate.rs"]
pub(crate) mod certificate;
#[path = "../support_h2/clients.rs"]
#[allow(dead_code)]
pub(crate) mod clients;
pub(crate) mod python;
pub(crate) mod raw;
pub(crate) mod rooms;

pub(crate) use certificate::TestCertificate;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use weft_core::ws::{CloseCode, Message};
use weft_runtime::{ServerConfig, ServerHandle, TlsFiles};
use weft_service::body::Body;
use weft_service::service::Service;
use weft_service::websocket::{Heartbeat, QueueSizes, WebSocket, WebSocketUpgrade};

use rooms::{Rooms, SlowConsumer};

/// The longest a server may take to stop once asked to, and the longest a test waits for a
/// handler to end.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// A runtime's entry point, as every runtime module has it.
pub(crate) type Start = fn(ServerConfig, WsApp) -> io::Result<ServerHandle>;

/// The queues of a room member: a slow one is found once 256 KiB wait for it (beyond what the
/// connection and the kernel buffer), while the broadcaster's burst (its receive queue, 32 KiB)
/// always fits a fast member's queue.
pub(crate) const ROOM_QUEUES: QueueSizes = QueueSizes {
    receive: 32 * 1024,
    send: 256 * 1024,
};

/// The heartbeat of `/heartbeat`: short, so an unanswered ping closes the socket soon.
pub(crate) const FAST_HEARTBEAT: Heartbeat = Heartbeat {
    interval: Duration::from_millis(300),
    timeout: Duration::from_millis(700),
};

/// The application under test.
///
/// | route | answer |
/// |---|---|
/// | `/ws` | WebSocket echo of text and binary messages (permessage-deflate when offered) |
/// | `/heartbeat` | the same echo, pinging every 300 ms and closing `1011` after 700 ms without a pong |
/// | `/private` | `401` without `Authorization`, `403` unless `Bearer ok`, else the echo |
/// | `/room/NAME` | joins room NAME of [`Rooms`] that disconnects a slow member with `1013` |
/// | `/room-drop/NAME` | the same on [`Rooms`] that drop messages for a slow member |
/// | anything else | `404` |
///
/// In a room every message is broadcast to the other members, except the text `?stats`,
/// answered to the sender alone with `members=M dropped=D` (members of the room now, messages
/// dropped so far): what `rooms.py` waits on. Every echo handler records how it ended
/// in [`WsApp::ended`].
#[derive(Clone)]
pub(crate) struct WsApp {
    shared: Arc<Shared>,
}

struct Shared {
    disconnecting: Rooms,
    dropping: Rooms,
    ended: HandlerLog,
}

impl Default for WsApp {
    fn default() -> Self {
        WsApp {
            shared: Arc::new(Shared {
                disconnecting: Rooms::new(SlowConsumer::Disconnect(CloseCode::TRY_AGAIN_LATER)),
                dropping: Rooms::new(SlowConsumer::Drop),
                ended: HandlerLog::default(),
            }),
        }
    }
}

impl Service for WsApp {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        // Every answer is known at once: the sockets run in their own handlers.
        std::future::ready(self.answer(request))
    }
}

impl WsApp {
    /// How the echo handlers of this server ended, in order.
    pub(crate) fn ended(&self) -> &HandlerLog {
        &self.shared.ended
    }

    fn answer(&self, request: Request<Body>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        if path == "/ws" || path == "/heartbeat" || path == "/private" {
            return self.echo_route(&path, &request);
        }
        if let Some(room) = path.strip_prefix("/room/") {
            return room_route(&request, self.shared.disconnecting.clone(), room);
        }
        if let Some(room) = path.strip_prefix("/room-drop/") {
            return room_route(&request, self.shared.dropping.clone(), room);
        }
        plain(StatusCode::NOT_FOUND, "no such route\n")
    }

    fn echo_route(&self, path: &str, request: &Request<Body>) -> Response<Body> {
        let upgrade = match WebSocketUpgrade::from_request(request) {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        if path == "/private" {
            if let Some(refusal) = refuse_unless_bearer_ok(request) {
                return refusal;
            }
        }
        let upgrade = if path == "/heartbeat" {
            upgrade.heartbeat(Some(FAST_HEARTBEAT))
        } else {
            upgrade
        };
        let app = self.clone();
        let route = path.to_owned();
        upgrade.on_upgrade(move |socket| async move {
            let ended = echo(socket).await;
            app.shared.ended.record(Ended { route, ..ended });
        })
    }
}

/// `401` (with `WWW-Authenticate`) without `Authorization`, `403` unless it is `Bearer ok`.
fn refuse_unless_bearer_ok(request: &Request<Body>) -> Option<Response<Body>> {
    match request.headers().get(AUTHORIZATION) {
        None => {
            let mut refused = plain(StatusCode::UNAUTHORIZED, "log in first\n");
            refused
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(refused)
        }
        Some(token) if token == "Bearer ok" => None,
        Some(_) => Some(plain(StatusCode::FORBIDDEN, "not you\n")),
    }
}

/// Echoes every message until the connection is over; how it ended.
async fn echo(mut socket: WebSocket) -> Ended {
    let mut messages = 0;
    let mut recv_returned_none = false;
    loop {
        let Some(message) = socket.recv().await else {
            recv_returned_none = true;
            break;
        };
        messages += 1;
        if socket.send(message).await.is_err() {
            break;
        }
    }
    Ended {
        route: String::new(),
        messages,
        recv_returned_none,
        close: socket.close_reason().map(|(code, reason)| (code.0, reason)),
    }
}

/// A member of `room` in `hub` until its connection is over.
fn room_route(request: &Request<Body>, hub: Rooms, room: &str) -> Response<Body> {
    let upgrade = match WebSocketUpgrade::from_request(request) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let room = room.to_owned();
    // No heartbeat: the slow member of rooms.py reads nothing, pongs included, on purpose.
    let upgrade = upgrade.heartbeat(None).queues(ROOM_QUEUES);
    upgrade.on_upgrade(move |mut socket| async move {
        let id = socket.id();
        hub.join(&room, socket.sender());
        while let Some(message) = socket.recv().await {
            if message.as_text() == Some("?stats") {
                let stats = format!("members={} dropped={}", hub.room_len(&room), hub.dropped());
                if socket.send(Message::text(stats)).await.is_err() {
                    break;
                }
            } else {
                hub.broadcast_to(&room, &message, Some(id));
            }
        }
        hub.remove(id);
    })
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// How one echo handler ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ended {
    /// The route it served.
    pub(crate) route: String,
    /// Messages it received.
    pub(crate) messages: usize,
    /// Whether it stopped because `recv` returned `None` (rather than a failed send).
    pub(crate) recv_returned_none: bool,
    /// `close_reason()` then, as (code, reason).
    pub(crate) close: Option<(u16, String)>,
}

/// The handlers that ended, for a test to wait on.
#[derive(Default)]
pub(crate) struct HandlerLog {
    ended: Mutex<Vec<Ended>>,
    changed: Condvar,
}

impl HandlerLog {
    fn lock(&self) -> MutexGuard<'_, Vec<Ended>> {
        self.ended.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, ended: Ended) {
        self.lock().push(ended);
        self.changed.notify_all();
    }

    /// Waits up to `timeout` until `count` handlers ended; the handlers that did.
    pub(crate) fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Ended> {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |ended| ended.len() < count)
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone()
    }
}

/// A server under test, on 127.0.0.1 with an OS-chosen port.
pub(crate) struct WsServer {
    pub(crate) addr: SocketAddr,
    pub(crate) app: WsApp,
    tls: bool,
    handle: Option<ServerHandle>,
}

impl WsServer {
    /// Starts `start` with 2 workers, no signal handling and a 5 s drain deadline, serving TLS
    /// with `tls` when given.
    pub(crate) fn start(start: Start, tls: Option<TlsFiles>) -> WsServer {
        let mut config = ServerConfig::new(["127.0.0.1:0".parse().expect("an address")]);
        config.workers = 2;
        config.handle_signals = false;
        config.drain_timeout = Duration::from_secs(5);
        let secure = tls.is_some();
        config.tls = tls;
        let app = WsApp::default();
        let handle = start(config, app.clone()).expect("the server starts");
        WsServer {
            addr: handle.local_addrs()[0],
            app,
            tls: secure,
            handle: Some(handle),
        }
    }

    /// `ws://127.0.0.1:PORT{path}`, or `wss://localhost:PORT{path}` over TLS (the certificate
    /// names `localhost`; the clients dial 127.0.0.1 for it).
    pub(crate) fn url(&self, path: &str) -> String {
        if self.tls {
            format!("wss://localhost:{}{path}", self.addr.port())
        } else {
            format!("ws://{}{path}", self.addr)
        }
    }

    /// Shuts down and waits for the server to stop, at most [`WAIT`].
    pub(crate) fn stop(mut self) {
        let handle = self.handle.take().expect("still running");
        handle.shutdown();
        let (done, joined) = mpsc::channel();
        thread::spawn(move || {
            let _ = done.send(handle.join());
        });
        match joined.recv_timeout(WAIT) {
            Ok(result) => result.expect("the server stops cleanly"),
            Err(_) => panic!("the server did not stop within {WAIT:?} of shutdown"),
        }
    }
}
