//! What a node knows about itself and its cluster, for `/health`, `/api/status` and the console.
//!
//! It reads the same sources as `SHOW MYRELAY STATUS`: the master's view of its slaves (from
//! their replication streams) and a slave's view of its link to the master.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::backend::pool::PoolUsage;
use crate::metrics::{Outcome, Refusal};
use crate::node::{NodeShared, ReloadCounts};
use crate::replication::master::Sibling;

/// How long `/health` waits for the backend to answer a ping.
const BACKEND_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// A slave as its master sees it (on a slave: as the master last told).
#[derive(Debug, Clone, Serialize)]
pub struct SlaveView {
    /// Its name, addresses, link and position.
    #[serde(flatten)]
    pub slave: Sibling,
    /// Logged entries it has not applied.
    pub lag_entries: u64,
}

/// `slaves` with their lag in entries behind `lsn` (the master's position).
fn views(slaves: Vec<Sibling>, lsn: u64) -> Vec<SlaveView> {
    slaves
        .into_iter()
        .map(|slave| SlaveView {
            lag_entries: lsn.saturating_sub(slave.applied_lsn),
            slave,
        })
        .collect()
}

/// A slave's link to its master.
#[derive(Debug, Clone, Serialize)]
pub struct MasterLink {
    /// The master's node name, as it last told ("master" before it told).
    pub name: String,
    /// The master's client address (`node.master`).
    pub address: Option<String>,
    /// Where the master's console listens, as it last told.
    pub console: Option<String>,
    /// Linked right now.
    pub connected: bool,
    /// Last LSN the master reported.
    pub master_lsn: u64,
    /// Why the applier stopped, if it did.
    pub stopped: Option<String>,
}

/// The node itself.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// `master` or `slave`.
    pub role: &'static str,
    /// Client address.
    pub listen: String,
    /// Where its console listens.
    pub console: Option<String>,
    /// One word or phrase: serving, following, connecting, applier stopped: …, standalone,
    /// draining.
    pub state: String,
    /// Master: the binlog position read, as a number. Slave: the position applied. Standalone: 0.
    pub lsn: u64,
    /// Seconds since the node started.
    pub uptime_secs: u64,
    /// Clients logged in now.
    pub clients: usize,
    /// Config reloads (SIGHUP) applied and failed since start.
    pub reloads: ReloadCounts,
    /// A slave's link to its master.
    pub master_link: Option<MasterLink>,
    /// A master's slaves, by name; a slave's siblings, as the master last told.
    pub slaves: Vec<SlaveView>,
    /// A slave: when the master last told it of its siblings (ms since the Unix epoch), so that
    /// a view kept while the master is unreachable says how old it is.
    pub siblings_as_of_unix_ms: Option<u64>,
}

impl NodeStatus {
    /// Reads the node's state now (nothing here waits on the network).
    pub fn read(node: &NodeShared) -> NodeStatus {
        let config = &node.config;
        let mut status = NodeStatus {
            name: config.name.clone(),
            role: config.role.as_str(),
            listen: node.addr.to_string(),
            console: node.console.map(|a| a.to_string()),
            state: "standalone".into(),
            lsn: 0,
            uptime_secs: node.uptime().as_secs(),
            clients: node.clients(),
            reloads: node.reloads(),
            master_link: None,
            slaves: Vec::new(),
            siblings_as_of_unix_ms: None,
        };
        if let Some(master) = &node.master {
            let lsn = master.lsn();
            status.lsn = lsn;
            status.state = "serving".into();
            status.slaves = views(master.siblings(), lsn);
        } else if let Some(replica) = &node.replica {
            let s = replica.status();
            status.lsn = s.applied.lsn();
            status.state = s.state();
            let told = replica.cluster();
            let (mut master_name, mut master_console) = ("master".to_string(), None);
            if let Some((view, at)) = told {
                status.siblings_as_of_unix_ms = Some(at);
                master_name = view.master;
                master_console = view.master_console;
                // This slave among them: its lag as the master measures it.
                status.slaves = views(view.slaves, s.master.lsn());
            }
            status.master_link = Some(MasterLink {
                name: master_name,
                address: config.master.clone(),
                console: master_console,
                connected: s.connected,
                master_lsn: s.master.lsn(),
                stopped: s.stopped,
            });
        }
        if node.is_draining() {
            status.state = "draining".into();
        }
        status
    }

    /// The cluster as this node sees it, one row per node: a master lists itself and its slaves,
    /// a slave its master, itself and its siblings.
    pub fn topology(&self) -> Vec<TopologyRow> {
        let me = TopologyRow {
            name: self.name.clone(),
            role: self.role,
            address: Some(self.listen.clone()),
            console: self.console.clone(),
            state: self.state.clone(),
            lsn: Some(self.lsn),
            lag_entries: None,
            lag_ms: self
                .slaves
                .iter()
                .find(|s| s.slave.name == self.name)
                .map(|s| s.slave.lag_ms),
            this_node: true,
        };
        let mut rows = Vec::new();
        if let Some(link) = &self.master_link {
            rows.push(TopologyRow {
                name: link.name.clone(),
                role: "master",
                address: link.address.clone(),
                console: link.console.clone(),
                state: if link.connected {
                    "linked"
                } else {
                    "unreachable"
                }
                .into(),
                lsn: Some(link.master_lsn),
                lag_entries: None,
                lag_ms: None,
                this_node: false,
            });
            rows.push(TopologyRow {
                lag_entries: Some(link.master_lsn.saturating_sub(self.lsn)),
                ..me
            });
        } else {
            rows.push(me);
        }
        // A master's slaves, or a slave's siblings as the master last told.
        for view in self.slaves.iter().filter(|v| v.slave.name != self.name) {
            let s = &view.slave;
            rows.push(TopologyRow {
                name: s.name.clone(),
                role: "slave",
                address: s.address.clone(),
                console: s.console.clone(),
                state: if s.connected {
                    "streaming"
                } else {
                    "disconnected"
                }
                .into(),
                lsn: Some(s.applied_lsn),
                lag_entries: Some(view.lag_entries),
                lag_ms: Some(s.lag_ms),
                this_node: false,
            });
        }
        rows
    }
}

/// One node in the console's topology table.
#[derive(Debug, Clone, Serialize)]
pub struct TopologyRow {
    /// Node name.
    pub name: String,
    /// `master` or `slave`.
    pub role: &'static str,
    /// Where its clients connect, where known.
    pub address: Option<String>,
    /// Where its console listens, where known.
    pub console: Option<String>,
    /// Link or serving state.
    pub state: String,
    /// Master: last LSN logged; slave: last LSN applied.
    pub lsn: Option<u64>,
    /// Entries behind the master (slaves only).
    pub lag_entries: Option<u64>,
    /// Milliseconds behind the master, as the master measures it (slaves only).
    pub lag_ms: Option<u64>,
    /// The node answering.
    pub this_node: bool,
}

/// Whether the node can serve.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// True when it can.
    pub ok: bool,
    /// The node's role.
    pub role: &'static str,
    /// Why not, when it cannot.
    pub reason: Option<String>,
}

/// Checks the node: draining, backend reachable, and on a slave the link to the master.
pub async fn health(node: &NodeShared) -> Health {
    let role = node.config.role.as_str();
    let reason = if node.is_draining() {
        Some("the node is shutting down".to_string())
    } else if let Err(why) = node.backend.ping(BACKEND_PING_TIMEOUT).await {
        Some(format!(
            "backend {} unreachable: {why}",
            node.backend.addr()
        ))
    } else if let Some(replica) = &node.replica {
        let s = replica.status();
        match s.stopped {
            Some(why) => Some(format!("replication applier stopped: {why}")),
            None if !s.connected => Some(format!(
                "not linked to the master{}",
                node.config
                    .master
                    .as_deref()
                    .map(|m| format!(" at {m}"))
                    .unwrap_or_default()
            )),
            None => None,
        }
    } else {
        None
    };
    Health {
        ok: reason.is_none(),
        role,
        reason,
    }
}

/// The node's counters, as `/api/status` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Counters {
    /// Clients logged in now.
    pub client_connections: usize,
    /// Clients that logged in since the node started.
    pub connections_total: u64,
    /// Statements by class, then outcome (executed, forwarded, refused).
    pub statements: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    /// Backend connections.
    pub backend: PoolUsage,
}

/// Everything `/api/status` answers.
#[derive(Debug, Clone, Serialize)]
pub struct ApiStatus {
    /// The node.
    pub node: NodeStatus,
    /// The cluster as this node sees it.
    pub topology: Vec<TopologyRow>,
    /// Counters.
    pub counters: Counters,
    /// The last refused statements, newest first.
    pub refusals: Vec<Refusal>,
}

impl ApiStatus {
    /// Reads it all now.
    pub fn read(node: &NodeShared) -> ApiStatus {
        let status = NodeStatus::read(node);
        let m = &node.metrics;
        let statements = m
            .statement_counts()
            .into_iter()
            .map(|(class, counts)| {
                let by_outcome = Outcome::ALL
                    .iter()
                    .zip(counts)
                    .map(|(o, n)| (o.as_str(), n))
                    .collect();
                (class, by_outcome)
            })
            .collect();
        let (bytes_in, bytes_out) = m.bytes();
        ApiStatus {
            topology: status.topology(),
            counters: Counters {
                client_connections: node.clients(),
                connections_total: m.connections_total(),
                statements,
                bytes_in,
                bytes_out,
                backend: node.backend.usage(),
            },
            refusals: m.refusals(),
            node: status,
        }
    }
}
