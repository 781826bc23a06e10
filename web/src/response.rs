//! Responses: [`IntoResponse`] and the shapes handlers answer with (text, HTML, JSON, bytes,
//! streams, redirects), plus [`ResponseExt`] for building them on `Response` itself.

use std::convert::Infallible;

use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use serde::Serialize;
use weft_service::body::Body;

use crate::error::Error;

/// The response type of the framework.
pub type Response = http::Response<Body>;

/// What a handler may return: anything that becomes a response.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a response",
    label = "a handler returns something that implements `IntoResponse`",
    note = "return a `String`, `&'static str`, `Html<_>`, `Json<_>`, `Bytes`, `StatusCode`, `(StatusCode, _)`, `Response`, `Redirect`, or a `Result<_, E>` of one where `E: Into<weft::Error>`"
)]
pub trait IntoResponse {
    /// Makes the response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Body::empty())
    }
}

impl IntoResponse for Infallible {
    fn into_response(self) -> Response {
        match self {}
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self;
        response
    }
}

fn with_type(body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

const TEXT: &str = "text/plain; charset=utf-8";
const OCTETS: &str = "application/octet-stream";

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        with_type(Body::from(self), TEXT)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        with_type(Body::from(self), TEXT)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        with_type(Body::from(self), OCTETS)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        with_type(Body::from(self), OCTETS)
    }
}

impl IntoResponse for &'static [u8] {
    fn into_response(self) -> Response {
        with_type(Body::from(Bytes::from_static(self)), OCTETS)
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        *response.status_mut() = self.0;
        response
    }
}

impl<T: IntoResponse> IntoResponse for (HeaderMap, T) {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        response.headers_mut().extend(self.0);
        response
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, HeaderMap, T) {
    fn into_response(self) -> Response {
        let mut response = (self.1, self.2).into_response();
        *response.status_mut() = self.0;
        response
    }
}

impl<T: IntoResponse, const N: usize> IntoResponse for ([(HeaderName, HeaderValue); N], T) {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        for (name, value) in self.0 {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl<T: IntoResponse, const N: usize> IntoResponse
    for (StatusCode, [(HeaderName, HeaderValue); N], T)
{
    fn into_response(self) -> Response {
        let mut response = (self.1, self.2).into_response();
        *response.status_mut() = self.0;
        response
    }
}

/// An HTML page: `text/html; charset=utf-8`.
#[derive(Debug, Clone)]
pub struct Html<T>(pub T);

impl<T: Into<Body>> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        with_type(self.0.into(), "text/html; charset=utf-8")
    }
}

/// A JSON document as a response (`application/json`), or a JSON request body as an
/// extractor (see [`crate::extract`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => with_type(Body::from(bytes), "application/json"),
            Err(error) => {
                tracing::error!(%error, "a response could not be serialized to JSON");
                Error::from(error).to_response(crate::problem::ErrorFormat::ProblemJson)
            }
        }
    }
}

/// A redirect: `Location` and a 3xx status.
#[derive(Debug, Clone)]
pub struct Redirect {
    status: StatusCode,
    location: HeaderValue,
}

impl Redirect {
    fn new(status: StatusCode, location: &str) -> Self {
        // A location that is not a valid header value (a control character) is percent-
        // encoded rather than dropped.
        let location = HeaderValue::from_str(location).unwrap_or_else(|_| {
            let encoded =
                percent_encoding::utf8_percent_encode(location, percent_encoding::CONTROLS)
                    .to_string();
            HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static("/"))
        });
        Redirect { status, location }
    }

    /// `303 See Other`: after a form post, go and GET `location`.
    pub fn to(location: &str) -> Self {
        Redirect::new(StatusCode::SEE_OTHER, location)
    }

    /// `307 Temporary Redirect`: the same request again, at `location`, this time.
    pub fn temporary(location: &str) -> Self {
        Redirect::new(StatusCode::TEMPORARY_REDIRECT, location)
    }

    /// `308 Permanent Redirect`: the same request again at `location`, from now on.
    pub fn permanent(location: &str) -> Self {
        Redirect::new(StatusCode::PERMANENT_REDIRECT, location)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The target.
    pub fn location(&self) -> &HeaderValue {
        &self.location
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.headers_mut().insert(LOCATION, self.location);
        response
    }
}

/// Builders on [`Response`] itself: `Response::redirect("/login")`, `Response::json(&value)`.
pub trait ResponseExt: Sized {
    /// `303 See Other` to `location`.
    fn redirect(location: &str) -> Self;
    /// `308 Permanent Redirect` to `location`.
    fn permanent_redirect(location: &str) -> Self;
    /// `307 Temporary Redirect` to `location`.
    fn temporary_redirect(location: &str) -> Self;
    /// `text/plain` with `text`.
    fn text(text: impl Into<String>) -> Self;
    /// `text/html` with `html`.
    fn html(html: impl Into<String>) -> Self;
    /// `application/json` with `value` serialized.
    fn json<T: Serialize>(value: &T) -> Self;
    /// An empty response with `status`.
    fn status(status: StatusCode) -> Self;
    /// A streamed body (chunked on HTTP/1.1) with `content_type`: see
    /// [`Body::channel`](weft_service::body::Body::channel) for the sender.
    fn stream(content_type: &'static str, body: Body) -> Self;
}

impl ResponseExt for Response {
    fn redirect(location: &str) -> Self {
        Redirect::to(location).into_response()
    }

    fn permanent_redirect(location: &str) -> Self {
        Redirect::permanent(location).into_response()
    }

    fn temporary_redirect(location: &str) -> Self {
        Redirect::temporary(location).into_response()
    }

    fn text(text: impl Into<String>) -> Self {
        text.into().into_response()
    }

    fn html(html: impl Into<String>) -> Self {
        Html(html.into()).into_response()
    }

    fn json<T: Serialize>(value: &T) -> Self {
        Json(value).into_response()
    }

    fn status(status: StatusCode) -> Self {
        status.into_response()
    }

    fn stream(content_type: &'static str, body: Body) -> Self {
        with_type(body, content_type)
    }
}

/// What a handler's return value becomes: a response, or an error for the exception filters.
///
/// Implemented for every [`IntoResponse`] and for `Result<T, E>` where `T: IntoResponse` and
/// `E: Into<Error>`, so handlers can use `?`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not something a handler can return",
    note = "return a type implementing `IntoResponse`, or `Result<T, E>` with `T: IntoResponse` and `E: Into<weft::Error>` (any `std::error::Error` is)"
)]
pub trait IntoOutcome {
    /// The response, or the error.
    fn into_outcome(self) -> Result<Response, Error>;
}

impl<T: IntoResponse> IntoOutcome for T {
    fn into_outcome(self) -> Result<Response, Error> {
        Ok(self.into_response())
    }
}

/// An error returned as it is goes to the exception filters, like `Err(error)`.
impl IntoOutcome for Error {
    fn into_outcome(self) -> Result<Response, Error> {
        Err(self)
    }
}

impl<T: IntoResponse, E: Into<Error>> IntoOutcome for Result<T, E> {
    fn into_outcome(self) -> Result<Response, Error> {
        self.map(IntoResponse::into_response).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_have_their_status_and_location() {
        for (response, status) in [
            (Response::redirect("/a"), 303),
            (Response::temporary_redirect("/a"), 307),
            (Response::permanent_redirect("/a"), 308),
        ] {
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[LOCATION], "/a");
        }
    }

    #[test]
    fn a_location_with_control_characters_is_encoded() {
        let response = Response::redirect("/a\nSet-Cookie: x");
        assert_eq!(response.headers()[LOCATION], "/a%0ASet-Cookie: x");
    }

    #[test]
    fn results_become_outcomes() {
        let ok: Result<&'static str, Error> = Ok("hi");
        assert!(ok.into_outcome().is_ok());
        let err: Result<&'static str, std::io::Error> = Err(std::io::Error::other("x"));
        assert_eq!(
            err.into_outcome().unwrap_err().status_code(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
