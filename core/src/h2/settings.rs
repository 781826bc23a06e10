//! SETTINGS as a connection uses them (RFC 9113 §6.5): the ones we advertise, the peer's as
//! they stand, and reading the `HTTP2-Settings` field of an h2c upgrade.

use bytes::BytesMut;

use super::decode::decode;
use super::error::{ErrorCode, FrameError, FrameRule};
use super::frame::{
    DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, Frame, FrameHeader, MAX_PAYLOAD_LEN, Settings, kind,
};
use crate::Limits;

/// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3): we accept extended CONNECT.
pub(super) const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

/// The header table size every HPACK context starts with (RFC 9113 §6.5.2).
pub(super) const DEFAULT_HEADER_TABLE_SIZE: u32 = 4096;

impl Settings {
    /// Reads a SETTINGS payload without its frame header, as carried (base64url-decoded) by
    /// the `HTTP2-Settings` field of an `Upgrade: h2c` request (RFC 7540 §3.2.1). The same
    /// rules as for a SETTINGS frame apply: a length that is not a multiple of 6 is
    /// `FRAME_SIZE_ERROR`, out-of-range values are errors (§6.5.2).
    pub fn from_payload(payload: &[u8]) -> Result<Settings, FrameError> {
        let too_long = || FrameError {
            rule: FrameRule::BadLength,
            code: ErrorCode::FrameSizeError,
            scope: super::error::ErrorScope::Connection,
        };
        let length = u32::try_from(payload.len())
            .ok()
            .filter(|&len| len <= MAX_PAYLOAD_LEN)
            .ok_or_else(too_long)?;
        let header = FrameHeader {
            length,
            kind: kind::SETTINGS,
            flags: 0,
            stream: 0,
        };
        let mut buf = BytesMut::with_capacity(FRAME_HEADER_LEN + payload.len());
        buf.extend_from_slice(&header.to_bytes());
        buf.extend_from_slice(payload);
        match decode(&mut buf, length) {
            Ok(Some(Frame::Settings { settings, .. })) => Ok(settings),
            Ok(_) => Err(too_long()),
            Err(error) => Err(error),
        }
    }
}

/// Our SETTINGS frame, from the limits.
pub(super) fn local_settings(limits: &Limits) -> Settings {
    let h2 = &limits.h2;
    let max_header_list = u32::try_from(limits.max_head_size).unwrap_or(u32::MAX);
    [
        (Settings::HEADER_TABLE_SIZE, h2.header_table_size),
        (Settings::MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams),
        (Settings::INITIAL_WINDOW_SIZE, h2.initial_window_size),
        (Settings::MAX_FRAME_SIZE, h2.max_frame_size),
        (Settings::MAX_HEADER_LIST_SIZE, max_header_list),
        (ENABLE_CONNECT_PROTOCOL, 1),
    ]
    .into_iter()
    .collect()
}

/// The peer's settings as they stand (§6.5.2 initial values until it says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerSettings {
    pub(super) header_table_size: u32,
    pub(super) enable_push: bool,
    pub(super) max_concurrent_streams: u32,
    pub(super) initial_window_size: u32,
    pub(super) max_frame_size: u32,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            header_table_size: DEFAULT_HEADER_TABLE_SIZE,
            enable_push: true,
            max_concurrent_streams: u32::MAX,
            initial_window_size: u32::from(u16::MAX),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

impl PeerSettings {
    /// Applies `settings` in order (§6.5.3); unknown identifiers are ignored (§6.5.2). The
    /// decoder already refused out-of-range values.
    pub(super) fn apply(&mut self, settings: &Settings) {
        for &(id, value) in settings.pairs() {
            match id {
                Settings::HEADER_TABLE_SIZE => self.header_table_size = value,
                Settings::ENABLE_PUSH => self.enable_push = value != 0,
                Settings::MAX_CONCURRENT_STREAMS => self.max_concurrent_streams = value,
                Settings::INITIAL_WINDOW_SIZE => self.initial_window_size = value,
                Settings::MAX_FRAME_SIZE => self.max_frame_size = value,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_payload_reads_pairs() {
        let settings = Settings::from_payload(&[0, 4, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]).unwrap();
        assert_eq!(settings.initial_window_size(), Some(65_536));
        assert_eq!(settings.enable_push(), Some(false));
        assert!(Settings::from_payload(&[]).unwrap().is_empty());
    }

    #[test]
    fn from_payload_refuses_bad_length_and_values() {
        let error = Settings::from_payload(&[0, 4, 0, 1, 0]).unwrap_err();
        assert_eq!(error.code, ErrorCode::FrameSizeError);
        let error = Settings::from_payload(&[0, 2, 0, 0, 0, 2]).unwrap_err();
        assert_eq!(error.code, ErrorCode::ProtocolError);
        // Past what a frame's 24-bit length can carry.
        let huge = vec![0; (1 << 24) + 2];
        let error = Settings::from_payload(&huge).unwrap_err();
        assert_eq!(error.code, ErrorCode::FrameSizeError);
    }

    #[test]
    fn peer_settings_apply_in_order() {
        let mut peer = PeerSettings::default();
        let settings: Settings = [(Settings::MAX_FRAME_SIZE, 20_000), (0x99, 1), (0x5, 30_000)]
            .into_iter()
            .collect();
        peer.apply(&settings);
        assert_eq!(peer.max_frame_size, 30_000);
    }
}
