//! The connection's output: every frame we send is written straight into one buffer the
//! driver drains, split to the peer's SETTINGS_MAX_FRAME_SIZE (RFC 9113 §4.2), with no
//! intermediate frame values or per-frame allocations.

use bytes::{BufMut, Bytes, BytesMut};

use super::encode::encode;
use super::error::ErrorCode;
use super::frame::{
    DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, Frame, FrameHeader, Settings, flags, kind,
};
use super::server::StreamId;

/// What opens a field block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlockStart {
    /// HEADERS, with END_STREAM or not.
    Headers {
        /// END_STREAM on the HEADERS frame.
        end_stream: bool,
    },
    /// PUSH_PROMISE promising this stream.
    PushPromise(StreamId),
}

/// The bytes waiting for the socket.
#[derive(Debug)]
pub(super) struct Output {
    buf: BytesMut,
    /// The peer's SETTINGS_MAX_FRAME_SIZE.
    max_frame: usize,
}

impl Output {
    pub(super) fn new() -> Self {
        Output {
            buf: BytesMut::with_capacity(16 * 1024),
            max_frame: DEFAULT_MAX_FRAME_SIZE as usize,
        }
    }

    /// Applies the peer's SETTINGS_MAX_FRAME_SIZE.
    pub(super) fn set_max_frame_size(&mut self, size: u32) {
        self.max_frame = usize::try_from(size).unwrap_or(DEFAULT_MAX_FRAME_SIZE as usize);
    }

    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops everything queued (the peer stopped reading: none of it can get out).
    pub(super) fn clear(&mut self) {
        self.buf = BytesMut::new();
    }

    /// Everything queued, handed over.
    pub(super) fn take(&mut self) -> Option<Bytes> {
        if self.buf.is_empty() {
            None
        } else {
            Some(self.buf.split().freeze())
        }
    }

    fn header(&mut self, length: usize, ty: u8, fl: u8, stream: StreamId) {
        let header = FrameHeader {
            length: u32::try_from(length).unwrap_or(0),
            kind: ty,
            flags: fl,
            stream,
        };
        self.buf.put_slice(&header.to_bytes());
    }

    /// A frame built as a value (the rare ones: SETTINGS, GOAWAY).
    fn frame(&mut self, frame: &Frame) {
        // Only fails for payloads over 2^24 - 1 bytes, which these never have.
        let _ = encode(frame, &mut self.buf);
    }

    pub(super) fn settings(&mut self, settings: Settings) {
        self.frame(&Frame::Settings {
            ack: false,
            settings,
        });
    }

    pub(super) fn settings_ack(&mut self) {
        self.header(0, kind::SETTINGS, flags::ACK, 0);
    }

    pub(super) fn ping_ack(&mut self, data: [u8; 8]) {
        self.header(8, kind::PING, flags::ACK, 0);
        self.buf.put_slice(&data);
    }

    /// A PING of ours (not an ACK), carrying `data`.
    pub(super) fn ping(&mut self, data: [u8; 8]) {
        self.header(8, kind::PING, 0, 0);
        self.buf.put_slice(&data);
    }

    pub(super) fn window_update(&mut self, stream: StreamId, increment: u32) {
        self.header(4, kind::WINDOW_UPDATE, 0, stream);
        self.buf.put_u32(increment);
    }

    pub(super) fn rst_stream(&mut self, stream: StreamId, code: ErrorCode) {
        self.header(4, kind::RST_STREAM, 0, stream);
        self.buf.put_u32(code.into());
    }

    pub(super) fn goaway(&mut self, last_stream: StreamId, code: ErrorCode, debug: &'static str) {
        self.frame(&Frame::GoAway {
            last_stream,
            code,
            debug: Bytes::from_static(debug.as_bytes()),
        });
    }

    /// DATA frames carrying `data`, each at most the peer's frame size; END_STREAM on the last.
    /// An empty `data` with `end_stream` is one empty DATA frame.
    pub(super) fn data(&mut self, stream: StreamId, data: &[u8], end_stream: bool) {
        self.buf
            .reserve(data.len() + FRAME_HEADER_LEN * (1 + data.len() / self.max_frame.max(1)));
        let mut chunks = data.chunks(self.max_frame.max(1)).peekable();
        if chunks.peek().is_none() {
            let fl = if end_stream { flags::END_STREAM } else { 0 };
            self.header(0, kind::DATA, fl, stream);
            return;
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let fl = if last && end_stream {
                flags::END_STREAM
            } else {
                0
            };
            self.header(chunk.len(), kind::DATA, fl, stream);
            self.buf.put_slice(chunk);
        }
    }

    /// A field block on `stream`: `write_block` appends the HPACK-encoded block, which is
    /// encoded in place behind a frame header and split into HEADERS (or PUSH_PROMISE) plus
    /// CONTINUATION frames only when it does not fit one frame (§4.3).
    pub(super) fn field_block(
        &mut self,
        stream: StreamId,
        start: BlockStart,
        write_block: impl FnOnce(&mut BytesMut),
    ) {
        let frame_start = self.buf.len();
        self.buf.put_bytes(0, FRAME_HEADER_LEN);
        let (ty, first_flags, prefix) = match start {
            BlockStart::Headers { end_stream } => (
                kind::HEADERS,
                if end_stream { flags::END_STREAM } else { 0 },
                0,
            ),
            BlockStart::PushPromise(promised) => {
                self.buf.put_u32(promised);
                (kind::PUSH_PROMISE, 0, 4)
            }
        };
        write_block(&mut self.buf);
        let payload = self.buf.len() - frame_start - FRAME_HEADER_LEN;
        if payload <= self.max_frame {
            self.patch_header(
                frame_start,
                payload,
                ty,
                first_flags | flags::END_HEADERS,
                stream,
            );
            return;
        }
        // Too large for one frame: cut the block off and write it again as several frames.
        let block = self.buf.split_off(frame_start + FRAME_HEADER_LEN + prefix);
        self.buf.truncate(frame_start);
        let first_len = self.max_frame.saturating_sub(prefix).max(1);
        let (first, rest) = block.split_at(first_len.min(block.len()));
        let end_headers = if rest.is_empty() {
            flags::END_HEADERS
        } else {
            0
        };
        self.header(first.len() + prefix, ty, first_flags | end_headers, stream);
        if let BlockStart::PushPromise(promised) = start {
            self.buf.put_u32(promised);
        }
        self.buf.put_slice(first);
        let mut chunks = rest.chunks(self.max_frame.max(1)).peekable();
        while let Some(chunk) = chunks.next() {
            let fl = if chunks.peek().is_none() {
                flags::END_HEADERS
            } else {
                0
            };
            self.header(chunk.len(), kind::CONTINUATION, fl, stream);
            self.buf.put_slice(chunk);
        }
    }

    fn patch_header(&mut self, at: usize, length: usize, ty: u8, fl: u8, stream: StreamId) {
        let header = FrameHeader {
            length: u32::try_from(length).unwrap_or(0),
            kind: ty,
            flags: fl,
            stream,
        };
        if let Some(slot) = self.buf.get_mut(at..at + FRAME_HEADER_LEN) {
            slot.copy_from_slice(&header.to_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::decode;
    use super::*;

    fn frames(output: &mut Output) -> Vec<Frame> {
        let mut buf = BytesMut::from(&output.take().unwrap_or_default()[..]);
        let mut frames = Vec::new();
        while let Some(frame) = decode(&mut buf, 1 << 24).unwrap() {
            frames.push(frame);
        }
        assert!(buf.is_empty());
        frames
    }

    #[test]
    fn small_block_is_one_headers_frame() {
        let mut output = Output::new();
        output.field_block(1, BlockStart::Headers { end_stream: true }, |buf| {
            buf.put_slice(b"abc")
        });
        let frames = frames(&mut output);
        assert!(matches!(
            &frames[..],
            [Frame::Headers { stream: 1, end_stream: true, end_headers: true, fragment, .. }]
                if &fragment[..] == b"abc"
        ));
    }

    #[test]
    fn large_block_is_split_into_continuations() {
        let mut output = Output::new();
        let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        output.field_block(3, BlockStart::PushPromise(2), |buf| buf.put_slice(&block));
        let frames = frames(&mut output);
        assert_eq!(frames.len(), 3);
        let mut joined = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            match frame {
                Frame::PushPromise {
                    stream: 3,
                    promised: 2,
                    end_headers: false,
                    fragment,
                    ..
                } if i == 0 => joined.extend_from_slice(fragment),
                Frame::Continuation {
                    stream: 3,
                    end_headers,
                    fragment,
                } if i > 0 => {
                    assert_eq!(*end_headers, i == 2);
                    joined.extend_from_slice(fragment);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(joined, block);
    }

    #[test]
    fn data_is_split_to_the_frame_size() {
        let mut output = Output::new();
        output.data(5, &[7; 20_000], true);
        output.data(5, &[], true);
        let frames = frames(&mut output);
        assert_eq!(frames.len(), 3);
        assert!(
            matches!(&frames[0], Frame::Data { end_stream: false, data, .. } if data.len() == 16_384)
        );
        assert!(
            matches!(&frames[1], Frame::Data { end_stream: true, data, .. } if data.len() == 3_616)
        );
        assert!(
            matches!(&frames[2], Frame::Data { end_stream: true, data, .. } if data.is_empty())
        );
    }
}
