//! What can go wrong on an HTTP/1.1 connection, and the answer each failure gets on the wire.

use std::fmt;

use http::StatusCode;

/// A rule of HTTP/1.1 that the peer broke, or a limit it crossed.
///
/// Every variant names one rule, so logs say exactly why a message was refused, and maps to
/// the status code a server answers with ([`H1Error::status`]). After an error the connection
/// closes: its framing can no longer be trusted (RFC 9112 §6.3, §9.6).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum H1Error {
    // --- message syntax (RFC 9112 §2-§5) ---
    /// A line ended in LF without the CR before it (RFC 9112 §2.2: we accept only CRLF, as
    /// tolerating bare LF is how parsers start to disagree).
    BareLineFeed,
    /// A CR not followed by LF (RFC 9112 §2.2).
    BareCarriageReturn,
    /// The method is not a token (RFC 9110 §9.1).
    InvalidMethod,
    /// The request-target is not valid URI syntax (RFC 9112 §3.2).
    InvalidRequestTarget,
    /// The request-target form does not fit the method: authority-form is only for CONNECT,
    /// asterisk-form only for OPTIONS, and CONNECT takes nothing else (RFC 9112 §3.2.3, §3.2.4).
    TargetFormMismatch,
    /// The HTTP-version is malformed (RFC 9112 §2.3).
    InvalidVersion,
    /// A well-formed version other than HTTP/1.x, such as `HTTP/2.0` in a request line.
    UnsupportedVersion,
    /// The status line of a response is malformed (RFC 9112 §4).
    InvalidStatusLine,
    /// A field name holds a byte that is not a token character (RFC 9110 §5.1).
    InvalidHeaderName,
    /// A field value holds NUL, a bare CR/LF or another control byte (RFC 9110 §5.5).
    InvalidHeaderValue,
    /// Whitespace between a field name and its colon (RFC 9112 §5.1: MUST be rejected with 400).
    WhitespaceBeforeColon,
    /// A field line continued on the next line by leading whitespace, obs-fold (RFC 9112 §5.2).
    ObsoleteLineFolding,
    /// Whitespace between the start line and the first field line (RFC 9112 §2.2).
    WhitespaceAfterStartLine,

    // --- request semantics ---
    /// An HTTP/1.1 request without a Host field (RFC 9112 §3.2: MUST answer 400).
    MissingHost,
    /// More than one Host field line (RFC 9112 §3.2).
    DuplicateHost,
    /// A Host value that is not `uri-host [":" port]` (RFC 9112 §3.2).
    InvalidHost,
    /// An `Expect` value other than `100-continue` (RFC 9110 §10.1.1).
    UnsupportedExpectation,

    // --- body framing (RFC 9112 §6) ---
    /// Content-Length is not a plain run of digits, or does not fit in 64 bits (RFC 9110 §8.6).
    InvalidContentLength,
    /// Content-Length given more than once with different values (RFC 9110 §8.6).
    ConflictingContentLength,
    /// Both Content-Length and Transfer-Encoding: a smuggling attempt until proven otherwise
    /// (RFC 9112 §6.3 rule 3 allows closing; we refuse outright).
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding whose final coding is not `chunked` (RFC 9112 §6.3 rule 4).
    TransferEncodingNotChunked,
    /// `chunked` applied more than once (RFC 9112 §6.1).
    ChunkedAppliedTwice,
    /// A transfer coding other than `chunked`, which we do not implement (RFC 9112 §6.1: 501).
    UnsupportedTransferCoding,
    /// Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1: its framing is faulty).
    TransferEncodingOnHttp10,

    // --- chunked coding (RFC 9112 §7.1) ---
    /// A chunk-size that is empty or not hexadecimal.
    InvalidChunkSize,
    /// A chunk-size too large for 64 bits.
    ChunkSizeOverflow,
    /// A chunk extension that is not `;name[=value]` with tokens or a quoted string.
    InvalidChunkExtension,
    /// Chunk data not followed by exactly CRLF.
    MissingChunkTerminator,
    /// A malformed trailer section.
    InvalidTrailer,

    // --- limits (see `Limits`) ---
    /// The request-target is longer than `Limits::max_request_target_len`.
    RequestTargetTooLong,
    /// The head is larger than `Limits::max_head_size`.
    HeadTooLarge,
    /// More header fields than `Limits::max_headers`.
    TooManyHeaders,
    /// The body is larger than `Limits::max_body_size`.
    BodyTooLarge,
    /// A chunk-size line longer than `Limits::max_chunk_line_len`.
    ChunkLineTooLong,
    /// More chunk-extension bytes than `Limits::max_chunk_extensions_size`.
    ChunkExtensionsTooLarge,
    /// A trailer section larger than `Limits::max_trailer_size` or with too many fields.
    TrailersTooLarge,

    // --- time and connection ---
    /// The head did not arrive within `Limits::head_timeout`.
    HeadTimeout,
    /// The body went silent for longer than `Limits::body_idle_timeout`.
    BodyTimeout,
    /// The peer took no output for `Limits::send_timeout`: it stopped reading. Nothing is
    /// answered (nothing could reach it); the connection closes.
    SendTimeout,
    /// The peer closed the connection in the middle of a message.
    IncompleteMessage,
    /// A response arrived when no request was waiting for one.
    UnsolicitedResponse,
}

impl H1Error {
    /// The status code a server answers this error with.
    pub fn status(&self) -> StatusCode {
        use H1Error::*;
        match self {
            RequestTargetTooLong => StatusCode::URI_TOO_LONG,
            HeadTooLarge | TooManyHeaders | TrailersTooLarge => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            UnsupportedExpectation => StatusCode::EXPECTATION_FAILED,
            HeadTimeout | BodyTimeout | SendTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short description of the rule that was broken, for logs.
    pub fn description(&self) -> &'static str {
        use H1Error::*;
        match self {
            BareLineFeed => "line ended in LF without CR",
            BareCarriageReturn => "CR not followed by LF",
            InvalidMethod => "method is not a token",
            InvalidRequestTarget => "invalid request-target",
            TargetFormMismatch => "request-target form does not fit the method",
            InvalidVersion => "malformed HTTP version",
            UnsupportedVersion => "HTTP version not supported",
            InvalidStatusLine => "malformed status line",
            InvalidHeaderName => "invalid byte in field name",
            InvalidHeaderValue => "invalid byte in field value",
            WhitespaceBeforeColon => "whitespace between field name and colon",
            ObsoleteLineFolding => "obsolete line folding",
            WhitespaceAfterStartLine => "whitespace before the first field line",
            MissingHost => "HTTP/1.1 request without Host",
            DuplicateHost => "more than one Host field",
            InvalidHost => "invalid Host value",
            UnsupportedExpectation => "unsupported Expect value",
            InvalidContentLength => "invalid Content-Length",
            ConflictingContentLength => "conflicting Content-Length values",
            ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding",
            TransferEncodingNotChunked => "Transfer-Encoding does not end in chunked",
            ChunkedAppliedTwice => "chunked applied more than once",
            UnsupportedTransferCoding => "unsupported transfer coding",
            TransferEncodingOnHttp10 => "Transfer-Encoding in an HTTP/1.0 message",
            InvalidChunkSize => "invalid chunk size",
            ChunkSizeOverflow => "chunk size overflows",
            InvalidChunkExtension => "invalid chunk extension",
            MissingChunkTerminator => "chunk data not followed by CRLF",
            InvalidTrailer => "malformed trailer section",
            RequestTargetTooLong => "request-target too long",
            HeadTooLarge => "head too large",
            TooManyHeaders => "too many header fields",
            BodyTooLarge => "body too large",
            ChunkLineTooLong => "chunk-size line too long",
            ChunkExtensionsTooLarge => "too many chunk-extension bytes",
            TrailersTooLarge => "trailer section too large",
            HeadTimeout => "head not received in time",
            BodyTimeout => "body idle for too long",
            SendTimeout => "output not taken in time (peer not reading)",
            IncompleteMessage => "connection closed mid-message",
            UnsolicitedResponse => "response without a request",
        }
    }
}

impl fmt::Display for H1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.status())
    }
}

impl std::error::Error for H1Error {}

/// A call the application made that does not fit the connection's state, such as sending a
/// second response or more body bytes than it declared. The connection is unchanged by the
/// refused call unless the variant says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// There is no message this call could belong to (no request awaits a response, or the
    /// response or request was already started or finished).
    InvalidState,
    /// More body bytes than the declared Content-Length.
    BodyTooLong,
    /// `finish` before all declared body bytes were sent. The connection will close after the
    /// output already queued, since the peer can no longer find where the message ends.
    BodyIncomplete,
    /// A `101 Switching Protocols` for a request that did not ask to upgrade, or before its
    /// body was fully read.
    UnexpectedSwitch,
    /// The connection is closed or closing; nothing more can be sent.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::InvalidState => "no message in a state to take this call",
            SendError::BodyTooLong => "body longer than its declared length",
            SendError::BodyIncomplete => "body shorter than its declared length",
            SendError::UnexpectedSwitch => "switching protocols without an upgrade request",
            SendError::Closed => "connection closed",
        })
    }
}

impl std::error::Error for SendError {}
