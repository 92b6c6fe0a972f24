//! A running node: the accept loop and what all its sessions share.
//!
//! Like mini-redis's server: a semaphore bounds concurrent clients, accept errors back off instead
//! of spinning, and a watch channel tells the loop to stop.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span, warn};

use crate::backend::functions::StoredFunctions;
use crate::backend::pool;
use crate::backend::wire::{Greeting, Wire};
use crate::config::{Grant, NodeConfig, NodeRole, User};
use crate::error::{ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS, ErrorReply};
use crate::events::Events;
use crate::frontend::compress::{self, Switch};
use crate::frontend::handshake::{HandshakeError, Offer, authenticate, is_ssl_request};
use crate::frontend::reply::Replies;
use crate::frontend::session::Session;
use crate::metrics::Metrics;
use crate::packet::{PacketReader, PacketWriter};
use crate::replication::lock_wait;
use crate::replication::master::Master;
use crate::replication::slave::Replica;

/// What every session of a node shares.
pub struct NodeShared {
    /// The node's configuration.
    pub config: NodeConfig,
    /// Where its clients connect, as bound (the config may ask for port 0).
    pub addr: SocketAddr,
    /// Where its console listens, as bound, when it has one.
    pub console: Option<SocketAddr>,
    /// The node's backend: its own pool, and the session connections' slots.
    pub backend: pool::Backend,
    /// The replication log and slave view, on a replicating master.
    pub master: Option<Arc<Master>>,
    /// The log follower, on a replicating slave.
    pub replica: Option<Arc<Replica>>,
    /// TLS on the client port, when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    started: std::time::Instant,
    clients: std::sync::atomic::AtomicUsize,
    /// Woken when the last client leaves (a drain waits for it).
    no_clients: tokio::sync::Notify,
    /// Set when the node shuts down cleanly: sessions end at their next idle moment.
    draining: watch::Sender<bool>,
    /// The proxy users in force: `config.users` at start, swapped whole by a reload (SIGHUP).
    users: RwLock<Arc<BTreeMap<String, User>>>,
    /// Counters for `/metrics`, `/api/status` and the console.
    pub metrics: Metrics,
    /// The backend's stored functions that change data.
    pub functions: StoredFunctions,
    /// What happened when, for the console and `/api/events`.
    pub events: Arc<Events>,
    /// The sessions by connection id, with their user: who may kill which connection.
    pub sessions: Sessions,
    /// Logged-in connections per proxy user, for `limits.max_connections_per_user`.
    per_user: Mutex<HashMap<String, usize>>,
    /// Reloads applied since start: the generation of the users in force, so that an operator
    /// or a test can tell a SIGHUP has taken effect without probing with statements.
    reloads_applied: AtomicU64,
    /// Reloads whose file did not load (nothing changed), counted so they are observable too.
    reloads_failed: AtomicU64,
}

/// The node's sessions by connection id (their backend connection's id): their user, and how
/// to tell one its backend connection is being killed.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<u32, (String, Arc<Preemption>)>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (String, Arc<Preemption>)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that connection `id` is `user`'s, told of preemption through `preemption`.
    pub fn add(&self, id: u32, user: &str, preemption: Arc<Preemption>) {
        self.lock().insert(id, (user.to_string(), preemption));
    }

    /// Forgets connection `id`.
    pub fn remove(&self, id: u32) {
        self.lock().remove(&id);
    }

    /// This node's connection ids of `user`'s sessions, in order.
    pub fn of_user(&self, user: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .lock()
            .iter()
            .filter(|(_, (owner, _))| owner.as_str() == user)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The user of connection `id`, if it is a session of this node.
    pub fn owner(&self, id: u32) -> Option<String> {
        self.lock().get(&id).map(|(user, _)| user.clone())
    }

    /// Tells the session on connection `id` that its backend connection is about to be killed,
    /// and `why`; false when `id` is no session of this node.
    pub fn preempt(&self, id: u32, why: &str) -> bool {
        match self.lock().get(&id) {
            Some((_, preemption)) => {
                preemption.preempt(why);
                true
            }
            None => false,
        }
    }
}

/// How the node tells a session that it kills the session's backend connection (a slave whose
/// replication waited on the session's locks), so that the client learns why instead of seeing
/// a bare "Connection was killed".
#[derive(Default)]
pub struct Preemption {
    notify: tokio::sync::Notify,
    why: Mutex<Option<String>>,
}

impl Preemption {
    fn preempt(&self, why: &str) {
        if let Ok(mut w) = self.why.lock() {
            *w = Some(why.to_string());
        }
        self.notify.notify_one();
    }

    /// Resolves once the session has been preempted, with why.
    pub async fn preempted(&self) -> String {
        self.notify.notified().await;
        self.why
            .lock()
            .ok()
            .and_then(|w| w.clone())
            .unwrap_or_default()
    }
}

/// One of a user's connection slots; given back when dropped.
struct UserSlot {
    shared: Arc<NodeShared>,
    user: String,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self
            .shared
            .per_user
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(n) = counts.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

/// Takes a connection slot of `user`, unless the user already holds
/// `limits.max_connections_per_user` of them.
fn user_slot(shared: &Arc<NodeShared>, user: &str) -> Option<UserSlot> {
    let limit = shared.config.limits.max_connections_per_user;
    let mut counts = shared
        .per_user
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let n = counts.entry(user.to_string()).or_default();
    if limit > 0 && *n >= limit {
        return None;
    }
    *n += 1;
    Some(UserSlot {
        shared: shared.clone(),
        user: user.to_string(),
    })
}

/// Config reloads so far, as `/metrics` and `/api/status` report them: a reload is confirmed
/// by its counter moving, never by how statements happen to behave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReloadCounts {
    /// Reloads applied (the users in force are from the last one).
    pub applied: u64,
    /// Reloads refused because the file did not load; they changed nothing.
    pub failed: u64,
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reloaded {
    /// Reloads applied since start, this one included: sessions use these users from their
    /// next statement on.
    pub generation: u64,
    /// True when the user table differs from the one it replaced.
    pub users_changed: bool,
    /// Keys that changed but only apply after a restart (left as they were).
    pub needs_restart: Vec<&'static str>,
}

impl NodeShared {
    /// Resolves once the node is shutting down cleanly.
    pub async fn drained(&self) {
        let mut draining = self.draining.subscribe();
        let _ = draining.wait_for(|d| *d).await;
    }

    /// The proxy users in force now.
    pub fn users(&self) -> Arc<BTreeMap<String, User>> {
        match self.users.read() {
            Ok(users) => users.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// What `user` may do now when connecting from `peer`; `None` once the user is gone.
    pub fn grant(&self, user: &str, peer: IpAddr) -> Option<Grant> {
        let users = match self.users.read() {
            Ok(users) => users,
            Err(poisoned) => poisoned.into_inner(),
        };
        users.get(user).map(|u| u.grant(peer))
    }

    /// Swaps in the users of `new` (a re-read config file); the other keys need a restart and
    /// are only reported. Sessions see the new roles from their next statement on.
    pub fn reload(&self, new: &NodeConfig) -> Reloaded {
        let users = Arc::new(new.users.clone());
        let mut current = match self.users.write() {
            Ok(users) => users,
            Err(poisoned) => poisoned.into_inner(),
        };
        let users_changed = **current != *users;
        *current = users;
        // Counted while the new users are already in place (and still locked), so a reader who
        // sees this generation is served by them.
        let generation = self.reloads_applied.fetch_add(1, Ordering::SeqCst) + 1;
        drop(current);
        let needs_restart = self.config.restart_keys(new);
        self.events.record(
            "reload",
            format!(
                "config reloaded (generation {generation}): users {}{}",
                if users_changed {
                    "changed"
                } else {
                    "unchanged"
                },
                if needs_restart.is_empty() {
                    String::new()
                } else {
                    format!("; needs a restart: {}", needs_restart.join(", "))
                }
            ),
        );
        Reloaded {
            generation,
            users_changed,
            needs_restart,
        }
    }

    /// Counts a reload whose config file did not load (the users stay as they were).
    pub fn reload_failed(&self, why: &str) {
        self.reloads_failed.fetch_add(1, Ordering::SeqCst);
        self.events
            .record("reload_failed", format!("config not reloaded: {why}"));
    }

    /// Reloads applied and failed since start.
    pub fn reloads(&self) -> ReloadCounts {
        ReloadCounts {
            applied: self.reloads_applied.load(Ordering::SeqCst),
            failed: self.reloads_failed.load(Ordering::SeqCst),
        }
    }

    /// Clients logged in now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// How long the node has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// True once a clean shutdown began.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }
}

/// A started node; dropping it does not stop it, [`NodeHandle::stop`] does.
pub struct NodeHandle {
    /// The address clients connect to (useful when the config asked for port 0).
    pub addr: SocketAddr,
    /// Where slaves connect, on a replicating master.
    pub replication_addr: Option<SocketAddr>,
    /// Where the admin HTTP listener (console, `/health`, `/metrics`) is, when configured.
    pub admin_addr: Option<SocketAddr>,
    /// Shared state, e.g. to read the config.
    pub shared: Arc<NodeShared>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The replication task (streaming to slaves, or following the master), if any.
    replication: Option<JoinHandle<()>>,
    /// The admin HTTP listener, if any.
    admin: Option<JoinHandle<()>>,
}

impl NodeHandle {
    /// Stops accepting clients and replicating, waits for both loops, then closes the backend
    /// pools' idle connections (after the replication task returned its connection).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some(replication) = self.replication {
            let _ = replication.await;
        }
        if let Some(admin) = self.admin {
            let _ = admin.await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.shared.backend.shutdown()).await;
    }

    /// Shuts down cleanly (SIGTERM): stops accepting; running statements and open transactions
    /// finish while idle sessions are told the server is shutting down (1053); once no session
    /// is left (or `limits.shutdown_timeout` passed) slaves are given the rest of the timeout to
    /// apply what the backend committed; then the node stops as [`NodeHandle::stop`] does.
    pub async fn drain(self) {
        let _ = self.shared.draining.send(true);
        self.shared.events.record(
            "drain",
            format!(
                "shutting down: {} clients to finish within {} s",
                self.shared.clients(),
                self.shared.config.limits.shutdown_timeout.as_secs()
            ),
        );
        let timeout = self.shared.config.limits.shutdown_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the count is read, so a last client leaving in between wakes it.
            let left = self.shared.no_clients.notified();
            tokio::pin!(left);
            left.as_mut().enable();
            if self.shared.clients.load(Ordering::SeqCst) == 0
                || tokio::time::timeout_at(deadline, left).await.is_err()
            {
                break;
            }
        }
        let left = self.shared.clients.load(Ordering::Relaxed);
        if left > 0 {
            warn!(left, "shutdown timeout: closing the sessions still running");
        }
        if let Some(master) = &self.shared.master {
            let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
            let behind = master.settle(rest).await;
            if !behind.is_empty() {
                warn!(?behind, "slaves had not caught up when the master stopped");
            }
        }
        info!("drained");
        self.stop().await;
    }

    /// Re-reads users from `new` (SIGHUP); see [`NodeShared::reload`].
    pub fn reload(&self, new: &NodeConfig) -> Reloaded {
        self.shared.reload(new)
    }

    /// Waits until the node's accept loop ends (it runs until stopped).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Binds the client port (and, on a replicating master, the replication port) and starts
/// serving. The backend may still be down: statements get an error until it is back.
pub async fn start(config: NodeConfig) -> std::io::Result<NodeHandle> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let backend = pool::Backend::new(&config);
    let (shutdown, rx) = watch::channel(false);
    // Every task of the node runs in this span, so each log line names the node and its role.
    let span = info_span!("node", node = %config.name, role = config.role.as_str());
    let events = Arc::new(Events::default());
    // Bound first: master and slaves tell each other where their consoles are.
    let admin_listener = match &config.admin {
        Some(admin) => Some(TcpListener::bind(admin.listen).await?),
        None => None,
    };
    let console = admin_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let mut master = None;
    let mut replica = None;
    let mut replication = None;
    let mut replication_addr = None;
    if let Some(repl) = &config.replication {
        match config.role {
            NodeRole::Master => {
                let login = crate::replication::master::BackendLogin {
                    addr: config.backend,
                    user: config.backend_user.clone(),
                    password: config.backend_password.clone(),
                };
                let m = Master::new(
                    &config.name,
                    login,
                    &repl.secret,
                    repl.ack,
                    repl.ack_timeout,
                    events.clone(),
                    console,
                );
                m.check().await.map_err(std::io::Error::other)?;
                let m = Arc::new(m);
                if let Some(listen) = repl.listen {
                    let tls = match &repl.tls {
                        Some(files) => Some(
                            crate::replication::tls::acceptor(files)
                                .map_err(std::io::Error::other)?,
                        ),
                        None => None,
                    };
                    let l = TcpListener::bind(listen).await?;
                    replication_addr = Some(l.local_addr()?);
                    replication = Some(tokio::spawn(
                        m.clone().serve(l, tls, rx.clone()).instrument(span.clone()),
                    ));
                }
                master = Some(m);
            }
            NodeRole::Slave => {
                if let Some(master_addr) = repl.master {
                    let tls = match &repl.tls {
                        Some(files) => Some(
                            crate::replication::tls::connector(files)
                                .map_err(std::io::Error::other)?,
                        ),
                        None => None,
                    };
                    let r = Replica::new(
                        &config.name,
                        addr,
                        console,
                        master_addr,
                        &repl.secret,
                        backend.pool(),
                        tls,
                        repl.feed_listen,
                        &repl.feed_host,
                        events.clone(),
                    );
                    replica = Some(r);
                }
            }
        }
    }
    let tls = match &config.tls {
        Some(files) => Some(crate::frontend::tls::acceptor(files).map_err(std::io::Error::other)?),
        None => None,
    };
    let users = RwLock::new(Arc::new(config.users.clone()));
    let shared = Arc::new(NodeShared {
        config,
        addr,
        console,
        backend,
        master,
        replica,
        tls,
        started: std::time::Instant::now(),
        clients: Default::default(),
        no_clients: tokio::sync::Notify::new(),
        draining: watch::channel(false).0,
        users,
        metrics: Metrics::default(),
        functions: StoredFunctions::default(),
        events,
        sessions: Sessions::default(),
        per_user: Mutex::default(),
        reloads_applied: AtomicU64::new(0),
        reloads_failed: AtomicU64::new(0),
    });
    let admin = match admin_listener {
        Some(listener) => Some(crate::admin::start(
            shared.clone(),
            listener,
            addr,
            rx.clone(),
            span.clone(),
        )?),
        None => None,
    };
    if let (Some(r), Some(repl)) = (&shared.replica, &shared.config.replication) {
        // The slave's replication, and the guard that keeps clients from holding it back.
        let node = shared.clone();
        let preempt = move |id: u32, why: &str| node.sessions.preempt(id, why);
        let guard = lock_wait::guard(r.clone(), repl.apply_lock_wait, preempt, rx.clone());
        let run = r.clone().run(rx.clone());
        replication = Some(tokio::spawn(
            async move {
                tokio::join!(run, guard);
            }
            .instrument(span.clone()),
        ));
    }
    let draining = shared.draining.subscribe();
    let task = tokio::spawn(accept_loop(listener, shared.clone(), rx, draining).instrument(span));
    info!(%addr, node = %shared.config.name, "node listening");
    Ok(NodeHandle {
        addr,
        replication_addr,
        admin_addr: console,
        shared,
        shutdown,
        task,
        replication,
        admin,
    })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<NodeShared>,
    mut shutdown: watch::Receiver<bool>,
    mut draining: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(shared.config.limits.max_connections));
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
            _ = draining.changed() => return,
        };
        let (socket, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(10);
                x
            }
            Err(e) => {
                // e.g. out of file descriptors: wait instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let permit = limit.clone().try_acquire_owned().ok();
        let span = info_span!("client", conn = tracing::field::Empty, %peer);
        let shared = shared.clone();
        tokio::spawn(
            async move {
                match permit {
                    Some(_permit) => serve_client(socket, peer, shared).await,
                    None => {
                        let refusal = ErrorReply::new(
                            ER_CON_COUNT_ERROR,
                            format!(
                                "Too many connections: node '{}' serves at most {} clients",
                                shared.config.name, shared.config.limits.max_connections
                            ),
                        );
                        warn!("refusing client: max_connections reached");
                        refuse_client(socket, &refusal).await
                    }
                }
            }
            .instrument(span),
        );
    }
}

/// Answers a connecting client with `refusal` instead of a greeting, and closes.
async fn refuse_client(socket: TcpStream, refusal: &ErrorReply) {
    let mut replies = Replies::new(PacketWriter::new(socket), Default::default());
    // Server-range codes only: libmariadb rejects client-range ones from a server.
    replies.set_server_codes_only(true);
    replies.error(refusal);
    let _ = replies.out.shutdown().await;
}

/// The client's backend connection, opened before the greeting (whose connection id is its
/// id), within the handshake deadline.
async fn open_backend(
    shared: &NodeShared,
    deadline: tokio::time::Instant,
) -> Result<(Wire, Greeting, OwnedSemaphorePermit), ErrorReply> {
    let addr = shared.backend.addr();
    let open = async {
        let slot = shared.backend.session_slot().await?;
        let (wire, greeting) = shared.backend.open_session().await.map_err(|e| {
            e.unreachable(&format!("Can't connect to backend MySQL server at {addr}"))
        })?;
        Ok((wire, greeting, slot))
    };
    match tokio::time::timeout_at(deadline, open).await {
        Ok(opened) => opened,
        Err(_) => Err(shared.backend.cant_connect("timed out")),
    }
}

/// Largest first packet of a connection (SSLRequest or handshake response) the node reads.
const MAX_HANDSHAKE: usize = 64 * 1024;

/// Reads exactly one packet from the raw socket: a client switching to TLS sends its TLS hello
/// right behind the SSLRequest, and those bytes must stay in the socket for the TLS layer.
async fn read_first_packet(socket: &mut TcpStream) -> std::io::Result<(Vec<u8>, u8)> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 4];
    socket.read_exact(&mut header).await?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    if len > MAX_HANDSHAKE {
        return Err(std::io::Error::other(format!(
            "first packet of {len} bytes"
        )));
    }
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).await?;
    Ok((payload, header[3]))
}

/// Runs one step of a client's handshake unless `deadline` (`limits.handshake_timeout_secs` after
/// it connected) passes first; `None` then, and the caller drops the connection.
async fn in_time<T>(deadline: tokio::time::Instant, step: impl Future<Output = T>) -> Option<T> {
    match tokio::time::timeout_at(deadline, step).await {
        Ok(done) => Some(done),
        Err(_) => {
            info!("handshake timed out: dropping the client");
            None
        }
    }
}

async fn serve_client(mut socket: TcpStream, peer: SocketAddr, shared: Arc<NodeShared>) {
    let deadline = tokio::time::Instant::now() + shared.config.limits.handshake_timeout;
    let (wire, backend_greeting, slot) = match open_backend(&shared, deadline).await {
        Ok(opened) => opened,
        Err(refusal) => {
            warn!(error = %refusal, "refusing client: no backend connection");
            return refuse_client(socket, &refusal).await;
        }
    };
    tracing::Span::current().record("conn", backend_greeting.connection_id);
    let backend = Backend {
        wire,
        greeting: backend_greeting,
        _slot: slot,
    };
    let mut offer = Offer::new(shared.tls.is_some(), &backend.greeting);
    let mut greeting = PacketWriter::new(&mut socket);
    let payload = offer.greeting();
    greeting.packet(|b| b.extend_from_slice(&payload));
    if !matches!(in_time(deadline, greeting.flush()).await, Some(Ok(_))) {
        return;
    }
    shared.metrics.sent(payload.len() + 4);
    let Some(first) = in_time(deadline, read_first_packet(&mut socket)).await else {
        return;
    };
    let (first, seq) = match first {
        Ok(p) => {
            shared.metrics.received(p.0.len() + 4);
            p
        }
        Err(e) => {
            info!(error = %e, "handshake failed");
            return;
        }
    };
    let max = shared.config.limits.max_allowed_packet;
    if !is_ssl_request(&first) {
        let (read, write) = socket.into_split();
        let (read, write) = (shared.metrics.counted(read), shared.metrics.counted(write));
        let (read, write, compress) = compress::wrap(read, write);
        let reader = PacketReader::new(read, max);
        let replies = Replies::new(PacketWriter::new(write), Default::default());
        let hello = Hello {
            response: first,
            seq,
            offer,
            peer,
            deadline,
            compress,
        };
        return login_and_serve(reader, replies, hello, backend, shared).await;
    }
    let Some(acceptor) = shared.tls.clone() else {
        info!("client asked for TLS, which this node does not offer");
        return;
    };
    let Some(accepted) = in_time(deadline, acceptor.accept(shared.metrics.counted(socket))).await
    else {
        return;
    };
    let stream = match accepted {
        Ok(s) => s,
        Err(e) => {
            info!(error = %e, "TLS handshake failed");
            return;
        }
    };
    offer.tls = true;
    let (read, write) = tokio::io::split(stream);
    let (read, write, compress) = compress::wrap(read, write);
    let mut reader = PacketReader::new(read, max);
    let replies = Replies::new(PacketWriter::new(write), Default::default());
    let Some(read) = in_time(deadline, reader.read(seq.wrapping_add(1))).await else {
        return;
    };
    let (response, seq) = match read {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => {
            info!(error = %e, "handshake failed after TLS");
            return;
        }
    };
    let hello = Hello {
        response,
        seq,
        offer,
        peer,
        deadline,
        compress,
    };
    login_and_serve(reader, replies, hello, backend, shared).await;
}

/// A client's backend connection, opened before its greeting.
struct Backend {
    wire: Wire,
    greeting: Greeting,
    /// Its share of `limits.backend_pool_size`.
    _slot: OwnedSemaphorePermit,
}

/// A client's handshake response and what it answers.
struct Hello {
    response: Vec<u8>,
    seq: u8,
    offer: Offer,
    peer: SocketAddr,
    /// When the handshake must be over.
    deadline: tokio::time::Instant,
    /// Turns compression on once the login is answered.
    compress: Switch,
}

/// Authenticates the handshake response and, once logged in, serves the session.
async fn login_and_serve<R, W>(
    mut reader: PacketReader<R>,
    mut replies: Replies<W>,
    hello: Hello,
    backend: Backend,
    shared: Arc<NodeShared>,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let Hello {
        response,
        seq,
        offer,
        peer,
        deadline,
        compress,
    } = hello;
    let users = shared.users();
    let authenticated = authenticate(
        &mut reader,
        &mut replies,
        response,
        seq,
        &offer,
        &users,
        peer.ip(),
    );
    let Some(authenticated) = in_time(deadline, authenticated).await else {
        return;
    };
    let login = match authenticated {
        Ok(login) => login,
        Err(HandshakeError::Denied(e)) => {
            info!(error = %e, "authentication failed");
            return;
        }
        Err(e) => {
            info!(error = %e, "handshake failed");
            return;
        }
    };
    let Some(_slot) = user_slot(&shared, &login.user) else {
        let limit = shared.config.limits.max_connections_per_user;
        warn!(user = %login.user, limit, "refusing client: max_connections_per_user reached");
        replies.out.set_seq(login.next_seq);
        replies.error(&ErrorReply::new(
            ER_TOO_MANY_USER_CONNECTIONS,
            format!(
                "User {} already has more than 'max_user_connections' active connections: \
                 node '{}' allows {limit} per user (limits.max_connections_per_user)",
                login.user, shared.config.name
            ),
        ));
        let _ = replies.out.shutdown().await;
        return;
    };
    info!(user = %login.user, role = login.role.as_str(), tls = offer.tls, "client connected");
    shared.clients.fetch_add(1, Ordering::SeqCst);
    shared.metrics.connection();
    let Backend {
        wire,
        greeting,
        _slot,
    } = backend;
    let end = Session::new(shared.clone(), reader, replies, login, wire, greeting)
        .run(compress)
        .await;
    if shared.clients.fetch_sub(1, Ordering::SeqCst) == 1 {
        shared.no_clients.notify_waiters();
    }
    info!(?end, "client disconnected");
}
