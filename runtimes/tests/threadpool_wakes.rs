//! Response bodies whose data arrives from another thread, on the threadpool runtime: every
//! byte must arrive, over cleartext and over TLS.
//!
//! Such a body's future is woken from another thread (a blocking-pool thread, a producer
//! thread), which then drops its waker: the wake-up and the drop of the application's last
//! waker can land at any moment relative to the worker deciding whether to park the
//! connection. A wake-up lost there left the connection "waiting for nothing", and the runtime
//! closed it with the body cut short. Many chunks, each a fresh chance for that race, make the
//! loss show in (nearly) every run; the tests assert only on the bytes received.
//!
//! Servers listen on 127.0.0.1:0; every read is bounded by a timeout.
#![cfg(feature = "threadpool")]

use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use weft_runtime::{ServerConfig, ServerHandle, TlsFiles};
use weft_service::body::{Body, BodySender};
use weft_service::runtime::RuntimeHandle;

/// The longest any read of a test waits.
const WAIT: Duration = Duration::from_secs(30);

/// Bytes per chunk of a streamed body.
const CHUNK: usize = 16 * 1024;

/// Bytes of every streamed body: 1536 chunks, each a chance to lose a wake-up.
const TOTAL: u64 = 24 * 1024 * 1024;

/// The byte at `offset` of every body: not periodic in the chunk size, so a chunk lost,
/// repeated or misplaced shows.
fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8 ^ (offset >> 16) as u8
}

/// The `len` bytes of the body from `offset`, cut from one body made once: producing a chunk
/// costs next to nothing, so wake-ups come as soon after a poll as they can, where they race
/// the worker's decision to park the connection.
fn chunk(offset: u64, len: usize) -> Bytes {
    static WHOLE: OnceLock<Bytes> = OnceLock::new();
    let whole = WHOLE.get_or_init(|| (0..TOTAL).map(pattern).collect());
    whole.slice(offset as usize..offset as usize + len)
}

/// A body whose every chunk is made on the runtime's blocking pool
/// ([`RuntimeHandle::spawn_blocking`]), as a file body read in chunks is: each chunk's future
/// is woken from a pool thread, which then drops its waker.
struct BlockingPoolChunks {
    runtime: RuntimeHandle,
    sent: u64,
    pending: Option<Pin<Box<dyn Future<Output = Bytes> + Send>>>,
}

impl http_body::Body for BlockingPoolChunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.sent >= TOTAL {
            return Poll::Ready(None);
        }
        let offset = this.sent;
        let len = CHUNK.min((TOTAL - offset) as usize);
        let pending = this.pending.get_or_insert_with(|| {
            Box::pin(this.runtime.spawn_blocking(move || chunk(offset, len)))
        });
        match pending.as_mut().poll(cx) {
            Poll::Ready(data) => {
                this.pending = None;
                this.sent += data.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= TOTAL
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(TOTAL - self.sent)
    }
}

/// Wakes the thread that created it.
struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Feeds the whole body into `sender` from the calling thread, a chunk whenever the receiver
/// has room (the channel wakes the connection from this thread with every chunk).
fn produce(mut sender: BodySender) {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut offset = 0;
    while offset < TOTAL {
        // Bounded: the connection reads the body, or drops it (which gives room too).
        while sender.poll_capacity(&mut cx).is_pending() {
            thread::park_timeout(WAIT);
        }
        let len = CHUNK.min((TOTAL - offset) as usize);
        if !sender.send_data(chunk(offset, len)) {
            return;
        }
        offset += len as u64;
    }
    sender.finish();
}

/// `/pool`: a body made on the blocking pool; `/thread`: a body fed by a thread of its own.
async fn app(request: Request<Body>) -> Response<Body> {
    let body = if request.uri().path() == "/thread" {
        let (sender, body) = Body::channel_with_length(2 * CHUNK, Some(TOTAL));
        thread::spawn(move || produce(sender));
        body
    } else {
        Body::new(BlockingPoolChunks {
            runtime: RuntimeHandle::current(),
            sent: 0,
            pending: None,
        })
    };
    Response::new(body)
}

/// Starts the threadpool runtime on 127.0.0.1:0 with two workers, over TLS with `tls`.
fn start(tls: Option<TlsFiles>) -> ServerHandle {
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 2;
    config.handle_signals = false;
    config.drain_timeout = Duration::from_secs(5);
    config.tls = tls;
    weft_runtime::threadpool::start(config, app).expect("the server starts")
}

/// Sends `GET path` with `connection: close` and reads the response to the end of the stream;
/// returns its head and how many body bytes arrived, having checked each against the pattern.
fn fetch(mut stream: impl Read + Write, path: &str) -> (String, u64) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut reader = BufReader::with_capacity(CHUNK, stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).expect("a head within WAIT");
        assert!(read > 0, "the connection closed inside the head: {head:?}");
        head.push_str(&line.to_ascii_lowercase());
        if line == "\r\n" {
            break;
        }
    }
    let mut received = 0u64;
    let mut buffer = vec![0; CHUNK];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            // A TLS peer that closes without close_notify: the end, possibly cut short.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(error) => panic!("reading the body after {received} bytes: {error}"),
        };
        for (i, &byte) in buffer[..read].iter().enumerate() {
            let offset = received + i as u64;
            assert_eq!(byte, pattern(offset), "wrong byte at {offset}");
        }
        received += read as u64;
    }
    (head, received)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

fn assert_whole(path: &str, (head, received): (String, u64)) {
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{path}: {head}");
    assert!(
        head.contains(&format!("\r\ncontent-length: {TOTAL}\r\n")),
        "{path}: {head}"
    );
    assert_eq!(received, TOTAL, "{path}: the body was cut short");
}

#[test]
fn threadpool_bodies_fed_from_other_threads_arrive_whole_over_cleartext() {
    let server = start(None);
    let addr = server.local_addrs()[0];
    for path in ["/pool", "/thread", "/pool", "/thread"] {
        assert_whole(path, fetch(connect(addr), path));
    }
    server.shutdown();
    server.join().unwrap();
}

/// A self-signed certificate for `localhost` as PEM files, and a client trusting it.
struct Tls {
    dir: std::path::PathBuf,
    files: TlsFiles,
    client: Arc<rustls::ClientConfig>,
}

impl Tls {
    fn new() -> Tls {
        let dir = std::env::temp_dir().join(format!("weft-pool-wakes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, certified.cert.pem()).unwrap();
        std::fs::write(&files.key, certified.signing_key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certified.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Tls {
            dir,
            files,
            client: Arc::new(client),
        }
    }

    fn connect(&self, addr: SocketAddr) -> impl Read + Write {
        let name = "localhost".try_into().unwrap();
        let tls = rustls::ClientConnection::new(Arc::clone(&self.client), name).unwrap();
        rustls::StreamOwned::new(tls, connect(addr))
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn threadpool_bodies_fed_from_other_threads_arrive_whole_over_tls() {
    let tls = Tls::new();
    let server = start(Some(tls.files.clone()));
    let addr = server.local_addrs()[0];
    for path in ["/pool", "/thread", "/pool", "/thread"] {
        assert_whole(path, fetch(tls.connect(addr), path));
    }
    server.shutdown();
    server.join().unwrap();
}
