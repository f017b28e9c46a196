#![no_main]
//! `tracelink_fuzz::commit_trailers`: see fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tracelink_fuzz::commit_trailers(data);
});
