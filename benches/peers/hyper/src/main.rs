//! The hyper peer of `benches/load.sh` (HTTP/1.1) and `benches/h2load.sh` (HTTP/2): hyper 1.x
//! at its fastest setting.
//!
//! `weft-peer-hyper [--listen ADDR] [--flavor current|multi] [--h2] [--no-pipeline-flush]`
//! (default `127.0.0.1:0`, `current`, HTTP/1.1). Prints `hyper listening on http://ADDR
//! (FLAVOR)` once bound (with `, h2` or `, no pipeline_flush` after the flavor), as `weft echo`
//! does.
//!
//! - HTTP/1.1 (the default): `/plaintext` → `200`, `content-type: text/plain`, `Hello, World!`;
//!   any other path → `404`. Served by `hyper::server::conn::http1::Builder` with
//!   `pipeline_flush(true)` (answers to pipelined requests go out in one write), or hyper's
//!   default (`pipeline_flush(false)`: a write per answer) with `--no-pipeline-flush`, the two
//!   hyper columns of issue 15's table.
//! - `--h2`: HTTP/2 over cleartext with prior knowledge (h2c: the client starts with the
//!   connection preface, no `Upgrade`), served by `hyper::server::conn::http2::Builder` with
//!   hyper's default settings; the routes of `weft echo` that the HTTP/2 tests and benchmark
//!   use (see [`routes`]).
//! - One connection per tokio task, `TCP_NODELAY`.
//! - `current` (the default): tokio's current-thread runtime, so the whole server is one thread,
//!   like `weft echo --workers 1` pinned to one core. `multi` is the multi-thread runtime with
//!   one worker (`weft`'s tokio runtime with `--workers 1` is built that way): the accept loop
//!   then runs on the main thread and hands each connection to the worker.

mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

use routes::HELLO;

/// The protocol every connection is served with.
#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    /// HTTP/1.1, with or without `pipeline_flush`.
    Http1 { pipeline_flush: bool },
    /// HTTP/2 over cleartext with prior knowledge.
    Http2,
}

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/plaintext" {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_FOUND;
        return Ok(res);
    }
    let mut res = Response::new(Full::new(Bytes::from_static(HELLO)));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(res)
}

async fn serve(listen: SocketAddr, flavor: &str, protocol: Protocol) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let mode = match protocol {
        Protocol::Http2 => ", h2",
        Protocol::Http1 {
            pipeline_flush: false,
        } => ", no pipeline_flush",
        Protocol::Http1 { .. } => "",
    };
    println!(
        "hyper listening on http://{} ({flavor}{mode})",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // EMFILE and the like: keep serving the connections already open.
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, protocol));
    }
}

/// Serves one connection to its end; its errors end only that connection.
async fn serve_connection(stream: TcpStream, protocol: Protocol) {
    let io = TokioIo::new(stream);
    let _ = match protocol {
        Protocol::Http1 { pipeline_flush } => {
            http1::Builder::new()
                .pipeline_flush(pipeline_flush)
                .serve_connection(io, service_fn(hello))
                .await
        }
        Protocol::Http2 => {
            http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service_fn(routes::route))
                .await
        }
    };
}

const USAGE: &str =
    "usage: weft-peer-hyper [--listen ADDR] [--flavor current|multi] [--h2] [--no-pipeline-flush]";

fn main() -> std::io::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut flavor = String::from("current");
    let mut h2 = false;
    let mut pipeline_flush = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--h2" => {
                h2 = true;
                continue;
            }
            "--no-pipeline-flush" => {
                pipeline_flush = false;
                continue;
            }
            _ => {}
        }
        let value = args.next();
        match (arg.as_str(), value) {
            ("--listen", Some(v)) => {
                listen = v.parse().map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("--listen {v}: {e}"),
                    )
                })?
            }
            ("--flavor", Some(v)) if v == "current" || v == "multi" => flavor = v,
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let protocol = if h2 {
        Protocol::Http2
    } else {
        Protocol::Http1 { pipeline_flush }
    };
    let runtime = if flavor == "current" {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_io()
            .build()?
    };
    runtime.block_on(serve(listen, &flavor, protocol))
}
