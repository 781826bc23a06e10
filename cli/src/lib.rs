//! weft-cli: the applications behind the `weft` command.
//!
//! [`echo`] is the protocol echo server that `weft echo` serves on every runtime, the target of
//! the conformance, load and soak tests; [`demo`] is the framework app of `weft demo`;
//! [`serve`] is the file server of `weft serve`.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod demo;
pub mod echo;
pub mod serve;
