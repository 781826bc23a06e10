//! `weft echo`'s `/ws` route, binary-level: the real `weft` executable is started on
//! `127.0.0.1:0` (with `--tls-cert`/`--tls-key` for the TLS cases), its address is read from
//! the line it prints, and the Python WebSocket clients of `runtimes/tests/ws/` talk to it:
//! `echo.py` (the `websockets` library, with and without permessage-deflate, in cleartext and
//! over TLS) and `h2_echo.py` (WebSocket over HTTP/2 by extended CONNECT: h2c with prior
//! knowledge, and TLS with ALPN `h2`).
//!
//! Every case runs once per runtime the binary lists in `weft echo --help`. A case that fails on
//! one runtime still runs on the others; the test then fails naming them all. The clients need
//! a python3 with `websockets` and `h2` (python3-websockets, python3-h2); without one a case
//! prints a `SKIPPED` line naming it and returns. Every wait is bounded, and a server is killed
//! when its test ends, even by a panic.

#[path = "../../runtimes/tests/support_h2/clients.rs"]
#[allow(dead_code)]
mod clients;
#[path = "../../runtimes/tests/support_ws/python.rs"]
mod python;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use clients::TempPath;

/// The `weft` binary under test.
const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// How long a server may take to print its address, or to exit once asked to.
const WAIT: Duration = Duration::from_secs(20);

/// The runtimes `weft echo --help` lists on its `Compiled-in runtimes: a, b, c` line.
fn runtimes() -> &'static [String] {
    static RUNTIMES: OnceLock<Vec<String>> = OnceLock::new();
    RUNTIMES.get_or_init(|| {
        let ran = clients::run(Command::new(WEFT).args(["echo", "--help"]), b"", WAIT);
        ran.assert_success("weft echo --help");
        let help = ran.text();
        let line = help
            .lines()
            .find_map(|line| line.trim().strip_prefix("Compiled-in runtimes:"))
            .unwrap_or_else(|| panic!("no `Compiled-in runtimes:` line in:\n{help}"));
        line.split(',')
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect()
    })
}

/// Runs `case` once per compiled-in runtime; then fails naming every runtime that failed.
fn for_each_runtime(case: impl Fn(&str)) {
    let failed: Vec<&str> = runtimes()
        .iter()
        .filter(|runtime| catch_unwind(AssertUnwindSafe(|| case(runtime))).is_err())
        .map(String::as_str)
        .collect();
    assert!(
        failed.is_empty(),
        "failed on runtime(s) {failed:?}; their panic messages are above"
    );
}

/// A running `weft echo`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    tls: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    /// `weft echo --runtime RUNTIME --listen 127.0.0.1:0 EXTRA...`, once it printed its address.
    fn start(runtime: &str, certificate: Option<&Certificate>) -> Server {
        let tls_flags = certificate.map(Certificate::flags);
        let mut child = Command::new(WEFT)
            .args(["echo", "--runtime", runtime, "--listen", "127.0.0.1:0"])
            .args(tls_flags.iter().flatten())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {WEFT}: {error}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let (mut pipe, stderr) = (child.stderr.take().expect("piped"), Arc::clone(&stderr));
            thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                    stderr
                        .lock()
                        .expect("stderr lock")
                        .extend_from_slice(&buffer[..read]);
                }
            });
        }
        let (line_tx, line) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        thread::spawn(move || {
            // The first line is the address; the rest is read (and dropped) so the pipe
            // never fills.
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = line_tx.send(first);
            }
            lines.for_each(drop);
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: certificate.is_some(),
            stderr,
        };
        let Ok(first) = line.recv_timeout(WAIT) else {
            panic!(
                "{runtime}: no address line within {WAIT:?}; stderr:\n{}",
                server.stderr()
            );
        };
        server.addr = first
            .strip_prefix("weft echo listening on ")
            .and_then(|rest| rest.split_once("://"))
            .and_then(|(_, rest)| rest.split_once(' '))
            .and_then(|(addr, _)| addr.parse().ok())
            .unwrap_or_else(|| panic!("{runtime}: unexpected first line {first:?}"));
        server
    }

    /// `ws://127.0.0.1:PORT{path}`, or `wss://localhost:PORT{path}` over TLS.
    fn url(&self, path: &str) -> String {
        if self.tls {
            format!("wss://localhost:{}{path}", self.addr.port())
        } else {
            format!("ws://{}{path}", self.addr)
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// Runs a client script against this server, adding the server's log to a failure.
    fn run_script(&self, runtime: &str, script: &str, args: &[&str]) {
        let outcome = catch_unwind(AssertUnwindSafe(|| python::run_script(script, args)));
        if let Err(panic) = outcome {
            eprintln!(
                "{runtime}: {script} failed; the server's stderr:\n{}",
                self.stderr()
            );
            std::panic::resume_unwind(panic);
        }
    }

    /// SIGINT and a bounded wait, checking the server exits 0.
    fn stop(mut self, runtime: &str) {
        let ran = clients::run(
            Command::new("kill").args(["-INT", &self.child.id().to_string()]),
            b"",
            WAIT,
        );
        ran.assert_success("kill -INT");
        let status = clients::wait_with_timeout(&mut self.child, WAIT);
        assert!(
            status.is_some_and(|s| s.success()),
            "{runtime}: the server did not exit cleanly after SIGINT ({status:?}); stderr:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = clients::wait_with_timeout(&mut self.child, WAIT);
        }
    }
}

/// A self-signed certificate for `localhost` (rcgen), as PEM files.
struct Certificate {
    _dir: TempPath,
    cert: String,
    key: String,
}

impl Certificate {
    fn new() -> Certificate {
        let dir = TempPath::new("ws-tls");
        std::fs::create_dir_all(&dir.0).expect("a temporary folder");
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).expect("write cert.pem");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key.pem");
        Certificate {
            cert: cert.to_str().expect("UTF-8").to_owned(),
            key: key.to_str().expect("UTF-8").to_owned(),
            _dir: dir,
        }
    }

    /// `weft echo`'s TLS flags for it.
    fn flags(&self) -> [String; 4] {
        [
            "--tls-cert".to_owned(),
            self.cert.clone(),
            "--tls-key".to_owned(),
            self.key.clone(),
        ]
    }
}

/// Runs `script URL/ws ARGS...` against `weft echo` on every runtime, over TLS (with
/// `--cafile`) when `tls`.
fn script_on_every_runtime(case: &str, script: &str, tls: bool, args: &[&str]) {
    if !python::available(case) {
        return;
    }
    let certificate = tls.then(Certificate::new);
    for_each_runtime(|runtime| {
        let server = Server::start(runtime, certificate.as_ref());
        let url = server.url("/ws");
        let mut all = vec![url.as_str()];
        all.extend_from_slice(args);
        if let Some(certificate) = &certificate {
            all.extend(["--cafile", certificate.cert.as_str()]);
        }
        server.run_script(runtime, script, &all);
        println!("{runtime}: {script} {args:?} (tls: {tls}) passed");
        server.stop(runtime);
    });
}

#[test]
fn python_echo_with_deflate() {
    script_on_every_runtime(
        "python_echo_with_deflate",
        "echo.py",
        false,
        &["--compression", "deflate"],
    );
}

#[test]
fn python_echo_without_compression() {
    script_on_every_runtime(
        "python_echo_without_compression",
        "echo.py",
        false,
        &["--compression", "none"],
    );
}

#[test]
fn python_echo_over_tls_with_deflate() {
    script_on_every_runtime(
        "python_echo_over_tls_with_deflate",
        "echo.py",
        true,
        &["--compression", "deflate"],
    );
}

#[test]
fn python_echo_over_tls_without_compression() {
    script_on_every_runtime(
        "python_echo_over_tls_without_compression",
        "echo.py",
        true,
        &["--compression", "none"],
    );
}

#[test]
fn python_h2c_echo() {
    script_on_every_runtime(
        "python_h2c_echo",
        "h2_echo.py",
        false,
        &["--compression", "none"],
    );
}

#[test]
fn python_h2c_echo_with_deflate() {
    script_on_every_runtime(
        "python_h2c_echo_with_deflate",
        "h2_echo.py",
        false,
        &["--compression", "deflate"],
    );
}

#[test]
fn python_h2_over_tls_echo() {
    script_on_every_runtime(
        "python_h2_over_tls_echo",
        "h2_echo.py",
        true,
        &["--compression", "none"],
    );
}
