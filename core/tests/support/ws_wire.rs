//! What a WebSocket connection wants written, for the WebSocket integration tests.

use std::time::Instant;

use weft_core::ws::Connection;

/// All the bytes `conn` wants written at `now` (bounded: at most 100 pieces).
pub(crate) fn written(conn: &mut Connection, now: Instant) -> Vec<u8> {
    let mut wire = Vec::new();
    for _ in 0..100 {
        match conn.poll_transmit(now) {
            Some(bytes) => wire.extend_from_slice(&bytes),
            None => break,
        }
    }
    wire
}
