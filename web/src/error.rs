//! [`Error`]: what handlers, extractors, guards, pipes, interceptors and middleware fail with.
//!
//! An `Error` carries the original error (so that exception filters can catch it by type) and
//! the [`Problem`] it is answered with when no filter takes it. Errors the framework makes
//! (rejections) carry their own status and problem; any other error becomes a `500` whose
//! detail is logged, not shown.

use std::fmt;

use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::problem::Problem;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error on its way to becoming a response.
///
/// `?` turns any `std::error::Error` into one (answered `500`, the cause logged and hidden
/// from the client). Errors that know their status implement [`HttpError`] and are wrapped
/// with [`Error::http`], or are built from a [`Problem`].
pub struct Error(Box<Inner>);

/// What an [`Error`] holds, boxed so that `Result<T, Error>` stays one pointer wide.
struct Inner {
    source: BoxError,
    problem: Problem,
    /// Whether the error's own message may be shown to the client (rejections and problems:
    /// yes; unexpected errors: no, they may leak internals).
    public: bool,
    /// Headers the answer carries (`Allow` on a 405, `WWW-Authenticate` on a 401).
    headers: Option<Box<HeaderMap>>,
}

/// An error type that knows how it is answered.
pub trait HttpError: std::error::Error + Send + Sync + 'static {
    /// The status code it is answered with.
    fn status(&self) -> StatusCode;

    /// The problem document; by default the status with the error's message as detail.
    fn problem(&self) -> Problem {
        Problem::new(self.status()).with_detail(self.to_string())
    }
}

impl Error {
    /// An error whose answer the error itself knows.
    pub fn http<E: HttpError>(error: E) -> Self {
        let problem = error.problem();
        Error(Box::new(Inner {
            source: Box::new(error),
            problem,
            public: true,
            headers: None,
        }))
    }

    /// An error answered with `status`; the error's message is shown to the client as the
    /// problem's detail for 4xx statuses, hidden for 5xx.
    pub fn with_status(status: StatusCode, error: impl Into<BoxError>) -> Self {
        let source = error.into();
        let public = status.is_client_error();
        let mut problem = Problem::new(status);
        if public {
            problem.detail = Some(source.to_string());
        }
        Error(Box::new(Inner {
            source,
            problem,
            public,
            headers: None,
        }))
    }

    /// A client error with `status` and a human message.
    pub fn status(status: StatusCode, detail: impl Into<String>) -> Self {
        Error::from_problem(Problem::new(status).with_detail(detail))
    }

    /// `400 Bad Request` with a message.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Error::status(StatusCode::BAD_REQUEST, detail)
    }

    /// `401 Unauthorized` with a message.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Error::status(StatusCode::UNAUTHORIZED, detail)
    }

    /// `403 Forbidden` with a message.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Error::status(StatusCode::FORBIDDEN, detail)
    }

    /// `404 Not Found` with a message.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Error::status(StatusCode::NOT_FOUND, detail)
    }

    /// An error that is exactly this problem.
    pub fn from_problem(problem: Problem) -> Self {
        Error(Box::new(Inner {
            source: Box::new(problem.clone()),
            problem,
            public: true,
            headers: None,
        }))
    }

    /// The status code the error is answered with when no filter takes it.
    pub fn status_code(&self) -> StatusCode {
        self.0.problem.status
    }

    /// The problem the error is answered with when no filter takes it.
    pub fn problem(&self) -> &Problem {
        &self.0.problem
    }

    /// Mutable access to the problem, to add a code or detail on the way out.
    pub fn problem_mut(&mut self) -> &mut Problem {
        &mut self.0.problem
    }

    /// Adds a header to the answer (`Allow`, `WWW-Authenticate`, `Retry-After`).
    pub fn set_header(&mut self, name: HeaderName, value: HeaderValue) {
        self.0
            .headers
            .get_or_insert_with(Default::default)
            .insert(name, value);
    }

    /// Adds a header to the answer, builder style.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.set_header(name, value);
        self
    }

    /// The headers the answer carries.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.0.headers.as_deref()
    }

    /// Whether the error's message is meant for the client.
    pub fn is_public(&self) -> bool {
        self.0.public
    }

    /// The original error, when it is an `E`: what exception filters catch by.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.source.downcast_ref::<E>()
    }

    /// Whether the original error is an `E`.
    pub fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.0.source.is::<E>()
    }

    /// The original error.
    pub fn source(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.0.source.as_ref()
    }
}

/// Any error is an `Error`: unexpected ones become `500 Internal Server Error`.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        // A Problem keeps its own status even through `?`.
        let any: BoxError = Box::new(error);
        let any = match any.downcast::<Problem>() {
            Ok(problem) => return Error::from_problem(*problem),
            Err(any) => any,
        };
        match known_problem(any.as_ref()) {
            Some(problem) => Error(Box::new(Inner {
                source: any,
                problem,
                public: true,
                headers: None,
            })),
            None => Error(Box::new(Inner {
                source: any,
                problem: Problem::new(StatusCode::INTERNAL_SERVER_ERROR),
                public: false,
                headers: None,
            })),
        }
    }
}

impl Error {
    /// The default answer: the problem (in `format`) with the error's headers.
    pub fn to_response(&self, format: crate::problem::ErrorFormat) -> crate::Response {
        let mut response = self.0.problem.to_response(format);
        if let Some(headers) = &self.0.headers {
            for (name, value) in headers.iter() {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response
    }
}

/// The problem of the framework's own error types, so that `?` on them (a multipart field's
/// `bytes().await?`, say) keeps their status instead of becoming a `500`. Other error types
/// that know their status are wrapped with [`Error::http`].
fn known_problem(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<Problem> {
    use crate::extract::{
        BodyRejection, FormRejection, JsonRejection, PathRejection, QueryRejection,
    };
    fn problem_of<E: HttpError>(
        error: &(dyn std::error::Error + Send + Sync + 'static),
    ) -> Option<Problem> {
        error.downcast_ref::<E>().map(HttpError::problem)
    }
    problem_of::<crate::multipart::MultipartError>(error)
        .or_else(|| problem_of::<JsonRejection>(error))
        .or_else(|| problem_of::<FormRejection>(error))
        .or_else(|| problem_of::<BodyRejection>(error))
        .or_else(|| problem_of::<QueryRejection>(error))
        .or_else(|| problem_of::<PathRejection>(error))
        .or_else(|| problem_of::<weft_core::multipart::MultipartError>(error))
}

impl HttpError for weft_core::multipart::MultipartError {
    fn status(&self) -> StatusCode {
        weft_core::multipart::MultipartError::status(self)
    }

    fn problem(&self) -> Problem {
        crate::multipart::MultipartError::Parse(self.clone()).problem()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("status", &self.0.problem.status)
            .field("source", &self.0.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.public {
            fmt::Display::fmt(&self.0.problem, f)
        } else {
            write!(f, "{}: {}", self.0.problem.status, self.0.source)
        }
    }
}

/// Writes a body the shape of the rejections a `Result` alias needs.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Hidden;
    impl fmt::Display for Hidden {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("password=hunter2")
        }
    }
    impl std::error::Error for Hidden {}

    #[test]
    fn unexpected_errors_are_500_and_hide_their_message() {
        let error = Error::from(Hidden);
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(error.problem().detail.is_none());
        assert!(error.is::<Hidden>());
    }

    #[test]
    fn a_problem_keeps_its_status_through_question_mark() {
        fn fails() -> Result<()> {
            Err(Problem::new(StatusCode::CONFLICT).with_detail("taken"))?;
            Ok(())
        }
        let error = fails().unwrap_err();
        assert_eq!(error.status_code(), StatusCode::CONFLICT);
        assert_eq!(error.problem().detail.as_deref(), Some("taken"));
    }
}
