//! [`TestStream`]: a response read piece by piece, for bodies that stream (chunked, server-sent
//! events) or never end.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http::header::{AsHeaderName, HeaderMap};

use super::exchange::{Done, Exchange};
use super::response::TestResponse;

/// A response whose head has arrived and whose body is read as it comes, made by
/// [`TestRequest::send_streaming`](super::TestRequest::send_streaming): for event streams,
/// long polls and bodies that never end, which [`send`](super::TestRequest::send) would wait
/// for until its deadline.
///
/// Each call waits at most the request's deadline, counted from the call. Dropping the stream
/// drops the connection, as a client that goes away would.
pub struct TestStream {
    exchange: Exchange,
    status: StatusCode,
    headers: HeaderMap,
    /// Pieces returned by `next_chunk` so far.
    taken: usize,
    deadline: Duration,
}

impl fmt::Debug for TestStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStream")
            .field("request", &self.exchange.label)
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl TestStream {
    /// Waits for the head of the response to `exchange`.
    #[track_caller]
    pub(crate) fn start(mut exchange: Exchange, deadline: Duration) -> TestStream {
        let headed = exchange.drive_until(Instant::now() + deadline, |received| {
            received.status.is_some()
        });
        let (status, headers) = {
            let received = exchange.received();
            (received.status, received.headers.clone())
        };
        let status = match status {
            Some(status) if headed.is_some() => status,
            _ => match exchange.outcome() {
                Err(error) => panic!("{error}"),
                Ok(_) => panic!(
                    "{}: the exchange ended without a response head",
                    exchange.label
                ),
            },
        };
        TestStream {
            exchange,
            status,
            headers,
            taken: 0,
            deadline,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if present and visible ASCII.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The next piece of the body as it came off the connection, or `None` once the body has
    /// ended. Pieces follow the protocol's framing as read (HTTP/1.1 chunks, HTTP/2 DATA
    /// frames); pieces the server sent close together may arrive as one.
    ///
    /// # Panics
    /// If nothing comes and the body does not end within the deadline, or the connection
    /// fails.
    #[track_caller]
    pub fn next_chunk(&mut self) -> Option<Bytes> {
        let taken = self.taken;
        let deadline = Instant::now() + self.deadline;
        let arrived = self
            .exchange
            .drive_until(deadline, |received| received.chunks.len() > taken);
        if let Some(chunk) = self.exchange.received().chunks.get(taken).cloned() {
            self.taken += 1;
            return Some(chunk);
        }
        if arrived.is_some() && self.exchange.is_done() {
            match self.exchange.outcome() {
                Ok(Done::Complete) | Ok(Done::Upgraded(_)) => return None,
                Err(error) => panic!("{error}"),
            }
        }
        panic!(
            "{}: no more of the body within the test deadline of {:?} ({} pieces read)",
            self.exchange.label, self.deadline, self.taken
        )
    }

    /// The next piece of the body as text (lossy UTF-8); `None` once the body has ended.
    ///
    /// # Panics
    /// As [`next_chunk`](Self::next_chunk).
    #[track_caller]
    pub fn next_text(&mut self) -> Option<String> {
        self.next_chunk()
            .map(|chunk| String::from_utf8_lossy(&chunk).into_owned())
    }

    /// Reads the rest of the body: the whole response, as [`send`](super::TestRequest::send)
    /// would have returned it (the pieces already taken included).
    ///
    /// # Panics
    /// If the body does not end within the deadline, or the connection fails.
    #[track_caller]
    pub fn finish(mut self) -> TestResponse {
        let deadline = Instant::now() + self.deadline;
        let _ = self.exchange.drive_until(deadline, |_| false);
        if let Err(error) = self.exchange.outcome() {
            panic!("{error}");
        }
        let received = std::mem::take(&mut *self.exchange.received());
        TestResponse::new(self.exchange.label.clone(), received)
    }
}
