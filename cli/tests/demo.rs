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

/// The value of header `name` in curl's `-v` trace of the response (`< name: value`).
fn response_header(trace: &str, name: &str) -> Option<String> {
    trace.lines().find_map(|line| {
        let line = line.strip_prefix("< ")?;
        let (field, value) = line.split_once(':')?;
        field
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

#[test]
fn curl_sees_the_demos_production_features() {
    if !Tool::Curl.available("curl_sees_the_demos_production_features") {
        return;
    }
    let expected_big = {
        let line = "weft demo: a line of text that repeats, so that it compresses well.\n";
        line.repeat(64 * 1024 / line.len() + 1)[..64 * 1024].to_owned()
    };
    for_each_runtime(|runtime| {
        let server = Server::start_command("demo", runtime, &[]);
        // Compression: what curl decodes is the page, byte for byte, for each coding.
        for coding in ["br", "gzip", "deflate"] {
            for protocol in ["--http1.1", "--http2-prior-knowledge"] {
                let big = curl(
                    &[
                        protocol,
                        "--compressed",
                        "-H",
                        &format!("accept-encoding: {coding}"),
                        &server.url("/big"),
                    ],
                    b"",
                );
                assert_eq!(
                    response_header(&big.trace, "content-encoding").as_deref(),
                    Some(coding),
                    "{runtime} {protocol}"
                );
                assert!(
                    big.body == expected_big.as_bytes(),
                    "{runtime} {protocol} {coding}"
                );
            }
        }
        // Request IDs and security headers.
        let items = curl(&[&server.url("/api/items")], b"");
        assert!(
            response_header(&items.trace, "x-request-id").is_some(),
            "{runtime}"
        );
        assert_eq!(
            response_header(&items.trace, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        // A page's form body over the route's limit: 413 before anything reads it.
        let long = format!("message={}", "a".repeat(64 * 1024));
        let too_long = curl(
            &["--data-binary", "@-", &server.url("/form")],
            long.as_bytes(),
        );
        assert_eq!(too_long.status, 413, "{runtime}");
        // Every request has its access line (method, path, status) in the server's log.
        let log = server.stderr();
        assert!(
            log.lines()
                .any(|line| line.contains("weft::access") && line.contains("/api/items")),
            "{runtime}: no access line for /api/items in:\n{log}"
        );
        // CSRF: a form post without its token is refused.
        let forged = curl(&["--data", "message=hi", &server.url("/form")], b"");
        assert_eq!(forged.status, 403, "{runtime}");
        assert!(
            forged.trace.contains("application/problem+json"),
            "{runtime}"
        );
        // CORS: the allowed origin's preflight is answered, another's refused without CORS
        // headers.
        let preflight = |origin: &str| {
            curl(
                &[
                    "-X",
                    "OPTIONS",
                    "-H",
                    &format!("origin: {origin}"),
                    "-H",
                    "access-control-request-method: POST",
                    &server.url("/api/items"),
                ],
                b"",
            )
        };
        let allowed = preflight("https://app.example");
        assert_eq!(allowed.status, 204, "{runtime}");
        let refused = preflight("https://evil.example");
        assert_eq!(refused.status, 403, "{runtime}");
        assert!(
            response_header(&refused.trace, "access-control-allow-origin").is_none(),
            "{runtime}"
        );
        // ETag and 304.
        let created = curl(
            &[
                "-H",
                "content-type: application/json",
                "--data-binary",
                r#"{"name":"nut","qty":2}"#,
                &server.url("/api/items"),
            ],
            b"",
        );
        let id = serde_json::from_slice::<serde_json::Value>(&created.body).unwrap()["id"]
            .as_u64()
            .unwrap();
        let url = server.url(&format!("/api/items/{id}"));
        let first = curl(&[&url], b"");
        let etag = response_header(&first.trace, "etag").expect("an ETag");
        let again = curl(&["-H", &format!("if-none-match: {etag}"), &url], b"");
        assert_eq!(again.status, 304, "{runtime}");
        // Health, readiness, and error pages by Accept.
        assert_eq!(
            curl(&[&server.url("/health")], b"").status,
            200,
            "{runtime}"
        );
        assert_eq!(curl(&[&server.url("/ready")], b"").status, 200, "{runtime}");
        let page = curl(&["-H", "accept: text/html", &server.url("/nowhere")], b"");
        assert_eq!(page.status, 404, "{runtime}");
        assert!(
            response_header(&page.trace, "content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{runtime}"
        );
        let problem = curl(&[&server.url("/nowhere")], b"");
        assert_eq!(
            response_header(&problem.trace, "content-type").as_deref(),
            Some("application/problem+json"),
            "{runtime}"
        );
        // The rate limit: 5 a minute, then 429 with Retry-After.
        for _ in 0..5 {
            assert_eq!(curl(&[&server.url("/api/limited")], b"").status, 200);
        }
        let limited = curl(&[&server.url("/api/limited")], b"");
        assert_eq!(limited.status, 429, "{runtime}");
        assert!(
            response_header(&limited.trace, "retry-after").is_some(),
            "{runtime}"
        );
        server.stop(runtime);
    });
}
