#![no_main]
//! `tracelink_fuzz::webhook_event`: see fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tracelink_fuzz::webhook_event(data);
});
