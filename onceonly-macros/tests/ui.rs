//! Compile-time behaviour: every misuse fails with an error on the offending token, and every
//! accepted form compiles without warnings.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
