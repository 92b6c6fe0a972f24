//! A node's last 15 minutes, one sample a second, for `/api/history` (and the console's plots).
//!
//! Once a second the sampler (`crate::admin::history`) copies the node's cumulative counters
//! into a [`Reading`]; the difference from the previous reading is a [`Sample`], pushed into a
//! [`History`]: a ring of [`CAPACITY`] samples, allocated once, so memory stays bounded however
//! long the node runs. Sessions never see any of this: the per-statement path stays the relaxed
//! increments of `crate::metrics`; the ring's lock is taken once a second by the sampler and once
//! per request by `/api/history`.
//!
//! Latency percentiles per second are estimated from that second's histogram bucket deltas, the
//! way Prometheus' `histogram_quantile` does it (see [`percentile`]): the node keeps no
//! per-statement latencies, and the estimate is within the width of the bucket it falls in.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::LATENCY_BUCKETS;

/// Samples kept: 15 minutes of one a second.
pub const CAPACITY: usize = 900;

/// How often the sampler reads the counters.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Latency histogram counts, one per bucket of [`LATENCY_BUCKETS`] (not cumulative), the last
/// past every bound.
pub type Buckets = [u64; LATENCY_BUCKETS.len() + 1];

/// A slave as the master saw it at a sample's instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaveSample {
    /// The name the slave announced.
    pub name: String,
    /// Age of the oldest transaction it had not applied, in milliseconds; `null` while it was
    /// not linked, so its lag series has a gap there.
    pub lag_ms: Option<u64>,
    /// The position it reported applied, as a number (sum of GTID sequence numbers).
    pub lsn: u64,
    /// The same position as GTIDs (`0-1-42`), the form the backend reads.
    pub gtid: String,
}

/// The node's counters at one instant: cumulative counts, and gauges as they were.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// When it was read, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Statements so far, by class (`crate::metrics::CLASSES` order) then outcome
    /// (`Outcome::ALL` order).
    pub statements: [[u64; 3]; 6],
    /// The latency histogram so far.
    pub latency: Buckets,
    /// Bytes received from clients so far.
    pub bytes_in: u64,
    /// Bytes sent to clients so far.
    pub bytes_out: u64,
    /// Clients logged in at that instant.
    pub clients: usize,
    /// Backend connections owned by sessions at that instant.
    pub pool_in_use: usize,
    /// On a master, each slave at that instant.
    pub slaves: Vec<SlaveSample>,
}

/// One second of the node, as `/api/history` shows it (short keys: 900 of these go out per
/// request).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// The end of the second, in milliseconds since the Unix epoch.
    pub t: u64,
    /// Statements in that second, by class then outcome (orders as in [`HistoryJson`]).
    pub stmts: [[u64; 3]; 6],
    /// Estimated median latency of the statements finished in that second, in microseconds;
    /// `null` when none finished.
    pub p50_us: Option<u64>,
    /// Estimated 99th percentile latency, likewise.
    pub p99_us: Option<u64>,
    /// Clients logged in at its end.
    pub clients: usize,
    /// Backend connections owned by sessions at its end.
    pub pool: usize,
    /// Bytes received from clients in that second.
    pub bytes_in: u64,
    /// Bytes sent to clients in that second.
    pub bytes_out: u64,
    /// On a master, each slave's lag and applied position at its end (left out elsewhere).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slaves: Vec<SlaveSample>,
}

impl Sample {
    /// What happened between two readings: counters as deltas, gauges as `now` has them.
    /// Counters never go back, but a difference that would is taken as zero rather than wrap.
    pub fn between(before: &Reading, now: &Reading) -> Sample {
        let mut stmts = [[0; 3]; 6];
        for (row, (b, n)) in stmts
            .iter_mut()
            .zip(before.statements.iter().zip(&now.statements))
        {
            for (cell, (b, n)) in row.iter_mut().zip(b.iter().zip(n)) {
                *cell = n.saturating_sub(*b);
            }
        }
        let mut latency: Buckets = [0; LATENCY_BUCKETS.len() + 1];
        for (cell, (b, n)) in latency
            .iter_mut()
            .zip(before.latency.iter().zip(&now.latency))
        {
            *cell = n.saturating_sub(*b);
        }
        let micros = |q| percentile(&latency, q).map(|s| (s * 1e6).round() as u64);
        Sample {
            t: now.at_unix_ms,
            stmts,
            p50_us: micros(0.5),
            p99_us: micros(0.99),
            clients: now.clients,
            pool: now.pool_in_use,
            bytes_in: now.bytes_in.saturating_sub(before.bytes_in),
            bytes_out: now.bytes_out.saturating_sub(before.bytes_out),
            slaves: now.slaves.clone(),
        }
    }
}

/// Estimates the `q` quantile (0 < q ≤ 1), in seconds, of the observations counted in
/// `buckets`; `None` when there are none.
///
/// As Prometheus' `histogram_quantile`: the rank `q × count` falls in one bucket, and the
/// observations in it are taken as spread evenly between its lower bound (the previous bucket's
/// bound, 0 for the first) and its upper bound. A rank in the last bucket (past 5 s) has no
/// upper bound, so the estimate is that lower bound: "at least 5 s".
pub fn percentile(buckets: &Buckets, q: f64) -> Option<f64> {
    let count: u64 = buckets.iter().sum();
    if count == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * count as f64;
    let mut below = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        if n > 0 && (below + n) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { LATENCY_BUCKETS[i - 1] };
            let Some(&upper) = LATENCY_BUCKETS.get(i) else {
                return Some(lower);
            };
            let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * within);
        }
        below += n;
    }
    LATENCY_BUCKETS.last().copied()
}

/// The last [`CAPACITY`] samples, oldest first.
#[derive(Debug)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl Default for History {
    fn default() -> Self {
        History {
            samples: Mutex::new(VecDeque::with_capacity(CAPACITY)),
        }
    }
}

impl History {
    /// Adds the newest sample, forgetting the oldest once [`CAPACITY`] are kept.
    pub fn push(&self, sample: Sample) {
        if let Ok(mut samples) = self.samples.lock() {
            while samples.len() >= CAPACITY {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
    }

    /// A copy of the samples that ended after `after` (ms since the Unix epoch), oldest first
    /// (the lock is held only to copy).
    pub fn samples_after(&self, after: u64) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|s| s.iter().filter(|s| s.t > after).cloned().collect())
            .unwrap_or_default()
    }

    /// The history as `/api/history` answers it: the samples that ended after `after` (0 for
    /// all), so that a page polling it fetches only what is new.
    pub fn json(&self, after: u64) -> HistoryJson {
        HistoryJson {
            interval_ms: INTERVAL.as_millis() as u64,
            capacity: CAPACITY,
            classes: crate::metrics::CLASSES.map(|c| c.as_str()),
            outcomes: crate::metrics::Outcome::ALL.map(|o| o.as_str()),
            samples: self.samples_after(after),
        }
    }
}

/// `/api/history`'s answer: the samples, with the names of their statement rows and columns
/// said once rather than in each sample.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryJson {
    /// Milliseconds between samples.
    pub interval_ms: u64,
    /// The most samples kept.
    pub capacity: usize,
    /// The classes of [`Sample::stmts`]' rows, in order.
    pub classes: [&'static str; 6],
    /// The outcomes of its columns, in order.
    pub outcomes: [&'static str; 3],
    /// Oldest first.
    pub samples: Vec<Sample>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64) -> Sample {
        Sample::between(
            &Reading::default(),
            &Reading {
                at_unix_ms: t,
                ..Reading::default()
            },
        )
    }

    #[test]
    fn the_ring_keeps_the_newest_900_oldest_first() {
        let history = History::default();
        for t in 0..(CAPACITY as u64 + 250) {
            history.push(sample(t));
        }
        let kept = history.samples_after(0);
        assert_eq!(history.samples_after(CAPACITY as u64 + 247).len(), 2);
        assert_eq!(kept.len(), CAPACITY);
        assert_eq!(kept[0].t, 250, "the oldest 250 were forgotten");
        assert_eq!(kept[CAPACITY - 1].t, CAPACITY as u64 + 249);
        assert!(kept.windows(2).all(|w| w[0].t + 1 == w[1].t));
        let capacity = history.samples.lock().map(|s| s.capacity()).unwrap_or(0);
        assert!(
            capacity < 2 * CAPACITY,
            "no growth past the ring: {capacity}"
        );
        // The README's bound on the ring's memory.
        assert!(std::mem::size_of::<Sample>() <= 256);
    }

    #[test]
    fn percentiles_interpolate_within_the_bucket_of_their_rank() {
        let mut b: Buckets = [0; LATENCY_BUCKETS.len() + 1];
        assert_eq!(percentile(&b, 0.5), None, "no statements, no latency");
        // 100 statements: 50 under 100 µs, 49 in (1 ms, 2.5 ms], 1 in (0.5 s, 1 s].
        b[0] = 50;
        b[4] = 49;
        b[12] = 1;
        let p50 = percentile(&b, 0.5).expect("p50");
        assert!(
            (p50 - 0.0001).abs() < 1e-12,
            "rank 50 is the top of the first: {p50}"
        );
        let p99 = percentile(&b, 0.99).expect("p99");
        assert!(
            (p99 - 0.0025).abs() < 1e-12,
            "rank 99 is the top of 2.5 ms: {p99}"
        );
        let p75 = percentile(&b, 0.75).expect("p75");
        // Rank 75 is the 25th of 49 in (1 ms, 2.5 ms].
        let want = 0.001 + 0.0015 * 25.0 / 49.0;
        assert!((p75 - want).abs() < 1e-12, "{p75} vs {want}");
        assert_eq!(percentile(&b, 1.0), Some(1.0));
        // Past the last bound: "at least 5 s".
        let mut slow: Buckets = [0; LATENCY_BUCKETS.len() + 1];
        slow[LATENCY_BUCKETS.len()] = 3;
        assert_eq!(percentile(&slow, 0.5), Some(5.0));
    }

    #[test]
    fn a_sample_is_the_difference_of_two_readings() {
        let mut before = Reading {
            bytes_in: 100,
            bytes_out: 1000,
            ..Reading::default()
        };
        before.statements[0][0] = 7;
        before.latency[3] = 7;
        let mut now = before.clone();
        now.at_unix_ms = 42;
        now.statements[0][0] = 10;
        now.statements[3][2] = 1;
        now.latency[3] = 10;
        now.bytes_in = 160;
        now.bytes_out = 1900;
        now.clients = 2;
        now.pool_in_use = 1;
        let s = Sample::between(&before, &now);
        assert_eq!(s.t, 42);
        assert_eq!(s.stmts[0], [3, 0, 0]);
        assert_eq!(s.stmts[3], [0, 0, 1]);
        assert_eq!((s.bytes_in, s.bytes_out), (60, 900));
        assert_eq!((s.clients, s.pool), (2, 1));
        // Three statements, all in (500 µs, 1 ms]: rank 1.5 of 3 is halfway up it.
        assert_eq!(s.p50_us, Some(750));
        assert_eq!(s.p99_us, Some(995));
        let json = serde_json::to_string(&s).expect("json");
        assert!(!json.contains("slaves"), "no slaves, no key: {json}");
    }
}
