#![no_main]
//! `tracelink_fuzz::lines_git_ai`: see fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tracelink_fuzz::lines_git_ai(data);
});
