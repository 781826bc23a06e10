//! The frames of HTTP/2 as values: the 9-byte header (RFC 9113 §4.1) and one variant per frame
//! type of §6, plus [`Frame::Unknown`] for the types §5.5 says to ignore.

use bytes::Bytes;

use super::error::ErrorCode;

/// The frame type codes of RFC 9113 §6 (the "Type" field of §4.1).
pub mod kind {
    /// DATA (§6.1).
    pub const DATA: u8 = 0x0;
    /// HEADERS (§6.2).
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY (§6.3).
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM (§6.4).
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS (§6.5).
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (§6.6).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING (§6.7).
    pub const PING: u8 = 0x6;
    /// GOAWAY (§6.8).
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE (§6.9).
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION (§6.10).
    pub const CONTINUATION: u8 = 0x9;
}

/// The flag bits of RFC 9113 §6 (the "Flags" field of §4.1). Which apply depends on the type.
pub mod flags {
    /// END_STREAM on DATA and HEADERS.
    pub const END_STREAM: u8 = 0x1;
    /// ACK on SETTINGS and PING.
    pub const ACK: u8 = 0x1;
    /// END_HEADERS on HEADERS, PUSH_PROMISE and CONTINUATION.
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED on DATA, HEADERS and PUSH_PROMISE.
    pub const PADDED: u8 = 0x8;
    /// PRIORITY on HEADERS.
    pub const PRIORITY: u8 = 0x20;
}

/// The length of a frame header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;

/// The largest payload the 24-bit length field can describe (RFC 9113 §4.1), which is also
/// the largest SETTINGS_MAX_FRAME_SIZE (§6.5.2).
pub const MAX_PAYLOAD_LEN: u32 = (1 << 24) - 1;

/// The initial and smallest SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;

/// The reserved high bit of a stream identifier (RFC 9113 §4.1).
const RESERVED_BIT: u32 = 1 << 31;

/// The 9-byte header every frame starts with (RFC 9113 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// Payload length, 24 bits.
    pub length: u32,
    /// Frame type (see [`kind`]).
    pub kind: u8,
    /// Type-specific flags (see [`flags`]).
    pub flags: u8,
    /// Stream identifier, 31 bits; the reserved bit is ignored when read.
    pub stream: u32,
}

impl FrameHeader {
    /// Reads a header, ignoring the reserved bit of the stream identifier (§4.1: "MUST be
    /// ignored when receiving").
    pub fn parse(bytes: &[u8; FRAME_HEADER_LEN]) -> Self {
        FrameHeader {
            length: u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]),
            kind: bytes[3],
            flags: bytes[4],
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & !RESERVED_BIT,
        }
    }

    /// Writes the header: the length's low 24 bits and the stream identifier with the reserved
    /// bit cleared (§4.1: "MUST remain unset when sending").
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_LEN] {
        let len = self.length.to_be_bytes();
        let stream = (self.stream & !RESERVED_BIT).to_be_bytes();
        [
            len[1], len[2], len[3], self.kind, self.flags, stream[0], stream[1], stream[2],
            stream[3],
        ]
    }
}

/// The priority fields of HEADERS and PRIORITY (RFC 9113 §6.2, §6.3). RFC 9113 deprecates this
/// scheme (§5.3.2); the fields are still parsed so a frame can be read past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Priority {
    /// The exclusive flag.
    pub exclusive: bool,
    /// The stream depended on, 31 bits.
    pub dependency: u32,
    /// The weight minus one, as on the wire.
    pub weight: u8,
}

/// The parameters of a SETTINGS frame (RFC 9113 §6.5.1), in the order they arrived.
///
/// Every pair is kept, unknown identifiers included (§6.5.2: they MUST be ignored, which is
/// the connection's job). The accessors give the last value of each known parameter, since
/// parameters are processed in order (§6.5.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Settings {
    pairs: Vec<(u16, u32)>,
}

impl Settings {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1).
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH (0x2).
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4).
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE (0x5).
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;

    /// No parameters.
    pub fn new() -> Self {
        Settings::default()
    }

    /// Appends a parameter.
    pub fn push(&mut self, id: u16, value: u32) {
        self.pairs.push((id, value));
    }

    /// Every (identifier, value) pair, in order.
    pub fn pairs(&self) -> &[(u16, u32)] {
        &self.pairs
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The last value given for `id`.
    pub fn get(&self, id: u16) -> Option<u32> {
        self.pairs
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|&(_, v)| v)
    }

    /// SETTINGS_HEADER_TABLE_SIZE.
    pub fn header_table_size(&self) -> Option<u32> {
        self.get(Self::HEADER_TABLE_SIZE)
    }

    /// SETTINGS_ENABLE_PUSH, as a boolean (decoded values are 0 or 1).
    pub fn enable_push(&self) -> Option<bool> {
        self.get(Self::ENABLE_PUSH).map(|v| v != 0)
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub fn max_concurrent_streams(&self) -> Option<u32> {
        self.get(Self::MAX_CONCURRENT_STREAMS)
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub fn initial_window_size(&self) -> Option<u32> {
        self.get(Self::INITIAL_WINDOW_SIZE)
    }

    /// SETTINGS_MAX_FRAME_SIZE.
    pub fn max_frame_size(&self) -> Option<u32> {
        self.get(Self::MAX_FRAME_SIZE)
    }

    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub fn max_header_list_size(&self) -> Option<u32> {
        self.get(Self::MAX_HEADER_LIST_SIZE)
    }
}

impl FromIterator<(u16, u32)> for Settings {
    fn from_iter<T: IntoIterator<Item = (u16, u32)>>(iter: T) -> Self {
        Settings {
            pairs: iter.into_iter().collect(),
        }
    }
}

/// One HTTP/2 frame (RFC 9113 §6).
///
/// Stream identifiers and other 31-bit fields are written with their high bit cleared. Flags
/// a type does not define are dropped on decode (§4.1: they MUST be ignored). Padding is kept
/// as its length only; it is written as zeros and its contents are not checked when read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Frame {
    /// DATA (§6.1): a piece of a stream's content.
    Data {
        /// The stream, never 0.
        stream: u32,
        /// END_STREAM: the last frame of the stream from this side.
        end_stream: bool,
        /// The padding length when PADDED is set.
        pad_len: Option<u8>,
        /// The content, padding removed.
        data: Bytes,
    },
    /// HEADERS (§6.2): opens a stream and carries the first piece of a field block.
    Headers {
        /// The stream, never 0.
        stream: u32,
        /// END_STREAM: the field block is the last thing on the stream.
        end_stream: bool,
        /// END_HEADERS: no CONTINUATION follows.
        end_headers: bool,
        /// The deprecated priority fields, when the PRIORITY flag is set.
        priority: Option<Priority>,
        /// The padding length when PADDED is set.
        pad_len: Option<u8>,
        /// The field block fragment, still HPACK-encoded.
        fragment: Bytes,
    },
    /// PRIORITY (§6.3): deprecated, to be accepted and ignored.
    Priority {
        /// The stream, never 0.
        stream: u32,
        /// The priority fields.
        priority: Priority,
    },
    /// RST_STREAM (§6.4): ends a stream at once.
    RstStream {
        /// The stream, never 0.
        stream: u32,
        /// Why.
        code: ErrorCode,
    },
    /// SETTINGS (§6.5), on stream 0.
    Settings {
        /// ACK: acknowledges the peer's SETTINGS; then there are no parameters.
        ack: bool,
        /// The parameters.
        settings: Settings,
    },
    /// PUSH_PROMISE (§6.6): announces a stream the server will open.
    PushPromise {
        /// The stream the promise is associated with, never 0.
        stream: u32,
        /// END_HEADERS: no CONTINUATION follows.
        end_headers: bool,
        /// The padding length when PADDED is set.
        pad_len: Option<u8>,
        /// The promised stream, 31 bits, never 0.
        promised: u32,
        /// The field block fragment of the promised request, still HPACK-encoded.
        fragment: Bytes,
    },
    /// PING (§6.7), on stream 0.
    Ping {
        /// ACK: this is the answer to a PING.
        ack: bool,
        /// Opaque data, echoed by the answer.
        data: [u8; 8],
    },
    /// GOAWAY (§6.8), on stream 0: starts the shutdown of the connection.
    GoAway {
        /// The highest stream the sender might have processed, 31 bits.
        last_stream: u32,
        /// Why.
        code: ErrorCode,
        /// Opaque diagnostic data.
        debug: Bytes,
    },
    /// WINDOW_UPDATE (§6.9): grants flow-control credit to a stream, or to the connection on
    /// stream 0.
    WindowUpdate {
        /// The stream, or 0 for the connection.
        stream: u32,
        /// The increment, 31 bits, never 0.
        increment: u32,
    },
    /// CONTINUATION (§6.10): the next piece of a field block.
    Continuation {
        /// The stream, never 0.
        stream: u32,
        /// END_HEADERS: the field block is complete.
        end_headers: bool,
        /// The field block fragment, still HPACK-encoded.
        fragment: Bytes,
    },
    /// A type RFC 9113 does not define (§5.5: MUST be ignored, except inside a field block,
    /// where the connection must treat it as PROTOCOL_ERROR per §6.10).
    Unknown {
        /// The type code, not one of [`kind`].
        kind: u8,
        /// The flags, as received.
        flags: u8,
        /// The stream identifier.
        stream: u32,
        /// The payload, as received.
        payload: Bytes,
    },
}

impl Frame {
    /// The stream identifier in the frame's header (0 for SETTINGS, PING and GOAWAY).
    pub fn stream(&self) -> u32 {
        match self {
            Frame::Data { stream, .. }
            | Frame::Headers { stream, .. }
            | Frame::Priority { stream, .. }
            | Frame::RstStream { stream, .. }
            | Frame::PushPromise { stream, .. }
            | Frame::WindowUpdate { stream, .. }
            | Frame::Continuation { stream, .. }
            | Frame::Unknown { stream, .. } => *stream,
            Frame::Settings { .. } | Frame::Ping { .. } | Frame::GoAway { .. } => 0,
        }
    }
}
