//! A program with its own mio event loop that serves HTTP (and HTTPS) next to work of its own.
//!
//! The loop owns everything: a TCP listener whose connections weft serves, a UDP socket that
//! answers every datagram with `pong` (the program's own business, untouched by weft), and the
//! `mio::Poll`. weft's [`MioDriver`] adds one token for its wake-ups (through which connections
//! ask to be driven again when the application's futures make progress on other threads) and
//! takes the tokens after it for its connections. weft adds no thread and never blocks the loop.
//!
//! Each connection speaks HTTP/1.1 or HTTP/2 (over TLS by ALPN; in cleartext by the HTTP/2
//! preface or `Upgrade: h2c`). Given a certificate chain and its key (PEM files), the listener
//! serves TLS.
//!
//! ```text
//! cargo run -p weft-adapters --features mio --example embed_mio -- [CERT.pem KEY.pem]
//! curl http://127.0.0.1:8080/hello
//! curl --http2-prior-knowledge http://127.0.0.1:8080/hello
//! curl http://127.0.0.1:8080/later      # a body sent by another thread 200 ms later
//! echo ping | nc -u -w1 127.0.0.1 8081  # the loop's own UDP service
//! ```
//!
//! `cargo test -p weft-adapters --features mio --example embed_mio` runs the loop on free ports
//! and drives it over HTTP/1.1, HTTP/2 (with curl), TLS (a self-signed certificate; curl with
//! HTTP/2 and HTTP/1.1 by ALPN, and a rustls client) and UDP.
//!
//! # How long it is
//!
//! `main`, its loop (`run`) and the service (`app`) are 38 lines as rustfmt lays them out,
//! braces included, comments and blank lines not: 7 + 19 + 12. Around them: the `use` lines and
//! the token constants, the UDP service (`answer_pings`, the program's own business) and the
//! reading of PEM files into a rustls `ServerConfig` (`tls_config`).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use weft_adapters::{DispatchConfig, mio::MioDriver};
use weft_service::body::Body;

const TCP: Token = Token(0);
const UDP: Token = Token(1);
/// weft's wake-ups; its connections take the tokens after this one.
const WEFT: Token = Token(2);

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let tls = (args.len() == 3).then(|| tls_config(&args[1], &args[2]));
    let tcp = TcpListener::bind("127.0.0.1:8080".parse().unwrap())?;
    let udp = UdpSocket::bind("127.0.0.1:8081".parse().unwrap())?;
    run(tcp, udp, tls.transpose()?)
}

/// The loop: weft's connections beside the program's own UDP service. Returns on a poll error.
fn run(mut tcp: TcpListener, mut udp: UdpSocket, tls: Option<Arc<ServerConfig>>) -> io::Result<()> {
    let (mut poll, mut events) = (Poll::new()?, Events::with_capacity(256));
    let registry = poll.registry().try_clone()?;
    registry.register(&mut tcp, TCP, Interest::READABLE)?;
    registry.register(&mut udp, UDP, Interest::READABLE)?;
    let mut weft = MioDriver::new(&registry, WEFT, app, DispatchConfig::default(), tls)?;
    loop {
        poll.poll(&mut events, weft.timeout())?;
        let now = Instant::now(); // the one clock read of the turn
        for event in &events {
            match event.token() {
                // weft accepts from the loop's listener (or the loop accepts: `weft.serve`).
                TCP => weft.accept(&registry, &tcp, now),
                UDP => answer_pings(&udp),
                // Connections and wake-ups: weft's (it returns whether the token was its).
                _ => _ = weft.handle_event(&registry, event, now),
            }
        }
        weft.turn(&registry, now);
    }
}

/// The application: plain async handlers, as it would run on any weft runtime.
async fn app(request: Request<Body>) -> Response<Body> {
    if request.uri().path() != "/later" {
        return Response::new(Body::from("Hello from an embedded mio loop!\n"));
    }
    // Sent from another thread: its wake-up reaches the loop through weft's token.
    let (mut sender, body) = Body::channel(64);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        sender.send_data("answered from another thread\n".into());
        sender.finish();
    });
    Response::new(body)
}

/// The program's own service: every datagram is answered with `pong`.
fn answer_pings(udp: &UdpSocket) {
    while let Ok((_, from)) = udp.recv_from(&mut [0; 1500]) {
        let _ = udp.send_to(b"pong\n", from);
    }
}

/// TLS from PEM files, offering HTTP/2 and HTTP/1.1 by ALPN.
fn tls_config(cert: &str, key: &str) -> io::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert).map_err(io::Error::other)?;
    let chain = chain
        .collect::<Result<Vec<_>, _>>()
        .map_err(io::Error::other)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
    let builder = ServerConfig::builder().with_no_client_auth();
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The example runs under `cargo test` (`test = true` in Cargo.toml): the loop on free ports,
/// driven by real sockets.
#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::process::Command;

    use rustls::pki_types::ServerName;

    use super::*;

    const IO_TIMEOUT: Duration = Duration::from_secs(10);

    /// A self-signed certificate for `localhost`, as PEM: (certificate, key).
    fn self_signed() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    /// Starts the loop on a thread of its own, with TLS when given a certificate; returns its
    /// HTTP and UDP addresses.
    fn start(tls: Option<&(String, String)>) -> (SocketAddr, SocketAddr) {
        let any = "127.0.0.1:0".parse().unwrap();
        let (http, udp) = (
            TcpListener::bind(any).unwrap(),
            UdpSocket::bind(any).unwrap(),
        );
        let addrs = (http.local_addr().unwrap(), udp.local_addr().unwrap());
        let tls = tls.map(|(cert, key)| {
            let dir = std::env::temp_dir().join(format!("weft-embed-mio-{}", addrs.0.port()));
            std::fs::create_dir_all(&dir).unwrap();
            let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
            std::fs::write(&cert_path, cert).unwrap();
            std::fs::write(&key_path, key).unwrap();
            let config = tls_config(cert_path.to_str().unwrap(), key_path.to_str().unwrap());
            std::fs::remove_dir_all(&dir).unwrap();
            config.unwrap()
        });
        std::thread::spawn(move || run(http, udp, tls));
        addrs
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }

    /// Sends `request` (which asks for `Connection: close`) over `stream` and reads the whole
    /// answer.
    fn exchange(mut stream: impl Read + Write, request: &str) -> String {
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            // A TLS peer that closes without `close_notify` after the whole answer.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
            Err(e) => panic!("reading the answer: {e}"),
        }
        String::from_utf8(answer).unwrap()
    }

    /// curl's output (the body, then the HTTP version) for `url`, with `args` before it.
    fn curl(args: &[&str], url: &str) -> String {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(["--write-out", "%{http_version}"])
            .args(args)
            .arg(url)
            .output()
            .expect("curl runs (scripts/test installs it)");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn serves_http1_next_to_its_own_udp_service() {
        let (http, udp) = start(None);
        let hello = exchange(
            connect(http),
            "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(hello.starts_with("HTTP/1.1 200"), "{hello}");
        assert!(
            hello.ends_with("Hello from an embedded mio loop!\n"),
            "{hello}"
        );

        let later = exchange(
            connect(http),
            "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(later.contains("answered from another thread"), "{later}");

        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        client.send_to(b"ping", udp).unwrap();
        let mut pong = [0u8; 16];
        let (n, _) = client.recv_from(&mut pong).unwrap();
        assert_eq!(&pong[..n], b"pong\n");
    }

    #[test]
    fn serves_http2_by_prior_knowledge() {
        let (http, _) = start(None);
        let url = format!("http://{http}/hello");
        let output = curl(&["--http2-prior-knowledge"], &url);
        assert_eq!(output, "Hello from an embedded mio loop!\n2");
    }

    #[test]
    fn serves_tls_to_a_rustls_client() {
        let certificate = self_signed();
        let (http, _) = start(Some(&certificate));
        let mut roots = rustls::RootCertStore::empty();
        let der = CertificateDer::from_pem_slice(certificate.0.as_bytes()).unwrap();
        roots.add(der).unwrap();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from("localhost").unwrap();
        let session = rustls::ClientConnection::new(Arc::new(config), server_name).unwrap();
        let stream = rustls::StreamOwned::new(session, connect(http));
        let later = exchange(
            stream,
            "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(later.starts_with("HTTP/1.1 200"), "{later}");
        assert!(later.contains("answered from another thread"), "{later}");
    }

    #[test]
    fn serves_tls_with_http2_and_http1_to_curl() {
        let certificate = self_signed();
        let (http, _) = start(Some(&certificate));
        let url = format!("https://localhost:{}/hello", http.port());
        let resolve = format!("localhost:{}:127.0.0.1", http.port());
        let h2 = curl(&["--insecure", "--resolve", &resolve, "--http2"], &url);
        assert_eq!(h2, "Hello from an embedded mio loop!\n2", "ALPN chose h2");
        let h1 = curl(&["--insecure", "--resolve", &resolve, "--http1.1"], &url);
        assert_eq!(h1, "Hello from an embedded mio loop!\n1.1");
    }
}
