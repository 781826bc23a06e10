//! Our own WebSocket client over a blocking `std::net` socket, with frames written and read by
//! hand, for what a well-behaved client library never does: unmasked frames, an abrupt TCP
//! close, pings left unanswered. Every read and write is bounded by [`WAIT`](super::WAIT).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use weft_core::ws::handshake::{accept_key, client_key};

use super::WAIT;

/// Opcodes (RFC 6455 §5.2).
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// One frame as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    /// RSV1..3 as the top bits of the first byte.
    pub(crate) rsv: u8,
    pub(crate) opcode: u8,
    pub(crate) masked: bool,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// A Close frame's code, when it has one.
    pub(crate) fn close_code(&self) -> Option<u16> {
        match self.payload.as_slice() {
            [high, low, ..] if self.opcode == CLOSE => Some(u16::from_be_bytes([*high, *low])),
            _ => None,
        }
    }
}

/// What a read found.
#[derive(Debug)]
pub(crate) enum Received {
    Frame(Frame),
    /// The server closed the connection (EOF or reset).
    Closed,
}

/// A WebSocket over HTTP/1.1 after a successful handshake.
pub(crate) struct RawSocket {
    pub(crate) stream: TcpStream,
    unread: Vec<u8>,
}

impl RawSocket {
    /// Connects to `addr` and opens a WebSocket on `path` without extensions, checking the
    /// `101` and its `Sec-WebSocket-Accept`.
    pub(crate) fn connect(addr: SocketAddr, path: &str) -> RawSocket {
        let mut stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the server");
        stream.set_read_timeout(Some(WAIT)).expect("a read timeout");
        stream
            .set_write_timeout(Some(WAIT))
            .expect("a write timeout");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let key = client_key(*b"weft raw client!");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .expect("write the handshake");
        let mut socket = RawSocket {
            stream,
            unread: Vec::new(),
        };
        let head = socket.read_head();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "expected 101 Switching Protocols, got:\n{head}"
        );
        let expected = format!("sec-websocket-accept: {}", accept_key(&key)).to_lowercase();
        assert!(
            head.to_lowercase()
                .lines()
                .any(|line| line.trim() == expected),
            "no `{expected}` in the 101:\n{head}"
        );
        socket
    }

    /// Reads up to the end of a response head; the head as text.
    fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.unread.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.unread.drain(..end + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            assert!(
                self.fill(),
                "the server closed the connection before the end of the response head: {:?}",
                String::from_utf8_lossy(&self.unread)
            );
        }
    }

    /// Reads more bytes into `unread`; false at EOF or reset.
    fn fill(&mut self) -> bool {
        let mut buffer = [0; 16 * 1024];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return false,
                Ok(read) => {
                    self.unread.extend_from_slice(&buffer[..read]);
                    return true;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return false;
                }
                Err(error) => panic!("nothing from the server within {WAIT:?}: {error}"),
            }
        }
    }

    /// Writes one frame; masked with `mask` when given (a client must mask, RFC 6455 §5.3).
    pub(crate) fn send_frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) {
        let bytes = encode(fin, opcode, payload, mask);
        self.stream.write_all(&bytes).expect("write a frame");
    }

    /// A masked, final frame.
    pub(crate) fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.send_frame(true, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]));
    }

    /// The next frame, or `Closed` when the server closed the connection first.
    pub(crate) fn read(&mut self) -> Received {
        loop {
            if let Some((frame, used)) = decode(&self.unread) {
                self.unread.drain(..used);
                return Received::Frame(frame);
            }
            if !self.fill() {
                return Received::Closed;
            }
        }
    }

    /// The next frame, failing the test if the connection closes first.
    pub(crate) fn expect_frame(&mut self, what: &str) -> Frame {
        match self.read() {
            Received::Frame(frame) => frame,
            Received::Closed => panic!("the server closed the connection before {what}"),
        }
    }

    /// Skips data frames and pings until a Close comes (bounded by `within`); that Close.
    pub(crate) fn expect_close(&mut self, within: Duration) -> Frame {
        let deadline = Instant::now() + within;
        loop {
            assert!(
                Instant::now() < deadline,
                "no Close from the server within {within:?}"
            );
            let frame = self.expect_frame("a Close");
            if frame.opcode == CLOSE {
                return frame;
            }
        }
    }

    /// Asserts the server closes the TCP connection (EOF or reset) within [`WAIT`], sending
    /// at most frames that are not data (a server may repeat nothing after its Close).
    pub(crate) fn expect_eof(&mut self) {
        match self.read() {
            Received::Closed => {}
            Received::Frame(frame) => panic!("expected the server to close, got {frame:?}"),
        }
    }

    /// Closes the TCP connection without a Close frame.
    pub(crate) fn drop_abruptly(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// A frame's bytes.
pub(crate) fn encode(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => bytes.push(mask_bit | len as u8),
        len @ 126..=0xFFFF => {
            bytes.push(mask_bit | 126);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            bytes.push(mask_bit | 127);
            bytes.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            bytes.extend_from_slice(&key);
            bytes.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => bytes.extend_from_slice(payload),
    }
    bytes
}

/// The first whole frame in `bytes` and the bytes it took, or `None` when incomplete.
pub(crate) fn decode(bytes: &[u8]) -> Option<(Frame, usize)> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    let (len, mut used) = match second & 0x7F {
        126 => (
            u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        len => (len as usize, 2),
    };
    let masked = second & 0x80 != 0;
    let key = if masked {
        let key: [u8; 4] = bytes.get(used..used + 4)?.try_into().ok()?;
        used += 4;
        Some(key)
    } else {
        None
    };
    let mut payload = bytes.get(used..used + len)?.to_vec();
    if let Some(key) = key {
        for (byte, k) in payload.iter_mut().zip(key.iter().cycle()) {
            *byte ^= k;
        }
    }
    let frame = Frame {
        fin: first & 0x80 != 0,
        rsv: first & 0x70,
        opcode: first & 0x0F,
        masked,
        payload,
    };
    Some((frame, used + len))
}
