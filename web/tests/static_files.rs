//! `weft::static_files` through `TestClient` (HTTP/1.1 and HTTP/2): traversal vectors,
//! validators and 304, ranges (single, multipart, 416, If-Range), precompressed siblings,
//! MIME types, cache policy, listings, index files, SPA fallback and HEAD. Fixtures are
//! written to a fresh temporary directory per test.

use std::path::{Path, PathBuf};

use http::HeaderValue;
use weft::prelude::*;
use weft::static_files::{CacheControl, StaticFiles, Symlinks};
use weft::test::{TestClient, TestResponse};

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// A temporary site: `root/` served, `outside/secret.txt` next to it; removed on drop.
struct Site {
    base: PathBuf,
}

impl Site {
    fn new(name: &str) -> Site {
        let base = std::env::temp_dir().join(format!("weft-static-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("root/docs")).unwrap();
        std::fs::create_dir_all(base.join("root/empty")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        let site = Site { base };
        site.write("outside/secret.txt", SECRET.as_bytes());
        site.write("root/index.html", b"<h1>home</h1>");
        site.write("root/docs/index.html", b"<h1>docs</h1>");
        site.write("root/hello.txt", b"hello, world");
        site.write("root/app.3f9a2c1b.js", b"console.log(1)");
        site.write("root/logo.png", b"\x89PNG....");
        site.write("root/mod.wasm", b"\0asm");
        site.write("root/.env", b"SECRET=1");
        site.write("root/digits.txt", b"0123456789");
        site
    }

    fn write(&self, relative: &str, content: &[u8]) {
        std::fs::write(self.base.join(relative), content).unwrap();
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn clients(app: App) -> [TestClient; 2] {
    let client = TestClient::new(app.build().unwrap());
    [client.clone().http1(), client.http2()]
}

fn serve(files: StaticFiles) -> [TestClient; 2] {
    clients(App::new().static_files("/", files))
}

fn get(client: &TestClient, uri: &str, headers: &[(&str, &str)]) -> TestResponse {
    let mut request = client.get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send()
}

fn text(response: &TestResponse) -> String {
    String::from_utf8_lossy(response.bytes()).into_owned()
}

fn problem_code(response: &TestResponse) -> String {
    let json: serde_json::Value = serde_json::from_slice(response.bytes()).unwrap();
    json["code"].as_str().unwrap_or("").to_owned()
}

#[test]
fn plain_files_are_served_with_their_type_and_length() {
    let site = Site::new("plain");
    for client in serve(StaticFiles::new(site.root())) {
        let response = get(&client, "/hello.txt", &[]);
        assert_eq!(response.status(), 200);
        assert_eq!(text(&response), "hello, world");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(response.header("content-length"), Some("12"));
        assert_eq!(response.header("accept-ranges"), Some("bytes"));
        assert!(response.header("etag").is_some());
        assert!(response.header("last-modified").is_some());
        let missing = get(&client, "/nope.txt", &[]);
        assert_eq!(missing.status(), 404);
        assert_eq!(problem_code(&missing), "static.not_found");
    }
}

#[test]
fn every_traversal_vector_is_refused_without_a_byte_of_the_outside_file() {
    let site = Site::new("traversal");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(
            site.base.join("outside/secret.txt"),
            site.root().join("escape"),
        )
        .unwrap();
        std::os::unix::fs::symlink(site.base.join("outside"), site.root().join("escape-dir"))
            .unwrap();
    }
    let vectors = [
        "/../outside/secret.txt",
        "/docs/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2e%2foutside%2fsecret.txt",
        "/docs%2f..%2f..%2foutside/secret.txt",
        "/..%5coutside%5csecret.txt",
        "/%5c..%5coutside/secret.txt",
        "/hello.txt%00.png",
        "/%00",
        "/%252e%252e/outside/secret.txt",
        "/%25%32%65%25%32%65/outside/secret.txt",
        "/escape",
        "/escape-dir/secret.txt",
        "/.env",
        "/%2eenv",
        "/bad%zzescape",
        "/C:/outside/secret.txt",
    ];
    let app = App::new()
        .static_files("/", StaticFiles::new(site.root()))
        .static_files("/assets", StaticFiles::new(site.root().join("docs")));
    for client in clients(app) {
        for vector in vectors {
            for uri in [vector.to_owned(), format!("/assets{vector}")] {
                let response = client.get(&uri).send();
                let status = response.status().as_u16();
                assert!(
                    [400, 403, 404].contains(&status),
                    "{uri}: {status} {}",
                    text(&response)
                );
                assert!(!text(&response).contains(SECRET), "{uri} leaked the secret");
            }
        }
        let encoded = client.get("/%2e%2e/outside/secret.txt").send();
        assert_eq!(problem_code(&encoded), "static.forbidden_path");
        let nul = client.get("/hello.txt%00.png").send();
        assert_eq!(nul.status(), 400);
        assert_eq!(problem_code(&nul), "static.bad_path");
        #[cfg(unix)]
        assert_eq!(client.get("/escape").send().status(), 403);
    }
}

#[cfg(unix)]
#[test]
fn the_symlink_policy_is_configurable() {
    let site = Site::new("symlinks");
    std::os::unix::fs::symlink(site.root().join("hello.txt"), site.root().join("inside")).unwrap();
    std::os::unix::fs::symlink(
        site.base.join("outside/secret.txt"),
        site.root().join("escape"),
    )
    .unwrap();
    let [within, _] = serve(StaticFiles::new(site.root()));
    assert_eq!(within.get("/inside").send().status(), 200);
    assert_eq!(within.get("/escape").send().status(), 403);
    let [never, _] = serve(StaticFiles::new(site.root()).symlinks(Symlinks::Never));
    assert_eq!(never.get("/inside").send().status(), 403);
    assert_eq!(never.get("/hello.txt").send().status(), 200);
    let [follow, _] = serve(StaticFiles::new(site.root()).symlinks(Symlinks::Follow));
    assert_eq!(text(&follow.get("/escape").send()), SECRET);
}

#[test]
fn dotfiles_are_served_only_when_enabled() {
    let site = Site::new("dotfiles");
    let [hidden, _] = serve(StaticFiles::new(site.root()));
    assert_eq!(hidden.get("/.env").send().status(), 404);
    let [shown, _] = serve(StaticFiles::new(site.root()).dotfiles(true));
    assert_eq!(text(&shown.get("/.env").send()), "SECRET=1");
}

#[test]
fn etags_and_dates_give_304_and_change_with_the_file() {
    let site = Site::new("etag");
    for client in serve(StaticFiles::new(site.root())) {
        let first = get(&client, "/hello.txt", &[]);
        let etag = first.header("etag").unwrap().to_owned();
        let modified = first.header("last-modified").unwrap().to_owned();
        let cached = get(&client, "/hello.txt", &[("if-none-match", &etag)]);
        assert_eq!(cached.status(), 304);
        assert!(cached.bytes().is_empty());
        assert_eq!(cached.header("etag"), Some(etag.as_str()));
        let dated = get(&client, "/hello.txt", &[("if-modified-since", &modified)]);
        assert_eq!(dated.status(), 304);
        let other = get(&client, "/hello.txt", &[("if-none-match", "\"other\"")]);
        assert_eq!(other.status(), 200);
    }
    let [client, _] = serve(StaticFiles::new(site.root()));
    let before = get(&client, "/hello.txt", &[])
        .header("etag")
        .unwrap()
        .to_owned();
    site.write("root/hello.txt", b"hello, changed world");
    let after = get(&client, "/hello.txt", &[("if-none-match", &before)]);
    assert_eq!(after.status(), 200);
    assert_eq!(text(&after), "hello, changed world");
    assert_ne!(after.header("etag"), Some(before.as_str()));
}

#[test]
fn single_suffix_and_open_ranges() {
    let site = Site::new("ranges");
    for client in serve(StaticFiles::new(site.root())) {
        let single = get(&client, "/digits.txt", &[("range", "bytes=2-4")]);
        assert_eq!(single.status(), 206);
        assert_eq!(text(&single), "234");
        assert_eq!(single.header("content-range"), Some("bytes 2-4/10"));
        assert_eq!(single.header("content-length"), Some("3"));
        let suffix = get(&client, "/digits.txt", &[("range", "bytes=-3")]);
        assert_eq!(text(&suffix), "789");
        let open = get(&client, "/digits.txt", &[("range", "bytes=6-")]);
        assert_eq!(text(&open), "6789");
        assert_eq!(open.header("content-range"), Some("bytes 6-9/10"));
        let clipped = get(&client, "/digits.txt", &[("range", "bytes=8-100")]);
        assert_eq!(text(&clipped), "89");
        let unsatisfiable = get(&client, "/digits.txt", &[("range", "bytes=10-")]);
        assert_eq!(unsatisfiable.status(), 416);
        assert_eq!(unsatisfiable.header("content-range"), Some("bytes */10"));
        let malformed = get(&client, "/digits.txt", &[("range", "bytes=4-2")]);
        assert_eq!(malformed.status(), 200);
        assert_eq!(text(&malformed), "0123456789");
    }
}

/// Splits a `multipart/byteranges` body into (Content-Range, content) per part.
fn parse_byteranges(body: &str, boundary: &str) -> Vec<(String, String)> {
    let delimiter = format!("--{boundary}");
    let closing = format!("\r\n--{boundary}--\r\n");
    assert!(body.ends_with(&closing), "{body:?}");
    let body = &body[..body.len() - closing.len()];
    body.split(&delimiter)
        .skip(1)
        .map(|part| {
            let part = part.strip_prefix("\r\n").unwrap();
            let (head, content) = part.split_once("\r\n\r\n").unwrap();
            let content = content.strip_suffix("\r\n").unwrap_or(content);
            let range = head
                .lines()
                .find_map(|line| line.strip_prefix("Content-Range: "))
                .unwrap()
                .to_owned();
            assert!(head.contains("Content-Type: text/plain; charset=utf-8"));
            (range, content.to_owned())
        })
        .collect()
}

#[test]
fn several_ranges_are_multipart_byteranges() {
    let site = Site::new("multipart");
    for client in serve(StaticFiles::new(site.root())) {
        let response = get(&client, "/digits.txt", &[("range", "bytes=0-1, 5-6, -2")]);
        assert_eq!(response.status(), 206);
        let content_type = response.header("content-type").unwrap();
        let boundary = content_type
            .strip_prefix("multipart/byteranges; boundary=")
            .unwrap()
            .to_owned();
        let body = text(&response);
        assert_eq!(
            response.header("content-length").unwrap(),
            body.len().to_string()
        );
        assert_eq!(
            parse_byteranges(&body, &boundary),
            [
                ("bytes 0-1/10".to_owned(), "01".to_owned()),
                ("bytes 5-6/10".to_owned(), "56".to_owned()),
                ("bytes 8-9/10".to_owned(), "89".to_owned()),
            ]
        );
        // Overlapping ranges are merged into one.
        let merged = get(&client, "/digits.txt", &[("range", "bytes=0-4,3-6")]);
        assert_eq!(text(&merged), "0123456");
        assert_eq!(merged.header("content-range"), Some("bytes 0-6/10"));
    }
}

#[test]
fn if_range_sends_the_range_only_when_the_validator_matches() {
    let site = Site::new("if-range");
    for client in serve(StaticFiles::new(site.root())) {
        let etag = get(&client, "/digits.txt", &[])
            .header("etag")
            .unwrap()
            .to_owned();
        let matching = get(
            &client,
            "/digits.txt",
            &[("range", "bytes=0-0"), ("if-range", &etag)],
        );
        assert_eq!(matching.status(), 206);
        assert_eq!(text(&matching), "0");
        let stale = get(
            &client,
            "/digits.txt",
            &[("range", "bytes=0-0"), ("if-range", "\"stale\"")],
        );
        assert_eq!(stale.status(), 200);
        assert_eq!(text(&stale), "0123456789");
        let old_date = get(
            &client,
            "/digits.txt",
            &[
                ("range", "bytes=0-0"),
                ("if-range", "Thu, 01 Jan 2015 00:00:00 GMT"),
            ],
        );
        assert_eq!(old_date.status(), 200);
    }
}

#[test]
fn precompressed_siblings_follow_accept_encoding() {
    let site = Site::new("precompressed");
    site.write("root/app.js", b"plain js");
    site.write("root/app.js.br", b"brotli js");
    site.write("root/app.js.gz", b"gzip js");
    site.write("root/only.css", b"plain css");
    site.write("root/only.css.gz", b"gzip css");
    for client in serve(StaticFiles::new(site.root())) {
        let both = get(&client, "/app.js", &[("accept-encoding", "gzip, br")]);
        assert_eq!(text(&both), "brotli js");
        assert_eq!(both.header("content-encoding"), Some("br"));
        assert_eq!(both.header("vary"), Some("accept-encoding"));
        assert_eq!(
            both.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        let gzip = get(&client, "/app.js", &[("accept-encoding", "gzip")]);
        assert_eq!(text(&gzip), "gzip js");
        assert_eq!(gzip.header("content-encoding"), Some("gzip"));
        assert_ne!(gzip.header("etag"), both.header("etag"));
        let identity = get(&client, "/app.js", &[]);
        assert_eq!(text(&identity), "plain js");
        assert_eq!(identity.header("content-encoding"), None);
        assert_eq!(identity.header("vary"), Some("accept-encoding"));
        let only_gzip = get(
            &client,
            "/only.css",
            &[("accept-encoding", "br, gzip;q=0.5")],
        );
        assert_eq!(text(&only_gzip), "gzip css");
        let plain = get(&client, "/hello.txt", &[("accept-encoding", "br")]);
        assert_eq!(plain.header("vary"), None);
    }
    let [off, _] = serve(StaticFiles::new(site.root()).precompressed(false));
    assert_eq!(
        text(&get(&off, "/app.js", &[("accept-encoding", "br")])),
        "plain js"
    );
}

#[test]
fn mime_types_carry_a_charset_for_text() {
    let site = Site::new("mime");
    let [client, _] = serve(StaticFiles::new(site.root()));
    for (path, expected) in [
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.3f9a2c1b.js", "text/javascript; charset=utf-8"),
        ("/logo.png", "image/png"),
        ("/mod.wasm", "application/wasm"),
    ] {
        let response = client.get(path).send();
        assert_eq!(response.header("content-type"), Some(expected), "{path}");
    }
}

#[test]
fn cache_control_depends_on_the_kind_of_file_and_is_configurable() {
    let site = Site::new("cache");
    let [client, _] = serve(StaticFiles::new(site.root()));
    let header = |path: &str| {
        client
            .get(path)
            .send()
            .header("cache-control")
            .map(str::to_owned)
    };
    assert_eq!(
        header("/app.3f9a2c1b.js").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(header("/index.html").as_deref(), Some("no-cache"));
    assert_eq!(header("/logo.png").as_deref(), Some("public, max-age=3600"));
    let policy = CacheControl::default()
        .html(Some(HeaderValue::from_static("max-age=60")))
        .other(None);
    let [custom, _] = serve(StaticFiles::new(site.root()).cache_control(policy));
    assert_eq!(
        custom.get("/index.html").send().header("cache-control"),
        Some("max-age=60")
    );
    assert_eq!(custom.get("/logo.png").send().header("cache-control"), None);
}

#[test]
fn directory_listings_are_off_by_default_and_escape_names() {
    let site = Site::new("listing");
    site.write("root/empty/<script>alert(1)&.txt", b"x");
    let [off, _] = serve(StaticFiles::new(site.root()));
    assert_eq!(off.get("/empty/").send().status(), 404);
    let [on, _] = serve(StaticFiles::new(site.root()).list_directories(true));
    let listing = on.get("/empty/").send();
    assert_eq!(listing.status(), 200);
    assert_eq!(
        listing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = text(&listing);
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&amp;.txt"));
    assert!(page.contains('1'), "the size is listed");
    let redirect = on.get("/empty").send();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.header("location"), Some("/empty/"));
}

#[test]
fn index_files_redirects_and_the_spa_fallback() {
    let site = Site::new("index");
    let app = App::new()
        .static_files("/assets", StaticFiles::new(site.root()))
        .get("/api/ping", || async { "pong" })
        .static_files("/", StaticFiles::new(site.root()).spa_fallback(true));
    for client in clients(app) {
        assert_eq!(text(&client.get("/").send()), "<h1>home</h1>");
        assert_eq!(text(&client.get("/docs/").send()), "<h1>docs</h1>");
        let redirect = client.get("/docs?x=1").send();
        assert_eq!(redirect.status(), 308);
        assert_eq!(redirect.header("location"), Some("/docs/?x=1"));
        let mount = client.get("/assets").send();
        assert_eq!(mount.status(), 308);
        assert_eq!(mount.header("location"), Some("/assets/"));
        assert_eq!(text(&client.get("/assets/").send()), "<h1>home</h1>");
        assert_eq!(
            text(&client.get("/assets/hello.txt").send()),
            "hello, world"
        );
        assert_eq!(text(&client.get("/api/ping").send()), "pong");
        let spa = client.get("/users/42/settings").send();
        assert_eq!(spa.status(), 200);
        assert_eq!(text(&spa), "<h1>home</h1>");
        assert_eq!(spa.header("content-type"), Some("text/html; charset=utf-8"));
        // The SPA fallback never hides refused paths.
        assert_eq!(client.get("/.env").send().status(), 404);
        assert_eq!(client.get("/assets/unknown").send().status(), 404);
        assert_eq!(client.post("/hello.txt").send().status(), 405);
    }
    let [no_index, _] = serve(StaticFiles::new(site.root()).no_index());
    assert_eq!(no_index.get("/docs/").send().status(), 404);
}

#[test]
fn head_answers_the_headers_without_the_body() {
    let site = Site::new("head");
    for client in serve(StaticFiles::new(site.root())) {
        let response = client.head("/hello.txt").send();
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("content-length"), Some("12"));
        assert!(response.header("etag").is_some());
        assert!(response.bytes().is_empty());
    }
}

#[test]
fn large_files_stream_in_bounded_chunks_with_a_weak_tag() {
    let site = Site::new("large");
    let len = weft::static_files::HASH_LIMIT as usize + 100_000;
    let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    site.write("root/big.bin", &content);
    let [client, _] = serve(StaticFiles::new(site.root()));
    let response = client.get("/big.bin").send();
    assert_eq!(response.bytes().len(), len);
    assert!(response.bytes()[..] == content[..]);
    assert!(
        response
            .chunks()
            .iter()
            .all(|chunk| chunk.len() <= 64 * 1024)
    );
    assert!(response.header("etag").unwrap().starts_with("W/"));
    let tail = get(&client, "/big.bin", &[("range", "bytes=-10")]);
    assert_eq!(tail.bytes()[..], content[len - 10..]);
}

#[test]
fn a_missing_root_fails_the_build() {
    let missing = Path::new("/definitely/not/a/weft/root");
    assert!(StaticFiles::try_new(missing).is_err());
    let built = App::new()
        .group("/g", |g| {
            g.static_files("/files", StaticFiles::new(missing))
        })
        .build();
    let Err(error) = built else {
        panic!("an app with a missing static root built");
    };
    assert!(error.to_string().contains("/g/files"), "{error}");
}

#[test]
fn raw_backslashes_are_refused() {
    let site = Site::new("backslash");
    let [client, _] = serve(StaticFiles::new(site.root()));
    // A client may send a backslash raw; the URI parser of the test client may refuse it
    // first, in which case nothing reaches the server at all.
    for uri in ["/..\\outside\\secret.txt", "/docs\\index.html"] {
        if let Ok(response) = client.get(uri).try_send() {
            assert!(
                [400, 403, 404].contains(&response.status().as_u16()),
                "{uri}"
            );
            assert!(!text(&response).contains(SECRET));
        }
    }
}

#[test]
fn a_file_changed_after_its_validators_were_read_is_never_sent_mixed() {
    use weft_service::service::Service;

    let site = Site::new("changed");
    let old = "old ".repeat(50_000);
    site.write("root/page.txt", old.as_bytes());
    let app = App::new()
        .static_files("/", StaticFiles::new(site.root()))
        .build()
        .unwrap();
    let request = http::Request::get("/page.txt")
        .body(weft_service::body::Body::empty())
        .unwrap();
    let response = futures_lite::future::block_on(app.call(request));
    assert_eq!(response.status(), 200);
    // Rewritten in place (same inode, another size) before a byte of the body is read.
    site.write("root/page.txt", "new ".repeat(60_000).as_bytes());
    let collected = futures_lite::future::block_on(response.into_body().collect(1 << 20));
    assert!(
        collected.is_err(),
        "the body of the old version must not complete"
    );
}

/// One request over a real socket; the server closes after the answer (`Connection: close`).
fn exchange(address: std::net::SocketAddr, request: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn a_served_app_sends_whole_files_ranges_and_multipart_over_a_socket() {
    let site = Site::new("socket");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    site.write("root/data.bin", &content);
    let app = App::new().static_files("/", StaticFiles::new(site.root()));
    let mut config = weft::ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = app.listen(config).unwrap();
    let address = server.local_addrs()[0];
    let split = |answer: &[u8]| {
        let end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        (
            String::from_utf8_lossy(&answer[..end]).into_owned(),
            answer[end + 4..].to_vec(),
        )
    };

    let whole = exchange(
        address,
        "GET /data.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = split(&whole);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == content, "the whole file, byte for byte");

    let range = exchange(
        address,
        "GET /data.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100000-100009\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = split(&range);
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-range: bytes 100000-100009/300000")
    );
    assert_eq!(body, content[100_000..100_010]);

    let several = exchange(
        address,
        "GET /data.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-2,-3\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = split(&several);
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), length);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("Content-Range: bytes 0-2/300000"), "{body}");
    assert!(
        body.contains("Content-Range: bytes 299997-299999/300000"),
        "{body}"
    );
    server.shutdown();
}

#[test]
fn a_mount_in_a_group_runs_the_group_layers() {
    let site = Site::new("group");
    let tag = weft::middleware::from_fn(|request, next: weft::middleware::Next| async move {
        let mut response = next.run(request).await;
        response
            .headers_mut()
            .insert("x-layer", HeaderValue::from_static("group"));
        response
    });
    let app = App::new().group("/site", |site_group| {
        site_group
            .middleware(tag)
            .static_files("/files", StaticFiles::new(site.root()))
    });
    for client in clients(app) {
        let file = client.get("/site/files/hello.txt").send();
        assert_eq!(text(&file), "hello, world");
        assert_eq!(file.header("x-layer"), Some("group"));
        let missing = client.get("/site/files/nope").send();
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.header("x-layer"), Some("group"));
        assert_eq!(
            client.get("/site/files").send().header("location"),
            Some("/site/files/")
        );
        assert_eq!(text(&client.get("/site/files/").send()), "<h1>home</h1>");
        assert_eq!(client.delete("/site/files/hello.txt").send().status(), 405);
        assert_eq!(client.get("/hello.txt").send().status(), 404);
    }
}

#[test]
fn a_mount_at_a_groups_own_path_serves_its_index_without_a_redirect_loop() {
    let site = Site::new("group-root");
    let app = App::new().group("/g", |g| g.static_files("/", StaticFiles::new(site.root())));
    for client in clients(app) {
        assert_eq!(text(&client.get("/g").send()), "<h1>home</h1>");
        let slash = client.get("/g/").send();
        match slash.status().as_u16() {
            200 => assert_eq!(text(&slash), "<h1>home</h1>"),
            308 => assert_eq!(slash.header("location"), Some("/g")),
            other => panic!("/g/ answered {other}"),
        }
        assert_eq!(text(&client.get("/g/hello.txt").send()), "hello, world");
    }
}

#[test]
fn content_hashed_names_of_a_manifest_are_served_from_their_logical_files_while_they_match() {
    let site = Site::new("manifest");
    site.write("root/site.css", b"body { color: red }");
    let manifest = weft::assets::AssetManifest::scan(site.root()).unwrap();
    let hashed = manifest.hashed("site.css").unwrap().to_owned();
    assert_ne!(hashed, "site.css");
    for client in serve(StaticFiles::new(site.root()).manifest(manifest.clone())) {
        let response = get(&client, &format!("/{hashed}"), &[]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(&response), "body { color: red }");
        assert_eq!(
            response.headers()["content-type"],
            "text/css; charset=utf-8"
        );
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        // A hash nobody published is unknown, not guessed.
        let unknown = weft::assets::hashed_name("site.css", "00000000");
        assert_eq!(get(&client, &format!("/{unknown}"), &[]).status(), 404);
    }
    // The file changed: the old immutable name must not name the new bytes.
    site.write("root/site.css", b"body { color: blue }");
    for client in serve(StaticFiles::new(site.root()).manifest(manifest.clone())) {
        let response = get(&client, &format!("/{hashed}"), &[]);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(!text(&response).contains("blue"));
        assert_eq!(
            text(&get(&client, "/site.css", &[])),
            "body { color: blue }"
        );
    }
}

/// Settings of an open-file cache whose entries stay valid for the whole test.
fn long_cache() -> weft::static_files::OpenFileCache {
    weft::static_files::OpenFileCache::new().valid_for(std::time::Duration::from_secs(3600))
}

#[test]
fn the_open_file_cache_answers_within_its_window_without_the_disk() {
    let site = Site::new("open-cache-hit");
    let clients = serve(StaticFiles::new(site.root()).open_file_cache(long_cache()));
    for (i, client) in clients.into_iter().enumerate() {
        site.write("root/hello.txt", b"hello, world");
        let first = get(&client, "/hello.txt", &[]);
        assert_eq!(text(&first), "hello, world");
        let etag = first.header("etag").unwrap().to_owned();
        // Gone from the disk: a resolution would answer 404, the cached entry does not.
        std::fs::remove_file(site.root().join("hello.txt")).unwrap();
        let again = get(&client, "/hello.txt", &[]);
        assert_eq!(again.status(), 200);
        assert_eq!(text(&again), "hello, world");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(again.header("content-type"), first.header("content-type"));
        let range = get(&client, "/hello.txt", &[("range", "bytes=0-4")]);
        assert_eq!(range.status(), 206);
        assert_eq!(text(&range), "hello");
        let cached = get(&client, "/hello.txt", &[("if-none-match", &etag)]);
        assert_eq!(cached.status(), 304);
        // Misses are not cached: a file created at a path that was 404 is found at once.
        let new = format!("new-{i}.txt");
        assert_eq!(get(&client, &format!("/{new}"), &[]).status(), 404);
        site.write(&format!("root/{new}"), b"new");
        assert_eq!(text(&get(&client, &format!("/{new}"), &[])), "new");
    }
    // Without the cache (the default), every request looks at the disk.
    site.write("root/hello.txt", b"hello, world");
    for client in serve(StaticFiles::new(site.root())) {
        assert_eq!(get(&client, "/hello.txt", &[]).status(), 200);
    }
    std::fs::remove_file(site.root().join("hello.txt")).unwrap();
    for client in serve(StaticFiles::new(site.root())) {
        assert_eq!(get(&client, "/hello.txt", &[]).status(), 404);
    }
}

#[test]
fn after_the_window_a_changed_file_gets_new_validators_and_a_deleted_one_is_404() {
    let site = Site::new("open-cache-stale");
    let window = std::time::Duration::from_millis(20);
    // Sleeping longer than the window only guarantees the entry is stale; no timing is measured.
    let past_the_window = || std::thread::sleep(window * 5);
    let settings = weft::static_files::OpenFileCache::new().valid_for(window);
    for client in serve(StaticFiles::new(site.root()).open_file_cache(settings)) {
        site.write("root/page.txt", b"first version");
        let first = get(&client, "/page.txt", &[]);
        let etag = first.header("etag").unwrap().to_owned();
        past_the_window();
        // Unchanged: the same validators after the revalidation.
        let same = get(&client, "/page.txt", &[]);
        assert_eq!(same.header("etag"), Some(etag.as_str()));
        site.write("root/page.txt", b"second, longer version");
        past_the_window();
        let changed = get(&client, "/page.txt", &[("if-none-match", &etag)]);
        assert_eq!(changed.status(), 200);
        assert_eq!(text(&changed), "second, longer version");
        assert_ne!(changed.header("etag"), Some(etag.as_str()));
        assert_eq!(changed.header("content-length"), Some("22"));
        std::fs::remove_file(site.root().join("page.txt")).unwrap();
        past_the_window();
        assert_eq!(get(&client, "/page.txt", &[]).status(), 404);
    }
}

#[test]
fn files_over_the_content_limit_are_cached_as_handles_and_ranges_still_work() {
    let site = Site::new("open-cache-handle");
    let settings = long_cache().max_file_size(4);
    for client in serve(StaticFiles::new(site.root()).open_file_cache(settings)) {
        for _ in 0..2 {
            let whole = get(&client, "/digits.txt", &[]);
            assert_eq!(text(&whole), "0123456789");
            let single = get(&client, "/digits.txt", &[("range", "bytes=2-4")]);
            assert_eq!(text(&single), "234");
            let several = get(&client, "/digits.txt", &[("range", "bytes=0-1,8-9")]);
            assert_eq!(several.status(), 206);
            let body = text(&several);
            assert!(body.contains("\r\n\r\n01\r\n") && body.contains("\r\n\r\n89\r\n"));
        }
    }
}

#[test]
fn cached_entries_follow_the_accept_class_and_never_cross_mounts() {
    let site = Site::new("open-cache-class");
    site.write("root/hello.txt.gz", b"gzipped bytes");
    for client in serve(StaticFiles::new(site.root()).open_file_cache(long_cache())) {
        for _ in 0..2 {
            let gzip = get(&client, "/hello.txt", &[("accept-encoding", "gzip")]);
            assert_eq!(gzip.header("content-encoding"), Some("gzip"));
            assert_eq!(text(&gzip), "gzipped bytes");
            let plain = get(&client, "/hello.txt", &[]);
            assert_eq!(plain.header("content-encoding"), None);
            assert_eq!(text(&plain), "hello, world");
            assert_eq!(plain.header("vary"), Some("accept-encoding"));
        }
    }
    // One settings value, two policies: each mount caches for its own.
    let files = StaticFiles::new(site.root()).open_file_cache(long_cache());
    let app = App::new()
        .static_files("/open", files.clone().dotfiles(true))
        .static_files("/closed", files);
    for client in clients(app) {
        for _ in 0..2 {
            assert_eq!(text(&get(&client, "/open/.env", &[])), "SECRET=1");
            assert_eq!(get(&client, "/closed/.env", &[]).status(), 404);
        }
    }
}

#[test]
fn with_the_open_file_cache_refusals_stay_refusals() {
    let site = Site::new("open-cache-refusals");
    for client in serve(StaticFiles::new(site.root()).open_file_cache(long_cache())) {
        assert_eq!(text(&get(&client, "/hello%2Etxt", &[])), "hello, world");
        for _ in 0..2 {
            for path in ["/..%2Foutside/secret.txt", "/%2e%2e/outside/secret.txt"] {
                let refused = get(&client, path, &[]);
                assert_eq!(refused.status(), 403, "{path}");
                assert!(!text(&refused).contains(SECRET), "{path}");
            }
            assert_eq!(get(&client, "/.env", &[]).status(), 404);
            assert_eq!(get(&client, "/hello%00.txt", &[]).status(), 400);
        }
    }
}
