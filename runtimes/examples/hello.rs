//! The README's "Serving an app": the runtime is whichever runtime feature is on
//! (`weft_runtime::start`), so this builds unchanged with each of them:
//!
//! ```text
//! cargo run -p weft-runtime --example hello --no-default-features --features smol
//! curl localhost:8080/hello
//! ```
//!
//! `scripts/examples-check` checks that it builds with each runtime feature alone.

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
    let mut config = ServerConfig::new(["127.0.0.1:8080".parse().unwrap()])
        .on_start(|addresses| println!("listening on {addresses:?}"))
        .on_shutdown(|| println!("draining"));
    config.handle_signals = true; // Ctrl-C drains in-flight requests, then exits
    let server = weft_runtime::start(config, app)?; // the runtime feature's runtime
    server.join()
}
