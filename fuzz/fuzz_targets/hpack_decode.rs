//! HPACK decoding (RFC 7541): arbitrary bytes as a series of header blocks on one connection,
//! with arbitrary table-size settings and header-list limits. Properties: no panic; the
//! dynamic table never exceeds its maximum, nor the maximum we advertised; a decoded list never
//! exceeds the header-list limit.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use weft_core::hpack::Decoder;

#[derive(Arbitrary, Debug)]
struct Block {
    /// A new SETTINGS_HEADER_TABLE_SIZE of ours, acknowledged before this block.
    new_table_size: Option<u16>,
    bytes: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    table_size: u16,
    max_header_list_size: u16,
    blocks: Vec<Block>,
}

fuzz_target!(|input: Input| {
    let mut advertised = usize::from(input.table_size);
    let limit = usize::from(input.max_header_list_size);
    let mut decoder = Decoder::new(advertised, limit);
    for block in input.blocks.iter().take(16) {
        if let Some(size) = block.new_table_size {
            advertised = usize::from(size);
            decoder.set_max_table_size(advertised);
        }
        let max_before = decoder.table_max_size();
        if let Ok(fields) = decoder.decode(&block.bytes) {
            let size: usize = fields.iter().map(|f| f.size()).sum();
            assert!(
                size <= limit,
                "decoded {size} bytes of fields past the limit {limit}"
            );
        }
        assert!(decoder.table_size() <= decoder.table_max_size());
        assert!(decoder.table_max_size() <= advertised.max(max_before));
        assert!(
            decoder
                .table_entries()
                .map(|(n, v)| n.len() + v.len() + 32)
                .sum::<usize>()
                == decoder.table_size()
        );
    }
});
