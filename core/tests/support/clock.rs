//! The starting instant of the core's unit tests, which then move time forward by hand. It lives
//! here, beside the integration tests' support, because the core's own sources never read a
//! clock (ARCHITECTURE.md): time only comes in through the `now` arguments.

use std::time::Instant;

/// Any instant will do: tests only add durations to it.
pub(crate) fn start() -> Instant {
    Instant::now()
}
