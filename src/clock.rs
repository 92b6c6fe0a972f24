//! The wall clock as the node reports it: events, refusals, history samples, replication
//! heartbeats and the feed's `UNIX_TIMESTAMP()` all use one reading of it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
