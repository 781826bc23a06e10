//! Every abuse budget of an HTTP/2 connection in one place (RFC 9113 §10.5).
//!
//! Frames that cost us work but carry no request progress are counted per
//! [`Http2Limits::flood_window`], using the time the connection was last told (so tests are
//! deterministic); crossing a budget is a connection error, GOAWAY `ENHANCE_YOUR_CALM`. The
//! budgets are for kinds of frames a well-behaved client sends rarely; legitimate traffic
//! stays far below the defaults.

use std::time::Instant;

use super::error::ErrorCode;
use super::server::ConnectionError;
use crate::Http2Limits;

/// A kind of frame or event counted against a per-window budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Abuse {
    /// The client reset a stream whose response had not finished (rapid reset,
    /// CVE-2023-44487).
    ClientReset,
    /// We reset a stream because the client broke a stream rule (MadeYouReset,
    /// CVE-2025-8671).
    ErrorReset,
    /// A SETTINGS frame.
    Settings,
    /// A PING frame.
    Ping,
    /// A frame that carries no progress: zero-length DATA without END_STREAM, an empty
    /// HEADERS or CONTINUATION fragment without END_HEADERS, a GOAWAY after the first.
    EmptyFrame,
    /// A WINDOW_UPDATE frame.
    WindowUpdate,
    /// A PRIORITY or PRIORITY_UPDATE frame.
    Priority,
}

const KINDS: usize = 7;

impl Abuse {
    fn index(self) -> usize {
        match self {
            Abuse::ClientReset => 0,
            Abuse::ErrorReset => 1,
            Abuse::Settings => 2,
            Abuse::Ping => 3,
            Abuse::EmptyFrame => 4,
            Abuse::WindowUpdate => 5,
            Abuse::Priority => 6,
        }
    }

    fn budget(self, limits: &Http2Limits) -> u32 {
        match self {
            Abuse::ClientReset => limits.max_client_resets,
            Abuse::ErrorReset => limits.max_error_resets,
            Abuse::Settings => limits.max_settings_frames,
            Abuse::Ping => limits.max_ping_frames,
            Abuse::EmptyFrame => limits.max_empty_frames,
            Abuse::WindowUpdate => limits.max_window_update_frames,
            Abuse::Priority => limits.max_priority_frames,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Abuse::ClientReset => "too many streams reset by the client (rapid reset)",
            Abuse::ErrorReset => "too many streams reset for breaking stream rules",
            Abuse::Settings => "SETTINGS flood",
            Abuse::Ping => "PING flood",
            Abuse::EmptyFrame => "flood of empty frames",
            Abuse::WindowUpdate => "WINDOW_UPDATE flood",
            Abuse::Priority => "PRIORITY flood",
        }
    }
}

/// The counters, one per [`Abuse`] kind for the current window, and the lifetime count of
/// stream errors.
#[derive(Debug, Clone)]
pub(super) struct FloodGuard {
    budgets: [u32; KINDS],
    counts: [u32; KINDS],
    window: std::time::Duration,
    window_start: Instant,
    stream_errors: u32,
    max_stream_errors: u32,
    max_continuations: u32,
    max_block: usize,
}

fn calm(reason: &'static str) -> ConnectionError {
    ConnectionError {
        code: ErrorCode::EnhanceYourCalm,
        reason,
    }
}

impl FloodGuard {
    /// Budgets from `limits`, the first window starting at `now`.
    pub(super) fn new(limits: &Http2Limits, max_head_size: usize, now: Instant) -> Self {
        let kinds = [
            Abuse::ClientReset,
            Abuse::ErrorReset,
            Abuse::Settings,
            Abuse::Ping,
            Abuse::EmptyFrame,
            Abuse::WindowUpdate,
            Abuse::Priority,
        ];
        FloodGuard {
            budgets: kinds.map(|kind| kind.budget(limits)),
            counts: [0; KINDS],
            window: limits.flood_window,
            window_start: now,
            stream_errors: 0,
            max_stream_errors: limits.max_stream_errors_total,
            max_continuations: limits.max_continuation_frames,
            max_block: max_head_size,
        }
    }

    /// Counts one `abuse` at `now`; an error once the window's budget is crossed.
    pub(super) fn note(&mut self, abuse: Abuse, now: Instant) -> Result<(), ConnectionError> {
        if now.saturating_duration_since(self.window_start) >= self.window {
            self.counts = [0; KINDS];
            self.window_start = now;
        }
        let index = abuse.index();
        let count = self.counts.get_mut(index).ok_or(calm(abuse.reason()))?;
        *count = count.saturating_add(1);
        let budget = self.budgets.get(index).copied().unwrap_or(0);
        if *count > budget {
            return Err(calm(abuse.reason()));
        }
        Ok(())
    }

    /// Counts a stream error the client caused: against the per-window MadeYouReset budget and
    /// the connection's lifetime budget.
    pub(super) fn note_stream_error(&mut self, now: Instant) -> Result<(), ConnectionError> {
        self.stream_errors = self.stream_errors.saturating_add(1);
        if self.stream_errors > self.max_stream_errors {
            return Err(calm("too many stream errors on this connection"));
        }
        self.note(Abuse::ErrorReset, now)
    }

    /// Checks a field block being assembled: `continuations` CONTINUATION frames so far and
    /// `encoded_len` bytes (CONTINUATION flood, CVE-2024-27316).
    pub(super) fn check_block(
        &self,
        continuations: u32,
        encoded_len: usize,
    ) -> Result<(), ConnectionError> {
        if continuations > self.max_continuations {
            return Err(calm("too many CONTINUATION frames in one field block"));
        }
        if encoded_len > self.max_block {
            return Err(calm("field block larger than the header size limit"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Http2Limits {
        Http2Limits {
            max_ping_frames: 2,
            max_error_resets: 5,
            max_stream_errors_total: 3,
            max_continuation_frames: 1,
            flood_window: Duration::from_secs(1),
            ..Http2Limits::default()
        }
    }

    #[test]
    fn budget_is_per_window() {
        let start = crate::test_clock::start();
        let mut guard = FloodGuard::new(&limits(), 100, start);
        guard.note(Abuse::Ping, start).unwrap();
        guard.note(Abuse::Ping, start).unwrap();
        let error = guard.note(Abuse::Ping, start).unwrap_err();
        assert_eq!(error.code, ErrorCode::EnhanceYourCalm);
        let later = start + Duration::from_secs(1);
        guard.note(Abuse::Ping, later).unwrap();
        guard.note(Abuse::Settings, later).unwrap();
    }

    #[test]
    fn stream_errors_have_a_lifetime_budget() {
        let start = crate::test_clock::start();
        let mut guard = FloodGuard::new(&limits(), 100, start);
        for second in 0..3 {
            guard
                .note_stream_error(start + Duration::from_secs(second * 2))
                .unwrap();
        }
        assert!(
            guard
                .note_stream_error(start + Duration::from_secs(10))
                .is_err()
        );
    }

    #[test]
    fn block_bounds() {
        let guard = FloodGuard::new(&limits(), 100, crate::test_clock::start());
        guard.check_block(1, 100).unwrap();
        assert!(guard.check_block(2, 10).is_err());
        assert!(guard.check_block(0, 101).is_err());
    }
}
