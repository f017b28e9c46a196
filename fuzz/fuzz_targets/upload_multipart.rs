#![no_main]
//! `tracelink_fuzz::upload_multipart`: see fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tracelink_fuzz::upload_multipart(data);
});
