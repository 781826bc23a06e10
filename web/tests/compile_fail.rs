//! Compile-fail tests: what a mistaken handler's error says, and where it points
//! (`tests/ui/*.rs`, each with the expected rustc output in `*.stderr`).
//!
//! The expected output is rustc's, so it depends on the compiler version: the files are
//! written for the stable toolchain `scripts/test` uses. After a toolchain update, review
//! and refresh them with `TRYBUILD=overwrite cargo test -p weft --test compile_fail`.

#[test]
fn handler_errors_name_the_argument() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
