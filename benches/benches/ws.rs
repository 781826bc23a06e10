//! WebSocket receive micro-benchmarks: weft's frame decoder and server connection against
//! tungstenite 0.30, in one process and on the same bytes, so that their ratios mean something.
//!
//! Every input is a buffer of masked client frames (each with its own masking key), all of one
//! payload size: 16 B, 125 B, 1 KiB, 16 KiB (enough frames for 256 KiB of payload) or 1 MiB
//! (one frame). Payloads are ASCII, so the same buffer serves text and binary messages.
//! Throughput is payload bytes per second.
//!
//! Both sides read the buffer through the same in-memory stream ([`Replay`]), which stands for
//! the socket: its `read` copies the bytes out, as the kernel's would. tungstenite reads into
//! its own `BytesMut` and splits each payload off it.
//!
//! - `frame_*` (frame level): weft's `ws::frame::FrameDecoder::decode_frame` (`weft`), which
//!   reads into its own `BytesMut` as tungstenite does, checks the header, unmasks the payload
//!   in place and splits it off as one `Bytes` per frame; against tungstenite's public frame
//!   reader, `FrameSocket::read`, which parses the header and splits the payload off its read
//!   buffer **without unmasking** (tungstenite unmasks only inside `WebSocket`, and its
//!   `apply_mask` is private): tungstenite does less work here. `weft_copy` is weft's
//!   streaming `decode`, which copies each payload, unmasked, into a sink (from a 64 KiB read
//!   buffer, as weft's event-loop runtimes read).
//! - `message_*` (message level, like for like): weft's `ws::Connection` in the server role
//!   (`weft`: `receive_buf` on the session's input buffer, each read of the 64 KiB read
//!   buffer appended to it as the dispatcher's WebSocket session does, every message of it
//!   handed out in that call; `weft_copy`: the copying `receive`, then `poll_event` for each
//!   `Message`) against tungstenite's `WebSocket::from_raw_socket` in the server role, `read`
//!   once per message. Both unmask, check every protocol rule, and hand out an owned message;
//!   text messages are UTF-8 validated by both.
//!
//! After the timed runs, a table of weft's and tungstenite's throughput and their ratio is
//! printed from criterion's estimates.

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bytes::BytesMut;
use criterion::{Criterion, Throughput};
use tungstenite::protocol::frame::FrameSocket;
use tungstenite::protocol::{Role as TungRole, WebSocket, WebSocketConfig};
use weft_core::WsLimits;
use weft_core::ws::frame::{Decoded, FrameDecoder, FrameHeader, OpCode, encode_frame};
use weft_core::ws::{Connection, Event, Message, Role};

/// Payload sizes, by name.
const SIZES: [(&str, usize); 5] = [
    ("16B", 16),
    ("125B", 125),
    ("1KiB", 1024),
    ("16KiB", 16 * 1024),
    ("1MiB", 1024 * 1024),
];

/// Sizes also measured as text messages (UTF-8 validation on both sides).
const TEXT_SIZES: [&str; 2] = ["125B", "16KiB"];

/// Payload bytes in one buffer of small frames: enough frames that per-call costs average
/// out, few enough that the buffer stays in the L2 cache.
const BUFFER_PAYLOAD: usize = 256 * 1024;

/// weft's runtimes read sockets 64 KiB at a time (`runtimes/src/event_loop`).
const WEFT_READ_BUFFER: usize = 64 * 1024;

/// Frame and message limits both sides get: the largest payload measured, 1 MiB, fits.
const MAX_PAYLOAD: usize = 1024 * 1024;

fn main() {
    let fixtures: Vec<Fixture> = SIZES
        .iter()
        .map(|&(name, size)| Fixture::new(name, size, OpCode::Binary))
        .chain(
            SIZES
                .iter()
                .filter(|(name, _)| TEXT_SIZES.contains(name))
                .map(|&(name, size)| Fixture::new(name, size, OpCode::Text)),
        )
        .collect();
    for fixture in &fixtures {
        fixture.check();
    }
    let started = SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    for fixture in fixtures.iter().filter(|f| f.opcode == OpCode::Binary) {
        bench_frames(&mut criterion, fixture);
    }
    for fixture in &fixtures {
        bench_messages(&mut criterion, fixture);
    }
    criterion.final_summary();
    print_ratios(&fixtures, started);
}

/// One input: `count` masked client frames of `size` payload bytes each.
struct Fixture {
    name: &'static str,
    size: usize,
    count: usize,
    opcode: OpCode,
    wire: Vec<u8>,
}

impl Fixture {
    fn new(name: &'static str, size: usize, opcode: OpCode) -> Fixture {
        let count = (BUFFER_PAYLOAD / size).max(1);
        let mut wire = BytesMut::new();
        for index in 0..count {
            encode_frame(
                &mut wire,
                true,
                0,
                opcode,
                Some(mask_key(index)),
                &payload(index, size),
            );
        }
        Fixture {
            name,
            size,
            count,
            opcode,
            wire: wire.to_vec(),
        }
    }

    /// The criterion group of this fixture at `level` (`frame` or `message`).
    fn group(&self, level: &str) -> String {
        let kind = if self.opcode == OpCode::Text {
            "_text"
        } else {
            ""
        };
        format!("{level}{kind}_{}", self.name)
    }

    fn payload_bytes(&self) -> u64 {
        (self.size * self.count) as u64
    }

    /// Every driver yields exactly the payloads that were framed: otherwise the benchmarks
    /// would time an error path, or skip work.
    fn check(&self) {
        let expected: Vec<Vec<u8>> = (0..self.count).map(|i| payload(i, self.size)).collect();
        let mut got = Vec::new();
        let mut weft = WeftFrames::new();
        weft.run(&self.wire, |_, payload| got.push(payload.to_vec()));
        assert_eq!(got, expected, "weft frames, {}", self.group("frame"));

        got.clear();
        let mut weft = WeftFramesCopy::new();
        weft.run(&self.wire, |sink| got.push(sink.split().to_vec()));
        assert_eq!(got, expected, "weft frames copied, {}", self.group("frame"));

        // tungstenite's frame reader leaves payloads masked: unmask them here to compare.
        got.clear();
        let mut tung = FrameSocket::new(Replay::new(&self.wire));
        while let Some(frame) = tung.read(None).expect("valid frame") {
            let key = frame.header().mask.expect("a masked client frame");
            got.push(unmask(frame.payload(), key));
        }
        assert_eq!(got, expected, "tungstenite frames, {}", self.group("frame"));

        for copy in [false, true] {
            got.clear();
            let mut weft = WeftMessages::new();
            weft.run(&self.wire, copy, |m| {
                assert_eq!(matches!(m, Message::Text(_)), self.opcode == OpCode::Text);
                got.push(m.payload().to_vec());
            });
            assert_eq!(got, expected, "weft messages, {}", self.group("message"));
        }

        got.clear();
        let mut tung = tungstenite_socket(&self.wire);
        for _ in 0..self.count {
            let message = tung.read().expect("a message");
            assert_eq!(message.is_text(), self.opcode == OpCode::Text);
            got.push(message.into_data().to_vec());
        }
        assert_eq!(tung.get_ref().remaining(), 0);
        assert_eq!(
            got,
            expected,
            "tungstenite messages, {}",
            self.group("message")
        );
    }
}

/// The masking key of frame `index`: keys differ from frame to frame, as a client's do.
fn mask_key(index: usize) -> [u8; 4] {
    (index as u32).wrapping_mul(0x9E37_79B9).to_be_bytes()
}

/// Frame `index`'s payload: ASCII letters, different in each frame.
fn payload(index: usize, size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + ((i + index) % 26) as u8).collect()
}

fn unmask(masked: &[u8], key: [u8; 4]) -> Vec<u8> {
    masked
        .iter()
        .zip(key.iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect()
}

/// The socket stand-in: reads copy out of a buffer (as the kernel copies out of its own) and
/// writes are dropped (a server that only receives data messages writes nothing anyway).
struct Replay<'a> {
    wire: &'a [u8],
    pos: usize,
}

impl<'a> Replay<'a> {
    fn new(wire: &'a [u8]) -> Self {
        Replay { wire, pos: 0 }
    }

    /// Starts the buffer over: the next iteration reads it again.
    fn rewind(&mut self) {
        self.pos = 0;
    }

    fn remaining(&self) -> usize {
        self.wire.len() - self.pos
    }
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.wire[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// weft at frame level, zero-copy: a server's decoder (masked frames required) and its input
/// buffer, kept from run to run as on one connection. Reads land in the buffer's free
/// capacity, as tungstenite's do.
struct WeftFrames {
    decoder: FrameDecoder,
    input: BytesMut,
}

impl WeftFrames {
    fn new() -> Self {
        WeftFrames {
            decoder: FrameDecoder::new(true, 0, MAX_PAYLOAD),
            input: BytesMut::with_capacity(WEFT_READ_BUFFER),
        }
    }

    /// Reads all of `wire`; `take` gets each frame's header and unmasked payload.
    fn run(&mut self, wire: &[u8], mut take: impl FnMut(FrameHeader, BytesMut)) {
        let mut source = Replay::new(wire);
        loop {
            let len = self.input.len();
            // Room for the frame begun (as tungstenite reserves it), else for a read.
            let wanted = match self.decoder.peek(&self.input) {
                Ok(Some(peeked)) => peeked.frame_len().max(len + WEFT_READ_BUFFER),
                _ => len + WEFT_READ_BUFFER,
            };
            self.input.reserve(wanted - len);
            self.input.resize(
                self.input
                    .capacity()
                    .min(len + WEFT_READ_BUFFER.max(wanted - len)),
                0,
            );
            let n = source.read(&mut self.input[len..]).unwrap_or(0);
            self.input.truncate(len + n);
            if n == 0 {
                break;
            }
            while let Some((header, payload)) = self
                .decoder
                .decode_frame(&mut self.input)
                .expect("valid frames")
            {
                take(header, payload);
            }
        }
        debug_assert!(self.input.is_empty());
    }
}

/// weft at frame level, streaming: the read buffer and the sink each payload is unmasked
/// into, kept from run to run as on one connection.
struct WeftFramesCopy {
    decoder: FrameDecoder,
    read_buf: Vec<u8>,
    sink: BytesMut,
}

impl WeftFramesCopy {
    fn new() -> Self {
        WeftFramesCopy {
            decoder: FrameDecoder::new(true, 0, MAX_PAYLOAD),
            read_buf: vec![0; WEFT_READ_BUFFER],
            sink: BytesMut::new(),
        }
    }

    /// Reads all of `wire`; at the end of each frame, `take` gets the sink holding its
    /// unmasked payload (and must empty it).
    fn run(&mut self, wire: &[u8], mut take: impl FnMut(&mut BytesMut)) {
        let mut source = Replay::new(wire);
        loop {
            let n = source.read(&mut self.read_buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut input = &self.read_buf[..n];
            loop {
                let (taken, item) = self
                    .decoder
                    .decode(input, &mut self.sink)
                    .expect("valid frames");
                input = &input[taken..];
                match item {
                    Some(Decoded::End) => take(&mut self.sink),
                    Some(_) => {}
                    None => break,
                }
            }
        }
        debug_assert!(self.decoder.is_between_frames());
    }
}

/// weft at message level: one server connection, its read buffer and the session's input
/// buffer, kept from run to run.
struct WeftMessages {
    connection: Connection,
    now: Instant,
    read_buf: Vec<u8>,
    input: BytesMut,
}

impl WeftMessages {
    fn new() -> Self {
        let mut limits = WsLimits::default();
        limits.max_frame_size = MAX_PAYLOAD;
        limits.max_message_size = MAX_PAYLOAD;
        let now = Instant::now();
        WeftMessages {
            connection: Connection::new(Role::Server, limits, now),
            now,
            read_buf: vec![0; WEFT_READ_BUFFER],
            input: BytesMut::new(),
        }
    }

    /// Reads all of `wire` into the connection and passes each message to `each`: through
    /// `receive_buf` (each read appended to the input buffer, as the dispatcher's session
    /// does), or with `copy` through `receive` and `poll_event`.
    fn run(&mut self, wire: &[u8], copy: bool, mut each: impl FnMut(Message)) {
        let mut source = Replay::new(wire);
        loop {
            let n = source.read(&mut self.read_buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            if !copy {
                self.input.extend_from_slice(&self.read_buf[..n]);
                self.connection
                    .receive_buf(self.now, &mut self.input, |event| match event {
                        Event::Message(message) => {
                            each(message);
                            Ok(())
                        }
                        other => panic!("unexpected {other:?}"),
                    });
                continue;
            }
            let mut taken = 0;
            loop {
                taken += self.connection.receive(self.now, &self.read_buf[taken..n]);
                let mut events = 0;
                while let Some(event) = self.connection.poll_event() {
                    events += 1;
                    match event {
                        Event::Message(message) => each(message),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                if taken == n {
                    break;
                }
                assert!(events > 0, "the connection stopped reading");
            }
        }
    }
}

/// tungstenite's server-side WebSocket over `wire`, with limits that admit 1 MiB messages
/// (its defaults do: 64 MiB messages, 16 MiB frames).
fn tungstenite_socket(wire: &[u8]) -> WebSocket<Replay<'_>> {
    let config = WebSocketConfig::default();
    WebSocket::from_raw_socket(Replay::new(wire), TungRole::Server, Some(config))
}

fn bench_frames(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group(fixture.group("frame"));
    group.throughput(Throughput::Bytes(fixture.payload_bytes()));

    // Header checks, the payload unmasked where it lies in the input buffer and split off
    // it as one `Bytes` per frame.
    let mut weft = WeftFrames::new();
    group.bench_function("weft", |b| {
        b.iter(|| {
            weft.run(black_box(&fixture.wire), |header, payload| {
                black_box(header);
                drop(black_box(payload.freeze()))
            })
        })
    });

    // The streaming decoder: the payload copied from the read buffer and unmasked into the
    // sink, one `Bytes` split off per frame.
    let mut weft = WeftFramesCopy::new();
    group.bench_function("weft_copy", |b| {
        b.iter(|| {
            weft.run(black_box(&fixture.wire), |sink| {
                drop(black_box(sink.split().freeze()))
            })
        })
    });

    // Header parse, the payload split off the read buffer as `Bytes` (still masked).
    let mut tung = FrameSocket::new(Replay::new(&fixture.wire));
    group.bench_function("tungstenite", |b| {
        b.iter(|| {
            tung.get_mut().rewind();
            while let Some(frame) = tung.read(None).expect("valid frame") {
                black_box(frame);
            }
        })
    });
    group.finish();
}

fn bench_messages(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group(fixture.group("message"));
    group.throughput(Throughput::Bytes(fixture.payload_bytes()));

    let mut weft = WeftMessages::new();
    group.bench_function("weft", |b| {
        b.iter(|| weft.run(black_box(&fixture.wire), false, |m| drop(black_box(m))))
    });
    let mut weft = WeftMessages::new();
    group.bench_function("weft_copy", |b| {
        b.iter(|| weft.run(black_box(&fixture.wire), true, |m| drop(black_box(m))))
    });

    // `read` returns one message; it must not be called past the last one (the stream's end
    // would end the socket), so each iteration reads exactly `count`.
    let mut tung = tungstenite_socket(&fixture.wire);
    group.bench_function("tungstenite", |b| {
        b.iter(|| {
            tung.get_mut().rewind();
            for _ in 0..fixture.count {
                black_box(tung.read().expect("a message"));
            }
        })
    });
    group.finish();
}

/// Where criterion keeps its estimates: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, or
/// `criterion` in the target directory this benchmark was built in (`target/release/deps/ws-*`).
fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The median time of one iteration, in nanoseconds, from the estimates criterion wrote after
/// `since` (older ones are from an earlier run, of a benchmark this run filtered out).
fn median_ns(dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if written < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// Prints weft's and tungstenite's throughput and their ratio for every group measured in
/// this run (none in `--test` or `--list` runs, which write no estimates).
fn print_ratios(fixtures: &[Fixture], started: SystemTime) {
    let Some(dir) = criterion_dir() else { return };
    let mut rows = Vec::new();
    let levels = [
        ("frame", "frame (tungstenite does not unmask)"),
        ("message", "message"),
    ];
    for (level, description) in levels {
        for fixture in fixtures {
            let group = fixture.group(level);
            if level == "frame" && fixture.opcode == OpCode::Text {
                continue;
            }
            let (Some(weft), Some(tung)) = (
                median_ns(&dir, &group, "weft", started),
                median_ns(&dir, &group, "tungstenite", started),
            ) else {
                continue;
            };
            let mib_s = |ns: f64| fixture.payload_bytes() as f64 / ns * 1e9 / (1024.0 * 1024.0);
            let copied = median_ns(&dir, &group, "weft_copy", started)
                .map_or("-".to_owned(), |ns| format!("{:.0}", mib_s(ns)));
            rows.push(format!(
                "| {group} | {description} | {:.0} | {:.0} | {:.2} | {copied} |",
                mib_s(weft),
                mib_s(tung),
                tung / weft
            ));
        }
    }
    if rows.is_empty() {
        return;
    }
    println!(
        "\n| group | level | weft MiB/s | tungstenite MiB/s | weft ÷ tungstenite | weft_copy MiB/s |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for row in rows {
        println!("{row}");
    }
}
