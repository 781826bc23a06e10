//! Copying a response body into a connection, for both protocols: frames are taken from the
//! body one at a time, and bytes the connection did not accept yet (its output buffer or a
//! flow-control window is full) are kept and offered again on the next poll.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::Body as _;
use weft_service::body::{Body, BoxError};

/// Where a response body goes: the HTTP/1.1 connection, or one stream of an HTTP/2 one.
pub(super) trait BodySink {
    /// Queues body bytes, `last` when they end the body (the sink then ends it once all of
    /// them are taken); returns how many were taken. `Err` when the response can no longer be
    /// sent: the sink has logged why, and the body is dropped.
    fn send_data(&mut self, data: &[u8], last: bool) -> Result<usize, SinkClosed>;

    /// [`send_data`](Self::send_data) for bytes already in a `Bytes`, which a sink may keep
    /// as they are instead of copying them; copied by default.
    fn send_bytes(&mut self, data: &Bytes, last: bool) -> Result<usize, SinkClosed> {
        self.send_data(data, last)
    }

    /// Ends the body with trailers.
    fn send_trailers(&mut self, trailers: &HeaderMap);

    /// The body failed midway: the sink cuts the response short so that it cannot look
    /// complete.
    fn fail(&mut self, error: BoxError);
}

/// The response cannot be sent any more (the connection or stream is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SinkClosed;

/// Where a response stands after [`ResponseBody::pump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pump {
    /// The body has nothing ready; its waker fires when it has.
    Waiting,
    /// The sink took nothing more: offer again once output was written or a flow-control
    /// window reopened.
    Blocked,
    /// The whole response is handed over (or given up).
    Done,
}

/// What one [`ResponseBody::pump`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pumped {
    /// Anything moved: bytes, the end, or a frame taken from the body.
    pub(super) moved: bool,
    /// Where the response stands.
    pub(super) state: Pump,
}

/// A response body being copied into a connection.
pub(super) struct ResponseBody {
    body: Body,
    /// Bytes taken from the body that the connection has not accepted yet.
    unsent: Bytes,
    /// How the body ended, when that was learned before `unsent` could be sent.
    ended: Option<BodyEnd>,
}

/// The last thing a response body yields.
enum BodyEnd {
    Finished,
    Trailers(HeaderMap),
    Failed(BoxError),
}

impl ResponseBody {
    /// A body none of which was taken yet.
    pub(super) fn new(body: Body) -> Self {
        ResponseBody {
            body,
            unsent: Bytes::new(),
            ended: None,
        }
    }

    /// Whether nothing is left to send, not even trailers: the head can end the message.
    pub(super) fn is_empty(&self) -> bool {
        self.unsent.is_empty()
            && match &self.ended {
                Some(BodyEnd::Finished) => true,
                Some(_) => false,
                None => self.body.is_end_stream(),
            }
    }

    /// Copies the body into `sink` until the body or the sink has nothing more for now.
    pub(super) fn pump(&mut self, sink: &mut impl BodySink, cx: &mut Context<'_>) -> Pumped {
        let mut moved = false;
        loop {
            if !self.unsent.is_empty() {
                let last = matches!(self.ended, Some(BodyEnd::Finished));
                match sink.send_bytes(&self.unsent, last) {
                    Err(SinkClosed) => return Pumped::done(),
                    Ok(0) => {
                        return Pumped {
                            moved,
                            state: Pump::Blocked,
                        };
                    }
                    Ok(taken) => {
                        self.unsent.advance(taken);
                        if last && self.unsent.is_empty() {
                            return Pumped::done();
                        }
                        moved = true;
                        continue;
                    }
                }
            }
            match self.ended.take() {
                None if !self.take_frame(cx) => {
                    return Pumped {
                        moved,
                        state: Pump::Waiting,
                    };
                }
                None => {}
                Some(BodyEnd::Finished) => {
                    // Nothing is left to send but the end itself.
                    let _ = sink.send_data(&[], true);
                    return Pumped::done();
                }
                Some(BodyEnd::Trailers(trailers)) => {
                    sink.send_trailers(&trailers);
                    return Pumped::done();
                }
                Some(BodyEnd::Failed(error)) => {
                    sink.fail(error);
                    return Pumped::done();
                }
            }
            moved = true;
        }
    }

    /// Polls the body for its next frame into `unsent` or `ended`; false when it is pending.
    /// A body that panics is treated as one that failed: the response is cut short, while the
    /// server lives on. A body that says it is over with its last data frame ends with it, so
    /// HTTP/2 can flag that frame END_STREAM instead of sending an empty one.
    pub(super) fn take_frame(&mut self, cx: &mut Context<'_>) -> bool {
        let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut self.body).poll_frame(cx)));
        let polled = polled.unwrap_or_else(|_| {
            tracing::error!("response body panicked; cutting the response short");
            Poll::Ready(Some(Err("response body panicked".into())))
        });
        match polled {
            Poll::Pending => return false,
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    self.unsent = data;
                    if self.body.is_end_stream() {
                        self.ended = Some(BodyEnd::Finished);
                    }
                }
                Err(frame) => {
                    // A frame is data or trailers; anything else is ignored.
                    if let Ok(trailers) = frame.into_trailers() {
                        self.ended = Some(BodyEnd::Trailers(trailers));
                    }
                }
            },
            Poll::Ready(Some(Err(error))) => self.ended = Some(BodyEnd::Failed(error)),
            Poll::Ready(None) => self.ended = Some(BodyEnd::Finished),
        }
        true
    }
}

impl Pumped {
    fn done() -> Self {
        Pumped {
            moved: true,
            state: Pump::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    /// A sink taking at most `room` bytes per call, recording what it got.
    #[derive(Default)]
    struct Recorder {
        room: usize,
        data: Vec<u8>,
        ended: bool,
        trailers: Option<HeaderMap>,
        failed: bool,
    }

    impl BodySink for Recorder {
        fn send_data(&mut self, data: &[u8], last: bool) -> Result<usize, SinkClosed> {
            assert!(!self.ended, "nothing after the end");
            let taken = data.len().min(self.room);
            self.data.extend_from_slice(&data[..taken]);
            self.ended = last && taken == data.len();
            Ok(taken)
        }

        fn send_trailers(&mut self, trailers: &HeaderMap) {
            self.trailers = Some(trailers.clone());
        }

        fn fail(&mut self, _error: BoxError) {
            self.failed = true;
        }
    }

    fn pump(body: &mut ResponseBody, sink: &mut Recorder) -> Pumped {
        body.pump(sink, &mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_full_body_ends_with_its_only_data() {
        let mut body = ResponseBody::new(Body::from("hello"));
        let mut sink = Recorder {
            room: usize::MAX,
            ..Recorder::default()
        };
        assert_eq!(pump(&mut body, &mut sink).state, Pump::Done);
        assert_eq!(sink.data, b"hello");
        assert!(sink.ended);
    }

    #[test]
    fn bytes_a_full_sink_refused_are_offered_again() {
        let mut body = ResponseBody::new(Body::from("hello world"));
        let mut sink = Recorder {
            room: 4,
            ..Recorder::default()
        };
        let mut rounds = 0;
        while pump(&mut body, &mut sink).state != Pump::Done {
            rounds += 1;
            assert!(rounds < 10, "the body never finished");
        }
        assert_eq!(sink.data, b"hello world");
        assert!(sink.ended);
        let mut full = Recorder::default();
        let mut blocked = ResponseBody::new(Body::from("x"));
        assert_eq!(pump(&mut blocked, &mut full).state, Pump::Blocked);
    }

    #[test]
    fn a_channel_body_waits_then_ends_with_trailers() {
        let (mut sender, body) = Body::channel(64);
        let mut body = ResponseBody::new(body);
        let mut sink = Recorder {
            room: usize::MAX,
            ..Recorder::default()
        };
        assert_eq!(pump(&mut body, &mut sink).state, Pump::Waiting);
        sender.send_data(Bytes::from_static(b"part"));
        let mut trailers = HeaderMap::new();
        trailers.insert("x-check", "1".parse().unwrap());
        sender.send_trailers(trailers);
        sender.finish();
        assert_eq!(pump(&mut body, &mut sink).state, Pump::Done);
        assert_eq!(sink.data, b"part");
        assert!(!sink.ended, "trailers end this body, not data");
        assert_eq!(sink.trailers.unwrap()["x-check"], "1");
    }

    #[test]
    fn a_failed_body_is_reported_to_the_sink() {
        let (mut sender, body) = Body::channel(64);
        sender.send_data(Bytes::from_static(b"part"));
        sender.abort();
        let mut body = ResponseBody::new(body);
        let mut sink = Recorder {
            room: usize::MAX,
            ..Recorder::default()
        };
        assert_eq!(pump(&mut body, &mut sink).state, Pump::Done);
        assert!(sink.failed);
        assert!(!sink.ended);
    }
}
