//! Replays the fuzz corpus (`fuzz/corpus/<target>/`: seeds, and what libFuzzer kept or found)
//! through the fuzz targets' own checks (`fuzz/src/lib.rs`), so `cargo test` on stable Rust runs
//! every input the fuzzers ever saved; libFuzzer itself runs by hand or in `fuzz/run-ci.sh`.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no corpus for {target}");
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let bytes = std::fs::read(path).expect("corpus file");
            std::panic::catch_unwind(|| check(&bytes)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: failing inputs {failed:?}");
}

#[test]
fn packet_corpus() {
    replay("packet", checks::packet);
}

#[test]
fn handshake_corpus() {
    replay("handshake", checks::handshake);
}

#[test]
fn classify_corpus() {
    replay("classify", checks::classify);
}

#[test]
fn binlog_corpus() {
    replay("binlog", checks::binlog);
}

#[test]
fn channel_corpus() {
    replay("channel", checks::channel);
}
