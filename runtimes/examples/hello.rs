//! The README's "Serving an app": the runtime is whichever runtime feature is on
//! (`weft_runtime::start`), so this builds unchanged with each of them:
//!
//! ```text
//! cargo run -p weft-runtime --example hello --no-default-features --features smol
//! curl localhost:8080/hello
//! ```
//!
//! The address to listen on may be given as the first argument (`127.0.0.1:0` picks a free
//! port). `scripts/examples-check` builds and runs it with each runtime feature alone, and
//! asks it for a page with curl.

use std::time::Duration;

use weft_runtime::ServerConfig;
use weft_service::body::Body;
use weft_service::runtime;

fn main() -> std::io::Result<()> {
    let app = |request: http::Request<Body>| async move {
        // The server's timer, whatever the runtime.
        runtime::sleep(Duration::from_millis(1)).await;
        http::Response::new(Body::from(format!("hello from {}\n", request.uri().path())))
    };
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let address = address.parse().expect("an address such as 127.0.0.1:8080");
    let mut config = ServerConfig::new([address])
        .on_start(|addresses| println!("listening on {addresses:?}"))
        .on_shutdown(|| println!("draining"));
    config.handle_signals = true; // Ctrl-C drains in-flight requests, then exits
    let server = weft_runtime::start(config, app)?; // the runtime feature's runtime
    server.join()
}
