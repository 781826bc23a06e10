//! permessage-deflate (RFC 7692): negotiation of its parameters and the per-message codec.
//!
//! Negotiation reads `Sec-WebSocket-Extensions` with the grammar of RFC 6455 §9.1 and applies
//! the rules of RFC 7692 §7.1 for both roles: [`accept_offers`] (server) picks the first
//! acceptable offer and formats the answer; [`DeflateConfig::offer`] and [`accept_response`]
//! (client) build an offer and check the server's answer. Both end in [`DeflateParams`], from
//! which each endpoint builds its [`Compressor`] and [`Decompressor`] (RFC 7692 §7.2).
//!
//! Window bits are negotiated both ways: flate2 is built with its `zlib-rs` backend, which
//! honours window sizes 9..=15 for raw deflate. A window of 8 bits cannot be asked of zlib for
//! raw deflate; we compress with 9 bits instead, which stays compliant because zlib never emits
//! a match distance above `2^bits - 262` (250 bytes for 9 bits), inside a 256-byte window.
//! Decompression with a larger window than the peer used always works, so 8 becomes 9 there too.
//!
//! The connection sets RSV1 on the first frame of a compressed message; control frames are
//! never compressed. A received message may be inflated frame by frame, so the compressed
//! message is never buffered whole:
//!
//! ```
//! use weft_core::ws::deflate::{DeflateConfig, Side, accept_offers, accept_response};
//!
//! let config = DeflateConfig::default();
//! let offer = config.offer(); // client: "permessage-deflate; client_max_window_bits"
//! let accepted = accept_offers(&config, [offer.as_str()])?.expect("acceptable offer");
//! let client_params = accept_response(&config, [accepted.response.as_str()])?
//!     .expect("server accepted");
//!
//! let mut compressor = client_params.compressor(Side::Client, 6);
//! let mut payload = Vec::new();
//! compressor.compress(b"Hello", &mut payload)?;
//!
//! let mut decompressor = accepted.params.decompressor(Side::Server, 1 << 20);
//! let mut message = Vec::new();
//! let (first, rest) = payload.split_at(2); // two frames of one message
//! decompressor.decompress(first, false, &mut message)?;
//! decompressor.decompress(rest, true, &mut message)?;
//! assert_eq!(message, b"Hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension token of permessage-deflate (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The empty stored block a sync flush ends with; stripped by the sender and appended again by
/// the receiver (RFC 7692 §7.2.1, §7.2.2).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Smallest output chunk reserved at a time while inflating, so tiny messages do not reallocate
/// byte by byte.
const MIN_INFLATE_ROOM: usize = 4096;

/// Spare output room kept while deflating.
const MIN_DEFLATE_ROOM: usize = 64;

/// The base-2 logarithm of an LZ77 window size, 8..=15 (RFC 7692 §7.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowBits(u8);

impl WindowBits {
    /// The smallest window RFC 7692 allows, 256 bytes.
    pub const MIN: WindowBits = WindowBits(8);
    /// The largest window, 32 KiB, also the value when nothing was negotiated.
    pub const MAX: WindowBits = WindowBits(15);

    /// `bits` as a window size, or `None` outside 8..=15.
    pub const fn new(bits: u8) -> Option<WindowBits> {
        if bits >= 8 && bits <= 15 {
            Some(WindowBits(bits))
        } else {
            None
        }
    }

    /// The number of bits.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The value handed to zlib, which refuses 8 for raw deflate (see the module comment).
    fn zlib_bits(self) -> u8 {
        self.0.max(9)
    }
}

impl Default for WindowBits {
    fn default() -> Self {
        WindowBits::MAX
    }
}

/// What an endpoint is willing to negotiate. The same struct serves both roles: a server reads
/// it as what it accepts and requires, a client as what it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Server: always reset our compressor after each message and say so (RFC 7692 §7.1.1.1
    /// lets a server add it unasked). Client: ask the server to do so. Trades ratio for memory
    /// and for independence of messages.
    pub server_no_context_takeover: bool,
    /// Server: require the client to reset its compressor per message, which lets ours reset
    /// its decompressor too (§7.1.1.2). Client: reset our compressor per message and say so.
    pub client_no_context_takeover: bool,
    /// Largest window the server compresses with. Server: the answer is the smaller of this and
    /// the offer. Client: below 15, asked of the server.
    pub server_max_window_bits: WindowBits,
    /// Largest window the client compresses with. Server: the answer when the offer allows one
    /// (an offer without `client_max_window_bits` forces 15, §7.1.2.2; we still accept it).
    /// Client: offered as a hint, and our compressor never uses more.
    pub client_max_window_bits: WindowBits,
    /// zlib compression level, 0 (store) to 9 (best); larger values count as 9.
    pub compression_level: u32,
}

impl Default for DeflateConfig {
    /// Context takeover both ways, 15-bit windows, level 6: the best ratio, about 300 KiB of
    /// zlib state per connection and direction at most.
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: WindowBits::MAX,
            client_max_window_bits: WindowBits::MAX,
            compression_level: 6,
        }
    }
}

impl DeflateConfig {
    /// The client's `Sec-WebSocket-Extensions` offer for this configuration. It always carries
    /// `client_max_window_bits`, which tells the server we can compress with a smaller window.
    pub fn offer(&self) -> String {
        let mut offer = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < WindowBits::MAX {
            offer.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits.0
            ));
        }
        offer.push_str("; client_max_window_bits");
        if self.client_max_window_bits < WindowBits::MAX {
            offer.push_str(&format!("={}", self.client_max_window_bits.0));
        }
        offer
    }
}

/// The parameters both endpoints agreed on (RFC 7692 §7.1); each side builds its codec from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor (and the client its decompressor) after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor (and the server its decompressor) after each message.
    pub client_no_context_takeover: bool,
    /// Window the server compresses with (the client inflates with at least this).
    pub server_max_window_bits: WindowBits,
    /// Window the client compresses with (the server inflates with at least this).
    pub client_max_window_bits: WindowBits,
}

/// Which end of the connection a codec is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The endpoint that accepted the connection.
    Server,
    /// The endpoint that opened it.
    Client,
}

impl DeflateParams {
    /// The compressor for messages `side` sends, at `level` (0..=9, larger counts as 9).
    pub fn compressor(&self, side: Side, level: u32) -> Compressor {
        match side {
            Side::Server => Compressor::new(
                level,
                self.server_max_window_bits,
                self.server_no_context_takeover,
            ),
            Side::Client => Compressor::new(
                level,
                self.client_max_window_bits,
                self.client_no_context_takeover,
            ),
        }
    }

    /// The decompressor for messages `side` receives, refusing messages that inflate past
    /// `max_message_size` bytes.
    pub fn decompressor(&self, side: Side, max_message_size: usize) -> Decompressor {
        match side {
            Side::Server => Decompressor::new(
                self.client_max_window_bits,
                self.client_no_context_takeover,
                max_message_size,
            ),
            Side::Client => Decompressor::new(
                self.server_max_window_bits,
                self.server_no_context_takeover,
                max_message_size,
            ),
        }
    }
}

/// A server's acceptance of one permessage-deflate offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The agreed parameters.
    pub params: DeflateParams,
    /// The `Sec-WebSocket-Extensions` value to answer with.
    pub response: String,
}

/// `Sec-WebSocket-Extensions` does not follow RFC 6455 §9.1; `at` is a byte offset in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedExtensions {
    /// An extension or parameter name was expected.
    ExpectedToken {
        /// Offset of the offending byte.
        at: usize,
    },
    /// A byte that the grammar does not allow here.
    UnexpectedByte {
        /// Offset of the offending byte.
        at: usize,
    },
    /// A quoted-string without its closing quote.
    UnterminatedQuotedString,
    /// A quoted value whose content is not a token (RFC 6455 §9.1).
    QuotedValueNotToken {
        /// Offset of the opening quote.
        at: usize,
    },
}

impl fmt::Display for MalformedExtensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExpectedToken { at } => write!(f, "expected a token at byte {at}"),
            Self::UnexpectedByte { at } => write!(f, "unexpected byte at {at}"),
            Self::UnterminatedQuotedString => f.write_str("unterminated quoted string"),
            Self::QuotedValueNotToken { at } => write!(f, "quoted value at {at} is not a token"),
        }
    }
}

impl std::error::Error for MalformedExtensions {}

/// Why a parameter list of permessage-deflate is unacceptable (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    /// A parameter not defined for this direction.
    Unknown,
    /// The same parameter twice.
    Duplicate,
    /// A value where none is allowed, none where one is required, or one outside 8..=15 or
    /// with leading zeros.
    InvalidValue,
}

/// Why a client must fail the connection after the server's `Sec-WebSocket-Extensions` answer
/// (RFC 6455 §4.1, RFC 7692 §7.1). No close frame is sent: the connection never opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiationError {
    /// The header does not parse.
    Malformed(MalformedExtensions),
    /// An extension we did not offer.
    UnofferedExtension,
    /// permessage-deflate accepted twice.
    DuplicateExtension,
    /// A bad parameter in the answer.
    Param(ParamError),
    /// `server_max_window_bits` larger than the value we offered (§7.1.2.1).
    WindowAboveOffer,
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed Sec-WebSocket-Extensions: {e}"),
            Self::UnofferedExtension => f.write_str("server accepted an extension not offered"),
            Self::DuplicateExtension => f.write_str("permessage-deflate accepted twice"),
            Self::Param(e) => write!(f, "bad permessage-deflate parameter: {e:?}"),
            Self::WindowAboveOffer => f.write_str("server_max_window_bits above our offer"),
        }
    }
}

impl std::error::Error for NegotiationError {}

/// Server side of §7.1: the first permessage-deflate offer in `header_values` (every
/// `Sec-WebSocket-Extensions` field, in order) that is valid, with the answer to send. Offers
/// with an unknown or repeated parameter or a bad value are declined (skipped); every valid
/// offer is acceptable because every window size is supported. `Ok(None)`: no compression.
/// A malformed header is an error; the caller may answer `400` or ignore extensions.
pub fn accept_offers<I>(
    config: &DeflateConfig,
    header_values: I,
) -> Result<Option<Accepted>, MalformedExtensions>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    for value in header_values {
        for extension in parse_extensions(value.as_ref())? {
            if !extension.name.eq_ignore_ascii_case(EXTENSION_NAME) {
                continue;
            }
            if let Ok(offer) = read_params(&extension.params, Direction::Offer) {
                return Ok(Some(accept_offer(config, &offer)));
            }
        }
    }
    Ok(None)
}

/// Client side of §7.1: checks the server's `Sec-WebSocket-Extensions` answer to
/// [`DeflateConfig::offer`] (permessage-deflate being the only extension we offer).
/// `Ok(None)`: the server declined, messages go uncompressed.
pub fn accept_response<I>(
    config: &DeflateConfig,
    header_values: I,
) -> Result<Option<DeflateParams>, NegotiationError>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut accepted = None;
    for value in header_values {
        let extensions = parse_extensions(value.as_ref()).map_err(NegotiationError::Malformed)?;
        for extension in extensions {
            if !extension.name.eq_ignore_ascii_case(EXTENSION_NAME) {
                return Err(NegotiationError::UnofferedExtension);
            }
            if accepted.is_some() {
                return Err(NegotiationError::DuplicateExtension);
            }
            let answer = read_params(&extension.params, Direction::Response)
                .map_err(NegotiationError::Param)?;
            accepted = Some(check_response(config, &answer)?);
        }
    }
    Ok(accepted)
}

/// The agreed parameters and the answer for a valid offer.
fn accept_offer(config: &DeflateConfig, offer: &ParamSet) -> Accepted {
    let server_bits = offer
        .server_max_window_bits
        .unwrap_or(WindowBits::MAX)
        .min(config.server_max_window_bits);
    let client_bits = match offer.client_max_window_bits {
        Some(hint) => hint
            .unwrap_or(WindowBits::MAX)
            .min(config.client_max_window_bits),
        None => WindowBits::MAX,
    };
    let params = DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    };
    let mut response = String::from(EXTENSION_NAME);
    if params.server_no_context_takeover {
        response.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        response.push_str("; client_no_context_takeover");
    }
    // Echo an offered window even at 15: some clients read its absence as a refusal.
    if offer.server_max_window_bits.is_some() || server_bits < WindowBits::MAX {
        response.push_str(&format!("; server_max_window_bits={}", server_bits.0));
    }
    let client_hinted = matches!(offer.client_max_window_bits, Some(Some(_)));
    if client_hinted || client_bits < WindowBits::MAX {
        response.push_str(&format!("; client_max_window_bits={}", client_bits.0));
    }
    Accepted { params, response }
}

/// The parameters a client lives with after a valid answer to its offer.
fn check_response(
    config: &DeflateConfig,
    answer: &ParamSet,
) -> Result<DeflateParams, NegotiationError> {
    // An answer without server_max_window_bits to an offer with it is tolerated: we inflate
    // with a 15-bit window then, which reads any stream.
    let offered_server_bits = config.server_max_window_bits < WindowBits::MAX;
    if let Some(answered) = answer.server_max_window_bits {
        if offered_server_bits && answered > config.server_max_window_bits {
            return Err(NegotiationError::WindowAboveOffer);
        }
    }
    let server_bits = answer.server_max_window_bits.unwrap_or(WindowBits::MAX);
    // We always offer client_max_window_bits, so any valid value is allowed; we never
    // compress with more than our own configuration either.
    let client_bits = answer
        .client_max_window_bits
        .flatten()
        .unwrap_or(WindowBits::MAX)
        .min(config.client_max_window_bits);
    Ok(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

/// Which way a parameter list travels: offers may carry `client_max_window_bits` without a
/// value, answers may not (§7.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Offer,
    Response,
}

/// The permessage-deflate parameters of one offer or answer.
#[derive(Debug, Default)]
struct ParamSet {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<WindowBits>,
    /// `Some(None)`: present without a value (offers only).
    client_max_window_bits: Option<Option<WindowBits>>,
}

/// Reads a parameter list with the checks of RFC 7692 §7.1: known names, each once, valid values.
fn read_params(params: &[Param<'_>], direction: Direction) -> Result<ParamSet, ParamError> {
    let mut set = ParamSet::default();
    let mut seen = [false; 4];
    for param in params {
        let name = param.name.to_ascii_lowercase();
        let index = match name.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err(ParamError::Unknown),
        };
        let slot = seen.get_mut(index).ok_or(ParamError::Unknown)?;
        if *slot {
            return Err(ParamError::Duplicate);
        }
        *slot = true;
        let value = param.value.as_deref();
        match index {
            0 => set.server_no_context_takeover = flag(value)?,
            1 => set.client_no_context_takeover = flag(value)?,
            2 => set.server_max_window_bits = Some(window_bits(value)?),
            _ => {
                set.client_max_window_bits = match (value, direction) {
                    (None, Direction::Offer) => Some(None),
                    _ => Some(Some(window_bits(value)?)),
                }
            }
        }
    }
    Ok(set)
}

/// A parameter that must come without a value.
fn flag(value: Option<&str>) -> Result<bool, ParamError> {
    match value {
        None => Ok(true),
        Some(_) => Err(ParamError::InvalidValue),
    }
}

/// A window-bits value: decimal, no leading zero, 8..=15 (§7.1.2.1).
fn window_bits(value: Option<&str>) -> Result<WindowBits, ParamError> {
    let digits = value.ok_or(ParamError::InvalidValue)?;
    let well_formed = !digits.is_empty()
        && digits.len() <= 2
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(ParamError::InvalidValue);
    }
    digits
        .parse::<u8>()
        .ok()
        .and_then(WindowBits::new)
        .ok_or(ParamError::InvalidValue)
}

/// One extension of a `Sec-WebSocket-Extensions` list.
#[derive(Debug)]
pub(crate) struct Extension<'a> {
    pub(crate) name: &'a str,
    pub(crate) params: Vec<Param<'a>>,
}

/// One `name[=value]` parameter; a quoted value is unescaped.
#[derive(Debug)]
pub(crate) struct Param<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: Option<Cow<'a, str>>,
}

/// Parses `value` as RFC 6455 §9.1's `extension-list` (empty list elements allowed, as with
/// every `#` list of RFC 9110 §5.6.1). The handshake lists the offers with it too.
pub(crate) fn parse_extensions(value: &[u8]) -> Result<Vec<Extension<'_>>, MalformedExtensions> {
    let mut cursor = Cursor {
        bytes: value,
        pos: 0,
    };
    let mut extensions = Vec::new();
    loop {
        cursor.skip_ows();
        match cursor.peek() {
            None => return Ok(extensions),
            Some(b',') => {
                cursor.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = cursor.token()?;
        let params = cursor.params()?;
        extensions.push(Extension { name, params });
    }
}

/// A position in a header value being parsed.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A non-empty run of tchar.
    fn token(&mut self) -> Result<&'a str, MalformedExtensions> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        let run = self.bytes.get(start..self.pos).unwrap_or_default();
        match std::str::from_utf8(run) {
            Ok(token) if !token.is_empty() => Ok(token),
            _ => Err(MalformedExtensions::ExpectedToken { at: start }),
        }
    }

    /// `*( ";" extension-param )` up to the end of this list element.
    fn params(&mut self) -> Result<Vec<Param<'a>>, MalformedExtensions> {
        let mut params = Vec::new();
        loop {
            self.skip_ows();
            match self.peek() {
                None => return Ok(params),
                Some(b',') => {
                    self.pos += 1;
                    return Ok(params);
                }
                Some(b';') => self.pos += 1,
                Some(_) => return Err(MalformedExtensions::UnexpectedByte { at: self.pos }),
            }
            self.skip_ows();
            let name = self.token()?;
            self.skip_ows();
            let value = if self.peek() == Some(b'=') {
                self.pos += 1;
                self.skip_ows();
                Some(self.value()?)
            } else {
                None
            };
            params.push(Param { name, value });
        }
    }

    /// `token / quoted-string`, the latter unescaped and required to be a token.
    fn value(&mut self) -> Result<Cow<'a, str>, MalformedExtensions> {
        if self.peek() != Some(b'"') {
            return self.token().map(Cow::Borrowed);
        }
        let open = self.pos;
        self.pos += 1;
        let mut unescaped = String::new();
        loop {
            let byte = self
                .peek()
                .ok_or(MalformedExtensions::UnterminatedQuotedString)?;
            self.pos += 1;
            let literal = match byte {
                b'"' => break,
                b'\\' => {
                    let escaped = self
                        .peek()
                        .ok_or(MalformedExtensions::UnterminatedQuotedString)?;
                    self.pos += 1;
                    escaped
                }
                other => other,
            };
            if !is_tchar(literal) {
                return Err(MalformedExtensions::QuotedValueNotToken { at: open });
            }
            unescaped.push(char::from(literal));
        }
        if unescaped.is_empty() {
            return Err(MalformedExtensions::QuotedValueNotToken { at: open });
        }
        Ok(Cow::Owned(unescaped))
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Why a compressed message cannot be processed; each fails the WebSocket connection with the
/// close code [`DeflateError::close_code`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeflateError {
    /// The message inflates past the configured bound (a zip bomb, or just too large).
    MessageTooBig {
        /// The bound, in decompressed bytes.
        limit: usize,
    },
    /// The payload is not a valid DEFLATE stream. RFC 7692 §6.2 says to _Fail the WebSocket
    /// Connection_ without naming a code; the peer broke the extension's framing, so we use
    /// 1002 Protocol Error (1007 is for a payload inconsistent with the message type).
    InvalidData,
    /// zlib refused to compress, which only a bug can cause: 1011 Internal Error.
    CompressionFailed,
}

impl DeflateError {
    /// The close code (RFC 6455 §7.4.1) to fail the connection with.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::MessageTooBig { .. } => 1009,
            Self::InvalidData => 1002,
            Self::CompressionFailed => 1011,
        }
    }
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MessageTooBig { limit } => {
                write!(f, "compressed message inflates past {limit} bytes")
            }
            Self::InvalidData => f.write_str("invalid compressed data"),
            Self::CompressionFailed => f.write_str("compression failed"),
        }
    }
}

impl std::error::Error for DeflateError {}

/// Compresses the messages one endpoint sends (RFC 7692 §7.2.1): raw deflate, each message
/// ended by a sync flush whose `00 00 ff ff` is stripped. Keeps the LZ77 window between
/// messages unless no context takeover was agreed for this side.
pub struct Compressor {
    deflate: Compress,
    no_context_takeover: bool,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor at `level` (0..=9, larger counts as 9) with `window`, resetting after each
    /// message when `no_context_takeover`.
    pub fn new(level: u32, window: WindowBits, no_context_takeover: bool) -> Compressor {
        let level = Compression::new(level.min(9));
        Compressor {
            deflate: Compress::new_with_window_bits(level, false, window.zlib_bits()),
            no_context_takeover,
        }
    }

    /// The most bytes [`compress`](Self::compress) can append for a message of `len` bytes,
    /// for any level and window: zlib's conservative bound (incompressible data at level 1 or
    /// with a small window may cost 9 bits a byte, about 14% more) plus the sync flush. Lets a
    /// connection check its output budget before the compressor's state advances.
    pub fn max_compressed_len(len: usize) -> usize {
        len.saturating_add(len.saturating_add(7) / 8)
            .saturating_add(len.saturating_add(63) / 64)
            .saturating_add(16)
    }

    /// Appends the compressed payload of a whole message to `out`.
    pub fn compress(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<(), DeflateError> {
        self.compress_part(message, true, out)
    }

    /// Appends the compressed form of `part` of a message to `out`; `fin` marks its last part.
    /// A message sent in several frames can be compressed frame by frame: each call's output is
    /// that frame's payload (possibly empty before `fin`).
    pub fn compress_part(
        &mut self,
        part: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        let start = out.len();
        let flush = if fin {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        self.deflate_all(part, flush, out)?;
        if fin {
            let produced = out.get(start..).unwrap_or_default();
            if produced.is_empty() {
                // zlib emits nothing for a sync flush right after another one (an empty
                // message with context takeover). The stream is byte-aligned then, so the empty
                // stored block `00 00 00 ff ff` minus its tail is the payload, as for any empty
                // message.
                out.push(0x00);
            } else if produced.ends_with(&SYNC_TAIL) {
                out.truncate(out.len().saturating_sub(SYNC_TAIL.len()));
            } else {
                return Err(DeflateError::CompressionFailed);
            }
            if self.no_context_takeover {
                self.deflate.reset();
            }
        }
        Ok(())
    }

    /// Runs zlib until all of `input` is consumed and, for a flush, all output is out (zlib
    /// signals that by leaving output room unused).
    fn deflate_all(
        &mut self,
        input: &[u8],
        flush: FlushCompress,
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            if out.capacity() - out.len() < MIN_DEFLATE_ROOM {
                out.reserve(rest.len() / 2 + MIN_DEFLATE_ROOM);
            }
            let before_in = self.deflate.total_in();
            let before_out = self.deflate.total_out();
            self.deflate
                .compress_vec(rest, out, flush)
                .map_err(|_| DeflateError::CompressionFailed)?;
            let took = count(self.deflate.total_in(), before_in);
            let gave = count(self.deflate.total_out(), before_out);
            consumed = consumed.saturating_add(took);
            let room_left = out.len() < out.capacity();
            if consumed >= input.len() && room_left {
                return Ok(());
            }
            if took == 0 && gave == 0 && room_left {
                // zlib made no progress with input and room available: never loop forever.
                return Err(DeflateError::CompressionFailed);
            }
        }
    }
}

/// Inflates the messages one endpoint receives (RFC 7692 §7.2.2), frame by frame, never
/// producing more than `max_message_size` bytes for one message.
pub struct Decompressor {
    inflate: Decompress,
    no_context_takeover: bool,
    max_message_size: usize,
    /// Bytes produced so far for the current message.
    message_len: usize,
    /// The sender ended its DEFLATE stream (a block with BFINAL set, §7.2.3.4): the rest of the
    /// message is ignored and the next one starts a fresh stream.
    stream_ended: bool,
}

impl fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("max_message_size", &self.max_message_size)
            .field("message_len", &self.message_len)
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// A decompressor for a peer compressing with at most `window`, resetting after each
    /// message when `no_context_takeover`, bounding each message to `max_message_size` bytes.
    pub fn new(window: WindowBits, no_context_takeover: bool, max_message_size: usize) -> Self {
        Decompressor {
            inflate: Decompress::new_with_window_bits(false, window.zlib_bits()),
            no_context_takeover,
            max_message_size,
            message_len: 0,
            stream_ended: false,
        }
    }

    /// Inflates one frame's `payload` of a compressed message, appending to `out`; `fin` marks
    /// the message's last frame. `out` never grows by more than the message bound (plus what
    /// it held). After an error the connection must be failed: the state is not usable.
    pub fn decompress(
        &mut self,
        payload: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        if !self.stream_ended {
            self.inflate_all(payload, out)?;
        }
        if fin {
            if !self.stream_ended {
                self.inflate_all(&SYNC_TAIL, out)?;
            }
            self.end_message();
        }
        Ok(())
    }

    /// Bytes inflated so far for the message in progress.
    pub fn message_len(&self) -> usize {
        self.message_len
    }

    fn end_message(&mut self) {
        if self.no_context_takeover || self.stream_ended {
            self.inflate.reset(false);
        }
        self.message_len = 0;
        self.stream_ended = false;
    }

    /// Feeds all of `input` to zlib, growing `out` geometrically up to the message bound.
    fn inflate_all(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DeflateError> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            let allowance = self.max_message_size.saturating_sub(self.message_len);
            let (took, gave, room, status) = if allowance == 0 {
                // At the bound: any further byte proves the message too big.
                let mut probe = [0u8; 1];
                let (took, gave, status) = self.inflate_into(rest, &mut probe)?;
                (took, gave, probe.len(), status)
            } else {
                let room = allowance.min(self.message_len.max(MIN_INFLATE_ROOM));
                let old_len = out.len();
                let wanted = old_len.saturating_add(room);
                if wanted > out.capacity() {
                    // Exact, so capacity never exceeds the bound the way doubling could.
                    out.reserve_exact(room);
                }
                out.resize(wanted, 0);
                let target = out.get_mut(old_len..).unwrap_or_default();
                let result = self.inflate_into(rest, target);
                let gave = result.as_ref().map_or(0, |r| r.1);
                out.truncate(old_len.saturating_add(gave));
                let (took, gave, status) = result?;
                (took, gave, room, status)
            };
            if gave > allowance {
                return Err(DeflateError::MessageTooBig {
                    limit: self.max_message_size,
                });
            }
            self.message_len = self.message_len.saturating_add(gave);
            consumed = consumed.saturating_add(took);
            if status == Status::StreamEnd {
                self.stream_ended = true;
                return Ok(());
            }
            let all_in = consumed >= input.len();
            if all_in && gave < room {
                return Ok(());
            }
            if took == 0 && gave == 0 {
                // Input left and room to write, yet no progress: never loop forever.
                return if all_in {
                    Ok(())
                } else {
                    Err(DeflateError::InvalidData)
                };
            }
        }
    }

    /// One zlib call: bytes consumed, bytes produced, status.
    fn inflate_into(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(usize, usize, Status), DeflateError> {
        let before_in = self.inflate.total_in();
        let before_out = self.inflate.total_out();
        let status = self
            .inflate
            .decompress(input, output, FlushDecompress::None)
            .map_err(|_| DeflateError::InvalidData)?;
        let took = count(self.inflate.total_in(), before_in);
        let gave = count(self.inflate.total_out(), before_out);
        Ok((took, gave, status))
    }
}

/// The growth of a zlib byte counter as a `usize`.
fn count(after: u64, before: u64) -> usize {
    usize::try_from(after.saturating_sub(before)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(config: &DeflateConfig, offer: &str) -> Option<Accepted> {
        accept_offers(config, [offer]).expect("well-formed header")
    }

    fn client(
        config: &DeflateConfig,
        answer: &str,
    ) -> Result<Option<DeflateParams>, NegotiationError> {
        accept_response(config, [answer])
    }

    fn bits(n: u8) -> WindowBits {
        WindowBits::new(n).expect("8..=15")
    }

    fn compress_all(c: &mut Compressor, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.compress(message, &mut out).expect("compresses");
        out
    }

    fn inflate(d: &mut Decompressor, payload: &[u8]) -> Result<Vec<u8>, DeflateError> {
        let mut out = Vec::new();
        d.decompress(payload, true, &mut out)?;
        Ok(out)
    }

    // ---- server negotiation (RFC 7692 §7.1) ----

    #[test]
    fn server_accepts_plain_offer_with_defaults() {
        let accepted = server(&DeflateConfig::default(), "permessage-deflate").unwrap();
        assert_eq!(accepted.response, "permessage-deflate");
        assert_eq!(
            accepted.params,
            DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: WindowBits::MAX,
                client_max_window_bits: WindowBits::MAX,
            }
        );
    }

    #[test]
    fn server_without_offer_or_with_other_extensions_only_declines() {
        assert_eq!(accept_offers(&DeflateConfig::default(), [""; 0]), Ok(None));
        assert_eq!(
            server(&DeflateConfig::default(), "x-webkit-deflate-frame"),
            None
        );
    }

    #[test]
    fn server_picks_first_acceptable_offer_in_order() {
        let offer = "x-foo, permessage-deflate; foo=1, permessage-deflate; server_no_context_takeover, permessage-deflate";
        let accepted = server(&DeflateConfig::default(), offer).unwrap();
        assert!(accepted.params.server_no_context_takeover);
        assert_eq!(
            accepted.response,
            "permessage-deflate; server_no_context_takeover"
        );
    }

    #[test]
    fn server_reads_offers_across_header_fields() {
        let values = ["x-foo", "permessage-deflate; client_no_context_takeover"];
        let accepted = accept_offers(&DeflateConfig::default(), values)
            .unwrap()
            .unwrap();
        assert!(accepted.params.client_no_context_takeover);
    }

    #[test]
    fn server_declines_offers_breaking_parameter_rules() {
        let config = DeflateConfig::default();
        for offer in [
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"x\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits=100",
        ] {
            assert_eq!(server(&config, offer), None, "{offer}");
        }
    }

    #[test]
    fn server_accepts_every_valid_window_value() {
        for n in 8..=15u8 {
            let offer = format!(
                "permessage-deflate; server_max_window_bits={n}; client_max_window_bits={n}"
            );
            let accepted = server(&DeflateConfig::default(), &offer).unwrap();
            assert_eq!(accepted.params.server_max_window_bits, bits(n));
            assert_eq!(accepted.params.client_max_window_bits, bits(n));
            assert_eq!(
                accepted.response,
                format!(
                    "permessage-deflate; server_max_window_bits={n}; client_max_window_bits={n}"
                )
            );
        }
    }

    #[test]
    fn server_answers_client_window_only_when_offered() {
        let config = DeflateConfig {
            client_max_window_bits: bits(12),
            ..DeflateConfig::default()
        };
        // Offered without a value: we choose.
        let accepted = server(&config, "permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(
            accepted.response,
            "permessage-deflate; client_max_window_bits=12"
        );
        assert_eq!(accepted.params.client_max_window_bits, bits(12));
        // Not offered: must not appear (§7.1.2.2); the client may use 15.
        let accepted = server(&config, "permessage-deflate").unwrap();
        assert_eq!(accepted.response, "permessage-deflate");
        assert_eq!(accepted.params.client_max_window_bits, WindowBits::MAX);
        // A hint below ours is kept.
        let accepted = server(&config, "permessage-deflate; client_max_window_bits=10").unwrap();
        assert_eq!(accepted.params.client_max_window_bits, bits(10));
        assert_eq!(
            accepted.response,
            "permessage-deflate; client_max_window_bits=10"
        );
    }

    #[test]
    fn server_window_is_the_smaller_of_offer_and_config() {
        let config = DeflateConfig {
            server_max_window_bits: bits(10),
            ..DeflateConfig::default()
        };
        let accepted = server(&config, "permessage-deflate; server_max_window_bits=12").unwrap();
        assert_eq!(accepted.params.server_max_window_bits, bits(10));
        assert_eq!(
            accepted.response,
            "permessage-deflate; server_max_window_bits=10"
        );
        // Unasked, a smaller server window is still announced (allowed by §7.1.2.1).
        let accepted = server(&config, "permessage-deflate").unwrap();
        assert_eq!(
            accepted.response,
            "permessage-deflate; server_max_window_bits=10"
        );
        // An offered 15 is echoed.
        let accepted = server(
            &DeflateConfig::default(),
            "permessage-deflate; server_max_window_bits=15",
        )
        .unwrap();
        assert_eq!(
            accepted.response,
            "permessage-deflate; server_max_window_bits=15"
        );
    }

    #[test]
    fn server_adds_no_context_takeover_from_config_unasked() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let accepted = server(&config, "permessage-deflate").unwrap();
        assert_eq!(
            accepted.response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(accepted.params.server_no_context_takeover);
        assert!(accepted.params.client_no_context_takeover);
    }

    #[test]
    fn server_accepts_quoted_and_escaped_values_and_any_case() {
        let accepted = server(
            &DeflateConfig::default(),
            "Permessage-Deflate ;\tServer_Max_Window_Bits = \"1\\0\" ; client_max_window_bits=\"9\"",
        )
        .unwrap();
        assert_eq!(accepted.params.server_max_window_bits, bits(10));
        assert_eq!(accepted.params.client_max_window_bits, bits(9));
    }

    #[test]
    fn malformed_headers_are_errors() {
        let config = DeflateConfig::default();
        for (value, error) in [
            (
                "permessage-deflate; x=\"1",
                MalformedExtensions::UnterminatedQuotedString,
            ),
            (
                "permessage-deflate; x=\"a b\"",
                MalformedExtensions::QuotedValueNotToken { at: 22 },
            ),
            (
                "permessage-deflate; x=\"\"",
                MalformedExtensions::QuotedValueNotToken { at: 22 },
            ),
            (
                "permessage-deflate x",
                MalformedExtensions::UnexpectedByte { at: 19 },
            ),
            (
                "permessage-deflate;",
                MalformedExtensions::ExpectedToken { at: 19 },
            ),
            ("; x", MalformedExtensions::ExpectedToken { at: 0 }),
            (
                "permessage-deflate; x=",
                MalformedExtensions::ExpectedToken { at: 22 },
            ),
            (
                "perm\u{e9}ssage",
                MalformedExtensions::UnexpectedByte { at: 4 },
            ),
        ] {
            assert_eq!(accept_offers(&config, [value]), Err(error), "{value}");
        }
    }

    #[test]
    fn empty_list_elements_are_allowed() {
        let accepted = server(&DeflateConfig::default(), " , ,permessage-deflate ,, ");
        assert!(accepted.is_some());
    }

    // ---- client negotiation ----

    #[test]
    fn client_offer_reflects_config() {
        assert_eq!(
            DeflateConfig::default().offer(),
            "permessage-deflate; client_max_window_bits"
        );
        let config = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: bits(10),
            client_max_window_bits: bits(11),
            compression_level: 1,
        };
        assert_eq!(
            config.offer(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11"
        );
    }

    #[test]
    fn client_offer_is_accepted_by_our_server() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: bits(12),
            client_max_window_bits: bits(9),
            compression_level: 6,
        };
        let accepted = server(&DeflateConfig::default(), &config.offer()).unwrap();
        let params = client(&config, &accepted.response).unwrap().unwrap();
        assert_eq!(params, accepted.params);
    }

    #[test]
    fn client_without_answer_goes_uncompressed() {
        assert_eq!(
            accept_response(&DeflateConfig::default(), [""; 0]),
            Ok(None)
        );
        assert_eq!(client(&DeflateConfig::default(), ""), Ok(None));
    }

    #[test]
    fn client_reads_answer_parameters() {
        let params = client(
            &DeflateConfig::default(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            params,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: bits(9),
                client_max_window_bits: bits(8),
            }
        );
    }

    #[test]
    fn client_never_compresses_with_more_than_its_config() {
        let mut config = DeflateConfig {
            client_max_window_bits: bits(10),
            ..DeflateConfig::default()
        };
        let params = client(&config, "permessage-deflate; client_max_window_bits=13")
            .unwrap()
            .unwrap();
        assert_eq!(params.client_max_window_bits, bits(10));
        config.client_no_context_takeover = true;
        let params = client(&config, "permessage-deflate").unwrap().unwrap();
        assert!(params.client_no_context_takeover);
    }

    #[test]
    fn client_fails_on_invalid_answers() {
        let config = DeflateConfig {
            server_max_window_bits: bits(10),
            ..DeflateConfig::default()
        };
        for (answer, error) in [
            ("x-foo", NegotiationError::UnofferedExtension),
            (
                "permessage-deflate, x-foo",
                NegotiationError::UnofferedExtension,
            ),
            (
                "permessage-deflate, permessage-deflate",
                NegotiationError::DuplicateExtension,
            ),
            (
                "permessage-deflate; foo",
                NegotiationError::Param(ParamError::Unknown),
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                NegotiationError::Param(ParamError::Duplicate),
            ),
            (
                "permessage-deflate; client_max_window_bits",
                NegotiationError::Param(ParamError::InvalidValue),
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                NegotiationError::Param(ParamError::InvalidValue),
            ),
            (
                "permessage-deflate; client_no_context_takeover=1",
                NegotiationError::Param(ParamError::InvalidValue),
            ),
            (
                "permessage-deflate; server_max_window_bits=11",
                NegotiationError::WindowAboveOffer,
            ),
            (
                "permessage-deflate; x=\"",
                NegotiationError::Malformed(MalformedExtensions::UnterminatedQuotedString),
            ),
        ] {
            assert_eq!(client(&config, answer), Err(error), "{answer}");
        }
        assert!(client(&config, "permessage-deflate; server_max_window_bits=10").is_ok());
        assert!(client(&config, "permessage-deflate; server_max_window_bits=8").is_ok());
        let lenient = client(&config, "permessage-deflate").unwrap().unwrap();
        assert_eq!(lenient.server_max_window_bits, WindowBits::MAX);
    }

    #[test]
    fn client_rejects_a_second_acceptance_in_another_field() {
        let answer = accept_response(
            &DeflateConfig::default(),
            ["permessage-deflate", "permessage-deflate"],
        );
        assert_eq!(answer, Err(NegotiationError::DuplicateExtension));
    }

    #[test]
    fn window_bits_bounds() {
        assert_eq!(WindowBits::new(7), None);
        assert_eq!(WindowBits::new(16), None);
        assert_eq!(WindowBits::new(8), Some(WindowBits::MIN));
        assert_eq!(WindowBits::default(), WindowBits::MAX);
        assert_eq!(bits(12).get(), 12);
    }

    // ---- codec (RFC 7692 §7.2) ----

    const HELLO: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    #[test]
    fn compresses_hello_as_in_rfc_7692_7_2_3_1() {
        let mut c = Compressor::new(6, WindowBits::MAX, true);
        assert_eq!(compress_all(&mut c, b"Hello"), HELLO);
        assert_eq!(
            compress_all(&mut c, b"Hello"),
            HELLO,
            "no context takeover resets"
        );
    }

    #[test]
    fn shares_window_across_messages_as_in_rfc_7692_7_2_3_2() {
        let mut c = Compressor::new(6, WindowBits::MAX, false);
        assert_eq!(compress_all(&mut c, b"Hello"), HELLO);
        let second = compress_all(&mut c, b"Hello");
        assert_eq!(second, [0xf2, 0x00, 0x11, 0x00, 0x00]);
        let mut d = Decompressor::new(WindowBits::MAX, false, 1024);
        assert_eq!(inflate(&mut d, HELLO).unwrap(), b"Hello");
        assert_eq!(inflate(&mut d, &second).unwrap(), b"Hello");
    }

    #[test]
    fn decompressor_without_takeover_cannot_read_a_back_reference() {
        let mut d = Decompressor::new(WindowBits::MAX, true, 1024);
        assert_eq!(inflate(&mut d, HELLO).unwrap(), b"Hello");
        assert_eq!(
            inflate(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            Err(DeflateError::InvalidData)
        );
    }

    #[test]
    fn inflates_rfc_7692_examples() {
        let examples: [&[u8]; 3] = [
            // §7.2.3.3: a stored block.
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            // §7.2.3.5: two blocks in one message.
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
            // §7.2.3.4: a block with BFINAL set.
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
        ];
        let mut d = Decompressor::new(WindowBits::MAX, false, 64);
        for example in examples {
            assert_eq!(inflate(&mut d, example).unwrap(), b"Hello");
        }
        // After a final block the next message is a fresh stream.
        assert_eq!(inflate(&mut d, HELLO).unwrap(), b"Hello");
    }

    #[test]
    fn inflates_messages_from_c_zlib_with_a_small_window_and_takeover() {
        // Python's zlib 1.2.13, wbits=-9, level 9, sync flush per message, tails stripped.
        let first = [
            0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0xd7, 0x51, 0xc8, 0x40, 0xa2, 0x14, 0x15, 0x3c, 0xb0,
            0x08, 0x02, 0x00,
        ];
        let second = [
            0x02, 0x93, 0x0a, 0x89, 0xe9, 0x89, 0x99, 0x79, 0x3a, 0x58, 0x15, 0x00, 0x00,
        ];
        let mut d = Decompressor::new(bits(9), false, 1024);
        assert_eq!(
            inflate(&mut d, &first).unwrap(),
            b"Hello, hello, hello! Hello, hello, hello!"
        );
        assert_eq!(
            inflate(&mut d, &second).unwrap(),
            b"hello again, Hello, hello, hello!"
        );
    }

    #[test]
    fn inflates_a_message_split_at_any_frame_boundary() {
        let mut c = Compressor::new(6, WindowBits::MAX, false);
        let message: Vec<u8> = (0..3000u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        let payload = compress_all(&mut c, &message);
        for cut in 0..=payload.len() {
            let mut d = Decompressor::new(WindowBits::MAX, false, message.len());
            let mut out = Vec::new();
            d.decompress(&payload[..cut], false, &mut out).unwrap();
            d.decompress(&payload[cut..], true, &mut out).unwrap();
            assert_eq!(out, message, "cut at {cut}");
            assert_eq!(d.message_len(), 0);
        }
    }

    #[test]
    fn compresses_a_message_frame_by_frame() {
        let message = b"frame by frame, frame by frame, frame by frame".repeat(20);
        let mut c = Compressor::new(6, WindowBits::MAX, false);
        let mut d = Decompressor::new(WindowBits::MAX, false, 1 << 20);
        let mut out = Vec::new();
        for (i, part) in message.chunks(100).enumerate() {
            let mut frame = Vec::new();
            let last = (i + 1) * 100 >= message.len();
            c.compress_part(part, last, &mut frame).unwrap();
            d.decompress(&frame, last, &mut out).unwrap();
        }
        assert_eq!(out, message);
    }

    #[test]
    fn round_trips_with_every_window_and_takeover_mode() {
        let messages: Vec<Vec<u8>> = vec![
            b"the quick brown fox jumps over the lazy dog".repeat(50),
            Vec::new(),
            (0..5000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
            b"the quick brown fox".to_vec(),
        ];
        for n in 8..=15u8 {
            for no_takeover in [false, true] {
                let mut c = Compressor::new(6, bits(n), no_takeover);
                let mut d = Decompressor::new(bits(n), no_takeover, 1 << 20);
                for message in &messages {
                    let payload = compress_all(&mut c, message);
                    assert!(payload.len() <= Compressor::max_compressed_len(message.len()));
                    assert_eq!(&inflate(&mut d, &payload).unwrap(), message, "bits {n}");
                }
            }
        }
    }

    #[test]
    fn incompressible_data_stays_within_the_advertised_bound() {
        let mut state = 0x9e37_79b9_u32;
        let noise: Vec<u8> = (0..70_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        for level in 0..=9 {
            for n in [9u8, 12, 15] {
                let mut c = Compressor::new(level, bits(n), false);
                for len in [0, 1, 8, 100, 4096, 70_000] {
                    let payload = compress_all(&mut c, &noise[..len]);
                    let bound = Compressor::max_compressed_len(len);
                    assert!(
                        payload.len() <= bound,
                        "level {level} bits {n} len {len}: {} > {bound}",
                        payload.len()
                    );
                }
            }
        }
    }

    #[test]
    fn empty_message_compresses_to_one_zero_byte() {
        let mut c = Compressor::new(6, WindowBits::MAX, false);
        let mut d = Decompressor::new(WindowBits::MAX, false, 16);
        // Twice: the second follows a sync flush, where zlib itself emits nothing.
        for _ in 0..2 {
            assert_eq!(compress_all(&mut c, b""), [0x00]);
            assert_eq!(inflate(&mut d, &[0x00]).unwrap(), b"");
        }
        assert_eq!(
            inflate(&mut d, &compress_all(&mut c, b"Hello")).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn zip_bomb_stops_at_the_bound_without_allocating_past_it() {
        let mut c = Compressor::new(9, WindowBits::MAX, false);
        let bomb = compress_all(&mut c, &vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        let limit = 100_000;
        let mut d = Decompressor::new(WindowBits::MAX, false, limit);
        let mut out = Vec::new();
        assert_eq!(
            d.decompress(&bomb, true, &mut out),
            Err(DeflateError::MessageTooBig { limit })
        );
        assert!(out.len() <= limit);
        assert!(out.capacity() <= limit, "capacity {}", out.capacity());
    }

    #[test]
    fn bound_counts_the_whole_message_across_frames() {
        let mut c = Compressor::new(6, WindowBits::MAX, false);
        let payload = compress_all(&mut c, &[7u8; 1000]);
        let (first, second) = payload.split_at(payload.len() / 2);
        let mut exact = Decompressor::new(WindowBits::MAX, false, 1000);
        let mut out = Vec::new();
        exact.decompress(first, false, &mut out).unwrap();
        exact.decompress(second, true, &mut out).unwrap();
        assert_eq!(out.len(), 1000);
        let mut short = Decompressor::new(WindowBits::MAX, false, 999);
        let mut out = Vec::new();
        let result = short
            .decompress(first, false, &mut out)
            .and_then(|()| short.decompress(second, true, &mut out));
        assert_eq!(result, Err(DeflateError::MessageTooBig { limit: 999 }));
    }

    #[test]
    fn garbage_is_invalid_data() {
        for garbage in [
            &[0xffu8; 8][..],
            &[0x07, 0x00],
            &[0x00, 0x05, 0x00, 0x00, 0x00],
        ] {
            let mut d = Decompressor::new(WindowBits::MAX, false, 1 << 16);
            assert_eq!(
                inflate(&mut d, garbage),
                Err(DeflateError::InvalidData),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn errors_map_to_close_codes() {
        assert_eq!(DeflateError::MessageTooBig { limit: 1 }.close_code(), 1009);
        assert_eq!(DeflateError::InvalidData.close_code(), 1002);
        assert_eq!(DeflateError::CompressionFailed.close_code(), 1011);
    }

    #[test]
    fn params_build_matching_codecs_for_each_side() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: bits(9),
            client_max_window_bits: bits(11),
        };
        let message = b"abcabcabcabc".repeat(100);
        let mut to_client = params.compressor(Side::Server, 6);
        let mut at_client = params.decompressor(Side::Client, 1 << 20);
        let mut to_server = params.compressor(Side::Client, 6);
        let mut at_server = params.decompressor(Side::Server, 1 << 20);
        for _ in 0..3 {
            let down = compress_all(&mut to_client, &message);
            assert_eq!(inflate(&mut at_client, &down).unwrap(), message);
            let up = compress_all(&mut to_server, &message);
            assert_eq!(inflate(&mut at_server, &up).unwrap(), message);
        }
    }
}
