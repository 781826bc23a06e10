//! Stream states (RFC 9113 §5.1) and the store that holds the live streams of a connection.
//!
//! A stream lives in the store from the moment the application is told about it (a request,
//! or a push it promised) until it is closed and, if it was reset, the application has taken
//! the [`super::ServerEvent::Reset`] that says so. Idle and closed streams are not stored:
//! an identifier above the highest one seen is idle, one at or below it and absent is closed.
//! Streams recently closed are remembered, a bounded number scaled to the concurrency limit,
//! so that frames the peer sent before learning of the close can be told apart from protocol
//! errors.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use super::error::ErrorCode;
use super::flow::{RecvWindow, SendWindow};
use super::server::StreamId;

/// The states of §5.1 a stored stream can be in (idle and closed ones are not stored), plus
/// the wait for the application to learn of a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamState {
    /// reserved (local): we sent PUSH_PROMISE; our HEADERS opens it.
    ReservedLocal,
    /// open: both sides may send.
    Open,
    /// half-closed (remote): the client sent END_STREAM; we may still send.
    HalfClosedRemote,
    /// half-closed (local): we sent END_STREAM; the client may still send.
    HalfClosedLocal,
    /// closed by a reset the application has not been told about yet. The stream still counts
    /// against the concurrency limit until it is: the application is still working on it
    /// (MadeYouReset, CVE-2025-8671), and nothing more is sent or received on it.
    ResetPending,
}

impl StreamState {
    /// Whether the client may still send DATA or trailers.
    pub(super) fn can_receive(self) -> bool {
        matches!(self, StreamState::Open | StreamState::HalfClosedLocal)
    }

    /// The client sent END_STREAM. `None` when both sides are now closed.
    pub(super) fn end_remote(self) -> Option<StreamState> {
        match self {
            StreamState::Open => Some(StreamState::HalfClosedRemote),
            StreamState::HalfClosedLocal => None,
            other => Some(other),
        }
    }

    /// We sent END_STREAM. `None` when both sides are now closed.
    pub(super) fn end_local(self) -> Option<StreamState> {
        match self {
            StreamState::Open => Some(StreamState::HalfClosedLocal),
            StreamState::HalfClosedRemote | StreamState::ReservedLocal => None,
            other => Some(other),
        }
    }
}

/// How far our response has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Response {
    /// No final head yet (1xx heads may have been sent).
    AwaitingHead,
    /// The head is sent; body bytes may follow.
    Body {
        /// Body bytes still allowed by `content-length`, if known.
        remaining: Option<u64>,
        /// Whether exactly `remaining` more bytes must come before the end.
        exact: bool,
    },
    /// The head is sent and the response has no body on the wire (HEAD, 204, 304, RFC 9110
    /// §6.4.1): body bytes given are dropped, as HTTP/1.1 does, until the end.
    Suppressed,
    /// END_STREAM was sent.
    Done,
}

/// What we check about the request body: its size against `content-length` (§8.1.1) and the
/// body-size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RequestBody {
    /// Bytes received so far.
    pub(super) received: u64,
    /// The declared `content-length`.
    pub(super) declared: Option<u64>,
}

/// One live stream.
#[derive(Debug, Clone)]
pub(super) struct Stream {
    pub(super) state: StreamState,
    pub(super) response: Response,
    pub(super) send_window: SendWindow,
    pub(super) recv_window: RecvWindow,
    pub(super) body: RequestBody,
    /// The request is HEAD: the response carries no body whatever its `content-length`.
    pub(super) is_head: bool,
    /// The request is a CONNECT (a tunnel, such as an RFC 8441 WebSocket): its DATA may stay
    /// silent for as long as the tunnel's own protocol allows, so no body idle timeout.
    pub(super) is_tunnel: bool,
    /// Since when the response has data waiting and no stream window to send it.
    pub(super) stalled_since: Option<Instant>,
    /// When the request body last made progress (or the stream opened).
    pub(super) body_active_at: Instant,
    /// The reset the application is yet to be told about, and whether the client sent it.
    pub(super) reset: Option<(ErrorCode, bool)>,
}

impl Stream {
    /// A stream in `state` with windows of the given sizes.
    pub(super) fn new(
        state: StreamState,
        send_window: u32,
        recv_window: RecvWindow,
        now: Instant,
    ) -> Self {
        Stream {
            state,
            response: Response::AwaitingHead,
            send_window: SendWindow::new(send_window),
            recv_window,
            body: RequestBody {
                received: 0,
                declared: None,
            },
            is_head: false,
            is_tunnel: false,
            stalled_since: None,
            body_active_at: now,
            reset: None,
        }
    }

    /// Whether the client still waits for more of our response (a reset of it then counts as
    /// a rapid reset).
    pub(super) fn response_unfinished(&self) -> bool {
        self.response != Response::Done
    }
}

/// A hasher for stream identifiers: one multiply and a fold, enough to spread sequential odd
/// numbers over a hash table, without SipHash's cost on every frame. The identifiers are not
/// keys an attacker can pick freely: a client's only ever increase, each used once. For maps
/// keyed by [`StreamId`](super::StreamId) in drivers too
/// (`HashMap<StreamId, V, BuildHasherDefault<StreamIdHasher>>`).
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamIdHasher(u64);

impl Hasher for StreamIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8 | u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        let product = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = product ^ (product >> 29);
    }
}

/// How a recently closed stream ended, which decides what a late frame on it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseCause {
    /// Both sides sent END_STREAM: a late DATA or HEADERS breaks §5.1.
    Finished,
    /// We reset it: the client may not know yet, frames on it are ignored (§5.1).
    ResetByUs,
    /// The client reset it: it must send nothing more (§5.1).
    ResetByPeer,
}

/// Fewest closed streams remembered, however low the concurrency limit.
const MIN_RECENTLY_CLOSED: usize = 128;

/// Most closed streams remembered, however high the concurrency limit (memory stays bounded).
const MAX_RECENTLY_CLOSED: usize = 16 * 1024;

/// Closed streams remembered per stream the concurrency limit allows: frames the client sent
/// on a stream before our RST_STREAM reached it arrive within about one round trip, during
/// which a busy client closes a few times its concurrency limit of other streams at most.
const RECENTLY_CLOSED_PER_STREAM: usize = 4;

type StreamMap<V> = HashMap<StreamId, V, BuildHasherDefault<StreamIdHasher>>;

/// How recently closed streams ended, the oldest forgotten first. A map beside the order,
/// so that a frame on a closed stream costs one lookup, not a scan.
#[derive(Debug)]
struct RecentlyClosed {
    capacity: usize,
    order: VecDeque<StreamId>,
    causes: StreamMap<CloseCause>,
}

impl RecentlyClosed {
    fn remember(&mut self, id: StreamId, cause: CloseCause) {
        if self.causes.insert(id, cause).is_some() {
            return;
        }
        if self.order.len() >= self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.causes.remove(&oldest);
            }
        }
        self.order.push_back(id);
    }

    fn cause(&self, id: StreamId) -> Option<CloseCause> {
        self.causes.get(&id).copied()
    }
}

/// The live streams of a connection, keyed by identifier, with counts kept as they change.
#[derive(Debug)]
pub(super) struct StreamStore {
    streams: StreamMap<Stream>,
    /// Client-initiated streams stored: the count our SETTINGS_MAX_CONCURRENT_STREAMS bounds.
    client_streams: usize,
    /// Pushed streams stored: the count the peer's SETTINGS_MAX_CONCURRENT_STREAMS bounds.
    pushed_streams: usize,
    recently_closed: RecentlyClosed,
}

impl StreamStore {
    /// An empty store for a connection allowing `max_concurrent_streams` client streams: it
    /// remembers a multiple of that many closed streams (within fixed bounds).
    pub(super) fn new(max_concurrent_streams: u32) -> Self {
        let capacity = usize::try_from(max_concurrent_streams)
            .unwrap_or(usize::MAX)
            .saturating_mul(RECENTLY_CLOSED_PER_STREAM)
            .clamp(MIN_RECENTLY_CLOSED, MAX_RECENTLY_CLOSED);
        StreamStore {
            streams: StreamMap::default(),
            client_streams: 0,
            pushed_streams: 0,
            recently_closed: RecentlyClosed {
                capacity,
                order: VecDeque::new(),
                causes: StreamMap::default(),
            },
        }
    }

    pub(super) fn get(&self, id: StreamId) -> Option<&Stream> {
        self.streams.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: StreamId) -> Option<&mut Stream> {
        self.streams.get_mut(&id)
    }

    pub(super) fn insert(&mut self, id: StreamId, stream: Stream) {
        if self.streams.insert(id, stream).is_none() {
            let count = self.count_of(id);
            *count = count.saturating_add(1);
        }
    }

    /// Removes a stream that is over, remembering how it ended.
    pub(super) fn remove(&mut self, id: StreamId, cause: CloseCause) -> Option<Stream> {
        let stream = self.streams.remove(&id)?;
        let count = self.count_of(id);
        *count = count.saturating_sub(1);
        self.recently_closed.remember(id, cause);
        Some(stream)
    }

    /// Remembers a stream that was never stored (refused or rejected before the application
    /// saw it) as closed by us.
    pub(super) fn remember_reset(&mut self, id: StreamId) {
        self.recently_closed.remember(id, CloseCause::ResetByUs);
    }

    /// How a closed stream ended, if it closed recently.
    pub(super) fn close_cause(&self, id: StreamId) -> Option<CloseCause> {
        self.recently_closed.cause(id)
    }

    fn count_of(&mut self, id: StreamId) -> &mut usize {
        if id % 2 == 1 {
            &mut self.client_streams
        } else {
            &mut self.pushed_streams
        }
    }

    /// Client-initiated streams stored.
    pub(super) fn client_streams(&self) -> usize {
        self.client_streams
    }

    /// Pushed streams stored.
    pub(super) fn pushed_streams(&self) -> usize {
        self.pushed_streams
    }

    pub(super) fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Stream> {
        self.streams.values()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&StreamId, &mut Stream)> {
        self.streams.iter_mut()
    }

    pub(super) fn ids(&self) -> Vec<StreamId> {
        self.streams.keys().copied().collect()
    }

    /// Forgets every stream (the connection is over).
    pub(super) fn clear(&mut self) {
        self.streams.clear();
        self.client_streams = 0;
        self.pushed_streams = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(state: StreamState) -> Stream {
        Stream::new(
            state,
            10,
            RecvWindow::new(10, 10),
            crate::test_clock::start(),
        )
    }

    #[test]
    fn transitions_follow_section_5_1() {
        assert_eq!(
            StreamState::Open.end_remote(),
            Some(StreamState::HalfClosedRemote)
        );
        assert_eq!(
            StreamState::Open.end_local(),
            Some(StreamState::HalfClosedLocal)
        );
        assert_eq!(StreamState::HalfClosedRemote.end_local(), None);
        assert_eq!(StreamState::HalfClosedLocal.end_remote(), None);
        assert_eq!(StreamState::ReservedLocal.end_local(), None);
        assert!(!StreamState::HalfClosedRemote.can_receive());
        assert!(StreamState::HalfClosedLocal.can_receive());
        assert!(!StreamState::ResetPending.can_receive());
    }

    #[test]
    fn store_counts_client_and_pushed_streams() {
        let mut store = StreamStore::new(100);
        store.insert(1, stream(StreamState::Open));
        store.insert(3, stream(StreamState::Open));
        store.insert(2, stream(StreamState::ReservedLocal));
        assert_eq!(store.client_streams(), 2);
        assert_eq!(store.pushed_streams(), 1);
        store.remove(1, CloseCause::Finished);
        assert_eq!(store.client_streams(), 1);
        assert_eq!(store.close_cause(1), Some(CloseCause::Finished));
        assert_eq!(store.close_cause(5), None);
    }

    #[test]
    fn recently_closed_is_bounded_and_scales_with_the_concurrency_limit() {
        let mut store = StreamStore::new(100);
        for id in (1..=801).step_by(2) {
            store.remember_reset(id);
        }
        assert_eq!(store.close_cause(1), None, "the oldest is forgotten");
        assert_eq!(store.close_cause(3), Some(CloseCause::ResetByUs));
        assert_eq!(store.recently_closed.order.len(), 400);
        assert_eq!(store.recently_closed.causes.len(), 400);
        assert_eq!(
            StreamStore::new(1).recently_closed.capacity,
            MIN_RECENTLY_CLOSED
        );
        assert_eq!(
            StreamStore::new(u32::MAX).recently_closed.capacity,
            MAX_RECENTLY_CLOSED
        );
    }
}
