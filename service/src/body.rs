//! Message bodies that stream both ways, the same on every runtime.
//!
//! [`Body`] implements [`http_body::Body`], the ecosystem's body trait, so bodies from other
//! crates fit in ([`Body::new`]) and ours fit theirs. A request body is a [`Body::channel`]:
//! the connection driver pushes chunks in as the client sends them, and stops reading the
//! socket while the channel is full, so a slow application slows the client down instead of
//! filling memory.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use sync_wrapper::SyncWrapper;

use crate::file::{FileBody, FileRegion};

/// The error type carried by bodies: whatever went wrong producing or receiving one.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A request or response body: empty, a single buffer, a channel fed by a connection, or any
/// [`http_body::Body`].
///
/// A `Body` is `Send + Sync`, so a handler may hold `&Request<Body>` across an `.await` and
/// still be a [`Service`](crate::service::Service): bodies from elsewhere, which need only be
/// `Send`, are kept where no shared reference can reach them.
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Channel(BodyReceiver),
    Boxed(SyncBoxed),
    File(FileBody),
}

/// A boxed [`http_body::Body`] that is only `Send`, made `Sync` by being reachable through
/// `&mut` alone ([`SyncWrapper`]); what `&self` methods report is cached after every frame.
struct SyncBoxed {
    body: SyncWrapper<Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send>>>,
    size_hint: SizeHint,
    end_stream: bool,
}

impl SyncBoxed {
    fn new(body: Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send>>) -> Self {
        SyncBoxed {
            size_hint: body.size_hint(),
            end_stream: body.is_end_stream(),
            body: SyncWrapper::new(body),
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let body = self.body.get_mut();
        let polled = body.as_mut().poll_frame(cx);
        self.size_hint = body.size_hint();
        self.end_stream = body.is_end_stream() || matches!(polled, Poll::Ready(None));
        polled
    }
}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body of one buffer, whose length is known up front (sent with Content-Length).
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::empty()
        } else {
            Body {
                kind: Kind::Full(Some(bytes)),
            }
        }
    }

    /// Wraps any [`http_body::Body`] of `Bytes`, such as a stream of chunks of unknown length.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Body {
            kind: Kind::Boxed(SyncBoxed::new(Box::pin(body.map_err(Into::into)))),
        }
    }

    /// A region of an open file, sent without reading the file whole into memory: chunks read
    /// off the event loop when polled, or `sendfile(2)` straight from the page cache when the
    /// connection driver can ([`take_file_region`](Body::take_file_region)). Its length is
    /// exact (sent with Content-Length).
    pub fn file(region: FileRegion) -> Self {
        Body {
            kind: Kind::File(FileBody::new(region)),
        }
    }

    /// Whether this is a [`file`](Body::file) body whose region a driver may still take.
    pub fn is_file(&self) -> bool {
        matches!(&self.kind, Kind::File(body) if !body.is_end_stream())
    }

    /// Takes the file region out of a [`file`](Body::file) body, leaving it empty, so a
    /// connection driver can send the bytes itself (without a user-space copy) instead of
    /// polling chunks; `None` for every other body.
    pub fn take_file_region(&mut self) -> Option<FileRegion> {
        let Kind::File(body) = &mut self.kind else {
            return None;
        };
        let region = body.take_region();
        self.kind = Kind::Empty;
        region
    }

    /// A body fed through the returned [`BodySender`], holding at most about `capacity` bytes
    /// that the receiver has not taken yet.
    pub fn channel(capacity: usize) -> (BodySender, Body) {
        Body::channel_with_length(capacity, None)
    }

    /// A [`channel`](Body::channel) whose total length is known (a request's Content-Length):
    /// the body's [`size_hint`](http_body::Body::size_hint) reports the bytes still to come,
    /// so a reader can refuse an oversized body, or size a buffer, before reading it.
    pub fn channel_with_length(capacity: usize, length: Option<u64>) -> (BodySender, Body) {
        let shared = Arc::new(Shared {
            state: Mutex::new(ChannelState {
                frames: VecDeque::new(),
                queued: 0,
                capacity: capacity.max(1),
                finished: false,
                error: None,
                receiver_dropped: false,
                wanted: false,
                receiver_waker: None,
                sender_waker: None,
            }),
        });
        let receiver = BodyReceiver {
            shared: Arc::clone(&shared),
            remaining: length,
        };
        (
            BodySender {
                shared,
                done: false,
            },
            Body {
                kind: Kind::Channel(receiver),
            },
        )
    }

    /// Reads the whole body into one buffer, refusing more than `limit` bytes.
    pub async fn collect(mut self, limit: usize) -> Result<Bytes, BodyError> {
        let mut pin = Pin::new(&mut self);
        let mut collected = bytes::BytesMut::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| http_body::Body::poll_frame(pin.as_mut(), cx)).await
        {
            let frame = frame.map_err(BodyError::Source)?;
            if let Ok(data) = frame.into_data() {
                if collected.len() + data.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                collected.extend_from_slice(&data);
            }
        }
        Ok(collected.freeze())
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "full",
            Kind::Channel(_) => "channel",
            Kind::Boxed(_) => "boxed",
            Kind::File(_) => "file",
        };
        f.debug_struct("Body")
            .field("kind", &kind)
            .field("size_hint", &http_body::Body::size_hint(self))
            .finish()
    }
}

macro_rules! body_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Body {
            fn from(value: $t) -> Self {
                Body::full(value)
            }
        }
    )*};
}
body_from!(Bytes, Vec<u8>, String, &'static [u8], &'static str);

impl From<()> for Body {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Channel(receiver) => receiver.poll_frame(cx).map_err(Into::into),
            Kind::Boxed(body) => body.poll_frame(cx),
            Kind::File(body) => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Channel(receiver) => receiver.is_end_stream(),
            Kind::Boxed(body) => body.end_stream,
            Kind::File(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Channel(receiver) => receiver.size_hint(),
            Kind::Boxed(body) => body.size_hint,
            Kind::File(body) => body.size_hint(),
        }
    }
}

/// Why a body could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyError {
    /// The body was longer than the reader allowed.
    TooLarge,
    /// The peer stopped sending before the body was complete (the connection closed or broke
    /// a rule mid-body).
    Truncated,
    /// The body's producer failed.
    Source(BoxError),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge => f.write_str("body larger than allowed"),
            BodyError::Truncated => f.write_str("body ended before it was complete"),
            BodyError::Source(error) => write!(f, "body failed: {error}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Source(error) => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// The state a [`BodySender`] and its receiving [`Body`] share.
struct Shared {
    state: Mutex<ChannelState>,
}

struct ChannelState {
    frames: VecDeque<Frame<Bytes>>,
    /// Data bytes in `frames`.
    queued: usize,
    capacity: usize,
    /// The sender finished the body.
    finished: bool,
    /// The sender gave up; the receiver reports this after the frames already queued.
    error: Option<BodyErrorKind>,
    receiver_dropped: bool,
    /// The receiver has asked for a frame at least once.
    wanted: bool,
    receiver_waker: Option<Waker>,
    sender_waker: Option<Waker>,
}

/// The errors a sender can hand over (`BodyError` itself is not `Clone`).
#[derive(Debug, Clone, Copy)]
enum BodyErrorKind {
    Truncated,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        // A panic while holding this lock cannot leave the queue half-updated in a way that
        // matters more than losing the body, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receiving end of [`Body::channel`], inside a [`Body`].
struct BodyReceiver {
    shared: Arc<Shared>,
    /// Bytes still to come, when the length was declared.
    remaining: Option<u64>,
}

impl BodyReceiver {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut state = self.shared.lock();
        if !state.wanted {
            state.wanted = true;
            // The sender may be waiting for demand (to send `100 Continue`).
            if let Some(waker) = state.sender_waker.take() {
                waker.wake();
            }
        }
        if let Some(frame) = state.frames.pop_front() {
            if let Some(data) = frame.data_ref() {
                state.queued -= data.len();
                if let Some(remaining) = &mut self.remaining {
                    *remaining = remaining.saturating_sub(data.len() as u64);
                }
                if let Some(waker) = state.sender_waker.take() {
                    waker.wake();
                }
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(BodyErrorKind::Truncated) = state.error {
            return Poll::Ready(Some(Err(BodyError::Truncated)));
        }
        if state.finished {
            return Poll::Ready(None);
        }
        state.receiver_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let state = self.shared.lock();
        state.finished && state.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl Drop for BodyReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_dropped = true;
        state.frames.clear();
        state.queued = 0;
        if let Some(waker) = state.sender_waker.take() {
            waker.wake();
        }
    }
}

/// The sending end of [`Body::channel`], held by a connection driver.
///
/// Sending never blocks and never fails for lack of room: the driver asks
/// [`has_capacity`](Self::has_capacity) (or waits on [`poll_capacity`](Self::poll_capacity))
/// before reading more from the socket, which is what bounds memory. Dropping the sender
/// without [`finish`](Self::finish) tells the receiver the body was truncated.
pub struct BodySender {
    shared: Arc<Shared>,
    done: bool,
}

impl BodySender {
    /// Queues a piece of the body. Returns false when the receiver is gone (the application
    /// dropped the body), in which case the driver may discard the rest.
    pub fn send_data(&mut self, data: Bytes) -> bool {
        self.send(Frame::data(data))
    }

    /// Queues the trailer section.
    pub fn send_trailers(&mut self, trailers: HeaderMap) -> bool {
        self.send(Frame::trailers(trailers))
    }

    fn send(&mut self, frame: Frame<Bytes>) -> bool {
        let mut state = self.shared.lock();
        if state.receiver_dropped {
            return false;
        }
        if let Some(data) = frame.data_ref() {
            state.queued += data.len();
        }
        state.frames.push_back(frame);
        if let Some(waker) = state.receiver_waker.take() {
            waker.wake();
        }
        true
    }

    /// Ends the body successfully.
    pub fn finish(mut self) {
        self.close(None);
    }

    /// Ends the body as truncated: the receiver gets [`BodyError::Truncated`] after the
    /// pieces already queued.
    pub fn abort(mut self) {
        self.close(Some(BodyErrorKind::Truncated));
    }

    fn close(&mut self, error: Option<BodyErrorKind>) {
        self.done = true;
        let mut state = self.shared.lock();
        match error {
            None => state.finished = true,
            Some(error) => state.error = Some(error),
        }
        if let Some(waker) = state.receiver_waker.take() {
            waker.wake();
        }
    }

    /// Whether fewer than `capacity` bytes wait for the receiver (or the receiver is gone,
    /// so anything sent is dropped at once).
    pub fn has_capacity(&self) -> bool {
        let state = self.shared.lock();
        state.receiver_dropped || state.queued < state.capacity
    }

    /// Ready once [`has_capacity`](Self::has_capacity) is true.
    pub fn poll_capacity(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if state.receiver_dropped || state.queued < state.capacity {
            return Poll::Ready(());
        }
        state.sender_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Whether the receiver has asked for the body (polled it) at least once: the moment to
    /// send `100 Continue` to a client that waits for it.
    pub fn is_wanted(&self) -> bool {
        self.shared.lock().wanted
    }

    /// Ready once the receiver has asked for the body, or is gone.
    pub fn poll_wanted(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if state.wanted || state.receiver_dropped {
            return Poll::Ready(());
        }
        state.sender_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Whether the receiver was dropped: nobody will read the rest of the body.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().receiver_dropped
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        if !self.done {
            self.close(Some(BodyErrorKind::Truncated));
        }
    }
}

impl fmt::Debug for BodySender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("BodySender")
            .field("queued", &state.queued)
            .field("capacity", &state.capacity)
            .field("wanted", &state.wanted)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn poll(body: &mut Body) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut cx = Context::from_waker(Waker::noop());
        http_body::Body::poll_frame(Pin::new(body), &mut cx)
    }

    fn data(poll: Poll<Option<Result<Frame<Bytes>, BoxError>>>) -> Bytes {
        match poll {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap(),
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn full_body_yields_its_bytes_once_with_an_exact_size() {
        let mut body = Body::from("hello");
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        assert_eq!(data(poll(&mut body)), "hello");
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
        assert!(http_body::Body::is_end_stream(&body));
    }

    #[test]
    fn channel_delivers_in_order_and_bounds_what_waits() {
        let (mut sender, mut body) = Body::channel(8);
        assert!(sender.has_capacity());
        assert!(sender.send_data(Bytes::from_static(b"12345")));
        assert!(sender.has_capacity());
        assert!(sender.send_data(Bytes::from_static(b"6789")));
        assert!(!sender.has_capacity(), "9 bytes wait, capacity is 8");
        assert_eq!(data(poll(&mut body)), "12345");
        assert!(sender.has_capacity(), "taking a piece frees room");
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "1".parse().unwrap());
        sender.send_trailers(trailers);
        sender.finish();
        assert_eq!(data(poll(&mut body)), "6789");
        match poll(&mut body) {
            Poll::Ready(Some(Ok(frame))) => {
                assert_eq!(frame.into_trailers().unwrap()["x-sum"], "1")
            }
            other => panic!("expected trailers, got {other:?}"),
        }
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    #[test]
    fn dropped_sender_truncates_the_body() {
        let (mut sender, mut body) = Body::channel(64);
        sender.send_data(Bytes::from_static(b"part"));
        drop(sender);
        assert_eq!(data(poll(&mut body)), "part");
        match poll(&mut body) {
            Poll::Ready(Some(Err(error))) => {
                assert!(error.to_string().contains("before it was complete"))
            }
            other => panic!("expected truncation, got {other:?}"),
        }
    }

    #[test]
    fn first_poll_signals_demand_and_dropping_the_body_releases_the_sender() {
        let (mut sender, mut body) = Body::channel(4);
        assert!(!sender.is_wanted());
        assert!(poll(&mut body).is_pending());
        assert!(sender.is_wanted(), "the application asked for the body");
        sender.send_data(Bytes::from_static(b"too much"));
        assert!(!sender.has_capacity());
        drop(body);
        assert!(sender.is_closed());
        assert!(
            sender.has_capacity(),
            "nobody reads: the driver may discard"
        );
        assert!(!sender.send_data(Bytes::from_static(b"more")));
    }

    #[test]
    fn collect_refuses_more_than_the_limit() {
        let (mut sender, body) = Body::channel(64);
        sender.send_data(Bytes::from_static(b"0123456789"));
        sender.finish();
        let mut future = std::pin::pin!(body.collect(4));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            future.as_mut().poll(&mut cx),
            Poll::Ready(Err(BodyError::TooLarge))
        ));
    }
}
