//! The driver on real loopback sockets with a recording registry: one-shot re-arming, tickets,
//! deadlines, drain and close. (The runtimes' suites run it under real reactors; the mio
//! adapter's tests and `examples/embed_mio.rs` under a user's mio loop.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response};
use weft_service::body::Body;
use weft_service::service::erase;

use super::*;

/// A std stream as a driver socket.
struct Stream(TcpStream);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Stream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.0.shutdown(std::net::Shutdown::Write)
    }
}

/// A one-shot (or edge-triggered) registry that records what the driver asks of it.
#[derive(Default)]
struct Recording<const ONESHOT: bool> {
    added: Vec<(usize, Interest)>,
    armed: Vec<(usize, Interest)>,
    removed: usize,
}

impl<const ONESHOT: bool> Registry for Recording<ONESHOT> {
    type Stream = TcpStream;
    type Socket = Stream;
    const ONESHOT: bool = ONESHOT;

    fn add(&mut self, stream: TcpStream, key: usize, interest: Interest) -> io::Result<Stream> {
        stream.set_nonblocking(true)?;
        self.added.push((key, interest));
        Ok(Stream(stream))
    }

    fn rearm(&mut self, _: &Stream, key: usize, interest: Interest) -> io::Result<()> {
        self.armed.push((key, interest));
        Ok(())
    }

    fn remove(&mut self, socket: Stream) {
        self.removed += 1;
        drop(socket);
    }
}

struct Nobody;

impl Notify for Nobody {
    fn notify(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the tickets alive.
struct Ticket(Arc<AtomicUsize>);

impl Ticket {
    fn new(alive: &Arc<AtomicUsize>) -> Ticket {
        alive.fetch_add(1, Ordering::SeqCst);
        Ticket(Arc::clone(alive))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn hello(_: Request<Body>) -> Response<Body> {
    Response::new(Body::from("hello"))
}

fn driver(dispatch: DispatchConfig) -> Driver<Stream, Ticket> {
    let mailbox = Arc::new(Mailbox::new(Box::new(Nobody)));
    Driver::new(erase(hello), dispatch, None, mailbox)
}

/// A connected pair: (the client, the server's end and the addresses).
fn pair() -> (TcpStream, TcpStream, SocketAddr, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (server, peer) = listener.accept().unwrap();
    (client, server, peer, listener.local_addr().unwrap())
}

fn read_answer(client: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0; 1024];
    while !seen.ends_with(b"hello") {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(seen).unwrap()
}

/// Reports the socket readable until the driver closes the connection (at most 10 s).
fn until_closed<const O: bool>(
    driver: &mut Driver<Stream, Ticket>,
    registry: &mut Recording<O>,
    key: Key,
) {
    let start = Instant::now();
    while !driver.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "still open");
        let ready = Ready {
            key: key.index(),
            readable: true,
            writable: true,
            read_closed: false,
        };
        driver.handle_ready(registry, ready, Instant::now());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_one_shot_socket_is_armed_for_reading_after_an_answer_and_the_ticket_ends_with_it() {
    let alive = Arc::new(AtomicUsize::new(0));
    let mut registry = Recording::<true>::default();
    let mut driver = driver(DispatchConfig::default());
    let (mut client, server, peer, local) = pair();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let now = Instant::now();
    let key = driver
        .add(&mut registry, server, peer, local, Ticket::new(&alive), now)
        .unwrap();
    assert_eq!(registry.added, [(key.index(), Interest::READ)]);
    assert!(read_answer(&mut client).starts_with("HTTP/1.1 200"));
    assert_eq!(
        registry.armed,
        [],
        "armed for reading at registration: nothing to change"
    );
    assert!(
        driver.next_deadline().is_some(),
        "the keep-alive timeout is armed"
    );
    assert_eq!(alive.load(Ordering::SeqCst), 1);

    // The event spent the arming: the driver arms the socket again for what it waits for.
    let ready = Ready {
        key: key.index(),
        readable: false,
        writable: true,
        read_closed: false,
    };
    driver.handle_ready(&mut registry, ready, now);
    assert_eq!(registry.armed, [(key.index(), Interest::READ)]);

    drop(client);
    until_closed(&mut driver, &mut registry, key);
    assert_eq!(registry.removed, 1);
    assert_eq!(alive.load(Ordering::SeqCst), 0, "the ticket went with it");
}

#[test]
fn an_edge_triggered_registry_is_never_re_armed() {
    let alive = Arc::new(AtomicUsize::new(0));
    let mut registry = Recording::<false>::default();
    let mut driver = driver(DispatchConfig::default());
    let (mut client, server, peer, local) = pair();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let key = driver
        .add(
            &mut registry,
            server,
            peer,
            local,
            Ticket::new(&alive),
            Instant::now(),
        )
        .unwrap();
    assert!(read_answer(&mut client).starts_with("HTTP/1.1 200"));
    drop(client);
    until_closed(&mut driver, &mut registry, key);
    assert!(registry.armed.is_empty());
    assert_eq!(alive.load(Ordering::SeqCst), 0);
}

#[test]
fn a_silent_connection_is_closed_at_its_deadline() {
    let alive = Arc::new(AtomicUsize::new(0));
    let mut registry = Recording::<true>::default();
    let mut driver = driver(DispatchConfig::default());
    let (mut client, server, peer, local) = pair();
    let now = Instant::now();
    driver
        .add(&mut registry, server, peer, local, Ticket::new(&alive), now)
        .unwrap();
    // Virtual time: nothing is due before the deadline, and it is handled once passed.
    let deadline = driver
        .next_deadline()
        .expect("an idle connection has a deadline");
    driver.handle_timers(&mut registry, deadline - Duration::from_millis(1));
    assert_eq!(driver.len(), 1);
    driver.handle_timers(&mut registry, deadline + Duration::from_secs(60));
    assert!(driver.is_empty(), "closed at its deadline");
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
}

#[test]
fn drain_closes_idle_connections_and_close_all_the_rest() {
    let alive = Arc::new(AtomicUsize::new(0));
    let mut registry = Recording::<true>::default();
    let mut driver = driver(DispatchConfig::default());
    let now = Instant::now();
    let (_idle_client, idle, peer, local) = pair();
    driver
        .add(&mut registry, idle, peer, local, Ticket::new(&alive), now)
        .unwrap();
    let (mut busy_client, busy, peer, local) = pair();
    // Half a head: a request is under way.
    busy_client.write_all(b"GET / HTTP/1.1\r\nho").unwrap();
    driver
        .add(&mut registry, busy, peer, local, Ticket::new(&alive), now)
        .unwrap();
    assert_eq!(driver.len(), 2);

    driver.drain(&mut registry, now);
    assert_eq!(driver.len(), 1, "the idle one closed at once");
    let (_late_client, late, peer, local) = pair();
    driver
        .add(&mut registry, late, peer, local, Ticket::new(&alive), now)
        .unwrap();
    assert_eq!(
        driver.len(),
        1,
        "a newcomer while draining closes at once too"
    );

    driver.close_all(&mut registry);
    assert!(driver.is_empty());
    assert_eq!(registry.removed, 3);
    assert_eq!(alive.load(Ordering::SeqCst), 0);
}
