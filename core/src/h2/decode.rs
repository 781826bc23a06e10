//! Decoding frames from a byte buffer (RFC 9113 §4, §6): wait for a whole frame, refuse one
//! larger than we allow before buffering it, and check every per-type rule of §6 with the
//! error code and scope the RFC gives.

use bytes::{Buf, Bytes, BytesMut};

use super::error::{ErrorCode, FrameError, FrameRule};
use super::frame::{FRAME_HEADER_LEN, Frame, FrameHeader, Priority, Settings, flags, kind};

/// Takes the next frame off the front of `buf`.
///
/// - `Ok(None)`: the frame is not complete yet; nothing was consumed. Read more and call again.
///   Only the 9-byte header is looked at, so calling again costs nothing per byte already held.
/// - `Ok(Some(frame))`: the frame was consumed.
/// - `Err(e)` with a stream scope: the frame was consumed; answer with RST_STREAM and go on.
/// - `Err(e)` with the connection scope: answer with GOAWAY and close. A frame longer than
///   `max_frame_size` (our SETTINGS_MAX_FRAME_SIZE, §4.2) is refused as soon as its header is
///   complete, before its payload is buffered, and is not consumed.
pub fn decode(buf: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>, FrameError> {
    let Some(head) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let header = FrameHeader::parse(head);
    if header.length > max_frame_size {
        // §4.2: MAY be a connection error in every case, and MUST be for frames that alter
        // connection state; we cannot skip a payload we refuse to buffer, so always.
        return Err(FrameError::connection(
            FrameRule::TooLarge,
            ErrorCode::FrameSizeError,
        ));
    }
    // `length` is at most 2^24 - 1, so this cannot overflow.
    let total = FRAME_HEADER_LEN + header.length as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut payload = buf.split_to(total).freeze();
    payload.advance(FRAME_HEADER_LEN);
    parse_payload(header, payload).map(Some)
}

/// Builds the frame from a complete header and payload, checking the rules of §6.
fn parse_payload(header: FrameHeader, payload: Bytes) -> Result<Frame, FrameError> {
    let FrameHeader {
        kind: ty,
        flags: fl,
        stream,
        ..
    } = header;
    match ty {
        kind::DATA => {
            // §6.1: stream 0 → connection PROTOCOL_ERROR.
            require_stream(stream)?;
            let (pad_len, data) = strip_padding(fl, payload, 0)?;
            Ok(Frame::Data {
                stream,
                end_stream: fl & flags::END_STREAM != 0,
                pad_len,
                data,
            })
        }
        kind::HEADERS => {
            // §6.2: stream 0 → connection PROTOCOL_ERROR.
            require_stream(stream)?;
            let has_priority = fl & flags::PRIORITY != 0;
            let (pad_len, mut rest) = strip_padding(fl, payload, if has_priority { 5 } else { 0 })?;
            let priority = has_priority.then(|| read_priority(&mut rest));
            Ok(Frame::Headers {
                stream,
                end_stream: fl & flags::END_STREAM != 0,
                end_headers: fl & flags::END_HEADERS != 0,
                priority,
                pad_len,
                fragment: rest,
            })
        }
        kind::PRIORITY => {
            // §6.3: stream 0 → connection PROTOCOL_ERROR; length other than 5 → *stream*
            // FRAME_SIZE_ERROR.
            require_stream(stream)?;
            let mut payload = payload;
            if payload.len() != 5 {
                return Err(FrameError::stream(
                    FrameRule::BadLength,
                    ErrorCode::FrameSizeError,
                    stream,
                ));
            }
            Ok(Frame::Priority {
                stream,
                priority: read_priority(&mut payload),
            })
        }
        kind::RST_STREAM => {
            // §6.4: stream 0 → connection PROTOCOL_ERROR; length other than 4 → connection
            // FRAME_SIZE_ERROR.
            require_stream(stream)?;
            let mut payload = payload;
            require_len(payload.len() == 4)?;
            Ok(Frame::RstStream {
                stream,
                code: ErrorCode::from(payload.get_u32()),
            })
        }
        kind::SETTINGS => {
            // §6.5: not on a stream; ACK with payload, or a length not a multiple of 6 →
            // connection FRAME_SIZE_ERROR.
            require_connection(stream)?;
            let ack = fl & flags::ACK != 0;
            if ack && !payload.is_empty() {
                return Err(FrameError::connection(
                    FrameRule::SettingsAckWithPayload,
                    ErrorCode::FrameSizeError,
                ));
            }
            require_len(payload.len() % 6 == 0)?;
            let mut payload = payload;
            let mut settings = Settings::new();
            while payload.has_remaining() {
                let id = payload.get_u16();
                let value = payload.get_u32();
                check_setting(id, value)?;
                settings.push(id, value);
            }
            Ok(Frame::Settings { ack, settings })
        }
        kind::PUSH_PROMISE => {
            // §6.6: stream 0 → connection PROTOCOL_ERROR.
            require_stream(stream)?;
            let (pad_len, mut rest) = strip_padding(fl, payload, 4)?;
            let promised = rest.get_u32() & !(1 << 31);
            if promised == 0 {
                return Err(FrameError::connection(
                    FrameRule::PromisedStreamZero,
                    ErrorCode::ProtocolError,
                ));
            }
            Ok(Frame::PushPromise {
                stream,
                end_headers: fl & flags::END_HEADERS != 0,
                pad_len,
                promised,
                fragment: rest,
            })
        }
        kind::PING => {
            // §6.7: not on a stream; length other than 8 → connection FRAME_SIZE_ERROR.
            require_connection(stream)?;
            let Ok(data) = <[u8; 8]>::try_from(payload.as_ref()) else {
                return Err(bad_length());
            };
            Ok(Frame::Ping {
                ack: fl & flags::ACK != 0,
                data,
            })
        }
        kind::GOAWAY => {
            // §6.8: not on a stream; the fixed part is 8 bytes.
            require_connection(stream)?;
            require_len(payload.len() >= 8)?;
            let mut payload = payload;
            let last_stream = payload.get_u32() & !(1 << 31);
            let code = ErrorCode::from(payload.get_u32());
            Ok(Frame::GoAway {
                last_stream,
                code,
                debug: payload,
            })
        }
        kind::WINDOW_UPDATE => {
            // §6.9: length other than 4 → connection FRAME_SIZE_ERROR; increment 0 → stream
            // PROTOCOL_ERROR on a stream, connection PROTOCOL_ERROR on stream 0.
            require_len(payload.len() == 4)?;
            let mut payload = payload;
            let increment = payload.get_u32() & !(1 << 31);
            if increment == 0 {
                return Err(if stream == 0 {
                    FrameError::connection(FrameRule::ZeroWindowIncrement, ErrorCode::ProtocolError)
                } else {
                    FrameError::stream(
                        FrameRule::ZeroWindowIncrement,
                        ErrorCode::ProtocolError,
                        stream,
                    )
                });
            }
            Ok(Frame::WindowUpdate { stream, increment })
        }
        kind::CONTINUATION => {
            // §6.10: stream 0 → connection PROTOCOL_ERROR.
            require_stream(stream)?;
            Ok(Frame::Continuation {
                stream,
                end_headers: fl & flags::END_HEADERS != 0,
                fragment: payload,
            })
        }
        _ => Ok(Frame::Unknown {
            kind: ty,
            flags: fl,
            stream,
            payload,
        }),
    }
}

fn bad_length() -> FrameError {
    FrameError::connection(FrameRule::BadLength, ErrorCode::FrameSizeError)
}

fn require_len(ok: bool) -> Result<(), FrameError> {
    if ok { Ok(()) } else { Err(bad_length()) }
}

fn require_stream(stream: u32) -> Result<(), FrameError> {
    if stream == 0 {
        Err(FrameError::connection(
            FrameRule::StreamZero,
            ErrorCode::ProtocolError,
        ))
    } else {
        Ok(())
    }
}

fn require_connection(stream: u32) -> Result<(), FrameError> {
    if stream != 0 {
        Err(FrameError::connection(
            FrameRule::StreamNonZero,
            ErrorCode::ProtocolError,
        ))
    } else {
        Ok(())
    }
}

/// Removes the Pad Length field and the padding when PADDED is set, leaving the fixed fields
/// (`fixed` bytes: priority or promised stream) and the content. A payload too short for the
/// Pad Length field and the fixed fields is a FRAME_SIZE_ERROR (§4.2); padding longer than
/// what remains after them is a PROTOCOL_ERROR (§6.1, §6.2, §6.6). Both are connection errors.
fn strip_padding(
    fl: u8,
    mut payload: Bytes,
    fixed: usize,
) -> Result<(Option<u8>, Bytes), FrameError> {
    if fl & flags::PADDED == 0 {
        require_len(payload.len() >= fixed)?;
        return Ok((None, payload));
    }
    require_len(payload.len() > fixed)?;
    let pad_len = payload.get_u8();
    let room = payload.len() - fixed;
    if usize::from(pad_len) > room {
        return Err(FrameError::connection(
            FrameRule::PaddingTooLong,
            ErrorCode::ProtocolError,
        ));
    }
    payload.truncate(payload.len() - usize::from(pad_len));
    Ok((Some(pad_len), payload))
}

/// Reads the 5 bytes of priority fields; the caller has checked they are there.
fn read_priority(buf: &mut Bytes) -> Priority {
    let word = buf.get_u32();
    Priority {
        exclusive: word & (1 << 31) != 0,
        dependency: word & !(1 << 31),
        weight: buf.get_u8(),
    }
}

/// The value bounds of §6.5.2; all are connection errors.
fn check_setting(id: u16, value: u32) -> Result<(), FrameError> {
    let broken = match id {
        Settings::ENABLE_PUSH if value > 1 => {
            Some((FrameRule::InvalidEnablePush, ErrorCode::ProtocolError))
        }
        Settings::INITIAL_WINDOW_SIZE if value > (1 << 31) - 1 => Some((
            FrameRule::InvalidInitialWindowSize,
            ErrorCode::FlowControlError,
        )),
        Settings::MAX_FRAME_SIZE if !(16_384..=16_777_215).contains(&value) => {
            Some((FrameRule::InvalidMaxFrameSize, ErrorCode::ProtocolError))
        }
        _ => None,
    };
    match broken {
        Some((rule, code)) => Err(FrameError::connection(rule, code)),
        None => Ok(()),
    }
}
