//! The Python WebSocket clients of `runtimes/tests/ws/` (`echo.py`, `h2_echo.py`, `rooms.py`,
//! `refuse.py`), run as bounded child processes by a python3 that has both `websockets` and
//! `h2`. Only `std` and `super::clients` (`support_h2/clients.rs`), so that
//! `cli/tests/echo_ws.rs` includes this file too.
//!
//! `scripts/test` is to install python3-websockets and python3-h2. A case whose interpreter is
//! missing is skipped with a `SKIPPED` line naming it (see [`available`]), never passed
//! silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::clients;

/// How long one script may run before it is killed (a bound, not a measured time): `rooms.py`
/// pushes several MiB through a debug build to tens of clients.
pub(crate) const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// The folder of the Python clients, `runtimes/tests/ws`, found from the crate being tested
/// (weft-runtime or weft-cli), both of which sit at the top of the workspace.
pub(crate) fn scripts_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("runtimes")
        .join("tests")
        .join("ws")
}

/// The first of `python3` (PATH) and `/usr/bin/python3` that can import `websockets` and `h2`:
/// the distribution's packages install for the system interpreter, which a pyenv `python3`
/// earlier on PATH does not see.
pub(crate) fn python() -> Option<&'static str> {
    static PYTHON: OnceLock<Option<&'static str>> = OnceLock::new();
    *PYTHON.get_or_init(|| {
        ["python3", "/usr/bin/python3"].into_iter().find(|python| {
            Command::new(python)
                .args(["-c", "import websockets, h2, hpack, hyperframe"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
    })
}

/// Whether the clients can run; when not, prints a `SKIPPED` line for `case` (visible with
/// `--nocapture`, and in the output of a failing run) so the skip is never silent.
pub(crate) fn available(case: &str) -> bool {
    if python().is_some() {
        return true;
    }
    let line = format!(
        "SKIPPED {case}: no python3 with the websockets and h2 modules (apt-get install \
         python3-websockets python3-h2)"
    );
    println!("{line}");
    eprintln!("{line}");
    false
}

/// Runs `runtimes/tests/ws/SCRIPT ARGS...`, and fails the test with the script's report unless
/// it exited 0 having passed at least one case and failed none. Returns the report (the
/// script's stdout), whose lines are also printed.
pub(crate) fn run_script(script: &str, args: &[&str]) -> String {
    let python = python().expect("checked by the caller");
    let ran = clients::run(
        Command::new(python)
            // No __pycache__ left in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(scripts_dir().join(script))
            .args(args),
        b"",
        SCRIPT_TIMEOUT,
    );
    ran.assert_success(&format!("{script} {args:?}"));
    let report = ran.text();
    assert!(
        report.lines().any(|line| line.starts_with("ok ")) && !report.contains("FAIL"),
        "{script} {args:?} reported no passing case:\n{report}\n{}",
        ran.stderr
    );
    for line in report.lines().filter(|line| !line.starts_with("ok ")) {
        println!("{script}: {line}");
    }
    report
}
