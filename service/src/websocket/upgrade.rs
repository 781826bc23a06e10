//! Accepting a WebSocket in a handler: [`WebSocketUpgrade`] reads the handshake from the
//! request, the handler chooses, and [`WebSocketUpgrade::on_upgrade`] answers with the switch.
//!
//! Everything the handler checks before calling `on_upgrade` (a session cookie, a token, the
//! `Origin`) happens before any `101` or `200` is sent, so refusing is an ordinary response:
//!
//! ```
//! use weft_service::body::Body;
//! use weft_service::websocket::WebSocketUpgrade;
//! use http::{Request, Response, StatusCode};
//!
//! async fn handle(request: Request<Body>) -> Response<Body> {
//!     let upgrade = match WebSocketUpgrade::from_request(&request) {
//!         Ok(upgrade) => upgrade,
//!         Err(rejection) => return rejection.into_response(),
//!     };
//!     if request.headers().get("authorization").is_none() {
//!         let mut refused = Response::new(Body::from("log in first\n"));
//!         *refused.status_mut() = StatusCode::UNAUTHORIZED;
//!         return refused;
//!     }
//!     upgrade.on_upgrade(|mut socket| async move {
//!         while let Some(message) = socket.recv().await {
//!             if socket.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//! # let _ = handle;
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};

use super::socket::{QueueSizes, SocketLink, WebSocket};
use crate::body::Body;
use weft_core::WsLimits;
use weft_core::h2::Protocol;
use weft_core::ws::deflate::{self, DeflateConfig, DeflateParams};
use weft_core::ws::handshake::{self, Handshake, HandshakeError, SEC_WEBSOCKET_EXTENSIONS};
use weft_core::ws::{Connection, Role};

/// The future a socket's handler runs as.
pub type SocketFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

type Handler = Box<dyn FnOnce(WebSocket) -> SocketFuture + Send + 'static>;

/// A valid WebSocket handshake found in a request, not answered yet.
#[derive(Debug)]
pub struct WebSocketUpgrade {
    handshake: Handshake,
    /// Extension offers as sent (every `Sec-WebSocket-Extensions` field), for permessage-deflate.
    extension_offers: Vec<HeaderValue>,
    supported_protocols: Vec<String>,
    deflate: Option<DeflateConfig>,
    heartbeat: Option<Heartbeat>,
    queues: QueueSizes,
}

/// The heartbeat of a socket: a ping every `interval`, and a close with `1011` when no pong
/// came back within `timeout` (a peer that vanished without a word is noticed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Time between our pings.
    pub interval: Duration,
    /// Time a pong may take.
    pub timeout: Duration,
}

/// The request is not a valid WebSocket handshake; [`into_response`](Self::into_response) is
/// the answer RFC 6455 §4.2.1 asks for (`400`, or `426` with `Sec-WebSocket-Version: 13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeRejection(pub HandshakeError);

impl HandshakeRejection {
    /// The refusal to send.
    pub fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::from(format!("{}\n", self.0)));
        *response.status_mut() = self.0.status();
        let headers = response.headers_mut();
        headers.extend(self.0.response_headers());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl std::fmt::Display for HandshakeRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for HandshakeRejection {}

impl WebSocketUpgrade {
    /// The handshake in `request`: an HTTP/1.1 `GET` with `Upgrade: websocket`, or an HTTP/2
    /// extended `CONNECT` with `:protocol websocket`.
    pub fn from_request<B>(request: &Request<B>) -> Result<WebSocketUpgrade, HandshakeRejection> {
        let handshake = if request.method() == Method::CONNECT {
            handshake::validate_h2_request(
                request.method(),
                request.extensions().get::<Protocol>(),
                request.headers(),
            )
        } else {
            handshake::validate_request(request.method(), request.version(), request.headers())
        }
        .map_err(HandshakeRejection)?;
        Ok(WebSocketUpgrade {
            handshake,
            extension_offers: request
                .headers()
                .get_all(SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .cloned()
                .collect(),
            supported_protocols: Vec::new(),
            deflate: Some(DeflateConfig::default()),
            heartbeat: Some(Heartbeat {
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(20),
            }),
            queues: QueueSizes::default(),
        })
    }

    /// Whether `request` asks for a WebSocket at all (valid or not): `Upgrade: websocket`, or
    /// an extended CONNECT.
    pub fn is_requested<B>(request: &Request<B>) -> bool {
        request.extensions().get::<Protocol>().is_some()
            || request
                .headers()
                .get(header::UPGRADE)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
    }

    /// What the client offered.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The subprotocols this handler speaks: the first one the client offered (in its order of
    /// preference) that is among them is agreed. None by default.
    pub fn protocols<I, P>(mut self, supported: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.supported_protocols = supported.into_iter().map(Into::into).collect();
        self
    }

    /// permessage-deflate (RFC 7692) when the client offers it, with `config`; `None` never
    /// compresses. Default: [`DeflateConfig::default`].
    pub fn deflate(mut self, config: Option<DeflateConfig>) -> Self {
        self.deflate = config;
        self
    }

    /// The heartbeat; `None` sends no pings. Default: a ping every 30 s, 20 s for the pong.
    pub fn heartbeat(mut self, heartbeat: Option<Heartbeat>) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Sizes of the socket's queues. Default: [`QueueSizes::default`].
    pub fn queues(mut self, sizes: QueueSizes) -> Self {
        self.queues = sizes;
        self
    }

    /// Accepts: the response switches the connection (`101` over HTTP/1.1, `200` over HTTP/2)
    /// and the server runs `handler` with the socket. The socket closes when the handler's
    /// future ends. Return this response unchanged (headers may be added).
    pub fn on_upgrade<F, Fut>(self, handler: F) -> Response<Body>
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let protocol = self.agreed_protocol();
        let accepted = self.deflate.as_ref().and_then(|config| {
            // A malformed extensions header is ignored rather than refused: the socket works
            // without compression.
            deflate::accept_offers(
                config,
                self.extension_offers.iter().map(HeaderValue::as_bytes),
            )
            .ok()
            .flatten()
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self.handshake.success_status();
        *response.headers_mut() = self.handshake.response_headers(
            protocol.as_deref(),
            accepted.as_ref().map(|a| a.response.as_str()),
        );
        let pending = Pending {
            protocol,
            deflate: accepted.map(|a| a.params),
            heartbeat: self.heartbeat,
            queues: self.queues,
            handler: Box::new(move |socket| Box::pin(handler(socket))),
        };
        response
            .extensions_mut()
            .insert(PendingSocket(Arc::new(Mutex::new(Some(pending)))));
        response
    }

    fn agreed_protocol(&self) -> Option<String> {
        self.handshake
            .protocols
            .iter()
            .find(|offered| self.supported_protocols.contains(offered))
            .cloned()
    }
}

/// An accepted socket travelling to the server in the response's extensions.
#[derive(Clone)]
pub struct PendingSocket(Arc<Mutex<Option<Pending>>>);

struct Pending {
    protocol: Option<String>,
    deflate: Option<DeflateParams>,
    heartbeat: Option<Heartbeat>,
    queues: QueueSizes,
    handler: Handler,
}

impl std::fmt::Debug for PendingSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingSocket")
    }
}

/// A socket the server starts running: the protocol state machine, the link to the
/// application's [`WebSocket`], and the handler's future.
pub struct StartedSocket {
    /// The WebSocket protocol for this socket (server role).
    pub connection: Connection,
    /// The server's end of the application's socket.
    pub link: SocketLink,
    /// The handler's future; the socket closes when it completes.
    pub handler: SocketFuture,
}

impl PendingSocket {
    /// Takes the accepted socket out of a response whose status switched protocols (`101`,
    /// or `200` to an extended CONNECT). `None` for any other response.
    pub fn take_from<B>(response: &mut Response<B>) -> Option<PendingSocket> {
        let status = response.status();
        if status != StatusCode::SWITCHING_PROTOCOLS && status != StatusCode::OK {
            return None;
        }
        response.extensions_mut().remove::<PendingSocket>()
    }

    /// Starts the socket at `now` under `limits` (the heartbeat chosen by the handler replaces
    /// the one in `limits`). `None` if it was started already.
    pub fn start(self, limits: &WsLimits, now: Instant) -> Option<StartedSocket> {
        let pending = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let mut limits = limits.clone();
        limits.ping_interval = pending.heartbeat.map(|h| h.interval);
        if let Some(heartbeat) = pending.heartbeat {
            limits.pong_timeout = heartbeat.timeout;
        }
        let connection = Connection::with_deflate(Role::Server, limits, now, pending.deflate);
        let (socket, link) = WebSocket::pair(pending.protocol, pending.queues);
        Some(StartedSocket {
            connection,
            link,
            handler: (pending.handler)(socket),
        })
    }
}
