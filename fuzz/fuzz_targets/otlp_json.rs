#![no_main]
//! `tracelink_fuzz::otlp_json`: see fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tracelink_fuzz::otlp_json(data);
});
