//! `weft echo` over HTTP/2, binary-level: the real `weft` executable is started on
//! `127.0.0.1:0` (with `--tls-cert`/`--tls-key` for the TLS cases), its address is read from
//! the line it prints, and real HTTP/2 clients talk to it: `curl` (prior knowledge,
//! `Upgrade: h2c`, TLS with ALPN `h2`), `nghttp`, `h2load`, and the Python clients of
//! `runtimes/tests/h2/` (flow control, stream errors, GOAWAY and graceful shutdown on SIGINT).
//!
//! Every case runs once per runtime the binary lists in `weft echo --help`, except the load
//! case: h2load sends [`H2LOAD_REQUESTS`] (100 000) requests to one runtime, [`LOAD_RUNTIME`]
//! (the runtime matrix in `runtimes/tests/every_runtime_h2.rs` sends as many to each runtime
//! of the library). A case that fails on one runtime still runs on the others; the test then
//! fails naming them all.
//!
//! The clients are installed by `scripts/test`; a case whose client is missing prints a
//! `SKIPPED` line naming it and returns. Every wait is bounded, and a server is killed when its
//! test ends, even by a panic.

#[path = "../../runtimes/tests/support_h2/clients.rs"]
mod clients;
#[path = "support/echo_process.rs"]
mod echo_process;

use std::process::Stdio;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use clients::{CLIENT_TIMEOUT, Tool, curl, pattern};
use echo_process::{Certificate, Server, for_each_runtime, lines_of, runtimes};

/// Requests h2load sends in the load case.
const H2LOAD_REQUESTS: u64 = 100_000;

/// The runtime the load case runs on (the first compiled-in runtime when it is not).
const LOAD_RUNTIME: &str = "mio";

/// The size of the body posted to `/echo`.
const UPLOAD: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

#[test]
fn curl_with_prior_knowledge_gets_streams_and_echoes_1_mib() {
    if !Tool::Curl.available("curl_with_prior_knowledge_gets_streams_and_echoes_1_mib") {
        return;
    }
    for_each_runtime(|runtime| {
        let server = Server::start(runtime, &[]);
        let get = |path: &str| curl(&["--http2-prior-knowledge", &server.url(path)], b"");
        let reply = get("/plaintext");
        assert_eq!(
            (reply.version.as_str(), reply.status),
            ("2", 200),
            "{runtime}"
        );
        assert_eq!(reply.body, b"Hello, World!", "{runtime}");
        let reply = get("/json");
        assert_eq!(reply.body, br#"{"message":"Hello, World!"}"#, "{runtime}");
        assert!(
            reply.trace.contains("content-type: application/json"),
            "{runtime}: {}",
            reply.trace
        );
        let reply = get("/stream?chunks=40&size=1000");
        assert_eq!(reply.version, "2", "{runtime}");
        assert!(reply.body == pattern(40_000), "{runtime}: /stream's body");

        let upload = pattern(UPLOAD);
        let reply = curl(
            &[
                "--http2-prior-knowledge",
                "-H",
                "content-type: application/octet-stream",
                "--data-binary",
                "@-",
                &server.url("/echo"),
            ],
            &upload,
        );
        assert_eq!(
            (reply.version.as_str(), reply.status),
            ("2", 200),
            "{runtime}"
        );
        assert_eq!(reply.body.len(), UPLOAD, "{runtime}: the echo's length");
        assert!(reply.body == upload, "{runtime}: the echo differs");
        server.stop(runtime);
    });
}

#[test]
fn curl_upgrade_h2c_gets_101_then_http2() {
    if !Tool::Curl.available("curl_upgrade_h2c_gets_101_then_http2") {
        return;
    }
    for_each_runtime(|runtime| {
        let server = Server::start(runtime, &[]);
        let reply = curl(&["--http2", &server.url("/plaintext")], b"");
        assert!(
            reply.trace.contains("< HTTP/1.1 101"),
            "{runtime}: no 101 Switching Protocols:\n{}",
            reply.trace
        );
        assert_eq!(
            (reply.version.as_str(), reply.status),
            ("2", 200),
            "{runtime}: {}",
            reply.trace
        );
        assert_eq!(reply.body, b"Hello, World!", "{runtime}");
        server.stop(runtime);
    });
}

#[test]
fn curl_over_tls_gets_h2_by_alpn() {
    if !Tool::Curl.available("curl_over_tls_gets_h2_by_alpn") {
        return;
    }
    let certificate = Certificate::new();
    for_each_runtime(|runtime| {
        let server = Server::start(runtime, &certificate.flags());
        let port = server.addr.port();
        let resolve = format!("localhost:{port}:127.0.0.1");
        let url = format!("https://localhost:{port}/plaintext");
        let args = [
            "--http2",
            "--cacert",
            &certificate.cert,
            "--resolve",
            &resolve,
        ];
        let reply = curl(&[&args[..], &[&url]].concat(), b"");
        assert_eq!(
            (reply.version.as_str(), reply.status),
            ("2", 200),
            "{runtime}: {}",
            reply.trace
        );
        assert_eq!(reply.body, b"Hello, World!", "{runtime}");
        // Asking for HTTP/1.1 only still works: ALPN picks it.
        let args = [
            "--http1.1",
            "--cacert",
            &certificate.cert,
            "--resolve",
            &resolve,
        ];
        let reply = curl(&[&args[..], &[&url]].concat(), b"");
        assert_eq!(reply.version, "1.1", "{runtime}: {}", reply.trace);
        server.stop(runtime);
    });
}

// ---------------------------------------------------------------------------------------------
// nghttp and h2load
// ---------------------------------------------------------------------------------------------

#[test]
fn nghttp_exchanges_settings_in_cleartext_and_over_tls() {
    if !Tool::Nghttp.available("nghttp_exchanges_settings_in_cleartext_and_over_tls") {
        return;
    }
    let certificate = Certificate::new();
    for_each_runtime(|runtime| {
        let server = Server::start(runtime, &[]);
        let ran = clients::nghttp(&[&server.url("/plaintext")]);
        clients::assert_nghttp_exchange(&ran, "Hello, World!");
        server.stop(runtime);

        let server = Server::start(runtime, &certificate.flags());
        let ran = clients::nghttp(&[&format!("https://{}/json", server.addr)]);
        clients::assert_nghttp_exchange(&ran, r#"{"message":"Hello, World!"}"#);
        server.stop(runtime);
    });
}

#[test]
fn h2load_100_000_requests_all_succeed() {
    if !Tool::H2load.available("h2load_100_000_requests_all_succeed") {
        return;
    }
    let runtime = runtimes()
        .iter()
        .find(|r| *r == LOAD_RUNTIME)
        .unwrap_or(&runtimes()[0]);
    let server = Server::start(runtime, &[]);
    clients::h2load_all_succeed(&server.url("/plaintext"), H2LOAD_REQUESTS);
    println!("{runtime}: h2load, {H2LOAD_REQUESTS} requests over 4 connections, all 2xx");
    server.stop(runtime);
}

// ---------------------------------------------------------------------------------------------
// The Python clients
// ---------------------------------------------------------------------------------------------

/// Runs a Python client against `weft echo` on every runtime.
fn python_on_every_runtime(case: &str, script: &str) {
    if !Tool::PythonH2.available(case) {
        return;
    }
    for_each_runtime(|runtime| {
        let server = Server::start(runtime, &[]);
        clients::python_script(script, server.addr, false, &[]);
        server.stop(runtime);
    });
}

#[test]
fn python_flow_control() {
    python_on_every_runtime("python_flow_control", "flow_control.py");
}

#[test]
fn python_stream_errors() {
    python_on_every_runtime("python_stream_errors", "stream_errors.py");
}

#[test]
fn python_goaway() {
    python_on_every_runtime("python_goaway", "goaway.py");
}

/// A CONNECT tunnel over an HTTP/2 stream (`weft echo` echoes through it), on every runtime.
#[test]
fn python_connect_tunnel() {
    python_on_every_runtime("python_connect_tunnel", "tunnel.py");
}

/// The three Python clients over TLS (ALPN `h2`), on every runtime.
#[test]
fn python_clients_over_tls() {
    if !Tool::PythonH2.available("python_clients_over_tls") {
        return;
    }
    let certificate = Certificate::new();
    for_each_runtime(|runtime| {
        let server = Server::start(runtime, &certificate.flags());
        for script in [
            "flow_control.py",
            "stream_errors.py",
            "goaway.py",
            "tunnel.py",
        ] {
            clients::python_script(script, server.addr, true, &[]);
        }
        server.stop(runtime);
    });
}

/// SIGINT while a POST is in flight: the server sends GOAWAY NO_ERROR covering the stream,
/// lets it finish, closes the connection and exits 0 (`goaway.py --case server-shutdown`).
#[test]
fn sigint_sends_goaway_and_finishes_the_stream_in_flight() {
    if !Tool::PythonH2.available("sigint_sends_goaway_and_finishes_the_stream_in_flight") {
        return;
    }
    for_each_runtime(|runtime| {
        let mut server = Server::start(runtime, &[]);
        let mut script =
            clients::python_command("goaway.py", server.addr, false, &["server-shutdown"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("python starts");
        let script_stderr = clients::drain(script.stderr.take().expect("piped"));
        let lines = lines_of(script.stdout.take().expect("piped"));
        let mut report = Vec::new();
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        let ready = loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line == "READY" => break true,
                Ok(line) => report.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break false,
            }
        };
        if ready {
            server.interrupt();
        }
        let status = clients::wait_with_timeout(&mut script, CLIENT_TIMEOUT);
        if status.is_none() {
            let _ = script.kill();
            let _ = script.wait();
        }
        // The script has ended: the rest of its report is in the channel or on its way.
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
            report.push(line);
        }
        let script_stderr =
            String::from_utf8_lossy(&script_stderr.join().unwrap_or_default()).into_owned();
        let report = report.join("\n");
        assert!(
            ready,
            "{runtime}: the script never printed READY:\n{report}\n{script_stderr}"
        );
        assert!(
            status.is_some_and(|s| s.success()),
            "{runtime}: goaway.py --case server-shutdown ({status:?}):\n{report}\n{script_stderr}\
             \nserver stderr:\n{}",
            server.stderr()
        );
        let exit = server.wait_exit();
        assert!(
            exit.is_some_and(|s| s.success()),
            "{runtime}: the server did not exit 0 after SIGINT ({exit:?}); stderr:\n{}",
            server.stderr()
        );
    });
}
