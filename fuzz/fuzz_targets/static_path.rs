//! The static file service's request-path sanitiser (`weft::static_files::path`), on
//! arbitrary strings. Properties: no panic; an accepted path has only normal, non-empty
//! segments (no `.`, `..`, separator, backslash, NUL or control byte), is relative, and
//! joined to a root never leaves it; sanitising is deterministic.
//!
//! The module is compiled here from its source file (it uses `std` only) rather than
//! through the `weft` crate, which would bring the runtimes into the fuzz build.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;

#[path = "../../web/src/static_files/path.rs"]
#[allow(dead_code)]
mod path;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let result = path::sanitize(raw);
    assert_eq!(result, path::sanitize(raw));
    let Ok(safe) = result else {
        return;
    };
    assert!(safe.segments().len() <= path::MAX_SEGMENTS);
    for segment in safe.segments() {
        assert!(!segment.is_empty() && segment != "." && segment != "..");
        assert!(!segment.contains(['/', '\\', ':']));
        assert!(!segment.bytes().any(|b| b < 0x20 || b == 0x7f));
    }
    let relative = safe.to_path_buf();
    assert!(relative.is_relative());
    assert!(
        relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    );
    let root = Path::new("/srv/root");
    assert!(root.join(&relative).starts_with(root));
});
