//! The HTTP/1.1 `Upgrade: h2c` request (RFC 7540 §3.2), recognised so that its connection can
//! go on in HTTP/2 after a `101 Switching Protocols`.
//!
//! RFC 9113 §3.1 deprecates this upgrade, but `curl --http2` and other clients still use it
//! on cleartext connections. Only a request without a body is upgraded: one with a body
//! would have to be read whole over HTTP/1.1 before the switch (RFC 7540 §3.2), so it is
//! simply served over HTTP/1.1, its `Upgrade` ignored as RFC 9110 §7.8 allows.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{CONNECTION, HeaderName, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request};
use weft_core::h1::{BodyFraming, RequestHead};
use weft_core::h2::Settings;
use weft_service::body::Body;

/// The upgrade token of cleartext HTTP/2.
const H2C: &[u8] = b"h2c";

/// The field carrying the client's SETTINGS payload, base64url-encoded.
pub(super) const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// An HTTP/1.1 connection handed over to HTTP/2 after our `101` (RFC 7540 §3.2).
pub(super) struct H2cUpgrade {
    /// The request that asked for the upgrade, answered on stream 1.
    pub(super) request: Request<Body>,
    /// The client's SETTINGS from its `HTTP2-Settings` field.
    pub(super) settings: Settings,
    /// Bytes received after the request: the start of HTTP/2 (the client preface).
    pub(super) leftover: Bytes,
    /// Output not written yet: the `101` itself.
    pub(super) output: Bytes,
}

/// The client's SETTINGS when `head` is an `h2c` upgrade we take: `Upgrade` names `h2c`,
/// `Connection` names `Upgrade` and `HTTP2-Settings`, exactly one `HTTP2-Settings` field
/// holds a valid SETTINGS payload (RFC 7540 §3.2.1), and there is no body.
pub(super) fn h2c_settings(head: &RequestHead) -> Option<Settings> {
    if !head.wants_upgrade || head.method == Method::CONNECT || head.body != BodyFraming::Empty {
        return None;
    }
    let headers = &head.headers;
    if !lists_token(headers, &UPGRADE, H2C) || !lists_token(headers, &CONNECTION, b"http2-settings")
    {
        return None;
    }
    let mut values = headers.get_all(HTTP2_SETTINGS).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    // token68 allows trailing `=` padding, which base64url for HTTP2-Settings omits.
    let encoded = value.as_bytes();
    let unpadded = encoded
        .iter()
        .rposition(|&b| b != b'=')
        .map_or(&[][..], |end| &encoded[..=end]);
    let payload = URL_SAFE_NO_PAD.decode(unpadded).ok()?;
    Settings::from_payload(&payload).ok()
}

/// The head of our `101` to an `h2c` upgrade.
pub(super) fn switching_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("h2c"));
    headers
}

/// Removes the fields that asked for the upgrade: they concerned the HTTP/1.1 connection, and
/// the request is answered over HTTP/2, where connection-specific fields do not exist
/// (RFC 9113 §8.2.2).
pub(super) fn strip_upgrade_fields(headers: &mut HeaderMap) {
    headers.remove(CONNECTION);
    headers.remove(UPGRADE);
    headers.remove(HTTP2_SETTINGS);
}

/// Whether a comma-separated list field names `token` (case-insensitively).
fn lists_token(headers: &HeaderMap, name: &HeaderName, token: &[u8]) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use weft_core::Limits;
    use weft_core::h1::{ServerConnection, ServerEvent};

    use super::*;

    fn head(request: &str) -> RequestHead {
        let mut conn = ServerConnection::new(Limits::default(), Instant::now());
        conn.receive(Instant::now(), request.as_bytes());
        match conn.poll_event() {
            Some(ServerEvent::Request(head)) => *head,
            other => panic!("no request: {other:?}"),
        }
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS = 100, SETTINGS_INITIAL_WINDOW_SIZE = 65535, as curl
    /// sends them.
    const CURL_SETTINGS: &str = "AAMAAABkAAQAAP__";

    #[test]
    fn curl_upgrade_is_taken_with_its_settings() {
        let head = head(&format!(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: h2c\r\nHTTP2-Settings: {CURL_SETTINGS}\r\n\r\n"
        ));
        let settings = h2c_settings(&head).expect("an h2c upgrade");
        assert_eq!(settings.get(Settings::MAX_CONCURRENT_STREAMS), Some(100));
        assert_eq!(settings.get(Settings::INITIAL_WINDOW_SIZE), Some(65535));
    }

    #[test]
    fn an_upgrade_with_a_body_is_served_as_http1() {
        let head = head(&format!(
            "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: h2c\r\nHTTP2-Settings: {CURL_SETTINGS}\r\nContent-Length: 3\r\n\r\nabc"
        ));
        assert!(h2c_settings(&head).is_none());
    }

    #[test]
    fn an_upgrade_needs_exactly_one_valid_settings_field() {
        let base = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                    Upgrade: h2c\r\n";
        assert!(h2c_settings(&head(&format!("{base}\r\n"))).is_none());
        let twice = format!(
            "{base}HTTP2-Settings: {CURL_SETTINGS}\r\nHTTP2-Settings: {CURL_SETTINGS}\r\n\r\n"
        );
        assert!(h2c_settings(&head(&twice)).is_none());
        let not_base64 = format!("{base}HTTP2-Settings: !!!\r\n\r\n");
        assert!(h2c_settings(&head(&not_base64)).is_none());
        let odd_length = format!("{base}HTTP2-Settings: AAMAAABkAA\r\n\r\n");
        assert!(h2c_settings(&head(&odd_length)).is_none());
        let empty = format!("{base}HTTP2-Settings: \r\n\r\n");
        assert!(
            h2c_settings(&head(&empty)).is_some(),
            "no parameters is valid"
        );
    }

    #[test]
    fn other_upgrades_and_missing_connection_tokens_are_not_h2c() {
        let websocket = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                         Upgrade: websocket\r\nHTTP2-Settings: \r\n\r\n";
        assert!(h2c_settings(&head(websocket)).is_none());
        let no_settings_token = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\
                                 Upgrade: h2c\r\nHTTP2-Settings: \r\n\r\n";
        assert!(h2c_settings(&head(no_settings_token)).is_none());
    }
}
