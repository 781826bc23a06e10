//! A program with its own mio event loop that serves HTTP next to work of its own.
//!
//! The loop owns everything: a TCP listener whose connections weft serves, a UDP socket that
//! answers every datagram with `pong` (the program's own business, untouched by weft), and the
//! wake-ups through which weft's connections ask to be driven again when the application's
//! futures make progress on other threads. weft adds no thread and never blocks the loop.
//!
//! Each connection speaks HTTP/1.1 or HTTP/2 (cleartext: the HTTP/2 preface, or
//! `Upgrade: h2c`), and `/ws` is a WebSocket echoing every message. There is no TLS here.
//!
//! ```text
//! cargo run -p weft-adapters --features mio --example embed_mio -- [HTTP_ADDR] [UDP_ADDR]
//! curl http://127.0.0.1:8080/hello
//! curl --http2-prior-knowledge http://127.0.0.1:8080/hello
//! curl http://127.0.0.1:8080/later      # answered by another thread 200 ms later
//! curl -d 'some body' http://127.0.0.1:8080/echo
//! echo ping | nc -u -w1 127.0.0.1 8081  # the loop's own UDP service
//! ```
//!
//! Both addresses default to 127.0.0.1 (ports 8080 and 8081); port 0 picks a free port, and the
//! program prints the addresses it got. `cargo test -p weft-adapters --features mio --example
//! embed_mio` runs the loop on free ports and drives it over HTTP/1.1, HTTP/2 (with curl),
//! WebSocket and UDP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll as TaskPoll, Waker};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use weft_adapters::mio::{MioConnection, Wakeups};
use weft_adapters::{DispatchConfig, Dispatcher};
use weft_service::body::Body;
use weft_service::service::{ConnectionInfo, DynService, Service};
use weft_service::websocket::{WebSocket, WebSocketUpgrade};

/// The loop's own sources; connections take the tokens after them.
const HTTP: Token = Token(0);
const UDP: Token = Token(1);
const WAKE: Token = Token(2);
const FIRST_CONNECTION: usize = 3;

/// Connections accepted per readiness event before the loop turns to its other sources.
const ACCEPTS_PER_EVENT: usize = 64;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let http_addr = parse_addr(args.next(), "127.0.0.1:8080")?;
    let udp_addr = parse_addr(args.next(), "127.0.0.1:8081")?;
    let server = Server::bind(http_addr, udp_addr)?;
    println!("http://{}", server.listener.local_addr()?);
    println!("udp {}", server.udp.local_addr()?);
    server.run()
}

/// The loop's poll and its own sources, bound and registered.
struct Server {
    poll: Poll,
    listener: TcpListener,
    udp: UdpSocket,
    wakeups: Wakeups,
}

impl Server {
    fn bind(http_addr: SocketAddr, udp_addr: SocketAddr) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(http_addr)?;
        poll.registry()
            .register(&mut listener, HTTP, Interest::READABLE)?;
        let mut udp = UdpSocket::bind(udp_addr)?;
        poll.registry()
            .register(&mut udp, UDP, Interest::READABLE)?;
        let wakeups = Wakeups::new(poll.registry(), WAKE)?;
        Ok(Server {
            poll,
            listener,
            udp,
            wakeups,
        })
    }

    /// Runs the loop; returns only on an error of `Poll::poll`.
    fn run(self) -> io::Result<()> {
        let Server {
            mut poll,
            listener,
            udp,
            wakeups,
        } = self;
        run_loop(&mut poll, &listener, &udp, &wakeups)
    }
}

fn run_loop(
    poll: &mut Poll,
    listener: &TcpListener,
    udp: &UdpSocket,
    wakeups: &Wakeups,
) -> io::Result<()> {
    let mut events = Events::with_capacity(256);
    let service: Arc<dyn DynService> = Arc::new(App);
    let mut connections = Connections::default();
    let mut woken = Vec::new();
    let mut datagram = [0u8; 1500];
    // The listener was readable and may still hold connections: readiness is edge-triggered,
    // so no new event would say so.
    let mut backlog = false;

    loop {
        // The nearest protocol deadline of any connection bounds the wait. A loop with many
        // connections would keep them in a timer heap; a scan is enough for an example.
        let timeout = if backlog {
            Some(Duration::ZERO)
        } else {
            connections
                .next_deadline()
                .map(|deadline| deadline.saturating_duration_since(Instant::now()))
        };
        if let Err(error) = poll.poll(&mut events, timeout) {
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        let now = Instant::now();

        for event in events.iter() {
            match event.token() {
                HTTP => backlog = true,
                UDP => answer_pings(udp, &mut datagram),
                WAKE => wakeups.take(&mut woken),
                token => connections.with(poll, token, |c| c.handle_event(event, now)),
            }
        }
        if backlog {
            backlog = connections.accept_batch(listener, poll, wakeups, &service, now);
        }
        for token in woken.drain(..) {
            connections.with(poll, token, |c| c.handle_wake(now));
        }
        for token in connections.due(now) {
            connections.with(poll, token, |c| c.handle_timeout(now));
        }
    }
}

/// The loop's own service: every datagram is answered with `pong`.
fn answer_pings(udp: &UdpSocket, datagram: &mut [u8]) {
    loop {
        match udp.recv_from(datagram) {
            Ok((_, from)) => {
                if let Err(e) = udp.send_to(b"pong\n", from) {
                    eprintln!("udp send to {from} failed: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                eprintln!("udp receive failed: {e}");
                return;
            }
        }
    }
}

fn parse_addr(arg: Option<String>, default: &str) -> io::Result<SocketAddr> {
    arg.as_deref()
        .unwrap_or(default)
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad address: {e}")))
}

/// The loop's connections, by token: a slot vector with a free list.
#[derive(Default)]
struct Connections {
    slots: Vec<Option<MioConnection>>,
    free: Vec<usize>,
}

impl Connections {
    /// Accepts up to [`ACCEPTS_PER_EVENT`] connections; true when the batch was full and the
    /// backlog may hold more.
    fn accept_batch(
        &mut self,
        listener: &TcpListener,
        poll: &Poll,
        wakeups: &Wakeups,
        service: &Arc<dyn DynService>,
        now: Instant,
    ) -> bool {
        for _ in 0..ACCEPTS_PER_EVENT {
            match listener.accept() {
                Ok((stream, peer)) => self.accept(poll, wakeups, service, stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    // Out of descriptors, say: retried on the next event, not in a spin.
                    eprintln!("accept failed: {e}");
                    return false;
                }
            }
        }
        true
    }

    /// Registers a new connection and starts it (it may already hold a request).
    fn accept(
        &mut self,
        poll: &Poll,
        wakeups: &Wakeups,
        service: &Arc<dyn DynService>,
        stream: mio::net::TcpStream,
        peer: SocketAddr,
        now: Instant,
    ) {
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("TCP_NODELAY on {peer}: {e}");
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let token = Token(FIRST_CONNECTION + index);
        let info = ConnectionInfo::tcp(Some(peer), stream.local_addr().ok());
        let dispatcher = Dispatcher::new(Arc::clone(service), DispatchConfig::default(), info, now);
        let mut connection = MioConnection::new(stream, dispatcher, wakeups.waker(token));
        if let Err(e) = connection.register(poll.registry(), token) {
            eprintln!("cannot register {peer}: {e}");
            self.free.push(index);
            return;
        }
        self.slots[index] = Some(connection);
        self.with(poll, token, |c| c.handle_wake(now));
    }

    /// Runs `f` on the connection under `token`, and drops the connection once it is over.
    fn with(
        &mut self,
        poll: &Poll,
        token: Token,
        f: impl FnOnce(&mut MioConnection) -> io::Result<()>,
    ) {
        let Some(index) = token.0.checked_sub(FIRST_CONNECTION) else {
            return;
        };
        // A late event or wake-up for a connection already gone is ignored.
        let Some(Some(connection)) = self.slots.get_mut(index) else {
            return;
        };
        let result = f(connection);
        if let Err(e) = &result {
            eprintln!("connection {} failed: {e}", token.0);
        }
        if result.is_err() || connection.is_closed() {
            if let Err(e) = connection.deregister(poll.registry()) {
                eprintln!("deregistering connection {}: {e}", token.0);
            }
            self.slots[index] = None;
            self.free.push(index);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter_map(MioConnection::poll_timeout)
            .min()
    }

    /// Tokens of the connections whose deadline has passed.
    fn due(&self, now: Instant) -> Vec<Token> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| {
                slot.as_ref()
                    .and_then(MioConnection::poll_timeout)
                    .is_some_and(|deadline| deadline <= now)
            })
            .map(|(index, _)| Token(FIRST_CONNECTION + index))
            .collect()
    }
}

/// The application: plain async handlers, as it would run on any weft runtime.
struct App;

impl Service for App {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        answer(request)
    }
}

async fn answer(request: Request<Body>) -> Response<Body> {
    match request.uri().path() {
        "/hello" => Response::new(Body::from("Hello from an embedded mio loop!\n")),
        "/later" => {
            let text = Later::after(Duration::from_millis(200)).await;
            Response::new(Body::from(text))
        }
        "/echo" => Response::new(Body::new(request.into_body())),
        "/ws" => match WebSocketUpgrade::from_request(&request) {
            Ok(upgrade) => upgrade.on_upgrade(echo_messages),
            Err(rejection) => rejection.into_response(),
        },
        _ => {
            let mut response = Response::new(Body::from("not found\n"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// `/ws`: every message sent back on the same socket, until the client closes.
async fn echo_messages(mut socket: WebSocket) {
    while let Some(message) = socket.recv().await {
        if socket.send(message).await.is_err() {
            return;
        }
    }
}

/// A value produced by another thread: the future is woken from there, which queues the
/// connection's token in [`Wakeups`] and wakes the loop.
struct Later {
    slot: Arc<Mutex<(Option<String>, Option<Waker>)>>,
}

impl Later {
    fn after(delay: Duration) -> Self {
        let slot = Arc::new(Mutex::new((None, None::<Waker>)));
        let producer = Arc::clone(&slot);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let mut slot = producer.lock().unwrap();
            slot.0 = Some(format!("answered from another thread after {delay:?}\n"));
            if let Some(waker) = slot.1.take() {
                waker.wake();
            }
        });
        Later { slot }
    }
}

impl Future for Later {
    type Output = String;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<String> {
        let mut slot = self.slot.lock().unwrap();
        match slot.0.take() {
            Some(text) => TaskPoll::Ready(text),
            None => {
                slot.1 = Some(cx.waker().clone());
                TaskPoll::Pending
            }
        }
    }
}

/// The example runs under `cargo test` (`test = true` in Cargo.toml): the loop on free ports,
/// driven by real sockets.
#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::Command;

    use super::*;

    const IO_TIMEOUT: Duration = Duration::from_secs(10);

    /// Starts the loop on a thread of its own; returns its HTTP and UDP addresses.
    fn start() -> (SocketAddr, SocketAddr) {
        let any = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(any, any).unwrap();
        let addrs = (
            server.listener.local_addr().unwrap(),
            server.udp.local_addr().unwrap(),
        );
        std::thread::spawn(move || server.run());
        addrs
    }

    fn connect(addr: SocketAddr) -> std::net::TcpStream {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }

    /// Sends `request` (which asks for `Connection: close`) and reads the whole answer.
    fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut stream = connect(addr);
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        String::from_utf8(answer).unwrap()
    }

    #[test]
    fn serves_http1_next_to_its_own_udp_service() {
        let (http, udp) = start();
        let hello = exchange(
            http,
            "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(hello.starts_with("HTTP/1.1 200"), "{hello}");
        assert!(
            hello.ends_with("Hello from an embedded mio loop!\n"),
            "{hello}"
        );

        let later = exchange(
            http,
            "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(later.contains("answered from another thread"), "{later}");

        let echo = exchange(
            http,
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\nsome body",
        );
        assert!(echo.starts_with("HTTP/1.1 200"), "{echo}");
        // Streamed back as it arrives, with the request's length when it had one, else chunked.
        assert!(
            echo.ends_with("\r\n\r\nsome body")
                || echo.ends_with("\r\n\r\n9\r\nsome body\r\n0\r\n\r\n"),
            "{echo}"
        );

        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        client.send_to(b"ping", udp).unwrap();
        let mut pong = [0u8; 16];
        let (n, _) = client.recv_from(&mut pong).unwrap();
        assert_eq!(&pong[..n], b"pong\n");
    }

    #[test]
    fn serves_http2_by_prior_knowledge() {
        let (http, _) = start();
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--http2-prior-knowledge"])
            .args(["--max-time", "10", "--write-out", "%{http_version}"])
            .arg(format!("http://{http}/hello"))
            .output()
            .expect("curl runs (scripts/test installs it)");
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(stdout, "Hello from an embedded mio loop!\n2");
    }

    #[test]
    fn echoes_websocket_messages() {
        let (http, _) = start();
        let mut stream = connect(http);
        stream
            .write_all(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // RFC 6455 §1.3's sample key and its accept value.
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");

        // A masked text frame "hi" (RFC 6455 §5.2), answered unmasked.
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | 2];
        frame.extend_from_slice(&mask);
        frame.extend(b"hi".iter().zip(mask).map(|(b, m)| b ^ m));
        stream.write_all(&frame).unwrap();
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).unwrap();
        assert_eq!(answer, [0x81, 2, b'h', b'i']);
    }
}
