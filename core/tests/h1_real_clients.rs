//! The server role against real HTTP/1.1 clients: `curl` and Python's `http.client`, over
//! loopback sockets driven by a small blocking loop (the runtimes replace it later). A client
//! that is not installed fails the test: `scripts/test` installs them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use http::header::{CONTENT_TYPE, HeaderMap};
use http::{Method, StatusCode};
use weft_core::Limits;
use weft_core::h1::{BodySize, ServerConnection, ServerEvent};

/// Starts a server on 127.0.0.1:0 that serves `connections` connections, then stops.
/// `/stream` answers 3 chunks of unknown length; every other path echoes the body back with
/// the request's method and Content-Type in `x-method` / `content-type`.
fn start_server(connections: usize) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let stream = stream.unwrap();
            thread::spawn(move || serve(stream));
        }
    });
    (address, handle)
}

fn serve(mut stream: TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = ServerConnection::new(Limits::default(), Instant::now());
    let mut buf = vec![0u8; 8192];
    let (mut method, mut path, mut content_type) = (Method::GET, String::new(), None);
    let mut body = Vec::new();
    // Bounded: a connection of these tests never needs more than a few hundred turns.
    for _ in 0..10_000 {
        while let Some(event) = conn.poll_event() {
            match event {
                ServerEvent::Request(head) => {
                    method = head.method.clone();
                    path = head.uri.path().to_owned();
                    content_type = head.headers.get(CONTENT_TYPE).cloned();
                    conn.request_body();
                }
                ServerEvent::Data(chunk) => body.extend_from_slice(&chunk),
                ServerEvent::EndOfMessage => {
                    answer(&mut conn, &method, &path, content_type.take(), &body);
                    body.clear();
                }
                _ => {}
            }
        }
        while let Some(bytes) = conn.poll_transmit(Instant::now()) {
            if stream.write_all(&bytes).is_err() {
                return;
            }
        }
        if conn.is_closed() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => conn.receive_eof(),
            Ok(n) => assert_eq!(conn.receive(Instant::now(), &buf[..n]), n),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                return;
            }
            Err(_) => return,
        }
    }
}

fn answer(
    conn: &mut ServerConnection,
    method: &Method,
    path: &str,
    content_type: Option<http::HeaderValue>,
    body: &[u8],
) {
    let mut headers = HeaderMap::new();
    headers.insert("x-method", method.as_str().parse().unwrap());
    if path == "/stream" {
        conn.send_response(StatusCode::OK, &headers, BodySize::Unknown)
            .unwrap();
        for piece in [&b"one "[..], b"two ", b"three"] {
            assert_eq!(conn.send_data(piece).unwrap(), piece.len());
        }
        conn.finish().unwrap();
        return;
    }
    if let Some(value) = content_type {
        headers.insert(CONTENT_TYPE, value);
    }
    conn.send_response(StatusCode::OK, &headers, BodySize::Known(body.len() as u64))
        .unwrap();
    assert_eq!(conn.send_data(body).unwrap(), body.len());
    conn.finish().unwrap();
}

/// Runs `curl` with `args` against `address`, returning stdout (headers included with `-i`).
fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test installs it)");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn curl_get_post_and_keep_alive_on_one_connection() {
    let (address, server) = start_server(1);
    let url = format!("http://{address}/echo");
    // Two URLs in one curl run reuse the connection: keep-alive.
    let out = curl(&[
        "-i",
        "-d",
        "hello",
        "-H",
        "Content-Type: text/plain",
        &url,
        "--next",
        "-i",
        &url,
    ]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("content-type: text/plain\r\n"), "{out}");
    assert!(out.contains("\r\n\r\nhello"), "{out}");
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(
        out.contains("x-method: GET"),
        "the second request is a GET: {out}"
    );
    server.join().unwrap();
}

#[test]
fn curl_chunked_upload_and_expect_continue() {
    let (address, server) = start_server(2);
    let url = format!("http://{address}/upload");
    let payload = "x".repeat(100_000);
    // curl sends `Expect: 100-continue` for a body this large and waits for our 100.
    let out = curl(&["-d", &payload, "-H", "Content-Type: text/plain", &url]);
    assert_eq!(out.len(), payload.len());
    let out = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "-d",
        "chunked body",
        &url,
    ]);
    assert_eq!(out, "chunked body");
    server.join().unwrap();
}

#[test]
fn curl_reads_chunked_and_http10_responses() {
    let (address, server) = start_server(3);
    let out = curl(&["-i", &format!("http://{address}/stream")]);
    assert!(out.contains("transfer-encoding: chunked\r\n"), "{out}");
    assert!(out.ends_with("one two three"), "{out}");
    // HTTP/1.0: unknown length means close-delimited.
    let out = curl(&["-i", "--http1.0", &format!("http://{address}/stream")]);
    assert!(out.contains("connection: close\r\n"), "{out}");
    assert!(!out.contains("transfer-encoding"), "{out}");
    assert!(out.ends_with("one two three"), "{out}");
    let out = curl(&["-I", &format!("http://{address}/echo")]);
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("content-length: 0"),
        "{out}"
    );
    server.join().unwrap();
}

#[test]
fn python_http_client_pipelines_over_one_connection() {
    let (address, server) = start_server(1);
    let script = format!(
        r#"
import http.client
conn = http.client.HTTPConnection("{ip}", {port}, timeout=10)
for i in range(5):
    conn.request("PUT", "/item/%d" % i, body=b"payload-%d" % i, headers={{"Content-Type": "application/x-test"}})
    r = conn.getresponse()
    assert r.status == 200, r.status
    assert r.getheader("x-method") == "PUT"
    assert r.read() == b"payload-%d" % i
print("ok")
"#,
        ip = address.ip(),
        port = address.port()
    );
    let output = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
    server.join().unwrap();
}
