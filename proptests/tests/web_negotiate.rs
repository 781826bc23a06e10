//! The `Accept` parser and negotiation of the framework (`weft::negotiate`), on hostile and on
//! well-formed input: arbitrary bytes never panic; among exact types the highest `q` wins; a
//! type given `q=0` is never chosen, whatever wildcards surround it.

use http::HeaderValue;
use proptest::prelude::*;
use weft::negotiate::{Accept, negotiate, parse_accept};

/// Media types a server might offer.
const TYPES: &[&str] = &[
    "application/json",
    "text/html",
    "text/plain",
    "text/csv",
    "image/png",
    "application/xml",
];

/// A qvalue as RFC 9110 §12.4.2 writes it, and its value in thousandths.
fn qvalue() -> impl Strategy<Value = (String, u16)> {
    prop_oneof![
        Just(("1".to_owned(), 1000)),
        Just(("1.0".to_owned(), 1000)),
        (0u16..1000).prop_map(|q| (format!("0.{q:03}"), q)),
        (0u16..10).prop_map(|q| (format!("0.{q}"), q * 100)),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let offered: Vec<&str> = TYPES.to_vec();
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let chosen = negotiate(Some(&value), &offered);
            prop_assert!(chosen.is_none_or(|c| offered.contains(&c)));
        }
        let text = String::from_utf8_lossy(&bytes);
        for range in parse_accept(&text) {
            prop_assert!(range.q <= 1000);
        }
        let _ = Accept::parse(&text).choose(&offered);
    }

    #[test]
    fn accept_like_text_never_panics(text in "[a-z*/;=q0-9., \"-]{0,80}") {
        let _ = Accept::parse(&text).choose(TYPES);
    }

    #[test]
    fn the_highest_q_is_chosen(
        weights in prop::collection::vec(qvalue(), TYPES.len()),
        order in Just(TYPES.to_vec()).prop_shuffle(),
    ) {
        let header = order
            .iter()
            .zip(&weights)
            .map(|(media_type, (q, _))| format!("{media_type};q={q}"))
            .collect::<Vec<_>>()
            .join(", ");
        let chosen = negotiate(Some(&HeaderValue::from_str(&header).unwrap()), TYPES);
        let best = weights.iter().map(|(_, q)| *q).max().unwrap();
        match chosen {
            None => prop_assert_eq!(best, 0),
            Some(chosen) => {
                let at = order.iter().position(|t| *t == chosen).unwrap();
                prop_assert_eq!(weights[at].1, best);
                // Ties go to the server's order: nothing offered earlier has the same weight.
                let offered_at = TYPES.iter().position(|t| *t == chosen).unwrap();
                for earlier in &TYPES[..offered_at] {
                    let i = order.iter().position(|t| t == earlier).unwrap();
                    prop_assert!(weights[i].1 < best);
                }
            }
        }
    }

    #[test]
    fn q_zero_is_never_chosen(
        excluded in prop::sample::subsequence(TYPES.to_vec(), 0..TYPES.len()),
        wildcards in prop::collection::vec(prop_oneof![Just("*/*"), Just("text/*"), Just("application/*")], 0..3),
        wildcard_q in qvalue(),
        excluded_first in any::<bool>(),
    ) {
        let zeros: Vec<String> = excluded.iter().map(|t| format!("{t};q=0")).collect();
        let wild: Vec<String> = wildcards.iter().map(|w| format!("{w};q={}", wildcard_q.0)).collect();
        let parts = if excluded_first { [zeros, wild].concat() } else { [wild, zeros].concat() };
        let header = parts.join(", ");
        let accept = (!header.is_empty()).then(|| HeaderValue::from_str(&header).unwrap());
        if let Some(chosen) = negotiate(accept.as_ref(), TYPES) {
            prop_assert!(!excluded.contains(&chosen), "{} chosen for {}", chosen, header);
        }
    }
}
