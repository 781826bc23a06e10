//! The may_minihttp peer of `benches/load.sh`: a TechEmpower-style plaintext server on may's
//! stackful coroutines, the fastest pipelined server of issue 15's table.
//!
//! `weft-peer-may-minihttp [--listen ADDR]` (default `127.0.0.1:0`). Prints
//! `may_minihttp listening on http://ADDR (1 worker)` once bound, as `weft echo` and the hyper
//! peer do, so `benches/common.sh`'s `start_server` finds the address.
//!
//! - `/plaintext` → `200`, `Content-Type: text/plain`, `Hello, World!`; any other path → `404`.
//!   may_minihttp adds `Server: M`, `Date` and `Content-Length` itself (its responses carry
//!   `Server`, weft's and hyper's do not: 11 bytes more).
//! - One may worker thread (`may::config().set_workers(1)`), like `weft echo --workers 1`.
//!   may_minihttp answers every request parsed from one read, then writes the answers at once:
//!   one write per pipelined batch.
//!
//! may_minihttp's `start` binds the address itself and does not say which port it got, so the
//! port of `--listen ...:0` is picked beforehand by binding and releasing a listener (the port
//! could be taken by someone else in between: the start then fails, and the script says so).

use std::io;
use std::net::{SocketAddr, TcpListener};

use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};

/// One connection's service: the bare router.
struct Plaintext;

impl HttpService for Plaintext {
    fn call(&mut self, req: Request<'_, '_, '_>, rsp: &mut Response<'_>) -> io::Result<()> {
        if req.path() == "/plaintext" {
            rsp.header("Content-Type: text/plain").body("Hello, World!");
        } else {
            rsp.status_code(404, "Not Found");
        }
        Ok(())
    }
}

/// Makes a [`Plaintext`] per connection.
struct Server;

impl HttpServiceFactory for Server {
    type Service = Plaintext;

    fn new_service(&self, _id: usize) -> Plaintext {
        Plaintext
    }
}

const USAGE: &str = "usage: weft-peer-may-minihttp [--listen ADDR]";

fn main() -> io::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => {
                listen = v.parse().map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("--listen {v}: {e}"))
                })?
            }
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    if listen.port() == 0 {
        listen = TcpListener::bind(listen)?.local_addr()?;
    }
    may::config().set_workers(1);
    let server = Server.start(listen)?;
    println!("may_minihttp listening on http://{listen} (1 worker)");
    server
        .join()
        .map_err(|_| io::Error::other("the server coroutine panicked"))
}
