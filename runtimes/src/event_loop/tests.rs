//! The event-loop runtimes served over real sockets on 127.0.0.1, each test run on every
//! event-loop runtime compiled in. (The crate's integration suite runs the common behaviour on
//! every runtime; these check the loop's own machinery: hand-off, wake-ups, timers, the gate,
//! drain and stop, panics outside handlers.)

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use weft_service::body::Body;
use weft_service::service::Service;

use crate::config::{ServerConfig, ServerHandle};

type Start = fn(ServerConfig, App) -> io::Result<ServerHandle>;

/// Every event-loop runtime compiled in.
const RUNTIMES: &[(&str, Start)] = &[
    #[cfg(feature = "mio")]
    ("mio", crate::mio::start::<App>),
    #[cfg(feature = "poll")]
    ("poll", crate::poll::start::<App>),
];

/// The longest a test waits for any one answer.
const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
struct App;

impl Service for App {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        if request.uri().path() == "/panic-in-call" {
            panic!("deliberate panic in Service::call");
        }
        async move {
            let query = request.uri().query().unwrap_or("").to_owned();
            match request.uri().path() {
                "/hello" => Response::new(Body::from("Hello")),
                "/echo" => Response::new(Body::new(request.into_body())),
                "/slow" => {
                    let ms = query
                        .strip_prefix("ms=")
                        .and_then(|ms| ms.parse().ok())
                        .unwrap_or(100);
                    sleep_on_another_thread(Duration::from_millis(ms)).await;
                    Response::new(Body::from("slept"))
                }
                "/panic" => panic!("deliberate panic in a handler"),
                "/panic-in-body" => Response::new(Body::new(PanickingBody)),
                _ => {
                    let mut response = Response::new(Body::from("not found"));
                    *response.status_mut() = StatusCode::NOT_FOUND;
                    response
                }
            }
        }
    }
}

/// A response body that panics when polled: outside the handler's future, so the panic escapes
/// the dispatcher and reaches the loop.
struct PanickingBody;

impl http_body::Body for PanickingBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        panic!("deliberate panic in a response body");
    }
}

/// Completes after `duration`, woken from another thread (as a database or a channel would).
async fn sleep_on_another_thread(duration: Duration) {
    let (sender, done) = Body::channel(1);
    thread::spawn(move || {
        thread::sleep(duration);
        sender.finish();
    });
    let _ = done.collect(0).await;
}

fn start_with(
    start: Start,
    configure: impl FnOnce(&mut ServerConfig),
) -> (ServerHandle, SocketAddr) {
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 2;
    config.drain_timeout = Duration::from_secs(5);
    configure(&mut config);
    let handle = start(config, App).expect("the server starts");
    let addr = handle.local_addrs()[0];
    (handle, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// A response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one response (content-length or chunked framing).
fn read_answer(reader: &mut BufReader<TcpStream>) -> io::Result<Answer> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let status = head[9..12].parse().unwrap();
    let lower = head.to_ascii_lowercase();
    let header = |name: &str| {
        lower
            .lines()
            .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let mut body = Vec::new();
    if let Some(length) = header("content-length:") {
        body.resize(length.parse().unwrap(), 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding:").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size)? == 0 {
                // The connection closed mid-body: the response was cut short.
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Ok(Answer { status, head, body })
}

/// Sends `raw` on a new connection and reads one response.
fn ask(addr: SocketAddr, raw: &str) -> io::Result<Answer> {
    let mut stream = connect(addr);
    stream.write_all(raw.as_bytes())?;
    read_answer(&mut BufReader::new(stream))
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: t\r\n\r\n")
}

#[test]
fn serves_get_post_and_two_requests_on_one_connection() {
    for &(name, start) in RUNTIMES {
        let (_server, addr) = start_with(start, |_| {});
        let stream = connect(addr);
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        writer.write_all(get("/hello").as_bytes()).unwrap();
        let first = read_answer(&mut reader).unwrap();
        assert_eq!(
            (first.status, &first.body[..]),
            (200, &b"Hello"[..]),
            "{name}"
        );
        writer
            .write_all(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 11\r\n\r\nhello there")
            .unwrap();
        let second = read_answer(&mut reader).unwrap();
        assert_eq!(
            (second.status, &second.body[..]),
            (200, &b"hello there"[..]),
            "{name}"
        );
        let missing = ask(addr, &get("/nowhere")).unwrap();
        assert_eq!(missing.status, 404, "{name}");
    }
}

#[test]
fn a_slow_handler_is_woken_from_another_thread_without_blocking_its_loop() {
    for &(name, start) in RUNTIMES {
        // One loop: the quick answer must come from the same loop the slow one waits on.
        let (_server, addr) = start_with(start, |c| c.workers = 1);
        let began = Instant::now();
        let slow = thread::spawn(move || ask(addr, &get("/slow?ms=400")).unwrap());
        thread::sleep(Duration::from_millis(50));
        let quick = ask(addr, &get("/hello")).unwrap();
        assert_eq!(quick.status, 200, "{name}");
        assert!(
            began.elapsed() < Duration::from_millis(350),
            "{name}: the loop was blocked"
        );
        let slow = slow.join().unwrap();
        assert_eq!(
            (slow.status, &slow.body[..]),
            (200, &b"slept"[..]),
            "{name}"
        );
        assert!(began.elapsed() >= Duration::from_millis(400), "{name}");
    }
}

#[test]
fn many_connections_at_once_are_spread_over_the_loops_and_all_answered() {
    for &(name, start) in RUNTIMES {
        let (_server, addr) = start_with(start, |c| c.workers = 3);
        let clients: Vec<_> = (0..200)
            .map(|i| {
                thread::spawn(move || {
                    let path = if i % 4 == 0 { "/slow?ms=50" } else { "/hello" };
                    ask(addr, &get(path)).unwrap().status
                })
            })
            .collect();
        for client in clients {
            assert_eq!(client.join().unwrap(), 200, "{name}");
        }
    }
}

#[test]
fn a_large_body_streams_through_echo_both_ways() {
    for &(name, start) in RUNTIMES {
        let (_server, addr) = start_with(start, |_| {});
        const SIZE: usize = 8 * 1024 * 1024;
        let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
        let stream = connect(addr);
        let mut writer = stream.try_clone().unwrap();
        let sent = body.clone();
        let upload = thread::spawn(move || {
            let head = format!("POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: {SIZE}\r\n\r\n");
            writer.write_all(head.as_bytes()).unwrap();
            writer.write_all(&sent).unwrap();
        });
        let answer = read_answer(&mut BufReader::new(stream)).unwrap();
        upload.join().unwrap();
        assert_eq!(answer.status, 200, "{name}");
        assert!(answer.body == body, "{name}: the body came back changed");
    }
}

#[test]
fn panics_in_a_handler_or_outside_it_leave_the_loop_serving() {
    for &(name, start) in RUNTIMES {
        let (_server, addr) = start_with(start, |c| c.workers = 1);
        for path in ["/panic", "/panic-in-call"] {
            let answer = ask(addr, &get(path)).unwrap();
            assert_eq!(answer.status, 500, "{name} {path}");
        }
        // A response body that panics is cut short by the dispatcher: the connection closes
        // mid-body, so the client never sees a complete answer.
        let dropped = ask(addr, &get("/panic-in-body"));
        assert!(dropped.is_err(), "{name}: {dropped:?}");
        let answer = ask(addr, &get("/hello")).unwrap();
        assert_eq!(answer.status, 200, "{name}");
    }
}

#[test]
fn past_the_connection_limit_a_client_waits_until_a_connection_ends() {
    for &(name, start) in RUNTIMES {
        let (_server, addr) = start_with(start, |c| c.max_connections = 1);
        let first = connect(addr);
        let mut first_writer = first.try_clone().unwrap();
        let mut first_reader = BufReader::new(first);
        first_writer.write_all(get("/hello").as_bytes()).unwrap();
        assert_eq!(
            read_answer(&mut first_reader).unwrap().status,
            200,
            "{name}"
        );

        let second = connect(addr);
        second
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut second_writer = second.try_clone().unwrap();
        let mut second_reader = BufReader::new(second);
        second_writer.write_all(get("/hello").as_bytes()).unwrap();
        let waited = read_answer(&mut second_reader);
        assert!(
            waited.is_err(),
            "{name}: answered past the limit: {waited:?}"
        );

        drop((first_writer, first_reader));
        second_reader
            .get_ref()
            .set_read_timeout(Some(WAIT))
            .unwrap();
        assert_eq!(
            read_answer(&mut second_reader).unwrap().status,
            200,
            "{name}"
        );
    }
}

#[test]
fn a_head_that_stalls_is_cut_off_by_the_head_timeout() {
    for &(name, start) in RUNTIMES {
        let (_server, addr) = start_with(start, |c| {
            c.dispatch.limits.head_timeout = Duration::from_millis(200);
        });
        let mut stream = connect(addr);
        stream.write_all(b"GET /hello HT").unwrap();
        let began = Instant::now();
        let mut rest = Vec::new();
        // The server closes: EOF (perhaps after a 408), or a reset.
        let _ = stream.read_to_end(&mut rest);
        let waited = began.elapsed();
        assert!(waited >= Duration::from_millis(150), "{name}: {waited:?}");
        assert!(waited < Duration::from_secs(3), "{name}: {waited:?}");
    }
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_its_timeout() {
    for &(name, start) in RUNTIMES {
        let (_server, addr) = start_with(start, |c| {
            c.dispatch.limits.keep_alive_timeout = Duration::from_millis(200);
        });
        let stream = connect(addr);
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        writer.write_all(get("/hello").as_bytes()).unwrap();
        assert_eq!(read_answer(&mut reader).unwrap().status, 200, "{name}");
        let began = Instant::now();
        let mut rest = Vec::new();
        assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0, "{name}");
        assert!(began.elapsed() < Duration::from_secs(3), "{name}");
    }
}

#[test]
fn shutdown_lets_a_request_in_flight_finish_and_closes_idle_connections() {
    for &(name, start) in RUNTIMES {
        let (server, addr) = start_with(start, |_| {});
        let idle = connect(addr);
        let in_flight = thread::spawn(move || ask(addr, &get("/slow?ms=300")).unwrap());
        thread::sleep(Duration::from_millis(100));
        server.shutdown();
        let mut rest = Vec::new();
        let mut idle = idle;
        assert_eq!(
            idle.read_to_end(&mut rest).unwrap_or(0),
            0,
            "{name}: idle closed"
        );
        let answer = in_flight.join().unwrap();
        assert_eq!(
            (answer.status, &answer.body[..]),
            (200, &b"slept"[..]),
            "{name}"
        );
        assert!(
            answer
                .head
                .to_ascii_lowercase()
                .contains("connection: close"),
            "{name}: {}",
            answer.head
        );
        let began = Instant::now();
        server.join().unwrap();
        assert!(began.elapsed() < Duration::from_secs(2), "{name}");
        assert!(TcpStream::connect(addr).is_err(), "{name}: still listening");
    }
}

#[test]
fn the_drain_deadline_closes_what_is_still_running() {
    for &(name, start) in RUNTIMES {
        let (server, addr) = start_with(start, |c| c.drain_timeout = Duration::from_millis(200));
        let in_flight = thread::spawn(move || ask(addr, &get("/slow?ms=5000")));
        thread::sleep(Duration::from_millis(100));
        let began = Instant::now();
        server.shutdown();
        server.join().unwrap();
        assert!(began.elapsed() < Duration::from_secs(2), "{name}");
        assert!(in_flight.join().unwrap().is_err(), "{name}: cut short");
    }
}
