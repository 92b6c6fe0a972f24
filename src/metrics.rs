//! A node's counters: sessions update them, the admin listener renders them (`admin/metrics.rs`).
//!
//! Everything is an atomic or a short critical section, because sessions update these on every
//! statement: the hot path pays a few relaxed increments, and only a scrape walks them all.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::sql::class::StatementClass;

/// Every statement class, in the order counters are kept and shown.
pub const CLASSES: [StatementClass; 6] = [
    StatementClass::Read,
    StatementClass::Session,
    StatementClass::Transaction,
    StatementClass::Write,
    StatementClass::Ddl,
    StatementClass::Admin,
];

/// What became of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Run on this node's backend (successfully or with the backend's error).
    Executed,
    /// Sent on to the master (a slave's writes and the transactions around them).
    Forwarded,
    /// Refused by the node's policy; the backend never saw it.
    Refused,
}

impl Outcome {
    /// Every outcome, in counter order.
    pub const ALL: [Outcome; 3] = [Outcome::Executed, Outcome::Forwarded, Outcome::Refused];

    /// Lower-case name, as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Executed => "executed",
            Outcome::Forwarded => "forwarded",
            Outcome::Refused => "refused",
        }
    }
}

fn class_index(class: StatementClass) -> usize {
    CLASSES.iter().position(|c| *c == class).unwrap_or(0)
}

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` follows.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How many refusals the node remembers for the console.
pub const REFUSALS_KEPT: usize = 50;
/// Longest statement text kept with a refusal (characters).
const STATEMENT_KEPT: usize = 200;

/// A refused statement, as the console lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The proxy user.
    pub user: String,
    /// The client's address.
    pub source: String,
    /// The statement, cut to a couple of hundred characters.
    pub statement: String,
    /// Its class.
    pub class: &'static str,
    /// The MySQL error code sent.
    pub code: u16,
    /// The error message sent.
    pub reason: String,
}

/// The counters of one node.
#[derive(Default)]
pub struct Metrics {
    connections_total: AtomicU64,
    statements: [[AtomicU64; 3]; 6],
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    bytes_in: Arc<AtomicU64>,
    bytes_out: Arc<AtomicU64>,
    refusals: Mutex<VecDeque<Refusal>>,
}

/// A point-in-time copy of the statement counters, by class then outcome.
pub type StatementCounts = Vec<(&'static str, [u64; 3])>;

impl Metrics {
    /// Counts a client that logged in.
    pub fn connection(&self) {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a statement that ran or was forwarded, with how long it took.
    pub fn statement(&self, class: StatementClass, outcome: Outcome, took: Duration) {
        self.statements[class_index(class)][outcome as usize].fetch_add(1, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        // Buckets are stored non-cumulatively; rendering adds them up.
        let bucket = LATENCY_BUCKETS.iter().position(|b| seconds <= *b);
        if let Some(i) = bucket {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts a refusal and remembers it for the console (the oldest is forgotten first).
    pub fn refused(&self, class: StatementClass, refusal: Refusal) {
        self.statements[class_index(class)][Outcome::Refused as usize]
            .fetch_add(1, Ordering::Relaxed);
        if let Ok(mut kept) = self.refusals.lock() {
            if kept.len() >= REFUSALS_KEPT {
                kept.pop_front();
            }
            kept.push_back(refusal);
        }
    }

    /// The remembered refusals, newest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refusals
            .lock()
            .map(|k| k.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Clients that logged in since the node started.
    pub fn connections_total(&self) -> u64 {
        self.connections_total.load(Ordering::Relaxed)
    }

    /// Statement counters by class and outcome.
    pub fn statement_counts(&self) -> StatementCounts {
        CLASSES
            .iter()
            .zip(&self.statements)
            .map(|(class, row)| {
                let counts = [0, 1, 2].map(|i| row[i].load(Ordering::Relaxed));
                (class.as_str(), counts)
            })
            .collect()
    }

    /// Bytes received from and sent to clients.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }

    /// Adds bytes a client sent outside a [`Counted`] stream (the handshake's first packet).
    pub fn received(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Adds bytes sent to a client outside a [`Counted`] stream (the greeting).
    pub fn sent(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Wraps a client stream (or one half of it) so that its traffic is counted.
    pub fn counted<S>(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            read: self.bytes_in.clone(),
            written: self.bytes_out.clone(),
        }
    }

    /// The latency histogram: cumulative bucket counts, the total count and the sum (seconds).
    pub fn histogram(&self) -> (Vec<u64>, u64, f64) {
        let mut cumulative = 0;
        let buckets = self
            .buckets
            .iter()
            .map(|b| {
                cumulative += b.load(Ordering::Relaxed);
                cumulative
            })
            .collect();
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, count, sum)
    }
}

/// A client stream whose bytes in and out are added to the node's counters.
pub struct Counted<S> {
    inner: S,
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Cuts a statement to what a refusal keeps, on a character boundary.
pub fn truncate_statement(text: &str) -> String {
    let mut cut: String = text.trim().chars().take(STATEMENT_KEPT).collect();
    if text.trim().chars().count() > STATEMENT_KEPT {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_refusals_bounded() {
        let m = Metrics::default();
        m.statement(
            StatementClass::Read,
            Outcome::Executed,
            Duration::from_micros(50),
        );
        m.statement(
            StatementClass::Write,
            Outcome::Forwarded,
            Duration::from_millis(3),
        );
        m.statement(
            StatementClass::Read,
            Outcome::Executed,
            Duration::from_secs(9),
        );
        let (buckets, count, sum) = m.histogram();
        assert_eq!(count, 3);
        assert_eq!(buckets[0], 1, "50 µs is in the first bucket");
        assert_eq!(buckets[5], 2, "3 ms is at most 5 ms");
        assert_eq!(buckets[LATENCY_BUCKETS.len() - 1], 2, "9 s only in +Inf");
        assert!((sum - 9.00305).abs() < 1e-6, "{sum}");
        for i in 0..(REFUSALS_KEPT + 5) {
            m.refused(
                StatementClass::Ddl,
                Refusal {
                    at_unix_ms: 0,
                    user: "u".into(),
                    source: "s".into(),
                    statement: format!("DROP TABLE t{i}"),
                    class: "ddl",
                    code: 1290,
                    reason: "r".into(),
                },
            );
        }
        let kept = m.refusals();
        assert_eq!(kept.len(), REFUSALS_KEPT);
        assert_eq!(
            kept[0].statement,
            format!("DROP TABLE t{}", REFUSALS_KEPT + 4)
        );
        let ddl = &m.statement_counts()[4];
        assert_eq!(ddl, &("ddl", [0, 0, (REFUSALS_KEPT + 5) as u64]));
    }
}
