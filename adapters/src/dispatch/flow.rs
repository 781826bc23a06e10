//! HTTP/2 request bodies whose flow-control windows reopen only as the application reads them.
//!
//! A stream's DATA goes into a [`Body::channel`] at once (the windows, not the channel, bound
//! what a client can send), and the body handed to the application counts the bytes it takes.
//! The connection gives exactly those back with `release_capacity`, so a slow reader holds the
//! client at one window per stream and one per connection: flow control is the backpressure.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use weft_service::body::{Body, BodySender, BoxError};

/// A stream's request body, seen from the connection.
pub(super) struct RequestBody {
    sender: Option<BodySender>,
    reads: Arc<Reads>,
    /// Bytes handed to the channel.
    received: usize,
    /// Bytes given back to the flow-control windows.
    released: usize,
}

/// What the application's side tells the connection's side.
struct Reads {
    /// Bytes the application took from the body.
    taken: AtomicUsize,
    /// The application dropped the body: what it held is gone.
    dropped: AtomicBool,
    /// The stream's waker: a read (or the body dropped) lets the stream release window.
    stream: Waker,
}

impl RequestBody {
    /// A body for a stream whose waker is `stream`, holding at most `window` bytes (what the
    /// stream's window lets the client send), of `length` bytes in all when the request
    /// declared it; returns the application's end too.
    pub(super) fn channel(
        window: usize,
        length: Option<u64>,
        stream: Waker,
    ) -> (RequestBody, Body) {
        let (sender, body) = Body::channel_with_length(window, length);
        let reads = Arc::new(Reads {
            taken: AtomicUsize::new(0),
            dropped: AtomicBool::new(false),
            stream,
        });
        let counted = CountedBody {
            inner: body,
            reads: Arc::clone(&reads),
        };
        let connection_side = RequestBody {
            sender: Some(sender),
            reads,
            received: 0,
            released: 0,
        };
        (connection_side, Body::new(counted))
    }

    /// Hands DATA to the application (discarded when it dropped the body).
    pub(super) fn send_data(&mut self, data: Bytes) {
        self.received = self.received.saturating_add(data.len());
        if let Some(sender) = &mut self.sender {
            sender.send_data(data);
        }
    }

    /// Hands the trailers to the application; they end the body.
    pub(super) fn send_trailers(&mut self, trailers: http::HeaderMap) {
        if let Some(mut sender) = self.sender.take() {
            sender.send_trailers(trailers);
            sender.finish();
        }
    }

    /// The body is complete.
    pub(super) fn finish(&mut self) {
        if let Some(sender) = self.sender.take() {
            sender.finish();
        }
    }

    /// Whether the application has asked for the body; else the stream's waker is woken
    /// when it does.
    pub(super) fn poll_wanted(&self, cx: &mut Context<'_>) -> bool {
        self.sender
            .as_ref()
            .is_some_and(|sender| sender.poll_wanted(cx).is_ready())
    }

    /// Whether the client will send more (no END_STREAM or trailers yet).
    pub(super) fn is_open(&self) -> bool {
        self.sender.is_some()
    }

    /// Whether nobody reads the body any more (the application dropped it).
    pub(super) fn is_abandoned(&self) -> bool {
        self.reads.dropped.load(Ordering::Acquire)
    }

    /// Bytes to give back to the flow-control windows now: what the application read since
    /// last time, or everything outstanding once it dropped the body.
    pub(super) fn take_releasable(&mut self) -> usize {
        let done = if self.is_abandoned() {
            self.received
        } else {
            self.reads.taken.load(Ordering::Acquire).min(self.received)
        };
        let releasable = done.saturating_sub(self.released);
        self.released = self.released.max(done);
        releasable
    }

    /// Bytes received and not given back yet, all of which are released when the stream ends.
    pub(super) fn take_outstanding(&mut self) -> usize {
        let outstanding = self.received.saturating_sub(self.released);
        self.released = self.received;
        outstanding
    }
}

/// The application's end of a request body: the channel's receiver, counting what it yields.
struct CountedBody {
    inner: Body,
    reads: Arc<Reads>,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.reads.taken.fetch_add(data.len(), Ordering::AcqRel);
                self.reads.stream.wake_by_ref();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        // The receiver goes first, so the stream sees the body abandoned when it wakes.
        drop(std::mem::take(&mut self.inner));
        self.reads.dropped.store(true, Ordering::Release);
        self.reads.stream.wake_by_ref();
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;

    use super::*;

    fn read(body: &mut Body) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn window_reopens_by_what_the_application_read() {
        let (mut connection, mut body) = RequestBody::channel(100, None, Waker::noop().clone());
        connection.send_data(Bytes::from_static(b"12345"));
        connection.send_data(Bytes::from_static(b"678"));
        assert_eq!(connection.take_releasable(), 0, "nothing read yet");
        assert!(read(&mut body).is_ready());
        assert_eq!(connection.take_releasable(), 5);
        assert_eq!(connection.take_releasable(), 0, "released once");
        assert_eq!(connection.take_outstanding(), 3);
    }

    #[test]
    fn a_dropped_body_releases_everything_it_held() {
        let (mut connection, body) = RequestBody::channel(100, None, Waker::noop().clone());
        connection.send_data(Bytes::from_static(b"12345"));
        connection.finish();
        assert!(
            !connection.is_abandoned(),
            "a complete body is still to be read"
        );
        assert_eq!(connection.take_releasable(), 0);
        drop(body);
        assert!(connection.is_abandoned());
        assert_eq!(connection.take_releasable(), 5);
    }

    #[test]
    fn trailers_end_the_body() {
        let (mut connection, mut body) = RequestBody::channel(100, None, Waker::noop().clone());
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-sum", "9".parse().unwrap());
        connection.send_trailers(trailers);
        assert!(!connection.is_open());
        match read(&mut body) {
            Poll::Ready(Some(Ok(frame))) => {
                assert_eq!(frame.into_trailers().unwrap()["x-sum"], "9")
            }
            other => panic!("expected trailers, got {other:?}"),
        }
        assert!(matches!(read(&mut body), Poll::Ready(None)));
    }
}
