//! The master's side: commits changes in log order, and streams the log to slaves.
//!
//! One order, group commit: a transaction reaches COMMIT only once its statements have run, and
//! InnoDB keeps every row lock until the commit; so transactions committing at the same moment
//! touch no common rows, and any order among them replays to the same data. The log's order is
//! the order that counts. Commits therefore take the commit turn *shared*: they append to the
//! log together (one fsync for the group, see `ReplicationLog::append`) and commit on the
//! backend together (where InnoDB groups its own flushes). A transaction that conflicts with one
//! still committing waits for that commit in its statements, so it is logged after it.
//!
//! Each commit records its LSN as its own row of `myrelay.committed` in the same backend
//! transaction, so concurrent commits never contend for one row, and recovery knows exactly
//! which logged entries the backend has. DDL, recovery and compaction of those rows into the
//! single `myrelay.applied` low-water mark take the turn *exclusively*: no commit is in flight
//! then, so everything logged is committed.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, watch};
use tracing::{Instrument, info, info_span, warn};

use super::apply;
use super::change::Change;
use super::channel::{self, Message};
use super::log::{Durability, ReplicationLog};

/// How long a slave has to authenticate.
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeat period; a peer silent for [`DEAD_AFTER`] is considered gone.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Silence after which a peer is dropped.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);

/// What the master knows about one slave.
#[derive(Debug, Clone, Default)]
pub struct SlaveState {
    /// Connected right now.
    pub connected: bool,
    /// Last LSN the slave reported applied.
    pub applied_lsn: u64,
    /// When the slave last reported (for lag in milliseconds).
    pub last_report: Option<Instant>,
    /// When the master appended the entry the slave has not applied yet, oldest first.
    pub lag_ms: u64,
    /// Where its replication link comes from.
    pub addr: Option<SocketAddr>,
}

/// The master's log, commit lock and view of its slaves.
pub struct Master {
    log: ReplicationLog,
    commit: RwLock<()>,
    /// Commits recorded as rows of `myrelay.committed` since they were last compacted.
    uncompacted: std::sync::atomic::AtomicU64,
    slaves: Mutex<BTreeMap<String, SlaveState>>,
    append_times: Mutex<std::collections::VecDeque<(u64, Instant)>>,
    secret: Vec<u8>,
    recovered: std::sync::atomic::AtomicBool,
    /// Functions whose replay may differ, loaded from the backend; `None` after DDL until
    /// reloaded.
    user_functions: Mutex<Option<Arc<HashSet<String>>>>,
}

/// Why a change could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The log could not make the change durable; nothing was committed.
    #[error("the replication log could not make the change durable: {0}")]
    Log(String),
    /// The backend refused the commit after the change was logged; the node replays it.
    #[error("backend commit failed after logging (LSN {lsn}): {source}")]
    Backend {
        /// The logged entry.
        lsn: u64,
        /// The backend's error.
        source: mysql_async::Error,
    },
}

/// Commit rows kept in `myrelay.committed` before they are folded into the low-water mark.
const COMPACT_EVERY: u64 = 10_000;

/// Held while a change is logged and committed: shared by commits, exclusive for DDL and
/// recovery (see the module doc).
pub enum CommitTurn<'a> {
    /// A commit's turn, taken with other commits.
    Shared(RwLockReadGuard<'a, ()>),
    /// No commit is in flight while this is held.
    Exclusive(RwLockWriteGuard<'a, ()>),
}

impl Master {
    /// Opens the log in `dir`; `fsync` chooses per-commit fsync (the default) or OS buffering.
    pub fn open(dir: &std::path::Path, fsync: bool, secret: &str) -> Result<Master, String> {
        let durability = if fsync {
            Durability::Fsync
        } else {
            Durability::OsBuffered
        };
        let (log, recovery) =
            ReplicationLog::open(dir, durability).map_err(|e| format!("{}: {e}", dir.display()))?;
        if recovery.dropped_bytes > 0 {
            warn!(
                dropped_bytes = recovery.dropped_bytes,
                last_lsn = recovery.last_lsn,
                "replication log had a torn tail; it was cut off"
            );
        }
        info!(
            entries = recovery.entries,
            last_lsn = recovery.last_lsn,
            "replication log open"
        );
        Ok(Master {
            log,
            commit: RwLock::new(()),
            uncompacted: std::sync::atomic::AtomicU64::new(0),
            slaves: Mutex::new(BTreeMap::new()),
            append_times: Mutex::new(Default::default()),
            secret: secret.as_bytes().to_vec(),
            recovered: std::sync::atomic::AtomicBool::new(false),
            user_functions: Mutex::new(None),
        })
    }

    /// The last logged LSN.
    pub fn lsn(&self) -> u64 {
        self.log.last_lsn()
    }

    /// Replays onto the master's own backend the entries it logged but did not commit (the node
    /// died between the two, or a commit failed), then compacts the commit rows. Returns how many
    /// were replayed. Run under the exclusive turn only: an entry whose commit is in flight
    /// would look missing.
    pub async fn recover(&self, conn: &mut Conn) -> Result<u64, String> {
        apply::prepare(conn).await.map_err(|e| e.to_string())?;
        let low = apply::applied_lsn(conn).await.map_err(|e| e.to_string())?;
        let committed: HashSet<u64> = conn
            .query::<u64, _>(format!(
                "SELECT lsn FROM myrelay.committed WHERE lsn > {low}"
            ))
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let mut done = low;
        let mut replayed = 0;
        while done < self.log.last_lsn() {
            let entries = self
                .log
                .read_after(done, 100, 8 << 20)
                .await
                .map_err(|e| e.to_string())?;
            let mut context: apply::AppliedContext = None;
            for entry in entries {
                done = entry.lsn;
                if committed.contains(&entry.lsn) {
                    continue;
                }
                let change = Change::decode(&entry.payload)?;
                // DDL is logged only after it ran here, so the backend has it already: only
                // its LSN may be missing. Writes are logged before they commit: replay them.
                // Entries go in order, so recording each as the low-water mark is true.
                let outcome = if change.ddl {
                    conn.query_drop(apply::record_lsn(entry.lsn)).await
                } else {
                    apply::apply(conn, entry.lsn, &change, &mut context).await
                };
                outcome.map_err(|e| format!("replaying LSN {}: {e}", entry.lsn))?;
                replayed += 1;
            }
        }
        self.compact(conn).await.map_err(|e| e.to_string())?;
        Ok(replayed)
    }

    /// Folds the commit rows into the low-water mark. Under the exclusive turn, once recovered,
    /// every logged entry is committed on the backend.
    async fn compact(&self, conn: &mut Conn) -> mysql_async::Result<()> {
        let last = self.log.last_lsn();
        conn.query_drop(format!(
            "BEGIN; UPDATE myrelay.applied SET lsn = GREATEST(lsn, {last}), ddl_pending = NULL \
             WHERE id = 1; DELETE FROM myrelay.committed WHERE lsn <= {last}; COMMIT"
        ))
        .await?;
        self.uncompacted
            .store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The turn for a commit: shared with other commits, once the backend holds every logged
    /// entry (recovering first, under the exclusive turn, if it may not).
    pub async fn commit_turn(
        &self,
        backend: &crate::backend::pool::Backend,
    ) -> Result<CommitTurn<'_>, String> {
        use std::sync::atomic::Ordering;
        loop {
            let shared = self.commit.read().await;
            if self.recovered.load(Ordering::Acquire)
                && self.uncompacted.load(Ordering::Relaxed) < COMPACT_EVERY
            {
                return Ok(CommitTurn::Shared(shared));
            }
            drop(shared);
            let exclusive = self.exclusive_turn(backend).await?;
            if self.uncompacted.load(Ordering::Relaxed) >= COMPACT_EVERY {
                let mut conn = backend.acquire(false).await.map_err(|e| e.message)?;
                self.compact(&mut conn).await.map_err(|e| e.to_string())?;
            }
            drop(exclusive);
        }
    }

    /// The exclusive turn (DDL): no commit is in flight, and the backend holds every logged
    /// entry (recovered first if it may not).
    pub async fn exclusive_turn(
        &self,
        backend: &crate::backend::pool::Backend,
    ) -> Result<CommitTurn<'_>, String> {
        use std::sync::atomic::Ordering;
        let exclusive = self.commit.write().await;
        if !self.recovered.load(Ordering::Acquire) {
            let mut conn = backend.acquire(false).await.map_err(|e| e.message)?;
            let replayed = self.recover(&mut conn).await?;
            if replayed > 0 {
                info!(
                    replayed,
                    "replayed logged entries the backend had not committed"
                );
            }
            self.recovered.store(true, Ordering::Release);
        }
        Ok(CommitTurn::Exclusive(exclusive))
    }

    /// Loadable UDFs and stored functions not declared DETERMINISTIC, as the backend lists
    /// them now (cached until the next DDL).
    pub async fn user_functions(&self, conn: &mut Conn) -> Arc<HashSet<String>> {
        if let Some(cached) = self.user_functions.lock().ok().and_then(|c| c.clone()) {
            return cached;
        }
        let names: Vec<String> = conn
            .query(
                "SELECT UPPER(name) FROM mysql.func \
                 UNION SELECT UPPER(ROUTINE_NAME) FROM information_schema.ROUTINES \
                 WHERE ROUTINE_TYPE = 'FUNCTION' AND IS_DETERMINISTIC = 'NO'",
            )
            .await
            .unwrap_or_default();
        let set = Arc::new(names.into_iter().collect::<HashSet<_>>());
        if let Ok(mut cache) = self.user_functions.lock() {
            *cache = Some(set.clone());
        }
        set
    }

    /// Forgets the cached function list (DDL may have created or dropped functions).
    pub fn functions_changed(&self) {
        if let Ok(mut cache) = self.user_functions.lock() {
            *cache = None;
        }
    }

    /// A logged change failed to commit: replay it now (exactly once, thanks to the commit row
    /// that committed with it or not), or at the next commit if the backend is unreachable.
    /// The caller must not hold a turn: replaying takes the exclusive one.
    pub async fn replay_now(&self, backend: &crate::backend::pool::Backend) {
        self.needs_recovery();
        if let Err(e) = self.exclusive_turn(backend).await {
            warn!(error = %e, "replay failed; the next commit retries it");
        }
    }

    /// Marks that the backend may lack a logged entry; the next commit replays first.
    pub fn needs_recovery(&self) {
        self.recovered
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// Logs `change` durably and returns its LSN. Must run inside a turn.
    pub async fn log(&self, _turn: &CommitTurn<'_>, change: &Change) -> Result<u64, CommitError> {
        let lsn = self
            .log
            .append(&change.encode())
            .await
            .map_err(|e| CommitError::Log(e.to_string()))?;
        if let Ok(mut times) = self.append_times.lock() {
            times.push_back((lsn, Instant::now()));
            while times.len() > 100_000 {
                times.pop_front();
            }
        }
        Ok(lsn)
    }

    /// Records `lsn` as committed in the transaction open on `conn`: its own row under a shared
    /// turn; under the exclusive turn (DDL, which commits implicitly) the low-water mark itself.
    pub async fn record(
        &self,
        turn: &CommitTurn<'_>,
        conn: &mut Conn,
        lsn: u64,
    ) -> Result<(), CommitError> {
        self.run_record(conn, lsn, self.record_sql(turn, lsn)).await
    }

    /// Records `lsn` in the transaction open on `conn` and commits it, in one round trip.
    pub async fn record_and_commit(
        &self,
        turn: &CommitTurn<'_>,
        conn: &mut Conn,
        lsn: u64,
    ) -> Result<(), CommitError> {
        let sql = format!("{}; COMMIT", self.record_sql(turn, lsn));
        self.run_record(conn, lsn, sql).await
    }

    fn record_sql(&self, turn: &CommitTurn<'_>, lsn: u64) -> String {
        match turn {
            CommitTurn::Shared(_) => {
                self.uncompacted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("INSERT INTO myrelay.committed (lsn) VALUES ({lsn})")
            }
            // DDL committed implicitly: this is a transaction of its own, even under
            // autocommit off, so that it holds no lock on the bookkeeping past this call.
            CommitTurn::Exclusive(_) => format!(
                "BEGIN; {}; DELETE FROM myrelay.committed WHERE lsn <= {lsn}; COMMIT",
                apply::record_lsn(lsn)
            ),
        }
    }

    async fn run_record(&self, conn: &mut Conn, lsn: u64, sql: String) -> Result<(), CommitError> {
        conn.query_drop(sql).await.map_err(|source| {
            self.needs_recovery();
            CommitError::Backend { lsn, source }
        })
    }

    /// For a clean shutdown: makes the log durable, then waits (up to `within`) until every
    /// connected slave has applied it all. Returns the slaves still behind, by name.
    pub async fn settle(&self, within: Duration) -> Vec<String> {
        if let Err(e) = self.log.sync().await {
            warn!(error = %e, "could not sync the replication log at shutdown");
        }
        let target = self.lsn();
        let deadline = Instant::now() + within;
        loop {
            let behind: Vec<String> = self
                .slaves()
                .into_iter()
                .filter(|(_, s)| s.connected && s.applied_lsn < target)
                .map(|(name, _)| name)
                .collect();
            if behind.is_empty() || Instant::now() >= deadline {
                return behind;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A snapshot of the slaves, by name.
    pub fn slaves(&self) -> BTreeMap<String, SlaveState> {
        let mut slaves = self.slaves.lock().map(|s| s.clone()).unwrap_or_default();
        let times = self.append_times.lock().ok();
        for state in slaves.values_mut() {
            // Lag in time: how long ago the oldest entry the slave still lacks was appended.
            state.lag_ms = times
                .as_ref()
                .and_then(|t| t.iter().find(|(lsn, _)| *lsn > state.applied_lsn))
                .map(|(_, at)| at.elapsed().as_millis() as u64)
                .unwrap_or(0);
        }
        slaves
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut SlaveState)) {
        if let Ok(mut slaves) = self.slaves.lock() {
            f(slaves.entry(name.to_string()).or_default());
        }
    }

    /// Accepts slaves on `listener` until `shutdown` fires.
    /// With `tls`, a slave must first complete mutual TLS (see [`super::tls`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let (socket, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error = %e, "replication accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            let master = self.clone();
            let span = info_span!("slave_link", %peer);
            let tls = tls.clone();
            tokio::spawn(async move { master.link(socket, peer, tls).await }.instrument(span));
        }
    }

    /// One slave's link: TLS first when configured, then the channel's own authentication.
    async fn link(
        self: Arc<Self>,
        socket: TcpStream,
        peer: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let _ = socket.set_nodelay(true);
        let Some(acceptor) = tls else {
            return self.stream_to(socket, peer).await;
        };
        match tokio::time::timeout(AUTH_TIMEOUT, acceptor.accept(socket)).await {
            Ok(Ok(stream)) => self.stream_to(stream, peer).await,
            Ok(Err(e)) => warn!(%peer, error = %e, "refused replication peer: TLS"),
            Err(_) => warn!(%peer, "refused replication peer: no TLS handshake in time"),
        }
    }

    async fn stream_to<S>(self: Arc<Self>, mut socket: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    {
        let name = match channel::accept_slave(&mut socket, &self.secret, self.lsn(), AUTH_TIMEOUT)
            .await
        {
            Ok(name) => name,
            Err(e) => {
                warn!(%peer, error = %e, "refused replication peer");
                return;
            }
        };
        let after =
            match tokio::time::timeout(AUTH_TIMEOUT, channel::read_message(&mut socket)).await {
                Ok(Ok(Message::Subscribe { after_lsn })) => after_lsn,
                other => {
                    warn!(slave = %name, ?other, "expected a subscription");
                    return;
                }
            };
        info!(slave = %name, after, "slave subscribed");
        self.update(&name, |s| {
            s.connected = true;
            s.applied_lsn = after;
            s.last_report = Some(Instant::now());
            s.addr = Some(peer);
        });
        let (mut reader, mut writer) = tokio::io::split(socket);
        let reports = {
            let master = self.clone();
            let name = name.clone();
            async move {
                loop {
                    match tokio::time::timeout(DEAD_AFTER, channel::read_message(&mut reader)).await
                    {
                        Ok(Ok(
                            Message::Ack { applied_lsn }
                            | Message::Heartbeat {
                                lsn: applied_lsn, ..
                            },
                        )) => {
                            master.update(&name, |s| {
                                s.applied_lsn = applied_lsn;
                                s.last_report = Some(Instant::now());
                            });
                        }
                        Ok(Ok(Message::Error { message })) => {
                            warn!(slave = %name, %message, "slave reported an error");
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return format!("link closed: {e}"),
                        Err(_) => return "no heartbeat".to_string(),
                    }
                }
            }
        };
        let stream = async {
            let mut sent = after;
            let mut lsns = self.log.subscribe();
            loop {
                let entries = match self.log.read_after(sent, 256, 4 << 20).await {
                    Ok(e) => e,
                    Err(e) => return format!("reading the log: {e}"),
                };
                if entries.is_empty() {
                    let beat = Message::Heartbeat {
                        lsn: self.lsn(),
                        unix_ms: unix_ms(),
                    };
                    if let Err(e) = channel::write_message(&mut writer, &beat).await {
                        return format!("link closed: {e}");
                    }
                    let _ = tokio::time::timeout(HEARTBEAT, lsns.changed()).await;
                    continue;
                }
                for entry in entries {
                    sent = entry.lsn;
                    let m = Message::Entry {
                        lsn: entry.lsn,
                        payload: entry.payload,
                    };
                    if let Err(e) = channel::write_message(&mut writer, &m).await {
                        return format!("link closed: {e}");
                    }
                }
            }
        };
        let why = tokio::select! {
            why = reports => why,
            why = stream => why,
        };
        info!(slave = %name, reason = %why, "slave disconnected");
        self.update(&name, |s| s.connected = false);
    }
}

/// Wall clock in milliseconds since the epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The current time as a `SET TIMESTAMP` value with microseconds.
pub fn timestamp_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", now.as_secs(), now.subsec_micros())
}
