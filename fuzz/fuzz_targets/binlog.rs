#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| myrelay_fuzz::binlog(data));
