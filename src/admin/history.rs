//! The sampler behind `/api/history`: once a second it reads the node's counters and pushes
//! what changed into the node's [`History`].
//!
//! It reads what `/metrics` reads (atomics, the pool's counts, the master's slave table) and
//! nothing else, so the per-statement path does not change; it runs with the admin listener
//! and stops with the node's shutdown signal.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::clock::unix_ms;
use crate::history::{History, INTERVAL, Reading, Sample, SlaveSample};
use crate::node::NodeShared;

/// Reads the node's counters now (nothing here waits on the network).
pub fn read(node: &NodeShared) -> Reading {
    let m = &node.metrics;
    let mut statements = [[0; 3]; 6];
    for (row, (_, counts)) in statements.iter_mut().zip(m.statement_counts()) {
        *row = counts;
    }
    let (bytes_in, bytes_out) = m.bytes();
    let slaves = node
        .master
        .as_ref()
        .map(|master| {
            master
                .slaves()
                .into_iter()
                .map(|(name, s)| SlaveSample {
                    name,
                    lag_ms: s.connected.then_some(s.lag_ms),
                    lsn: s.applied.lsn(),
                    gtid: s.applied.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Reading {
        at_unix_ms: unix_ms(),
        statements,
        latency: m.latency_buckets(),
        bytes_in,
        bytes_out,
        clients: node.clients(),
        pool_in_use: node.backend.usage().in_use,
        slaves,
    }
}

/// Samples `node` into `history` every [`INTERVAL`] until `shutdown` fires (or its sender is
/// gone). A tick the runtime could not run on time is taken late rather than twice, so each
/// sample covers about a second and its `t` says exactly when it ended.
pub async fn run(
    node: Arc<NodeShared>,
    history: Arc<History>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is immediate: it takes the baseline the first sample is measured from.
    ticks.tick().await;
    let mut last = read(&node);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticks.tick() => {}
        }
        let now = read(&node);
        history.push(Sample::between(&last, &now));
        last = now;
    }
}
