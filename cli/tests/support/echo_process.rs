//! The real `weft echo` binary as the binary-level tests start it: one process per runtime it
//! lists in `weft echo --help`, on `127.0.0.1:0`, its address read from the line it prints,
//! its stderr kept for failure messages, killed when dropped; and a self-signed certificate
//! for its TLS flags. Shared by `echo_h2.rs` and `echo_ws.rs`, which include it with `#[path]`
//! next to `runtimes/tests/support_h2/clients.rs` (as `clients`).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::clients::{self, TempPath};

/// The `weft` binary under test.
pub(crate) const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// How long a server may take to print its address.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a server may take to exit once asked to.
pub(crate) const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// The runtimes `weft echo --help` lists on its `Compiled-in runtimes: a, b, c` line.
pub(crate) fn runtimes() -> &'static [String] {
    static RUNTIMES: OnceLock<Vec<String>> = OnceLock::new();
    RUNTIMES.get_or_init(|| {
        let ran = clients::run(
            Command::new(WEFT).args(["echo", "--help"]),
            b"",
            EXIT_TIMEOUT,
        );
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
pub(crate) fn for_each_runtime(case: impl Fn(&str)) {
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

/// A running `weft echo`, killed when dropped unless it already exited.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Server {
    /// `weft echo --runtime RUNTIME --listen 127.0.0.1:0 EXTRA...`, once it printed its address.
    pub(crate) fn start(runtime: &str, extra: &[&str]) -> Server {
        Server::start_command("echo", runtime, extra)
    }

    /// `weft COMMAND --runtime RUNTIME --listen 127.0.0.1:0 EXTRA...` (`echo` or `demo`), once
    /// it printed its address (`weft COMMAND listening on http://ADDR (RUNTIME)`).
    pub(crate) fn start_command(command: &str, runtime: &str, extra: &[&str]) -> Server {
        let mut process = Command::new(WEFT);
        process
            .args([command, "--runtime", runtime, "--listen", "127.0.0.1:0"])
            .args(extra);
        let prefix = format!("weft {command} listening on ");
        Server::launch(&mut process, runtime, |line| {
            line.strip_prefix(&prefix)
                .and_then(|rest| rest.split_once("://"))
                .and_then(|(_, rest)| rest.split_once(' '))
                .and_then(|(addr, _)| addr.parse().ok())
        })
    }

    /// Starts `process` (its stdio piped here), once its first stdout line gave `address_in`
    /// an address; `label` names it in failure messages.
    pub(crate) fn launch(
        process: &mut Command,
        label: &str,
        address_in: impl Fn(&str) -> Option<SocketAddr>,
    ) -> Server {
        let mut child = process
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {WEFT}: {error}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = {
            let (mut pipe, stderr) = (child.stderr.take().expect("piped"), Arc::clone(&stderr));
            thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                    stderr
                        .lock()
                        .expect("stderr lock")
                        .extend_from_slice(&buffer[..read]);
                }
            })
        };
        let lines = lines_of(child.stdout.take().expect("piped"));
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let line = match lines.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => panic!(
                "{label}: no address line within {START_TIMEOUT:?}; stderr:\n{}",
                server.stderr()
            ),
        };
        server.addr =
            address_in(&line).unwrap_or_else(|| panic!("{label}: unexpected first line {line:?}"));
        server
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// `kill -INT`.
    pub(crate) fn interrupt(&self) {
        let ran = clients::run(
            Command::new("kill").args(["-INT", &self.child.id().to_string()]),
            b"",
            EXIT_TIMEOUT,
        );
        ran.assert_success("kill -INT");
    }

    /// Waits (bounded) for the process to exit, then for its log to be read whole.
    pub(crate) fn wait_exit(&mut self) -> Option<ExitStatus> {
        let status = clients::wait_with_timeout(&mut self.child, EXIT_TIMEOUT)?;
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        Some(status)
    }

    /// SIGINT and a bounded wait, checking the server exits 0.
    pub(crate) fn stop(mut self, runtime: &str) {
        if let Ok(None) = self.child.try_wait() {
            self.interrupt();
        }
        let status = self.wait_exit();
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
            let _ = clients::wait_with_timeout(&mut self.child, EXIT_TIMEOUT);
        }
    }
}

/// The lines of `reader`, read on a thread of their own.
pub(crate) fn lines_of<R: Read + Send + 'static>(reader: R) -> Receiver<String> {
    let (lines_tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A self-signed certificate for `localhost` (rcgen), as PEM files.
pub(crate) struct Certificate {
    _dir: TempPath,
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Certificate {
    pub(crate) fn new() -> Certificate {
        let dir = TempPath::new("tls");
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
    pub(crate) fn flags(&self) -> [&str; 4] {
        ["--tls-cert", &self.cert, "--tls-key", &self.key]
    }
}
