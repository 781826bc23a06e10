//! The smallest weft app, served on the runtime the `rt-*` feature picked:
//!
//! ```text
//! cargo run -p weft --example hello -- 127.0.0.1:8080
//! curl http://127.0.0.1:8080/hello/ada
//! ```
//!
//! `scripts/examples-check` serves it with each runtime feature alone.

use weft::ServerConfig;
use weft::prelude::*;
use weft::services::Provider;

async fn hello(Path(name): Path<String>) -> String {
    format!("hello, {name}")
}

/// A service with a stop hook, to show the app's shutdown running it.
struct Visits;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let app = App::new()
        .get("/", || async {
            Html("<h1>weft</h1><p>try <a href=\"/hello/you\">/hello/you</a></p>")
        })
        .get("/hello/{name}", hello)
        .provide(
            Provider::value(Visits).on_stop(|_: &Visits| println!("draining: services stopped")),
        );
    let mut config = ServerConfig::new(std::net::ToSocketAddrs::to_socket_addrs(&address)?);
    // Ctrl-C (SIGINT) and SIGTERM drain the server and stop the services.
    config.handle_signals = true;
    let server = app.listen(config)?;
    println!("listening on {:?}", server.local_addrs());
    server.join()?;
    Ok(())
}
