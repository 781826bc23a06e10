//! [`TestError`]: why a test request got no complete response.

use std::fmt;
use std::time::Duration;

/// Why [`TestRequest::try_send`](super::TestRequest::try_send) got no complete response.
/// [`TestRequest::send`](super::TestRequest::send) panics with its message instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TestError {
    /// The response was not complete within the deadline: the handler never answered, its
    /// body never ended, or it waits for something that never comes.
    Deadline {
        /// The request, as `GET /path`.
        request: String,
        /// The deadline that passed.
        deadline: Duration,
        /// What had arrived by then.
        received: String,
    },
    /// The connection failed or closed before the response was complete: the dispatcher
    /// refused the request at the protocol level (an HTTP/2 stream reset or GOAWAY, say), or
    /// sent something the client role rejects.
    Connection {
        /// The request, as `GET /path`.
        request: String,
        /// What went wrong, with what had arrived.
        reason: String,
    },
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Deadline {
                request,
                deadline,
                received,
            } => write!(
                f,
                "{request}: no complete response within the test deadline of {deadline:?}: the \
                 handler never answered, or its body never ended ({received}); a slow handler \
                 may get a longer deadline with TestClient::deadline or TestRequest::deadline"
            ),
            TestError::Connection { request, reason } => {
                write!(f, "{request}: the connection failed: {reason}")
            }
        }
    }
}

impl std::error::Error for TestError {}
