//! `/metrics`: the node's state, read at each scrape, and its counters (`crate::metrics`), in
//! the Prometheus text exposition format (0.0.4), encoded by prometheus-client.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeMetric, prometheus_text,
};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::status::{NodeStatus, SlaveView};
use crate::metrics::{family, single};
use crate::node::NodeShared;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A registry holding the node's one collector; the admin listener builds it once.
pub fn registry(node: Arc<NodeShared>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NodeCollector(node)));
    registry
}

/// The registry's metrics as Prometheus text.
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

/// Reads the node at each scrape: most of what it shows (clients, pool, positions, slaves) is
/// state the node keeps anyway, not counters worth mirroring into metrics of their own.
struct NodeCollector(Arc<NodeShared>);

impl fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NodeCollector")
            .field(&self.0.config.name)
            .finish()
    }
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let node = &*self.0;
        let status = NodeStatus::read(node);
        // An info metric: the encoder adds `_info`, and the text format calls it a gauge of 1.
        let info = Info::new([("node", status.name.as_str()), ("role", status.role)]);
        single(
            &mut encoder,
            "myrelay_node",
            "The node's name and role (always 1).",
            info,
        )?;
        gauge(
            &mut encoder,
            "myrelay_client_connections",
            "Clients connected and logged in now.",
            status.clients,
        )?;
        let pool = node.backend.usage();
        by_label(
            &mut encoder,
            "myrelay_backend_connections",
            "Connections to the node's own backend, in use by sessions or idle in the pool.",
            "state",
            [
                ("in_use", ConstGauge::new(pool.in_use)),
                ("idle", ConstGauge::new(pool.idle)),
            ],
        )?;
        gauge(
            &mut encoder,
            "myrelay_backend_pool_size",
            "Backend connections the node opens at most (limits.backend_pool_size).",
            pool.size,
        )?;
        gauge(
            &mut encoder,
            "myrelay_replication_lsn",
            "Master: the binlog position read (GTID sequence numbers summed over domains). Slave: the position applied.",
            status.lsn,
        )?;
        if let Some(master) = &node.master {
            single(
                &mut encoder,
                "myrelay_ack_timeouts",
                "Master: commits whose OK went out after replication.ack_timeout_ms without the slaves replication.ack asks for.",
                ConstCounter::new(master.ack_timeouts()),
            )?;
        }
        if let Some(replica) = &node.replica {
            single(
                &mut encoder,
                "myrelay_replication_lock_kills",
                "Slave: client connections killed because replication waited on their locks longer than replication.apply_lock_wait_ms.",
                ConstCounter::new(replica.lock_kills()),
            )?;
        }
        if let Some(link) = &status.master_link {
            replica_link(&mut encoder, status.lsn, link.master_lsn, link.connected)?;
        }
        // A slave's status lists its siblings as the master told; only the master measures them.
        if node.master.is_some() {
            slaves(&mut encoder, &status.slaves)?;
        }
        let reloads = &status.reloads;
        by_label(
            &mut encoder,
            "myrelay_config_reloads",
            "Config reloads (SIGHUP) since start: applied, or failed because the file did not load.",
            "result",
            [
                ("applied", ConstCounter::new(reloads.applied)),
                ("failed", ConstCounter::new(reloads.failed)),
            ],
        )?;
        Collector::encode(&node.metrics, encoder)
    }
}

/// A gauge without labels.
fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> fmt::Result {
    single(encoder, name, help, ConstGauge::new(value))
}

/// A family with one label, `name{label="value"}` for each `(value, metric)`.
fn by_label<M: EncodeMetric + TypedMetric, const N: usize>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    series: [(&str, M); N],
) -> fmt::Result {
    let series = series.map(|(value, metric)| ([(label, value)], metric));
    family(encoder, name, help, series)
}

/// A slave's link to its master: positions applied and reported, and whether it is up.
fn replica_link(
    encoder: &mut DescriptorEncoder<'_>,
    applied: u64,
    master_lsn: u64,
    connected: bool,
) -> fmt::Result {
    gauge(
        encoder,
        "myrelay_replication_applied_lsn",
        "Slave: the binlog position applied on this node's backend.",
        applied,
    )?;
    gauge(
        encoder,
        "myrelay_replication_master_lsn",
        "Slave: the last LSN the master reported.",
        master_lsn,
    )?;
    gauge(
        encoder,
        "myrelay_replication_connected",
        "Slave: 1 while linked to the master.",
        u64::from(connected),
    )?;
    gauge(
        encoder,
        "myrelay_replication_lag_entries",
        "Slave: entries the master reported that this node has not applied.",
        master_lsn.saturating_sub(applied),
    )
}

/// A master's slaves, one series per slave in each family (none without slaves).
fn slaves(encoder: &mut DescriptorEncoder<'_>, slaves: &[SlaveView]) -> fmt::Result {
    fn per_slave<N: EncodeGaugeValue>(
        encoder: &mut DescriptorEncoder<'_>,
        slaves: &[SlaveView],
        name: &str,
        help: &str,
        value: impl Fn(&SlaveView) -> N,
    ) -> fmt::Result {
        let series = slaves.iter().map(|s| {
            (
                [("slave", s.slave.name.as_str())],
                ConstGauge::new(value(s)),
            )
        });
        family(encoder, name, help, series)
    }
    per_slave(
        encoder,
        slaves,
        "myrelay_slave_connected",
        "Master: 1 while the slave is linked.",
        |s| u64::from(s.slave.connected),
    )?;
    per_slave(
        encoder,
        slaves,
        "myrelay_slave_applied_lsn",
        "Master: the last LSN the slave reported applied.",
        |s| s.slave.applied_lsn,
    )?;
    per_slave(
        encoder,
        slaves,
        "myrelay_slave_lag_entries",
        "Master: logged entries the slave has not applied yet.",
        |s| s.lag_entries,
    )?;
    per_slave(
        encoder,
        slaves,
        "myrelay_slave_lag_seconds",
        "Master: age of the oldest entry the slave has not applied yet.",
        |s| s.slave.lag_ms as f64 / 1000.0,
    )
}
