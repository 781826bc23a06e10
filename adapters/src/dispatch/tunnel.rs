//! A connection handed over to the application after an accepted upgrade or CONNECT that is
//! not a WebSocket ([`weft_service::upgrade`]): raw bytes both ways, through the two bounded
//! queues of an [`UpgradedLink`].
//!
//! The tunnel reads the socket only while the application has room for more (backpressure),
//! and closes the connection once the application closed its side (or dropped it) and what it
//! wrote is sent. It has no timer: how long a tunnel may idle is the application's call. Output
//! the peer does not read is bounded by the [`Dispatcher`](super::Dispatcher)'s send timeout,
//! which closes the tunnel ([`Tunnel::close`]) when it passes.
//! Server shutdown closes it at once, as nothing tells the new protocol how to end gracefully.

use std::task::Context;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use weft_service::body::{BodySender, BoxError};
use weft_service::upgrade::UpgradedLink;

use super::response::{BodySink, Pump, ResponseBody, SinkClosed};

/// The switched connection.
pub(super) struct Tunnel {
    /// Feeds [`Upgraded::read`](weft_service::upgrade::Upgraded::read); `None` once the peer
    /// closed or the application stopped reading.
    incoming: Option<BodySender>,
    /// What the application writes, copied into `output.buffer`.
    outgoing: Option<ResponseBody>,
    output: Output,
    /// Most bytes read from the socket at once.
    read_size: usize,
}

/// The tunnel's output buffer, as a [`BodySink`].
struct Output {
    buffer: BytesMut,
    limit: usize,
    /// The application closed its side (or failed): close once `buffer` is written.
    ended: bool,
}

impl Tunnel {
    /// The tunnel over `link`; output beyond `max_output` bytes waits for the socket.
    pub(super) fn new(link: UpgradedLink, max_output: usize, read_size: usize) -> Self {
        Tunnel {
            incoming: Some(link.incoming),
            outgoing: Some(ResponseBody::new(link.outgoing)),
            output: Output {
                buffer: BytesMut::new(),
                limit: max_output.max(1),
                ended: false,
            },
            read_size: read_size.max(1),
        }
    }

    pub(super) fn wants_read(&self) -> bool {
        !self.output.ended
            && self
                .incoming
                .as_ref()
                .is_some_and(|incoming| incoming.has_capacity())
    }

    pub(super) fn receive_capacity(&self) -> usize {
        if self.wants_read() { self.read_size } else { 0 }
    }

    pub(super) fn receive(&mut self, data: &[u8]) -> usize {
        if let Some(incoming) = &mut self.incoming {
            if !incoming.send_data(Bytes::copy_from_slice(data)) {
                // The application dropped its reading end: whatever comes is dropped too.
                self.incoming = None;
            }
        }
        data.len()
    }

    pub(super) fn receive_eof(&mut self) {
        if let Some(incoming) = self.incoming.take() {
            incoming.finish();
        }
    }

    pub(super) fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.output.buffer.is_empty()).then(|| self.output.buffer.split().freeze())
    }

    pub(super) fn shutdown(&mut self) {
        tracing::debug!("server shutting down; closing an upgraded connection");
        self.close();
    }

    pub(super) fn is_closed(&self) -> bool {
        self.output.ended && self.output.buffer.is_empty()
    }

    /// Copies what the application wrote into the output, and registers for wake-ups when it
    /// writes more or makes room for more input.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(incoming) = &self.incoming {
            // Only registers the waker: `wants_read` reports the room.
            let _ = incoming.poll_capacity(cx);
        }
        let Some(outgoing) = &mut self.outgoing else {
            return false;
        };
        let pumped = outgoing.pump(&mut self.output, cx);
        if pumped.state == Pump::Done {
            self.outgoing = None;
            self.output.ended = true;
            self.incoming = None;
        }
        pumped.moved
    }

    /// Ends the tunnel at once: the application's reads fail, its writes go nowhere.
    pub(super) fn close(&mut self) {
        self.output.ended = true;
        self.outgoing = None;
        if let Some(incoming) = self.incoming.take() {
            incoming.abort();
        }
    }
}

impl BodySink for Output {
    fn send_data(&mut self, data: &[u8], last: bool) -> Result<usize, SinkClosed> {
        let taken = data.len().min(self.limit.saturating_sub(self.buffer.len()));
        self.buffer.extend_from_slice(&data[..taken]);
        if last && taken == data.len() {
            self.ended = true;
        }
        Ok(taken)
    }

    fn send_trailers(&mut self, _trailers: &HeaderMap) {
        self.ended = true;
    }

    fn fail(&mut self, error: BoxError) {
        // The application dropped the connection without closing it.
        tracing::debug!(%error, "upgraded connection dropped by the application; closing");
        self.ended = true;
    }
}
