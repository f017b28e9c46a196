#![no_main]
//! `tracelink_fuzz::upload_context`: see fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tracelink_fuzz::upload_context(data);
});
