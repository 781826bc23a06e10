//! One request and its response on a [`Link`], whichever the protocol: driven to the end
//! (blocking or async), or chunk by chunk for streamed responses.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::TestError;
use super::link::Link;
use super::request::Prepared;
use super::response::Received;
use super::{Protocol, http1, http2};

/// What has been read of the response, shared with the client side that reads it.
#[derive(Clone, Default)]
pub(crate) struct Progress(Arc<Mutex<Received>>);

impl Progress {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Received> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a client side ended.
#[derive(Debug, Clone)]
pub(crate) enum Done {
    /// The response is complete.
    Complete,
    /// The server switched protocols (`101`); these bytes came after the head.
    Upgraded(Bytes),
}

/// The protocol's client role.
enum Side {
    Http1(Box<http1::Client>),
    Http2(Pin<Box<dyn Future<Output = Result<(), String>> + Send>>),
}

impl Side {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Done, String>> {
        match self {
            Side::Http1(client) => client.poll(),
            Side::Http2(run) => run.as_mut().poll(cx).map_ok(|()| Done::Complete),
        }
    }
}

/// A request in flight on its own connection.
pub(crate) struct Exchange {
    link: Link,
    side: Side,
    progress: Progress,
    /// The client side's end, once it came.
    done: Option<Result<Done, String>>,
    /// The request, as `GET /path`, for messages.
    pub(crate) label: String,
    /// The request's target (path and query), for the cookies of the response.
    pub(crate) target: String,
    /// How long the request may take, for messages.
    deadline: Duration,
}

impl Exchange {
    /// Sends `request` over `link` in `protocol`.
    pub(crate) fn start(link: Link, request: &Prepared, protocol: Protocol) -> Exchange {
        let progress = Progress::default();
        let pipe = link.pipe().clone();
        let side = match protocol {
            Protocol::Http1 => Side::Http1(Box::new(http1::Client::start(
                request,
                pipe,
                progress.clone(),
            ))),
            Protocol::Http2 => Side::Http2(http2::start(request, pipe, progress.clone())),
        };
        Exchange {
            link,
            side,
            progress,
            done: None,
            label: request.label.clone(),
            target: request.target.clone(),
            deadline: request.deadline,
        }
    }

    /// What has been read so far.
    pub(crate) fn received(&self) -> MutexGuard<'_, Received> {
        self.progress.lock()
    }

    /// The connection, once the exchange is over (to go on as a WebSocket).
    pub(crate) fn into_link(self) -> Link {
        self.link
    }

    /// Drives the exchange on this thread until it ends, or until `ready` says what was
    /// received so far is enough; `None` once `deadline` passed.
    pub(crate) fn drive_until(
        &mut self,
        deadline: Instant,
        mut ready: impl FnMut(&Received) -> bool,
    ) -> Option<()> {
        let (side, done, progress) = (&mut self.side, &mut self.done, &self.progress);
        self.link.drive(deadline, |cx| {
            if done.is_none() {
                if let Poll::Ready(end) = side.poll(cx) {
                    *done = Some(end);
                }
            }
            if done.is_some() || ready(&progress.lock()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Drives the exchange on this thread to its end.
    pub(crate) fn run(&mut self, deadline: Instant) -> Result<Done, TestError> {
        let _ = self.drive_until(deadline, |_| false);
        self.outcome()
    }

    /// [`run`](Self::run) as a future.
    pub(crate) async fn run_async(&mut self, deadline: Instant) -> Result<Done, TestError> {
        let (side, done) = (&mut self.side, &mut self.done);
        let _ = self
            .link
            .drive_async(deadline, |cx| {
                if done.is_none() {
                    if let Poll::Ready(end) = side.poll(cx) {
                        *done = Some(end);
                    }
                }
                if done.is_some() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        self.outcome()
    }

    /// Whether the client side has ended (the response is complete, or failed).
    pub(crate) fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// How the exchange ended, once the driving stopped (at the deadline, or before).
    pub(crate) fn outcome(&self) -> Result<Done, TestError> {
        match self.done.clone() {
            Some(Ok(done)) => Ok(done),
            Some(Err(reason)) => Err(TestError::Connection {
                request: self.label.clone(),
                reason: format!("{reason}; {}", self.received().describe()),
            }),
            None => Err(TestError::Deadline {
                request: self.label.clone(),
                deadline: self.deadline,
                received: self.received().describe(),
            }),
        }
    }
}
