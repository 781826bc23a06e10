//! The hyper peer of `benches/load.sh`: hyper 1.x's hello world at its fastest setting.
//!
//! `weft-peer-hyper [--listen ADDR] [--flavor current|multi]` (default `127.0.0.1:0`,
//! `current`). Prints `hyper listening on http://ADDR (FLAVOR)` once bound, as `weft echo` does.
//!
//! - `/plaintext` → `200`, `content-type: text/plain`, `Hello, World!`; any other path → `404`.
//! - One connection per tokio task, served by `hyper::server::conn::http1::Builder` with
//!   `pipeline_flush(true)` (answers to pipelined requests go out in one write), `TCP_NODELAY`.
//! - `current` (the default): tokio's current-thread runtime, so the whole server is one thread,
//!   like `weft echo --workers 1` pinned to one core. `multi` is the multi-thread runtime with
//!   one worker (`weft`'s tokio runtime with `--workers 1` is built that way): the accept loop
//!   then runs on the main thread and hands each connection to the worker.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

static HELLO: &[u8] = b"Hello, World!";

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

async fn serve(listen: SocketAddr, flavor: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!(
        "hyper listening on http://{} ({flavor})",
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
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .pipeline_flush(true)
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

fn main() -> std::io::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut flavor = String::from("current");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
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
                eprintln!("usage: weft-peer-hyper [--listen ADDR] [--flavor current|multi]");
                std::process::exit(2);
            }
        }
    }
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
    runtime.block_on(serve(listen, &flavor))
}
