//! Logging for the node's processes (`myrelay`, `myrelay-demo`): one format, to stderr, so that
//! stdout stays free for what scripts read (the demo's contract lines, checksum reports).

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}
