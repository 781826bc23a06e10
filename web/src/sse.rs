//! Server-Sent Events (HTML Living Standard §9.2): a response that streams [`Event`]s as
//! `text/event-stream`, one body chunk per event, never buffering the stream.
//!
//! ```
//! use std::time::Duration;
//! use weft::sse::{Event, Sse};
//! use weft_service::runtime::ShutdownSignal;
//!
//! async fn ticks(shutdown: ShutdownSignal) -> Sse<impl futures_lite::Stream<Item = Event> + Send + 'static> {
//!     let events = futures_lite::stream::iter((1..=3).map(|n| Event::new().id(n.to_string()).data(format!("tick {n}"))));
//!     Sse::new(events)
//!         .keep_alive(Duration::from_secs(15))
//!         .with_shutdown(shutdown)
//! }
//! # let _ = weft::App::new().get("/ticks", ticks).build().unwrap();
//! ```
//!
//! The stream ends when the event stream does, or when the server starts to drain: the
//! signal given with [`Sse::with_shutdown`], or else the current server's. An event stream is
//! usually endless, so without this a graceful shutdown would wait for it until its deadline.
//! Keep-alive comments ([`Sse::keep_alive`]) stop proxies from closing a quiet connection;
//! they need the server's timer and are sent only where a weft runtime is current.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::Stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http_body::Frame;
use weft_service::body::Body;
use weft_service::runtime::{RuntimeHandle, ShutdownSignal};

use crate::response::{IntoResponse, Response};

/// The media type of an event stream.
pub const EVENT_STREAM: &str = "text/event-stream";

/// One event of a stream: data, an event type, an id, a reconnection time, comments.
///
/// Built with the setters, `Event::new().event("update").data("line 1\nline 2")`; written as
/// the stream's fields, a `data:` line per line of data, and a blank line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    comments: Vec<String>,
    event: Option<String>,
    id: Option<String>,
    retry: Option<Duration>,
    data: Option<String>,
}

/// Takes out what would end a field early: CR and LF, and NUL (an `id` with NUL is ignored by
/// clients).
fn one_line(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

/// Splits on CRLF, CR or LF, the three line ends of the format.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            Some(at) => {
                let skip = if text[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&text[at + skip..]);
                Some(&text[..at])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

impl Event {
    /// An empty event.
    pub fn new() -> Self {
        Event::default()
    }

    /// The data; several lines become several `data:` lines, which the client joins back
    /// with `\n`.
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// The data: `value` as JSON (on one line).
    pub fn json_data<T: serde::Serialize>(self, value: &T) -> Result<Self, serde_json::Error> {
        Ok(self.data(serde_json::to_string(value)?))
    }

    /// The event type (the client's `addEventListener` name); line breaks are removed.
    pub fn event(mut self, event: impl AsRef<str>) -> Self {
        self.event = Some(one_line(event.as_ref()));
        self
    }

    /// The id, which the client sends back as `Last-Event-ID` when it reconnects; line breaks
    /// and NUL are removed.
    pub fn id(mut self, id: impl AsRef<str>) -> Self {
        self.id = Some(one_line(id.as_ref()));
        self
    }

    /// How long the client waits before reconnecting (`retry:`, in milliseconds).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// A comment, which clients ignore (several lines become several comments).
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comments.push(comment.into());
        self
    }

    /// The event as written on the stream, blank line included.
    pub fn encode(&self) -> Bytes {
        let mut out = String::new();
        for comment in &self.comments {
            for line in lines(comment) {
                out.push_str(": ");
                out.push_str(line);
                out.push('\n');
            }
        }
        if let Some(event) = &self.event {
            out.push_str(&format!("event: {event}\n"));
        }
        if let Some(id) = &self.id {
            out.push_str(&format!("id: {id}\n"));
        }
        if let Some(retry) = self.retry {
            out.push_str(&format!("retry: {}\n", retry.as_millis()));
        }
        if let Some(data) = &self.data {
            for line in lines(data) {
                out.push_str("data: ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// A `text/event-stream` response from a stream of [`Event`]s (see the [module docs](self)).
pub struct Sse<S> {
    stream: S,
    keep_alive: Option<(Duration, Bytes)>,
    shutdown: Option<ShutdownSignal>,
}

impl<S> std::fmt::Debug for Sse<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sse")
            .field("keep_alive", &self.keep_alive.as_ref().map(|k| k.0))
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl<S> Sse<S>
where
    S: Stream<Item = Event> + Send + 'static,
{
    /// A response streaming `stream`'s events.
    pub fn new(stream: S) -> Self {
        Sse {
            stream,
            keep_alive: None,
            shutdown: None,
        }
    }

    /// Sends a `: keep-alive` comment after every `interval` without an event (where a weft
    /// runtime is current; see the [module docs](self)).
    pub fn keep_alive(self, interval: Duration) -> Self {
        self.keep_alive_comment(interval, "keep-alive")
    }

    /// Like [`keep_alive`](Self::keep_alive), with the comment's text.
    pub fn keep_alive_comment(mut self, interval: Duration, comment: &str) -> Self {
        let comment = Event::new().comment(comment).encode();
        self.keep_alive = Some((interval, comment));
        self
    }

    /// Ends the stream when `shutdown` fires (the request's [`ShutdownSignal`], an extractor).
    /// Without it, the current server's signal is used, if any.
    pub fn with_shutdown(mut self, shutdown: ShutdownSignal) -> Self {
        self.shutdown = Some(shutdown);
        self
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pin_project_lite::pin_project! {
    /// The body of an [`Sse`] response.
    struct SseBody<S> {
        #[pin]
        stream: S,
        keep_alive: Option<(Duration, Bytes)>,
        timer: Option<BoxFuture>,
        runtime: Option<RuntimeHandle>,
        shutdown: Option<BoxFuture>,
        done: bool,
    }
}

impl<S: Stream<Item = Event>> http_body::Body for SseBody<S> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Some(shutdown) = this.shutdown {
            if shutdown.as_mut().poll(cx).is_ready() {
                *this.done = true;
                return Poll::Ready(None);
            }
        }
        match this.stream.poll_next(cx) {
            Poll::Ready(Some(event)) => {
                // An event resets the keep-alive timer.
                *this.timer = None;
                return Poll::Ready(Some(Ok(Frame::data(event.encode()))));
            }
            Poll::Ready(None) => {
                *this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if let Some((interval, comment)) = this.keep_alive {
            if this.runtime.is_none() {
                *this.runtime = RuntimeHandle::try_current();
            }
            if let Some(runtime) = this.runtime {
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(runtime.sleep(*interval)));
                if timer.as_mut().poll(cx).is_ready() {
                    *this.timer = None;
                    return Poll::Ready(Some(Ok(Frame::data(comment.clone()))));
                }
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl<S> IntoResponse for Sse<S>
where
    S: Stream<Item = Event> + Send + 'static,
{
    fn into_response(self) -> Response {
        // Handlers run where the server's runtime is current: its timer and shutdown signal.
        let runtime = RuntimeHandle::try_current();
        let shutdown = self
            .shutdown
            .or_else(|| runtime.as_ref().map(RuntimeHandle::shutdown_signal))
            .map(|signal| Box::pin(signal.wait()) as BoxFuture);
        let body = SseBody {
            stream: self.stream,
            keep_alive: self.keep_alive,
            timer: None,
            runtime,
            shutdown,
            done: false,
        };
        let mut response = Response::new(Body::new(body));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    use futures_lite::future::{block_on, poll_once};
    use http_body_util::BodyExt;
    use weft_service::runtime::{BlockingWork, RuntimeServices, ShutdownSource};
    use weft_service::service::Service;

    use super::*;
    use crate::{App, Request};

    #[test]
    fn events_are_encoded_field_by_field() {
        let event = Event::new()
            .comment("hello\nthere")
            .event("update\r\nevil: 1")
            .id("7\0")
            .retry(Duration::from_millis(1500))
            .data("line 1\nline 2\r\nline 3\rline 4");
        assert_eq!(
            event.encode(),
            ": hello\n: there\nevent: updateevil: 1\nid: 7\nretry: 1500\n\
             data: line 1\ndata: line 2\ndata: line 3\ndata: line 4\n\n"
        );
        assert_eq!(Event::new().data("").encode(), "data: \n\n");
        assert_eq!(
            Event::new().json_data(&[1, 2]).unwrap().encode(),
            "data: [1,2]\n\n"
        );
    }

    #[test]
    fn a_handler_streams_one_chunk_per_event() {
        async fn events() -> Sse<impl Stream<Item = Event> + Send + 'static> {
            Sse::new(futures_lite::stream::iter(
                ["a", "b"].map(|d| Event::new().data(d)),
            ))
        }
        let service = App::new().get("/events", events).build().unwrap();
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = "/events".parse().unwrap();
        let response = block_on(service.call(request));
        assert_eq!(response.headers()[CONTENT_TYPE], EVENT_STREAM);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
        let mut body = response.into_body();
        let mut chunks = Vec::new();
        while let Some(frame) = block_on(body.frame()) {
            chunks.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(chunks, ["data: a\n\n", "data: b\n\n"]);
    }

    #[test]
    fn events_go_out_before_the_stream_ends() {
        // One event, then a stream that never ends: the event is not held back.
        let events = futures_lite::StreamExt::chain(
            futures_lite::stream::once(Event::new().data("first")),
            futures_lite::stream::pending(),
        );
        let mut body = Sse::new(events).into_response().into_body();
        let first = block_on(body.frame()).unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "data: first\n\n");
        assert!(block_on(poll_once(body.frame())).is_none());
    }

    struct Switch(Arc<AtomicBool>);
    impl ShutdownSource for Switch {
        fn is_triggered(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
        fn wait(&self) -> weft_service::runtime::BoxFuture<()> {
            let flag = Arc::clone(&self.0);
            Box::pin(std::future::poll_fn(move |cx| {
                if flag.load(Ordering::SeqCst) {
                    Poll::Ready(())
                } else {
                    // Tests poll again by hand; no waker is kept.
                    let _ = cx;
                    Poll::Pending
                }
            }))
        }
    }

    #[test]
    fn the_shutdown_signal_ends_an_endless_stream() {
        let flag = Arc::new(AtomicBool::new(false));
        let signal = ShutdownSignal::new(Switch(Arc::clone(&flag)));
        let events = futures_lite::StreamExt::chain(
            futures_lite::stream::once(Event::new().data("x")),
            futures_lite::stream::pending(),
        );
        let mut body = Sse::new(events)
            .with_shutdown(signal)
            .into_response()
            .into_body();
        assert!(block_on(body.frame()).is_some());
        assert!(block_on(poll_once(body.frame())).is_none());
        flag.store(true, Ordering::SeqCst);
        assert!(block_on(body.frame()).is_none());
        assert!(http_body::Body::is_end_stream(&body));
    }

    /// A runtime whose timer fires at once, so that keep-alives come without waiting.
    struct InstantTimer;
    impl RuntimeServices for InstantTimer {
        fn name(&self) -> &'static str {
            "instant-timer"
        }
        fn spawn(&self, task: weft_service::runtime::BoxFuture<()>) {
            drop(task);
        }
        fn sleep_until(&self, _deadline: Instant) -> weft_service::runtime::BoxFuture<()> {
            Box::pin(std::future::ready(()))
        }
        fn spawn_blocking(
            &self,
            work: BlockingWork,
        ) -> weft_service::runtime::BoxFuture<Box<dyn std::any::Any + Send>> {
            Box::pin(std::future::ready(work()))
        }
    }

    #[test]
    fn a_quiet_stream_gets_keep_alive_comments_where_a_runtime_is_current() {
        let runtime = RuntimeHandle::new(InstantTimer, ShutdownSignal::never());
        let mut body = runtime.enter(|| {
            Sse::new(futures_lite::stream::pending())
                .keep_alive_comment(Duration::from_secs(15), "ping")
                .into_response()
                .into_body()
        });
        for _ in 0..2 {
            let frame = block_on(body.frame()).unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), ": ping\n\n");
        }
        // Outside a runtime, there is no timer: no keep-alive, and no panic.
        let mut quiet = Sse::new(futures_lite::stream::pending())
            .keep_alive(Duration::from_secs(1))
            .into_response()
            .into_body();
        assert!(block_on(poll_once(quiet.frame())).is_none());
    }

    #[test]
    fn the_current_servers_signal_is_the_default() {
        let flag = Arc::new(AtomicBool::new(true));
        let runtime =
            RuntimeHandle::new(InstantTimer, ShutdownSignal::new(Switch(Arc::clone(&flag))));
        let mut body = runtime.enter(|| {
            Sse::new(futures_lite::stream::pending())
                .into_response()
                .into_body()
        });
        assert!(block_on(body.frame()).is_none());
    }
}
