//! `weft demo` attacked as the production checklist says, on the mio and thread-pool runtimes:
//! a compression bomb, 10 000 client addresses through a trusted proxy (the rate limiter's
//! memory stays bounded and it still limits), forged `X-Forwarded-For` from an untrusted peer,
//! a CORS preflight from a disallowed origin, a cross-site form post, oversized JSON and a
//! burst over the rate limit. Each is answered with its status as problem+json, nothing
//! internal leaks, and the server is healthy afterwards.

// Shared with the echo tests, which use more of them.
#[allow(dead_code)]
#[path = "../../runtimes/tests/support_h2/clients.rs"]
mod clients;
#[allow(dead_code)]
#[path = "support/echo_process.rs"]
mod echo_process;

use std::io::Write;
use std::process::Command;

use clients::{CLIENT_TIMEOUT, CurlReply, Tool, curl, run};
use echo_process::{Server, runtimes};

/// The runtimes the checklist names, where compiled in.
const RUNTIMES: [&str; 2] = ["mio", "threadpool"];

/// Distinct client addresses sent through the trusted proxy header.
const ADDRESSES: usize = 10_000;

/// What the server's resident memory may grow by while [`ADDRESSES`] clients pass: the rate
/// limiter keeps 4 096 keys at most, a few hundred KiB; the rest is allowance for allocator
/// noise in a debug build.
const RSS_GROWTH_LIMIT_KIB: u64 = 48 * 1024;

fn each_runtime(case: impl Fn(&str)) {
    for runtime in RUNTIMES {
        if runtimes().iter().any(|r| r == runtime) {
            case(runtime);
        }
    }
}

/// The value of header `name` in curl's `-v` trace of the response.
fn response_header(trace: &str, name: &str) -> Option<String> {
    trace.lines().find_map(|line| {
        let (field, value) = line.strip_prefix("< ")?.split_once(':')?;
        field
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Asserts a refusal: `status`, problem+json with `code`, and nothing internal in the body.
fn assert_refused(reply: &CurlReply, status: u16, code: &str, what: &str) {
    assert_eq!(
        reply.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        response_header(&reply.trace, "content-type").as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    let body: serde_json::Value =
        serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{what}: not JSON ({e})"));
    assert_eq!(body["code"], code, "{what}: {body}");
    let text = body.to_string();
    for leak in ["panicked", "src/", "/root", "backtrace", "RUST_"] {
        assert!(!text.contains(leak), "{what} leaks {leak:?}: {text}");
    }
}

fn assert_healthy(server: &Server, what: &str) {
    assert_eq!(curl(&[&server.url("/health")], b"").status, 200, "{what}");
    assert_eq!(
        curl(&[&server.url("/api/items")], b"").status,
        200,
        "{what}"
    );
}

/// The server's resident set, KiB.
fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("the server's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[test]
fn the_demo_survives_the_checklists_attacks() {
    if !Tool::Curl.available("the_demo_survives_the_checklists_attacks") {
        return;
    }
    each_runtime(|runtime| {
        let server = Server::start_command("demo", runtime, &[]);
        let what = |case: &str| format!("{runtime}: {case}");

        // A compression bomb: 100 MiB of zeros in about 100 KiB of gzip.
        let bomb = {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let zeros = vec![0u8; 1024 * 1024];
            for _ in 0..100 {
                encoder.write_all(&zeros).unwrap();
            }
            encoder.finish().unwrap()
        };
        let reply = curl(
            &[
                "-H",
                "content-type: application/json",
                "-H",
                "content-encoding: gzip",
                "--data-binary",
                "@-",
                &server.url("/api/items"),
            ],
            &bomb,
        );
        assert_refused(
            &reply,
            413,
            "body.decoded_too_large",
            &what("compression bomb"),
        );

        // Oversized JSON: 2 MiB over the 1 MiB limit.
        let big = format!(r#"{{"name":"{}","qty":1}}"#, "a".repeat(2 * 1024 * 1024));
        let reply = curl(
            &[
                "-H",
                "content-type: application/json",
                "--data-binary",
                "@-",
                &server.url("/api/items"),
            ],
            big.as_bytes(),
        );
        assert_refused(&reply, 413, "json.too_large", &what("oversized JSON"));

        // A CORS preflight from a disallowed origin: 403, and no CORS header for the browser.
        let reply = curl(
            &[
                "-X",
                "OPTIONS",
                "-H",
                "origin: https://evil.example",
                "-H",
                "access-control-request-method: POST",
                &server.url("/api/items"),
            ],
            b"",
        );
        assert_refused(&reply, 403, "cors.origin", &what("CORS preflight"));
        assert!(response_header(&reply.trace, "access-control-allow-origin").is_none());

        // A cross-site form post without a token.
        let reply = curl(
            &[
                "-H",
                "sec-fetch-site: cross-site",
                "-H",
                "origin: https://evil.example",
                "--data",
                "message=hi",
                &server.url("/form"),
            ],
            b"",
        );
        assert_refused(&reply, 403, "csrf.cross_site", &what("cross-site post"));

        // Forged X-Forwarded-For from an untrusted peer: ignored, so a new address per request
        // does not escape the limit.
        for n in 0..5 {
            let forged = format!("x-forwarded-for: 203.0.113.{n}");
            let reply = curl(&["-H", &forged, &server.url("/api/limited")], b"");
            assert_eq!(reply.status, 200, "{}", what("within the limit"));
        }
        let reply = curl(
            &[
                "-H",
                "x-forwarded-for: 203.0.113.99",
                &server.url("/api/limited"),
            ],
            b"",
        );
        assert_refused(
            &reply,
            429,
            "rate_limit.exceeded",
            &what("burst, forged header"),
        );
        assert!(response_header(&reply.trace, "retry-after").is_some());

        assert_healthy(&server, &what("after the attacks"));
        server.stop(runtime);
    });
}

#[test]
fn ten_thousand_addresses_through_a_trusted_proxy_keep_the_limiter_bounded() {
    if !Tool::Curl.available("ten_thousand_addresses_through_a_trusted_proxy") {
        return;
    }
    each_runtime(|runtime| {
        let server = Server::start_command("demo", runtime, &["--trusted-proxy", "127.0.0.1/32"]);
        let url = server.url("/api/limited");
        // Warm up, so that the first allocations of a server are not counted as growth.
        assert_eq!(
            curl(&["-H", "x-forwarded-for: 192.0.2.200", &url], b"").status,
            200
        );
        let before = rss_kib(&server);
        // One curl, one keep-alive connection, a different client address per request.
        // Blocks separated by `next` (none after the last: curl would read an empty one).
        let blocks: Vec<String> = (0..ADDRESSES)
            .map(|n| {
                format!(
                    "url = \"{url}\"\nheader = \"X-Forwarded-For: 10.{}.{}.{}\"\noutput = \"/dev/null\"\nwrite-out = \"%{{http_code}}\\n\"\n",
                    n >> 16,
                    (n >> 8) & 0xff,
                    n & 0xff
                )
            })
            .collect();
        let config = blocks.join("next\n");
        let ran = run(
            Command::new("curl").args(["-sS", "-K", "-"]),
            config.as_bytes(),
            CLIENT_TIMEOUT,
        );
        ran.assert_success("curl -K (10 000 addresses)");
        let codes = ran.text();
        let ok = codes.lines().filter(|code| *code == "200").count();
        assert_eq!(
            ok, ADDRESSES,
            "{runtime}: every new address is within its limit"
        );
        let after = rss_kib(&server);
        assert!(
            after.saturating_sub(before) < RSS_GROWTH_LIMIT_KIB,
            "{runtime}: resident memory grew from {before} KiB to {after} KiB"
        );
        // The limiter still limits: a fresh client gets its 5, then 429.
        for _ in 0..5 {
            let reply = curl(&["-H", "x-forwarded-for: 198.51.100.7", &url], b"");
            assert_eq!(reply.status, 200, "{runtime}");
        }
        let reply = curl(&["-H", "x-forwarded-for: 198.51.100.7", &url], b"");
        assert_refused(&reply, 429, "rate_limit.exceeded", runtime);
        assert_healthy(&server, runtime);
        server.stop(runtime);
    });
}
