//! The header fields that decide how a message is framed and whether its connection lives on,
//! read once while the head is parsed, and the rules of RFC 9112 §6 applied to them.
//!
//! Every framing rule lives here, in one place, so the request-smuggling defences can be read
//! (and audited) together: a message whose length two parsers could disagree on is refused.

use http::header::{self, HeaderName};
use http::{StatusCode, Version};

use super::error::H1Error;
use super::host::is_valid_host;

/// How a message body is delimited on the wire (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    Empty,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// The chunked transfer coding (RFC 9112 §7.1), possibly with trailers.
    Chunked,
    /// Everything until the connection closes; responses only (RFC 9112 §6.3 rule 8).
    CloseDelimited,
}

/// The framing-related fields of one head, collected field by field as the head is parsed.
#[derive(Debug, Default)]
pub(crate) struct FramingFields {
    content_length: Option<Result<u64, H1Error>>,
    transfer_encoding: Option<TransferCodings>,
    hosts: usize,
    host_valid: bool,
    connection: ConnectionOptions,
    expect: Option<Expectation>,
    has_upgrade: bool,
}

/// The tokens of the Connection field we act on (RFC 9110 §7.6.1).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectionOptions {
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    pub(crate) upgrade: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct TransferCodings {
    /// Whether the last coding seen so far is `chunked`.
    last_is_chunked: bool,
    /// Whether `chunked` appeared before the last coding.
    chunked_before_last: bool,
    /// Whether any coding other than `chunked` appeared.
    other_coding: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expectation {
    Continue,
    Other,
}

/// What the framing fields of a request decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestFraming {
    pub(crate) body: BodyFraming,
    pub(crate) keep_alive: bool,
    pub(crate) expects_continue: bool,
    pub(crate) wants_upgrade: bool,
}

/// What the framing fields of a response decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseFraming {
    pub(crate) body: BodyFraming,
    pub(crate) keep_alive: bool,
}

impl FramingFields {
    /// Takes note of one field line if it is one that framing depends on.
    pub(crate) fn observe(&mut self, name: &HeaderName, value: &[u8]) {
        if name == header::CONTENT_LENGTH {
            self.observe_content_length(value);
        } else if name == header::TRANSFER_ENCODING {
            self.observe_transfer_encoding(value);
        } else if name == header::HOST {
            self.hosts += 1;
            self.host_valid = is_valid_host(value);
        } else if name == header::CONNECTION {
            self.connection.observe(value);
        } else if name == header::EXPECT {
            let expectation = if value.eq_ignore_ascii_case(b"100-continue") {
                Expectation::Continue
            } else {
                Expectation::Other
            };
            // A second Expect line of any kind is not something we can honour.
            self.expect = match self.expect {
                None => Some(expectation),
                Some(_) => Some(Expectation::Other),
            };
        } else if name == header::UPGRADE {
            self.has_upgrade = true;
        }
    }

    /// RFC 9110 §8.6: 1*DIGIT, where a list of identical values is the same as one.
    fn observe_content_length(&mut self, value: &[u8]) {
        let mut seen = match self.content_length {
            Some(Err(_)) => return,
            Some(Ok(n)) => Some(n),
            None => None,
        };
        for element in value.split(|&b| b == b',') {
            let parsed = parse_decimal(trim_ows(element));
            self.content_length = Some(match (parsed, seen) {
                (None, _) => Err(H1Error::InvalidContentLength),
                (Some(n), Some(prev)) if n != prev => Err(H1Error::ConflictingContentLength),
                (Some(n), _) => Ok(n),
            });
            match self.content_length {
                Some(Ok(n)) => seen = Some(n),
                _ => return,
            }
        }
    }

    /// RFC 9112 §6.1: a comma-separated list of codings, possibly over several field lines.
    fn observe_transfer_encoding(&mut self, value: &[u8]) {
        let codings = self
            .transfer_encoding
            .get_or_insert_with(TransferCodings::default);
        // RFC 9110 §5.6.1: empty list elements are ignored.
        for coding in value
            .split(|&b| b == b',')
            .map(trim_ows)
            .filter(|c| !c.is_empty())
        {
            if codings.last_is_chunked {
                codings.chunked_before_last = true;
            }
            codings.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if !codings.last_is_chunked {
                codings.other_coding = true;
            }
        }
    }

    /// Applies RFC 9112 §3.2 (Host), §6.1-§6.3 (framing), §9.3 (persistence) and RFC 9110
    /// §10.1.1 (Expect) to a request.
    pub(crate) fn request(&self, version: Version) -> Result<RequestFraming, H1Error> {
        let http11 = version == Version::HTTP_11;
        match self.hosts {
            0 if http11 => return Err(H1Error::MissingHost),
            0 => {}
            1 if !self.host_valid => return Err(H1Error::InvalidHost),
            1 => {}
            _ => return Err(H1Error::DuplicateHost),
        }
        let body = self.body_framing(http11)?.unwrap_or(BodyFraming::Empty);
        // RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation in HTTP/1.0.
        let expects_continue = match self.expect {
            Some(Expectation::Other) if http11 => return Err(H1Error::UnsupportedExpectation),
            Some(Expectation::Continue) => http11,
            _ => false,
        };
        Ok(RequestFraming {
            body,
            keep_alive: self.connection.persistent(version),
            expects_continue,
            // RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored.
            wants_upgrade: http11 && self.has_upgrade && self.connection.upgrade,
        })
    }

    /// Applies RFC 9112 §6.3 to a response, given the method of the request it answers.
    pub(crate) fn response(
        &self,
        version: Version,
        status: StatusCode,
        request_method: &http::Method,
    ) -> Result<ResponseFraming, H1Error> {
        let keep_alive = self.connection.persistent(version);
        let bodiless = status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || request_method == http::Method::HEAD
            || (request_method == http::Method::CONNECT && status.is_success());
        if bodiless {
            return Ok(ResponseFraming {
                body: BodyFraming::Empty,
                keep_alive,
            });
        }
        let body = match self.body_framing(version == Version::HTTP_11) {
            Ok(Some(framing)) => framing,
            Ok(None) => BodyFraming::CloseDelimited,
            // RFC 9112 §6.3 rule 4: a response whose last coding is not chunked runs to close.
            Err(H1Error::TransferEncodingNotChunked) => BodyFraming::CloseDelimited,
            Err(e) => return Err(e),
        };
        let keep_alive = keep_alive && body != BodyFraming::CloseDelimited;
        Ok(ResponseFraming { body, keep_alive })
    }

    /// The framing the Content-Length and Transfer-Encoding fields give, `None` when neither is
    /// present.
    fn body_framing(&self, http11: bool) -> Result<Option<BodyFraming>, H1Error> {
        if let Some(codings) = self.transfer_encoding {
            if !http11 {
                return Err(H1Error::TransferEncodingOnHttp10);
            }
            if self.content_length.is_some() {
                return Err(H1Error::ContentLengthWithTransferEncoding);
            }
            if !codings.last_is_chunked {
                return Err(H1Error::TransferEncodingNotChunked);
            }
            if codings.chunked_before_last {
                return Err(H1Error::ChunkedAppliedTwice);
            }
            if codings.other_coding {
                return Err(H1Error::UnsupportedTransferCoding);
            }
            return Ok(Some(BodyFraming::Chunked));
        }
        match &self.content_length {
            Some(Ok(0)) => Ok(Some(BodyFraming::Empty)),
            Some(Ok(n)) => Ok(Some(BodyFraming::Length(*n))),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(None),
        }
    }
}

impl ConnectionOptions {
    /// Collects the options of one Connection field line.
    pub(crate) fn observe(&mut self, value: &[u8]) {
        for token in value.split(|&b| b == b',').map(trim_ows) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            }
        }
    }

    /// RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
    pub(crate) fn persistent(&self, version: Version) -> bool {
        if self.close {
            false
        } else if version == Version::HTTP_11 {
            true
        } else {
            version == Version::HTTP_10 && self.keep_alive
        }
    }
}

/// Strips optional whitespace (SP / HTAB) from both ends (RFC 9110 §5.6.3).
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Parses 1*DIGIT into a u64; `None` for anything else, including signs and overflow.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(fields: &[(&str, &str)], version: Version) -> Result<RequestFraming, H1Error> {
        let mut framing = FramingFields::default();
        for (name, value) in fields {
            framing.observe(
                &HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.as_bytes(),
            );
        }
        framing.request(version)
    }

    fn body(fields: &[(&str, &str)]) -> Result<BodyFraming, H1Error> {
        let mut all = vec![("host", "a")];
        all.extend_from_slice(fields);
        request_with(&all, Version::HTTP_11).map(|f| f.body)
    }

    #[test]
    fn content_length_digits_only() {
        assert_eq!(
            body(&[("content-length", "12")]),
            Ok(BodyFraming::Length(12))
        );
        assert_eq!(
            body(&[("content-length", "+12")]),
            Err(H1Error::InvalidContentLength)
        );
        assert_eq!(
            body(&[("content-length", "-1")]),
            Err(H1Error::InvalidContentLength)
        );
        assert_eq!(
            body(&[("content-length", "1 2")]),
            Err(H1Error::InvalidContentLength)
        );
        assert_eq!(
            body(&[("content-length", "0x10")]),
            Err(H1Error::InvalidContentLength)
        );
        assert_eq!(
            body(&[("content-length", "99999999999999999999")]),
            Err(H1Error::InvalidContentLength)
        );
    }

    #[test]
    fn identical_content_lengths_are_one() {
        assert_eq!(
            body(&[("content-length", "5, 5")]),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            body(&[("content-length", "5"), ("content-length", "5")]),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            body(&[("content-length", "5"), ("content-length", "6")]),
            Err(H1Error::ConflictingContentLength)
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        assert_eq!(
            body(&[("transfer-encoding", "chunked")]),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            body(&[("transfer-encoding", "ChUnKeD")]),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            body(&[("transfer-encoding", "chunked, identity")]),
            Err(H1Error::TransferEncodingNotChunked)
        );
        assert_eq!(
            body(&[("transfer-encoding", "xchunked")]),
            Err(H1Error::TransferEncodingNotChunked)
        );
        assert_eq!(
            body(&[("transfer-encoding", "gzip, chunked")]),
            Err(H1Error::UnsupportedTransferCoding)
        );
        assert_eq!(
            body(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked")
            ]),
            Err(H1Error::ChunkedAppliedTwice)
        );
        assert_eq!(
            body(&[("transfer-encoding", "chunked"), ("content-length", "3")]),
            Err(H1Error::ContentLengthWithTransferEncoding)
        );
    }

    #[test]
    fn host_rules() {
        assert_eq!(
            request_with(&[], Version::HTTP_11),
            Err(H1Error::MissingHost)
        );
        assert!(request_with(&[], Version::HTTP_10).is_ok());
        assert_eq!(
            request_with(&[("host", "a"), ("host", "a")], Version::HTTP_11),
            Err(H1Error::DuplicateHost)
        );
        assert_eq!(
            request_with(&[("host", "u@a")], Version::HTTP_11),
            Err(H1Error::InvalidHost)
        );
        assert!(request_with(&[("host", "example.com:8080")], Version::HTTP_11).is_ok());
    }

    #[test]
    fn persistence_by_version() {
        let keep = |f: &[(&str, &str)], v| request_with(f, v).unwrap().keep_alive;
        assert!(keep(&[("host", "a")], Version::HTTP_11));
        assert!(!keep(
            &[("host", "a"), ("connection", "close")],
            Version::HTTP_11
        ));
        assert!(!keep(&[], Version::HTTP_10));
        assert!(keep(&[("connection", "Keep-Alive")], Version::HTTP_10));
    }
}
