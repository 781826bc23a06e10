//! `weft serve`, binary-level: the real `weft` executable serves a folder on the mio and
//! thread-pool runtimes, and curl uses it as a client would: traversal attempts (none of which
//! leaks a byte of the file outside the root), conditional requests, ranges, precompressed
//! siblings, the escaped listing, the single-page-app fallback, h2c and HTTPS with HTTP/2, a
//! 1 GiB sparse file streamed with bounded memory, `PORT`, the access log and a clean exit on
//! SIGINT.

// Shared with the echo tests, which use more of them.
#[allow(dead_code)]
#[path = "../../runtimes/tests/support_h2/clients.rs"]
mod clients;
#[allow(dead_code)]
#[path = "support/echo_process.rs"]
mod echo_process;

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clients::{CurlReply, TempPath, Tool, curl};
use echo_process::{Certificate, Server, WEFT};

/// The runtimes these tests run on: one event loop, one pool of blocking workers.
const RUNTIMES: [&str; 2] = ["mio", "threadpool"];

/// What `hello.txt` holds: 36 distinct bytes, so every range is recognisable.
const HELLO: &str = "0123456789abcdefghijklmnopqrstuvwxyz";

/// The front page, also the single-page app's answer to client-side routes.
const INDEX: &str = "<!DOCTYPE html><title>weft serve</title><p>front page</p>\n";

/// The body of `style.css`: compressible, and long enough to be worth compressing.
fn style() -> String {
    "body { color: #123456; margin: 0 auto; }\n".repeat(64)
}

/// The body of `app.js`: compressible, with no precompressed sibling.
fn script() -> String {
    "export function greet(name) { return `hello, ${name}`; }\n".repeat(64)
}

/// What the precompressed siblings of `style.css` hold: markers rather than real encodings,
/// since curl (without `--compressed`) hands the body over undecoded, and a marker proves
/// which file was sent.
const STYLE_BR: &[u8] = b"precompressed: style.css.br";
const STYLE_GZ: &[u8] = b"precompressed: style.css.gz";

/// A listed file whose name would run script if it were not escaped (a name cannot hold
/// `/`, so no `</script>`: an element with an event handler instead).
const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>.txt";

/// A folder to serve, next to a file outside it that no request may reach.
struct Site {
    _dir: TempPath,
    root: PathBuf,
    /// What the outside file holds: it must never appear in an answer.
    marker: String,
}

impl Site {
    fn new() -> Site {
        let dir = TempPath::new("serve-site");
        let root = dir.0.join("root");
        std::fs::create_dir_all(root.join("sub")).expect("the site's folders");
        let marker = format!("WEFT-OUTSIDE-MARKER-{}", std::process::id());
        let outside = dir.0.join("secret.txt");
        std::fs::write(&outside, &marker).expect("the outside file");
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(root.join(name), bytes).expect("a site file");
        };
        write("hello.txt", HELLO.as_bytes());
        write("index.html", INDEX.as_bytes());
        write("style.css", style().as_bytes());
        write("style.css.br", STYLE_BR);
        write("style.css.gz", STYLE_GZ);
        write("app.js", script().as_bytes());
        write(&format!("sub/{HOSTILE_NAME}"), b"hostile");
        std::os::unix::fs::symlink(&outside, root.join("leak.txt")).expect("the symlink");
        std::os::unix::fs::symlink(&outside, root.join("sub/leak.txt")).expect("a symlink");
        Site {
            _dir: dir,
            root,
            marker,
        }
    }

    fn root(&self) -> &str {
        self.root.to_str().expect("a UTF-8 path")
    }
}

/// `weft serve ROOT --runtime RUNTIME --listen 127.0.0.1:0 EXTRA...`, once it announced its
/// address.
fn serve(root: &str, runtime: &str, extra: &[&str]) -> Server {
    let mut command = Command::new(WEFT);
    command
        .args([
            "serve",
            root,
            "--runtime",
            runtime,
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra);
    Server::launch(&mut command, runtime, |line| {
        announced(line).map(|(_, a)| a)
    })
}

/// The folder and address of a `weft: serving DIR on SCHEME://ADDR/` line.
fn announced(line: &str) -> Option<(String, SocketAddr)> {
    let rest = line.strip_prefix("weft: serving ")?;
    let (root, url) = rest.rsplit_once(" on ")?;
    let (_, address) = url.split_once("://")?;
    Some((root.to_owned(), address.strip_suffix('/')?.parse().ok()?))
}

/// Runs `case` on each of [`RUNTIMES`]; then fails naming every runtime that failed.
fn on_each_runtime(case: impl Fn(&str)) {
    let failed: Vec<&str> = RUNTIMES
        .into_iter()
        .filter(|runtime| catch_unwind(AssertUnwindSafe(|| case(runtime))).is_err())
        .collect();
    assert!(
        failed.is_empty(),
        "failed on runtime(s) {failed:?}; their panic messages are above"
    );
}

/// The value of response header `name` in a curl `-v` trace (the last response's).
fn header(reply: &CurlReply, name: &str) -> Option<String> {
    reply
        .trace
        .lines()
        .filter_map(|line| line.strip_prefix("< "))
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_owned())
        .next_back()
}

/// `curl --http1.1 ARGS URL`.
fn get(server: &Server, path: &str, args: &[&str]) -> CurlReply {
    let url = server.url(path);
    let mut all = vec!["--http1.1", "--path-as-is"];
    all.extend_from_slice(args);
    all.push(&url);
    curl(&all, b"")
}

fn text(reply: &CurlReply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// Paths that try to leave the root, each as curl sends it (`--path-as-is`).
const TRAVERSALS: &[&str] = &[
    "/../secret.txt",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/..%5csecret.txt",
    "/sub/..%5c..%5csecret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/hello.txt%00",
    "/%00../secret.txt",
    "/..%00/secret.txt",
    "/leak.txt",
    "/sub/leak.txt",
    "/.%2e/secret.txt",
];

#[test]
fn no_path_leaves_the_root() {
    if !Tool::Curl.available("no_path_leaves_the_root") {
        return;
    }
    let site = Site::new();
    on_each_runtime(|runtime| {
        let server = serve(site.root(), runtime, &["--list-dirs"]);
        for path in TRAVERSALS {
            let reply = get(&server, path, &[]);
            assert!(
                [400, 403, 404].contains(&reply.status),
                "{runtime} {path}: status {}",
                reply.status
            );
            assert!(
                !text(&reply).contains(&site.marker) && !reply.trace.contains(&site.marker),
                "{runtime} {path}: the outside file leaked"
            );
        }
        // The listing of a folder holding a symlink out does not follow it either.
        let listing = get(&server, "/sub/", &[]);
        assert!(!text(&listing).contains(&site.marker), "{runtime}");
        assert_eq!(get(&server, "/hello.txt", &[]).status, 200, "{runtime}");
        server.stop(runtime);
    });
}

#[test]
fn conditional_requests_answer_304() {
    if !Tool::Curl.available("conditional_requests_answer_304") {
        return;
    }
    let site = Site::new();
    on_each_runtime(|runtime| {
        let server = serve(site.root(), runtime, &[]);
        let first = get(&server, "/hello.txt", &[]);
        assert_eq!(first.status, 200, "{runtime}");
        assert_eq!(text(&first), HELLO, "{runtime}");
        let etag = header(&first, "etag").expect("an ETag");
        let modified = header(&first, "last-modified").expect("a Last-Modified");

        let revalidated = get(
            &server,
            "/hello.txt",
            &["-H", &format!("If-None-Match: {etag}")],
        );
        assert_eq!(revalidated.status, 304, "{runtime}");
        assert!(revalidated.body.is_empty(), "{runtime}");
        let changed = get(&server, "/hello.txt", &["-H", "If-None-Match: \"other\""]);
        assert_eq!(changed.status, 200, "{runtime}");

        let since = get(
            &server,
            "/hello.txt",
            &["-H", &format!("If-Modified-Since: {modified}")],
        );
        assert_eq!(since.status, 304, "{runtime}");
        let long_ago = get(
            &server,
            "/hello.txt",
            &["-H", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"],
        );
        assert_eq!(long_ago.status, 200, "{runtime}");
        server.stop(runtime);
    });
}

#[test]
fn ranges_single_multiple_suffix_invalid_and_if_range() {
    if !Tool::Curl.available("ranges_single_multiple_suffix_invalid_and_if_range") {
        return;
    }
    let site = Site::new();
    let len = HELLO.len();
    on_each_runtime(|runtime| {
        let server = serve(site.root(), runtime, &[]);
        let single = get(&server, "/hello.txt", &["-r", "0-9"]);
        assert_eq!(single.status, 206, "{runtime}");
        assert_eq!(text(&single), &HELLO[..10], "{runtime}");
        assert_eq!(
            header(&single, "content-range").as_deref(),
            Some(format!("bytes 0-9/{len}").as_str()),
            "{runtime}"
        );

        let suffix = get(&server, "/hello.txt", &["-r", "-5"]);
        assert_eq!(suffix.status, 206, "{runtime}");
        assert_eq!(text(&suffix), &HELLO[len - 5..], "{runtime}");

        let multiple = get(&server, "/hello.txt", &["-r", "0-1,10-12"]);
        assert_eq!(multiple.status, 206, "{runtime}");
        let content_type = header(&multiple, "content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("multipart/byteranges"),
            "{runtime}: {content_type}"
        );
        let body = text(&multiple);
        for (range, part) in [("0-1", "01"), ("10-12", "abc")] {
            let head = format!("bytes {range}/{len}");
            let at = body
                .find(&head)
                .unwrap_or_else(|| panic!("{runtime}: {body}"));
            assert!(body[at..].contains(part), "{runtime}: {body}");
        }

        let invalid = get(&server, "/hello.txt", &["-r", "100-200"]);
        assert_eq!(invalid.status, 416, "{runtime}");
        assert_eq!(
            header(&invalid, "content-range").as_deref(),
            Some(format!("bytes */{len}").as_str()),
            "{runtime}"
        );

        let etag = header(&get(&server, "/hello.txt", &[]), "etag").expect("an ETag");
        let current = get(
            &server,
            "/hello.txt",
            &["-r", "0-9", "-H", &format!("If-Range: {etag}")],
        );
        assert_eq!(current.status, 206, "{runtime}");
        assert_eq!(text(&current), &HELLO[..10], "{runtime}");
        let stale = get(
            &server,
            "/hello.txt",
            &["-r", "0-9", "-H", "If-Range: \"stale\""],
        );
        assert_eq!(stale.status, 200, "{runtime}");
        assert_eq!(text(&stale), HELLO, "{runtime}");
        server.stop(runtime);
    });
}

#[test]
fn precompressed_siblings_are_chosen_by_accept_encoding() {
    if !Tool::Curl.available("precompressed_siblings_are_chosen_by_accept_encoding") {
        return;
    }
    let site = Site::new();
    on_each_runtime(|runtime| {
        let server = serve(site.root(), runtime, &[]);
        for (accept, coding, body) in [("br, gzip", "br", STYLE_BR), ("gzip", "gzip", STYLE_GZ)] {
            let reply = get(
                &server,
                "/style.css",
                &["-H", &format!("Accept-Encoding: {accept}")],
            );
            assert_eq!(reply.status, 200, "{runtime} {accept}");
            assert_eq!(
                header(&reply, "content-encoding").as_deref(),
                Some(coding),
                "{runtime} {accept}"
            );
            assert_eq!(reply.body, body, "{runtime} {accept}");
            let vary = header(&reply, "vary").unwrap_or_default().to_lowercase();
            assert!(vary.contains("accept-encoding"), "{runtime}: {vary:?}");
        }
        let plain = get(&server, "/style.css", &["-H", "Accept-Encoding: identity"]);
        assert_eq!(plain.status, 200, "{runtime}");
        assert_eq!(header(&plain, "content-encoding"), None, "{runtime}");
        assert_eq!(text(&plain), style(), "{runtime}");
        server.stop(runtime);
    });
}

#[test]
fn compressible_files_are_compressed_on_the_fly() {
    if !Tool::Curl.available("compressible_files_are_compressed_on_the_fly") {
        return;
    }
    let site = Site::new();
    on_each_runtime(|runtime| {
        let server = serve(site.root(), runtime, &[]);
        let identity = get(&server, "/app.js", &[]);
        let strong = header(&identity, "etag").expect("an ETag");
        // Twice: compressed the first time, answered from the cache the second.
        for round in 0..2 {
            let reply = get(
                &server,
                "/app.js",
                &["--compressed", "-H", "Accept-Encoding: gzip"],
            );
            assert_eq!(reply.status, 200, "{runtime} {round}");
            assert_eq!(
                header(&reply, "content-encoding").as_deref(),
                Some("gzip"),
                "{runtime} {round}"
            );
            assert_eq!(text(&reply), script(), "{runtime} {round}: decoded");
            let vary = header(&reply, "vary").unwrap_or_default().to_lowercase();
            assert!(vary.contains("accept-encoding"), "{runtime}: {vary:?}");
            let etag = header(&reply, "etag").expect("an ETag");
            assert_eq!(
                etag,
                format!("W/{strong}"),
                "{runtime}: another representation"
            );
            let revalidated = get(
                &server,
                "/app.js",
                &[
                    "-H",
                    "Accept-Encoding: gzip",
                    "-H",
                    &format!("If-None-Match: {etag}"),
                ],
            );
            assert_eq!(revalidated.status, 304, "{runtime} {round}");
        }
        let range = get(
            &server,
            "/app.js",
            &["-H", "Accept-Encoding: gzip", "-r", "0-5"],
        );
        assert_eq!(range.status, 206, "{runtime}");
        assert_eq!(header(&range, "content-encoding"), None, "{runtime}");
        assert_eq!(text(&range), &script()[..6], "{runtime}");
        server.stop(runtime);
    });
}

#[test]
fn listings_escape_names_and_spa_falls_back_to_the_index() {
    if !Tool::Curl.available("listings_escape_names_and_spa_falls_back_to_the_index") {
        return;
    }
    let site = Site::new();
    on_each_runtime(|runtime| {
        let listing_server = serve(site.root(), runtime, &["--list-dirs"]);
        let listing = get(&listing_server, "/sub/", &[]);
        assert_eq!(listing.status, 200, "{runtime}");
        let html = text(&listing);
        assert!(!html.contains("<img"), "{runtime}: unescaped: {html}");
        assert!(html.contains("&lt;img"), "{runtime}: {html}");
        assert_eq!(
            get(&listing_server, "/app/route", &[]).status,
            404,
            "{runtime}"
        );
        listing_server.stop(runtime);

        let plain = serve(site.root(), runtime, &[]);
        assert_eq!(get(&plain, "/sub/", &[]).status, 404, "{runtime}");
        // Errors are a page for a browser, problem+json for everything else.
        let browser = get(&plain, "/missing", &["-H", "accept: text/html,*/*;q=0.8"]);
        assert_eq!(browser.status, 404, "{runtime}");
        let content_type = header(&browser, "content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/html"),
            "{runtime}: {content_type}"
        );
        let api = get(&plain, "/missing", &[]);
        assert_eq!(
            header(&api, "content-type").as_deref(),
            Some("application/problem+json"),
            "{runtime}"
        );
        plain.stop(runtime);

        let spa = serve(site.root(), runtime, &["--spa"]);
        let route = get(&spa, "/app/route", &[]);
        assert_eq!(route.status, 200, "{runtime}");
        assert_eq!(text(&route), INDEX, "{runtime}");
        assert_eq!(text(&get(&spa, "/", &[])), INDEX, "{runtime}");
        assert_eq!(text(&get(&spa, "/hello.txt", &[])), HELLO, "{runtime}");
        spa.stop(runtime);
    });
}

#[test]
fn h2c_only_when_asked_and_https_speaks_http2() {
    if !Tool::Curl.available("h2c_only_when_asked_and_https_speaks_http2") {
        return;
    }
    let site = Site::new();
    let certificate = Certificate::new();
    on_each_runtime(|runtime| {
        let cleartext = serve(site.root(), runtime, &[]);
        let upgrade = curl(&["--http2", &cleartext.url("/hello.txt")], b"");
        assert_eq!(
            (upgrade.version.as_str(), upgrade.status),
            ("1.1", 200),
            "{runtime}: h2c without --h2c"
        );
        cleartext.stop(runtime);

        let h2c = serve(site.root(), runtime, &["--h2c"]);
        for flag in ["--http2-prior-knowledge", "--http2"] {
            let reply = curl(&[flag, &h2c.url("/hello.txt")], b"");
            assert_eq!(
                (reply.version.as_str(), reply.status),
                ("2", 200),
                "{runtime} {flag}"
            );
            assert_eq!(text(&reply), HELLO, "{runtime} {flag}");
        }
        let range = curl(
            &[
                "--http2-prior-knowledge",
                "-r",
                "-5",
                &h2c.url("/hello.txt"),
            ],
            b"",
        );
        assert_eq!(range.status, 206, "{runtime}");
        h2c.stop(runtime);

        let tls = serve(site.root(), runtime, &certificate.flags());
        let url = format!("https://localhost:{}/hello.txt", tls.addr.port());
        let resolve = format!("localhost:{}:127.0.0.1", tls.addr.port());
        let reply = curl(&["--http2", "-k", "--resolve", &resolve, &url], b"");
        assert_eq!(
            (reply.version.as_str(), reply.status),
            ("2", 200),
            "{runtime}"
        );
        assert_eq!(text(&reply), HELLO, "{runtime}");
        tls.stop(runtime);
    });
}

/// The size of the sparse file: 1 GiB, of which nothing is on disk.
const SPARSE_LEN: u64 = 1024 * 1024 * 1024;

/// The most resident memory the server may reach while sending it.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

/// A `VmRSS:` / `VmHWM:` figure of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Serves a 1 GiB sparse file on each runtime (over HTTPS with `tls`), downloads it whole
/// with curl, and checks the server's resident-memory peak stayed under the bound.
fn stream_a_sparse_gibibyte(tls: bool) {
    let dir = TempPath::new("serve-sparse");
    std::fs::create_dir_all(&dir.0).expect("a folder");
    std::fs::File::create(dir.0.join("big.bin"))
        .and_then(|file| file.set_len(SPARSE_LEN))
        .expect("a sparse file");
    let certificate = Certificate::new();
    let tls_flags = certificate.flags();
    let flags: &[&str] = if tls { &tls_flags } else { &[] };
    on_each_runtime(|runtime| {
        let server = serve(dir.as_str(), runtime, flags);
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}/big.bin", server.addr);
        let ran = clients::run(
            Command::new("curl").args([
                "-sS",
                "-k",
                "--http1.1",
                "--max-time",
                "500",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download}",
                &url,
            ]),
            b"",
            Duration::from_secs(600),
        );
        ran.assert_success(&format!("{runtime}: curl {url}"));
        assert_eq!(ran.text(), format!("200 {SPARSE_LEN}"), "{runtime}");
        let peak = status_kib(server.child.id(), "VmHWM:").expect("/proc status");
        assert!(
            peak < MEMORY_BOUND_KIB,
            "{runtime}: the server reached {peak} KiB sending 1 GiB"
        );
        server.stop(runtime);
    });
}

#[test]
fn a_sparse_gibibyte_streams_with_bounded_memory() {
    if Tool::Curl.available("a_sparse_gibibyte_streams_with_bounded_memory") {
        stream_a_sparse_gibibyte(false);
    }
}

#[test]
fn a_sparse_gibibyte_streams_over_https_with_bounded_memory() {
    if Tool::Curl.available("a_sparse_gibibyte_streams_over_https_with_bounded_memory") {
        stream_a_sparse_gibibyte(true);
    }
}

#[test]
fn port_moves_the_default_address_and_the_url_is_announced() {
    if !Tool::Curl.available("port_moves_the_default_address_and_the_url_is_announced") {
        return;
    }
    let site = Site::new();
    let canonical = site.root.canonicalize().expect("the root");
    let mut command = Command::new(WEFT);
    command
        .args(["serve", site.root(), "--runtime", "mio"])
        .env("PORT", "0");
    let announced_root = std::sync::Mutex::new(String::new());
    let server = Server::launch(&mut command, "PORT=0", |line| {
        let (root, address) = announced(line)?;
        *announced_root.lock().expect("lock") = root;
        Some(address)
    });
    assert_eq!(
        *announced_root.lock().expect("lock"),
        canonical.to_str().expect("UTF-8")
    );
    assert!(server.addr.ip().is_loopback() && server.addr.port() != 0);
    let reply = get(&server, "/hello.txt", &[]);
    assert_eq!((reply.status, text(&reply).as_str()), (200, HELLO));
    let mut server = server;
    server.interrupt();
    let status = server.wait_exit();
    assert!(status.is_some_and(|s| s.success()), "{}", server.stderr());
    // One access line per request, written before the clean exit.
    let log = server.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("weft::access") && l.contains("/hello.txt") && l.contains("200")),
        "{log}"
    );

    // An explicit --listen wins over PORT (port 1 would be refused to a non-root user).
    let mut explicit = Command::new(WEFT);
    explicit
        .args(["serve", site.root(), "--runtime", "threadpool"])
        .args(["--listen", "127.0.0.1:0"])
        .env("PORT", "1");
    let server = Server::launch(&mut explicit, "--listen and PORT", |line| {
        announced(line).map(|(_, a)| a)
    });
    assert_ne!(server.addr.port(), 1);
    server.stop("threadpool");

    // A PORT that is not a port is a clear error, not a silent default.
    let ran = clients::run(
        Command::new(WEFT)
            .args(["serve", site.root()])
            .env("PORT", "http"),
        b"",
        Duration::from_secs(20),
    );
    assert!(!ran.status.success());
    assert!(ran.stderr.contains("PORT"), "{}", ran.stderr);
}

#[test]
fn a_missing_folder_is_refused() {
    let missing: &Path = Path::new("/no/such/folder/for/weft/serve");
    let ran = clients::run(
        Command::new(WEFT).args(["serve", missing.to_str().expect("UTF-8")]),
        b"",
        Duration::from_secs(20),
    );
    assert!(!ran.status.success());
    assert!(ran.stderr.contains("cannot serve"), "{}", ran.stderr);
}
