//! What can go wrong in a multipart/form-data body, and the status each failure answers.

use std::fmt;

use http::StatusCode;

/// A rule of multipart/form-data (RFC 7578, RFC 2046 §5.1) that the body broke, or a limit of
/// [`MultipartLimits`](super::MultipartLimits) it crossed.
///
/// Every variant names one rule, so logs say why an upload was refused, and maps to the status
/// a server answers with ([`MultipartError::status`]): `400` for a malformed body, `413` for a
/// size limit, `415` for a request that is not multipart/form-data at all. After an error the
/// parser yields nothing more: the framing of the rest of the body can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultipartError {
    // --- the request's Content-Type ---
    /// The media type is not `multipart/form-data` (RFC 7578 §4).
    NotFormData,
    /// The Content-Type has no `boundary` parameter, or has it twice (RFC 2046 §5.1.1).
    MissingBoundary,
    /// The boundary is empty, longer than 70 characters, ends in a space or holds a character
    /// outside `bchars` (RFC 2046 §5.1.1).
    InvalidBoundary,
    /// The Content-Type header value is not `type/subtype *(; parameter)` (RFC 9110 §8.3).
    MalformedContentType,

    // --- body syntax (RFC 2046 §5.1.1) ---
    /// A boundary delimiter followed by something other than `--` (the close delimiter) or
    /// optional transport padding (spaces and tabs) and CRLF.
    MalformedDelimiter,
    /// A part's header section is not a valid list of header fields (RFC 2046 §5.1, RFC 5322).
    MalformedHeaders,
    /// A part without a `Content-Disposition` header field (RFC 7578 §4.2: each part MUST have
    /// one).
    MissingContentDisposition,
    /// A `Content-Disposition` that is not `form-data` with well-formed parameters, names one
    /// parameter twice, or has a `filename*` that does not decode (RFC 7578 §4.2, RFC 5987).
    MalformedContentDisposition,
    /// A `Content-Disposition: form-data` without a `name` parameter (RFC 7578 §4.2: MUST have
    /// one).
    MissingName,
    /// The body ended before the close delimiter `--boundary--`.
    UnexpectedEof,

    // --- limits ---
    /// A part's head (transport padding plus header section) is larger than
    /// `max_header_bytes`.
    HeadersTooLarge,
    /// A part has more header fields than `max_headers`.
    TooManyHeaders,
    /// The body has more parts than `max_parts`.
    TooManyParts,
    /// A field (a part without a filename) is larger than `max_field_bytes`.
    FieldTooLarge,
    /// A file (a part with a filename) is larger than `max_file_bytes`.
    FileTooLarge,
    /// The body is larger than `max_total_bytes`.
    BodyTooLarge,
}

impl MultipartError {
    /// The status code a server answers this error with.
    pub fn status(&self) -> StatusCode {
        use MultipartError::*;
        match self {
            NotFormData => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HeadersTooLarge | TooManyHeaders | TooManyParts | FieldTooLarge | FileTooLarge
            | BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            MissingBoundary
            | InvalidBoundary
            | MalformedContentType
            | MalformedDelimiter
            | MalformedHeaders
            | MissingContentDisposition
            | MalformedContentDisposition
            | MissingName
            | UnexpectedEof => StatusCode::BAD_REQUEST,
        }
    }

    /// A short description of the rule that was broken, for logs.
    pub fn description(&self) -> &'static str {
        use MultipartError::*;
        match self {
            NotFormData => "media type is not multipart/form-data",
            MissingBoundary => "missing or repeated boundary parameter",
            InvalidBoundary => "invalid multipart boundary",
            MalformedContentType => "malformed Content-Type",
            MalformedDelimiter => "malformed boundary delimiter line",
            MalformedHeaders => "malformed part header section",
            MissingContentDisposition => "part without Content-Disposition",
            MalformedContentDisposition => "malformed Content-Disposition",
            MissingName => "form-data part without a name",
            UnexpectedEof => "body ended before the close delimiter",
            HeadersTooLarge => "part header section too large",
            TooManyHeaders => "too many part header fields",
            TooManyParts => "too many parts",
            FieldTooLarge => "form field too large",
            FileTooLarge => "file too large",
            BodyTooLarge => "multipart body too large",
        }
    }
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.status())
    }
}

impl std::error::Error for MultipartError {}
