//! Exception filters: turn errors into responses, by error type, per route, group or app
//! (NestJS's `@Catch`). The most specific filter is asked first (route, then group, then
//! app); one that passes (`Err(error)`) hands the error on; the last resort is the default,
//! which logs the error and answers its [`Problem`](crate::Problem) as problem+json (or HTML
//! where the route says so).

use std::sync::Arc;

use http::{Method, Uri};

use crate::error::Error;
use crate::problem::ErrorFormat;
use crate::response::{IntoResponse, Response};

/// What a filter knows about the failed request.
#[derive(Debug, Clone)]
pub struct ErrorContext {
    /// The request's method.
    pub method: Method,
    /// The request's URI.
    pub uri: Uri,
    /// The route pattern that matched, if any.
    pub route: Option<Arc<str>>,
    /// The error format of the route.
    pub format: ErrorFormat,
}

/// Turns errors into responses.
pub trait ExceptionFilter: Send + Sync + 'static {
    /// Answers the error, or hands it on (`Err`) to the next filter.
    fn catch(&self, error: Error, context: &ErrorContext) -> Result<Response, Error>;
}

/// A filter for errors whose original type is `E`: `on(|error: &MyError, context| ...)`.
pub fn on<E, F, R>(f: F) -> On<E, F>
where
    E: std::error::Error + 'static,
    F: Fn(&E, &ErrorContext) -> R + Send + Sync + 'static,
    R: IntoResponse,
{
    On {
        f,
        _error: std::marker::PhantomData,
    }
}

/// See [`on`].
pub struct On<E, F> {
    f: F,
    _error: std::marker::PhantomData<fn(&E)>,
}

impl<E, F, R> ExceptionFilter for On<E, F>
where
    E: std::error::Error + 'static,
    F: Fn(&E, &ErrorContext) -> R + Send + Sync + 'static,
    R: IntoResponse,
{
    fn catch(&self, error: Error, context: &ErrorContext) -> Result<Response, Error> {
        match error.downcast_ref::<E>() {
            Some(typed) => Ok((self.f)(typed, context).into_response()),
            None => Err(error),
        }
    }
}

/// A filter for every error: `catch_all(|error, context| ...)`.
pub fn catch_all<F, R>(f: F) -> CatchAll<F>
where
    F: Fn(&Error, &ErrorContext) -> R + Send + Sync + 'static,
    R: IntoResponse,
{
    CatchAll(f)
}

/// See [`catch_all`].
pub struct CatchAll<F>(F);

impl<F, R> ExceptionFilter for CatchAll<F>
where
    F: Fn(&Error, &ErrorContext) -> R + Send + Sync + 'static,
    R: IntoResponse,
{
    fn catch(&self, error: Error, context: &ErrorContext) -> Result<Response, Error> {
        Ok((self.0)(&error, context).into_response())
    }
}

/// The last resort: logs the error (5xx at `error` level with its cause, 4xx at `debug`) and
/// answers its problem, with the request path as `instance`, in the route's format.
pub fn render_default(error: Error, context: &ErrorContext) -> Response {
    let status = error.status_code();
    if status.is_server_error() {
        tracing::error!(
            method = %context.method,
            path = context.uri.path(),
            status = status.as_u16(),
            error = %error.source(),
            "request failed"
        );
    } else {
        tracing::debug!(
            method = %context.method,
            path = context.uri.path(),
            status = status.as_u16(),
            %error,
            "request rejected"
        );
    }
    let mut error = error;
    error.problem_mut().instance = Some(context.uri.path().to_owned());
    error.to_response(context.format)
}
