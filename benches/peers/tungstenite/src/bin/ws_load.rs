//! `weft-ws-load`: the WebSocket load client of `benches/ws.sh`, independent of both servers it
//! measures (its framing is its own, a few lines of RFC 6455).
//!
//! `weft-ws-load --url ws://HOST:PORT/PATH [--connections C] [--depth D] [--size S] [--text]
//! [--seconds T] [--messages N]`: opens C connections (handshake without extensions, so no
//! compression), then on each keeps D messages of S bytes in flight: every echo received is
//! checked byte for byte against the message it answers, and the next message is sent in its
//! place. It stops sending after T seconds or N messages in all (whichever comes first), waits
//! for the echoes still in flight, closes every connection with 1000, and prints one line:
//!
//! `ws-load: connections=C depth=D size=S kind=binary messages=M seconds=X msgs_per_s=R
//! mismatches=0 errors=0`
//!
//! `messages` counts verified echoes; `seconds` runs from the moment every connection is open
//! to the last echo. It exits with 1 on any mismatch or error (a connection that fails, or the
//! whole run taking more than T + 30 seconds).
//!
//! Cheap on purpose, since it shares the machine with the server: one thread (tokio's
//! current-thread runtime, one task per connection), every message masked once at start-up
//! (D distinct messages per connection, sent again in turn), echoes checked as they are read
//! without copying, and one write per read.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

const USAGE: &str = "usage: weft-ws-load --url ws://HOST:PORT/PATH [--connections C] [--depth D] \
                     [--size S] [--text] [--seconds T] [--messages N]";

/// Extra time the whole run may take past `--seconds` before it is called hung.
const GRACE: Duration = Duration::from_secs(30);
/// The largest response head accepted in the handshake.
const MAX_HEAD: usize = 16 * 1024;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What the run was asked to do.
#[derive(Debug, Clone)]
struct Params {
    addr: SocketAddr,
    host: String,
    path: String,
    connections: usize,
    depth: usize,
    size: usize,
    text: bool,
    seconds: f64,
    messages: u64,
}

/// Why a connection failed.
#[derive(Debug)]
enum LoadError {
    Io(std::io::Error),
    /// The server's answer to the upgrade was not `101`, or was malformed.
    Handshake(String),
    /// A frame the echo protocol does not allow here (a Close before ours, a reserved opcode,
    /// a masked server frame, a message of the wrong kind or length).
    Protocol(String),
    /// An echo whose bytes differ from the message sent.
    Mismatch,
    /// The server closed the TCP connection with echoes still owed.
    Eof,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "i/o: {e}"),
            LoadError::Handshake(what) => write!(f, "handshake: {what}"),
            LoadError::Protocol(what) => write!(f, "protocol: {what}"),
            LoadError::Mismatch => f.write_str("an echo differs from the message sent"),
            LoadError::Eof => f.write_str("the server closed with echoes owed"),
        }
    }
}

impl From<std::io::Error> for LoadError {
    fn from(e: std::io::Error) -> Self {
        LoadError::Io(e)
    }
}

/// Counters shared by every connection.
#[derive(Default)]
struct Shared {
    /// Echoes received and verified.
    echoes: AtomicU64,
    /// Messages sent (to stop at `--messages`).
    sent: AtomicU64,
    mismatches: AtomicU64,
    errors: AtomicU64,
    /// Set once the time is up or enough messages were sent.
    stop: AtomicBool,
}

fn main() {
    let params = parse_args().unwrap_or_else(|message| {
        eprintln!("weft-ws-load: {message}\n{USAGE}");
        std::process::exit(2);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let shared = Arc::new(Shared::default());
    let limit = Duration::from_secs_f64(params.seconds) + GRACE;
    // The timer is made inside the runtime: tokio's timers need its context.
    let outcome = runtime
        .block_on(async { tokio::time::timeout(limit, run(params.clone(), shared.clone())).await });
    let (seconds, timed_out) = match outcome {
        Ok(seconds) => (seconds, false),
        Err(_) => (limit.as_secs_f64(), true),
    };
    let messages = shared.echoes.load(Ordering::Relaxed);
    let mismatches = shared.mismatches.load(Ordering::Relaxed);
    let errors = shared.errors.load(Ordering::Relaxed) + u64::from(timed_out);
    let rate = if seconds > 0.0 {
        messages as f64 / seconds
    } else {
        0.0
    };
    println!(
        "ws-load: connections={} depth={} size={} kind={} messages={messages} seconds={seconds:.3} \
         msgs_per_s={rate:.0} mismatches={mismatches} errors={errors}{}",
        params.connections,
        params.depth,
        params.size,
        if params.text { "text" } else { "binary" },
        if timed_out { " timed_out=1" } else { "" },
    );
    if mismatches > 0 || errors > 0 {
        std::process::exit(1);
    }
}

/// Runs every connection; returns the seconds from all connections open to the last echo.
async fn run(params: Params, shared: Arc<Shared>) -> f64 {
    let barrier = Arc::new(Barrier::new(params.connections + 1));
    let mut tasks = Vec::with_capacity(params.connections);
    for index in 0..params.connections {
        let (params, shared, barrier) = (params.clone(), shared.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = connection(index, &params, &shared, &barrier).await {
                match e {
                    LoadError::Mismatch => shared.mismatches.fetch_add(1, Ordering::Relaxed),
                    _ => shared.errors.fetch_add(1, Ordering::Relaxed),
                };
                eprintln!("weft-ws-load: connection {index}: {e}");
            }
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let stopper = tokio::spawn(stop_after(params.seconds, shared.clone()));
    for task in tasks {
        let _ = task.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    stopper.abort();
    seconds
}

async fn stop_after(seconds: f64, shared: Arc<Shared>) {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    shared.stop.store(true, Ordering::Relaxed);
}

/// One connection: the handshake, the barrier, the echo loop, the close. A connection that
/// fails before the barrier still waits on it, so that the others are not held forever.
async fn connection(
    index: usize,
    params: &Params,
    shared: &Shared,
    barrier: &Barrier,
) -> Result<(), LoadError> {
    let opened = open(index, params).await;
    barrier.wait().await;
    let (mut stream, leftover) = opened?;
    let messages: Vec<Vec<u8>> = (0..params.depth)
        .map(|slot| payload(index, slot, params.size))
        .collect();
    let frames: Vec<Vec<u8>> = messages
        .iter()
        .enumerate()
        .map(|(slot, m)| client_frame(opcode(params.text), m, mask_key(index, slot)))
        .collect();
    let mut echo = EchoReader::new(messages, params.text);
    echo.input.extend_from_slice(&leftover);
    let mut out = Vec::new();
    let mut in_flight = 0;
    let mut next_to_send = 0;
    for _ in 0..params.depth {
        if !take_send_slot(params, shared) {
            break;
        }
        out.extend_from_slice(&frames[next_to_send]);
        next_to_send = (next_to_send + 1) % params.depth;
        in_flight += 1;
    }
    stream.write_all(&out).await?;
    while in_flight > 0 {
        let echoed = echo.drain()?;
        out.clear();
        for _ in 0..echoed {
            in_flight -= 1;
            shared.echoes.fetch_add(1, Ordering::Relaxed);
            if take_send_slot(params, shared) {
                out.extend_from_slice(&frames[next_to_send]);
                next_to_send = (next_to_send + 1) % params.depth;
                in_flight += 1;
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        if in_flight > 0 && echoed == 0 && echo.read_from(&mut stream).await? == 0 {
            return Err(LoadError::Eof);
        }
    }
    close(&mut stream, &mut echo, index).await
}

/// Whether one more message may be sent: the time is not up and `--messages` not reached.
fn take_send_slot(params: &Params, shared: &Shared) -> bool {
    if shared.stop.load(Ordering::Relaxed) {
        return false;
    }
    let sent = shared.sent.fetch_add(1, Ordering::Relaxed);
    if sent >= params.messages {
        shared.stop.store(true, Ordering::Relaxed);
        return false;
    }
    true
}

/// Connects and upgrades; returns the stream and any bytes read past the response head.
async fn open(index: usize, params: &Params) -> Result<(TcpStream, Vec<u8>), LoadError> {
    let mut stream = TcpStream::connect(params.addr).await?;
    stream.set_nodelay(true)?;
    // 16 bytes in base64 (22 characters and "=="), different per connection; this client
    // does not check Sec-WebSocket-Accept.
    let key = format!("d2VmdC13cy1sb2Fk{:04}Aw==", index % 10_000);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        params.path, params.host
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = find(&head, b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > MAX_HEAD {
            return Err(LoadError::Handshake("response head too long".into()));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(LoadError::Handshake("closed during the handshake".into()));
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let status = String::from_utf8_lossy(&head[..end])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(LoadError::Handshake(status));
    }
    Ok((stream, head.split_off(end)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends our Close (1000) and waits, at most 5 s, for the server's Close or its TCP close.
async fn close(
    stream: &mut TcpStream,
    echo: &mut EchoReader,
    index: usize,
) -> Result<(), LoadError> {
    let frame = client_frame(0x8, &1000u16.to_be_bytes(), mask_key(index, usize::MAX));
    stream.write_all(&frame).await?;
    let wait = async {
        loop {
            match echo.drain() {
                Err(LoadError::Protocol(reason)) if reason == CLOSED => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            if echo.read_from(stream).await? == 0 {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), wait).await {
        Ok(result) => result,
        Err(_) => Err(LoadError::Protocol(
            "no Close from the server within 5 s".into(),
        )),
    }
}

/// The reason [`EchoReader::drain`] gives for the server's Close frame.
const CLOSED: &str = "the server sent Close";

/// Parses the server's frames as they arrive and checks each echo against the message it
/// answers: echoes come back in the order sent, so echo `k` answers slot `k % depth`.
struct EchoReader {
    input: Vec<u8>,
    /// Bytes of `input` already parsed.
    pos: usize,
    messages: Vec<Vec<u8>>,
    text: bool,
    /// The slot whose echo is being received, and how many of its bytes arrived.
    slot: usize,
    received: usize,
    /// A fragmented echo is in progress (its first frame came).
    in_message: bool,
}

impl EchoReader {
    fn new(messages: Vec<Vec<u8>>, text: bool) -> Self {
        EchoReader {
            input: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            messages,
            text,
            slot: 0,
            received: 0,
            in_message: false,
        }
    }

    /// Reads once from the stream into the input; returns the bytes read (0: EOF).
    async fn read_from(&mut self, stream: &mut TcpStream) -> std::io::Result<usize> {
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.reserve(READ_CHUNK);
        stream.read_buf(&mut self.input).await
    }

    /// Parses every whole frame in the input; returns how many echoes were completed.
    fn drain(&mut self) -> Result<usize, LoadError> {
        let mut echoed = 0;
        while let Some((header, start, len)) = parse_header(&self.input[self.pos..])? {
            let end = start + len;
            if self.input.len() - self.pos < end {
                break;
            }
            let payload = self.pos + start..self.pos + end;
            self.pos += end;
            if self.frame(header, payload)? {
                echoed += 1;
            }
        }
        Ok(echoed)
    }

    /// Checks one frame; true when it completed an echo.
    fn frame(&mut self, header: u8, payload: std::ops::Range<usize>) -> Result<bool, LoadError> {
        let fin = header & 0x80 != 0;
        let code = header & 0x0F;
        match code {
            0x8 => return Err(LoadError::Protocol(CLOSED.into())),
            0x9 | 0xA => return Ok(false), // pings and pongs: not expected, harmless
            0x0 if self.in_message => {}
            0x1 | 0x2 if !self.in_message && code == opcode(self.text) => {}
            _ => {
                return Err(LoadError::Protocol(format!(
                    "unexpected frame 0x{header:02x}"
                )));
            }
        }
        if header & 0x70 != 0 {
            return Err(LoadError::Protocol(
                "a reserved bit (compression?) is set".into(),
            ));
        }
        let expected = &self.messages[self.slot];
        let got = &self.input[payload];
        if expected.get(self.received..self.received + got.len()) != Some(got) {
            return Err(LoadError::Mismatch);
        }
        self.received += got.len();
        self.in_message = !fin;
        if !fin {
            return Ok(false);
        }
        if self.received != expected.len() {
            return Err(LoadError::Mismatch);
        }
        self.received = 0;
        self.slot = (self.slot + 1) % self.messages.len();
        Ok(true)
    }
}

/// A server frame's first byte, the payload's offset and length; `None` until the header is
/// whole. Server frames must not be masked.
fn parse_header(input: &[u8]) -> Result<Option<(u8, usize, usize)>, LoadError> {
    let [first, second, rest @ ..] = input else {
        return Ok(None);
    };
    if second & 0x80 != 0 {
        return Err(LoadError::Protocol("a masked server frame".into()));
    }
    let (len, start) = match second & 0x7F {
        126 => match rest {
            [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 4),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(bytes) => (u64::from_be_bytes(bytes.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    let len = usize::try_from(len).map_err(|_| LoadError::Protocol("frame too long".into()))?;
    Ok(Some((*first, start, len)))
}

fn opcode(text: bool) -> u8 {
    if text { 0x1 } else { 0x2 }
}

/// Message `slot` of connection `index`: ASCII (valid as text), different per connection and
/// slot, so that an echo of the wrong message is caught.
fn payload(index: usize, slot: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| b'a' + ((i + 7 * slot + 13 * index) % 26) as u8)
        .collect()
}

/// A masking key per connection and slot (§5.3 asks for unpredictable keys against proxies;
/// a benchmark on loopback only needs them to vary).
fn mask_key(index: usize, slot: usize) -> [u8; 4] {
    ((index as u32).wrapping_mul(0x9E37_79B9) ^ (slot as u32).wrapping_mul(0x85EB_CA6B))
        .to_be_bytes()
}

/// One final, masked client frame.
fn client_frame(opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len if len <= usize::from(u16::MAX) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    frame
}

fn parse_args() -> Result<Params, String> {
    let mut url = None;
    let mut params = Params {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        host: String::new(),
        path: String::new(),
        connections: 64,
        depth: 8,
        size: 125,
        text: false,
        seconds: 10.0,
        messages: u64::MAX,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--text" {
            params.text = true;
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let bad = |_| format!("{arg} {value}: not a number");
        let bad_float = |_| format!("{arg} {value}: not a number");
        match arg.as_str() {
            "--url" => url = Some(value),
            "--connections" => params.connections = value.parse().map_err(bad)?,
            "--depth" => params.depth = value.parse().map_err(bad)?,
            "--size" => params.size = value.parse().map_err(bad)?,
            "--seconds" => params.seconds = value.parse().map_err(bad_float)?,
            "--messages" => params.messages = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    if params.connections == 0
        || params.depth == 0
        || params.seconds.is_nan()
        || params.seconds <= 0.0
    {
        return Err("--connections, --depth and --seconds must be above 0".into());
    }
    let url = url.ok_or("--url is required")?;
    let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    params.host = authority.to_owned();
    params.path = path.to_owned();
    params.addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or(format!("{authority}: no address"))?;
    Ok(params)
}
