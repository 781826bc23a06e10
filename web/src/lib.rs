//! weft: the web framework.
#![forbid(unsafe_code)]

pub mod multipart;
