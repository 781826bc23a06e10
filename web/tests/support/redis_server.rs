//! A real `redis-server` for the Redis backend's tests: started on a free loopback port in a
//! temporary directory, without persistence, and killed when dropped.
//!
//! Include it with `#[path = "support/redis_server.rs"] mod redis_server;`. The server must
//! be installed (`scripts/test` installs it); the tests fail, not skip, when it is not.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a started server has to answer PING.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Tries with another port when the one picked was taken between closing it and the server
/// binding it.
const PORT_ATTEMPTS: usize = 5;

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub fn start() -> RedisServer {
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
            let port = free_port();
            let mut child = spawn(dir.path(), port);
            if wait_ready(&mut child, port) {
                return RedisServer { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();
        }
        panic!("redis-server did not start after {PORT_ATTEMPTS} attempts; its log:\n{last_log}");
    }

    /// Starts a server on `port` (one a dropped server used: the backend's reconnection
    /// tests restart the server where clients look for it).
    pub fn start_on(port: u16) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        let mut child = spawn(dir.path(), port);
        if wait_ready(&mut child, port) {
            return RedisServer { child, port, dir };
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();
        panic!("redis-server did not start on port {port}; its log:\n{log}");
    }

    /// The server's URL, for `redis::Client::open`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listened on a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("the bound address").port()
}

fn spawn(dir: &Path, port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-server ({e}): install it (scripts/test does, with apt)")
        })
}

/// Whether the server answers PING within [`READY_WITHIN`]; `false` as soon as it exits
/// (the port was taken).
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if ping(port) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// A plain connection to the test's server at `url`, for the keys a test records its runs in
/// and the stop key its helper processes watch.
pub fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("a connection to the test's redis-server")
}

/// Polls `<prefix>:stop` until it is set (`true`) or `bound` has passed (`false`): how a
/// test's helper process (a worker, a cron instance) learns to stop.
pub fn wait_for_stop_key(control: &mut redis::Connection, prefix: &str, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        let stop: bool = redis::cmd("EXISTS")
            .arg(format!("{prefix}:stop"))
            .query(control)
            .unwrap();
        if stop {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Sets `<prefix>:stop`, which stops the helper processes waiting in [`wait_for_stop_key`].
pub fn set_stop_key(control: &mut redis::Connection, prefix: &str) {
    redis::cmd("SET")
        .arg(format!("{prefix}:stop"))
        .arg(1)
        .query::<()>(control)
        .unwrap();
}
