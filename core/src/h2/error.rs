//! What can go wrong while decoding an HTTP/2 frame, and the answer each failure gets on the
//! wire: an error code of RFC 9113 §7 and a scope, the whole connection or one stream (§5.4).

use std::fmt;

/// An HTTP/2 error code (RFC 9113 §7), as carried by RST_STREAM and GOAWAY.
///
/// Codes this enum does not name are kept in [`ErrorCode::Unknown`]: §7 says they MUST NOT
/// trigger special behaviour and MAY be treated as `INTERNAL_ERROR`, which is the caller's
/// choice. Convert with `ErrorCode::from(u32)` and `u32::from(code)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0x0: graceful shutdown, not an error.
    NoError,
    /// 0x1: an unspecific protocol error.
    ProtocolError,
    /// 0x2: an unexpected internal error.
    InternalError,
    /// 0x3: the peer broke the flow-control protocol.
    FlowControlError,
    /// 0x4: a SETTINGS frame was not acknowledged in time.
    SettingsTimeout,
    /// 0x5: a frame arrived after the stream was half-closed.
    StreamClosed,
    /// 0x6: a frame had an invalid size.
    FrameSizeError,
    /// 0x7: the stream was refused before any application processing.
    RefusedStream,
    /// 0x8: the stream is no longer needed.
    Cancel,
    /// 0x9: the field-compression context could not be kept.
    CompressionError,
    /// 0xa: the connection of a CONNECT request was reset or closed.
    ConnectError,
    /// 0xb: the peer shows behaviour that might be generating excessive load.
    EnhanceYourCalm,
    /// 0xc: the transport does not meet minimum security requirements.
    InadequateSecurity,
    /// 0xd: the endpoint requires HTTP/1.1 instead of HTTP/2.
    Http11Required,
    /// A code RFC 9113 does not define, kept as received.
    Unknown(u32),
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        match code {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Unknown(other) => other,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::SettingsTimeout => "SETTINGS_TIMEOUT",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::ConnectError => "CONNECT_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            ErrorCode::InadequateSecurity => "INADEQUATE_SECURITY",
            ErrorCode::Http11Required => "HTTP_1_1_REQUIRED",
            ErrorCode::Unknown(code) => return write!(f, "unknown error code {code:#x}"),
        };
        f.write_str(name)
    }
}

/// Whom an error ends (RFC 9113 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorScope {
    /// A connection error (§5.4.1): send GOAWAY with the code, then close.
    Connection,
    /// A stream error (§5.4.2) on this stream: send RST_STREAM with the code; the connection
    /// goes on.
    Stream(u32),
}

/// The rule of RFC 9113 §4 or §6 that a frame broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameRule {
    /// The length exceeds the SETTINGS_MAX_FRAME_SIZE we advertised (§4.2).
    TooLarge,
    /// The payload length is wrong for the type, or too short for its mandatory fields
    /// (§4.2, §6).
    BadLength,
    /// A frame that must belong to a stream arrived on stream 0 (§6.1, §6.2, §6.3, §6.4, §6.6,
    /// §6.10).
    StreamZero,
    /// A frame that concerns the whole connection arrived on a stream (§6.5, §6.7, §6.8).
    StreamNonZero,
    /// The padding is as long as the rest of the payload or longer (§6.1, §6.2, §6.6).
    PaddingTooLong,
    /// A SETTINGS frame with the ACK flag carries a payload (§6.5).
    SettingsAckWithPayload,
    /// SETTINGS_ENABLE_PUSH other than 0 or 1 (§6.5.2).
    InvalidEnablePush,
    /// SETTINGS_INITIAL_WINDOW_SIZE above 2^31 - 1 (§6.5.2).
    InvalidInitialWindowSize,
    /// SETTINGS_MAX_FRAME_SIZE outside 16384..=16777215 (§6.5.2).
    InvalidMaxFrameSize,
    /// A WINDOW_UPDATE with a flow-control window increment of 0 (§6.9).
    ZeroWindowIncrement,
    /// A PUSH_PROMISE promising stream 0, which can never be a valid new stream (§6.6).
    PromisedStreamZero,
}

impl FrameRule {
    /// The rule in words, for logs and GOAWAY debug data.
    pub fn describe(self) -> &'static str {
        match self {
            FrameRule::TooLarge => "frame larger than SETTINGS_MAX_FRAME_SIZE",
            FrameRule::BadLength => "frame payload has the wrong length",
            FrameRule::StreamZero => "frame requires a stream but arrived on stream 0",
            FrameRule::StreamNonZero => "connection frame arrived on a stream",
            FrameRule::PaddingTooLong => "padding longer than the payload",
            FrameRule::SettingsAckWithPayload => "SETTINGS ACK with a payload",
            FrameRule::InvalidEnablePush => "SETTINGS_ENABLE_PUSH neither 0 nor 1",
            FrameRule::InvalidInitialWindowSize => "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
            FrameRule::InvalidMaxFrameSize => "SETTINGS_MAX_FRAME_SIZE out of range",
            FrameRule::ZeroWindowIncrement => "WINDOW_UPDATE increment of 0",
            FrameRule::PromisedStreamZero => "PUSH_PROMISE promises stream 0",
        }
    }
}

/// A frame the peer sent that breaks RFC 9113: which rule, the error code to answer with, and
/// whether that answer ends the connection or one stream.
///
/// When the scope is a stream, [`decode`](super::decode) has consumed the frame and the caller
/// may go on decoding; after a connection error the buffer's contents are meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameError {
    /// The rule that was broken.
    pub rule: FrameRule,
    /// The code for GOAWAY or RST_STREAM.
    pub code: ErrorCode,
    /// Connection or stream error (§5.4).
    pub scope: ErrorScope,
}

impl FrameError {
    pub(crate) fn connection(rule: FrameRule, code: ErrorCode) -> Self {
        FrameError {
            rule,
            code,
            scope: ErrorScope::Connection,
        }
    }

    pub(crate) fn stream(rule: FrameRule, code: ErrorCode, stream: u32) -> Self {
        FrameError {
            rule,
            code,
            scope: ErrorScope::Stream(stream),
        }
    }

    /// Whether this error ends the whole connection (§5.4.1).
    pub fn is_connection_error(&self) -> bool {
        self.scope == ErrorScope::Connection
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            ErrorScope::Connection => write!(
                f,
                "{} (connection error {})",
                self.rule.describe(),
                self.code
            ),
            ErrorScope::Stream(id) => write!(
                f,
                "{} (stream error {} on stream {id})",
                self.rule.describe(),
                self.code
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// A frame whose payload does not fit the 24-bit length field (RFC 9113 §4.1), so it cannot
/// be encoded. Nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadTooLarge {
    /// The payload length the frame would have had.
    pub len: usize,
}

impl fmt::Display for PayloadTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame payload of {} bytes exceeds the 24-bit length field",
            self.len
        )
    }
}

impl std::error::Error for PayloadTooLarge {}
