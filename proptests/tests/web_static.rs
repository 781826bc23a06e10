//! Properties of the static file service's parsers (`weft::static_files::{path, range}`):
//! the path sanitiser never yields a `..`, absolute, empty or NUL component for any input
//! (traversal-shaped inputs included) and decodes plain names exactly; `Range` values
//! round-trip through format and parse; evaluated ranges always lie within the file, sorted
//! and disjoint.

use std::path::Component;

use proptest::prelude::*;
use weft::static_files::path::{PathError, sanitize};
use weft::static_files::range::{self, Evaluated, MAX_RANGES, RangeSpec};

/// Path-shaped input: separators, dots, encodings of dots and separators (once and twice),
/// NUL, backslashes, drive letters and arbitrary characters, concatenated.
fn hostile_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E".to_owned()),
        Just("%2f".to_owned()),
        Just("%5c".to_owned()),
        Just("%00".to_owned()),
        Just("%25".to_owned()),
        Just("%".to_owned()),
        Just("\\".to_owned()),
        Just("C:".to_owned()),
        "[a-z0-9]{1,4}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

fn spec() -> impl Strategy<Value = RangeSpec> {
    prop_oneof![
        (0u64..1_000, 0u64..1_000).prop_map(|(a, b)| RangeSpec::FromTo(a.min(b), a.max(b))),
        (0u64..1_000).prop_map(RangeSpec::From),
        (0u64..1_000).prop_map(RangeSpec::Suffix),
        any::<u64>().prop_map(RangeSpec::From),
    ]
}

proptest! {
    #[test]
    fn sanitised_paths_only_have_normal_components(raw in prop_oneof![hostile_path(), any::<String>()]) {
        if let Ok(safe) = sanitize(&raw) {
            for segment in safe.segments() {
                prop_assert!(!segment.is_empty() && segment != "." && segment != "..");
                prop_assert!(!segment.contains(['/', '\\', '\0', ':']), "{segment:?}");
            }
            let relative = safe.to_path_buf();
            prop_assert!(relative.is_relative());
            prop_assert!(relative.components().all(|c| matches!(c, Component::Normal(_))));
        }
    }

    #[test]
    fn an_encoded_dot_dot_segment_is_always_refused(
        prefix in "[a-z]{0,3}(/[a-z]{1,3}){0,3}",
        dots in prop::sample::select(vec!["..", "%2e%2e", "%2E%2e", ".%2e", "%2e."]),
        suffix in "(/[a-z]{1,3}){0,3}",
    ) {
        let raw = format!("{prefix}/{dots}{suffix}");
        prop_assert_eq!(sanitize(&raw), Err(PathError::Traversal));
    }

    #[test]
    fn plain_names_percent_encoded_decode_exactly(
        names in prop::collection::vec("[a-zA-Z0-9 _~-][a-zA-Z0-9 ._~-]{0,8}", 1..6),
    ) {
        let encoded: Vec<String> = names
            .iter()
            .map(|name| percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string())
            .collect();
        let safe = sanitize(&format!("/{}", encoded.join("/"))).unwrap();
        prop_assert_eq!(safe.segments(), &names[..]);
    }

    #[test]
    fn range_values_round_trip(specs in prop::collection::vec(spec(), 1..=MAX_RANGES)) {
        let value = range::format(&specs);
        prop_assert_eq!(range::parse(&value), Ok(specs));
    }

    #[test]
    fn evaluated_ranges_lie_within_the_file(
        specs in prop::collection::vec(spec(), 1..=MAX_RANGES),
        len in prop_oneof![0u64..2_000, any::<u64>()],
    ) {
        match range::evaluate(&specs, len) {
            Evaluated::Unsatisfiable => {
                // Only when no spec starts inside the file.
                let none_inside = specs.iter().all(|spec| match *spec {
                    RangeSpec::FromTo(first, _) | RangeSpec::From(first) => first >= len,
                    RangeSpec::Suffix(length) => length == 0 || len == 0,
                });
                prop_assert!(none_inside);
            }
            Evaluated::Satisfiable(ranges) => {
                prop_assert!(!ranges.is_empty() && ranges.len() <= specs.len());
                for r in &ranges {
                    prop_assert!(r.start <= r.end && r.end < len);
                }
                for pair in ranges.windows(2) {
                    prop_assert!(pair[0].end + 1 < pair[1].start);
                }
            }
        }
    }
}
