//! Graceful shutdown in two steps, as RFC 9113 §6.8 recommends: a first GOAWAY with
//! last-stream-id 2^31-1 and a PING tell the client to stop opening streams without yet
//! dropping the ones already in flight; once the PING's ACK comes back (one round trip, so
//! every stream the client sent before seeing the GOAWAY has arrived), or after
//! `limits.h2.settings_timeout` if it never does, the final GOAWAY names the last stream we
//! processed. Streams up to it finish; streams above it are ignored; the connection closes
//! when no stream is left.

use std::time::Instant;

use super::super::error::ErrorCode;
use super::{MAX_STREAM_ID, ServerConnection, StreamId, deadline};

/// The opaque data of the PING sent with the first GOAWAY, which tells its ACK apart from the
/// ACK of any other PING.
pub(super) const SHUTDOWN_PING: [u8; 8] = *b"weft-bye";

/// How far the connection is in its graceful shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shutdown {
    /// No GOAWAY of ours yet.
    Running,
    /// GOAWAY 2^31-1 and the PING are sent: streams still arriving are served; the final
    /// GOAWAY goes out when the PING's ACK arrives, or at `ack_by`.
    Announced {
        /// When to stop waiting for the ACK (`None`: past what an `Instant` holds).
        ack_by: Option<Instant>,
    },
    /// The final GOAWAY is sent.
    Final {
        /// Its last-stream-id: client streams above it are ignored (§6.8).
        last_stream: StreamId,
    },
}

impl Shutdown {
    /// Whether we sent a GOAWAY: no new pushes.
    pub(super) fn has_started(self) -> bool {
        self != Shutdown::Running
    }

    /// Whether the final GOAWAY is sent, so that the connection may close once drained.
    pub(super) fn is_final(self) -> bool {
        matches!(self, Shutdown::Final { .. })
    }

    /// Whether frames of client stream `id` are to be ignored: it is above the final
    /// GOAWAY's last-stream-id (§6.8).
    pub(super) fn ignores(self, id: StreamId) -> bool {
        matches!(self, Shutdown::Final { last_stream } if id % 2 == 1 && id > last_stream)
    }

    /// When the wait for the PING's ACK ends.
    pub(super) fn deadline(self) -> Option<Instant> {
        match self {
            Shutdown::Announced { ack_by } => ack_by,
            Shutdown::Running | Shutdown::Final { .. } => None,
        }
    }
}

impl ServerConnection {
    /// Starts the graceful shutdown: GOAWAY `NO_ERROR` with last-stream-id 2^31-1, and the
    /// PING whose ACK says the client has seen it. Does nothing once a GOAWAY was sent.
    pub(super) fn start_goaway(&mut self) {
        if self.closed || self.shutdown.has_started() {
            return;
        }
        self.output.goaway(MAX_STREAM_ID, ErrorCode::NoError, "");
        self.output.ping(SHUTDOWN_PING);
        self.shutdown = Shutdown::Announced {
            ack_by: deadline(self.now, self.limits.h2.settings_timeout),
        };
    }

    /// A PING ACK with `data` arrived: whether it answers the shutdown PING (then the final
    /// GOAWAY is sent, and the ACK is not the client's to count against its PING budget).
    pub(super) fn take_shutdown_ack(&mut self, data: [u8; 8]) -> bool {
        let awaited = matches!(self.shutdown, Shutdown::Announced { .. });
        if !awaited || data != SHUTDOWN_PING {
            return false;
        }
        self.send_final_goaway();
        true
    }

    /// The wait for the ACK is over (`now` passed its deadline): the final GOAWAY goes out
    /// anyway, so a client that never answers cannot keep the connection open.
    pub(super) fn expire_shutdown(&mut self, now: Instant) {
        if self.shutdown.deadline().is_some_and(|at| at <= now) {
            self.send_final_goaway();
        }
    }

    /// The final GOAWAY, naming the last stream we processed; the connection closes at once
    /// if no stream is left.
    fn send_final_goaway(&mut self) {
        if self.closed {
            return;
        }
        let last_stream = self.last_processed_stream;
        self.output.goaway(last_stream, ErrorCode::NoError, "");
        self.shutdown = Shutdown::Final { last_stream };
        self.close_if_drained();
    }
}
