//! Connections to the node's own MySQL/MariaDB server (mysql_async pools).
//!
//! Each client session owns one backend connection while it is connected, so its current
//! database, variables, transaction, temporary tables and locks live there and nowhere else. The
//! pool resets a connection (COM_RESET_CONNECTION) before handing it to another client, and a
//! connection that failed or was abandoned mid-query is killed and never reused.

use std::net::SocketAddr;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::config::NodeConfig;
use crate::frontend::reply::ErrorReply;

/// How long a statement waits for a free backend connection before it gets an error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The backend of one node: two pools, because `CLIENT_FOUND_ROWS` is fixed per connection and
/// changes what "affected rows" means for the client that asked for it.
pub struct Backend {
    addr: SocketAddr,
    plain: Pool,
    found_rows: Pool,
    size: usize,
}

/// How many backend connections a node has.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PoolUsage {
    /// Owned by client sessions (or the node's own work) right now.
    pub in_use: usize,
    /// Open and idle in the pools.
    pub idle: usize,
    /// `limits.backend_pool_size`.
    pub size: usize,
}

/// A backend failure, translated for the client.
#[derive(Debug)]
pub struct BackendFailure {
    /// The error packet to send.
    pub reply: ErrorReply,
    /// True when the connection itself is lost or unusable and must be dropped (not the
    /// statement's fault, e.g. the backend went away).
    pub broken: bool,
}

impl Backend {
    /// Builds the pools; connects lazily, so a node starts even while its backend is down.
    pub fn new(config: &NodeConfig) -> Self {
        let size = config.limits.backend_pool_size;
        let opts = |found_rows: bool| -> Opts {
            let constraints = PoolConstraints::new(0, size).unwrap_or_default();
            OptsBuilder::default()
                .ip_or_hostname(config.backend.ip().to_string())
                .tcp_port(config.backend.port())
                .user(Some(config.backend_user.clone()))
                .pass(Some(config.backend_password.clone()))
                .prefer_socket(true)
                // Each client's prepared statements are its own: no driver-side sharing.
                .stmt_cache_size(0)
                .client_found_rows(found_rows)
                .pool_opts(
                    PoolOpts::default()
                        .with_constraints(constraints)
                        .with_reset_connection(true),
                )
                .into()
        };
        Backend {
            addr: config.backend,
            plain: Pool::new(opts(false)),
            found_rows: Pool::new(opts(true)),
            size,
        }
    }

    /// The pool without `CLIENT_FOUND_ROWS`, for the node's own work (replication applier).
    pub fn pool(&self) -> Pool {
        self.plain.clone()
    }

    /// The backend's address, named in errors.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes a connection for a client session; error 2003 if the backend cannot be reached.
    pub async fn acquire(&self, found_rows: bool) -> Result<Conn, ErrorReply> {
        let pool = if found_rows {
            &self.found_rows
        } else {
            &self.plain
        };
        match tokio::time::timeout(ACQUIRE_TIMEOUT, pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(mysql_async::Error::Server(e))) => Err(ErrorReply::new(
                2003,
                "HY000",
                format!(
                    "Can't connect to backend MySQL server at {}: {} ({})",
                    self.addr, e.message, e.code
                ),
            )),
            Ok(Err(e)) => Err(ErrorReply::new(
                2003,
                "HY000",
                format!(
                    "Can't connect to backend MySQL server at {}: {e}",
                    self.addr
                ),
            )),
            Err(_) => Err(ErrorReply::new(
                1040,
                "08004",
                format!(
                    "Too many connections: all {} connections to backend {} are in use",
                    self.size, self.addr
                ),
            )),
        }
    }

    /// Translates a mysql_async error: server errors pass through unchanged; anything else means
    /// the connection is lost (2013) and must not be reused.
    pub fn failure(&self, err: mysql_async::Error) -> BackendFailure {
        failure(self.addr, err)
    }

    /// Kills a backend connection (and so its running query) from another connection. Used when a
    /// client vanished mid-statement, so the statement does not run on unattended.
    pub async fn kill(&self, connection_id: u32) {
        let result = async {
            let mut conn = self.plain.get_conn().await?;
            conn.query_drop(format!("KILL {connection_id}")).await
        }
        .await;
        match result {
            Ok(()) => tracing::debug!(connection_id, "killed abandoned backend connection"),
            // 1094: unknown thread id, i.e. it already ended.
            Err(mysql_async::Error::Server(e)) if e.code == 1094 => {}
            Err(e) => {
                tracing::warn!(connection_id, error = %e, "could not kill backend connection")
            }
        }
    }

    /// The backend's `VERSION()`, if it answers.
    pub async fn version(&self) -> Option<String> {
        let mut conn = self.plain.get_conn().await.ok()?;
        conn.query_first::<String, _>("SELECT VERSION()")
            .await
            .ok()
            .flatten()
    }

    /// Backend connections now: in use by sessions, idle in the pools, and the configured size.
    pub fn usage(&self) -> PoolUsage {
        use std::sync::atomic::Ordering::Relaxed;
        let (plain, found_rows) = (self.plain.metrics(), self.found_rows.metrics());
        PoolUsage {
            in_use: plain.connections_in_use.load(Relaxed)
                + found_rows.connections_in_use.load(Relaxed),
            idle: plain.connections_in_pool.load(Relaxed)
                + found_rows.connections_in_pool.load(Relaxed),
            size: self.size,
        }
    }

    /// Asks the backend for a connection and a ping within `timeout` (for `/health`).
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let check = async {
            let mut conn = self.plain.get_conn().await.map_err(|e| e.to_string())?;
            conn.ping().await.map_err(|e| e.to_string())
        };
        tokio::time::timeout(timeout, check)
            .await
            .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
    }

    /// Closes idle connections (pools close the rest as sessions end).
    pub async fn shutdown(&self) {
        let _ = self.plain.clone().disconnect().await;
        let _ = self.found_rows.clone().disconnect().await;
    }
}

/// Translates a mysql_async error from the server at `addr`: server errors pass through
/// unchanged; anything else means the connection is lost (2013) and must not be reused.
pub fn failure(addr: SocketAddr, err: mysql_async::Error) -> BackendFailure {
    match err {
        mysql_async::Error::Server(e) => BackendFailure {
            reply: ErrorReply::new(e.code, &e.state, e.message),
            broken: false,
        },
        other => BackendFailure {
            reply: ErrorReply::new(
                2013,
                "HY000",
                format!(
                    "Lost connection to backend MySQL server at {} during query: {other}",
                    addr
                ),
            ),
            broken: true,
        },
    }
}
