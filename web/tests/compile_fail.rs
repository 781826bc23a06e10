//! Compile-fail tests: what a mistaken handler's error says, and where it points
//! (`tests/ui/*.rs`, each with the expected rustc output in `*.stderr`); and that what
//! `#[weft::debug_handler]` accepts compiles (`tests/ui/pass/`).
//!
//! The expected output is rustc's, so it depends on the compiler version: the files are
//! written for the stable toolchain `scripts/test` uses (rustc 1.95). It also lists the first
//! eight extractors or responses weft implements ("the following other types implement
//! trait ..."), so a new extractor or response whose name sorts among them changes it too.
//! Review the difference, then refresh the files with
//! `TRYBUILD=overwrite cargo test -p weft --test compile_fail`.

#[test]
fn handler_errors_name_what_is_at_fault() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
