//! Conformance tests: RFC 7541 Appendix C, and the decoder's and encoder's rules one by one.
//! The hpack-test-case stories, which are read from files, are in `core/tests/hpack_test_case.rs`.

use bytes::BytesMut;

use super::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn pairs(fields: &[HeaderField]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields
        .iter()
        .map(|f| (f.name.to_vec(), f.value.to_vec()))
        .collect()
}

fn owned(list: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    list.iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn fields(list: &[(&str, &str)]) -> Vec<HeaderField> {
    list.iter()
        .map(|&(n, v)| HeaderField::new(n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn table(decoder: &Decoder) -> Vec<(Vec<u8>, Vec<u8>)> {
    decoder
        .table_entries()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

/// One step of an Appendix C example: wire, decoded headers, table after it, table size.
struct Step {
    wire: &'static str,
    headers: &'static [(&'static str, &'static str)],
    table: &'static [(&'static str, &'static str)],
    size: usize,
}

fn check_decoder(table_size: usize, steps: &[Step]) {
    let mut decoder = Decoder::new(table_size, usize::MAX);
    for (i, step) in steps.iter().enumerate() {
        let decoded = decoder.decode(&hex(step.wire)).unwrap();
        assert_eq!(pairs(&decoded), owned(step.headers), "step {i}");
        assert_eq!(table(&decoder), owned(step.table), "table after step {i}");
        assert_eq!(decoder.table_size(), step.size, "size after step {i}");
    }
}

/// Our encoder makes the same choices as the RFC's examples, up to `steps`.
fn check_encoder(table_size: usize, steps: &[Step]) {
    let mut encoder = Encoder::new(table_size);
    for (i, step) in steps.iter().enumerate() {
        let mut block = BytesMut::new();
        encoder.encode(&fields(step.headers), &mut block);
        assert_eq!(block.to_vec(), hex(step.wire), "step {i}");
        assert_eq!(encoder.table_size(), step.size, "size after step {i}");
    }
}

const C3_TABLE1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const C3_TABLE2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const C3_TABLE3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const C3_HEADERS1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const C3_HEADERS2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const C3_HEADERS3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];

const C3: [Step; 3] = [
    Step {
        wire: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        headers: C3_HEADERS1,
        table: C3_TABLE1,
        size: 57,
    },
    Step {
        wire: "8286 84be 5808 6e6f 2d63 6163 6865",
        headers: C3_HEADERS2,
        table: C3_TABLE2,
        size: 110,
    },
    Step {
        wire: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        headers: C3_HEADERS3,
        table: C3_TABLE3,
        size: 164,
    },
];

const C4: [Step; 3] = [
    Step {
        wire: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        headers: C3_HEADERS1,
        table: C3_TABLE1,
        size: 57,
    },
    Step {
        wire: "8286 84be 5886 a8eb 1064 9cbf",
        headers: C3_HEADERS2,
        table: C3_TABLE2,
        size: 110,
    },
    Step {
        wire: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        headers: C3_HEADERS3,
        table: C3_TABLE3,
        size: 164,
    },
];

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const C5_HEADERS1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", LOCATION),
];
const C5_TABLE1: &[(&str, &str)] = &[
    ("location", LOCATION),
    ("date", DATE1),
    ("cache-control", "private"),
    (":status", "302"),
];
const C5_HEADERS2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", LOCATION),
];
const C5_TABLE2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", LOCATION),
    ("date", DATE1),
    ("cache-control", "private"),
];
const C5_HEADERS3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", DATE2),
    ("location", LOCATION),
    ("content-encoding", "gzip"),
    ("set-cookie", COOKIE),
];
const C5_TABLE3: &[(&str, &str)] = &[
    ("set-cookie", COOKIE),
    ("content-encoding", "gzip"),
    ("date", DATE2),
];

const C5: [Step; 3] = [
    Step {
        wire: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
               2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
               6c65 2e63 6f6d",
        headers: C5_HEADERS1,
        table: C5_TABLE1,
        size: 222,
    },
    Step {
        wire: "4803 3330 37c1 c0bf",
        headers: C5_HEADERS2,
        table: C5_TABLE2,
        size: 222,
    },
    Step {
        wire: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
               54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
               5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
               3d31",
        headers: C5_HEADERS3,
        table: C5_TABLE3,
        size: 215,
    },
];

const C6: [Step; 3] = [
    Step {
        wire: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
               2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        headers: C5_HEADERS1,
        table: C5_TABLE1,
        size: 222,
    },
    Step {
        wire: "4883 640e ffc1 c0bf",
        headers: C5_HEADERS2,
        table: C5_TABLE2,
        size: 222,
    },
    Step {
        wire: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
               77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
               9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        headers: C5_HEADERS3,
        table: C5_TABLE3,
        size: 215,
    },
];

#[test]
fn decodes_c2_literal_with_indexing() {
    check_decoder(
        4096,
        &[Step {
            wire: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            headers: &[("custom-key", "custom-header")],
            table: &[("custom-key", "custom-header")],
            size: 55,
        }],
    );
}

#[test]
fn decodes_c2_literal_without_indexing() {
    check_decoder(
        4096,
        &[Step {
            wire: "040c 2f73 616d 706c 652f 7061 7468",
            headers: &[(":path", "/sample/path")],
            table: &[],
            size: 0,
        }],
    );
}

#[test]
fn decodes_c2_never_indexed_literal_as_sensitive() {
    let mut decoder = Decoder::new(4096, usize::MAX);
    let decoded = decoder
        .decode(&hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))
        .unwrap();
    assert_eq!(decoded, vec![HeaderField::sensitive("password", "secret")]);
    assert_eq!(decoder.table_size(), 0);
}

#[test]
fn decodes_c2_indexed_field() {
    check_decoder(
        4096,
        &[Step {
            wire: "82",
            headers: &[(":method", "GET")],
            table: &[],
            size: 0,
        }],
    );
}

#[test]
fn decodes_c3_requests_without_huffman() {
    check_decoder(4096, &C3);
}

#[test]
fn decodes_c4_requests_with_huffman() {
    check_decoder(4096, &C4);
}

#[test]
fn decodes_c5_responses_without_huffman_with_eviction() {
    check_decoder(256, &C5);
}

#[test]
fn decodes_c6_responses_with_huffman_with_eviction() {
    check_decoder(256, &C6);
}

#[test]
fn encodes_c4_requests_like_the_rfc() {
    // C.4 uses Huffman whenever it is shorter and indexes every field, as we do.
    check_encoder(4096, &C4);
}

#[test]
fn encodes_c6_responses_like_the_rfc_until_set_cookie() {
    // C.6.3 indexes set-cookie; we send it never-indexed, so only the first two match.
    check_encoder(256, &C6[..2]);
    let mut encoder = Encoder::new(256);
    let mut decoder = Decoder::new(256, usize::MAX);
    for step in &C6 {
        let mut block = BytesMut::new();
        encoder.encode(&fields(step.headers), &mut block);
        assert_eq!(pairs(&decoder.decode(&block).unwrap()), owned(step.headers));
        assert!(decoder.table_size() <= 256);
    }
}

#[test]
fn encodes_sensitive_headers_never_indexed() {
    let mut encoder = Encoder::new(4096);
    let mut block = BytesMut::new();
    let list = fields(&[
        ("authorization", "Basic x"),
        ("cookie", "a=b"),
        ("proxy-authorization", "p"),
    ]);
    encoder.encode(&list, &mut block);
    assert_eq!(encoder.table_size(), 0);
    let mut decoder = Decoder::new(4096, usize::MAX);
    let decoded = decoder.decode(&block).unwrap();
    assert!(decoded.iter().all(|f| f.sensitive));
    assert_eq!(pairs(&decoded), pairs(&list));
    // Static name index 23 (authorization) in a 4-bit prefix: 0001 1111, 0000 1000.
    assert_eq!(&block[..2], &[0x1f, 0x08]);
    // A field marked sensitive is protected whatever its name.
    let mut block = BytesMut::new();
    encoder.encode(&[HeaderField::sensitive("x-token", "t")], &mut block);
    assert_eq!(block[0], 0x10);
    assert_eq!(encoder.table_size(), 0);
}

#[test]
fn encoder_announces_table_size_changes_at_the_next_block() {
    let mut encoder = Encoder::new(4096);
    let mut decoder = Decoder::new(4096, usize::MAX);
    let mut block = BytesMut::new();
    encoder.encode(&fields(&[("x-a", "1")]), &mut block);
    decoder.decode(&block).unwrap();
    // The peer lowers, then raises its setting before our next block: we announce the
    // smallest, then the final size (RFC 7541 §4.2).
    encoder.set_max_table_size(0);
    encoder.set_max_table_size(100);
    decoder.set_max_table_size(100);
    let mut block = BytesMut::new();
    encoder.encode(&fields(&[("x-b", "2")]), &mut block);
    assert_eq!(&block[..3], &[0x20, 0x3f, 0x45]);
    assert_eq!(
        pairs(&decoder.decode(&block).unwrap()),
        owned(&[("x-b", "2")])
    );
    assert_eq!(table(&decoder), owned(&[("x-b", "2")]));
    // A peer allowing more than our cap does not grow the table past it.
    encoder.set_max_table_size(1 << 20);
    let mut block = BytesMut::new();
    encoder.encode(&fields(&[("x-c", "3")]), &mut block);
    assert_eq!(block[0] & 0xe0, 0x20);
    assert_eq!(integer::decode(&block, 5).unwrap().0, 4096);
}

#[test]
fn encoder_with_a_smaller_cap_announces_it_first() {
    let mut encoder = Encoder::with_cap(4096, 100);
    let mut decoder = Decoder::new(4096, usize::MAX);
    let mut block = BytesMut::new();
    encoder.encode(&fields(&[("x-a", "1")]), &mut block);
    assert_eq!(&block[..2], &[0x3f, 0x45]);
    decoder.decode(&block).unwrap();
    assert_eq!(decoder.table_max_size(), 100);
    // The decoder lowering its setting to 50 now requires, and gets, an update.
    decoder.set_max_table_size(50);
    encoder.set_max_table_size(50);
    let mut block = BytesMut::new();
    encoder.encode(&fields(&[("x-a", "1")]), &mut block);
    assert_eq!(
        pairs(&decoder.decode(&block).unwrap()),
        owned(&[("x-a", "1")])
    );
    assert_eq!(decoder.table_max_size(), 50);
}

#[test]
fn rejects_size_update_above_our_setting() {
    let mut decoder = Decoder::new(4096, usize::MAX);
    // 001 11111 + 4097 - 31 = 4066 = 0xe2 0x1f.
    assert_eq!(
        decoder.decode(&[0x3f, 0xe2, 0x1f]),
        Err(HpackError::TableSizeUpdateTooLarge)
    );
    let mut decoder = Decoder::new(4096, usize::MAX);
    assert_eq!(
        decoder.decode(&[0x3f, 0xe1, 0x1f, 0x82]).map(|f| f.len()),
        Ok(1)
    );
    assert_eq!(decoder.table_max_size(), 4096);
}

#[test]
fn rejects_size_update_after_a_field() {
    let mut decoder = Decoder::new(4096, usize::MAX);
    assert_eq!(
        decoder.decode(&[0x82, 0x20]),
        Err(HpackError::TableSizeUpdateNotAtStart)
    );
    // Two updates at the start are allowed.
    let mut decoder = Decoder::new(4096, usize::MAX);
    assert_eq!(
        decoder.decode(&[0x20, 0x3f, 0x45, 0x82]).map(|f| f.len()),
        Ok(1)
    );
    assert_eq!(decoder.table_max_size(), 100);
}

#[test]
fn requires_size_update_after_we_lower_our_setting() {
    let mut decoder = Decoder::new(4096, usize::MAX);
    decoder.set_max_table_size(100);
    assert_eq!(
        decoder.decode(&[0x82]),
        Err(HpackError::MissingTableSizeUpdate)
    );
    let mut decoder = Decoder::new(4096, usize::MAX);
    decoder.set_max_table_size(100);
    assert_eq!(
        decoder.decode(&[0x3f, 0x46, 0x82]),
        Err(HpackError::TableSizeUpdateTooLarge)
    );
    let mut decoder = Decoder::new(4096, usize::MAX);
    decoder.set_max_table_size(100);
    assert_eq!(decoder.decode(&[0x3f, 0x45, 0x82]).map(|f| f.len()), Ok(1));
    // Raising it needs no update.
    decoder.set_max_table_size(8192);
    assert_eq!(decoder.decode(&[0x82]).map(|f| f.len()), Ok(1));
}

#[test]
fn rejects_index_zero_and_out_of_range() {
    let mut decoder = Decoder::new(4096, usize::MAX);
    assert_eq!(decoder.decode(&[0x80]), Err(HpackError::IndexZero));
    assert_eq!(decoder.decode(&[0xbe]), Err(HpackError::IndexOutOfRange));
    assert_eq!(
        decoder.decode(&[0x7e, 0x00]),
        Err(HpackError::IndexOutOfRange)
    );
}

#[test]
fn rejects_truncated_blocks() {
    let full = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    for end in 1..full.len() {
        let mut decoder = Decoder::new(4096, usize::MAX);
        assert_eq!(
            decoder.decode(&full[..end]),
            Err(HpackError::Truncated),
            "cut at {end}"
        );
    }
}

#[test]
fn rejects_string_length_beyond_the_block_before_allocating() {
    let mut decoder = Decoder::new(4096, usize::MAX);
    // Literal name of length 2^32 - 1 in a 3-byte block.
    let block = [0x00, 0x7f, 0x80, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(decoder.decode(&block), Err(HpackError::Truncated));
}

#[test]
fn rejects_invalid_huffman_in_a_literal() {
    let mut decoder = Decoder::new(4096, usize::MAX);
    assert_eq!(
        decoder.decode(&[0x04, 0x81, 0x1e]),
        Err(HpackError::HuffmanPaddingNotOnes)
    );
    assert_eq!(
        decoder.decode(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]),
        Err(HpackError::HuffmanEos)
    );
}

#[test]
fn header_list_limit_counts_32_per_field_and_keeps_the_table_in_sync() {
    // ":method: GET" is 7 + 3 + 32 = 42 bytes.
    let mut decoder = Decoder::new(4096, 84);
    assert_eq!(decoder.decode(&[0x82, 0x82]).map(|f| f.len()), Ok(2));
    let mut fields = Vec::new();
    // Three fields, the last one a literal with indexing: it must still enter the table.
    let mut block = vec![0x82, 0x82];
    block.extend(hex(
        "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
    ));
    let error = decoder.decode_into(&block, &mut fields).unwrap_err();
    assert_eq!(error, HpackError::HeaderListTooLarge);
    assert!(error.keeps_table_in_sync());
    assert_eq!(fields.len(), 2);
    assert_eq!(table(&decoder), owned(&[("custom-key", "custom-header")]));
    // The connection can go on: the next block refers to the entry.
    decoder.set_max_header_list_size(usize::MAX);
    assert_eq!(
        pairs(&decoder.decode(&[0xbe]).unwrap()),
        owned(&[("custom-key", "custom-header")])
    );
}

#[test]
fn never_panics_on_short_garbage() {
    // Every block of up to two bytes, and a sample of three-byte blocks.
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let mut decoder = Decoder::new(64, 1024);
            let _ = decoder.decode(&[a, b]);
            let _ = decoder.decode(&[a, b, a ^ b]);
            assert!(decoder.table_size() <= decoder.table_max_size());
            assert!(decoder.table_max_size() <= 64);
        }
    }
}

/// Decodes one literal with indexing (C.2.1, a 55-byte entry: `custom-key: custom-header`)
/// then `x` with a value of `len` bytes, not indexed. Returns whether the table's entry lives
/// in the block's buffer, right before the strings that follow it.
fn entry_shares_block_buffer(len: usize) -> bool {
    let mut decoder = Decoder::new(4096, 64 * 1024);
    let mut block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    block.extend_from_slice(&[0x00, 0x01, b'x']);
    let mut length = BytesMut::new();
    integer::encode(len, 7, 0x00, &mut length);
    block.extend_from_slice(&length);
    block.extend(std::iter::repeat_n(b'v', len));
    let fields = decoder.decode(&block).unwrap();
    assert_eq!(fields[1].value.len(), len);
    let (_, entry) = decoder.table_entries().next().unwrap();
    assert_eq!(entry, b"custom-header");
    // In the shared buffer, "custom-header" is followed by "x".
    fields[1].name.as_ptr() == entry.as_ptr().wrapping_add(entry.len())
}

#[test]
fn small_block_entries_share_the_block_buffer() {
    // 49 bytes of block: its buffer (8/5 of it) is under four times the entry.
    assert!(entry_shares_block_buffer(20));
}

#[test]
fn large_block_entries_get_their_own_copy() {
    // A block of 2000 bytes and more: the table must not keep it alive for a 55-byte entry.
    assert!(!entry_shares_block_buffer(2000));
}

#[test]
fn entries_named_after_a_dynamic_entry_get_their_own_copy() {
    let mut decoder = Decoder::new(4096, 16 * 1024);
    let first = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    decoder.decode(&first).unwrap();
    // Literal with indexing, name index 62 (custom-key), value "v".
    let fields = decoder.decode(&[0x7e, 0x01, b'v']).unwrap();
    assert_eq!(pairs(&fields), owned(&[("custom-key", "v")]));
    let entries: Vec<_> = decoder.table_entries().collect();
    assert_eq!(entries.len(), 2);
    let (newest_name, _) = entries[0];
    let (older_name, _) = entries[1];
    assert_eq!(newest_name, older_name);
    assert_ne!(newest_name.as_ptr(), older_name.as_ptr());
}
