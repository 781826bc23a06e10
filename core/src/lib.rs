//! weft-core: the sans-IO protocol core of weft.
#![forbid(unsafe_code)]

pub mod h1;
mod limits;

pub use limits::Limits;
