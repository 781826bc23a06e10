//! HPACK (RFC 7541) properties: whatever the header lists and table sizes, what weft's encoder
//! writes weft's decoder reads back; and weft's decoder agrees with the `hpack` crate's on the
//! blocks that crate's encoder produces (the crate is a test oracle only).

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use weft_core::hpack::{Decoder, Encoder, HeaderField};

// ----- generators -----

/// Names from the static table (so indexing by name and by field is exercised), plus any bytes.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(vec![
            ":method",
            ":path",
            ":status",
            ":authority",
            "accept-encoding",
            "cookie",
            "authorization",
            "set-cookie",
            "content-length",
            "x-custom",
            "user-agent",
        ])
        .prop_map(|n| n.as_bytes().to_vec()),
        vec(any::<u8>(), 0..24),
    ]
}

/// Values that often repeat or match static entries, plus any bytes (long ones included).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(vec!["", "GET", "/", "200", "gzip, deflate", "same-value"])
            .prop_map(|v| v.as_bytes().to_vec()),
        vec(any::<u8>(), 0..64),
        vec(any::<u8>(), 0..600),
    ]
}

fn field() -> impl Strategy<Value = HeaderField> {
    (name(), value(), any::<bool>()).prop_map(|(n, v, sensitive)| HeaderField {
        name: n.into(),
        value: v.into(),
        sensitive,
    })
}

/// A header block, optionally preceded by a new SETTINGS_HEADER_TABLE_SIZE from the decoder.
fn block() -> impl Strategy<Value = (Option<usize>, Vec<HeaderField>)> {
    (proptest::option::of(0usize..5000), vec(field(), 0..12))
}

fn pairs(fields: &[HeaderField]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields
        .iter()
        .map(|f| (f.name.to_vec(), f.value.to_vec()))
        .collect()
}

// ----- properties -----

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Encode then decode returns the same list, block after block, with the table resized
    /// in between; both tables stay within their bounds and in step.
    #[test]
    fn round_trips_header_lists(cap in 0usize..5000, blocks in vec(block(), 1..8)) {
        let mut encoder = Encoder::with_cap(4096, cap);
        let mut decoder = Decoder::new(4096, usize::MAX);
        for (setting, fields) in blocks {
            if let Some(setting) = setting {
                // The decoder advertises it; the peer's encoder applies it when it arrives.
                decoder.set_max_table_size(setting);
                encoder.set_max_table_size(setting);
            }
            let mut wire = BytesMut::new();
            encoder.encode(&fields, &mut wire);
            let decoded = decoder.decode(&wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(pairs(&decoded), pairs(&fields));
            for (sent, got) in fields.iter().zip(&decoded) {
                // A field sent as sensitive arrives as sensitive.
                prop_assert!(!sent.sensitive || got.sensitive);
            }
            prop_assert!(decoder.table_size() <= decoder.table_max_size());
            prop_assert!(encoder.table_size() <= decoder.table_max_size());
        }
    }

    /// The header-list limit: past it the block is refused, yet the next block (which may
    /// refer to entries the refused one added) still decodes.
    #[test]
    fn header_list_limit_keeps_the_table_in_sync(
        limit in 0usize..400,
        first in vec(field(), 1..10),
        second in vec(field(), 0..10),
    ) {
        let mut encoder = Encoder::new(4096);
        let mut decoder = Decoder::new(4096, limit);
        let mut wire = BytesMut::new();
        encoder.encode(&first, &mut wire);
        let total: usize = first.iter().map(HeaderField::size).sum();
        match decoder.decode(&wire) {
            Ok(decoded) => {
                prop_assert!(total <= limit);
                prop_assert_eq!(pairs(&decoded), pairs(&first));
            }
            Err(error) => {
                prop_assert!(total > limit);
                prop_assert!(error.keeps_table_in_sync());
            }
        }
        decoder.set_max_header_list_size(usize::MAX);
        let mut wire = BytesMut::new();
        encoder.encode(&second, &mut wire);
        let decoded = decoder.decode(&wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(pairs(&decoded), pairs(&second));
    }

    /// On blocks written by the `hpack` crate's encoder, our decoder reads what the crate's
    /// decoder reads (the crate panics on some inputs: it runs under `catch_unwind`).
    #[test]
    fn decoder_agrees_with_the_hpack_crate(blocks in vec(vec(field(), 0..12), 1..6)) {
        let mut oracle_encoder = hpack::Encoder::new();
        let mut oracle_decoder = hpack::Decoder::new();
        let mut decoder = Decoder::new(4096, usize::MAX);
        for fields in blocks {
            let wire = oracle_encoder
                .encode(fields.iter().map(|f| (&f.name[..], &f.value[..])));
            let expected = catch_unwind(AssertUnwindSafe(|| oracle_decoder.decode(&wire)));
            let ours = decoder.decode(&wire);
            match expected {
                Ok(Ok(expected)) => {
                    let ours = ours.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(pairs(&ours), expected);
                }
                // The oracle failed on its own encoding: nothing to compare, and its state is
                // no longer trustworthy.
                _ => return Ok(()),
            }
            prop_assert!(decoder.table_size() <= 4096);
        }
    }

    /// Arbitrary bytes never panic the decoder, and its table stays within bounds.
    #[test]
    fn decoder_survives_arbitrary_bytes(
        setting in 0usize..5000,
        limit in 0usize..5000,
        blocks in vec(vec(any::<u8>(), 0..200), 1..6),
    ) {
        let mut decoder = Decoder::new(setting, limit);
        for block in blocks {
            let _ = decoder.decode(&block);
            prop_assert!(decoder.table_size() <= decoder.table_max_size());
            prop_assert!(decoder.table_max_size() <= setting);
        }
    }
}

/// The oracle reads its own typical output, so the differential test above compares rather
/// than skipping.
#[test]
fn oracle_decodes_its_own_encoding() {
    let fields = [
        (&b":method"[..], &b"GET"[..]),
        (b"x-custom", b"\x00\xff value"),
        (b"cookie", b"a=b"),
    ];
    let mut encoder = hpack::Encoder::new();
    let mut oracle = hpack::Decoder::new();
    let mut decoder = Decoder::new(4096, usize::MAX);
    for _ in 0..3 {
        let wire = encoder.encode(fields.iter().copied());
        let expected = catch_unwind(AssertUnwindSafe(|| oracle.decode(&wire)))
            .unwrap()
            .unwrap();
        assert_eq!(pairs(&decoder.decode(&wire).unwrap()), expected);
    }
}
