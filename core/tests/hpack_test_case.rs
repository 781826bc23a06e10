//! Interoperability: every story of the hpack-test-case corpus (HTTP/2 Japan Community, MIT,
//! vendored in `core/tests/data/hpack-test-case`) decodes to its expected headers, and
//! the `raw-data` stories round-trip through our encoder and decoder.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use weft_core::hpack::{Decoder, Encoder, HeaderField};

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

fn test_case_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hpack-test-case");
    assert!(
        dir.is_dir(),
        "hpack-test-case data not found at {}: it is part of the repository",
        dir.display()
    );
    dir
}

fn stories(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("story_") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    files
}

fn story_headers(case: &serde_json::Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h.as_object().unwrap().iter())
        .map(|(n, v)| {
            (
                n.as_bytes().to_vec(),
                v.as_str().unwrap().as_bytes().to_vec(),
            )
        })
        .collect()
}

fn read_story(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let story: serde_json::Value = serde_json::from_str(&text).unwrap();
    story["cases"].as_array().unwrap().clone()
}

#[test]
fn decodes_every_hpack_test_case_story() {
    let root = test_case_dir();
    let mut encoders = 0;
    let mut cases = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.ends_with("raw-data"))
        .collect();
    dirs.sort();
    for dir in dirs {
        encoders += 1;
        for path in stories(&dir) {
            let mut decoder = Decoder::new(4096, usize::MAX);
            for (seqno, case) in read_story(&path).iter().enumerate() {
                if let Some(size) = case.get("header_table_size").and_then(|s| s.as_u64()) {
                    decoder.set_max_table_size(usize::try_from(size).unwrap());
                }
                let wire = hex(case["wire"].as_str().unwrap());
                let decoded = decoder
                    .decode(&wire)
                    .unwrap_or_else(|e| panic!("{} case {seqno}: {e}", path.display()));
                assert_eq!(
                    pairs(&decoded),
                    story_headers(case),
                    "{} case {seqno}",
                    path.display()
                );
                cases += 1;
            }
        }
    }
    assert!(
        encoders >= 5,
        "expected the encoder folders of hpack-test-case, found {encoders}"
    );
    assert!(cases > 1000, "only {cases} cases decoded");
}

#[test]
fn round_trips_every_raw_data_story() {
    let dir = test_case_dir().join("raw-data");
    let files = stories(&dir);
    assert!(
        !files.is_empty(),
        "no raw-data stories in {}",
        dir.display()
    );
    for table_size in [4096, 256, 0] {
        for path in &files {
            let mut encoder = Encoder::new(table_size);
            let mut decoder = Decoder::new(table_size, usize::MAX);
            for (seqno, case) in read_story(path).iter().enumerate() {
                let expected = story_headers(case);
                let list: Vec<HeaderField> = expected
                    .iter()
                    .map(|(n, v)| HeaderField::new(n.clone(), v.clone()))
                    .collect();
                let mut block = BytesMut::new();
                encoder.encode(&list, &mut block);
                let decoded = decoder
                    .decode(&block)
                    .unwrap_or_else(|e| panic!("{} case {seqno}: {e}", path.display()));
                assert_eq!(pairs(&decoded), expected, "{} case {seqno}", path.display());
                assert_eq!(decoder.table_size(), encoder.table_size());
            }
        }
    }
}
