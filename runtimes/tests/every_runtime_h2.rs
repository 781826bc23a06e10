//! HTTP/2 on every runtime compiled in, against real clients: `curl` (prior knowledge,
//! `Upgrade: h2c`, TLS with ALPN), `nghttp`, `h2load`, and the Python clients of `tests/h2/`
//! (flow control, stream errors, GOAWAY). Each case in [`cases`] is a function of the
//! runtime's `start`; [`every_runtime!`] makes one `#[test]` per runtime per case
//! (`mio::h2load_requests_all_succeed`), so a failure names both.
//!
//! The clients are installed by `scripts/test`; a case whose client is missing prints a
//! `SKIPPED` line naming it and returns. h2load sends [`H2LOAD_REQUESTS`] (100 000) requests to
//! each runtime over h2c, and [`H2LOAD_TLS_REQUESTS`] over TLS.
//!
//! Servers listen on 127.0.0.1:0; every wait is bounded, and no assertion is about time.
#![cfg_attr(
    not(any(
        feature = "smol",
        feature = "async-std",
        feature = "tokio",
        feature = "threadpool",
        feature = "mio",
        feature = "poll"
    )),
    allow(dead_code, unused_imports)
)]

mod support_h2;

/// Requests h2load sends to each runtime over h2c.
const H2LOAD_REQUESTS: u64 = 100_000;

/// Requests h2load sends to each runtime over TLS (the handshake and record layer make a debug
/// build slower per request, so fewer, to keep the suite short).
const H2LOAD_TLS_REQUESTS: u64 = 20_000;

#[macro_use]
mod every_runtime_macro;

/// The cases for one runtime, in a module named after it.
macro_rules! runtime_suite {
    ($feature:literal, $runtime:ident, { $($case:ident,)* }) => {
        #[cfg(feature = $feature)]
        mod $runtime {
            $(
                #[test]
                fn $case() {
                    super::cases::$case(weft_runtime::$runtime::start::<super::support_h2::H2App>);
                }
            )*
        }
    };
}

every_runtime!({
    curl_prior_knowledge_gets_and_echoes_1_mib,
    curl_upgrade_h2c_switches_to_http2,
    curl_over_tls_negotiates_h2_with_alpn,
    nghttp_exchanges_settings_and_gets_a_response,
    nghttp_over_tls_exchanges_settings_and_gets_a_response,
    h2load_requests_all_succeed,
    h2load_over_tls_requests_all_succeed,
    python_flow_control,
    python_flow_control_over_tls,
    python_stream_errors,
    python_goaway,
    python_graceful_shutdown_finishes_the_stream_in_flight,
});

mod cases {
    use std::io::{BufRead, BufReader};
    use std::sync::{Mutex, MutexGuard, PoisonError, mpsc};
    use std::thread;
    use std::time::Duration;

    use crate::support_h2::clients::{self, CLIENT_TIMEOUT, Tool, curl, pattern};
    use crate::support_h2::{H2Server, HELLO, Start, TestCertificate};

    /// The size of the body posted to `/echo`.
    const UPLOAD: usize = 1024 * 1024;

    /// Cases heavy on CPU (h2load, the Python clients) run one at a time, so they neither
    /// starve the rest of the suite nor each other.
    fn heavy() -> MutexGuard<'static, ()> {
        static HEAVY: Mutex<()> = Mutex::new(());
        HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn curl_prior_knowledge_gets_and_echoes_1_mib(start: Start) {
        if !Tool::Curl.available("curl_prior_knowledge_gets_and_echoes_1_mib") {
            return;
        }
        let server = H2Server::start(start, None);
        let reply = curl(&["--http2-prior-knowledge", &server.url("/plaintext")], b"");
        assert_eq!(reply.version, "2", "{}", reply.trace);
        assert_eq!(reply.status, 200, "{}", reply.trace);
        assert_eq!(reply.body, HELLO.as_bytes());

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
        assert_eq!(reply.version, "2", "{}", reply.trace);
        assert_eq!(reply.status, 200, "{}", reply.trace);
        assert_eq!(reply.body.len(), UPLOAD, "the echo's length");
        assert!(reply.body == upload, "the echo differs from the upload");
        server.stop();
    }

    pub(crate) fn curl_upgrade_h2c_switches_to_http2(start: Start) {
        if !Tool::Curl.available("curl_upgrade_h2c_switches_to_http2") {
            return;
        }
        let server = H2Server::start(start, None);
        // Without prior knowledge curl asks for `Upgrade: h2c` on an HTTP/1.1 request.
        let reply = curl(&["--http2", &server.url("/plaintext")], b"");
        assert!(
            reply.trace.contains("Upgrade: h2c"),
            "curl did not offer the upgrade:\n{}",
            reply.trace
        );
        assert!(
            reply.trace.contains("< HTTP/1.1 101"),
            "no 101 Switching Protocols:\n{}",
            reply.trace
        );
        assert_eq!(reply.version, "2", "{}", reply.trace);
        assert_eq!(reply.status, 200, "{}", reply.trace);
        assert_eq!(reply.body, HELLO.as_bytes());
        server.stop();
    }

    pub(crate) fn curl_over_tls_negotiates_h2_with_alpn(start: Start) {
        if !Tool::Curl.available("curl_over_tls_negotiates_h2_with_alpn") {
            return;
        }
        let certificate = TestCertificate::new();
        let server = H2Server::start(start, Some(certificate.files.clone()));
        let port = server.addr.port();
        let resolve = format!("localhost:{port}:127.0.0.1");
        let url = |path: &str| format!("https://localhost:{port}{path}");
        let tls = [
            "--http2",
            "--cacert",
            certificate.cert_path(),
            "--resolve",
            &resolve,
        ];
        let reply = curl(&[&tls[..], &[&url("/plaintext")]].concat(), b"");
        assert!(
            reply.trace.contains("ALPN: server accepted h2")
                || reply.trace.contains("ALPN, server accepted to use h2"),
            "the server did not pick h2 by ALPN:\n{}",
            reply.trace
        );
        assert_eq!(reply.version, "2", "{}", reply.trace);
        assert_eq!(reply.status, 200, "{}", reply.trace);
        assert_eq!(reply.body, HELLO.as_bytes());

        let upload = pattern(UPLOAD);
        let post = ["--data-binary", "@-"];
        let reply = curl(&[&tls[..], &post, &[&url("/echo")]].concat(), &upload);
        assert_eq!(reply.version, "2", "{}", reply.trace);
        assert!(
            reply.body == upload,
            "the echo over TLS differs from the upload"
        );
        server.stop();
    }

    pub(crate) fn nghttp_exchanges_settings_and_gets_a_response(start: Start) {
        if !Tool::Nghttp.available("nghttp_exchanges_settings_and_gets_a_response") {
            return;
        }
        let server = H2Server::start(start, None);
        let ran = clients::nghttp(&[&server.url("/plaintext")]);
        clients::assert_nghttp_exchange(&ran, HELLO);
        server.stop();
    }

    pub(crate) fn nghttp_over_tls_exchanges_settings_and_gets_a_response(start: Start) {
        if !Tool::Nghttp.available("nghttp_over_tls_exchanges_settings_and_gets_a_response") {
            return;
        }
        let certificate = TestCertificate::new();
        let server = H2Server::start(start, Some(certificate.files.clone()));
        // nghttp does not verify the certificate; ALPN must still pick h2 for it to talk.
        let url = format!("https://{}/plaintext", server.addr);
        let ran = clients::nghttp(&[&url]);
        clients::assert_nghttp_exchange(&ran, HELLO);
        server.stop();
    }

    pub(crate) fn h2load_over_tls_requests_all_succeed(start: Start) {
        if !Tool::H2load.available("h2load_over_tls_requests_all_succeed") {
            return;
        }
        let _heavy = heavy();
        let certificate = TestCertificate::new();
        let server = H2Server::start(start, Some(certificate.files.clone()));
        let url = format!("https://{}/plaintext", server.addr);
        clients::h2load_all_succeed(&url, super::H2LOAD_TLS_REQUESTS);
        server.stop();
    }

    pub(crate) fn h2load_requests_all_succeed(start: Start) {
        if !Tool::H2load.available("h2load_requests_all_succeed") {
            return;
        }
        let _heavy = heavy();
        let server = H2Server::start(start, None);
        clients::h2load_all_succeed(&server.url("/plaintext"), super::H2LOAD_REQUESTS);
        server.stop();
    }

    /// Runs one Python client against a fresh server (TLS when `tls`).
    fn python(start: Start, case: &str, script: &str, tls: bool) {
        if !Tool::PythonH2.available(case) {
            return;
        }
        let _heavy = heavy();
        let certificate = tls.then(TestCertificate::new);
        let server = H2Server::start(start, certificate.as_ref().map(|c| c.files.clone()));
        clients::python_script(script, server.addr, tls, &[]);
        server.stop();
    }

    pub(crate) fn python_flow_control(start: Start) {
        python(start, "python_flow_control", "flow_control.py", false);
    }

    pub(crate) fn python_flow_control_over_tls(start: Start) {
        python(
            start,
            "python_flow_control_over_tls",
            "flow_control.py",
            true,
        );
    }

    pub(crate) fn python_stream_errors(start: Start) {
        python(start, "python_stream_errors", "stream_errors.py", false);
    }

    pub(crate) fn python_goaway(start: Start) {
        python(start, "python_goaway", "goaway.py", false);
    }

    /// `goaway.py --case server-shutdown`: once its POST is in flight it prints `READY`; the
    /// server is then shut down, and the script checks the GOAWAY, the stream's completion and
    /// the close.
    pub(crate) fn python_graceful_shutdown_finishes_the_stream_in_flight(start: Start) {
        if !Tool::PythonH2.available("python_graceful_shutdown_finishes_the_stream_in_flight") {
            return;
        }
        let _heavy = heavy();
        let server = H2Server::start(start, None);
        let mut child =
            clients::python_command("goaway.py", server.addr, false, &["server-shutdown"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("python starts");
        let stderr = clients::drain(child.stderr.take().expect("piped"));
        let (lines_tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut report = Vec::new();
        let ready = loop {
            match lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line == "READY" => break true,
                Ok(line) => report.push(line),
                Err(_) => break false,
            }
        };
        if ready {
            server.begin_shutdown();
        }
        let status = clients::wait_with_timeout(&mut child, CLIENT_TIMEOUT);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The script has exited (or was killed): its stdout is at its end.
        let _ = reader.join();
        report.extend(lines.try_iter());
        let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
        let report = report.join("\n");
        assert!(ready, "the script never printed READY:\n{report}\n{stderr}");
        assert!(
            status.is_some_and(|s| s.success()),
            "goaway.py --case server-shutdown ({status:?}):\n{report}\n{stderr}"
        );
        server.stop();
    }
}
