//! The static file service's `Range` parser and evaluator (`weft::static_files::range`), on
//! arbitrary field values and file lengths. Properties: no panic; a parsed field formats
//! back to a value that parses to the same specs; evaluated ranges are non-empty, within the
//! file, sorted and disjoint, and never more than the specs.
//!
//! The module is compiled here from its source file (it uses `std` only) rather than
//! through the `weft` crate, which would bring the runtimes into the fuzz build.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[path = "../../web/src/static_files/range.rs"]
#[allow(dead_code)]
mod range;

#[derive(Arbitrary, Debug)]
struct Input {
    value: String,
    len: u64,
}

fuzz_target!(|input: Input| {
    let Ok(specs) = range::parse(&input.value) else {
        return;
    };
    assert!(!specs.is_empty() && specs.len() <= range::MAX_RANGES);
    assert_eq!(range::parse(&range::format(&specs)), Ok(specs.clone()));
    match range::evaluate(&specs, input.len) {
        range::Evaluated::Unsatisfiable => {}
        range::Evaluated::Satisfiable(ranges) => {
            assert!(!ranges.is_empty() && ranges.len() <= specs.len());
            for range in &ranges {
                assert!(range.start <= range.end && range.end < input.len);
            }
            for pair in ranges.windows(2) {
                assert!(pair[0].end.saturating_add(1) < pair[1].start);
            }
        }
    }
});
