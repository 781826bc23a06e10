//! What the runtime suite runs against each server: a small application, a blocking HTTP/1.1
//! client over `std::net` (the core's client role parses the responses), and `curl`.
//!
//! Every wait here is bounded by [`WAIT`]: a server that stops answering fails a test instead
//! of hanging it.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use weft_core::Limits;
use weft_core::h1::{BodySize, ClientConnection, ClientEvent};
use weft_runtime::{ServerConfig, ServerHandle};
use weft_service::body::Body;
use weft_service::service::Service;

/// The longest any single step of a test waits for the server.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A runtime's entry point, as every runtime module has it.
pub(crate) type Start = fn(ServerConfig, TestApp) -> io::Result<ServerHandle>;

/// The body of `/hello`.
pub(crate) const HELLO: &str = "Hello, World!";

/// The test application.
///
/// | route | answer |
/// |---|---|
/// | `/hello` | `Hello, World!` as `text/plain`, known length |
/// | `/echo` | the request body streamed back as it arrives (never collected), with its Content-Type |
/// | `/slow?ms=N` | `slept` after N ms, on a timer that works on any runtime |
/// | `/stream?n=N` | N chunks `chunk {i}\n`, no length announced |
/// | `/panic` | the handler's future panics |
/// | `/panic-in-call` | `Service::call` itself panics, before it returns a future |
/// | `CONNECT host:port` | a tunnel ([`OnUpgrade`](weft_service::upgrade::OnUpgrade)) to a fake origin: reads one HTTP request through it, answers `tunneled to host:port` and closes |
/// | `/target` | the request's shape: `uri|host|scheme|authority|form` ([`RequestTarget`](weft_service::request::RequestTarget)) |
/// | `/huge` | 1 GiB of `x` streamed in 64 KiB pieces, no length announced; the bytes the server took from it are counted ([`TestApp::huge_bytes_produced`]) |
/// | `/sized?bytes=N` | N bytes of `x` in one piece, length announced |
/// | anything else | `404` |
#[derive(Clone, Default)]
pub(crate) struct TestApp {
    slow_started: Arc<Counter>,
    huge_produced: Arc<AtomicU64>,
    huge_dropped: Arc<Counter>,
}

impl TestApp {
    /// Blocks until the server dropped `n` `/huge` bodies (true: it gave up on them), or
    /// [`WAIT`] passes.
    pub(crate) fn wait_for_huge_bodies_dropped(&self, n: usize) -> bool {
        self.huge_dropped.wait_for(n, WAIT)
    }

    /// Bytes of `/huge` bodies the server has taken so far.
    pub(crate) fn huge_bytes_produced(&self) -> u64 {
        self.huge_produced.load(Ordering::SeqCst)
    }

    /// Blocks until `/slow` handlers have started `n` times (true), or [`WAIT`] passes.
    pub(crate) fn wait_for_slow_requests(&self, n: usize) -> bool {
        self.slow_started.wait_for(n, WAIT)
    }
}

impl Service for TestApp {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        if request.uri().path() == "/panic-in-call" {
            panic!("deliberate panic in TestApp's Service::call (/panic-in-call)");
        }
        let app = self.clone();
        async move { app.answer(request).await }
    }
}

impl TestApp {
    async fn answer(self, request: Request<Body>) -> Response<Body> {
        if request.method() == Method::CONNECT {
            return tunnel(request);
        }
        let query = request.uri().query().unwrap_or("").to_owned();
        match request.uri().path() {
            "/hello" => text(StatusCode::OK, HELLO),
            "/echo" => echo(request),
            "/slow" => {
                self.slow_started.increment();
                sleep(Duration::from_millis(param(&query, "ms"))).await;
                text(StatusCode::OK, "slept")
            }
            "/stream" => stream(param(&query, "n")),
            "/sized" => {
                let len = usize::try_from(param(&query, "bytes")).unwrap_or(usize::MAX);
                Response::new(Body::from(Bytes::from(vec![b'x'; len])))
            }
            "/huge" => Response::new(Body::new(Huge {
                left: HUGE_LEN,
                produced: Arc::clone(&self.huge_produced),
                dropped: Arc::clone(&self.huge_dropped),
            })),
            "/panic" => panic!("deliberate panic in TestApp's /panic handler"),
            "/connection" => connection_info(&request),
            "/target" => request_shape(&request),
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// What the runtime said about the connection: `tls=true alpn=http/1.1`.
fn connection_info(request: &Request<Body>) -> Response<Body> {
    let info = request
        .extensions()
        .get::<weft_service::service::ConnectionInfo>();
    let tls = info.is_some_and(|i| i.tls);
    let alpn = info.and_then(|i| i.alpn.as_deref()).map_or_else(
        || "none".to_owned(),
        |a| String::from_utf8_lossy(a).into_owned(),
    );
    let mut response = Response::new(Body::from(format!("tls={tls} alpn={alpn}")));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Accepts a CONNECT and plays the origin behind it on a thread of its own (so on no runtime
/// in particular): one HTTP/1.1 request in, one response out, then the tunnel closes.
fn tunnel(mut request: Request<Body>) -> Response<Body> {
    use weft_service::upgrade::OnUpgrade;
    let Some(on_upgrade) = OnUpgrade::from_request(&mut request) else {
        return text(StatusCode::BAD_REQUEST, "no upgrade handle");
    };
    let origin = request.uri().to_string();
    thread::spawn(move || {
        block_on(async move {
            let Ok(mut io) = on_upgrade.await else { return };
            let mut received = Vec::new();
            while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                match io.read().await {
                    Some(bytes) => received.extend_from_slice(&bytes),
                    None => return,
                }
            }
            let body = format!("tunneled to {origin}");
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            if io.write(bytes::Bytes::from(reply)).await.is_ok() {
                io.close();
            }
        });
    });
    Response::new(Body::empty())
}

/// Runs `future` on this thread, giving up (dropping it) after [`WAIT`] twice over.
fn block_on(future: impl Future<Output = ()>) {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = std::time::Instant::now() + 2 * WAIT;
    while std::time::Instant::now() < deadline {
        if let Poll::Ready(()) = future.as_mut().poll(&mut cx) {
            return;
        }
        thread::park_timeout(WAIT);
    }
}

/// `uri|host|scheme|authority|form`: how the request reached the application, which must not
/// depend on the protocol.
fn request_shape(request: &Request<Body>) -> Response<Body> {
    use weft_service::request::RequestTarget;
    let host = request
        .headers()
        .get_all(http::header::HOST)
        .iter()
        .map(|value| value.to_str().unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(",");
    let text = match request.extensions().get::<RequestTarget>() {
        Some(target) => format!(
            "{}|{host}|{}|{}|{:?}",
            request.uri(),
            target.scheme(),
            target.authority().as_ref().map_or("-", |a| a.as_str()),
            target.form()
        ),
        None => format!("{}|{host}|no RequestTarget", request.uri()),
    };
    let mut response = Response::new(Body::from(text));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A self-signed certificate for `localhost`, written as PEM files in a fresh temporary folder.
pub(crate) struct TestCertificate {
    pub(crate) dir: std::path::PathBuf,
    pub(crate) files: weft_runtime::TlsFiles,
}

impl TestCertificate {
    pub(crate) fn new() -> TestCertificate {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("weft-tls-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = weft_runtime::TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, certified.cert.pem()).unwrap();
        std::fs::write(&files.key, certified.signing_key.serialize_pem()).unwrap();
        TestCertificate { dir, files }
    }
}

impl Drop for TestCertificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Streams the request body back: the response body *is* the request body, so every piece is
/// sent as it arrives and nothing is collected.
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

/// `n` pieces of unknown total length (chunked on HTTP/1.1, close-delimited on HTTP/1.0).
fn stream(n: u64) -> Response<Body> {
    let (mut sender, body) = Body::channel(1);
    for i in 0..n {
        sender.send_data(stream_chunk(i).into());
    }
    sender.finish();
    Response::new(body)
}

/// The length of `/huge`: far more than any buffer between the server and a client.
const HUGE_LEN: u64 = 1 << 30;

/// The body of `/huge`: always ready, counting what is taken from it and when it is dropped.
struct Huge {
    left: u64,
    produced: Arc<AtomicU64>,
    dropped: Arc<Counter>,
}

impl Drop for Huge {
    fn drop(&mut self) {
        self.dropped.increment();
    }
}

impl http_body::Body for Huge {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        const PIECE: Bytes = Bytes::from_static(&[b'x'; 64 * 1024]);
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let len = PIECE
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.left -= len as u64;
        self.produced.fetch_add(len as u64, Ordering::SeqCst);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(PIECE.slice(..len)))))
    }
}

/// Piece `i` of `/stream`.
pub(crate) fn stream_chunk(i: u64) -> String {
    format!("chunk {i}\n")
}

/// The whole body of `/stream?n=N`.
pub(crate) fn stream_body(n: u64) -> String {
    (0..n).map(stream_chunk).collect()
}

/// A runtime-neutral sleep: a thread sleeps, then finishes a one-shot body channel.
async fn sleep(duration: Duration) {
    let (sender, done) = Body::channel(1);
    thread::spawn(move || {
        thread::sleep(duration);
        sender.finish();
    });
    let _ = done.collect(0).await;
}

/// A decimal query parameter, 0 when absent.
fn param(query: &str, name: &str) -> u64 {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// A count that threads can wait on.
#[derive(Default)]
struct Counter {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Counter {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn increment(&self) {
        *self.lock() += 1;
        self.changed.notify_all();
    }

    fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |count| *count < n)
            .unwrap_or_else(PoisonError::into_inner);
        *guard >= n
    }
}

/// A server under test.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) app: TestApp,
    handle: Option<ServerHandle>,
}

impl TestServer {
    /// Starts `start` on 127.0.0.1:0 with 2 workers, no signal handling, a 5 s drain deadline
    /// (so a failing test cannot hang in the handle's drop), then `configure`.
    pub(crate) fn start(start: Start, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
        config.workers = 2;
        config.handle_signals = false;
        config.drain_timeout = Duration::from_secs(5);
        configure(&mut config);
        let app = TestApp::default();
        let handle = start(config, app.clone()).expect("the server starts");
        TestServer {
            addr: handle.local_addrs()[0],
            app,
            handle: Some(handle),
        }
    }

    /// Starts with the default configuration of [`start`](Self::start).
    pub(crate) fn with_defaults(start: Start) -> TestServer {
        TestServer::start(start, |_| {})
    }

    /// A client connected to this server.
    pub(crate) fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// `http://ADDR{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts a graceful shutdown.
    pub(crate) fn begin_shutdown(&self) {
        self.handle.as_ref().expect("still running").shutdown();
    }

    /// Shuts down (if not begun yet) and waits for the server to stop, at most `WAIT`.
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

/// A response as a test sees it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    /// Whether the server lets the connection persist after this response.
    pub(crate) keep_alive: bool,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    /// Asserts a `200` with `body`.
    pub(crate) fn assert_ok(&self, body: &str) {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        assert_eq!(self.text(), body, "{self:?}");
    }
}

/// A blocking HTTP/1.1 client: requests written by the core's client role (so several can go
/// out in one write), responses parsed by it. Every read and write is bounded by [`WAIT`].
pub(crate) struct Client {
    pub(crate) stream: TcpStream,
    conn: ClientConnection,
    addr: SocketAddr,
    /// Bytes read from the socket that the connection has not taken yet.
    unread: Vec<u8>,
    eof: bool,
}

impl Client {
    pub(crate) fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the server");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut limits = Limits::default();
        limits.max_body_size = u64::MAX;
        Client {
            stream,
            conn: ClientConnection::new(limits),
            addr,
            unread: Vec::new(),
            eof: false,
        }
    }

    fn uri(&self, path: &str) -> Uri {
        format!("http://{}{path}", self.addr).parse().unwrap()
    }

    /// Queues a request with a known-length body (none when `body` is empty).
    pub(crate) fn queue(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let uri = self.uri(path);
        self.conn
            .send_request(
                &method,
                &uri,
                &header_map(headers),
                BodySize::Known(body.len() as u64),
            )
            .unwrap();
        if !body.is_empty() {
            self.conn.send_data(body).unwrap();
        }
        self.conn.finish().unwrap();
    }

    /// Queues a chunked request whose body is `pieces`, one chunk each.
    pub(crate) fn queue_chunked(&mut self, method: Method, path: &str, pieces: &[&[u8]]) {
        let uri = self.uri(path);
        self.conn
            .send_request(&method, &uri, &HeaderMap::new(), BodySize::Unknown)
            .unwrap();
        for piece in pieces {
            self.conn.send_data(piece).unwrap();
        }
        self.conn.finish().unwrap();
    }

    /// Queues the head of a request whose `length`-byte body is sent later, by
    /// [`send_body`](Self::send_body) or by the caller on the socket.
    pub(crate) fn queue_head(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        length: u64,
    ) {
        let uri = self.uri(path);
        self.conn
            .send_request(&method, &uri, &header_map(headers), BodySize::Known(length))
            .unwrap();
    }

    /// Writes the whole body of the request whose head [`queue_head`](Self::queue_head) queued.
    pub(crate) fn send_body(&mut self, body: &[u8]) {
        self.conn.send_data(body).unwrap();
        self.conn.finish().unwrap();
        self.flush();
    }

    /// Writes everything queued, in one write.
    pub(crate) fn flush(&mut self) {
        if let Some(bytes) = self.conn.poll_transmit() {
            self.stream.write_all(&bytes).expect("write the request");
        }
    }

    pub(crate) fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.queue(method, path, headers, body);
        self.flush();
        self.read_response()
    }

    pub(crate) fn get(&mut self, path: &str) -> Reply {
        self.request(Method::GET, path, &[], b"")
    }

    /// Reads the next response whole.
    pub(crate) fn read_response(&mut self) -> Reply {
        let mut body = Vec::new();
        let mut reply = self.read_response_with(|data| body.extend_from_slice(data));
        reply.body = body;
        reply
    }

    /// Reads the next response, handing its body to `on_data` piece by piece (the returned
    /// reply's body is empty).
    pub(crate) fn read_response_with(&mut self, on_data: impl FnMut(&[u8])) -> Reply {
        match self.read_until(false, on_data) {
            Ok(reply) => reply,
            Err(status) => unreachable!("interim {status} is skipped"),
        }
    }

    /// Reads the next interim (`1xx`) response, failing the test if a final one comes first.
    pub(crate) fn read_informational(&mut self) -> StatusCode {
        match self.read_until(true, |_| {}) {
            Ok(reply) => panic!("expected an interim response, got {reply:?}"),
            Err(status) => status,
        }
    }

    /// Reads a final response (`Ok`), or when `interim` is set, stops at an interim one (`Err`).
    fn read_until(
        &mut self,
        interim: bool,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Reply, StatusCode> {
        let mut reply: Option<Reply> = None;
        let mut buf = vec![0; 64 * 1024];
        loop {
            let taken = self.conn.receive(&self.unread);
            self.unread.drain(..taken);
            let mut progressed = taken > 0;
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                match event {
                    ClientEvent::Informational(head) if interim => return Err(head.status),
                    ClientEvent::Informational(_) => {}
                    ClientEvent::Response(head) => {
                        reply = Some(Reply {
                            status: head.status,
                            version: head.version,
                            headers: head.headers,
                            body: Vec::new(),
                            keep_alive: head.keep_alive,
                        })
                    }
                    ClientEvent::Data(data) => on_data(&data),
                    ClientEvent::Trailers(_) => {}
                    ClientEvent::EndOfMessage => {
                        return Ok(reply.expect("a response head before its end"));
                    }
                    ClientEvent::Error(error) => panic!("the server broke HTTP/1.1: {error}"),
                    other => panic!("unexpected client event {other:?}"),
                }
            }
            if progressed {
                continue;
            }
            assert!(
                self.unread.is_empty(),
                "the client connection takes no more input and yields no event"
            );
            assert!(
                !self.eof,
                "the server closed the connection before the response was complete \
                 (head received: {})",
                reply.is_some()
            );
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    self.conn.receive_eof();
                }
                Ok(n) => self.unread.extend_from_slice(&buf[..n]),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => panic!("no complete response within {WAIT:?}: {error}"),
            }
        }
    }

    /// Asserts that the server closes the connection, sending nothing more, within [`WAIT`].
    pub(crate) fn assert_closed_by_server(&mut self) {
        assert_closed(&mut self.stream, WAIT);
    }
}

/// Asserts that the peer closes `stream` (EOF or reset) within `wait`, sending nothing more.
pub(crate) fn assert_closed(stream: &mut TcpStream, wait: Duration) {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0; 1024];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "expected the server to close, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(error) if is_reset(&error) => {}
        Err(error) => panic!("the server did not close the connection within {wait:?}: {error}"),
    }
}

/// Whether `error` says the peer closed or reset the connection.
pub(crate) fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// What a `curl` run printed.
#[derive(Debug)]
pub(crate) struct CurlOutput {
    pub(crate) stdout: Vec<u8>,
    /// With `-v`, the request and response heads (`> ` and `< ` lines).
    pub(crate) stderr: String,
}

impl CurlOutput {
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.stdout).expect("UTF-8 output")
    }
}

/// Runs `curl` with `args`, feeding it `stdin`; fails the test when curl fails. `curl` must
/// be installed (`scripts/test` installs it).
pub(crate) fn curl(args: &[&str], stdin: &[u8]) -> CurlOutput {
    let mut child = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl is installed (scripts/test installs it)");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = thread::spawn(move || {
        // curl may not read stdin at all; a broken pipe is then expected.
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("curl runs");
    feeder.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "curl {args:?} failed ({}): {stderr}",
        output.status
    );
    CurlOutput {
        stdout: output.stdout,
        stderr,
    }
}

/// Open-file limit of this process (soft), when the OS tells.
pub(crate) fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A byte pattern with a period that no buffer size in play divides, so a piece out of place
/// (lost, repeated or reordered) cannot match: byte `k` of a stream is `PATTERN[k % PERIOD]`.
pub(crate) struct Pattern {
    /// One period, followed by the first `MAX_PIECE` bytes again, so any piece of at most
    /// `MAX_PIECE` bytes is one contiguous slice.
    bytes: Vec<u8>,
}

impl Pattern {
    const PERIOD: usize = 1_000_003;
    pub(crate) const MAX_PIECE: usize = 64 * 1024;

    pub(crate) fn new() -> Pattern {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut bytes: Vec<u8> = (0..Self::PERIOD)
            .map(|_| {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        bytes.extend_from_within(..Self::MAX_PIECE);
        Pattern { bytes }
    }

    /// The `len` bytes (at most `MAX_PIECE`) of the stream starting at `offset`.
    pub(crate) fn piece(&self, offset: u64, len: usize) -> &[u8] {
        assert!(len <= Self::MAX_PIECE);
        let start = (offset % Self::PERIOD as u64) as usize;
        &self.bytes[start..start + len]
    }

    /// Whether `data` is the stream's bytes from `offset` on.
    pub(crate) fn matches(&self, offset: u64, data: &[u8]) -> bool {
        data.chunks(Self::MAX_PIECE).enumerate().all(|(i, piece)| {
            piece == self.piece(offset + (i * Self::MAX_PIECE) as u64, piece.len())
        })
    }
}
