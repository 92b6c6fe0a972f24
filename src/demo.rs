//! `myrelay demo`: a local replicating cluster (one master, N slaves), each node with its own
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

use crate::backend::launcher::{BackendSpec, LaunchError, ThrowawayServer};
use crate::config::{Ack, Admin, Limits, NodeConfig, NodeRole, Replication, User, UserRole};
use crate::node::{self, NodeHandle};

/// The demo schema, sent through the master node so that slaves receive it like any change.
pub const SCHOOL_SQL: &str = include_str!("demo/school.sql");

/// Options of `myrelay demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Number of slaves.
    pub slaves: usize,
    /// Client port of the master; slaves take the following ports.
    pub port: u16,
    /// Keep backend data here instead of a temporary directory.
    pub data_dir: Option<PathBuf>,
    /// Clients each node serves at once (`limits.max_connections`).
    pub max_connections: usize,
    /// Console port of the master; slaves take the following ports; 0 lets the system pick.
    pub console_port: u16,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A required environment variable is missing.
    #[error("{0} is not set: copy .env.example to .env (or export it)")]
    MissingEnv(&'static str),
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

fn env(key: &'static str) -> Result<String, DemoError> {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(DemoError::MissingEnv(key))
}

/// The proxy users of every demo node: `DB_USER` as admin, plus `app` and `reader` when
/// `APP_PASS` / `READER_PASS` are set.
fn demo_users(db_user: &str, db_pass: &str) -> BTreeMap<String, User> {
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
            },
        );
    };
    if let Ok(p) = env("APP_PASS") {
        add("app", UserRole::App, p);
    }
    if let Ok(p) = env("READER_PASS") {
        add("reader", UserRole::Readonly, p);
    }
    add(db_user, UserRole::Admin, db_pass.to_string());
    users
}

impl Demo {
    /// Starts backends and nodes and loads the schema; `.env` must already be loaded.
    pub async fn start(opts: &DemoOptions) -> Result<Demo, DemoError> {
        let db_user = env("DB_USER")?;
        let db_pass = env("DB_PASS")?;
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
        let master_addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
        let users = demo_users(&db_user, &db_pass);
        // The demo is local: without CLUSTER_SECRET it makes one up for this run.
        let secret = env("CLUSTER_SECRET").unwrap_or_else(|_| {
            let bytes: [u8; 16] = rand::random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
        let mut replication_addr = None;
        let mut nodes = Vec::new();
        for (i, (name, server)) in names.iter().zip(&servers).enumerate() {
            let listen = SocketAddr::from(([127, 0, 0, 1], opts.port.saturating_add(i as u16)));
            let console = match opts.console_port {
                0 => 0,
                port => port.saturating_add(i as u16),
            };
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
                master: (i > 0).then(|| master_addr.to_string()),
                cluster_secret: std::env::var("CLUSTER_SECRET").ok(),
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
                }),
                tls: None,
                admin: Some(Admin {
                    listen: SocketAddr::from(([127, 0, 0, 1], console)),
                }),
            };
            let handle = node::start(config)
                .await
                .map_err(|source| DemoError::Node {
                    node: name.clone(),
                    addr: listen,
                    source,
                })?;
            if i == 0 {
                replication_addr = handle.replication_addr;
            }
            nodes.push(handle);
        }
        let demo = Demo { nodes, servers };
        demo.load_schema(&db_user, &db_pass).await?;
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
pub async fn wait_for_signal() {
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
