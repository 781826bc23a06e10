//! Instruction counts of the hot paths under valgrind (callgrind, through gungraun, the
//! maintained successor of iai-callgrind), each next to a peer doing the same job: a count does
//! not move when other work loads the machine, so a change of a few percent shows.
//!
//! Run by `benches/instructions.sh`, which installs the gungraun runner when missing and prints
//! a table of instructions and ratios. Every benchmark runs one operation, once: what its
//! fixture prepares (a connection that already served one exchange, a decoder that already
//! read one frame, ...) is not counted, so the figures are those of a connection in steady
//! state. The operation's output is dropped inside the count (that is part of its cost, on
//! both sides); the fixture is handed back, so that dropping it (a whole connection, a decoder
//! and its table) is not counted. Pairs are named `<workload>_weft` and `<workload>_<peer>` with the same case id.
//!
//! - `head`: one whole keep-alive exchange of the 734-byte browser request (as `h1.rs`'s
//!   `head/weft_server`) against httparse's parse of it.
//! - `pipe16`: 16 `GET /plaintext` received in one buffer, each answered with `Hello, World!`,
//!   the 16 answers taken as one output; against httparse parsing the 16 heads.
//! - `frame`: decoding one masked client frame of 125 bytes or 16 KiB already in memory (the
//!   header checked, the payload unmasked into the sink and handed out as `Bytes`); against
//!   tungstenite's `FrameSocket::read` of a frame already in its buffer (header parse, payload
//!   split off as `Bytes`, **not unmasked**: tungstenite unmasks in `WebSocket`, see `ws.rs`).
//! - `hpack`: decoding a typical request header block (the browser request's fields), on a
//!   fresh decoder (`first`: literals, Huffman, table insertions) and again on a decoder that
//!   has seen it (`repeat`: indexed fields); against the `hpack` crate and h2's codec (which also
//!   reads a 9-byte frame header and builds a `HeaderMap`).
//!
//! `cargo test` runs bench targets too (`--all-targets`): without cargo bench's `--bench`
//! argument the binary exits at once, so a test run neither needs valgrind nor counts anything.

// gungraun's macros generate public modules, functions and constants without documentation.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Cursor;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use gungraun::{LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use tungstenite::protocol::frame::FrameSocket;
use weft_benches::{BROWSER_GET, EMPTY_204, connection, take_bodiless_request};
use weft_core::Limits;
use weft_core::h1::{BodySize, ServerConnection};
use weft_core::hpack::{Decoder, Encoder, HeaderField};
use weft_core::ws::frame::{Decoded, FrameDecoder, OpCode, encode_frame};

// ----- head: one keep-alive exchange of the browser request -----

/// A keep-alive connection (no `Date`, as in `h1.rs`) that has served the browser request once,
/// so its buffers are allocated.
struct HeadFixture {
    conn: ServerConnection,
    now: Instant,
    empty: HeaderMap,
}

fn head_fixture() -> HeadFixture {
    let now = Instant::now();
    let mut fixture = HeadFixture {
        conn: ServerConnection::new(Limits::default(), now),
        now,
        empty: HeaderMap::new(),
    };
    assert_eq!(head_exchange(&mut fixture), EMPTY_204.len());
    fixture
}

/// receive, the `Request` and `EndOfMessage` events, an empty `204`, the drops.
fn head_exchange(f: &mut HeadFixture) -> usize {
    let taken = f.conn.receive(f.now, black_box(BROWSER_GET));
    debug_assert_eq!(taken, BROWSER_GET.len());
    drop(black_box(take_bodiless_request(&mut f.conn)));
    f.conn
        .send_response(StatusCode::NO_CONTENT, &f.empty, BodySize::EMPTY)
        .expect("a request awaits its response");
    f.conn.finish().expect("an empty body is complete");
    let wire = f.conn.poll_transmit(f.now).expect("the response");
    black_box(&wire).len()
}

#[library_benchmark]
#[bench::exchange(head_fixture())]
fn head_weft(mut fixture: HeadFixture) -> (usize, HeadFixture) {
    (head_exchange(&mut fixture), fixture)
}

#[library_benchmark]
#[bench::exchange(BROWSER_GET)]
fn head_httparse(request: &[u8]) -> usize {
    httparse_heads(black_box(request), 1)
}

/// Parses `count` requests one after the other, with 64 initialised slots each (as `h1.rs`'s
/// baseline); returns the bytes parsed.
fn httparse_heads(wire: &[u8], count: usize) -> usize {
    let mut pos = 0;
    for _ in 0..count {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&wire[pos..]) {
            Ok(httparse::Status::Complete(len)) => pos += len,
            other => panic!("not a whole request: {other:?}"),
        }
        black_box(&request);
    }
    pos
}

library_benchmark_group!(name = head; benchmarks = head_weft, head_httparse);

// ----- pipe16: 16 pipelined requests, answered -----

/// The request wrk sends for `/plaintext` (`wrk.format()`), as in `benches/load.sh`.
const PLAINTEXT_GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
const PIPE_DEPTH: usize = 16;
const HELLO: &[u8] = b"Hello, World!";

struct PipeFixture {
    conn: ServerConnection,
    now: Instant,
    batch: Vec<u8>,
    headers: HeaderMap,
}

fn pipe_batch() -> Vec<u8> {
    PLAINTEXT_GET.repeat(PIPE_DEPTH)
}

/// A connection with `Date` set (as `weft echo`'s) that has served one batch already.
fn pipe_fixture() -> PipeFixture {
    let now = Instant::now();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let mut fixture = PipeFixture {
        conn: connection(Limits::default(), now),
        now,
        batch: pipe_batch(),
        headers,
    };
    let wire = pipe_exchange(&mut fixture);
    let text = String::from_utf8_lossy(&wire);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), PIPE_DEPTH);
    assert_eq!(text.matches("\r\n\r\nHello, World!").count(), PIPE_DEPTH);
    fixture
}

/// Receives the batch, answers each request in turn, then takes all the output at once.
fn pipe_exchange(f: &mut PipeFixture) -> Bytes {
    let taken = f.conn.receive(f.now, black_box(&f.batch));
    debug_assert_eq!(taken, f.batch.len());
    for _ in 0..PIPE_DEPTH {
        drop(black_box(take_bodiless_request(&mut f.conn)));
        f.conn
            .send_response(
                StatusCode::OK,
                &f.headers,
                BodySize::Known(HELLO.len() as u64),
            )
            .expect("a request awaits its response");
        f.conn.send_data(HELLO).expect("the body fits its length");
        f.conn.finish().expect("the body is complete");
    }
    f.conn.poll_transmit(f.now).expect("the answers")
}

#[library_benchmark]
#[bench::plaintext(pipe_fixture())]
fn pipe16_weft(mut fixture: PipeFixture) -> (usize, PipeFixture) {
    let len = black_box(pipe_exchange(&mut fixture)).len();
    (len, fixture)
}

#[library_benchmark]
#[bench::plaintext(pipe_batch())]
fn pipe16_httparse(batch: Vec<u8>) -> (usize, Vec<u8>) {
    (httparse_heads(black_box(&batch), PIPE_DEPTH), batch)
}

library_benchmark_group!(name = pipe16; benchmarks = pipe16_weft, pipe16_httparse);

// ----- frame: one masked client frame -----

const MAX_PAYLOAD: usize = 1024 * 1024;

/// A masked binary client frame of `size` ASCII bytes.
fn masked_frame(size: usize, key: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut wire = BytesMut::new();
    let key = key.wrapping_mul(0x9E37_79B9).to_be_bytes();
    encode_frame(&mut wire, true, 0, OpCode::Binary, Some(key), &payload);
    wire.to_vec()
}

struct WeftFrame {
    decoder: FrameDecoder,
    sink: BytesMut,
    /// The frame to decode, as the read buffer holds it.
    wire: Vec<u8>,
}

/// A server-side decoder that has decoded two frames of `size` bytes; the next one is `wire`.
fn weft_frame(size: usize) -> WeftFrame {
    let mut fixture = WeftFrame {
        decoder: FrameDecoder::new(true, 0, MAX_PAYLOAD),
        sink: BytesMut::new(),
        wire: masked_frame(size, 2),
    };
    // Two frames already, so the sink has grown and been handed out since.
    assert_eq!(
        decode_weft_frame(&mut fixture, &masked_frame(size, 1)),
        size
    );
    assert_eq!(
        decode_weft_frame(&mut fixture, &masked_frame(size, 3)),
        size
    );
    fixture
}

/// Decodes the frame in `wire` (header checks, the payload unmasked into the sink), hands its
/// payload out as `Bytes` and drops it; returns the payload's length.
fn decode_weft_frame(f: &mut WeftFrame, wire: &[u8]) -> usize {
    let mut input = wire;
    loop {
        let (taken, item) = f.decoder.decode(input, &mut f.sink).expect("a valid frame");
        input = &input[taken..];
        match item {
            Some(Decoded::End) => {
                let payload = f.sink.split().freeze();
                return black_box(payload).len();
            }
            Some(_) => {}
            None => panic!("the frame is whole"),
        }
    }
}

#[library_benchmark]
#[bench::b125(weft_frame(125))]
#[bench::k16(weft_frame(16 * 1024))]
fn frame_weft(mut fixture: WeftFrame) -> (usize, WeftFrame) {
    let wire = std::mem::take(&mut fixture.wire);
    let len = decode_weft_frame(&mut fixture, &wire);
    fixture.wire = wire;
    (len, fixture)
}

/// tungstenite's frame reader over two frames of `size` bytes, the first one already read:
/// that read took both frames into its buffer, so the second one is parsed from memory, as
/// weft's decoder parses it from the read buffer.
fn tungstenite_frame(size: usize) -> FrameSocket<Cursor<Vec<u8>>> {
    let mut wire = masked_frame(size, 1);
    wire.extend_from_slice(&masked_frame(size, 2));
    let total = wire.len() as u64;
    let mut socket = FrameSocket::new(Cursor::new(wire));
    let first = socket.read(None).expect("a valid frame").expect("a frame");
    assert_eq!(first.payload().len(), size);
    assert_eq!(
        socket.get_ref().position(),
        total,
        "both frames were read at once"
    );
    socket
}

#[library_benchmark]
#[bench::b125(tungstenite_frame(125))]
#[bench::k16(tungstenite_frame(16 * 1024))]
fn frame_tungstenite(
    mut socket: FrameSocket<Cursor<Vec<u8>>>,
) -> (usize, FrameSocket<Cursor<Vec<u8>>>) {
    let frame = socket.read(None).expect("a valid frame").expect("a frame");
    (black_box(frame).payload().len(), socket)
}

library_benchmark_group!(name = frame; benchmarks = frame_weft, frame_tungstenite);

// ----- hpack: a request header block -----

/// SETTINGS_HEADER_TABLE_SIZE: the HTTP/2 default.
const TABLE_SIZE: usize = 4096;

/// The browser request of `head` as HTTP/2 fields: the pseudo-headers, then its fields but
/// `host` and `connection` (which HTTP/2 carries as `:authority`, or forbids), lowercased.
fn request_fields() -> Vec<HeaderField> {
    let text = std::str::from_utf8(BROWSER_GET).expect("ASCII");
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .expect("a request line");
    let mut fields = vec![
        HeaderField::new(":method", "GET"),
        HeaderField::new(":scheme", "https"),
        HeaderField::new(":authority", "www.example.com"),
        HeaderField::new(":path", path.to_owned()),
    ];
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line.split_once(": ").expect("a field line");
        let name = name.to_ascii_lowercase();
        if name != "host" && name != "connection" {
            fields.push(HeaderField::new(name, value.to_owned()));
        }
    }
    fields
}

/// The request block as a connection's first, then as its second (the same fields, now
/// mostly in the dynamic table), encoded by weft's encoder (Huffman, incremental indexing).
fn request_blocks() -> [Vec<u8>; 2] {
    let fields = request_fields();
    let mut encoder = Encoder::new(TABLE_SIZE);
    [(); 2].map(|()| {
        let mut wire = BytesMut::new();
        encoder.encode(&fields, &mut wire);
        wire.to_vec()
    })
}

/// What each decoder gets: a decoder, and the block it decodes next.
struct HpackCase<D> {
    decoder: D,
    block: Vec<u8>,
}

/// weft's decoder before the `first` block, or after it before the `repeat` one.
fn weft_hpack(repeat: bool) -> HpackCase<Decoder> {
    let [first, second] = request_blocks();
    let mut decoder = Decoder::new(TABLE_SIZE, usize::MAX);
    if !repeat {
        return HpackCase {
            decoder,
            block: first,
        };
    }
    let pairs = |fields: Vec<HeaderField>| -> Vec<(Bytes, Bytes)> {
        fields.into_iter().map(|f| (f.name, f.value)).collect()
    };
    let fields = decoder.decode(&first).expect("a valid block");
    // (The encoder sends `cookie` never-indexed, so `sensitive` differs: not compared.)
    assert_eq!(pairs(fields), pairs(request_fields()));
    HpackCase {
        decoder,
        block: second,
    }
}

#[library_benchmark]
#[bench::first(weft_hpack(false))]
#[bench::repeat(weft_hpack(true))]
fn hpack_weft(mut case: HpackCase<Decoder>) -> (usize, HpackCase<Decoder>) {
    let fields = case
        .decoder
        .decode(black_box(&case.block))
        .expect("a valid block");
    (black_box(fields).len(), case)
}

fn hpack_crate(repeat: bool) -> HpackCase<hpack::Decoder<'static>> {
    let [first, second] = request_blocks();
    let mut decoder = hpack::Decoder::new();
    if !repeat {
        return HpackCase {
            decoder,
            block: first,
        };
    }
    let fields = decoder.decode(&first).expect("a valid block");
    assert_eq!(fields.len(), request_fields().len());
    HpackCase {
        decoder,
        block: second,
    }
}

#[library_benchmark]
#[bench::first(hpack_crate(false))]
#[bench::repeat(hpack_crate(true))]
fn hpack_hpack_crate(
    mut case: HpackCase<hpack::Decoder<'static>>,
) -> (usize, HpackCase<hpack::Decoder<'static>>) {
    let fields = case
        .decoder
        .decode(black_box(&case.block))
        .expect("a valid block");
    (black_box(fields).len(), case)
}

type H2Codec = h2::Codec<Cursor<Vec<u8>>, Bytes>;

/// h2's codec over the blocks as HEADERS frames (h2 keeps its HPACK private, see `hpack.rs`),
/// the first frame already read for `repeat`.
fn h2_hpack(repeat: bool) -> H2Codec {
    let mut frames = Vec::new();
    for (i, block) in request_blocks().iter().enumerate() {
        frames.extend_from_slice(&(block.len() as u32).to_be_bytes()[1..]);
        frames.extend_from_slice(&[0x1, 0x4 | 0x1]); // HEADERS, END_HEADERS | END_STREAM
        frames.extend_from_slice(&(2 * i as u32 + 1).to_be_bytes());
        frames.extend_from_slice(block);
    }
    let mut codec = H2Codec::new(Cursor::new(frames));
    codec.set_max_recv_header_list_size(usize::MAX >> 1);
    let regular = request_fields().len() - 4;
    if repeat {
        assert_eq!(next_h2_headers(&mut codec), regular);
    } else {
        // Check the second block too, on a codec of its own, then start over.
        let mut check = h2_hpack(true);
        assert_eq!(next_h2_headers(&mut check), regular);
    }
    codec
}

/// Reads the next frame, a valid HEADERS one; returns its regular fields' count.
fn next_h2_headers(codec: &mut H2Codec) -> usize {
    let mut context = Context::from_waker(Waker::noop());
    match Pin::new(codec).poll_next(&mut context) {
        Poll::Ready(Some(Ok(h2::frame::Frame::Headers(headers)))) => {
            let (pseudo, fields) = headers.into_parts();
            assert_eq!(pseudo.method, Some(Method::GET));
            assert!(pseudo.path.is_some());
            black_box(fields).len()
        }
        other => panic!("expected a HEADERS frame, got {other:?}"),
    }
}

#[library_benchmark]
#[bench::first(h2_hpack(false))]
#[bench::repeat(h2_hpack(true))]
fn hpack_h2(mut codec: H2Codec) -> (usize, H2Codec) {
    (next_h2_headers(&mut codec), codec)
}

library_benchmark_group!(name = hpack_block; benchmarks = hpack_weft, hpack_hpack_crate, hpack_h2);

// ----- the harness -----

/// The default configuration, unless the binary was not started by `cargo bench` (which
/// passes `--bench`): `cargo test --all-targets` runs bench targets too, and must not need
/// valgrind or the runner, so then the binary exits at once.
fn config() -> LibraryBenchmarkConfig {
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!(
            "instructions: not run by `cargo bench`, nothing measured (benches/instructions.sh)"
        );
        std::process::exit(0);
    }
    LibraryBenchmarkConfig::default()
}

main!(
    config = config();
    library_benchmark_groups = head, pipe16, frame, hpack_block
);
