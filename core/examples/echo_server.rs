//! A small HTTP/1.1 echo server: the core driven by blocking `std::net` sockets, one thread per
//! connection. It shows how any I/O loop embeds `ServerConnection`; the real runtimes live in
//! `weft-runtime`.
//!
//! ```text
//! cargo run --release -p weft-core --example echo_server -- 127.0.0.1:8080
//! curl -d 'hello' http://127.0.0.1:8080/anything
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderMap};
use weft_core::Limits;
use weft_core::h1::{BodySize, ServerConnection, ServerEvent};

fn main() -> io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = TcpListener::bind(&address)?;
    println!("listening on http://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(error) = serve(stream) {
                eprintln!("connection ended: {error}");
            }
        });
    }
    Ok(())
}

/// Serves one connection: echoes each request body back with the request's Content-Type.
fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = ServerConnection::new(Limits::default(), Instant::now());
    let mut buf = vec![0u8; 16 * 1024];
    // Bytes read but not yet taken by the connection (its buffer was full): backpressure.
    let mut unread: Vec<u8> = Vec::new();
    let mut content_type = None;
    let mut body = Vec::new();
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                ServerEvent::Request(head) => {
                    content_type = head.headers.get(CONTENT_TYPE).cloned();
                    conn.request_body(); // sends 100 Continue if the client waits for it
                }
                ServerEvent::Data(chunk) => body.extend_from_slice(&chunk),
                ServerEvent::EndOfMessage => {
                    let mut headers = HeaderMap::new();
                    if let Some(value) = content_type.take() {
                        headers.insert(CONTENT_TYPE, value);
                    }
                    let size = BodySize::Known(body.len() as u64);
                    conn.send_response(StatusCode::OK, &headers, size)
                        .map_err(io::Error::other)?;
                    let mut rest = &body[..];
                    while !rest.is_empty() {
                        rest = &rest[conn.send_data(rest).map_err(io::Error::other)?..];
                        flush(&mut conn, &mut stream)?;
                    }
                    conn.finish().map_err(io::Error::other)?;
                    body.clear();
                }
                ServerEvent::Error(error) => eprintln!("refused request: {error}"),
                _ => {}
            }
        }
        flush(&mut conn, &mut stream)?;
        if conn.is_closed() {
            return Ok(());
        }
        if !unread.is_empty() {
            let taken = conn.receive(Instant::now(), &unread);
            unread.drain(..taken);
            if taken > 0 {
                continue;
            }
        }
        let timeout = conn
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()));
        stream.set_read_timeout(timeout.map(|t| t.max(Duration::from_millis(1))))?;
        match stream.read(&mut buf) {
            Ok(0) => conn.receive_eof(),
            Ok(n) => {
                let taken = conn.receive(Instant::now(), &buf[..n]);
                unread.extend_from_slice(&buf[taken..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_timeout(Instant::now());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes everything the connection has for the peer.
fn flush(conn: &mut ServerConnection, stream: &mut TcpStream) -> io::Result<()> {
    while let Some(bytes) = conn.poll_transmit(Instant::now()) {
        stream.write_all(&bytes)?;
    }
    Ok(())
}
