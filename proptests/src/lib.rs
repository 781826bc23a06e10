//! Property tests of weft, kept out of the crates they test.
//!
//! The properties live in `tests/`:
//! - `h1_roundtrip.rs`: what our HTTP/1.1 client writes, our server reads back unchanged (and
//!   the reverse), whatever the fields, the body framing and the packet boundaries;
//! - `h1_differential.rs`: our request-head parser against `httparse` on near-valid and
//!   arbitrary bytes, where every case in which weft is stricter names the rule that makes it so.
//!
//! This library is empty on purpose.
