//! [`TestResponse`]: a complete response, read through the protocol, with assertions whose
//! failures show what was expected, what came, and the body.

use std::fmt;

use bytes::{Bytes, BytesMut};
use http::header::{AsHeaderName, HeaderMap};
use http::{StatusCode, Version};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What a client has read of a response so far: the whole of it once the response is
/// complete, a part of it when the deadline passed.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// The final head's status, once it arrived.
    pub(crate) status: Option<StatusCode>,
    pub(crate) version: Option<Version>,
    pub(crate) headers: HeaderMap,
    /// Body pieces as they came off the connection (HTTP/1.1 chunks, HTTP/2 DATA frames).
    pub(crate) chunks: Vec<Bytes>,
    pub(crate) trailers: Option<HeaderMap>,
}

impl Received {
    /// A short account of what came, for error messages.
    pub(crate) fn describe(&self) -> String {
        match self.status {
            None => "no response head arrived".to_owned(),
            Some(status) => {
                let body = join(&self.chunks);
                format!(
                    "received so far: status {status}, {} body bytes: {}",
                    body.len(),
                    body_preview(&body)
                )
            }
        }
    }
}

fn join(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut all = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
            for chunk in many {
                all.extend_from_slice(chunk);
            }
            all.freeze()
        }
    }
}

/// Most body bytes shown in a failure message.
const PREVIEW: usize = 2048;

/// The body as text for a failure message: lossy UTF-8, cut after [`PREVIEW`] bytes.
fn body_preview(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    let shown = &body[..body.len().min(PREVIEW)];
    let mut text = format!("{:?}", String::from_utf8_lossy(shown));
    if body.len() > PREVIEW {
        text.push_str(&format!(" ... ({} more bytes)", body.len() - PREVIEW));
    }
    text
}

/// A response the application gave a [`TestClient`](super::TestClient) request, read to its end
/// through the dispatcher and the protocol (HTTP/1.1 or HTTP/2), so it is what a real client
/// would have received: framing applied, `HEAD` bodies dropped, error pages of the protocol
/// core included.
///
/// The assertions (`assert_*`) panic with the expected and actual values and the body, and
/// return `&self` so they chain:
///
/// ```
/// # use weft::prelude::*;
/// # let app = App::new().get("/users/{id}", |Path(id): Path<u32>| async move {
/// #     Json(serde_json::json!({ "id": id, "name": "ada" }))
/// # });
/// # let client = weft::test::TestClient::new(app.build().unwrap());
/// client.get("/users/1").send()
///     .assert_status(200)
///     .assert_header("content-type", "application/json")
///     .assert_json_includes(&serde_json::json!({ "id": 1 }));
/// ```
pub struct TestResponse {
    request: String,
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    chunks: Vec<Bytes>,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

impl TestResponse {
    /// The response to `request` (`"GET /path"`, for messages), from what was received.
    pub(crate) fn new(request: String, received: Received) -> TestResponse {
        let body = join(&received.chunks);
        TestResponse {
            request,
            status: received.status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            version: received.version.unwrap_or(Version::HTTP_11),
            headers: received.headers,
            chunks: received.chunks,
            body,
            trailers: received.trailers,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The protocol the response came over: `HTTP/1.1` or `HTTP/2.0`.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if present and visible ASCII.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Every value of header `name` (several `Set-Cookie`, say), those that are visible ASCII.
    pub fn header_all(&self, name: impl AsHeaderName) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect()
    }

    /// The whole body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body pieces in the order they came off the connection: the chunks of a chunked
    /// HTTP/1.1 body (as the decoder produced them, which may merge or split the server's
    /// chunks when they arrive together or in parts), the DATA frames of an HTTP/2 one. For
    /// a streamed response (chunked, server-sent events) this shows the steps; assert on
    /// their concatenation ([`bytes`](Self::bytes)) when the split does not matter.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The trailer fields, if the body ended with some.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// The body as UTF-8 text.
    ///
    /// # Panics
    /// If the body is not UTF-8; the message shows it.
    #[track_caller]
    pub fn text(&self) -> &str {
        match std::str::from_utf8(&self.body) {
            Ok(text) => text,
            Err(error) => panic!(
                "{}: the body is not UTF-8 ({error}): {}",
                self.request,
                body_preview(&self.body)
            ),
        }
    }

    /// The body parsed as JSON into `T`.
    ///
    /// # Panics
    /// If it does not parse; the message shows the error and the body.
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        match serde_json::from_slice(&self.body) {
            Ok(value) => value,
            Err(error) => panic!(
                "{}: the body is not JSON of type {} ({error}); status {}, body: {}",
                self.request,
                std::any::type_name::<T>(),
                self.status,
                body_preview(&self.body)
            ),
        }
    }

    /// Asserts the status code: `assert_status(404)` or `assert_status(StatusCode::NOT_FOUND)`.
    ///
    /// # Panics
    /// If it differs (or `expected` is not a status code).
    #[track_caller]
    pub fn assert_status<S>(&self, expected: S) -> &Self
    where
        S: TryInto<StatusCode>,
        S::Error: fmt::Debug,
    {
        let expected = match expected.try_into() {
            Ok(status) => status,
            Err(error) => panic!("assert_status: not a status code: {error:?}"),
        };
        if self.status != expected {
            self.fail(&format!("expected status {expected}, got {}", self.status));
        }
        self
    }

    /// Asserts that header `name` is present with exactly `expected` as its (first) value.
    ///
    /// # Panics
    /// If it is missing or differs; the message lists the headers received.
    #[track_caller]
    pub fn assert_header(&self, name: &str, expected: &str) -> &Self {
        let actual = self.header(name);
        if actual != Some(expected) {
            self.fail(&format!(
                "expected header {name}: {expected:?}, got {}; headers: {:?}",
                actual.map_or_else(|| "none".to_owned(), |a| format!("{a:?}")),
                self.headers
            ));
        }
        self
    }

    /// Asserts that header `name` is absent.
    ///
    /// # Panics
    /// If it is present.
    #[track_caller]
    pub fn assert_no_header(&self, name: &str) -> &Self {
        if let Some(value) = self.headers.get(name) {
            self.fail(&format!("expected no header {name}, got {value:?}"));
        }
        self
    }

    /// Asserts that the body is exactly the text `expected`.
    ///
    /// # Panics
    /// If it differs.
    #[track_caller]
    pub fn assert_text(&self, expected: &str) -> &Self {
        if self.body != expected.as_bytes() {
            self.fail(&format!("expected the body {expected:?}"));
        }
        self
    }

    /// Asserts that the body is JSON equal to `expected`.
    ///
    /// # Panics
    /// If the body is not JSON or differs; the message shows both, pretty-printed.
    #[track_caller]
    pub fn assert_json(&self, expected: &Value) -> &Self {
        let actual = self.json_value();
        if &actual != expected {
            self.fail(&format!(
                "expected the JSON body\n{}\ngot\n{}",
                pretty(expected),
                pretty(&actual)
            ));
        }
        self
    }

    /// Asserts that the body is JSON that includes `expected`: every member of an expected
    /// object is in the actual object (which may have more) and includes the expected value,
    /// every element of an expected array includes the expected element at the same index
    /// (the actual array may be longer), and other values are equal.
    ///
    /// # Panics
    /// If the body is not JSON or does not include `expected`; the message names the first
    /// path that differs and shows both documents.
    #[track_caller]
    pub fn assert_json_includes(&self, expected: &Value) -> &Self {
        let actual = self.json_value();
        if let Err(path) = includes(&actual, expected, String::from("$")) {
            self.fail(&format!(
                "the JSON body does not include the expected value (first difference at {path})\nexpected to include\n{}\ngot\n{}",
                pretty(expected),
                pretty(&actual)
            ));
        }
        self
    }

    #[track_caller]
    fn json_value(&self) -> Value {
        match serde_json::from_slice(&self.body) {
            Ok(value) => value,
            Err(error) => self.fail(&format!("expected a JSON body ({error})")),
        }
    }

    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{}: {what}\nstatus: {}\nbody: {}",
            self.request,
            self.status,
            body_preview(&self.body)
        )
    }
}

impl fmt::Debug for TestResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestResponse")
            .field("request", &self.request)
            .field("status", &self.status)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("body", &body_preview(&self.body))
            .field("trailers", &self.trailers)
            .finish()
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Whether `actual` includes `expected` (see [`TestResponse::assert_json_includes`]); the
/// path of the first difference otherwise.
fn includes(actual: &Value, expected: &Value, path: String) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            for (key, expected) in expected {
                let path = format!("{path}.{key}");
                match actual.get(key) {
                    Some(actual) => includes(actual, expected, path)?,
                    None => return Err(path),
                }
            }
            Ok(())
        }
        (Value::Array(actual), Value::Array(expected)) => {
            for (index, expected) in expected.iter().enumerate() {
                let path = format!("{path}[{index}]");
                match actual.get(index) {
                    Some(actual) => includes(actual, expected, path)?,
                    None => return Err(path),
                }
            }
            Ok(())
        }
        (actual, expected) if actual == expected => Ok(()),
        _ => Err(path),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::includes;

    #[test]
    fn includes_accepts_subsets_and_names_the_first_difference() {
        let actual = json!({ "a": 1, "b": { "c": [1, 2, 3], "d": "x" } });
        assert_eq!(
            includes(&actual, &json!({ "b": { "c": [1, 2] } }), "$".into()),
            Ok(())
        );
        assert_eq!(
            includes(&actual, &json!({ "b": { "d": "y" } }), "$".into()),
            Err("$.b.d".to_owned())
        );
        assert_eq!(
            includes(&actual, &json!({ "z": null }), "$".into()),
            Err("$.z".to_owned())
        );
    }
}
