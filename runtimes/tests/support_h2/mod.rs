//! What the HTTP/2 runtime suite runs against each server: an application with the routes of
//! `weft echo` that the HTTP/2 clients use (so the Python clients of `tests/h2/` run against
//! it unchanged), a server under test, a certificate, and the real clients ([`clients`]).
//!
//! Every wait is bounded: a server that stops answering fails a test instead of hanging it.

pub(crate) mod certificate;
pub(crate) mod clients;

pub(crate) use certificate::TestCertificate;

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use weft_runtime::{ServerConfig, ServerHandle, TlsFiles};
use weft_service::body::Body;
use weft_service::service::Service;

/// The longest a server may take to stop once asked to.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(20);

/// A runtime's entry point, as every runtime module has it.
pub(crate) type Start = fn(ServerConfig, H2App) -> io::Result<ServerHandle>;

/// The body of `/plaintext`.
pub(crate) const HELLO: &str = "Hello, World!";

/// The application, with `weft echo`'s routes as far as the HTTP/2 clients use them.
///
/// | route | answer |
/// |---|---|
/// | `/plaintext` | `Hello, World!` as `text/plain`, known length |
/// | `/stream?chunks=N&size=S` | N pieces of S bytes (byte `k` is `b'a' + k % 26`), no length announced |
/// | anything else | the request body streamed back as it arrives, with its `content-type` |
#[derive(Clone, Copy, Default)]
pub(crate) struct H2App;

impl Service for H2App {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        // Every answer is ready at once: the bodies stream on their own.
        std::future::ready(answer(request))
    }
}

fn answer(request: Request<Body>) -> Response<Body> {
    match request.uri().path() {
        "/plaintext" => {
            let mut response = Response::new(Body::full(HELLO));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
        "/stream" => stream(request.uri().query().unwrap_or("")),
        _ => echo(request),
    }
}

/// `/stream`: every piece is queued at once (the largest a test asks for is 1 MiB), and the
/// connection takes them as flow control lets it.
fn stream(query: &str) -> Response<Body> {
    let chunks = param(query, "chunks").unwrap_or(8);
    let size = param(query, "size").unwrap_or(1024);
    if size == 0 || chunks.saturating_mul(size) > 64 * 1024 * 1024 {
        let mut response = Response::new(Body::full("bad /stream parameters"));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    }
    let (mut sender, body) = Body::channel(1);
    let whole = clients::pattern(chunks * size);
    for piece in whole.chunks(size) {
        sender.send_data(piece.to_vec().into());
    }
    sender.finish();
    Response::new(body)
}

/// Streams the request body back as it arrives, with its content type.
fn echo(request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let mut response = Response::new(Body::new(body));
    if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, content_type.clone());
    }
    response
}

/// A decimal query parameter.
fn param(query: &str, name: &str) -> Option<usize> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
}

/// A server under test, on 127.0.0.1 with an OS-chosen port.
pub(crate) struct H2Server {
    pub(crate) addr: SocketAddr,
    handle: Option<ServerHandle>,
}

impl H2Server {
    /// Starts `start` with 2 workers, no signal handling and a 5 s drain deadline, serving TLS
    /// with `tls` when given.
    pub(crate) fn start(start: Start, tls: Option<TlsFiles>) -> H2Server {
        let mut config = ServerConfig::new(["127.0.0.1:0".parse().expect("an address")]);
        config.workers = 2;
        config.handle_signals = false;
        config.drain_timeout = Duration::from_secs(5);
        config.tls = tls;
        let handle = start(config, H2App).expect("the server starts");
        H2Server {
            addr: handle.local_addrs()[0],
            handle: Some(handle),
        }
    }

    /// `http://ADDR{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts a graceful shutdown without waiting for it.
    pub(crate) fn begin_shutdown(&self) {
        self.handle.as_ref().expect("still running").shutdown();
    }

    /// Shuts down (if not begun yet) and waits for the server to stop, at most [`STOP_WAIT`].
    pub(crate) fn stop(mut self) {
        let handle = self.handle.take().expect("still running");
        handle.shutdown();
        let (done, joined) = mpsc::channel();
        thread::spawn(move || {
            let _ = done.send(handle.join());
        });
        match joined.recv_timeout(STOP_WAIT) {
            Ok(result) => result.expect("the server stops cleanly"),
            Err(_) => panic!("the server did not stop within {STOP_WAIT:?} of shutdown"),
        }
    }
}
