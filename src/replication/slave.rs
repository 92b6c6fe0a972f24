//! The slave's side: its backend replicates the master's binlog through the node's feed, and the
//! node watches what it applied.
//!
//! At start the node points its backend's replica threads at its feed (CHANGE MASTER …
//! MASTER_USE_GTID=slave_pos) and keeps them so: after a backend restart it starts them again,
//! and when the SQL thread stops on an error it shows the error in status (skipping a
//! transaction would let the slave diverge; an operator decides). It learns what the backend
//! applied with `MASTER_GTID_WAIT` on the transactions the feed relayed, for acknowledgements,
//! lag and read-your-writes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use super::channel::{self, Message};
use super::feed::{self, FEED_USER, Link};
use super::gtid::{Gtid, Position};
use super::master::{ClusterView, DEAD_AFTER, Source, told_addr};
use crate::events::Events;

/// What a slave shows in status.
#[derive(Debug, Clone, Default)]
pub struct SlaveStatus {
    /// The backend is streaming from the master right now.
    pub connected: bool,
    /// The position the backend has applied.
    pub applied: Position,
    /// The furthest position of the master the node has heard of.
    pub master: Position,
    /// Why the backend's applier stopped, if it did.
    pub stopped: Option<String>,
    /// Why the last attempt to reach the master failed, while not connected.
    pub link_error: Option<String>,
}

impl SlaveStatus {
    /// The state shown in status: following, connecting (and why not yet), or the applier's
    /// error.
    pub fn state(&self) -> String {
        match (&self.stopped, &self.link_error) {
            (Some(why), _) => format!("applier stopped: {why}"),
            (None, _) if self.connected => "following".into(),
            (None, Some(why)) => format!("connecting ({why})"),
            (None, None) => "connecting".into(),
        }
    }
}

/// Keeps a slave's backend replicating from the master through the node.
pub struct Replica {
    name: String,
    /// Where this node's clients connect, told to the master.
    client: SocketAddr,
    master: SocketAddr,
    secret: Vec<u8>,
    pool: Pool,
    tls: Option<tokio_rustls::TlsConnector>,
    /// Where the feed listens, and the host the backend reaches it by.
    feed_listen: SocketAddr,
    feed_host: String,
    /// The feed account's password, new at every start.
    feed_password: String,
    status: Mutex<SlaveStatus>,
    /// Bumped at every change of `status`, for whoever waits on one.
    generation: watch::Sender<u64>,
    applied: watch::Sender<Position>,
    /// The transactions the feed has written to the backend.
    relayed: watch::Sender<Position>,
    /// Where the last DDL relayed ends, until the backend has applied it.
    ddl_relayed: Mutex<Option<Position>>,
    /// DDL the backend applied: what the node read of its schema may be stale.
    schema_changes: AtomicU64,
    /// Client connections killed because the applier waited on their locks.
    lock_kills: AtomicU64,
    /// Where the link's and the applier's changes are recorded.
    events: Arc<Events>,
    /// Where this node's console listens, told to the master.
    console: Option<SocketAddr>,
    /// The cluster as the master last told, and when (ms since the Unix epoch).
    cluster: Mutex<Option<(ClusterView, u64)>>,
}

impl Replica {
    /// A replica of node `name` (whose clients connect at `client`, and whose console is at
    /// `console`) whose backend is `pool`'s,
    /// following the master at `master` (its replication address); `tls` opens TLS to it before
    /// the channel's authentication.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        client: SocketAddr,
        console: Option<SocketAddr>,
        master: SocketAddr,
        secret: &str,
        pool: Pool,
        tls: Option<tokio_rustls::TlsConnector>,
        feed_listen: SocketAddr,
        feed_host: &str,
        events: Arc<Events>,
    ) -> Arc<Replica> {
        let bytes: [u8; 24] = rand::random();
        let feed_password: String = bytes.iter().map(|b| char::from(b'a' + b % 26)).collect();
        Arc::new(Replica {
            name: name.to_string(),
            client,
            master,
            secret: secret.as_bytes().to_vec(),
            pool,
            tls,
            feed_listen,
            feed_host: feed_host.to_string(),
            feed_password,
            status: Mutex::new(SlaveStatus::default()),
            generation: watch::channel(0).0,
            applied: watch::channel(Position::default()).0,
            relayed: watch::channel(Position::default()).0,
            ddl_relayed: Mutex::new(None),
            schema_changes: AtomicU64::new(0),
            lock_kills: AtomicU64::new(0),
            events,
            console,
            cluster: Mutex::new(None),
        })
    }

    /// Current status.
    pub fn status(&self) -> SlaveStatus {
        let mut s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        s.applied = self.applied.borrow().clone();
        s.master.merge(&s.applied);
        s
    }

    fn set(&self, f: impl FnOnce(&mut SlaveStatus)) {
        let changed = match self.status.lock() {
            Ok(mut s) => {
                let before = (s.connected, s.stopped.clone(), s.link_error.clone());
                f(&mut s);
                before != (s.connected, s.stopped.clone(), s.link_error.clone())
            }
            Err(_) => false,
        };
        if changed {
            self.generation.send_modify(|g| *g = g.wrapping_add(1));
        }
    }

    /// Marks each change of the link or applier state (connected, stopped, link error), so that
    /// a caller waits for what the node reports instead of polling: take it, read
    /// [`Replica::status`], and await `changed()` before reading again.
    pub fn status_changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub(super) fn set_connected(&self, connected: bool) {
        let was = self.status.lock().map(|s| s.connected).unwrap_or(false);
        if was != connected {
            let (kind, detail) = if connected {
                (
                    "master_linked",
                    format!("linked to the master at {}", self.master),
                )
            } else {
                (
                    "master_lost",
                    format!("lost the link to the master at {}", self.master),
                )
            };
            self.events.record(kind, detail);
        }
        self.set(|s| {
            s.connected = connected;
            if connected {
                s.link_error = None;
            }
        });
    }

    pub(super) fn link_failed(&self, why: &str) {
        self.set(|s| s.link_error = Some(why.to_string()));
    }

    pub(super) fn master_at(&self, position: Position) {
        self.set(|s| s.master.merge(&position));
    }

    pub(super) fn feed_password(&self) -> &str {
        &self.feed_password
    }

    pub(super) fn applied_watch(&self) -> watch::Receiver<Position> {
        self.applied.subscribe()
    }

    /// The feed wrote transaction `gtid` to the backend; `ddl` when it is a standalone
    /// statement (MariaDB's flag for DDL).
    pub(super) fn relayed(&self, gtid: Gtid, ddl: bool) {
        self.relayed.send_modify(|p| p.advance(gtid));
        if ddl && let Ok(mut pending) = self.ddl_relayed.lock() {
            *pending = Some(self.relayed.borrow().clone());
        }
        self.set(|s| s.master.advance(gtid));
    }

    /// How many replicated DDL statements the backend has applied (as far as the node has
    /// seen): what the node keeps of the backend's schema is stale when this moves.
    pub fn schema_changes(&self) -> u64 {
        self.schema_changes.load(Ordering::SeqCst)
    }

    /// The backend applied `applied`: records it, and a schema change if it covers the DDL
    /// relayed last.
    fn applied_now(&self, applied: Position) {
        if let Ok(mut pending) = self.ddl_relayed.lock()
            && pending.as_ref().is_some_and(|ddl| applied.covers(ddl))
        {
            *pending = None;
            self.schema_changes.fetch_add(1, Ordering::SeqCst);
        }
        self.applied.send_if_modified(|a| {
            let moved = *a != applied;
            *a = applied;
            moved
        });
    }

    /// True while the backend has transactions the feed relayed but it has not applied.
    pub fn behind(&self) -> bool {
        let relayed = self.relayed.borrow().clone();
        !self.applied.borrow().covers(&relayed)
    }

    /// Client connections killed so far because the applier waited on their locks.
    pub fn lock_kills(&self) -> u64 {
        self.lock_kills.load(Ordering::Relaxed)
    }

    pub(super) fn count_lock_kill(&self, detail: String) {
        self.lock_kills.fetch_add(1, Ordering::Relaxed);
        self.events.record("lock_kill", detail);
    }

    /// The master told the cluster's state (`json`, a [`ClusterView`]).
    pub(super) fn cluster_told(&self, json: &str) {
        match serde_json::from_str::<ClusterView>(json) {
            Ok(mut view) => {
                // A master console on every address is reached where the master is.
                view.master_console = view
                    .master_console
                    .and_then(|c| told_addr(&c, self.master.ip()))
                    .map(|a| a.to_string());
                if let Ok(mut known) = self.cluster.lock() {
                    *known = Some((view, crate::clock::unix_ms()));
                }
            }
            Err(e) => debug!(error = %e, "unreadable topology from the master"),
        }
    }

    /// The cluster (this slave included) as the master last told, and when (ms since the Unix
    /// epoch); `None` before the master told anything.
    pub fn cluster(&self) -> Option<(ClusterView, u64)> {
        self.cluster.lock().ok().and_then(|s| s.clone())
    }

    /// Where this node's console listens.
    pub(super) fn console(&self) -> Option<SocketAddr> {
        self.console
    }

    /// Where this node's clients connect.
    pub(super) fn client(&self) -> SocketAddr {
        self.client
    }

    /// The node's own connections to its backend.
    pub(super) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Waits until the backend has applied `target` (read-your-writes), up to `timeout`.
    pub async fn wait_applied(&self, target: &Position, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| applied.covers(target)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Opens the replication channel to the master: TCP, TLS when configured, authentication;
    /// returns it with the master backend's description.
    pub(super) async fn open_link(&self) -> Result<(Box<dyn Link>, Source), String> {
        let connect = async {
            let socket = TcpStream::connect(self.master)
                .await
                .map_err(|e| e.to_string())?;
            let _ = socket.set_nodelay(true);
            let mut link: Box<dyn Link> = match &self.tls {
                None => Box::new(socket),
                Some(connector) => Box::new(
                    super::tls::connect(connector, self.master, socket)
                        .await
                        .map_err(|e| format!("TLS: {e}"))?,
                ),
            };
            channel::connect_to_master(&mut link, &self.secret, &self.name, DEAD_AFTER)
                .await
                .map_err(|e| e.to_string())?;
            match channel::read_message(&mut link).await {
                Ok(Message::Source {
                    server_id,
                    version,
                    checksum,
                    domain_id,
                }) => Ok((
                    link,
                    Source {
                        server_id,
                        version,
                        checksum,
                        domain_id,
                    },
                )),
                Ok(Message::Error { message }) => Err(message),
                Ok(other) => Err(format!("expected the source's description, got {other:?}")),
                Err(e) => Err(e.to_string()),
            }
        };
        tokio::time::timeout(feed::CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| format!("no answer from {} in time", self.master))?
    }

    /// Runs until `shutdown` fires: serves the feed and keeps the backend replicating from it.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let listener = match TcpListener::bind(self.feed_listen).await {
            Ok(l) => l,
            Err(e) => {
                warn!(addr = %self.feed_listen, error = %e, "cannot listen for the backend's replica");
                self.set(|s| s.stopped = Some(format!("feed listener: {e}")));
                return;
            }
        };
        let port = match listener.local_addr() {
            Ok(a) => a.port(),
            Err(e) => {
                self.set(|s| s.stopped = Some(format!("feed listener: {e}")));
                return;
            }
        };
        info!(port, "binlog feed listening for the backend's replica");
        let feeds = {
            let me = self.clone();
            let stopping = shutdown.clone();
            async move {
                loop {
                    let Ok((socket, peer)) = listener.accept().await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let me = me.clone();
                    // Each feed holds its own link to the master: it ends with the node, or
                    // the master would still count a stopped slave as linked.
                    let mut stop = stopping.clone();
                    tokio::spawn(
                        async move {
                            tokio::select! {
                                ended = feed::serve(me, socket) => if let Err(why) = ended {
                                    info!(reason = %why, "feed connection ended");
                                },
                                _ = stop.wait_for(|stop| *stop) => {}
                            }
                        }
                        .instrument(info_span!("feed", %peer)),
                    );
                }
            }
        };
        tokio::select! {
            () = feeds => {}
            () = self.watch_backend(port) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Keeps the backend's replica threads pointed at the feed and running, and follows what
    /// they applied.
    async fn watch_backend(&self, port: u16) {
        let mut relayed = self.relayed.subscribe();
        loop {
            let mut conn = match self.pool.get_conn().await {
                Ok(c) => c,
                Err(e) => {
                    self.set(|s| s.stopped = Some(format!("backend unreachable: {e}")));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = self.supervise(&mut conn, port).await {
                warn!(error = %e, "checking the backend's replication");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let mut checked = tokio::time::Instant::now();
            loop {
                let target = relayed.borrow_and_update().clone();
                let behind = !self.applied.borrow().covers(&target);
                if behind {
                    let wait = format!("SELECT MASTER_GTID_WAIT('{target}', 1)");
                    if conn.query_drop(wait).await.is_err() {
                        break;
                    }
                } else {
                    tokio::select! {
                        _ = relayed.changed() => {}
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                match conn
                    .query_first::<String, _>("SELECT @@global.gtid_slave_pos")
                    .await
                {
                    Ok(Some(pos)) => {
                        if let Ok(pos) = Position::parse(&pos) {
                            self.applied_now(pos);
                        }
                    }
                    _ => break,
                }
                if checked.elapsed() >= Duration::from_secs(1) {
                    checked = tokio::time::Instant::now();
                    if self.supervise(&mut conn, port).await.is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// Points the backend's replica threads at the feed on `port` if they are not, starts them
    /// if they stopped without an error, and records the error if the applier stopped on one.
    async fn supervise(&self, conn: &mut Conn, port: u16) -> mysql_async::Result<()> {
        let row: Option<Row> = conn.query_first("SHOW SLAVE STATUS").await?;
        let field = |row: &Row, name: &str| -> String {
            row.get_opt::<Option<String>, _>(name)
                .and_then(Result::ok)
                .flatten()
                .unwrap_or_default()
        };
        let pointed = row.as_ref().is_some_and(|r| {
            field(r, "Master_Port") == port.to_string()
                && field(r, "Master_Host") == self.feed_host
                && field(r, "Master_User") == FEED_USER
        });
        if !pointed {
            info!(port, "pointing the backend's replica threads at the feed");
            let _ = conn.query_drop("STOP SLAVE").await;
            conn.query_drop(format!(
                "CHANGE MASTER TO MASTER_HOST = {}, MASTER_PORT = {port}, MASTER_USER = '{FEED_USER}', \
                 MASTER_PASSWORD = '{}', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
                quote(&self.feed_host),
                self.feed_password
            ))
            .await?;
            conn.query_drop("START SLAVE").await?;
            self.set(|s| s.stopped = None);
            return Ok(());
        }
        let Some(row) = row else { return Ok(()) };
        let sql_running = field(&row, "Slave_SQL_Running") == "Yes";
        let io_running = field(&row, "Slave_IO_Running") != "No";
        let errno = field(&row, "Last_SQL_Errno");
        if !sql_running && !errno.is_empty() && errno != "0" {
            let why = format!("error {errno}: {}", field(&row, "Last_SQL_Error"));
            let known = self
                .status
                .lock()
                .map(|s| s.stopped.as_deref() == Some(why.as_str()))
                .unwrap_or(false);
            if !known {
                warn!(reason = %why, "the backend's applier stopped; an operator must act");
                self.events.record(
                    "apply_stopped",
                    format!("the backend's applier stopped: {why}"),
                );
            }
            self.set(|s| s.stopped = Some(why));
            return Ok(());
        }
        self.set(|s| s.stopped = None);
        if !sql_running || !io_running {
            info!("starting the backend's replica threads");
            conn.query_drop("START SLAVE").await?;
        }
        Ok(())
    }
}

/// `s` as a SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}
