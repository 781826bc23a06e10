//! The framework's WebSockets with real clients, on an app served on the preferred runtime:
//! - `runtimes/tests/ws/rooms.py` (Python `websockets`) joins 50 clients, one of them slow, to
//!   rooms of the `Hub`, under both slow-consumer policies (the runtime suite runs the same
//!   script against its own copy of the policies, as weft-runtime cannot depend on weft);
//! - `runtimes/tests/ws/h2_echo.py` (Python `h2`) opens WebSockets over HTTP/2 (RFC 8441
//!   extended CONNECT) on a plain `get` route, with and without permessage-deflate.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weft::ServerConfig;
use weft::prelude::*;
use weft::services::Inject;
use weft::websocket::{CloseCode, Hub, Message, QueueSizes, SlowConsumer, WebSocketUpgrade};

/// A slow member is found once 256 KiB wait for it; the broadcaster's burst always fits a
/// fast member's queue (as in the runtime suite).
const ROOM_QUEUES: QueueSizes = QueueSizes {
    receive: 32 * 1024,
    send: 256 * 1024,
};

/// A bound on one script run, not a measured time.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Every message goes to the room's other members, except `?stats`, answered to the sender
/// with `members=M dropped=D` (what rooms.py waits on).
async fn room(upgrade: WebSocketUpgrade, hub: Inject<Hub>, Path(name): Path<String>) -> Response {
    // No heartbeat: the slow member of rooms.py reads nothing, pongs included, on purpose.
    let upgrade = upgrade.heartbeat(None).queues(ROOM_QUEUES);
    upgrade.on_upgrade(move |mut socket| async move {
        let id = socket.id();
        hub.join(&name, socket.sender());
        while let Some(message) = socket.recv().await {
            if message.as_text() == Some("?stats") {
                let stats = format!("members={} dropped={}", hub.room_len(&name), hub.dropped());
                if socket.send(Message::text(stats)).await.is_err() {
                    break;
                }
            } else {
                hub.broadcast_to(&name, &message, Some(id));
            }
        }
        hub.remove(id);
    })
}

fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", "import websockets, h2"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .expect("a python3 with websockets and h2 (scripts/test installs python3-websockets, python3-h2)")
}

/// Echoes every message: a plain `get` route, reached over HTTP/2 by extended CONNECT.
async fn echo(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(message) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

/// Serves `app`, runs `runtimes/tests/ws/SCRIPT URL ARGS...` against it, and fails unless
/// every case of the script passed.
fn run_script(app: App, script: &str, path: &str, args: &[&str]) {
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 2;
    let server = app.listen(config).unwrap();
    let url = format!("ws://{}{path}", server.local_addrs()[0]);
    let script_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runtimes/tests/ws")
        .join(script);
    let mut child = Command::new(python())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(script_path)
        .arg(&url)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success() && report.contains("ok ") && !report.contains("FAIL"),
        "{script} {args:?}: {report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.shutdown();
    server.join().unwrap();
}

fn rooms_py(policy: &str, slow: SlowConsumer) {
    let app = App::new().state(Hub::new(slow)).get("/room/{name}", room);
    run_script(app, "rooms.py", "/room", &["50", "--policy", policy]);
}

#[test]
fn python_h2_websockets_reach_a_get_route() {
    for compression in ["deflate", "none"] {
        let app = App::new().get("/ws", echo);
        run_script(app, "h2_echo.py", "/ws", &["--compression", compression]);
    }
}

#[test]
fn python_clients_in_hub_rooms_with_a_slow_consumer_disconnected() {
    rooms_py(
        "disconnect",
        SlowConsumer::Disconnect(CloseCode::TRY_AGAIN_LATER),
    );
}

#[test]
fn python_clients_in_hub_rooms_with_a_slow_consumer_dropped() {
    rooms_py("drop", SlowConsumer::Drop);
}
