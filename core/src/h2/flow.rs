//! Flow control (RFC 9113 §5.2, §6.9): the credit the peer gave us to send, and the credit we
//! gave the peer, with the policy that decides when a WINDOW_UPDATE is worth sending.

/// The largest window a peer may ever allow (§6.9.1): 2^31 - 1.
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// The window every stream and the connection start with (§6.9.2).
pub(super) const DEFAULT_WINDOW: u32 = 65_535;

/// A window would pass 2^31 - 1 (§6.9.1): FLOW_CONTROL_ERROR on the stream or the connection
/// it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WindowOverflow;

/// The peer sent more than the window we granted it (§6.9): FLOW_CONTROL_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WindowExceeded;

/// What we may still send. Signed because a smaller SETTINGS_INITIAL_WINDOW_SIZE from the peer
/// can push it below zero (§6.9.2); then nothing is sent until WINDOW_UPDATEs lift it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SendWindow(i64);

impl SendWindow {
    /// A window of `size` bytes.
    pub(super) fn new(size: u32) -> Self {
        SendWindow(i64::from(size))
    }

    /// Bytes that may be sent now.
    pub(super) fn available(self) -> usize {
        usize::try_from(self.0.max(0)).unwrap_or(usize::MAX)
    }

    /// Whether nothing may be sent now.
    pub(super) fn is_closed(self) -> bool {
        self.0 <= 0
    }

    /// A WINDOW_UPDATE of `increment` arrived.
    pub(super) fn grow(&mut self, increment: u32) -> Result<(), WindowOverflow> {
        self.adjust(i64::from(increment))
    }

    /// The peer's SETTINGS_INITIAL_WINDOW_SIZE changed by `delta` (§6.9.2).
    pub(super) fn adjust(&mut self, delta: i64) -> Result<(), WindowOverflow> {
        let next = self.0.saturating_add(delta);
        if next > MAX_WINDOW {
            return Err(WindowOverflow);
        }
        self.0 = next;
        Ok(())
    }

    /// `len` bytes were sent; the caller sent at most [`Self::available`].
    pub(super) fn consume(&mut self, len: usize) {
        self.0 = self
            .0
            .saturating_sub(i64::try_from(len).unwrap_or(i64::MAX));
    }
}

/// The credit we granted the peer, and what the application handed back since the last
/// WINDOW_UPDATE we sent.
///
/// The policy: credit given back is announced only once it reaches half the target window,
/// so a client streaming a body gets one WINDOW_UPDATE per half window, not one per frame
/// (the cost of many small updates is what RFC 9113 §6.9 warns about).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecvWindow {
    /// What the peer may still send; may be negative after we lowered our initial window.
    window: i64,
    /// The size the window is kept at when everything is given back.
    target: i64,
    /// Given back by the application, not yet announced.
    released: i64,
}

impl RecvWindow {
    /// A window the peer already believes is `initial`, to be kept at `target`.
    pub(super) fn new(initial: u32, target: u32) -> Self {
        RecvWindow {
            window: i64::from(initial),
            target: i64::from(target),
            released: 0,
        }
    }

    /// The peer sent `len` flow-controlled bytes (§6.9.1: the whole DATA payload, padding
    /// included).
    pub(super) fn consume(&mut self, len: usize) -> Result<(), WindowExceeded> {
        let len = i64::try_from(len).map_err(|_| WindowExceeded)?;
        if len > self.window {
            return Err(WindowExceeded);
        }
        self.window -= len;
        Ok(())
    }

    /// Whether the peer may send at least one more byte now.
    pub(super) fn is_open(&self) -> bool {
        self.window > 0
    }

    /// Bytes consumed and not yet given back: what the application holds.
    pub(super) fn outstanding(&self) -> usize {
        usize::try_from(self.target - self.window - self.released).unwrap_or(0)
    }

    /// `len` bytes are given back (the application consumed them, or they were padding). Returns
    /// the WINDOW_UPDATE increment to send, if the policy says it is time. More than
    /// [`Self::outstanding`] is clamped, so a confused caller cannot inflate the window.
    pub(super) fn release(&mut self, len: usize) -> Option<u32> {
        let len = i64::try_from(len.min(self.outstanding())).unwrap_or(0);
        self.released += len;
        if self.released > 0 && self.released >= self.target / 2 {
            self.flush()
        } else {
            None
        }
    }

    /// Announces every byte given back now, whatever the policy: the increment to send.
    pub(super) fn flush(&mut self) -> Option<u32> {
        let increment = u32::try_from(self.released).ok().filter(|&i| i > 0)?;
        self.window += self.released;
        self.released = 0;
        Some(increment)
    }

    /// Our SETTINGS_INITIAL_WINDOW_SIZE took effect (the peer acknowledged it): the window moves
    /// by the difference, possibly below zero (§6.9.2), and is kept at `target` from now on.
    pub(super) fn retarget(&mut self, target: u32) {
        let target = i64::from(target);
        self.window += target - self.target;
        self.target = target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_goes_negative_and_refuses_overflow() {
        let mut window = SendWindow::new(10);
        window.consume(10);
        assert!(window.is_closed());
        window.adjust(-5).unwrap();
        assert_eq!(window.available(), 0);
        window.grow(6).unwrap();
        assert_eq!(window.available(), 1);
        assert_eq!(window.grow(u32::MAX >> 1), Err(WindowOverflow));
    }

    #[test]
    fn recv_window_announces_only_after_half_is_released() {
        let mut window = RecvWindow::new(100, 100);
        window.consume(60).unwrap();
        assert_eq!(window.release(20), None);
        assert_eq!(window.release(30), Some(50));
        assert_eq!(window.outstanding(), 10);
        // Clamped: only 10 are outstanding.
        assert_eq!(window.release(1000), None);
        assert_eq!(window.flush(), Some(10));
        assert_eq!(window.consume(101), Err(WindowExceeded));
        assert_eq!(window.consume(100), Ok(()));
    }

    #[test]
    fn recv_window_retarget_moves_window() {
        let mut window = RecvWindow::new(65_535, 65_535);
        window.consume(65_000).unwrap();
        window.retarget(1_000);
        assert_eq!(window.consume(1), Err(WindowExceeded));
        assert_eq!(window.outstanding(), 65_000);
    }
}
