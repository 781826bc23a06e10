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
#[path = "support/echo_process.rs"]
#[allow(dead_code)]
mod echo_process;
#[path = "../../runtimes/tests/support_ws/python.rs"]
mod python;

use std::panic::{AssertUnwindSafe, catch_unwind};

use echo_process::{Certificate, Server, for_each_runtime};

/// `ws://127.0.0.1:PORT{path}`, or `wss://localhost:PORT{path}` over TLS (the certificate names
/// `localhost`).
fn ws_url(server: &Server, tls: bool, path: &str) -> String {
    if tls {
        format!("wss://localhost:{}{path}", server.addr.port())
    } else {
        format!("ws://{}{path}", server.addr)
    }
}

/// Runs a client script against `server`, adding the server's log to a failure.
fn run_script(server: &Server, runtime: &str, script: &str, args: &[&str]) {
    let outcome = catch_unwind(AssertUnwindSafe(|| python::run_script(script, args)));
    if let Err(panic) = outcome {
        eprintln!(
            "{runtime}: {script} failed; the server's stderr:\n{}",
            server.stderr()
        );
        std::panic::resume_unwind(panic);
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
        let flags = certificate.as_ref().map(Certificate::flags);
        let server = Server::start(runtime, flags.as_ref().map_or(&[][..], |f| &f[..]));
        let url = ws_url(&server, tls, "/ws");
        let mut all = vec![url.as_str()];
        all.extend_from_slice(args);
        if let Some(certificate) = &certificate {
            all.extend(["--cafile", certificate.cert.as_str()]);
        }
        run_script(&server, runtime, script, &all);
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
