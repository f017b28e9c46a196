#![no_main]
//! `tracelink_fuzz::lines_agent_trace`: see fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tracelink_fuzz::lines_agent_trace(data);
});
