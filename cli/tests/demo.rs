//! `weft demo`, binary-level: the real `weft` executable serves the demo app on each runtime it
//! lists, and curl (HTTP/1.1 and HTTP/2 prior knowledge) uses it as a client would: the page,
//! the JSON API with validation, typed params, the big page, and a panicking handler after
//! which the server still answers.

// Shared with the echo tests, which use more of them.
#[allow(dead_code)]
#[path = "../../runtimes/tests/support_h2/clients.rs"]
mod clients;
#[allow(dead_code)]
#[path = "support/echo_process.rs"]
mod echo_process;

use clients::{Tool, curl};
use echo_process::{Server, for_each_runtime};

#[test]
fn curl_uses_the_demo_on_every_runtime() {
    if !Tool::Curl.available("curl_uses_the_demo_on_every_runtime") {
        return;
    }
    for_each_runtime(|runtime| {
        let server = Server::start_command("demo", runtime, &[]);
        for protocol in ["--http1.1", "--http2-prior-knowledge"] {
            let home = curl(&[protocol, &server.url("/")], b"");
            assert_eq!(home.status, 200, "{runtime} {protocol}");
            assert!(
                String::from_utf8_lossy(&home.body).contains("<form"),
                "{runtime}"
            );

            let created = curl(
                &[
                    protocol,
                    "-H",
                    "content-type: application/json",
                    "--data-binary",
                    r#"{"name":"bolt","qty":3}"#,
                    &server.url("/api/items"),
                ],
                b"",
            );
            assert_eq!(created.status, 201, "{runtime} {protocol}");
            let item: serde_json::Value = serde_json::from_slice(&created.body).unwrap();
            let id = item["id"].as_u64().unwrap();
            let read = curl(&[protocol, &server.url(&format!("/api/items/{id}"))], b"");
            assert_eq!(read.status, 200, "{runtime} {protocol}");

            let refused = curl(
                &[
                    protocol,
                    "-H",
                    "content-type: application/json",
                    "--data-binary",
                    r#"{"name":"","qty":5000}"#,
                    &server.url("/api/items"),
                ],
                b"",
            );
            assert_eq!(refused.status, 400, "{runtime} {protocol}");
            assert!(
                refused.trace.contains("application/problem+json"),
                "{runtime}"
            );

            let big = curl(&[protocol, &server.url("/big")], b"");
            assert_eq!(big.body.len(), 64 * 1024, "{runtime} {protocol}");

            let panicked = curl(&[protocol, &server.url("/panic")], b"");
            assert_eq!(panicked.status, 500, "{runtime} {protocol}");
            let after = curl(&[protocol, &server.url("/api/items")], b"");
            assert_eq!(
                after.status, 200,
                "{runtime} {protocol}: the server lives on"
            );
        }
        server.stop(runtime);
    });
}
