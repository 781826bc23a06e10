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
//! Both directions have backpressure: [`receive`](ServerConnection::receive) and
//! [`send_data`](ServerConnection::send_data) may take less than they are given, so the loop
//! offers the rest again, after [`poll_transmit`](ServerConnection::poll_transmit) has drained
//! the output for `send_data`. Here the response body (300 KiB) is more than the connection
//! buffers for output (`max_buffered_output`, 256 KiB by default).
//!
//! ```
//! use std::time::Instant;
//! use http::{HeaderMap, StatusCode};
//! use weft_core::Limits;
//! use weft_core::h1::{BodySize, ServerConnection, ServerEvent};
//!
//! // Two pipelined requests, as a client might send them in one packet: a 300 KiB upload to
//! // echo, then a goodbye.
//! let upload = vec![b'x'; 300 * 1024];
//! let mut incoming = format!(
//!     "POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: {}\r\n\r\n",
//!     upload.len()
//! )
//! .into_bytes();
//! incoming.extend_from_slice(&upload);
//! incoming.extend_from_slice(b"GET /bye HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
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
//!                 // send_data takes what fits in the output buffer (possibly nothing): write
//!                 // the buffer out, then offer the rest. A real driver waits for the socket to
//!                 // be writable here, or keeps the rest and returns to its loop.
//!                 let mut rest = &body[..];
//!                 while !rest.is_empty() {
//!                     let sent = conn.send_data(rest).unwrap();
//!                     rest = &rest[sent..];
//!                     while let Some(bytes) = conn.poll_transmit(now) {
//!                         written.extend_from_slice(&bytes);
//!                     }
//!                 }
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
//! let head = b"HTTP/1.1 200 OK\r\ncontent-length: 307200\r\n\r\n";
//! assert!(written.starts_with(head));
//! assert_eq!(&written[head.len()..head.len() + upload.len()], &upload[..]);
//! let bye = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
//! assert_eq!(&written[head.len() + upload.len()..], &bye[..]);
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

#[cfg(test)]
mod pieces_tests;

pub use client::{ClientConnection, ClientEvent};
pub use error::{H1Error, SendError};
pub use error_pages::{ErrorPage, ErrorPages};
pub use framing::BodyFraming;
pub use head::{RequestHead, ResponseHead, TargetForm};
pub use server::{BodySize, ReadStatus, ServerConnection, ServerEvent};
