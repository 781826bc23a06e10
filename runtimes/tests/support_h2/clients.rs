//! The real HTTP/2 clients the HTTP/2 suites drive, run as bounded child processes: `curl`,
//! `nghttp` and `h2load` (nghttp2-client), and the Python clients of `runtimes/tests/h2/`
//! (python3 with the `h2` module). Only `std`: `cli/tests/echo_h2.rs` includes this file too.
//!
//! `scripts/test` installs every one of them. A case whose client is missing is skipped with a
//! `SKIPPED` line naming it (see [`Tool::available`]), never passed silently.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long one client run may take before it is killed (a bound, not a measured time).
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The folder of the Python clients, `runtimes/tests/h2`, found from the crate being tested
/// (weft-runtime or weft-cli), both of which sit at the top of the workspace.
pub(crate) fn scripts_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("runtimes")
        .join("tests")
        .join("h2")
}

/// A client program a case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Curl,
    Nghttp,
    H2load,
    /// A `python3` that can `import h2`.
    PythonH2,
}

impl Tool {
    /// The package that provides it.
    fn package(self) -> &'static str {
        match self {
            Tool::Curl => "curl",
            Tool::Nghttp | Tool::H2load => "nghttp2-client",
            Tool::PythonH2 => "python3-h2",
        }
    }

    /// The program to run, when installed.
    pub(crate) fn program(self) -> Option<&'static str> {
        match self {
            Tool::Curl => found("curl", &["--version"]).then_some("curl"),
            Tool::Nghttp => found("nghttp", &["--version"]).then_some("nghttp"),
            Tool::H2load => found("h2load", &["--version"]).then_some("h2load"),
            Tool::PythonH2 => python_with_h2(),
        }
    }

    /// Whether it is installed; when not, prints a `SKIPPED` line for `case` (visible with
    /// `--nocapture`, and in the output of a failing run) so the skip is never silent.
    pub(crate) fn available(self, case: &str) -> bool {
        if self.program().is_some() {
            return true;
        }
        let line = format!(
            "SKIPPED {case}: {self:?} is not installed (scripts/test installs it: \
             apt-get install {})",
            self.package()
        );
        println!("{line}");
        eprintln!("{line}");
        false
    }
}

/// Whether `program args` runs and succeeds.
fn found(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The first of `python3` (PATH) and `/usr/bin/python3` that has the `h2` module: the
/// distribution's python3-h2 installs for the system interpreter, which a pyenv `python3`
/// earlier on PATH does not see.
fn python_with_h2() -> Option<&'static str> {
    static PYTHON: OnceLock<Option<&'static str>> = OnceLock::new();
    *PYTHON.get_or_init(|| {
        ["python3", "/usr/bin/python3"]
            .into_iter()
            .find(|python| found(python, &["-c", "import h2, hpack, hyperframe"]))
    })
}

/// What a client run printed, and how it ended.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Ran {
    /// Stdout as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with everything the run printed unless it exited 0.
    pub(crate) fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.text(),
            self.stderr
        );
    }
}

/// Runs `command` with `stdin` as its input, killing it after `timeout`.
pub(crate) fn run(command: &mut Command, stdin: &[u8], timeout: Duration) -> Ran {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {description}: {error}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || {
        // A client that does not read its input closes the pipe: not an error here.
        let _ = input.write_all(&stdin);
    });
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let Some(status) = wait_with_timeout(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{description} did not finish within {timeout:?}; stdout so far:\n{}",
            String::from_utf8_lossy(&stdout.join().unwrap_or_default())
        );
    };
    let _ = writer.join();
    Ran {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned(),
    }
}

/// Reads all of `reader` on a thread of its own, so a full pipe never blocks the child.
pub(crate) fn drain<R: Read + Send + 'static>(mut reader: R) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits up to `timeout` for `child` to exit.
pub(crate) fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("waiting for process {}: {error}", child.id()),
        }
    }
}

/// A file path in the temporary folder, unique to this process and call, removed on drop.
pub(crate) struct TempPath(pub(crate) PathBuf);

impl TempPath {
    pub(crate) fn new(name: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        TempPath(std::env::temp_dir().join(format!("weft-h2-{}-{n}-{name}", std::process::id())))
    }

    pub(crate) fn as_str(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One exchange as `curl` reports it.
#[derive(Debug)]
pub(crate) struct CurlReply {
    /// `%{http_version}`: `2` for HTTP/2, `1.1` for HTTP/1.1.
    pub(crate) version: String,
    /// `%{response_code}`.
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// curl's `-v` trace: the request and response heads as curl saw them.
    pub(crate) trace: String,
}

/// Runs `curl -sS -v` with `args` (which name the URL), `stdin` as its input (for
/// `--data-binary @-`), and fails the test unless curl succeeds.
pub(crate) fn curl(args: &[&str], stdin: &[u8]) -> CurlReply {
    let body = TempPath::new("curl-body");
    let ran = run(
        Command::new("curl")
            .args(["-sS", "-v", "--connect-timeout", "10", "--max-time", "100"])
            .args([
                "-o",
                body.as_str(),
                "-w",
                "%{http_version} %{response_code}",
            ])
            .args(args),
        stdin,
        CLIENT_TIMEOUT,
    );
    ran.assert_success(&format!("curl {args:?}"));
    let written = ran.text();
    let (version, status) = written
        .split_once(' ')
        .unwrap_or_else(|| panic!("curl -w printed {written:?}"));
    CurlReply {
        version: version.to_owned(),
        status: status
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl -w printed {written:?}")),
        body: std::fs::read(&body.0).unwrap_or_default(),
        trace: ran.stderr,
    }
}

/// Byte `k` of every `/stream` body and of the uploads: `b'a' + k % 26`.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|k| b'a' + (k % 26) as u8).collect()
}

/// `nghttp -v URL` (bounded): prior knowledge for `http://`, ALPN for `https://`.
pub(crate) fn nghttp(args: &[&str]) -> Ran {
    let nghttp = Tool::Nghttp.program().expect("checked by the caller");
    let ran = run(
        Command::new(nghttp).args(["-v", "--timeout=30"]).args(args),
        b"",
        CLIENT_TIMEOUT,
    );
    ran.assert_success(&format!("nghttp -v {args:?}"));
    ran
}

/// Checks an `nghttp -v` trace shows the server's side of the SETTINGS exchange (its own
/// SETTINGS, and its ACK of the client's), a `200` on a stream, `body` after it, and no GOAWAY
/// from the server. (Whether nghttp logs its own ACK depends on timing: it may finish the
/// exchange and close before it sends one.)
pub(crate) fn assert_nghttp_exchange(ran: &Ran, body: &str) {
    let trace = ran.text();
    let has = |needle: &str| trace.contains(needle);
    assert!(
        trace
            .lines()
            .any(|l| l.contains("recv SETTINGS frame <length=") && l.contains("flags=0x00")),
        "no SETTINGS from the server:\n{trace}"
    );
    assert!(
        has("recv SETTINGS frame <length=0, flags=0x01"),
        "the server did not acknowledge nghttp's SETTINGS:\n{trace}"
    );
    assert!(has(":status: 200"), "no 200:\n{trace}");
    assert!(has(body), "no {body:?} in the output:\n{trace}");
    assert!(!has("recv GOAWAY"), "the server sent GOAWAY:\n{trace}");
}

/// The counts of an h2load run: its `requests:` and `status codes:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct H2loadCounts {
    pub(crate) total: u64,
    pub(crate) started: u64,
    pub(crate) done: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) errored: u64,
    pub(crate) timeout: u64,
    pub(crate) status_2xx: u64,
}

impl H2loadCounts {
    /// Parses h2load's summary: `requests: 100 total, 100 started, 100 done, 100 succeeded,
    /// 0 failed, 0 errored, 0 timeout` and `status codes: 100 2xx, ...`; `None` when the
    /// requests line is missing.
    pub(crate) fn parse(output: &str) -> Option<H2loadCounts> {
        let mut counts = H2loadCounts::default();
        let requests = output.lines().find_map(|l| l.strip_prefix("requests: "))?;
        for item in requests.split(',') {
            let mut words = item.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                return None;
            };
            let n: u64 = n.parse().ok()?;
            match what {
                "total" => counts.total = n,
                "started" => counts.started = n,
                "done" => counts.done = n,
                "succeeded" => counts.succeeded = n,
                "failed" => counts.failed = n,
                "errored" => counts.errored = n,
                "timeout" => counts.timeout = n,
                _ => {}
            }
        }
        let statuses = output
            .lines()
            .find_map(|l| l.strip_prefix("status codes: "))?;
        counts.status_2xx = statuses
            .split(',')
            .find_map(|item| item.trim().strip_suffix(" 2xx"))?
            .parse()
            .ok()?;
        Some(counts)
    }
}

/// `h2load -n REQUESTS -c 4 -m 10 URL` (h2c prior knowledge for `http://`), checking every
/// request succeeded with a 2xx and none failed, errored or timed out.
pub(crate) fn h2load_all_succeed(url: &str, requests: u64) {
    let h2load = Tool::H2load.program().expect("checked by the caller");
    let n = requests.to_string();
    let ran = run(
        Command::new(h2load).args(["-n", &n, "-c", "4", "-m", "10", "-T", "30", url]),
        b"",
        Duration::from_secs(600),
    );
    let output = ran.text();
    let counts = H2loadCounts::parse(&output).unwrap_or_else(|| {
        panic!(
            "no h2load summary ({}):\n{output}\n{}",
            ran.status, ran.stderr
        )
    });
    let expected = H2loadCounts {
        total: requests,
        started: requests,
        done: requests,
        succeeded: requests,
        failed: 0,
        errored: 0,
        timeout: 0,
        status_2xx: requests,
    };
    assert_eq!(
        counts, expected,
        "h2load against {url}:\n{output}\n{}",
        ran.stderr
    );
    ran.assert_success("h2load");
}

/// Runs `runtimes/tests/h2/SCRIPT HOST PORT [--tls] [--case C]...` with the Python that has
/// `h2`, and fails the test with the script's report unless every case passed.
pub(crate) fn python_script(script: &str, addr: std::net::SocketAddr, tls: bool, cases: &[&str]) {
    let ran = run(
        &mut python_command(script, addr, tls, cases),
        b"",
        CLIENT_TIMEOUT,
    );
    ran.assert_success(&format!("{script} against {addr} (tls: {tls})"));
    let report = ran.text();
    assert!(
        report.lines().any(|l| l.starts_with("ok ")) && !report.contains("FAIL"),
        "{script} reported no passing case:\n{report}"
    );
    // Cases skipped inside a script (a server that advertises no limit) are shown.
    for line in report.lines().filter(|l| l.starts_with("SKIP")) {
        println!("{script}: {line}");
    }
}

/// The command that runs a Python client against `addr`.
pub(crate) fn python_command(
    script: &str,
    addr: std::net::SocketAddr,
    tls: bool,
    cases: &[&str],
) -> Command {
    let python = Tool::PythonH2.program().expect("checked by the caller");
    let mut command = Command::new(python);
    command
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(scripts_dir().join(script))
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string());
    if tls {
        command.arg("--tls");
    }
    for case in cases {
        command.args(["--case", case]);
    }
    command
}
