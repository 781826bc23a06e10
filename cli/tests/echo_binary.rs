//! Binary-level tests of `weft echo`: the real `weft` executable is started on
//! `127.0.0.1:0`, its address is read from the line it prints, and `curl`, Python and raw
//! sockets talk to it over TCP.
//!
//! Every case runs once per runtime the binary lists in `weft echo --help`
//! (`Compiled-in runtimes: a, b, c`), so a runtime added to the build is tested without
//! touching this file. A case that fails on one runtime still runs on the others; the test
//! then fails naming every runtime that failed.
//!
//! Every wait is bounded, and a server is killed when its test ends, even by a panic.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The `weft` binary under test.
const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a process may take to exit once asked to (SIGINT, or a command that should fail).
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one exchange with a server may take (a bound, never a measured time).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the 100 MiB transfer may take: generous, as the binary is a debug build.
const BIG_TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);

/// The size of the body streamed through `/echo` to check bounded server memory.
const BIG_BODY: u64 = 100 * 1024 * 1024;

/// The most the server's peak resident set may reach while echoing [`BIG_BODY`].
const RSS_LIMIT_KIB: u64 = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// Waits up to `timeout` for `child` to exit.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("waiting for process {}: {error}", child.id()),
        }
    }
}

/// Reads all of `reader` on a thread of its own, so a full pipe never blocks the child.
fn drain<R: Read + Send + 'static>(mut reader: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        bytes
    })
}

/// Runs `command` to completion with `stdin` as its input, killing it after `timeout`.
fn run_bounded(command: &mut Command, stdin: &[u8], timeout: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {description}: {error}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A command that does not read its input closes the pipe: not an error here.
        let _ = input.write_all(&stdin);
    });
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let Some(status) = wait_with_timeout(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{description} did not finish within {timeout:?}");
    };
    let _ = writer.join();
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Sends `signal` (a `kill` signal name such as `INT`) to process `pid`.
fn send_signal(pid: u32, signal: &str) {
    let output = run_bounded(
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string()),
        b"",
        EXIT_TIMEOUT,
    );
    assert!(
        output.status.success(),
        "kill -{signal} {pid}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The runtimes `weft echo --help` lists on its `Compiled-in runtimes: a, b, c` line.
fn runtimes() -> &'static [String] {
    static RUNTIMES: OnceLock<Vec<String>> = OnceLock::new();
    RUNTIMES.get_or_init(|| {
        let help = echo_help();
        let line = help
            .lines()
            .find_map(|line| line.trim().strip_prefix("Compiled-in runtimes:"))
            .unwrap_or_else(|| panic!("no `Compiled-in runtimes:` line in:\n{help}"));
        let runtimes: Vec<String> = line
            .split(',')
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect();
        assert!(!runtimes.is_empty(), "no runtime listed in {line:?}");
        runtimes
    })
}

/// The output of `weft echo --help`, which must succeed.
fn echo_help() -> String {
    let output = run_bounded(
        Command::new(WEFT).args(["echo", "--help"]),
        b"",
        EXIT_TIMEOUT,
    );
    assert!(
        output.status.success(),
        "weft echo --help failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// Runs `case` once per compiled-in runtime. Every runtime is tried even after one fails;
/// then the test fails naming the runtimes that failed (their panics are printed above).
fn for_each_runtime(case: impl Fn(&str)) {
    let mut failed = Vec::new();
    for runtime in runtimes() {
        if catch_unwind(AssertUnwindSafe(|| case(runtime))).is_err() {
            failed.push(runtime.as_str());
        }
    }
    assert!(
        failed.is_empty(),
        "failed on runtime(s) {failed:?}; their panic messages are above"
    );
}

/// A running `weft echo`, killed when dropped unless it already exited.
struct Server {
    child: Child,
    addrs: Vec<SocketAddr>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Server {
    /// `weft echo --runtime <runtime> --listen 127.0.0.1:0`.
    fn start(runtime: &str) -> Server {
        Server::start_with(runtime, &["--listen", "127.0.0.1:0"])
    }

    /// `weft echo --runtime <runtime> <args>`, once it has printed one address per `--listen`.
    fn start_with(runtime: &str, args: &[&str]) -> Server {
        Server::start_with_env(runtime, args, &[("WEFT_LOG", "info")])
    }

    /// [`start_with`](Server::start_with) with these log variables (`WEFT_LOG`, `RUST_LOG`), and
    /// none inherited from the test's environment.
    fn start_with_env(runtime: &str, args: &[&str], log_env: &[(&str, &str)]) -> Server {
        let expected = args.iter().filter(|arg| **arg == "--listen").count().max(1);
        let mut child = Command::new(WEFT)
            .args(["echo", "--runtime", runtime])
            .args(args)
            .env_remove("WEFT_LOG")
            .env_remove("RUST_LOG")
            .envs(log_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {WEFT}: {error}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = {
            let (mut pipe, stderr) = (child.stderr.take().expect("piped"), Arc::clone(&stderr));
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                    stderr
                        .lock()
                        .expect("stderr lock")
                        .extend_from_slice(&buffer[..read]);
                }
            })
        };
        let (lines_tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // From here on the child is killed if anything below panics.
        let mut server = Server {
            child,
            addrs: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while server.addrs.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{runtime}: no address line within {START_TIMEOUT:?}; stderr:\n{}",
                    server.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_with_timeout(&mut server.child, EXIT_TIMEOUT);
                    panic!(
                        "{runtime}: stdout closed before the address line (exit {status:?}); \
                         stderr:\n{}",
                        server.stderr()
                    )
                }
            };
            server.addrs.push(parse_listening_line(&line, runtime));
        }
        server
    }

    fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far.
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// Waits (bounded) until the server's log contains `needle`.
    fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `kill -INT <pid>`.
    fn interrupt(&self) {
        send_signal(self.pid(), "INT");
    }

    /// Waits up to `timeout` for the process to exit, then for its log to be read whole.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_with_timeout(&mut self.child, timeout)?;
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        Some(status)
    }

    /// SIGINT, then a bounded wait; the status, or `None` if it had to be killed.
    fn stop(mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        self.interrupt();
        self.wait_exit(EXIT_TIMEOUT)
    }

    /// A `VmHWM` or `VmRSS` line of `/proc/<pid>/status`, in KiB.
    fn proc_status_kib(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().strip_suffix("kB"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {path}:\n{status}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = wait_with_timeout(&mut self.child, EXIT_TIMEOUT);
        }
    }
}

/// `weft echo listening on http://ADDR (RUNTIME)` → ADDR, checking the runtime named.
fn parse_listening_line(line: &str, runtime: &str) -> SocketAddr {
    let rest = line
        .strip_prefix("weft echo listening on http://")
        .or_else(|| line.strip_prefix("weft echo listening on https://"))
        .unwrap_or_else(|| panic!("{runtime}: unexpected first line {line:?}"));
    let (addr, named) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("{runtime}: no runtime named in {line:?}"));
    assert_eq!(named, format!("({runtime})"), "{line:?}");
    let addr: SocketAddr = addr
        .parse()
        .unwrap_or_else(|error| panic!("{runtime}: bad address in {line:?}: {error}"));
    assert!(addr.ip().is_loopback(), "{line:?}");
    assert_ne!(
        addr.port(),
        0,
        "port 0 must be replaced by the bound port: {line:?}"
    );
    addr
}

// ---------------------------------------------------------------------------------------------
// HTTP, as curl and a raw socket see it
// ---------------------------------------------------------------------------------------------

/// Header fields in order, names lowercase.
type Headers = Vec<(String, Vec<u8>)>;

/// One HTTP response: status, headers in order (names lowercase), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
    /// The sizes of the chunks, when the body came chunked and was decoded here.
    chunks: Option<Vec<usize>>,
}

impl Response {
    /// The one value of header `name`; panics when it is repeated.
    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let (_, value) = values.next()?;
        assert!(values.next().is_none(), "header {name} repeated: {self:?}");
        Some(std::str::from_utf8(value).expect("header value is UTF-8"))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }
}

/// Splits a response head off `data`: (status, headers, the bytes after the head).
fn parse_head(data: &[u8]) -> (u16, Headers, &[u8]) {
    let end = data
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(data)));
    // Every line with its CR: the head up to the last line's CRLF, less that final LF.
    let head = &data[..end + 2];
    let rest = &data[end + 4..];
    let mut lines = head[..head.len() - 1]
        .split(|&byte| byte == b'\n')
        .map(|line| {
            line.strip_suffix(b"\r")
                .expect("head lines end in CRLF")
                .to_vec()
        });
    let status_line = String::from_utf8(lines.next().expect("a status line")).expect("UTF-8");
    let mut words = status_line.splitn(3, ' ');
    let version = words.next().unwrap_or_default();
    assert!(version.starts_with("HTTP/1."), "{status_line:?}");
    let status = words
        .next()
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|line| {
            let colon = line
                .iter()
                .position(|&byte| byte == b':')
                .unwrap_or_else(|| panic!("bad header line {:?}", String::from_utf8_lossy(&line)));
            let name = String::from_utf8(line[..colon].to_vec())
                .expect("header name is ASCII")
                .to_ascii_lowercase();
            let value = line[colon + 1..].trim_ascii().to_vec();
            (name, value)
        })
        .collect();
    (status, headers, rest)
}

/// Decodes a chunked body at the start of `data`: (body, chunk sizes, the bytes after it),
/// or `None` while it is incomplete.
fn decode_chunked(mut data: &[u8]) -> Option<(Vec<u8>, Vec<usize>, &[u8])> {
    let (mut body, mut sizes) = (Vec::new(), Vec::new());
    loop {
        let line_end = data.windows(2).position(|window| window == b"\r\n")?;
        let line = std::str::from_utf8(&data[..line_end]).expect("chunk size line is ASCII");
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let end = data.windows(2).position(|window| window == b"\r\n")?;
                let trailer_line = &data[..end];
                data = &data[end + 2..];
                if trailer_line.is_empty() {
                    return Some((body, sizes, data));
                }
            }
        }
        if data.len() < size + 2 {
            return None;
        }
        assert_eq!(
            &data[size..size + 2],
            b"\r\n",
            "chunk data not followed by CRLF"
        );
        body.extend_from_slice(&data[..size]);
        sizes.push(size);
        data = &data[size + 2..];
    }
}

/// Parses the response at the start of `data` (to a request with `method`), or `None` while
/// it is incomplete. `closed` says the connection ended after `data`.
fn parse_response<'a>(data: &'a [u8], method: &str, closed: bool) -> Option<(Response, &'a [u8])> {
    data.windows(4).position(|window| window == b"\r\n\r\n")?;
    let (status, headers, rest) = parse_head(data);
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
        chunks: None,
    };
    if (100..200).contains(&status) {
        // An interim answer: the final one follows.
        return parse_response(rest, method, closed);
    }
    if method == "HEAD" || status == 204 || status == 304 {
        return Some((response, rest));
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    if chunked {
        let (body, sizes, rest) = decode_chunked(rest)?;
        response.body = body;
        response.chunks = Some(sizes);
        return Some((response, rest));
    }
    if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().expect("a decimal content-length");
        if rest.len() < length {
            return None;
        }
        response.body = rest[..length].to_vec();
        return Some((response, &rest[length..]));
    }
    if !closed {
        return None;
    }
    response.body = rest.to_vec();
    Some((response, &[]))
}

/// A client connection that speaks raw bytes, with every read bounded.
struct Raw {
    stream: TcpStream,
    /// Bytes read and not parsed yet.
    buffer: Vec<u8>,
    closed: bool,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|error| panic!("connect {addr}: {error}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        Raw {
            stream,
            buffer: Vec::new(),
            closed: false,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to the server");
    }

    /// Reads once into the buffer; false at the end of the stream.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(read) => {
                self.buffer.extend_from_slice(&chunk[..read]);
                true
            }
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                self.closed = true;
                false
            }
            Err(error) => panic!(
                "reading from the server: {error}; so far {:?}",
                String::from_utf8_lossy(&self.buffer)
            ),
        }
    }

    /// The next response, to a request with `method`; every read is bounded by [`IO_TIMEOUT`].
    fn response(&mut self, method: &str) -> Response {
        loop {
            if let Some((response, rest)) = parse_response(&self.buffer, method, self.closed) {
                self.buffer = rest.to_vec();
                return response;
            }
            assert!(
                !self.closed,
                "connection closed in the middle of a response: {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
            self.fill();
        }
    }

    /// Reads until what was received and not parsed yet contains `needle`.
    fn wait_for(&mut self, needle: &[u8]) {
        while !self
            .buffer
            .windows(needle.len())
            .any(|window| window == needle)
        {
            assert!(
                self.fill(),
                "connection closed before {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.buffer)
            );
        }
    }

    /// Waits (bounded) for the server to close the connection, with nothing more sent.
    fn expect_closed(&mut self) {
        while !self.closed {
            self.fill();
        }
        assert!(
            self.buffer.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&self.buffer)
        );
    }
}

/// Runs `curl -sS -i` with `args` (bounded) and parses what it printed. Extra interim
/// (`1xx`) heads are skipped; the body is as curl decoded it.
fn curl(args: &[&str]) -> Response {
    let output = run_curl(&[&["-i"], args].concat());
    let (mut status, mut headers, mut rest) = parse_head(&output.stdout);
    while (100..200).contains(&status) {
        (status, headers, rest) = parse_head(rest);
    }
    Response {
        status,
        headers,
        body: rest.to_vec(),
        chunks: None,
    }
}

/// Runs `curl -sS` with `args`, bounded by its own `--max-time` and by a kill after that;
/// panics unless curl succeeds.
fn run_curl(args: &[&str]) -> Output {
    let max_time = BIG_TRANSFER_TIMEOUT.as_secs().to_string();
    let output = run_bounded(
        Command::new("curl")
            .args(["-sS", "--connect-timeout", "10", "--max-time", &max_time])
            .args(args),
        b"",
        BIG_TRANSFER_TIMEOUT + Duration::from_secs(30),
    );
    assert!(
        output.status.success(),
        "curl {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The fields of an `/inspect` answer, parsed as JSON by Python and decoded from base64 here.
#[derive(Debug)]
struct Inspected {
    method: Vec<u8>,
    uri: Vec<u8>,
    version: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

impl Inspected {
    /// The values of header `name`, in the order reported.
    fn values(&self, name: &[u8]) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, value)| value.as_slice())
            .collect()
    }
}

/// Parses `json` (an `/inspect` body) with Python's `json` module, which also checks it is
/// well-formed JSON with exactly the documented keys in order, then decodes every base64 field.
fn parse_inspect(json: &[u8]) -> Inspected {
    const SCRIPT: &str = r#"
import json, sys
d = json.load(sys.stdin)
assert list(d) == ["method", "uri", "version", "headers", "body"], list(d)
for key in ("method", "uri", "version", "body"):
    assert isinstance(d[key], str), key
    print(d[key])
for pair in d["headers"]:
    assert isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair), pair
    print(pair[0], pair[1])
"#;
    let output = run_bounded(
        Command::new("python3").args(["-c", SCRIPT]),
        json,
        IO_TIMEOUT,
    );
    assert!(
        output.status.success(),
        "python3 rejected the /inspect answer {:?}: {}",
        String::from_utf8_lossy(json),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("python prints base64");
    let decode = |field: &str| {
        BASE64
            .decode(field)
            .unwrap_or_else(|error| panic!("bad base64 {field:?}: {error}"))
    };
    let mut lines = text.lines();
    let mut next = || lines.next().expect("a field line").to_owned();
    let (method, uri, version, body) = (next(), next(), next(), next());
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("name value");
            (decode(name), decode(value))
        })
        .collect();
    Inspected {
        method: decode(&method),
        uri: decode(&uri),
        version: decode(&version),
        headers,
        body: decode(&body),
    }
}

/// Byte `k` of every `/stream` body.
fn stream_pattern(length: usize) -> Vec<u8> {
    (0..length).map(|k| b'a' + (k % 26) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

#[test]
fn help_lists_the_compiled_in_runtimes() {
    let help = echo_help();
    let lines: Vec<&str> = help
        .lines()
        .filter(|line| line.trim().starts_with("Compiled-in runtimes: "))
        .collect();
    assert_eq!(lines.len(), 1, "one runtimes line expected in:\n{help}");
    let listed = runtimes();
    for expected in ["smol", "async-std", "tokio", "threadpool", "mio", "poll"] {
        assert!(
            listed.iter().any(|name| name == expected),
            "{expected} missing from {listed:?}"
        );
    }
    for runtime in listed {
        assert!(help.contains("--runtime"), "{help}");
        assert!(help.contains(runtime.as_str()), "{runtime} in:\n{help}");
    }
}

#[test]
fn an_unknown_runtime_is_rejected() {
    let output = run_bounded(
        Command::new(WEFT).args([
            "echo",
            "--runtime",
            "no-such-runtime",
            "--listen",
            "127.0.0.1:0",
        ]),
        b"",
        EXIT_TIMEOUT,
    );
    assert!(!output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains("listening"), "it must not serve: {stdout}");
    assert!(
        stderr.contains("no-such-runtime"),
        "the error names it: {stderr}"
    );
    // The error lists the runtimes that would have worked.
    for runtime in runtimes() {
        assert!(stderr.contains(runtime.as_str()), "{runtime} in {stderr}");
    }
}

#[test]
fn every_listen_address_is_printed_and_served() {
    for_each_runtime(|runtime| {
        let server = Server::start_with(
            runtime,
            &[
                "--listen",
                "127.0.0.1:0",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "1",
            ],
        );
        assert_eq!(server.addrs.len(), 2);
        assert_ne!(server.addrs[0], server.addrs[1]);
        for addr in &server.addrs {
            let response = curl(&[&format!("http://{addr}/plaintext")]);
            assert_eq!(response.status, 200, "{runtime} {addr}");
            assert_eq!(response.body, b"Hello, World!", "{runtime} {addr}");
        }
        server.stop();
    });
}

#[test]
fn listen_resolves_a_host_name() {
    // Name resolution is the command line's, the same for every runtime: one runtime is enough.
    let runtime = runtimes()[0].as_str();
    let server = Server::start_with(runtime, &["--listen", "localhost:0"]);
    for addr in &server.addrs {
        assert!(addr.ip().is_loopback(), "{addr}");
        let response = curl(&[&format!("http://{addr}/plaintext")]);
        assert_eq!(response.status, 200, "{runtime} {addr}");
        assert_eq!(response.body, b"Hello, World!", "{runtime} {addr}");
    }
    server.stop();
}

#[test]
fn zero_workers_or_connections_are_refused_naming_the_flag() {
    for flag in ["--workers", "--max-connections"] {
        let output = run_bounded(
            Command::new(WEFT).args(["echo", "--listen", "127.0.0.1:0", flag, "0"]),
            b"",
            EXIT_TIMEOUT,
        );
        assert!(!output.status.success(), "{flag} 0: {output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stdout.contains("listening"), "it must not serve: {stdout}");
        assert!(stderr.contains(flag), "the error names {flag}: {stderr}");
        assert!(stderr.contains("at least 1"), "{stderr}");
    }
}

#[test]
fn an_unresolvable_listen_address_is_refused() {
    let output = run_bounded(
        Command::new(WEFT).args(["echo", "--listen", "8080"]),
        b"",
        EXIT_TIMEOUT,
    );
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
    assert!(stderr.contains("HOST:PORT"), "{stderr}");
}

#[test]
fn help_documents_the_log_variables() {
    let help = echo_help();
    for needle in ["WEFT_LOG", "RUST_LOG", "WEFT_LOG wins"] {
        assert!(help.contains(needle), "{needle} in:\n{help}");
    }
}

/// The log of a server started with `log_env` and stopped once it listens: complete, since the
/// process has exited and its stderr has been read to the end.
fn log_of_a_run(log_env: &[(&str, &str)]) -> String {
    let runtime = runtimes()[0].as_str();
    let mut server = Server::start_with_env(runtime, &["--listen", "127.0.0.1:0"], log_env);
    server.interrupt();
    server
        .wait_exit(EXIT_TIMEOUT)
        .expect("the server exits on SIGINT");
    server.stderr()
}

#[test]
fn rust_log_sets_the_log_filter_and_weft_log_wins() {
    // At startup the command logs, at debug level, the filter and where it came from.
    let log = log_of_a_run(&[("RUST_LOG", "debug")]);
    assert!(log.contains("from RUST_LOG"), "{log}");

    let log = log_of_a_run(&[("RUST_LOG", "warn")]);
    assert!(!log.contains("log filter"), "debug is filtered out: {log}");
    assert!(!log.contains("INFO"), "info is filtered out: {log}");

    let log = log_of_a_run(&[("WEFT_LOG", "debug"), ("RUST_LOG", "off")]);
    assert!(log.contains("from WEFT_LOG"), "{log}");

    let log = log_of_a_run(&[("RUST_LOG", "not a [filter")]);
    assert!(log.contains("RUST_LOG"), "a bad filter is reported: {log}");
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

#[test]
fn plaintext_is_hello_world_with_its_length() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        let response = curl(&[&server.url("/plaintext")]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(response.body, b"Hello, World!", "{runtime}");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain"),
            "{runtime}"
        );
        assert_eq!(response.header("content-length"), Some("13"), "{runtime}");
        assert_eq!(response.header("transfer-encoding"), None, "{runtime}");
        assert!(response.header("date").is_some(), "{runtime}: {response:?}");
        server.stop();
    });
}

#[test]
fn json_is_the_hello_message() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        let response = curl(&[&server.url("/json")]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(
            response.text(),
            r#"{"message":"Hello, World!"}"#,
            "{runtime}"
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "{runtime}"
        );
        assert_eq!(response.header("content-length"), Some("27"), "{runtime}");
        server.stop();
    });
}

#[test]
fn stream_sends_the_asked_chunks() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        // As curl sees it.
        let response = curl(&[&server.url("/stream?chunks=4&size=10")]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(
            response.header("transfer-encoding"),
            Some("chunked"),
            "{runtime}"
        );
        assert_eq!(response.header("content-length"), None, "{runtime}");
        assert_eq!(
            response.header("content-type"),
            Some("application/octet-stream"),
            "{runtime}"
        );
        assert_eq!(response.body, stream_pattern(40), "{runtime}");
        // On the wire: four chunks of ten bytes, then the last chunk.
        let mut raw = Raw::connect(server.addr());
        raw.send(b"GET /stream?chunks=4&size=10 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let response = raw.response("GET");
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(response.chunks, Some(vec![10; 4]), "{runtime}");
        assert_eq!(response.body, stream_pattern(40), "{runtime}");
        raw.expect_closed();
        server.stop();
    });
}

#[test]
fn inspect_reports_a_curl_request() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        let response = curl(&[
            "-X",
            "PUT",
            "--data-binary",
            "hello inspect",
            "-H",
            "X-Test: a b  c",
            "-H",
            "Content-Type: text/x-test",
            &server.url("/inspect?x=1&y=%20z"),
        ]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "{runtime}"
        );
        let inspected = parse_inspect(&response.body);
        assert_eq!(inspected.method, b"PUT", "{runtime}");
        assert_eq!(inspected.uri, b"/inspect?x=1&y=%20z", "{runtime}");
        assert_eq!(inspected.version, b"HTTP/1.1", "{runtime}");
        assert_eq!(inspected.body, b"hello inspect", "{runtime}");
        let host = server.addr().to_string();
        for (name, value) in [
            (&b"host"[..], host.as_bytes()),
            (b"x-test", b"a b  c"),
            (b"content-type", b"text/x-test"),
            (b"content-length", b"13"),
        ] {
            assert_eq!(inspected.values(name), [value], "{runtime}: {inspected:?}");
        }
        assert_eq!(inspected.values(b"user-agent").len(), 1, "{runtime}");
        // HTTP/1.0 is reported as such.
        let response = curl(&["--http1.0", &server.url("/inspect")]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        let inspected = parse_inspect(&response.body);
        assert_eq!(inspected.method, b"GET", "{runtime}");
        assert_eq!(inspected.version, b"HTTP/1.0", "{runtime}");
        assert_eq!(inspected.body, b"", "{runtime}");
        // The same request over HTTP/1.1 and HTTP/2 reaches the application in one shape: an
        // origin-form URI and a Host header (HTTP/2's `:authority`) on both.
        let url = server.url("/inspect?same=1");
        let http1 = parse_inspect(&run_curl(&["--http1.1", &url]).stdout);
        let http2 = parse_inspect(&run_curl(&["--http2-prior-knowledge", &url]).stdout);
        assert_eq!(http2.version, b"HTTP/2", "{runtime}");
        assert_eq!(http1.uri, b"/inspect?same=1", "{runtime}");
        assert_eq!(http2.uri, http1.uri, "{runtime}");
        assert_eq!(http1.values(b"host"), [host.as_bytes()], "{runtime}");
        assert_eq!(http2.values(b"host"), [host.as_bytes()], "{runtime}");
        server.stop();
    });
}

#[test]
fn inspect_keeps_every_byte_of_a_raw_request() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        let body: Vec<u8> = (0..=255u8).rev().collect();
        let mut request = Vec::new();
        request
            .extend_from_slice(b"POST /inspect?q=%00%ff&x=~!$ HTTP/1.1\r\nHost: example.test\r\n");
        // obs-text in a header value (RFC 9110 §5.5): UTF-8, then bytes that are not.
        request.extend_from_slice(b"X-Bin: caf\xc3\xa9 \x80\xff\"\\\r\n");
        request.extend_from_slice(b"X-Twice: 1\r\nX-Twice: 2\r\n");
        request.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        request.extend_from_slice(&body);
        let mut raw = Raw::connect(server.addr());
        raw.send(&request);
        let response = raw.response("POST");
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        raw.expect_closed();
        let inspected = parse_inspect(&response.body);
        assert_eq!(inspected.method, b"POST", "{runtime}");
        assert_eq!(inspected.uri, b"/inspect?q=%00%ff&x=~!$", "{runtime}");
        assert_eq!(inspected.version, b"HTTP/1.1", "{runtime}");
        assert_eq!(inspected.body, body, "{runtime}");
        assert_eq!(
            inspected.values(b"x-bin"),
            [&b"caf\xc3\xa9 \x80\xff\"\\"[..]],
            "{runtime}"
        );
        assert_eq!(inspected.values(b"x-twice"), [b"1", b"2"], "{runtime}");
        let mut names: Vec<&[u8]> = inspected.headers.iter().map(|(n, _)| &n[..]).collect();
        names.sort();
        assert_eq!(
            names,
            [
                &b"connection"[..],
                b"content-length",
                b"content-type",
                b"host",
                b"x-bin",
                b"x-twice",
                b"x-twice"
            ],
            "{runtime}: every header as sent, names lowercase"
        );
        server.stop();
    });
}

#[test]
fn echo_on_any_path_returns_the_body_and_its_type() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        // With a length.
        let response = curl(&[
            "-X",
            "POST",
            "--data-binary",
            "some\nbody\x01",
            "-H",
            "Content-Type: application/x-weird; charset=utf-8",
            &server.url("/some/arbitrary/path?x=1"),
        ]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(response.body, b"some\nbody\x01", "{runtime}");
        assert_eq!(
            response.header("content-type"),
            Some("application/x-weird; charset=utf-8"),
            "{runtime}"
        );
        assert_eq!(response.header("content-length"), Some("10"), "{runtime}");
        // Uploaded chunked: echoed chunked.
        let response = curl(&[
            "-X",
            "PUT",
            "--data-binary",
            "chunked upload",
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Content-Type: text/x-chunks",
            &server.url("/echo"),
        ]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(response.body, b"chunked upload", "{runtime}");
        assert_eq!(
            response.header("content-type"),
            Some("text/x-chunks"),
            "{runtime}"
        );
        assert_eq!(
            response.header("transfer-encoding"),
            Some("chunked"),
            "{runtime}"
        );
        // No body, no content type: an empty 200 without one.
        let response = curl(&["-X", "DELETE", &server.url("/")]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(response.body, b"", "{runtime}");
        assert_eq!(response.header("content-type"), None, "{runtime}");
        server.stop();
    });
}

#[test]
fn head_plaintext_has_the_length_and_no_body() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        let response = curl(&["-I", &server.url("/plaintext")]);
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(response.header("content-length"), Some("13"), "{runtime}");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain"),
            "{runtime}"
        );
        assert_eq!(response.body, b"", "{runtime}");
        // On the wire: the answer to the GET pipelined behind the HEAD follows the HEAD's head
        // directly, so no body was sent.
        let mut raw = Raw::connect(server.addr());
        raw.send(
            b"HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        let head = raw.response("HEAD");
        assert_eq!(head.status, 200, "{runtime}: {head:?}");
        assert_eq!(head.header("content-length"), Some("13"), "{runtime}");
        assert!(
            raw.buffer.is_empty() || raw.buffer.starts_with(b"HTTP/1.1 "),
            "{runtime}: bytes after the HEAD answer: {:?}",
            String::from_utf8_lossy(&raw.buffer)
        );
        let get = raw.response("GET");
        assert_eq!(get.status, 200, "{runtime}: {get:?}");
        assert_eq!(get.body, b"Hello, World!", "{runtime}");
        raw.expect_closed();
        server.stop();
    });
}

#[test]
fn fixed_routes_refuse_other_methods_with_405() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        for path in ["/plaintext", "/json", "/stream"] {
            let response = curl(&["-X", "POST", "--data-binary", "x", &server.url(path)]);
            assert_eq!(response.status, 405, "{runtime} {path}: {response:?}");
            assert_eq!(
                response.header("allow"),
                Some("GET, HEAD"),
                "{runtime} {path}"
            );
            assert_eq!(
                response.header("content-type"),
                Some("text/plain"),
                "{runtime}"
            );
        }
        server.stop();
    });
}

#[test]
fn stream_with_bad_parameters_is_400() {
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        for query in ["chunks=x", "size=0", "chunks=1025&size=1048576"] {
            let response = curl(&[&server.url(&format!("/stream?{query}"))]);
            assert_eq!(response.status, 400, "{runtime} {query}: {response:?}");
            assert_eq!(
                response.header("content-type"),
                Some("text/plain"),
                "{runtime}"
            );
            assert!(!response.body.is_empty(), "{runtime} {query}: a reason");
        }
        server.stop();
    });
}

// ---------------------------------------------------------------------------------------------
// A 100 MiB body in bounded memory
// ---------------------------------------------------------------------------------------------

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("weft-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the temporary directory");
        TempDir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `size` bytes of a pseudo-random pattern (never constant, so misplaced pieces show).
fn write_pattern_file(path: &Path, size: u64) {
    let mut file = io::BufWriter::new(File::create(path).expect("create the body file"));
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let take = left.min(block.len() as u64) as usize;
        file.write_all(&block[..take]).expect("write the body file");
        left -= take as u64;
    }
    file.flush().expect("flush the body file");
}

/// The SHA-256 of a file, by `sha256sum`.
fn sha256(path: &Path) -> String {
    let output = run_bounded(Command::new("sha256sum").arg(path), b"", IO_TIMEOUT);
    assert!(
        output.status.success(),
        "sha256sum {}: {output:?}",
        path.display()
    );
    String::from_utf8(output.stdout)
        .expect("hex")
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_owned()
}

/// Posts the file `input` to `url` with curl, the answer's body going to the file `output`;
/// the answer's final head.
fn curl_file_through(url: &str, input: &Path, output: &Path, headers: &[&str]) -> Response {
    let input_arg = format!("@{}", input.display());
    let mut args = vec!["--data-binary", &input_arg, "-D", "-"];
    args.extend(["-o", output.to_str().expect("a UTF-8 path")]);
    for header in headers {
        args.extend(["-H", header]);
    }
    args.push(url);
    let printed = run_curl(&args);
    let (mut status, mut headers, mut rest) = parse_head(&printed.stdout);
    while (100..200).contains(&status) {
        (status, headers, rest) = parse_head(rest);
    }
    assert!(rest.is_empty(), "the body goes to the file, not stdout");
    Response {
        status,
        headers,
        body: Vec::new(),
        chunks: None,
    }
}

#[test]
fn a_100_mib_body_streams_through_echo_in_bounded_memory() {
    let dir = TempDir::new("echo-binary-big-body");
    let input = dir.path("body.bin");
    write_pattern_file(&input, BIG_BODY);
    let input_hash = sha256(&input);
    let figures = Mutex::new(Vec::new());
    for_each_runtime(|runtime| {
        let server = Server::start(runtime);
        let before_kib = server.proc_status_kib("VmHWM");
        let output = dir.path(&format!("echoed-{runtime}.bin"));
        let mut peaks = Vec::new();
        // Uploaded with a Content-Length (echoed with it), then chunked (echoed chunked).
        for chunked in [false, true] {
            let _ = std::fs::remove_file(&output);
            let mut headers = vec!["Content-Type: application/octet-stream"];
            if chunked {
                headers.push("Transfer-Encoding: chunked");
            }
            let response = curl_file_through(&server.url("/echo"), &input, &output, &headers);
            peaks.push(server.proc_status_kib("VmHWM"));
            let framing = if chunked { "chunked" } else { "content-length" };
            assert_eq!(response.status, 200, "{runtime} {framing}: {response:?}");
            if chunked {
                assert_eq!(
                    response.header("transfer-encoding"),
                    Some("chunked"),
                    "{runtime}: {response:?}"
                );
                assert_eq!(response.header("content-length"), None, "{runtime}");
            } else {
                assert_eq!(
                    response.header("content-length"),
                    Some(BIG_BODY.to_string().as_str()),
                    "{runtime}: the announced length is kept"
                );
            }
            assert_eq!(
                response.header("content-type"),
                Some("application/octet-stream"),
                "{runtime} {framing}"
            );
            let echoed_size = std::fs::metadata(&output).expect("the echoed file").len();
            assert_eq!(echoed_size, BIG_BODY, "{runtime} {framing}: echoed size");
            assert_eq!(
                sha256(&output),
                input_hash,
                "{runtime} {framing}: echoed content"
            );
        }
        let _ = std::fs::remove_file(&output);
        let peak_kib = *peaks.iter().max().expect("two transfers");
        let line = format!(
            "{runtime}: server peak RSS (VmHWM) {:.1} MiB after echoing 100 MiB with a length, \
             {:.1} MiB after another 100 MiB chunked (at start: {:.1} MiB)",
            peaks[0] as f64 / 1024.0,
            peaks[1] as f64 / 1024.0,
            before_kib as f64 / 1024.0,
        );
        println!("{line}");
        figures.lock().expect("figures").push(line);
        assert!(
            peak_kib < RSS_LIMIT_KIB,
            "{runtime}: peak RSS {peak_kib} KiB is over {RSS_LIMIT_KIB} KiB"
        );
        server.stop();
    });
    // Once more together, for `--nocapture` readers.
    for line in figures.into_inner().expect("figures") {
        println!("{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// Shutdown and connection limits
// ---------------------------------------------------------------------------------------------

/// What the runtimes log when a signal starts the graceful shutdown.
const SHUTDOWN_LOG: &str = "shutting down gracefully";

#[test]
fn sigint_after_a_request_exits_cleanly_and_logs_it() {
    for_each_runtime(|runtime| {
        let mut server = Server::start(runtime);
        let response = curl(&[&server.url("/plaintext")]);
        assert_eq!(response.status, 200, "{runtime}");
        server.interrupt();
        let status = server
            .wait_exit(EXIT_TIMEOUT)
            .unwrap_or_else(|| panic!("{runtime}: still running {EXIT_TIMEOUT:?} after SIGINT"));
        let log = server.stderr();
        assert_eq!(
            status.code(),
            Some(0),
            "{runtime}: {status}; stderr:\n{log}"
        );
        assert!(log.contains(SHUTDOWN_LOG), "{runtime}: stderr:\n{log}");
        assert!(
            log.contains("signal=2"),
            "{runtime}: names SIGINT; stderr:\n{log}"
        );
    });
}

#[test]
fn sigterm_also_shuts_down_cleanly() {
    for_each_runtime(|runtime| {
        let mut server = Server::start(runtime);
        send_signal(server.pid(), "TERM");
        let status = server
            .wait_exit(EXIT_TIMEOUT)
            .unwrap_or_else(|| panic!("{runtime}: still running {EXIT_TIMEOUT:?} after SIGTERM"));
        let log = server.stderr();
        assert_eq!(
            status.code(),
            Some(0),
            "{runtime}: {status}; stderr:\n{log}"
        );
        assert!(log.contains(SHUTDOWN_LOG), "{runtime}: stderr:\n{log}");
    });
}

#[test]
fn sigint_closes_an_idle_keep_alive_connection() {
    for_each_runtime(|runtime| {
        let mut server = Server::start(runtime);
        let mut raw = Raw::connect(server.addr());
        raw.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        let response = raw.response("GET");
        assert_eq!(response.body, b"Hello, World!", "{runtime}");
        // The connection is now idle and kept alive.
        server.interrupt();
        raw.expect_closed();
        let status = server
            .wait_exit(EXIT_TIMEOUT)
            .unwrap_or_else(|| panic!("{runtime}: still running {EXIT_TIMEOUT:?} after SIGINT"));
        assert_eq!(
            status.code(),
            Some(0),
            "{runtime}: stderr:\n{}",
            server.stderr()
        );
    });
}

#[test]
fn sigint_lets_an_in_flight_request_finish() {
    for_each_runtime(|runtime| {
        let mut server = Server::start(runtime);
        let mut raw = Raw::connect(server.addr());
        raw.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nfirst");
        // The echo of the first half shows the request is being served (not still waiting in
        // the listen backlog, where a shutdown may rightly drop it).
        raw.wait_for(b"\r\n\r\nfirst");
        server.interrupt();
        assert!(
            server.wait_for_log(SHUTDOWN_LOG, EXIT_TIMEOUT),
            "{runtime}: no shutdown logged; stderr:\n{}",
            server.stderr()
        );
        // The request started before the shutdown: it is still answered whole.
        raw.send(b"-last");
        let response = raw.response("POST");
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(response.body, b"first-last", "{runtime}");
        raw.expect_closed();
        let status = server
            .wait_exit(EXIT_TIMEOUT)
            .unwrap_or_else(|| panic!("{runtime}: still running {EXIT_TIMEOUT:?} after SIGINT"));
        assert_eq!(
            status.code(),
            Some(0),
            "{runtime}: stderr:\n{}",
            server.stderr()
        );
    });
}

#[test]
fn max_connections_holds_the_next_client_until_one_ends() {
    for_each_runtime(|runtime| {
        let server = Server::start_with(
            runtime,
            &["--listen", "127.0.0.1:0", "--max-connections", "1"],
        );
        let mut first = Raw::connect(server.addr());
        first.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(first.response("GET").status, 200, "{runtime}");
        // The first connection stays open and idle: the second waits in the backlog.
        let mut second = Raw::connect(server.addr());
        second.send(b"GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        second
            .stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        match second.stream.read(&mut byte) {
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            other => panic!("{runtime}: second connection served past the limit: {other:?}"),
        }
        second
            .stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        drop(first);
        let response = second.response("GET");
        assert_eq!(response.status, 200, "{runtime}: {response:?}");
        assert_eq!(
            response.text(),
            r#"{"message":"Hello, World!"}"#,
            "{runtime}"
        );
        server.stop();
    });
}

/// `--tls-cert`/`--tls-key`: every runtime serves HTTPS that curl verifies against the
/// certificate (made here with rcgen), agreeing on TLS 1.3 and on TLS 1.2.
#[test]
fn tls_flags_serve_https_on_every_runtime() {
    let dir = TempDir::new("tls-binary");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    for_each_runtime(|runtime| {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ];
        let server = Server::start_with(runtime, &args);
        let port = server.addrs[0].port();
        let resolve = format!("localhost:{port}:127.0.0.1");
        let url = format!("https://localhost:{port}/plaintext");
        for version in [&["--tlsv1.3"][..], &["--tls-max", "1.2"][..]] {
            let args = [
                // HTTP/1.1 here, which `curl` below parses; ALPN h2 is tested in echo_h2.rs.
                &["--cacert", cert, "--resolve", &resolve, "--http1.1"],
                version,
                &[url.as_str()],
            ]
            .concat();
            let response = curl(&args);
            assert_eq!(response.status, 200, "{runtime} {version:?}: {response:?}");
            assert_eq!(response.body, b"Hello, World!", "{runtime} {version:?}");
        }
        server.stop();
    });
}
