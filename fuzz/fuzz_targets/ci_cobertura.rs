#![no_main]
//! `tracelink_fuzz::ci_cobertura`: see fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tracelink_fuzz::ci_cobertura(data);
});
