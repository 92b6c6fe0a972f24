//! A local replicating cluster (one master, N slaves), each node with its own
//! throwaway MariaDB, and the `school` schema loaded through the master node, from where
//! replication carries it to the slaves.
//!
//! The lines it prints are a contract other tools read:
//! `node <name> role=<master|slave> listen=127.0.0.1:<port> backend=127.0.0.1:<port>
//! console=http://127.0.0.1:<port>`, then `ready`. Fields are only ever added at the end.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use mysql_async::prelude::Queryable;

use std::time::Duration;

use crate::launcher::{BackendSpec, LaunchError, ThrowawayServer};
use myrelay::config::{Ack, Admin, Limits, NodeConfig, NodeRole, Replication, User, UserRole};
use myrelay::node::{self, NodeHandle};

/// The demo schema, sent through the master node so that slaves receive it like any change.
pub const SCHOOL_SQL: &str = include_str!("../school.sql");

/// Options of `myrelay-demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Number of slaves.
    pub slaves: usize,
    /// Client port of the master; slaves take the following ports; 0 lets the system pick.
    pub port: u16,
    /// Keep backend data here instead of a temporary directory.
    pub data_dir: Option<PathBuf>,
    /// Clients each node serves at once (`limits.max_connections`).
    pub max_connections: usize,
    /// Console port of the master; slaves take the following ports; 0 lets the system pick.
    pub console_port: u16,
    /// The backends' account (`DB_USER`, `DB_PASS`), also the nodes' admin user.
    pub db_user: String,
    /// Its password.
    pub db_pass: String,
    /// Password of the proxy user `app`, when there is one (`APP_PASS`).
    pub app_pass: Option<String>,
    /// Password of the read-only proxy user `reader`, when there is one (`READER_PASS`).
    pub reader_pass: Option<String>,
    /// The nodes' shared secret (`CLUSTER_SECRET`); one is made up for the run when `None`.
    pub cluster_secret: Option<String>,
    /// Sample each node's history for its console's plots (off only to measure the cost).
    pub history: bool,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A backend could not be started.
    #[error("starting backend for {node}: {source}")]
    Backend {
        /// The node whose backend failed.
        node: String,
        /// Why.
        source: LaunchError,
    },
    /// A node could not listen.
    #[error("starting node {node} on {addr}: {source}")]
    Node {
        /// The node.
        node: String,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Loading the schema through the master failed.
    #[error("loading the school schema through the master: {0}")]
    Schema(#[from] mysql_async::Error),
}

/// A running demo cluster.
pub struct Demo {
    /// The nodes, master first.
    pub nodes: Vec<NodeHandle>,
    servers: Vec<ThrowawayServer>,
}

/// The proxy users of every demo node: the backends' account as admin, plus `app` and `reader`
/// when they have passwords.
fn demo_users(opts: &DemoOptions) -> BTreeMap<String, User> {
    let mut users = BTreeMap::new();
    let mut add = |name: &str, role: UserRole, password: String| {
        users.insert(
            name.to_string(),
            User {
                name: name.to_string(),
                role,
                password,
                admin_from: Vec::new(),
                require_tls: false,
                databases: None,
            },
        );
    };
    if let Some(p) = &opts.app_pass {
        add("app", UserRole::App, p.clone());
    }
    if let Some(p) = &opts.reader_pass {
        add("reader", UserRole::Readonly, p.clone());
    }
    add(&opts.db_user, UserRole::Admin, opts.db_pass.clone());
    users
}

/// Node `i`'s port from the master's: the following ones, or the system's pick for 0.
fn nth_port(first: u16, i: usize) -> u16 {
    match first {
        0 => 0,
        port => port.saturating_add(i as u16),
    }
}

impl Demo {
    /// Starts backends and nodes and loads the schema.
    pub async fn start(opts: &DemoOptions) -> Result<Demo, DemoError> {
        let (db_user, db_pass) = (&opts.db_user, &opts.db_pass);
        let names: Vec<String> = std::iter::once("master".to_string())
            .chain((1..=opts.slaves).map(|i| format!("slave{i}")))
            .collect();
        let starts = names.iter().zip(1u32..).map(|(name, server_id)| {
            let spec = BackendSpec {
                user: db_user.clone(),
                password: db_pass.clone(),
                data_dir: opts.data_dir.as_ref().map(|d| d.join(name)),
                port: 0,
                server_id,
                plugin_dir: None,
            };
            async move {
                ThrowawayServer::start(spec)
                    .await
                    .map_err(|source| DemoError::Backend {
                        node: name.clone(),
                        source,
                    })
            }
        });
        let servers = futures_util::future::try_join_all(starts).await?;
        let users = demo_users(opts);
        // The demo is local: without CLUSTER_SECRET it makes one up for this run.
        let secret = opts.cluster_secret.clone().unwrap_or_else(|| {
            let bytes: [u8; 16] = rand::random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
        // Slaves reach the master where it listens (its port may have been picked by the system).
        let mut master_addr = None;
        let mut replication_addr = None;
        let mut nodes = Vec::new();
        for (i, (name, server)) in names.iter().zip(&servers).enumerate() {
            let listen = SocketAddr::from(([127, 0, 0, 1], nth_port(opts.port, i)));
            let console = nth_port(opts.console_port, i);
            let config = NodeConfig {
                name: name.clone(),
                role: if i == 0 {
                    NodeRole::Master
                } else {
                    NodeRole::Slave
                },
                listen,
                backend: server.addr(),
                backend_user: db_user.clone(),
                backend_password: db_pass.clone(),
                master: master_addr.map(|a: SocketAddr| a.to_string()),
                cluster_secret: opts.cluster_secret.clone(),
                users: users.clone(),
                limits: Limits {
                    max_connections: opts.max_connections,
                    ..Limits::default()
                },
                replication: Some(Replication {
                    listen: (i == 0).then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                    master: replication_addr,
                    secret: secret.clone(),
                    tls: None,
                    ack: Ack::None,
                    ack_timeout: Duration::from_secs(1),
                    feed_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                    feed_host: "127.0.0.1".into(),
                    apply_lock_wait: myrelay::config::DEFAULT_APPLY_LOCK_WAIT,
                }),
                tls: None,
                admin: Some(Admin {
                    listen: SocketAddr::from(([127, 0, 0, 1], console)),
                    history: opts.history,
                }),
                // The demo's backends load no UDFs of their own.
                safe_udfs: Vec::new(),
            };
            let handle = node::start(config)
                .await
                .map_err(|source| DemoError::Node {
                    node: name.clone(),
                    addr: listen,
                    source,
                })?;
            if i == 0 {
                master_addr = Some(handle.addr);
                replication_addr = handle.replication_addr;
            }
            nodes.push(handle);
        }
        let demo = Demo { nodes, servers };
        demo.load_schema(db_user, db_pass).await?;
        Ok(demo)
    }

    async fn load_schema(&self, user: &str, pass: &str) -> Result<(), DemoError> {
        let Some(master) = self.nodes.first() else {
            return Ok(());
        };
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(master.addr.ip().to_string())
            .tcp_port(master.addr.port())
            .user(Some(user))
            .pass(Some(pass))
            .prefer_socket(false);
        let mut conn = mysql_async::Conn::new(opts).await?;
        for statement in SCHOOL_SQL
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            conn.query_drop(statement).await?;
        }
        conn.disconnect().await?;
        Ok(())
    }

    /// The contract lines: one per node, then `ready`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (node, server) in self.nodes.iter().zip(&self.servers) {
            let config = &node.shared.config;
            out.push_str(&format!(
                "node {} role={} listen={} backend={}",
                config.name,
                config.role.as_str(),
                node.addr,
                server.addr()
            ));
            if let Some(console) = node.admin_addr {
                out.push_str(&format!(" console=http://{console}"));
            }
            out.push('\n');
        }
        out.push_str("ready\n");
        out
    }

    /// Stops node `i` (its clients and its master see it go: the master records the slave
    /// dropping), waits for `down`, and starts it again on the same client and console
    /// addresses, with the same backend.
    pub async fn restart_node(
        &mut self,
        i: usize,
        down: impl std::future::Future<Output = ()>,
    ) -> Result<(), DemoError> {
        let node = self.nodes.remove(i);
        let mut config = node.shared.config.clone();
        config.listen = node.addr;
        if let (Some(admin), Some(addr)) = (config.admin.as_mut(), node.admin_addr) {
            admin.listen = addr;
        }
        node.stop().await;
        down.await;
        let handle = node::start(config.clone())
            .await
            .map_err(|source| DemoError::Node {
                node: config.name.clone(),
                addr: config.listen,
                source,
            })?;
        self.nodes.insert(i, handle);
        Ok(())
    }

    /// Stops nodes, then backends; temporary data goes with them.
    pub async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
        for mut server in self.servers {
            server.stop().await;
        }
    }
}

/// Runs the demo until SIGINT or SIGTERM.
pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    let demo = Demo::start(&opts).await?;
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(demo.describe().as_bytes());
    let _ = stdout.flush();
    wait_for_signal().await;
    tracing::info!("stopping demo cluster");
    demo.stop().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
