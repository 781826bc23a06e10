//! Handlers that block their thread, on the threadpool runtime: the workers take turns at
//! waiting on the connections (leader and followers), so a worker blocked in a handler must
//! hold that one request only, never the other connections; and with every worker blocked,
//! what became ready meanwhile (requests, new clients) is served once one is free.
//!
//! Servers listen on 127.0.0.1:0; every read and every wait is bounded.
#![cfg(feature = "threadpool")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use http::{Request, Response};
use weft_runtime::{ServerConfig, ServerHandle};
use weft_service::body::Body;
use weft_service::service::Service;

/// The longest any step of a test waits.
const WAIT: Duration = Duration::from_secs(10);

/// What the blocking handlers report, and what releases them.
struct Blocker {
    /// A handler of `/block` sends here once it runs, before it blocks.
    started: Mutex<Sender<()>>,
    /// A handler of `/block` blocks its thread until it receives from here.
    release: Mutex<Receiver<()>>,
}

/// `/block` blocks its worker thread (a synchronous wait in the handler's future, as a
/// blocking database call would) until released; anything else answers at once.
fn app(blocker: Arc<Blocker>) -> impl Service {
    move |request: Request<Body>| {
        let blocker = Arc::clone(&blocker);
        async move {
            if request.uri().path() == "/block" {
                let _ = lock(&blocker.started).send(());
                let released = lock(&blocker.release).recv_timeout(WAIT).is_ok();
                let body = if released { "released" } else { "timed out" };
                return Response::new(Body::from(body));
            }
            Response::new(Body::from("hello"))
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the server with `workers` workers; returns it, the handlers' start reports and
/// their release.
fn start(workers: usize) -> (ServerHandle, Receiver<()>, Sender<()>) {
    let (started, starts) = mpsc::channel();
    let (release, released) = mpsc::channel();
    let blocker = Arc::new(Blocker {
        started: Mutex::new(started),
        release: Mutex::new(released),
    });
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = workers;
    config.handle_signals = false;
    config.drain_timeout = Duration::from_secs(5);
    let server = weft_runtime::threadpool::start(config, app(blocker)).expect("the server starts");
    (server, starts, release)
}

/// Shuts down and waits, at most `WAIT`, for the server to stop.
fn stop(server: ServerHandle) {
    server.shutdown();
    let (done, joined) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(server.join());
    });
    joined
        .recv_timeout(WAIT)
        .expect("the server stops within WAIT")
        .expect("the server stops cleanly");
}

/// A keep-alive client.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    fn send(&mut self, path: &str) {
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
        self.stream.write_all(request.as_bytes()).unwrap();
    }

    /// Reads one response; returns its body (bodies here always have a content-length).
    fn reply(&mut self) -> String {
        let mut length = None;
        let mut first = true;
        loop {
            let mut line = String::new();
            let read = self
                .reader
                .read_line(&mut line)
                .expect("a response within WAIT");
            assert!(read > 0, "the connection closed inside a head");
            if first {
                assert!(line.starts_with("HTTP/1.1 200 "), "{line}");
                first = false;
            }
            let line = line.to_ascii_lowercase();
            if let Some(value) = line.strip_prefix("content-length: ") {
                length = Some(value.trim().parse::<usize>().unwrap());
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length.expect("a content-length")];
        self.reader.read_exact(&mut body).unwrap();
        String::from_utf8(body).unwrap()
    }

    fn get(&mut self, path: &str) -> String {
        self.send(path);
        self.reply()
    }
}

#[test]
fn a_handler_blocking_its_worker_holds_no_other_connection() {
    let (server, starts, release) = start(2);
    let addr = server.local_addrs()[0];
    // Parked keep-alive connections, in the poller when the handler blocks.
    let mut clients: Vec<Client> = (0..20).map(|_| Client::connect(addr)).collect();
    for client in &mut clients {
        assert_eq!(client.get("/hello"), "hello");
    }
    let mut blocked = Client::connect(addr);
    blocked.send("/block");
    starts
        .recv_timeout(WAIT)
        .expect("the blocking handler runs");
    // One worker is blocked: the other serves every connection, one after another and all at
    // once, old and new.
    for client in &mut clients {
        assert_eq!(client.get("/hello"), "hello");
    }
    for client in &mut clients {
        client.send("/hello");
    }
    for client in &mut clients {
        assert_eq!(client.reply(), "hello");
    }
    assert_eq!(Client::connect(addr).get("/hello"), "hello");
    release.send(()).unwrap();
    assert_eq!(blocked.reply(), "released");
    assert_eq!(blocked.get("/hello"), "hello");
    stop(server);
}

#[test]
fn what_became_ready_while_every_worker_was_blocked_is_served_after() {
    let (server, starts, release) = start(2);
    let addr = server.local_addrs()[0];
    let mut parked = Client::connect(addr);
    assert_eq!(parked.get("/hello"), "hello");
    let mut blocked: Vec<Client> = (0..2).map(|_| Client::connect(addr)).collect();
    for client in &mut blocked {
        client.send("/block");
        starts
            .recv_timeout(WAIT)
            .expect("the blocking handler runs");
    }
    // Nobody waits on the poller now: a request on a parked connection and a new client
    // wait in the kernel until a worker is free.
    parked.send("/hello");
    let mut new = Client::connect(addr);
    new.send("/hello");
    release.send(()).unwrap();
    assert_eq!(parked.reply(), "hello");
    assert_eq!(new.reply(), "hello");
    release.send(()).unwrap();
    for client in &mut blocked {
        assert_eq!(client.reply(), "released");
    }
    stop(server);
}

#[test]
fn one_worker_serves_many_connections_and_pipelined_requests() {
    let (server, _starts, _release) = start(1);
    let addr = server.local_addrs()[0];
    let mut clients: Vec<Client> = (0..50).map(|_| Client::connect(addr)).collect();
    for round in 0..3 {
        for client in &mut clients {
            for _ in 0..=round {
                client.send("/hello");
            }
        }
        for client in &mut clients {
            for _ in 0..=round {
                assert_eq!(client.reply(), "hello");
            }
        }
    }
    stop(server);
}
