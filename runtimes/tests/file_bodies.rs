//! File response bodies ([`Body::file`]) on the runtimes: a multi-MiB file arrives byte for
//! byte, a pipelined request after it is answered, and on the cleartext event loops (mio,
//! poll) and the threadpool the bytes went straight from the file to the socket
//! (`sendfile(2)` on Linux), which [`bytes_transmitted`] proves; the futures-io runtimes poll
//! the body in chunks instead.
//!
//! Servers listen on 127.0.0.1:0; every read is bounded by a timeout.
#![cfg_attr(
    not(any(
        feature = "mio",
        feature = "poll",
        feature = "threadpool",
        feature = "smol",
        feature = "tokio"
    )),
    allow(dead_code, unused_imports)
)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{Request, Response};
use weft_adapters::file::bytes_transmitted;
use weft_runtime::{ServerConfig, ServerHandle};
use weft_service::body::Body;
use weft_service::file::FileRegion;

/// The longest any read of a test waits.
const WAIT: Duration = Duration::from_secs(30);

/// Size of the file served: several sendfile calls and socket buffers' worth.
const FILE_LEN: usize = 6 * 1024 * 1024 + 123;

type Start = fn(ServerConfig, Service) -> std::io::Result<ServerHandle>;

/// The byte counter is shared by the whole process: tests that read it run one at a time.
fn counter_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A file of patterned bytes, removed when dropped.
struct TempFile {
    path: PathBuf,
    content: Vec<u8>,
}

impl TempFile {
    fn new(name: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("weft-{name}-{}", std::process::id()));
        let content: Vec<u8> = (0..FILE_LEN)
            .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
            .collect();
        std::fs::write(&path, &content).unwrap();
        TempFile { path, content }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `/file` answers the file as a [`Body::file`], anything else `hello`.
#[derive(Clone)]
struct Service(Arc<PathBuf>);

impl weft_service::service::Service for Service {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        let response = if request.uri().path() == "/file" {
            let file = File::open(&*self.0).expect("the test file opens");
            let len = file.metadata().expect("its metadata").len();
            let region = FileRegion::new(Arc::new(file), 0, len).expect("a region of it");
            Response::new(Body::file(region))
        } else {
            Response::new(Body::from("hello"))
        };
        std::future::ready(response)
    }
}

/// One response read off `reader`: its head lines and its body (by Content-Length).
fn read_response(reader: &mut BufReader<TcpStream>) -> (Vec<String>, Vec<u8>) {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a head line");
        assert!(!line.is_empty(), "the server closed mid-head");
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let length: usize = head
        .iter()
        .find_map(|line| line.strip_prefix("content-length: "))
        .expect("a content-length")
        .parse()
        .unwrap();
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the whole body");
    (head, body)
}

/// Serves the file on `start`, fetches it with a pipelined request behind it on one
/// connection, checks both answers, and returns how many bytes drivers sent from files
/// meanwhile.
fn serve_file_then_hello(start: Start) -> u64 {
    let file = TempFile::new("runtime-file");
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 2;
    config.drain_timeout = Duration::from_secs(5);
    let handle = start(config, Service(Arc::new(file.path.clone()))).expect("the server starts");
    let before = bytes_transmitted();
    let mut stream = TcpStream::connect(handle.local_addrs()[0]).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /file HTTP/1.1\r\nhost: a\r\n\r\nGET /hello HTTP/1.1\r\nhost: a\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let (head, body) = read_response(&mut reader);
    assert_eq!(head[0], "HTTP/1.1 200 OK");
    assert_eq!(body.len(), file.content.len());
    assert!(body == file.content, "the file arrived altered");
    let (head, body) = read_response(&mut reader);
    assert_eq!(
        head[0], "HTTP/1.1 200 OK",
        "the pipelined request is answered"
    );
    assert_eq!(body, b"hello");
    let sent = bytes_transmitted() - before;
    drop(reader);
    handle.shutdown();
    sent
}

/// A cleartext runtime that sends file bodies itself: the whole file went that way.
fn sent_from_the_file(start: Start) {
    let _lock = counter_lock();
    let sent = serve_file_then_hello(start);
    assert!(
        sent >= FILE_LEN as u64,
        "only {sent} of {FILE_LEN} bytes went straight from the file to the socket"
    );
}

/// A runtime that polls file bodies in chunks: nothing went straight from the file.
fn polled_in_chunks(start: Start) {
    let _lock = counter_lock();
    assert_eq!(serve_file_then_hello(start), 0);
}

#[cfg(feature = "mio")]
#[test]
fn mio_sends_a_file_body_from_the_file_and_pipelining_goes_on() {
    sent_from_the_file(weft_runtime::mio::start::<Service>);
}

#[cfg(feature = "poll")]
#[test]
fn poll_sends_a_file_body_from_the_file_and_pipelining_goes_on() {
    sent_from_the_file(weft_runtime::poll::start::<Service>);
}

#[cfg(feature = "threadpool")]
#[test]
fn threadpool_sends_a_file_body_from_the_file_and_pipelining_goes_on() {
    sent_from_the_file(weft_runtime::threadpool::start::<Service>);
}

#[cfg(feature = "smol")]
#[test]
fn smol_polls_a_file_body_in_chunks_and_pipelining_goes_on() {
    polled_in_chunks(weft_runtime::smol::start::<Service>);
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_polls_a_file_body_in_chunks_and_pipelining_goes_on() {
    polled_in_chunks(weft_runtime::tokio::start::<Service>);
}
