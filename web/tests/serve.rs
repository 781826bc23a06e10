//! An app served over real sockets on the runtime the features chose: start and stop hooks
//! run with the server, and the protocol's own rejections (before the app sees a request)
//! are problem+json too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft::ServerConfig;
use weft::prelude::*;
use weft::services::Provider;

struct Db;

fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    // The server closes after these answers (Connection: close, or an error).
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_served_app_runs_its_hooks_and_answers_protocol_errors_as_problems() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (started, stopped) = (Arc::clone(&log), Arc::clone(&log));
    let app = App::new()
        .provide(
            Provider::value(Db)
                .on_start(move |_: &Db| {
                    started.lock().unwrap().push("start");
                    Ok(())
                })
                .on_stop(move |_: &Db| stopped.lock().unwrap().push("stop")),
        )
        .get("/hi/{name}", |Path(name): Path<String>| async move {
            format!("hi {name}")
        });
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = app.listen(config).unwrap();
    assert_eq!(*log.lock().unwrap(), ["start"]);
    let address = server.local_addrs()[0];

    let ok = exchange(
        address,
        b"GET /hi/ada HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with("hi ada"), "{ok}");

    let missing = exchange(
        address,
        b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("application/problem+json"), "{missing}");

    // A header block over the core's limit is refused before any app code runs.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let refused = exchange(address, huge.as_bytes());
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");
    assert!(refused.contains("application/problem+json"), "{refused}");
    assert!(
        refused.contains("\"code\":\"protocol.rejected\""),
        "{refused}"
    );

    server.shutdown();
    server.join().unwrap();
    assert_eq!(*log.lock().unwrap(), ["start", "stop"]);
}
