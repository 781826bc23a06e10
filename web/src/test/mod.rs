//! An in-process test client: [`TestClient`] sends requests to an application through the
//! real server machinery (weft-adapters' [`Dispatcher`](weft_adapters::Dispatcher) and the
//! protocol core) with no socket and no thread of its own, so a test sees exactly what a
//! client over the network would: the protocol's framing, its limits and error answers,
//! cookies, WebSocket frames.
//!
//! ```
//! use weft::test::TestClient;
//! use weft_service::body::Body;
//! use weft_service::websocket::WebSocketUpgrade;
//!
//! // Any `Service`: here a closure; a weft `App` in an application.
//! let app = |request: http::Request<Body>| async move {
//!     if let Ok(upgrade) = WebSocketUpgrade::from_request(&request) {
//!         return upgrade.on_upgrade(|mut socket| async move {
//!             while let Some(message) = socket.recv().await {
//!                 let _ = socket.send(message).await;
//!             }
//!         });
//!     }
//!     let body = request.into_body().collect(1 << 20).await.unwrap_or_default();
//!     let mut response = http::Response::new(Body::from(body));
//!     response.headers_mut().insert("set-cookie", "visited=yes".parse().unwrap());
//!     response
//! };
//!
//! let client = TestClient::new(app);
//! client
//!     .post("/users")
//!     .json(&serde_json::json!({ "name": "ada" }))
//!     .send()
//!     .assert_status(200)
//!     .assert_json_includes(&serde_json::json!({ "name": "ada" }));
//! assert_eq!(client.cookie("visited").as_deref(), Some("yes"));
//!
//! // The same application over HTTP/2, sharing the cookie jar.
//! client.clone().http2().get("/").send().assert_status(200);
//!
//! let mut socket = client.websocket("/ws");
//! socket.send_text("hi");
//! assert_eq!(socket.recv_text(), "hi");
//! ```
//!
//! # How a request travels
//!
//! Each request opens a new in-memory connection: a `Dispatcher` for the application, and a
//! client role facing it, weft-core's HTTP/1.1
//! [`ClientConnection`](weft_core::h1::ClientConnection) or the `h2` crate's HTTP/2 client
//! (prior knowledge, cleartext). The calling thread moves the bytes between them, polls the
//! dispatcher (which polls the handler and its body) and parks when only a waker or a timer
//! can make progress, until the response is complete. Nothing bypasses the dispatcher: an
//! oversized head gets its `431`, a handler's panic its `500`.
//!
//! Handlers reach runtime services (`weft_service::runtime::{spawn, sleep, timeout,
//! spawn_blocking}`) through [`weft_runtime::background_runtime`], a shared executor thread
//! with async-io timers: what handlers do on a server works in tests too.
//!
//! # Deadlines instead of hangs
//!
//! A request whose response does not complete within the client's deadline (10 s by default,
//! [`TestClient::deadline`], [`TestRequest::deadline`]) fails the test with a message saying
//! what had arrived, rather than hanging it. Deadlines are a safety net, not a timing
//! assertion.

mod cookies;
mod error;
mod exchange;
mod http1;
mod http2;
mod link;
mod request;
mod response;
mod stream;
mod websocket;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use http::header::HeaderMap;
use weft_service::service::{DynService, Service, erase};

/// Cookies, as [`TestClient::add_cookie`] takes them.
pub use cookie::Cookie;
/// The dispatcher's settings (limits, error pages), as [`TestClient::with_config`] takes them.
pub use weft_adapters::DispatchConfig;

pub use error::TestError;
pub use request::TestRequest;
pub use response::TestResponse;
pub use stream::TestStream;
pub use websocket::TestWebSocket;
/// WebSocket messages and close codes, as [`TestWebSocket`] sends and receives them.
pub use weft_core::ws::{CloseCode, Message};

/// How long a request may take by default before the test fails.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// weft-core's HTTP/1.1 client role.
    Http1,
    /// The `h2` crate's client, prior knowledge, cleartext.
    Http2,
}

/// What a client and its clones share.
struct Shared {
    service: Arc<dyn DynService>,
    config: DispatchConfig,
}

/// Sends requests to an application in-process, through the dispatcher and the protocol core
/// (see the [module documentation](self)).
///
/// Cheap to clone; clones share the application and the cookie jar. Requests are built with
/// [`get`](Self::get), [`post`](Self::post) and their siblings, and sent with
/// [`TestRequest::send`], which blocks the calling thread until the response is complete.
#[derive(Clone)]
pub struct TestClient {
    shared: Arc<Shared>,
    protocol: Protocol,
    cookies: Option<Arc<cookies::Jar>>,
    deadline: Duration,
    host: String,
    /// The peer address the dispatcher reports in `ConnectionInfo` (127.0.0.1:50000).
    peer: std::net::SocketAddr,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("protocol", &self.protocol)
            .field("cookies", &self.cookies.is_some())
            .field("deadline", &self.deadline)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// A client for `service`, speaking HTTP/1.1, with a cookie jar, `Host: localhost`, the
    /// dispatcher's default limits and the [`background_runtime`](weft_runtime::background_runtime)'s
    /// services.
    pub fn new(service: impl Service) -> TestClient {
        let mut config = DispatchConfig::default();
        config.runtime = Some(weft_runtime::background_runtime());
        TestClient::with_config(service, config)
    }

    /// A client for `service` whose connections are served with `config` (limits, error
    /// pages). Without `config.runtime`, the background runtime is given, so that handlers
    /// still have runtime services.
    pub fn with_config(service: impl Service, mut config: DispatchConfig) -> TestClient {
        if config.runtime.is_none() {
            config.runtime = Some(weft_runtime::background_runtime());
        }
        TestClient {
            shared: Arc::new(Shared {
                service: erase(service),
                config,
            }),
            protocol: Protocol::Http1,
            cookies: Some(Arc::default()),
            deadline: DEFAULT_DEADLINE,
            host: "localhost".to_owned(),
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 50_000)),
        }
    }

    /// This client speaking HTTP/2 (prior knowledge, cleartext) instead of HTTP/1.1; it keeps
    /// sharing the cookie jar with the clients it was cloned from. WebSocket handshakes stay
    /// on HTTP/1.1.
    pub fn http2(mut self) -> TestClient {
        self.protocol = Protocol::Http2;
        self
    }

    /// This client speaking HTTP/1.1 (the default).
    pub fn http1(mut self) -> TestClient {
        self.protocol = Protocol::Http1;
        self
    }

    /// This client without a cookie jar: `Set-Cookie` is ignored, no `Cookie` is sent but
    /// those a request adds itself.
    pub fn without_cookies(mut self) -> TestClient {
        self.cookies = None;
        self
    }

    /// This client with a cookie jar of its own, empty, no longer shared with its clones.
    pub fn with_new_cookie_jar(mut self) -> TestClient {
        self.cookies = Some(Arc::default());
        self
    }

    /// How long each request may take before the test fails (10 s by default).
    pub fn deadline(mut self, deadline: Duration) -> TestClient {
        self.deadline = deadline;
        self
    }

    /// The `Host` of requests that do not set one (`localhost` by default); over HTTP/2 it
    /// is the `:authority`.
    pub fn host(mut self, host: impl Into<String>) -> TestClient {
        self.host = host.into();
        self
    }

    /// The peer address of this client's connections, as the application sees it in
    /// [`ConnectionInfo`](weft_service::service::ConnectionInfo) (`127.0.0.1:50000` by
    /// default): to test what depends on the client's address, such as rate limits or
    /// trusted proxies.
    pub fn peer(mut self, peer: std::net::SocketAddr) -> TestClient {
        self.peer = peer;
        self
    }

    /// A `GET` request to `uri`: a path with an optional query (`/users?page=2`), or an
    /// absolute URI (`http://example.com/users`) whose authority becomes the `Host`.
    pub fn get(&self, uri: &str) -> TestRequest {
        self.request(Method::GET, uri)
    }

    /// A `POST` request.
    pub fn post(&self, uri: &str) -> TestRequest {
        self.request(Method::POST, uri)
    }

    /// A `PUT` request.
    pub fn put(&self, uri: &str) -> TestRequest {
        self.request(Method::PUT, uri)
    }

    /// A `PATCH` request.
    pub fn patch(&self, uri: &str) -> TestRequest {
        self.request(Method::PATCH, uri)
    }

    /// A `DELETE` request.
    pub fn delete(&self, uri: &str) -> TestRequest {
        self.request(Method::DELETE, uri)
    }

    /// A `HEAD` request: the response has the head of a `GET`, and no body.
    pub fn head(&self, uri: &str) -> TestRequest {
        self.request(Method::HEAD, uri)
    }

    /// An `OPTIONS` request (`*` asks about the server as a whole).
    pub fn options(&self, uri: &str) -> TestRequest {
        self.request(Method::OPTIONS, uri)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, uri: &str) -> TestRequest {
        TestRequest::new(self.clone(), method, uri)
    }

    /// Opens a WebSocket to `uri` (over HTTP/1.1), as
    /// [`self.get(uri).websocket()`](TestRequest::websocket) does; add headers to the
    /// handshake that way.
    ///
    /// # Panics
    /// If the application refuses the handshake.
    #[track_caller]
    pub fn websocket(&self, uri: &str) -> TestWebSocket {
        self.get(uri).websocket()
    }

    /// The value of cookie `name` in the jar, if it holds one.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.as_ref().and_then(|jar| jar.get(name))
    }

    /// Puts a cookie in the jar, as if the application had set it (path `/` unless it has
    /// one). Without a jar, nothing happens.
    pub fn add_cookie(&self, cookie: Cookie<'static>) {
        if let Some(jar) = &self.cookies {
            jar.add(cookie);
        }
    }

    /// Empties the jar (shared with this client's clones).
    pub fn clear_cookies(&self) {
        if let Some(jar) = &self.cookies {
            jar.clear();
        }
    }

    /// The `Cookie` field for a request to `path`, from the jar.
    fn cookie_header(&self, path: &str) -> Option<String> {
        self.cookies.as_ref().and_then(|jar| jar.header_for(path))
    }

    /// Keeps what a response to `target` set in the jar.
    fn store_cookies(&self, target: &str, headers: &HeaderMap) {
        if let Some(jar) = &self.cookies {
            let path = target.split('?').next().unwrap_or("/");
            jar.store(path, headers);
        }
    }
}
