//! File bodies on HTTP/1.1: handed to a driver that sends them itself
//! ([`Dispatcher::poll_transmit_file`]) when it said it can, polled in chunks otherwise.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Instant;

use http::{Request, Response};
use weft_service::body::Body;
use weft_service::file::FileRegion;
use weft_service::service::ConnectionInfo;

use super::{DispatchConfig, Dispatcher};

/// A file of `len` patterned bytes, removed when dropped.
struct TempFile {
    path: PathBuf,
    content: Vec<u8>,
}

impl TempFile {
    fn new(name: &str, len: usize) -> Arc<Self> {
        let path =
            std::env::temp_dir().join(format!("weft-dispatch-{name}-{}", std::process::id()));
        let content: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        Arc::new(TempFile { path, content })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A dispatcher whose service answers every request with the whole of `file`.
fn serving(file: &Arc<TempFile>, info: ConnectionInfo, transmit: bool) -> Dispatcher {
    let file = Arc::clone(file);
    let service = move |_request: Request<Body>| {
        let opened = Arc::new(File::open(&file.path).unwrap());
        let region = FileRegion::new(opened, 0, file.content.len() as u64).unwrap();
        std::future::ready(Response::new(Body::file(region)))
    };
    let mut dispatcher = Dispatcher::new(
        Arc::new(service),
        DispatchConfig::default(),
        info,
        Instant::now(),
    );
    dispatcher.set_transmit_files(transmit);
    dispatcher
}

/// What a driver writes for `input`: ordinary output, and file regions "sent" by reading them
/// (in pieces of at most `piece` bytes, as a socket taking part of a sendfile would). Returns
/// the bytes written and how many of them came from file regions.
fn drive(dispatcher: &mut Dispatcher, input: &[u8], piece: usize) -> (Vec<u8>, usize) {
    let now = Instant::now();
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(dispatcher.receive(now, input), input.len());
    let mut output = Vec::new();
    let mut direct = 0;
    for _ in 0..10_000 {
        let mut moved = dispatcher.poll(&mut cx);
        while let Some(bytes) = dispatcher.poll_transmit(now) {
            output.extend_from_slice(&bytes);
            moved = true;
        }
        if let Some(region) = dispatcher.poll_transmit_file(now) {
            let chunk = region.read_chunk(piece).unwrap();
            output.extend_from_slice(&chunk);
            direct += chunk.len();
            dispatcher.file_sent(now, chunk.len());
            moved = true;
        }
        if !moved {
            break;
        }
    }
    (output, direct)
}

fn expected_response(file: &TempFile) -> Vec<u8> {
    let mut expected = format!("content-length: {}\r\n", file.content.len()).into_bytes();
    expected.extend_from_slice(b"\r\n");
    expected.extend_from_slice(&file.content);
    expected
}

const GET: &[u8] = b"GET /f HTTP/1.1\r\nhost: a\r\n\r\n";

#[test]
fn a_file_body_goes_to_the_driver_after_its_head_and_pipelining_goes_on() {
    let file = TempFile::new("direct", 150_000);
    let mut dispatcher = serving(&file, ConnectionInfo::default(), true);
    let (output, direct) = drive(&mut dispatcher, &[GET, GET].concat(), 40_000);
    assert_eq!(
        direct,
        2 * file.content.len(),
        "both bodies went out as file regions"
    );
    let one = expected_response(&file);
    let first = output
        .windows(one.len())
        .position(|w| w == one)
        .expect("first response");
    let rest = &output[first + one.len()..];
    assert!(
        rest.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "the pipelined request is answered"
    );
    assert!(rest.ends_with(&one));
    assert!(!dispatcher.is_closed());
}

#[test]
fn without_the_driver_saying_so_a_file_body_is_polled_in_chunks() {
    let file = TempFile::new("polled", 150_000);
    let mut dispatcher = serving(&file, ConnectionInfo::default(), false);
    let (output, direct) = drive(&mut dispatcher, GET, usize::MAX);
    assert_eq!(direct, 0);
    assert!(output.ends_with(&expected_response(&file)));
}

#[test]
fn a_head_request_gets_the_length_and_no_file_region() {
    let file = TempFile::new("head", 1000);
    let mut dispatcher = serving(&file, ConnectionInfo::default(), true);
    let (output, direct) = drive(&mut dispatcher, b"HEAD /f HTTP/1.1\r\nhost: a\r\n\r\n", 100);
    assert_eq!(direct, 0);
    let output = String::from_utf8(output).unwrap();
    assert!(output.ends_with("content-length: 1000\r\n\r\n"), "{output}");
}

#[test]
fn over_tls_a_file_body_is_polled_whatever_the_driver_says() {
    let file = TempFile::new("tls", 100_000);
    let mut info = ConnectionInfo::default();
    info.tls = true;
    let mut dispatcher = serving(&file, info, true);
    let (output, direct) = drive(&mut dispatcher, GET, 100);
    assert_eq!(direct, 0);
    assert!(output.ends_with(&expected_response(&file)));
}

#[test]
fn a_failed_file_cuts_the_response_short_and_closes() {
    let file = TempFile::new("failed", 100_000);
    let mut dispatcher = serving(&file, ConnectionInfo::default(), true);
    let now = Instant::now();
    dispatcher.receive(now, GET);
    dispatcher.poll(&mut Context::from_waker(Waker::noop()));
    while dispatcher.poll_transmit(now).is_some() {}
    let region = dispatcher.poll_transmit_file(now).expect("a file region");
    dispatcher.file_sent(now, 10);
    let rest = dispatcher.poll_transmit_file(now).expect("the rest of it");
    assert_eq!((rest.offset(), rest.len()), (10, region.len() - 10));
    dispatcher.file_failed(&std::io::Error::other("the file changed"));
    assert!(dispatcher.poll_transmit_file(now).is_none());
    assert!(dispatcher.is_closed());
}
