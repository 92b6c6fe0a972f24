//! A node's counters: sessions update them, the admin listener's `/metrics` encodes them.
//!
//! Everything is an atomic or a short critical section, because sessions update these on every
//! statement: the hot path pays a few relaxed increments, and only a scrape walks them all.
//!
//! prometheus-client encodes them as a [`Collector`] that reads the atomics at scrape time,
//! rather than sessions updating prometheus-client's own handles: its `Histogram` takes a mutex
//! on every observation, which every session would contend on, and its counters would cost what
//! these atomics do. So the hot path stays a few relaxed increments and the scrape pays the rest.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::{MetricType, TypedMetric};
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
#[derive(Debug, Default)]
pub struct Metrics {
    connections_total: AtomicU64,
    statements: [[AtomicU64; 3]; 6],
    /// Per bucket, not cumulative, so that a statement bumps one; the last is past every bound.
    /// Their sum is the count, so that no scrape sees a count below its buckets.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
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
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
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

    /// The latency histogram's per-bucket (not cumulative) counts so far, the last past every
    /// bound of [`LATENCY_BUCKETS`]: the history's sampler takes their differences each second.
    pub fn latency_buckets(&self) -> [u64; LATENCY_BUCKETS.len() + 1] {
        self.buckets.each_ref().map(|b| b.load(Ordering::Relaxed))
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

    /// The latency histogram as the encoder takes it: each bound with its own (not cumulative)
    /// count, the total count and the sum in seconds.
    fn latency(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let counts = self.latency_buckets();
        let buckets = LATENCY_BUCKETS.iter().copied().zip(counts).collect();
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, counts.iter().sum(), sum)
    }
}

/// Read at each scrape; see the module's note on why not prometheus-client's own metrics.
impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        single(
            &mut encoder,
            "myrelay_client_connections",
            "Clients that logged in since the node started.",
            ConstCounter::new(self.connections_total()),
        )?;
        let counts = self.statement_counts();
        let statements = counts.iter().flat_map(|(class, counts)| {
            Outcome::ALL.iter().zip(counts).map(move |(outcome, n)| {
                let labels = [("class", *class), ("outcome", outcome.as_str())];
                (labels, ConstCounter::new(*n))
            })
        });
        family(
            &mut encoder,
            "myrelay_statements",
            "Statements by class and what the node did with them.",
            statements,
        )?;
        let (buckets, count, sum) = self.latency();
        encoder
            .encode_descriptor(
                "myrelay_statement_duration_seconds",
                "Time from a statement's arrival to the end of its reply (executed and forwarded).",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        let (bytes_in, bytes_out) = self.bytes();
        single(
            &mut encoder,
            "myrelay_client_bytes_received",
            "Bytes received from clients (wire bytes, TLS included).",
            ConstCounter::new(bytes_in),
        )?;
        single(
            &mut encoder,
            "myrelay_client_bytes_sent",
            "Bytes sent to clients (wire bytes, TLS included).",
            ConstCounter::new(bytes_out),
        )
    }
}

/// Encodes a family of one series without labels. A counter's `name` leaves out `_total`: the
/// encoder adds it.
pub fn single(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// Encodes a family of labelled series (a counter's `name` without `_total`, as for [`single`]).
/// A family with none is left out: a `# TYPE` line without samples says nothing.
pub fn family<L, M>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
{
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, M::TYPE)?;
    for (labels, value) in series {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
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

    use prometheus_client::encoding::prometheus_text;
    use prometheus_client::registry::Registry;

    /// The value of the one line of `text` that starts with `series` and a space.
    fn sample<'t>(text: &'t str, series: &str) -> &'t str {
        let mut found = text
            .lines()
            .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '));
        let value = found
            .next()
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        assert!(found.next().is_none(), "{series} twice in:\n{text}");
        value
    }

    /// One gauge family whose label value needs escaping.
    #[derive(Debug)]
    struct Quoted;

    impl Collector for Quoted {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            let gauge = prometheus_client::metrics::gauge::ConstGauge::new(1);
            family(&mut encoder, "g", "h.", [([("l", "a\"b\\c\nd")], gauge)])
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Quoted));
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).expect("encodes");
        assert_eq!(sample(&text, r#"g{l="a\"b\\c\nd"}"#), "1", "{text}");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_refusals_bounded() {
        let m = Arc::new(Metrics::default());
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
        let mut registry = Registry::default();
        registry.register_collector(Box::new(m.clone()));
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).expect("encodes");
        let bucket = |le: &str| {
            let series = format!("myrelay_statement_duration_seconds_bucket{{le=\"{le}\"}}");
            sample(&text, &series).to_string()
        };
        assert_eq!(bucket("0.0001"), "1", "50 µs is in the first bucket");
        assert_eq!(bucket("0.005"), "2", "3 ms is at most 5 ms");
        assert_eq!(bucket("5"), "2", "9 s only in +Inf");
        assert_eq!(bucket("+Inf"), "3");
        assert_eq!(
            sample(&text, "myrelay_statement_duration_seconds_count"),
            "3"
        );
        let sum: f64 = sample(&text, "myrelay_statement_duration_seconds_sum")
            .parse()
            .expect("a number");
        assert!((sum - 9.00305).abs() < 1e-6, "{sum}");
        assert!(text.contains("# TYPE myrelay_statement_duration_seconds histogram\n"));
        let write_forwarded = r#"myrelay_statements_total{class="write",outcome="forwarded"}"#;
        assert_eq!(sample(&text, write_forwarded), "1");
        assert!(text.contains("# TYPE myrelay_statements_total counter\n"));
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
