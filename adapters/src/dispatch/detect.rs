//! Which protocol a connection speaks, decided before its first request.
//!
//! - TLS tells through ALPN (RFC 7301): `h2` is HTTP/2 from the first byte (RFC 9113 §3.2),
//!   any other agreed protocol is HTTP/1.1.
//! - Otherwise the first bytes tell: the HTTP/2 client preface (RFC 9113 §3.3, "prior
//!   knowledge") is HTTP/2, anything else HTTP/1.1. The decision falls on the first byte that
//!   differs from the preface, so an HTTP/1.1 request is never held back waiting for bytes.

use weft_core::h2::PREFACE;
use weft_service::service::ConnectionInfo;

/// The protocol a connection speaks, or that the first bytes must tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Detected {
    /// Not known yet: watch the first bytes.
    Undecided,
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 from the first byte.
    Http2,
}

/// The ALPN protocol identifier of HTTP/2 over TLS.
pub(super) const ALPN_H2: &[u8] = b"h2";

/// What the connection's setup already says.
pub(super) fn by_alpn(info: &ConnectionInfo) -> Detected {
    match info.alpn.as_deref() {
        Some(ALPN_H2) => Detected::Http2,
        Some(_) => Detected::Http1,
        None => Detected::Undecided,
    }
}

/// Compares a connection's first bytes with the HTTP/2 client preface.
#[derive(Debug, Clone, Default)]
pub(super) struct PrefaceMatcher {
    /// How many bytes of the preface arrived so far.
    matched: usize,
}

impl PrefaceMatcher {
    /// Looks at the next bytes: [`Detected::Http2`] once the whole preface arrived,
    /// [`Detected::Http1`] at the first byte that differs, else [`Detected::Undecided`].
    pub(super) fn feed(&mut self, data: &[u8]) -> Detected {
        let expected = PREFACE.get(self.matched..).unwrap_or_default();
        let same = expected
            .iter()
            .zip(data)
            .take_while(|(a, b)| a == b)
            .count();
        self.matched += same;
        if self.matched == PREFACE.len() {
            Detected::Http2
        } else if same < data.len() {
            Detected::Http1
        } else {
            Detected::Undecided
        }
    }

    /// The bytes matched so far: the connection received them and holds them back until the
    /// protocol is known, which then gets them first.
    pub(super) fn held(&self) -> &'static [u8] {
        PREFACE.get(..self.matched).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http1_request_is_decided_on_its_first_byte() {
        let mut matcher = PrefaceMatcher::default();
        assert_eq!(matcher.feed(b"GET / HTTP/1.1\r\n"), Detected::Http1);
        assert_eq!(matcher.held(), b"");
    }

    #[test]
    fn a_method_sharing_the_first_letter_is_decided_on_the_second() {
        let mut matcher = PrefaceMatcher::default();
        assert_eq!(matcher.feed(b"P"), Detected::Undecided);
        assert_eq!(
            matcher.held(),
            b"P",
            "held back until the protocol is known"
        );
        assert_eq!(matcher.feed(b"OST / HTTP/1.1\r\n"), Detected::Http1);
    }

    #[test]
    fn the_preface_in_pieces_is_http2() {
        let mut matcher = PrefaceMatcher::default();
        let (a, b) = PREFACE.split_at(10);
        assert_eq!(matcher.feed(a), Detected::Undecided);
        assert_eq!(matcher.held(), a);
        let mut rest = b.to_vec();
        rest.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
        assert_eq!(matcher.feed(&rest), Detected::Http2);
    }

    #[test]
    fn a_preface_that_breaks_off_at_its_last_byte_is_http1() {
        let mut matcher = PrefaceMatcher::default();
        assert_eq!(matcher.feed(&PREFACE[..23]), Detected::Undecided);
        assert_eq!(matcher.feed(b"X"), Detected::Http1);
    }

    #[test]
    fn alpn_decides_over_tls() {
        let mut info = ConnectionInfo::default();
        assert_eq!(by_alpn(&info), Detected::Undecided);
        info.alpn = Some(b"h2".to_vec());
        assert_eq!(by_alpn(&info), Detected::Http2);
        info.alpn = Some(b"http/1.1".to_vec());
        assert_eq!(by_alpn(&info), Detected::Http1);
    }
}
