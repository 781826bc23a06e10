//! The opening handshake (RFC 6455 §4): validating a client's upgrade request, computing
//! `Sec-WebSocket-Accept`, building the `101` answer, and the client's side of the same
//! exchange; plus the extended CONNECT of WebSocket over HTTP/2 (RFC 8441 §4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use sha1::{Digest, Sha1};

use crate::h2::{Protocol, RequestHead};

/// The GUID every accept key is derived with (§1.3).
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Key`.
pub const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
/// `Sec-WebSocket-Accept`.
pub const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
/// `Sec-WebSocket-Version`.
pub const SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
/// `Sec-WebSocket-Protocol`.
pub const SEC_WEBSOCKET_PROTOCOL: HeaderName = HeaderName::from_static("sec-websocket-protocol");
/// `Sec-WebSocket-Extensions`.
pub const SEC_WEBSOCKET_EXTENSIONS: HeaderName =
    HeaderName::from_static("sec-websocket-extensions");

/// Why an upgrade request is not a valid WebSocket handshake; each variant knows its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The method is not GET (HTTP/1.1) or not CONNECT (HTTP/2).
    Method,
    /// The request is older than HTTP/1.1.
    Version,
    /// `Upgrade` does not list `websocket`.
    UpgradeHeader,
    /// `Connection` does not list `upgrade`.
    ConnectionHeader,
    /// `Sec-WebSocket-Key` is missing, repeated, or not the base64 of exactly 16 bytes.
    Key,
    /// `Sec-WebSocket-Version` is missing or not 13: answer `426` with
    /// `Sec-WebSocket-Version: 13` so the client can retry (§4.4).
    UnsupportedVersion,
    /// An HTTP/2 extended CONNECT whose `:protocol` is not `websocket`.
    Protocol,
    /// The server's answer to a client handshake is not `101`.
    Status,
    /// The server's `Sec-WebSocket-Accept` is missing or does not match our key.
    Accept,
    /// The server chose a subprotocol we did not offer.
    Subprotocol,
}

impl HandshakeError {
    /// The status a server answers the failed request with: `426` for an unsupported version,
    /// `400` otherwise.
    pub fn status(self) -> StatusCode {
        match self {
            HandshakeError::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Header fields the failure answer must carry (`Sec-WebSocket-Version: 13` with `426`).
    pub fn response_headers(self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self == HandshakeError::UnsupportedVersion {
            headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        headers
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            HandshakeError::Method => "wrong method for a WebSocket handshake",
            HandshakeError::Version => "WebSocket needs HTTP/1.1 or later",
            HandshakeError::UpgradeHeader => "Upgrade does not list websocket",
            HandshakeError::ConnectionHeader => "Connection does not list upgrade",
            HandshakeError::Key => "invalid Sec-WebSocket-Key",
            HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version must be 13",
            HandshakeError::Protocol => ":protocol is not websocket",
            HandshakeError::Status => "the server did not answer 101",
            HandshakeError::Accept => "Sec-WebSocket-Accept does not match the key",
            HandshakeError::Subprotocol => "the server chose a subprotocol that was not offered",
        };
        f.write_str(what)
    }
}

impl std::error::Error for HandshakeError {}

/// One extension offer from `Sec-WebSocket-Extensions`, e.g.
/// `permessage-deflate; client_max_window_bits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Its parameters in order: name and optional value (quotes removed).
    pub params: Vec<(String, Option<String>)>,
}

/// A valid client handshake: what the server needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// `Sec-WebSocket-Key` as sent (absent over HTTP/2, which has no key).
    pub key: Option<String>,
    /// Subprotocols offered, in the client's order of preference.
    pub protocols: Vec<String>,
    /// Extensions offered, in order.
    pub extensions: Vec<ExtensionOffer>,
}

impl Handshake {
    /// The header fields of the success answer (`101` over HTTP/1.1 with Upgrade, Connection
    /// and Sec-WebSocket-Accept; `200` over HTTP/2 with none of them), with `protocol` (which
    /// must be one the client offered) and an already formatted `extensions` answer.
    pub fn response_headers(&self, protocol: Option<&str>, extensions: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.key {
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(value) = HeaderValue::from_str(&accept_key(key)) {
                headers.insert(SEC_WEBSOCKET_ACCEPT, value);
            }
        }
        let offered = |p: &&str| self.protocols.iter().any(|o| o == p);
        if let Some(value) = protocol
            .filter(offered)
            .and_then(|p| HeaderValue::from_str(p).ok())
        {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        if let Some(value) = extensions.and_then(|e| HeaderValue::from_str(e).ok()) {
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
        }
        headers
    }

    /// The status of the success answer: `101` over HTTP/1.1, `200` over HTTP/2.
    pub fn success_status(&self) -> StatusCode {
        if self.key.is_some() {
            StatusCode::SWITCHING_PROTOCOLS
        } else {
            StatusCode::OK
        }
    }
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)) (§4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key.trim().as_bytes());
    hasher.update(WEBSOCKET_GUID);
    STANDARD.encode(hasher.finalize())
}

/// A `Sec-WebSocket-Key` from 16 random bytes the caller provides (the core has no RNG; the
/// bytes must come from a good source so that keys are unpredictable, §4.1).
pub fn client_key(random: [u8; 16]) -> String {
    STANDARD.encode(random)
}

/// Validates a client's HTTP/1.1 upgrade request (§4.2.1).
pub fn validate_request(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<Handshake, HandshakeError> {
    if method != Method::GET {
        return Err(HandshakeError::Method);
    }
    if version < Version::HTTP_11 {
        return Err(HandshakeError::Version);
    }
    if !lists_token(headers, &header::UPGRADE, "websocket") {
        return Err(HandshakeError::UpgradeHeader);
    }
    if !lists_token(headers, &header::CONNECTION, "upgrade") {
        return Err(HandshakeError::ConnectionHeader);
    }
    let key = single_key(headers)?;
    check_version(headers)?;
    Ok(Handshake {
        key: Some(key),
        protocols: offered_protocols(headers),
        extensions: offered_extensions(headers),
    })
}

/// [`validate_request`] on the parts of an `http::Request`.
pub fn validate_request_parts(parts: &http::request::Parts) -> Result<Handshake, HandshakeError> {
    validate_request(&parts.method, parts.version, &parts.headers)
}

/// Validates an HTTP/2 extended CONNECT for WebSocket (RFC 8441 §4, §5): `:method CONNECT`,
/// `:protocol websocket`, `sec-websocket-version: 13`; no key, and the answer is `200`.
pub fn validate_h2_request(
    method: &Method,
    protocol: Option<&Protocol>,
    headers: &HeaderMap,
) -> Result<Handshake, HandshakeError> {
    if method != Method::CONNECT {
        return Err(HandshakeError::Method);
    }
    match protocol {
        Some(Protocol(p)) if p.eq_ignore_ascii_case(b"websocket") => {}
        _ => return Err(HandshakeError::Protocol),
    }
    check_version(headers)?;
    Ok(Handshake {
        key: None,
        protocols: offered_protocols(headers),
        extensions: offered_extensions(headers),
    })
}

/// [`validate_h2_request`] on a decoded HTTP/2 request head.
pub fn validate_h2_head(head: &RequestHead) -> Result<Handshake, HandshakeError> {
    validate_h2_request(&head.method, head.protocol.as_ref(), &head.headers)
}

/// The header fields of a client's HTTP/1.1 upgrade request (add Host yourself).
pub fn client_request_headers(key: &str, protocols: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(key) {
        headers.insert(SEC_WEBSOCKET_KEY, value);
    }
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    if let Ok(value) = HeaderValue::from_str(&protocols.join(", ")) {
        if !protocols.is_empty() {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    headers
}

/// Validates the server's answer to our handshake (§4.1): `101`, Upgrade and Connection, the
/// accept key derived from `key`, and a subprotocol among `offered`. Returns the chosen
/// subprotocol.
pub fn validate_response(
    status: StatusCode,
    headers: &HeaderMap,
    key: &str,
    offered: &[&str],
) -> Result<Option<String>, HandshakeError> {
    if status != StatusCode::SWITCHING_PROTOCOLS {
        return Err(HandshakeError::Status);
    }
    if !lists_token(headers, &header::UPGRADE, "websocket") {
        return Err(HandshakeError::UpgradeHeader);
    }
    if !lists_token(headers, &header::CONNECTION, "upgrade") {
        return Err(HandshakeError::ConnectionHeader);
    }
    let expected = accept_key(key);
    let accept = headers.get(SEC_WEBSOCKET_ACCEPT);
    if accept.map(|a| a.as_bytes()) != Some(expected.as_bytes()) {
        return Err(HandshakeError::Accept);
    }
    match headers.get(SEC_WEBSOCKET_PROTOCOL) {
        None => Ok(None),
        Some(value) => {
            let chosen = value
                .to_str()
                .map_err(|_| HandshakeError::Subprotocol)?
                .trim();
            if offered.contains(&chosen) {
                Ok(Some(chosen.to_owned()))
            } else {
                Err(HandshakeError::Subprotocol)
            }
        }
    }
}

/// Whether any field `name` lists `token` (case-insensitively) in its comma-separated value.
fn lists_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn single_key(headers: &HeaderMap) -> Result<String, HandshakeError> {
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::Key);
    };
    let key = key.to_str().map_err(|_| HandshakeError::Key)?.trim();
    match STANDARD.decode(key) {
        Ok(bytes) if bytes.len() == 16 => Ok(key.to_owned()),
        _ => Err(HandshakeError::Key),
    }
}

fn check_version(headers: &HeaderMap) -> Result<(), HandshakeError> {
    let mut versions = headers.get_all(SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.as_bytes().trim_ascii() == b"13" => Ok(()),
        _ => Err(HandshakeError::UnsupportedVersion),
    }
}

fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The offers of every `Sec-WebSocket-Extensions` field (RFC 6455 §9.1 grammar, quoted values
/// unescaped); a field that does not parse offers nothing.
fn offered_extensions(headers: &HeaderMap) -> Vec<ExtensionOffer> {
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| super::deflate::parse_extensions(value.as_bytes()).ok())
        .flatten()
        .map(|extension| ExtensionOffer {
            name: extension.name.to_owned(),
            params: extension
                .params
                .into_iter()
                .map(|param| (param.name.to_owned(), param.value.map(|v| v.into_owned())))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]
    }

    #[test]
    fn accept_key_matches_rfc_vector() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn valid_request_is_accepted_with_offers() {
        let mut pairs = good();
        pairs.push(("sec-websocket-protocol", "chat, superchat"));
        pairs.push((
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits, x-foo; a=\"1\"",
        ));
        let hs =
            validate_request(&Method::GET, Version::HTTP_11, &request_headers(&pairs)).unwrap();
        assert_eq!(hs.protocols, ["chat", "superchat"]);
        assert_eq!(hs.extensions.len(), 2);
        assert_eq!(hs.extensions[0].name, "permessage-deflate");
        assert_eq!(
            hs.extensions[1].params,
            [("a".to_owned(), Some("1".to_owned()))]
        );
        let resp = hs.response_headers(Some("superchat"), None);
        assert_eq!(resp[SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(resp[SEC_WEBSOCKET_PROTOCOL], "superchat");
        assert_eq!(hs.success_status(), StatusCode::SWITCHING_PROTOCOLS);
        assert!(
            hs.response_headers(Some("other"), None)
                .get(SEC_WEBSOCKET_PROTOCOL)
                .is_none()
        );
    }

    fn failure(change: impl Fn(&mut Vec<(&'static str, &'static str)>)) -> HandshakeError {
        let mut pairs = good();
        change(&mut pairs);
        validate_request(&Method::GET, Version::HTTP_11, &request_headers(&pairs)).unwrap_err()
    }

    #[test]
    fn invalid_requests_are_refused_with_their_answer() {
        let e = failure(|p| p[0].1 = "h2c");
        assert_eq!(e, HandshakeError::UpgradeHeader);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            failure(|p| p[1].1 = "close"),
            HandshakeError::ConnectionHeader
        );
        assert_eq!(failure(|p| p[2].1 = "c2hvcnQ="), HandshakeError::Key);
        assert_eq!(failure(|p| p[2].1 = "not base64!!"), HandshakeError::Key);
        assert_eq!(
            failure(|p| {
                p.remove(2);
            }),
            HandshakeError::Key
        );
        let e = failure(|p| p[3].1 = "8");
        assert_eq!(e, HandshakeError::UnsupportedVersion);
        assert_eq!(e.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(e.response_headers()[SEC_WEBSOCKET_VERSION], "13");
        let headers = request_headers(&good());
        assert_eq!(
            validate_request(&Method::POST, Version::HTTP_11, &headers),
            Err(HandshakeError::Method)
        );
        assert_eq!(
            validate_request(&Method::GET, Version::HTTP_10, &headers),
            Err(HandshakeError::Version)
        );
    }

    #[test]
    fn h2_extended_connect() {
        let headers = request_headers(&[("sec-websocket-version", "13")]);
        let ws = Protocol(bytes::Bytes::from_static(b"websocket"));
        let hs = validate_h2_request(&Method::CONNECT, Some(&ws), &headers).unwrap();
        assert_eq!(hs.success_status(), StatusCode::OK);
        assert!(
            hs.response_headers(None, None)
                .get(SEC_WEBSOCKET_ACCEPT)
                .is_none()
        );
        assert_eq!(
            validate_h2_request(&Method::CONNECT, None, &headers),
            Err(HandshakeError::Protocol)
        );
        assert_eq!(
            validate_h2_request(&Method::GET, Some(&ws), &headers),
            Err(HandshakeError::Method)
        );
    }

    #[test]
    fn client_side_round_trip() {
        let key = client_key([7; 16]);
        let req = client_request_headers(&key, &["chat"]);
        let hs = validate_request(&Method::GET, Version::HTTP_11, &req).unwrap();
        let resp = hs.response_headers(Some("chat"), None);
        assert_eq!(
            validate_response(StatusCode::SWITCHING_PROTOCOLS, &resp, &key, &["chat"]),
            Ok(Some("chat".to_owned()))
        );
        assert_eq!(
            validate_response(
                StatusCode::SWITCHING_PROTOCOLS,
                &resp,
                &client_key([8; 16]),
                &["chat"]
            ),
            Err(HandshakeError::Accept)
        );
        assert_eq!(
            validate_response(StatusCode::SWITCHING_PROTOCOLS, &resp, &key, &[]),
            Err(HandshakeError::Subprotocol)
        );
        assert_eq!(
            validate_response(StatusCode::OK, &resp, &key, &["chat"]),
            Err(HandshakeError::Status)
        );
    }
}
