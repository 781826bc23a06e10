//! Bodies for the error responses an HTTP/1.1 server connection writes by itself (`400`,
//! `408`, `413`, `414`, `417`, `431`, `501`, `505`), when it refuses a request before any
//! application saw it: [`ErrorPages`].
//!
//! By default those responses have an empty body. A server that wants its own page (an HTML
//! explanation, a JSON problem document) gives the connection a table of them, built once per
//! server, not per request: plain data, so the core stays free of callbacks and locks.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

/// The body and content type of one error response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorPage {
    /// The status this page answers.
    pub status: StatusCode,
    /// The `content-type` sent with it.
    pub content_type: HeaderValue,
    /// The body.
    pub body: Bytes,
}

impl ErrorPage {
    /// A page of `body`, as `content_type`, answering `status`.
    pub fn new(status: StatusCode, content_type: HeaderValue, body: impl Into<Bytes>) -> Self {
        ErrorPage {
            status,
            content_type,
            body: body.into(),
        }
    }
}

/// The pages a [`ServerConnection`](super::ServerConnection) sends with the error responses
/// it writes by itself; statuses without a page keep an empty body. Set with
/// [`ServerConnection::set_error_pages`](super::ServerConnection::set_error_pages).
///
/// Cloning is cheap: the bodies are [`Bytes`], shared, and there are at most a few pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorPages {
    pages: Vec<ErrorPage>,
}

impl ErrorPages {
    /// Every status a server connection answers by itself, for [`from_fn`](Self::from_fn).
    pub const STATUSES: [StatusCode; 8] = [
        StatusCode::BAD_REQUEST,
        StatusCode::REQUEST_TIMEOUT,
        StatusCode::PAYLOAD_TOO_LARGE,
        StatusCode::URI_TOO_LONG,
        StatusCode::EXPECTATION_FAILED,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        StatusCode::NOT_IMPLEMENTED,
        StatusCode::HTTP_VERSION_NOT_SUPPORTED,
    ];

    /// No pages: every error response has an empty body (the default).
    pub fn new() -> Self {
        ErrorPages::default()
    }

    /// The table `page` gives: it is asked once for each of [`STATUSES`](Self::STATUSES),
    /// now, and never again (its answers are kept).
    pub fn from_fn(mut page: impl FnMut(StatusCode) -> Option<ErrorPage>) -> Self {
        let mut pages = ErrorPages::new();
        for status in Self::STATUSES {
            if let Some(mut found) = page(status) {
                found.status = status;
                pages.insert(found);
            }
        }
        pages
    }

    /// Adds `page`, replacing any page for the same status.
    pub fn insert(&mut self, page: ErrorPage) {
        self.pages.retain(|p| p.status != page.status);
        self.pages.push(page);
    }

    /// The page for `status`, if any.
    pub fn get(&self, status: StatusCode) -> Option<&ErrorPage> {
        self.pages.iter().find(|p| p.status == status)
    }

    /// Whether there is no page at all.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::Limits;
    use crate::h1::{ServerConnection, ServerEvent};

    fn html(status: StatusCode) -> Option<ErrorPage> {
        (status == StatusCode::URI_TOO_LONG).then(|| {
            ErrorPage::new(
                status,
                HeaderValue::from_static("text/html; charset=utf-8"),
                "<h1>414</h1>",
            )
        })
    }

    /// What a connection with `pages` answers to `input`.
    fn answer(pages: ErrorPages, limits: Limits, input: &[u8]) -> String {
        let now = crate::test_clock::start();
        let mut conn = ServerConnection::new(limits, now);
        conn.set_error_pages(pages);
        conn.receive(now, input);
        while let Some(event) = conn.poll_event() {
            if let ServerEvent::Error(_) = event {
                break;
            }
        }
        let mut out = Vec::new();
        while let Some(bytes) = conn.poll_transmit(now) {
            out.extend_from_slice(&bytes);
        }
        assert!(conn.is_closed());
        String::from_utf8(out).unwrap()
    }

    fn long_target() -> (Limits, Vec<u8>) {
        let limits = Limits {
            max_request_target_len: 16,
            ..Limits::default()
        };
        let request = format!("GET /{} HTTP/1.1\r\nhost: a\r\n\r\n", "x".repeat(64));
        (limits, request.into_bytes())
    }

    #[test]
    fn a_page_is_sent_with_its_content_type_and_length() {
        let (limits, request) = long_target();
        let out = answer(ErrorPages::from_fn(html), limits, &request);
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        assert!(
            out.contains("\r\ncontent-type: text/html; charset=utf-8\r\n"),
            "{out}"
        );
        assert!(out.contains("\r\ncontent-length: 12\r\n"), "{out}");
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n<h1>414</h1>"), "{out}");
    }

    #[test]
    fn without_a_page_the_body_stays_empty() {
        let (limits, request) = long_target();
        let out = answer(ErrorPages::new(), limits, &request);
        assert!(out.contains("\r\ncontent-length: 0\r\n"), "{out}");
        assert!(!out.contains("content-type"), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        // A table with pages for other statuses changes nothing for this one.
        let out = answer(
            ErrorPages::from_fn(html),
            Limits::default(),
            b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(
            out.ends_with("content-length: 0\r\nconnection: close\r\n\r\n"),
            "{out}"
        );
    }

    #[test]
    fn from_fn_asks_each_status_once_and_keeps_the_answers() {
        let mut asked = Vec::new();
        let pages = ErrorPages::from_fn(|status| {
            asked.push(status);
            // The status in the page is the one asked for, whatever the closure wrote.
            Some(ErrorPage::new(
                StatusCode::OK,
                HeaderValue::from_static("text/plain"),
                status.as_str().to_owned(),
            ))
        });
        assert_eq!(asked, ErrorPages::STATUSES);
        let page = pages.get(StatusCode::URI_TOO_LONG).unwrap();
        assert_eq!(page.status, StatusCode::URI_TOO_LONG);
        assert_eq!(page.body, "414");
        assert!(pages.get(StatusCode::OK).is_none());
    }

    #[test]
    fn insert_replaces_the_page_of_the_same_status() {
        let mut pages = ErrorPages::new();
        assert!(pages.is_empty());
        let plain = HeaderValue::from_static("text/plain");
        pages.insert(ErrorPage::new(
            StatusCode::BAD_REQUEST,
            plain.clone(),
            "one",
        ));
        pages.insert(ErrorPage::new(StatusCode::BAD_REQUEST, plain, "two"));
        assert_eq!(pages.get(StatusCode::BAD_REQUEST).unwrap().body, "two");
    }
}
