//! HTTP/1.1 (RFC 9110, RFC 9112) as sans-IO state machines.
//!
//! [`ServerConnection`] and [`ClientConnection`] turn bytes into events and calls into bytes.
//! They own no socket, read no clock and start no thread: the caller moves bytes between them
//! and its I/O, and tells them the time. Every limit in [`Limits`](crate::Limits) is enforced
//! here, so every driver gets the same defences against hostile peers.
//!
//! # A complete server loop
//!
//! The loop below drives a server connection from a byte buffer standing in for a socket.
//! A real driver does the same with `read`/`write` readiness and a timer for `poll_timeout`.
//!
//! ```
//! use std::time::Instant;
//! use http::{HeaderMap, StatusCode};
//! use weft_core::Limits;
//! use weft_core::h1::{BodySize, ServerConnection, ServerEvent};
//!
//! // Two pipelined requests, as a client might send them in one packet.
//! let incoming = b"POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello\
//!                  GET /bye HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
//! let mut written = Vec::new(); // what the "socket" received from us
//!
//! let clock = Instant::now; // the driver's clock: the core never reads one
//! let now = clock();
//! let mut conn = ServerConnection::new(Limits::default(), now);
//! let mut unread = &incoming[..];
//! let mut body = Vec::new();
//! while !conn.is_closed() {
//!     // 1. Bytes in (a real driver reads the socket here; receive may take only part).
//!     let taken = conn.receive(now, unread);
//!     unread = &unread[taken..];
//!     if unread.is_empty() {
//!         conn.receive_eof(); // our "peer" has nothing more to say
//!     }
//!     // 2. Events out, and the application's answers in.
//!     while let Some(event) = conn.poll_event() {
//!         match event {
//!             ServerEvent::Request(head) => println!("{} {}", head.method, head.uri),
//!             ServerEvent::Data(chunk) => body.extend_from_slice(&chunk),
//!             ServerEvent::EndOfMessage => {
//!                 conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(body.len() as u64))
//!                     .unwrap();
//!                 conn.send_data(&body).unwrap();
//!                 conn.finish().unwrap();
//!                 body.clear();
//!             }
//!             ServerEvent::Error(error) => eprintln!("refused: {error}"),
//!             _ => {}
//!         }
//!     }
//!     // 3. Bytes out (a real driver writes them to the socket).
//!     while let Some(bytes) = conn.poll_transmit(now) {
//!         written.extend_from_slice(&bytes);
//!     }
//!     // 4. A real driver now waits for readability, writability or conn.poll_timeout().
//! }
//! let written = String::from_utf8(written).unwrap();
//! assert!(written.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"));
//! assert!(written.ends_with("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"));
//! ```

mod client;
mod decode;
mod encode;
mod error;
mod error_pages;
mod framing;
mod head;
mod host;
mod scan;
mod server;

pub use client::{ClientConnection, ClientEvent};
pub use error::{H1Error, SendError};
pub use error_pages::{ErrorPage, ErrorPages};
pub use framing::BodyFraming;
pub use head::{RequestHead, ResponseHead, TargetForm};
pub use server::{BodySize, ReadStatus, ServerConnection, ServerEvent};
