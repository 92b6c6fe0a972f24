//! The node's counters (`crate::metrics`) and state in the Prometheus text exposition format.

use std::fmt::Write as _;

use crate::metrics::{LATENCY_BUCKETS, Outcome};
use crate::node::NodeShared;

/// Escapes a label value for the text format (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `# HELP` and `# TYPE` for a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The node's metrics in the Prometheus text exposition format (version 0.0.4).
pub fn render(node: &NodeShared) -> String {
    let m = &node.metrics;
    let status = super::status::NodeStatus::read(node);
    let mut out = String::new();
    family(
        &mut out,
        "myrelay_node_info",
        "gauge",
        "The node's name and role (always 1).",
    );
    let _ = writeln!(
        out,
        "myrelay_node_info{{node=\"{}\",role=\"{}\"}} 1",
        label(&node.config.name),
        node.config.role.as_str()
    );
    family(
        &mut out,
        "myrelay_client_connections",
        "gauge",
        "Clients connected and logged in now.",
    );
    let _ = writeln!(out, "myrelay_client_connections {}", node.clients());
    family(
        &mut out,
        "myrelay_client_connections_total",
        "counter",
        "Clients that logged in since the node started.",
    );
    let _ = writeln!(
        out,
        "myrelay_client_connections_total {}",
        m.connections_total()
    );
    family(
        &mut out,
        "myrelay_statements_total",
        "counter",
        "Statements by class and what the node did with them.",
    );
    for (class, counts) in m.statement_counts() {
        for (outcome, n) in Outcome::ALL.iter().zip(counts) {
            let _ = writeln!(
                out,
                "myrelay_statements_total{{class=\"{class}\",outcome=\"{}\"}} {n}",
                outcome.as_str()
            );
        }
    }
    family(
        &mut out,
        "myrelay_statement_duration_seconds",
        "histogram",
        "Time from a statement's arrival to the end of its reply (executed and forwarded).",
    );
    let (buckets, count, sum) = m.histogram();
    for (bound, n) in LATENCY_BUCKETS.iter().zip(&buckets) {
        let _ = writeln!(
            out,
            "myrelay_statement_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "myrelay_statement_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(out, "myrelay_statement_duration_seconds_sum {sum}");
    let _ = writeln!(out, "myrelay_statement_duration_seconds_count {count}");
    let pool = node.backend.usage();
    family(
        &mut out,
        "myrelay_backend_connections",
        "gauge",
        "Connections to the node's own backend, in use by sessions or idle in the pool.",
    );
    let _ = writeln!(
        out,
        "myrelay_backend_connections{{state=\"in_use\"}} {}",
        pool.in_use
    );
    let _ = writeln!(
        out,
        "myrelay_backend_connections{{state=\"idle\"}} {}",
        pool.idle
    );
    family(
        &mut out,
        "myrelay_backend_pool_size",
        "gauge",
        "Backend connections the node opens at most (limits.backend_pool_size).",
    );
    let _ = writeln!(out, "myrelay_backend_pool_size {}", pool.size);
    family(
        &mut out,
        "myrelay_replication_lsn",
        "gauge",
        "Master: the binlog position read (GTID sequence numbers summed over domains). Slave: the position applied.",
    );
    let _ = writeln!(out, "myrelay_replication_lsn {}", status.lsn);
    if let Some(master) = &node.master {
        family(
            &mut out,
            "myrelay_ack_timeouts_total",
            "counter",
            "Master: commits whose OK went out after replication.ack_timeout_ms without the slaves replication.ack asks for.",
        );
        let _ = writeln!(out, "myrelay_ack_timeouts_total {}", master.ack_timeouts());
    }
    if let Some(link) = &status.master_link {
        family(
            &mut out,
            "myrelay_replication_applied_lsn",
            "gauge",
            "Slave: the binlog position applied on this node's backend.",
        );
        let _ = writeln!(out, "myrelay_replication_applied_lsn {}", status.lsn);
        family(
            &mut out,
            "myrelay_replication_master_lsn",
            "gauge",
            "Slave: the last LSN the master reported.",
        );
        let _ = writeln!(out, "myrelay_replication_master_lsn {}", link.master_lsn);
        family(
            &mut out,
            "myrelay_replication_connected",
            "gauge",
            "Slave: 1 while linked to the master.",
        );
        let _ = writeln!(
            out,
            "myrelay_replication_connected {}",
            u8::from(link.connected)
        );
        family(
            &mut out,
            "myrelay_replication_lag_entries",
            "gauge",
            "Slave: entries the master reported that this node has not applied.",
        );
        let _ = writeln!(
            out,
            "myrelay_replication_lag_entries {}",
            link.master_lsn.saturating_sub(status.lsn)
        );
    }
    if !status.slaves.is_empty() {
        let slaves = &status.slaves;
        let per_slave = |out: &mut String, name: &str, help: &str, value: &dyn Fn(usize) -> f64| {
            family(out, name, "gauge", help);
            for (i, s) in slaves.iter().enumerate() {
                let _ = writeln!(out, "{name}{{slave=\"{}\"}} {}", label(&s.name), value(i));
            }
        };
        per_slave(
            &mut out,
            "myrelay_slave_connected",
            "Master: 1 while the slave is linked.",
            &|i| f64::from(u8::from(slaves[i].connected)),
        );
        per_slave(
            &mut out,
            "myrelay_slave_applied_lsn",
            "Master: the last LSN the slave reported applied.",
            &|i| slaves[i].applied_lsn as f64,
        );
        per_slave(
            &mut out,
            "myrelay_slave_lag_entries",
            "Master: logged entries the slave has not applied yet.",
            &|i| slaves[i].lag_entries as f64,
        );
        per_slave(
            &mut out,
            "myrelay_slave_lag_seconds",
            "Master: age of the oldest entry the slave has not applied yet.",
            &|i| slaves[i].lag_ms as f64 / 1000.0,
        );
    }
    family(
        &mut out,
        "myrelay_config_reloads_total",
        "counter",
        "Config reloads (SIGHUP) since start: applied, or failed because the file did not load.",
    );
    let reloads = node.reloads();
    let _ = writeln!(
        out,
        "myrelay_config_reloads_total{{result=\"applied\"}} {}",
        reloads.applied
    );
    let _ = writeln!(
        out,
        "myrelay_config_reloads_total{{result=\"failed\"}} {}",
        reloads.failed
    );
    let (bytes_in, bytes_out) = m.bytes();
    family(
        &mut out,
        "myrelay_client_bytes_received_total",
        "counter",
        "Bytes received from clients (wire bytes, TLS included).",
    );
    let _ = writeln!(out, "myrelay_client_bytes_received_total {bytes_in}");
    family(
        &mut out,
        "myrelay_client_bytes_sent_total",
        "counter",
        "Bytes sent to clients (wire bytes, TLS included).",
    );
    let _ = writeln!(out, "myrelay_client_bytes_sent_total {bytes_out}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
