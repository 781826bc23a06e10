//! How streams and the connection end: stream errors and resets (RFC 9113 §5.4.2), connection
//! errors and GOAWAY (§5.4.1, §6.8), and the timers (SETTINGS acknowledgement, idle
//! connection, stalled responses).

use std::time::Instant;

use super::super::error::ErrorCode;
use super::super::stream::{CloseCause, Response, StreamState};
use super::{ConnectionError, ServerConnection, ServerEvent, StreamId, deadline};

impl ServerConnection {
    /// A stream error the client caused (§5.4.2): RST_STREAM `code`, the application told if it
    /// knows the stream, and the error counted against the MadeYouReset and lifetime budgets.
    pub(super) fn stream_error(
        &mut self,
        id: StreamId,
        code: ErrorCode,
    ) -> Result<(), ConnectionError> {
        self.reset_stream(id, code);
        self.flood.note_stream_error(self.now)
    }

    /// Sends RST_STREAM `code` on `id`. A stored stream waits for the application to take the
    /// [`ServerEvent::Reset`]; one the application never saw is only remembered as closed.
    pub(super) fn reset_stream(&mut self, id: StreamId, code: ErrorCode) {
        self.output.rst_stream(id, code);
        if self.streams.get(id).is_some() {
            self.mark_reset(id, code, false);
        } else {
            self.streams.remember_reset(id);
        }
    }

    /// Marks a stored stream reset and queues the event that tells the application. The
    /// stream stays stored, counting against the concurrency limit, until that event is taken
    /// (see [`StreamState::ResetPending`]).
    pub(super) fn mark_reset(&mut self, id: StreamId, code: ErrorCode, by_peer: bool) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        if stream.state == StreamState::ResetPending {
            return;
        }
        stream.state = StreamState::ResetPending;
        stream.reset = Some((code, by_peer));
        if let Some(since) = stream.stalled_since.take() {
            self.stalled.remove(&(since, id));
        }
        self.events.push_back(ServerEvent::Reset {
            stream: id,
            code,
            by_peer,
        });
    }

    /// The application took the reset event of `id`: the stream is gone.
    pub(super) fn forget_reset(&mut self, id: StreamId, by_peer: bool) {
        let pending = self
            .streams
            .get(id)
            .is_some_and(|s| s.state == StreamState::ResetPending);
        if pending {
            let cause = if by_peer {
                CloseCause::ResetByPeer
            } else {
                CloseCause::ResetByUs
            };
            self.remove_stream(id, cause);
        }
    }

    /// The application gave up on `id`.
    pub(super) fn reset_by_app(&mut self, id: StreamId, code: ErrorCode) {
        let live = self
            .streams
            .get(id)
            .is_some_and(|s| s.state != StreamState::ResetPending);
        if self.closed || !live {
            return;
        }
        self.output.rst_stream(id, code);
        self.remove_stream(id, CloseCause::ResetByUs);
    }

    /// Drops a stream that is over: its stall timer stops, the body bytes the application
    /// still held go back to the connection window.
    pub(super) fn remove_stream(&mut self, id: StreamId, cause: CloseCause) {
        let Some(stream) = self.streams.remove(id, cause) else {
            return;
        };
        if let Some(since) = stream.stalled_since {
            self.stalled.remove(&(since, id));
        }
        self.release_connection(stream.recv_window.outstanding());
        if self.streams.client_streams() == 0 && self.idle_since.is_none() {
            self.idle_since = Some(self.now);
        }
        self.close_if_drained();
    }

    /// Gives `len` bytes back to the connection window.
    pub(super) fn release_connection(&mut self, len: usize) {
        if let Some(increment) = self.conn_recv.release(len) {
            self.output.window_update(0, increment);
        }
    }

    /// The application consumed `len` body bytes of `id`.
    pub(super) fn release_body(&mut self, id: StreamId, len: usize) {
        if self.closed {
            return;
        }
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let len = len.min(stream.recv_window.outstanding());
        let update = stream.recv_window.release(len);
        let receiving = stream.state.can_receive();
        if let (Some(increment), true) = (update, receiving) {
            self.output.window_update(id, increment);
        }
        self.release_connection(len);
    }

    /// A connection error (§5.4.1): GOAWAY with its code, the application told, every stream
    /// over.
    pub(super) fn fail(&mut self, error: ConnectionError) {
        if self.closed {
            return;
        }
        self.output
            .goaway(self.last_processed_stream, error.code, error.reason);
        self.events.push_back(ServerEvent::Error(error));
        self.close();
    }

    /// The client took no output for `limits.send_timeout`: what waits is dropped (none of
    /// it can get out), GOAWAY `ENHANCE_YOUR_CALM` is queued in its place (best effort), the
    /// application is told, and the connection is over.
    fn time_out_sending(&mut self) {
        self.output.clear();
        self.pending_since = None;
        self.send_timed_out = true;
        if self.closed {
            return;
        }
        self.fail(ConnectionError {
            code: ErrorCode::EnhanceYourCalm,
            reason: "send timeout: output not taken",
        });
    }

    /// The connection is over: nothing more is read or accepted, the output drains.
    pub(super) fn close(&mut self) {
        self.closed = true;
        self.block = None;
        self.input.clear();
        self.streams.clear();
        self.stalled.clear();
        self.conn_stalled_since = None;
    }

    /// After the client's GOAWAY or our final one, the connection ends once no stream is
    /// left. (After our first GOAWAY, streams may still be on their way: it waits.)
    pub(super) fn close_if_drained(&mut self) {
        let going_away = self.shutdown.is_final() || self.peer_goaway.is_some();
        if going_away && self.streams.is_empty() && !self.closed {
            self.close();
        }
    }

    /// The earliest deadline running.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        if self.closed {
            // Output left (a GOAWAY, the end of responses) still has to be taken in time.
            return self.send_deadline();
        }
        let stall = self.limits.h2.send_stall_timeout;
        let idle = self
            .idle_since
            .filter(|_| self.streams.is_empty())
            .and_then(|since| deadline(since, self.limits.h2.idle_timeout));
        let stream_stall = self
            .stalled
            .first()
            .and_then(|&(since, _)| deadline(since, stall));
        let conn_stall = self
            .conn_stalled_since
            .and_then(|since| deadline(since, stall));
        [
            self.settings_deadline,
            idle,
            stream_stall,
            conn_stall,
            self.body_check_at,
            self.shutdown.deadline(),
            self.send_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Acts on every deadline passed at `now`.
    pub(super) fn expire(&mut self, now: Instant) {
        if self.send_deadline().is_some_and(|at| at <= now) {
            return self.time_out_sending();
        }
        if self.closed {
            return;
        }
        if self.settings_deadline.is_some_and(|at| at <= now) {
            return self.fail(ConnectionError {
                code: ErrorCode::SettingsTimeout,
                reason: "SETTINGS not acknowledged in time",
            });
        }
        let stall = self.limits.h2.send_stall_timeout;
        let passed = |since: Instant| deadline(since, stall).is_some_and(|at| at <= now);
        if self.conn_stalled_since.is_some_and(passed) && self.responses_waiting() {
            // The client grants no connection window: every response is stuck, so the
            // connection itself is what to end.
            return self.fail(ConnectionError {
                code: ErrorCode::FlowControlError,
                reason: "connection flow-control window stayed closed",
            });
        }
        if self.conn_stalled_since.is_some_and(passed) {
            // The responses that waited are over: nothing is stalled any more.
            self.conn_stalled_since = None;
        }
        while let Some(&(since, id)) = self.stalled.first() {
            if !passed(since) {
                break;
            }
            self.stalled.remove(&(since, id));
            if let Some(stream) = self.streams.get_mut(id) {
                stream.stalled_since = None;
            }
            self.reset_stream(id, ErrorCode::Cancel);
        }
        if self.body_check_at.is_some_and(|at| at <= now) {
            self.check_request_bodies(now);
        }
        self.expire_shutdown(now);
        if self.closed {
            return;
        }
        let idle_passed = self
            .idle_since
            .and_then(|since| deadline(since, self.limits.h2.idle_timeout))
            .is_some_and(|at| at <= now);
        if idle_passed && self.streams.is_empty() {
            self.output.goaway(
                self.last_processed_stream,
                ErrorCode::NoError,
                "idle timeout",
            );
            self.close();
        }
    }

    /// Resets the streams whose request body stayed silent for `limits.body_idle_timeout`
    /// while the client had window to send, and plans the next check. Tunnels (CONNECT) are
    /// left to their own protocol's timers (a WebSocket's heartbeat). A stream waiting on
    /// our window (the application has not read) is not silent: its clock restarts.
    fn check_request_bodies(&mut self, now: Instant) {
        let timeout = self.limits.body_idle_timeout;
        let connection_open = self.conn_recv.is_open();
        let mut silent = Vec::new();
        let mut next: Option<Instant> = None;
        for (&id, stream) in self.streams.iter_mut() {
            if !stream.state.can_receive() || stream.is_tunnel {
                continue;
            }
            if !connection_open || !stream.recv_window.is_open() {
                stream.body_active_at = now;
            }
            match deadline(stream.body_active_at, timeout) {
                Some(at) if at <= now => silent.push(id),
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        self.body_check_at = next;
        for id in silent {
            self.reset_stream(id, ErrorCode::Cancel);
        }
    }

    /// Whether any response could still be waiting for window (looked at only when the
    /// connection stall timer fires).
    fn responses_waiting(&self) -> bool {
        self.streams.iter().any(|stream| {
            stream.state != StreamState::ResetPending
                && matches!(stream.response, Response::Body { .. })
        })
    }
}
