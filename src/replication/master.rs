//! The master's side: relays its backend's binlog to slave nodes, whole transactions at a time.
//!
//! The backend's row-based binlog is the log: durable at commit (`sync_binlog=1`), in commit
//! order, rows by value. For each slave link the node opens a binlog dump on its backend from
//! the GTID position the slave's backend asks for (MariaDB's GTID dump, as a replica would),
//! and forwards the events as the bytes the server wrote, cut into transactions. The slave
//! reports what its backend applied; that gives lag, and holds a commit's OK when
//! `replication.ack` asks for it.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use super::binlog::{self, Groups, Step};
use super::channel::{self, Message};
use super::gtid::Position;
use crate::backend::wire::{Wire, WireError};
use crate::clock::unix_ms;
use crate::config::Ack;
use crate::events::Events;
use serde::{Deserialize, Serialize};

/// How long a slave has to authenticate.
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeat period; a peer silent for [`DEAD_AFTER`] is considered gone.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Silence after which a peer is dropped.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);
/// Events of one transaction held before they are sent anyway (a huge transaction is relayed
/// in parts rather than held whole in memory).
const MAX_HELD: usize = 4 << 20;
/// Transactions remembered per slave to tell its lag in time.
const LAG_WINDOW: usize = 100_000;

/// What the master knows about one slave.
#[derive(Debug, Clone, Default)]
pub struct SlaveState {
    /// Connected right now.
    pub connected: bool,
    /// The position its backend reported applied.
    pub applied: Position,
    /// When the slave last reported.
    pub last_report: Option<Instant>,
    /// How long ago the oldest transaction it has not applied was relayed to it.
    pub lag_ms: u64,
    /// Where its clients connect: the address it listens on, told in its subscription, with
    /// its link's IP when it listens on every address.
    pub addr: Option<SocketAddr>,
    /// Where its console listens, told likewise.
    pub console: Option<SocketAddr>,
}

/// A slave as the master tells every slave of it, so that each can show its siblings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling {
    /// Its node name.
    pub name: String,
    /// Where its clients connect, when known.
    pub address: Option<String>,
    /// Where its console listens, when it has one.
    pub console: Option<String>,
    /// Linked to the master right now.
    pub connected: bool,
    /// The position it reported applied, as a number.
    pub applied_lsn: u64,
    /// How far behind it is, in milliseconds.
    pub lag_ms: u64,
}

/// The cluster as the master tells every slave of it, with each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// The master's node name.
    pub master: String,
    /// Where the master's console listens, when it has one (an unspecified IP stands for the
    /// master's: the slave puts in the IP it reaches the master at).
    pub master_console: Option<String>,
    /// Every slave, the one told included.
    pub slaves: Vec<Sibling>,
}

/// A slave as the master keeps it: what it shows, and when each transaction was relayed to it
/// (by [`Position::lsn`], oldest first), from which its lag is told.
#[derive(Default)]
struct Slave {
    state: SlaveState,
    sent: VecDeque<(u64, Instant)>,
}

impl Slave {
    /// How long ago the oldest transaction it has not applied was relayed to it.
    fn lag_ms(&self) -> u64 {
        let applied = self.state.applied.lsn();
        self.sent
            .iter()
            .find(|(lsn, _)| *lsn > applied)
            .map(|(_, at)| at.elapsed().as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The settings a master's backend must have, and what it reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `@@server_id`.
    pub server_id: u32,
    /// `@@version`.
    pub version: String,
    /// `@@binlog_checksum`.
    pub checksum: String,
    /// `@@gtid_domain_id`.
    pub domain_id: u32,
}

/// Settings the master's backend needs for replication by its binlog, and the value each must
/// have.
pub const REQUIRED_SETTINGS: [(&str, &str); 5] = [
    ("log_bin", "1"),
    ("binlog_format", "ROW"),
    ("binlog_row_image", "FULL"),
    ("sync_binlog", "1"),
    ("innodb_flush_log_at_trx_commit", "1"),
];

/// Reads the backend's replication settings: `Err` names every one that is wrong and the value
/// it needs.
pub async fn check_source(wire: &mut Wire) -> Result<Source, String> {
    let names: Vec<String> = REQUIRED_SETTINGS
        .iter()
        .map(|(name, _)| format!("@@global.{name}"))
        .collect();
    let sql = format!(
        "SELECT {}, @@global.server_id, @@version, @@global.binlog_checksum, \
         @@global.gtid_domain_id",
        names.join(", ")
    );
    let rows = wire.query(&sql).await.map_err(|e| e.to_string())?;
    let row = rows.into_iter().next().unwrap_or_default();
    let value = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let mut wrong = Vec::new();
    for (i, (name, needed)) in REQUIRED_SETTINGS.iter().enumerate() {
        if !value(i).eq_ignore_ascii_case(needed) {
            wrong.push(format!("{name} = {} (needs {needed})", value(i)));
        }
    }
    let n = REQUIRED_SETTINGS.len();
    let server_id = value(n).parse::<u32>().unwrap_or(0);
    if server_id == 0 {
        wrong.push("server_id = 0 (needs a value unique in the cluster)".into());
    }
    if !wrong.is_empty() {
        return Err(format!(
            "the master's backend is not set up for replication by its binlog: {}",
            wrong.join(", ")
        ));
    }
    Ok(Source {
        server_id,
        version: value(n + 1),
        checksum: value(n + 2),
        domain_id: value(n + 3).parse().unwrap_or(0),
    })
}

/// How the master reaches its own backend for binlog dumps.
#[derive(Debug, Clone)]
pub struct BackendLogin {
    /// The backend's address.
    pub addr: SocketAddr,
    /// Account with the REPLICATION SLAVE privilege (the node's backend account).
    pub user: String,
    /// Its password.
    pub password: String,
}

impl BackendLogin {
    async fn connect(&self) -> Result<Wire, WireError> {
        Wire::connect(self.addr, &self.user, &self.password, AUTH_TIMEOUT).await
    }
}

/// The master's view of its slaves and of its backend's binlog.
pub struct Master {
    backend: BackendLogin,
    secret: Vec<u8>,
    slaves: Mutex<BTreeMap<String, Slave>>,
    /// The furthest binlog position read by any link or asked of the backend.
    position: watch::Sender<Position>,
    /// Bumped whenever a slave reports, to wake commits waiting for acknowledgements.
    reports: watch::Sender<u64>,
    ack: Ack,
    ack_timeout: Duration,
    /// Commits whose OK went out after `ack_timeout` without the acknowledgements.
    ack_timeouts: AtomicU64,
    /// Where slaves linking and dropping, and ack timeouts, are recorded.
    events: Arc<Events>,
    /// This node's name and where its console listens, told to slaves.
    name: String,
    console: Option<SocketAddr>,
}

impl Master {
    /// A master relaying `backend`'s binlog to slaves that know `secret`, recording into
    /// `events`; it tells them its `name` and that its console is at `console`.
    pub fn new(
        name: &str,
        backend: BackendLogin,
        secret: &str,
        ack: Ack,
        ack_timeout: Duration,
        events: Arc<Events>,
        console: Option<SocketAddr>,
    ) -> Master {
        Master {
            backend,
            secret: secret.as_bytes().to_vec(),
            slaves: Mutex::new(BTreeMap::new()),
            position: watch::channel(Position::default()).0,
            reports: watch::channel(0).0,
            ack,
            ack_timeout,
            ack_timeouts: AtomicU64::new(0),
            events,
            name: name.to_string(),
            console,
        }
    }

    /// Checks the backend's settings (when it answers): a master must not serve on a backend
    /// that would lose or reorder what it replicates. An unreachable backend is only logged;
    /// every link checks again.
    pub async fn check(&self) -> Result<(), String> {
        match self.backend.connect().await {
            Ok(mut wire) => check_source(&mut wire).await.map(drop),
            Err(e) => {
                warn!(error = %e, "backend not reachable: its replication settings are checked later");
                Ok(())
            }
        }
    }

    /// The furthest binlog position the node has seen.
    pub fn position(&self) -> Position {
        self.position.borrow().clone()
    }

    /// [`Master::position`] as a number.
    pub fn lsn(&self) -> u64 {
        self.position.borrow().lsn()
    }

    /// Records that the backend's binlog has reached at least `pos` (read from it).
    pub fn saw(&self, pos: &Position) {
        self.position.send_if_modified(|known| {
            if known.covers(pos) {
                return false;
            }
            known.merge(pos);
            true
        });
    }

    /// What `replication.ack` asks of commits.
    pub fn ack(&self) -> Ack {
        self.ack
    }

    /// Commits whose OK went out after `replication.ack_timeout_ms` without the acknowledgements
    /// `replication.ack` asked for.
    pub fn ack_timeouts(&self) -> u64 {
        self.ack_timeouts.load(Ordering::Relaxed)
    }

    /// Holds a commit that reached `target` on the backend until as many connected slaves as
    /// `replication.ack` asks have applied it, or until `replication.ack_timeout_ms`. Returns
    /// false (logged and counted) when it stopped waiting.
    pub async fn wait_acknowledged(&self, target: &Position) -> bool {
        if self.ack == Ack::None || target.is_empty() {
            return true;
        }
        self.saw(target);
        let mut reports = self.reports.subscribe();
        let satisfied = |slaves: &BTreeMap<String, Slave>| {
            let connected = slaves.values().map(|s| &s.state).filter(|s| s.connected);
            let applied = connected
                .clone()
                .filter(|s| s.applied.covers(target))
                .count();
            match self.ack {
                Ack::None => true,
                Ack::One => applied >= 1,
                Ack::All => applied == connected.count(),
            }
        };
        let waited = tokio::time::timeout(self.ack_timeout, async {
            loop {
                if self.slaves.lock().map(|s| satisfied(&s)).unwrap_or(true) {
                    return;
                }
                if reports.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if waited.is_err() {
            self.ack_timeouts.fetch_add(1, Ordering::Relaxed);
            self.events.record(
                "ack_timeout",
                format!(
                    "a commit's OK went out without its acknowledgement (ack = {}) after {} ms",
                    self.ack.as_str(),
                    self.ack_timeout.as_millis()
                ),
            );
            warn!(
                %target,
                ack = self.ack.as_str(),
                timeout_ms = self.ack_timeout.as_millis() as u64,
                "commit acknowledged without its slaves: replication.ack_timeout_ms passed"
            );
            return false;
        }
        true
    }

    /// For a clean shutdown: waits (up to `within`) until every connected slave has applied
    /// what the backend's binlog holds now. Returns the slaves still behind, by name.
    pub async fn settle(&self, within: Duration) -> Vec<String> {
        if let Ok(mut wire) = self.backend.connect().await
            && let Ok(Some(pos)) = wire.query_value("SELECT @@global.gtid_binlog_pos").await
            && let Ok(pos) = Position::parse(&pos)
        {
            self.saw(&pos);
        }
        let target = self.position();
        let mut reports = self.reports.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let behind: Vec<String> = self
                .slaves()
                .into_iter()
                .filter(|(_, s)| s.connected && !s.applied.covers(&target))
                .map(|(name, _)| name)
                .collect();
            if behind.is_empty()
                || tokio::time::timeout_at(deadline, reports.changed())
                    .await
                    .is_err()
            {
                return behind;
            }
        }
    }

    /// The cluster as a slave is told of it, as JSON.
    fn cluster_json(&self) -> String {
        let view = ClusterView {
            master: self.name.clone(),
            master_console: self.console.map(|a| a.to_string()),
            slaves: self.siblings(),
        };
        serde_json::to_string(&view).unwrap_or_default()
    }

    /// Every slave as the cluster's views show it (the master's status, and every slave's).
    pub fn siblings(&self) -> Vec<Sibling> {
        self.slaves()
            .into_iter()
            .map(|(name, s)| Sibling {
                name,
                address: s.addr.map(|a| a.to_string()),
                console: s.console.map(|a| a.to_string()),
                connected: s.connected,
                applied_lsn: s.applied.lsn(),
                lag_ms: s.lag_ms,
            })
            .collect()
    }

    /// A snapshot of the slaves, by name, with their lag in time.
    pub fn slaves(&self) -> BTreeMap<String, SlaveState> {
        let Ok(slaves) = self.slaves.lock() else {
            return BTreeMap::new();
        };
        slaves
            .iter()
            .map(|(name, s)| {
                let mut state = s.state.clone();
                state.lag_ms = s.lag_ms();
                (name.clone(), state)
            })
            .collect()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut Slave)) {
        if let Ok(mut slaves) = self.slaves.lock() {
            f(slaves.entry(name.to_string()).or_default());
        }
        self.reports.send_modify(|n| *n = n.wrapping_add(1));
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
            let mut stop = shutdown.clone();
            tokio::spawn(
                async move {
                    tokio::select! {
                        () = master.link(socket, peer, tls) => {}
                        _ = stop.changed() => {}
                    }
                }
                .instrument(span),
            );
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
        S: AsyncRead + AsyncWrite + Unpin + Send,
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
        let why = self.relay(&mut socket, &name, peer).await;
        info!(slave = %name, reason = %why, "slave link ended");
        let was_linked = self
            .slaves
            .lock()
            .map(|s| s.get(&name).is_some_and(|s| s.state.connected))
            .unwrap_or(false);
        if was_linked {
            self.events
                .record("slave_dropped", format!("slave {name} dropped: {why}"));
        }
        let _ = channel::write_message(&mut socket, &Message::Error { message: why }).await;
        self.update(&name, |s| s.state.connected = false);
    }

    /// Serves one subscription: the source's description, then its binlog from the position
    /// the slave asks for, until either side stops. Returns why it ended.
    async fn relay<S>(&self, socket: &mut S, name: &str, peer: SocketAddr) -> String
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut wire = match self.backend.connect().await {
            Ok(w) => w,
            Err(e) => return format!("the master's backend is unreachable: {e}"),
        };
        let source = match check_source(&mut wire).await {
            Ok(s) => s,
            Err(e) => return e,
        };
        let describe = Message::Source {
            server_id: source.server_id,
            version: source.version.clone(),
            checksum: source.checksum.clone(),
            domain_id: source.domain_id,
        };
        if let Err(e) = channel::write_message(socket, &describe).await {
            return format!("link closed: {e}");
        }
        let (position, server_id, client, console) =
            match tokio::time::timeout(DEAD_AFTER, channel::read_message(socket)).await {
                Ok(Ok(Message::Subscribe {
                    position,
                    server_id,
                    client,
                    console,
                })) => (position, server_id, client, console),
                Ok(Ok(other)) => return format!("expected a subscription, got {other:?}"),
                Ok(Err(e)) => return format!("link closed: {e}"),
                Err(_) => return "no subscription in time".into(),
            };
        if server_id == source.server_id {
            return format!(
                "the slave's backend has the master backend's server_id {server_id}: each \
                 backend needs its own"
            );
        }
        let start = match Position::parse(&position) {
            Ok(p) => p,
            Err(e) => return e.to_string(),
        };
        if let Err(e) = start_dump(&mut wire, &start, server_id).await {
            return format!("binlog dump from {start}: {e}");
        }
        info!(slave = %name, from = %start, server_id, "slave subscribed");
        self.events.record(
            "slave_linked",
            format!("slave {name} linked from {peer}, replicating from position '{start}'"),
        );
        self.update(name, |s| {
            s.state.connected = true;
            s.state.applied = start.clone();
            s.state.last_report = Some(Instant::now());
            s.state.addr = told_addr(&client, peer.ip());
            s.state.console = told_addr(&console, peer.ip());
            s.sent.clear();
        });
        let (mut reader, mut writer) = tokio::io::split(socket);
        let reports = async {
            loop {
                match tokio::time::timeout(DEAD_AFTER, channel::read_message(&mut reader)).await {
                    Ok(Ok(
                        Message::Ack { applied }
                        | Message::Heartbeat {
                            position: applied, ..
                        },
                    )) => match Position::parse(&applied) {
                        Ok(applied) => self.update(name, |s| {
                            s.state.applied = applied;
                            s.state.last_report = Some(Instant::now());
                        }),
                        Err(e) => return e.to_string(),
                    },
                    Ok(Ok(Message::Error { message })) => return format!("slave: {message}"),
                    Ok(Ok(other)) => debug!(?other, "ignored"),
                    Ok(Err(e)) => return format!("link closed: {e}"),
                    Err(_) => return "no heartbeat".to_string(),
                }
            }
        };
        let stream = async {
            let mut groups = Groups::default();
            let mut held = Vec::new();
            let mut read = start.clone();
            loop {
                let packet = match wire.read().await {
                    Ok(p) => p,
                    Err(e) => return format!("binlog dump: {e}"),
                };
                let event = match packet.split_first() {
                    Some((0x00, event)) => event,
                    Some((0xff, _)) => return format!("binlog dump: {}", wire.error(&packet)),
                    _ => return "binlog dump ended".into(),
                };
                let step = match groups.step(event) {
                    Ok(s) => s,
                    Err(e) => return e.to_string(),
                };
                held.extend_from_slice(event);
                let ends = match step {
                    Step::Inside if held.len() < MAX_HELD => continue,
                    Step::Inside => None,
                    Step::Outside => {
                        if binlog::header(event).is_ok_and(|h| h.kind == binlog::kind::HEARTBEAT) {
                            let beat = Message::Heartbeat {
                                position: read.to_string(),
                                unix_ms: unix_ms(),
                            };
                            let topology = Message::Topology {
                                json: self.cluster_json(),
                            };
                            for m in [beat, topology] {
                                if let Err(e) = channel::write_message(&mut writer, &m).await {
                                    return format!("link closed: {e}");
                                }
                            }
                        }
                        None
                    }
                    Step::Ends(gtid) => {
                        read.advance(gtid);
                        Some(gtid)
                    }
                };
                let m = Message::Events {
                    events: std::mem::take(&mut held),
                    ends: ends.map(|g| g.to_string()),
                };
                if let Err(e) = channel::write_message(&mut writer, &m).await {
                    return format!("link closed: {e}");
                }
                if ends.is_some() {
                    self.saw(&read);
                    let lsn = read.lsn();
                    if let Ok(mut slaves) = self.slaves.lock()
                        && let Some(s) = slaves.get_mut(name)
                    {
                        s.sent.push_back((lsn, Instant::now()));
                        let applied = s.state.applied.lsn();
                        while s.sent.len() > LAG_WINDOW
                            || s.sent.front().is_some_and(|(l, _)| *l <= applied)
                        {
                            s.sent.pop_front();
                        }
                    }
                }
            }
        };
        tokio::select! {
            why = reports => why,
            why = stream => why,
        }
    }
}

/// Where a peer's clients (or console) connect: `told` as it said (its listen address), with
/// the IP it is reached at (`peer`) when it listens on every address.
pub(super) fn told_addr(told: &str, peer: IpAddr) -> Option<SocketAddr> {
    let told: SocketAddr = told.parse().ok()?;
    Some(if told.ip().is_unspecified() {
        SocketAddr::new(peer, told.port())
    } else {
        told
    })
}

/// Asks the backend for its binlog from `start`, as a MariaDB replica with `server_id` would:
/// with checksums as written, GTID events, a heartbeat every [`HEARTBEAT`] when idle.
async fn start_dump(wire: &mut Wire, start: &Position, server_id: u32) -> Result<(), WireError> {
    let heartbeat_ns = HEARTBEAT.as_nanos();
    // `start` is a parsed position, so its text is digits, dashes and commas only.
    let setup = [
        "SET @master_binlog_checksum = @@global.binlog_checksum".to_string(),
        "SET @mariadb_slave_capability = 4".to_string(),
        format!("SET @slave_connect_state = '{start}'"),
        "SET @slave_gtid_strict_mode = 0".to_string(),
        "SET @slave_gtid_ignore_duplicates = 0".to_string(),
        format!("SET @master_heartbeat_period = {heartbeat_ns}"),
    ];
    for sql in setup {
        wire.query(&sql).await?;
    }
    // COM_BINLOG_DUMP: position 4, flag BINLOG_SEND_ANNOTATE_ROWS_EVENT, the replica's server
    // id, no file name (the connect state says where).
    let mut body = 4u32.to_le_bytes().to_vec();
    body.extend_from_slice(&2u16.to_le_bytes());
    body.extend_from_slice(&server_id.to_le_bytes());
    wire.command(0x12, &body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slave_is_known_by_where_its_clients_connect() {
        let peer: IpAddr = "10.0.0.7".parse().expect("ip");
        let told = |client: &str| told_addr(client, peer).map(|a| a.to_string());
        assert_eq!(told("127.0.0.1:3308").as_deref(), Some("127.0.0.1:3308"));
        assert_eq!(told("0.0.0.0:3308").as_deref(), Some("10.0.0.7:3308"));
        assert_eq!(told("[::]:3308").as_deref(), Some("10.0.0.7:3308"));
        assert_eq!(told("").as_deref(), None);
    }
}
