//! Encoding frames into a caller-owned buffer (RFC 9113 §4.1, §6).

use bytes::{BufMut, BytesMut};

use super::error::PayloadTooLarge;
use super::frame::{FRAME_HEADER_LEN, Frame, FrameHeader, MAX_PAYLOAD_LEN, Priority, flags, kind};

const LOW_31: u32 = !(1 << 31);

/// Appends `frame` to `dst`: header and payload, padding written as zeros.
///
/// 31-bit fields (stream identifiers, the promised stream, last-stream-id, the window
/// increment, the priority dependency) are written with their high bit cleared. The frame is
/// written as given: checking it against the peer's SETTINGS_MAX_FRAME_SIZE, or that a
/// WINDOW_UPDATE increment is not 0, is the sender's job. The only refusal is a payload the
/// 24-bit length cannot describe, and then nothing is written.
pub fn encode(frame: &Frame, dst: &mut BytesMut) -> Result<(), PayloadTooLarge> {
    let len = payload_len(frame);
    let length = u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_PAYLOAD_LEN)
        .ok_or(PayloadTooLarge { len })?;
    dst.reserve(FRAME_HEADER_LEN + len);
    let (ty, fl) = kind_and_flags(frame);
    let header = FrameHeader {
        length,
        kind: ty,
        flags: fl,
        stream: frame.stream(),
    };
    dst.put_slice(&header.to_bytes());
    match frame {
        Frame::Data { pad_len, data, .. } => {
            put_padded(dst, *pad_len, |dst| dst.put_slice(data));
        }
        Frame::Headers {
            priority,
            pad_len,
            fragment,
            ..
        } => put_padded(dst, *pad_len, |dst| {
            if let Some(p) = priority {
                put_priority(dst, p);
            }
            dst.put_slice(fragment);
        }),
        Frame::Priority { priority, .. } => put_priority(dst, priority),
        Frame::RstStream { code, .. } => dst.put_u32((*code).into()),
        Frame::Settings { settings, .. } => {
            for &(id, value) in settings.pairs() {
                dst.put_u16(id);
                dst.put_u32(value);
            }
        }
        Frame::PushPromise {
            pad_len,
            promised,
            fragment,
            ..
        } => put_padded(dst, *pad_len, |dst| {
            dst.put_u32(promised & LOW_31);
            dst.put_slice(fragment);
        }),
        Frame::Ping { data, .. } => dst.put_slice(data),
        Frame::GoAway {
            last_stream,
            code,
            debug,
        } => {
            dst.put_u32(last_stream & LOW_31);
            dst.put_u32((*code).into());
            dst.put_slice(debug);
        }
        Frame::WindowUpdate { increment, .. } => dst.put_u32(increment & LOW_31),
        Frame::Continuation { fragment, .. } => dst.put_slice(fragment),
        Frame::Unknown { payload, .. } => dst.put_slice(payload),
    }
    Ok(())
}

/// The payload length `frame` will have, in `usize` so huge payloads cannot wrap.
fn payload_len(frame: &Frame) -> usize {
    let padding = |pad_len: &Option<u8>| pad_len.map_or(0, |p| 1 + usize::from(p));
    match frame {
        Frame::Data { pad_len, data, .. } => padding(pad_len) + data.len(),
        Frame::Headers {
            priority,
            pad_len,
            fragment,
            ..
        } => padding(pad_len) + if priority.is_some() { 5 } else { 0 } + fragment.len(),
        Frame::Priority { .. } => 5,
        Frame::RstStream { .. } | Frame::WindowUpdate { .. } => 4,
        Frame::Settings { settings, .. } => settings.pairs().len().saturating_mul(6),
        Frame::PushPromise {
            pad_len, fragment, ..
        } => padding(pad_len) + 4 + fragment.len(),
        Frame::Ping { .. } => 8,
        Frame::GoAway { debug, .. } => 8 + debug.len(),
        Frame::Continuation { fragment, .. } => fragment.len(),
        Frame::Unknown { payload, .. } => payload.len(),
    }
}

fn kind_and_flags(frame: &Frame) -> (u8, u8) {
    let bit = |on: bool, flag: u8| if on { flag } else { 0 };
    match frame {
        Frame::Data {
            end_stream,
            pad_len,
            ..
        } => (
            kind::DATA,
            bit(*end_stream, flags::END_STREAM) | bit(pad_len.is_some(), flags::PADDED),
        ),
        Frame::Headers {
            end_stream,
            end_headers,
            priority,
            pad_len,
            ..
        } => (
            kind::HEADERS,
            bit(*end_stream, flags::END_STREAM)
                | bit(*end_headers, flags::END_HEADERS)
                | bit(pad_len.is_some(), flags::PADDED)
                | bit(priority.is_some(), flags::PRIORITY),
        ),
        Frame::Priority { .. } => (kind::PRIORITY, 0),
        Frame::RstStream { .. } => (kind::RST_STREAM, 0),
        Frame::Settings { ack, .. } => (kind::SETTINGS, bit(*ack, flags::ACK)),
        Frame::PushPromise {
            end_headers,
            pad_len,
            ..
        } => (
            kind::PUSH_PROMISE,
            bit(*end_headers, flags::END_HEADERS) | bit(pad_len.is_some(), flags::PADDED),
        ),
        Frame::Ping { ack, .. } => (kind::PING, bit(*ack, flags::ACK)),
        Frame::GoAway { .. } => (kind::GOAWAY, 0),
        Frame::WindowUpdate { .. } => (kind::WINDOW_UPDATE, 0),
        Frame::Continuation { end_headers, .. } => {
            (kind::CONTINUATION, bit(*end_headers, flags::END_HEADERS))
        }
        Frame::Unknown { kind, flags, .. } => (*kind, *flags),
    }
}

/// Writes the Pad Length field, the body, then the zero padding (§6.1).
fn put_padded(dst: &mut BytesMut, pad_len: Option<u8>, body: impl FnOnce(&mut BytesMut)) {
    if let Some(p) = pad_len {
        dst.put_u8(p);
    }
    body(dst);
    if let Some(p) = pad_len {
        dst.put_bytes(0, usize::from(p));
    }
}

fn put_priority(dst: &mut BytesMut, p: &Priority) {
    let exclusive = if p.exclusive { 1 << 31 } else { 0 };
    dst.put_u32(exclusive | (p.dependency & LOW_31));
    dst.put_u8(p.weight);
}
