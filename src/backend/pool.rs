//! The node's own MySQL/MariaDB server: a mysql_async pool for the node's own work (looking up
//! stored routines, killing a query, health checks), and the slots that bound how many client
//! sessions hold a backend connection of their own (`wire.rs`) at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::wire::{Greeting, Wire, WireError};

use crate::config::NodeConfig;
use crate::error::{CR_CONN_HOST_ERROR, ER_CON_COUNT_ERROR, ER_NO_SUCH_THREAD, ErrorReply};

/// How long a client waits for a free backend connection before it gets an error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The backend of one node.
pub struct Backend {
    addr: SocketAddr,
    /// The backend's Unix socket, when it is on this machine (asked once).
    socket: tokio::sync::OnceCell<Option<std::path::PathBuf>>,
    pool: Pool,
    sessions: Arc<Semaphore>,
    size: usize,
}

/// How many backend connections a node has.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PoolUsage {
    /// Owned by client sessions right now.
    pub in_use: usize,
    /// Open and idle in the node's own pool.
    pub idle: usize,
    /// `limits.backend_pool_size`.
    pub size: usize,
}

impl Backend {
    /// Builds the pool; connects lazily, so a node starts even while its backend is down.
    pub fn new(config: &NodeConfig) -> Self {
        let size = config.limits.backend_pool_size;
        // As many as sessions may have: each may wait on one (a lookup, an acknowledgement).
        let constraints = PoolConstraints::new(0, size).unwrap_or_default();
        let opts: Opts = OptsBuilder::default()
            .ip_or_hostname(config.backend.ip().to_string())
            .tcp_port(config.backend.port())
            .user(Some(config.backend_user.clone()))
            .pass(Some(config.backend_password.clone()))
            .prefer_socket(true)
            .stmt_cache_size(0)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(true),
            )
            .into();
        Backend {
            addr: config.backend,
            socket: tokio::sync::OnceCell::new(),
            pool: Pool::new(opts),
            sessions: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// The pool of the node's own connections (replication applier, lookups).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// The backend's address, named in errors.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A slot for one client session's backend connection, held while the session lives;
    /// error 1040 once all `limits.backend_pool_size` are taken for 10 s.
    pub async fn session_slot(&self) -> Result<OwnedSemaphorePermit, ErrorReply> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.sessions.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ErrorReply::new(
                ER_CON_COUNT_ERROR,
                format!(
                    "Too many connections: all {} connections to backend {} are in use",
                    self.size, self.addr
                ),
            )),
        }
    }

    /// Opens a session's backend connection and reads its greeting: through the backend's Unix
    /// socket when it listens on one on this machine (as a client library prefers it, and far
    /// cheaper than loopback TCP per statement), else over TCP.
    pub async fn open_session(&self) -> Result<(Wire, Greeting), WireError> {
        let socket = self
            .socket
            .get_or_init(|| async {
                if !self.addr.ip().is_loopback() {
                    return None;
                }
                let mut conn = self.pool.get_conn().await.ok()?;
                let path: String = conn.query_first("SELECT @@socket").await.ok()??;
                let path = std::path::PathBuf::from(path);
                path.exists().then_some(path)
            })
            .await;
        if let Some(path) = socket
            && let Ok(opened) = Wire::open_unix(self.addr, path).await
        {
            return Ok(opened);
        }
        Wire::open(self.addr).await
    }

    /// Takes a connection of the node's own; error 2003 if the backend cannot be reached.
    pub async fn acquire(&self) -> Result<Conn, ErrorReply> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.cant_connect(e)),
            Err(_) => Err(self.cant_connect("timed out")),
        }
    }

    /// Error 2003 naming this backend and why it could not be reached.
    pub fn cant_connect(&self, why: impl std::fmt::Display) -> ErrorReply {
        ErrorReply::new(
            CR_CONN_HOST_ERROR,
            format!(
                "Can't connect to backend MySQL server at {}: {why}",
                self.addr
            ),
        )
    }

    /// Kills a backend connection (and so its running query) from another connection. Used when a
    /// client vanished mid-statement, so the statement does not run on unattended.
    pub async fn kill(&self, connection_id: u32) {
        let result = async {
            let mut conn = self.pool.get_conn().await?;
            conn.query_drop(format!("KILL {connection_id}")).await
        }
        .await;
        match result {
            Ok(()) => tracing::debug!(connection_id, "killed abandoned backend connection"),
            // The connection already ended.
            Err(mysql_async::Error::Server(e)) if e.code == ER_NO_SUCH_THREAD.code() => {}
            Err(e) => {
                tracing::warn!(connection_id, error = %e, "could not kill backend connection")
            }
        }
    }

    /// Backend connections now: held by sessions, idle in the node's own pool, and the
    /// configured number of session connections.
    pub fn usage(&self) -> PoolUsage {
        use std::sync::atomic::Ordering::Relaxed;
        PoolUsage {
            in_use: self.size - self.sessions.available_permits(),
            idle: self.pool.metrics().connections_in_pool.load(Relaxed),
            size: self.size,
        }
    }

    /// Asks the backend for a connection and a ping within `timeout` (for `/health`).
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let check = async {
            let mut conn = self.pool.get_conn().await.map_err(|e| e.to_string())?;
            conn.ping().await.map_err(|e| e.to_string())
        };
        tokio::time::timeout(timeout, check)
            .await
            .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
    }

    /// Closes the node's own idle connections.
    pub async fn shutdown(&self) {
        let _ = self.pool.clone().disconnect().await;
    }
}
