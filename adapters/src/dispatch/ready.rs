//! Which HTTP/2 streams were woken: each stream's handler, request body and response body
//! run with a waker of their own that marks the stream ready and wakes the connection, so a
//! poll of the connection drives only the streams that can move, not all of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Wake, Waker};

use weft_core::h2::StreamId;

/// The streams woken since the connection last looked, and the connection's own waker.
#[derive(Default)]
pub(super) struct ReadyStreams {
    woken: Mutex<Vec<StreamId>>,
    connection: Mutex<Option<Waker>>,
}

impl ReadyStreams {
    /// Remembers the waker of the connection's task, to be woken by any stream.
    pub(super) fn register(&self, cx: &Context<'_>) {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !connection.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *connection = Some(cx.waker().clone());
        }
    }

    /// Forgets the connection's waker, once no stream is left to wake it: a driver may take
    /// a connection whose waker nobody holds for one only its socket and clock can move (the
    /// blocking adapter parks such a connection instead of keeping a thread on it).
    pub(super) fn unregister(&self) {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Moves the streams woken so far to the end of `into`.
    pub(super) fn drain_into(&self, into: &mut Vec<StreamId>) {
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        into.append(&mut woken);
    }

    fn push(&self, stream: StreamId) {
        self.woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stream);
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(waker) = connection.as_ref() {
            waker.wake_by_ref();
        }
    }
}

/// The waker of one stream.
pub(super) struct StreamWaker {
    stream: StreamId,
    /// Already in the ready list: a second wake before the connection looks adds nothing.
    queued: AtomicBool,
    ready: Arc<ReadyStreams>,
}

impl StreamWaker {
    /// A waker for `stream`, reporting to `ready`.
    pub(super) fn new(stream: StreamId, ready: Arc<ReadyStreams>) -> Arc<Self> {
        Arc::new(StreamWaker {
            stream,
            queued: AtomicBool::new(false),
            ready,
        })
    }

    /// Makes this waker, held by nobody else, the waker of `stream`, as [`StreamWaker::new`]
    /// would.
    pub(super) fn reuse_for(&mut self, stream: StreamId) {
        self.stream = stream;
        *self.queued.get_mut() = false;
    }

    /// The stream is about to be driven: wakes from now on must queue it again.
    pub(super) fn clear(&self) {
        self.queued.store(false, Ordering::Release);
    }
}

impl Wake for StreamWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.ready.push(self.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_woken_twice_is_ready_once_until_driven() {
        let ready = Arc::new(ReadyStreams::default());
        let one = Waker::from(StreamWaker::new(1, Arc::clone(&ready)));
        let three = StreamWaker::new(3, Arc::clone(&ready));
        let three_waker = Waker::from(Arc::clone(&three));
        one.wake_by_ref();
        three_waker.wake_by_ref();
        three_waker.wake_by_ref();
        let mut woken = Vec::new();
        ready.drain_into(&mut woken);
        assert_eq!(woken, [1, 3]);
        woken.clear();
        three_waker.wake_by_ref();
        ready.drain_into(&mut woken);
        assert!(woken.is_empty(), "3 is still queued until it is driven");
        three.clear();
        three_waker.wake_by_ref();
        ready.drain_into(&mut woken);
        assert_eq!(woken, [3]);
    }
}
