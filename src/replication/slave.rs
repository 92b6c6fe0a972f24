//! The slave's side: follows the master's log and applies every entry exactly once.
//!
//! It connects (with backoff), proves it knows the cluster secret, asks for the entries after the
//! LSN its backend has applied, applies them in order, and reports progress with acks and
//! heartbeats. An entry that fails stops the applier with the error in status until an operator
//! acts: skipping it silently would let the slave diverge.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::{Conn, Pool};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::apply;
use super::change::Change;
use super::channel::{self, Message};
use super::master::{DEAD_AFTER, HEARTBEAT, unix_ms};

/// What a slave shows in status.
#[derive(Debug, Clone, Default)]
pub struct SlaveStatus {
    /// Linked to the master right now.
    pub connected: bool,
    /// Last LSN applied on this node's backend.
    pub applied_lsn: u64,
    /// Last LSN the master reported.
    pub master_lsn: u64,
    /// Why the applier stopped, if it did.
    pub stopped: Option<String>,
}

/// Follows a master and applies its log.
pub struct Replica {
    name: String,
    master: SocketAddr,
    secret: Vec<u8>,
    pool: Pool,
    /// TLS to the master, when the channel is configured with it.
    tls: Option<tokio_rustls::TlsConnector>,
    status: Mutex<SlaveStatus>,
    applied: watch::Sender<u64>,
}

impl Replica {
    /// A replica of node `name` applying to `pool`'s backend; `tls` opens TLS to the master
    /// before the channel's authentication.
    pub fn new(
        name: &str,
        master: SocketAddr,
        secret: &str,
        pool: Pool,
        tls: Option<tokio_rustls::TlsConnector>,
    ) -> Arc<Replica> {
        Arc::new(Replica {
            name: name.to_string(),
            master,
            secret: secret.as_bytes().to_vec(),
            pool,
            tls,
            status: Mutex::new(SlaveStatus::default()),
            applied: watch::channel(0).0,
        })
    }

    /// Current status.
    pub fn status(&self) -> SlaveStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, f: impl FnOnce(&mut SlaveStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// Waits until the backend has applied `lsn` (read-your-writes), up to `timeout`.
    pub async fn wait_applied(&self, lsn: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= lsn))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Runs until `shutdown` fires: connect, follow, reconnect with backoff.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let outcome = tokio::select! {
                r = self.follow() => r,
                _ = shutdown.changed() => return,
            };
            self.set(|s| s.connected = false);
            match outcome {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(Stop::Retry(why)) => {
                    warn!(master = %self.master, reason = %why, "replication link down; retrying");
                }
                Err(Stop::Halt(why)) => {
                    warn!(reason = %why, "applier stopped; an operator must act");
                    self.set(|s| s.stopped = Some(why));
                    let _ = shutdown.changed().await;
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn follow(&self) -> Result<(), Stop> {
        let mut conn: Conn = self.pool.get_conn().await.map_err(retry)?;
        apply::prepare(&mut conn).await.map_err(retry)?;
        let applied = apply::applied_lsn(&mut conn).await.map_err(retry)?;
        self.applied.send_replace(applied);
        let socket = TcpStream::connect(self.master).await.map_err(retry)?;
        let _ = socket.set_nodelay(true);
        match &self.tls {
            None => self.follow_on(socket, conn, applied).await,
            Some(connector) => {
                let tls = tokio::time::timeout(
                    DEAD_AFTER,
                    super::tls::connect(connector, self.master, socket),
                )
                .await
                .map_err(|_| Stop::Retry("TLS handshake timed out".into()))?
                .map_err(|e| Stop::Retry(format!("TLS: {e}")))?;
                self.follow_on(tls, conn, applied).await
            }
        }
    }

    /// Authenticates on `socket` (TCP, or TLS over it), subscribes after `applied` and applies
    /// what the master streams until the link fails.
    async fn follow_on<S>(
        &self,
        mut socket: S,
        mut conn: Conn,
        mut applied: u64,
    ) -> Result<(), Stop>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut context: apply::AppliedContext = None;
        let master_lsn =
            channel::connect_to_master(&mut socket, &self.secret, &self.name, DEAD_AFTER)
                .await
                .map_err(|e| match e {
                    channel::ChannelError::AuthFailed(why) => {
                        Stop::Retry(format!("authentication: {why}"))
                    }
                    other => retry(other),
                })?;
        channel::write_message(&mut socket, &Message::Subscribe { after_lsn: applied })
            .await
            .map_err(retry)?;
        info!(master = %self.master, applied, master_lsn, "following the master");
        self.set(|s| {
            s.connected = true;
            s.applied_lsn = applied;
            s.master_lsn = master_lsn;
        });
        let (mut reader, mut writer) = tokio::io::split(socket);
        // Messages are read ahead into a queue, so that whatever arrived while an entry was being
        // applied is applied next as one run (see `apply::apply_all`).
        let (queue, mut incoming) = mpsc::channel(RUN_MAX);
        let read_ahead = tokio::spawn(async move {
            loop {
                let m = match tokio::time::timeout(DEAD_AFTER, channel::read_message(&mut reader))
                    .await
                {
                    Ok(Ok(m)) => Ok(m),
                    Ok(Err(e)) => Err(retry(e)),
                    Err(_) => Err(Stop::Retry("master silent".into())),
                };
                let failed = m.is_err();
                if queue.send(m).await.is_err() || failed {
                    return;
                }
            }
        });
        let _stop_reading = AbortOnDrop(read_ahead);
        let mut beat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                m = incoming.recv() => {
                    let mut next = Some(m.ok_or_else(|| Stop::Retry("link closed".into()))??);
                    let mut run = Vec::new();
                    while let Some(m) = next.take() {
                        match m {
                            // At or below what is applied: resent after a reconnect.
                            Message::Entry { lsn, payload } if lsn > applied + run.len() as u64 => {
                                let expected = applied + run.len() as u64 + 1;
                                if lsn != expected {
                                    return Err(Stop::Retry(format!(
                                        "gap: got LSN {lsn} after {}",
                                        expected - 1
                                    )));
                                }
                                run.push((lsn, Change::decode(&payload).map_err(Stop::Halt)?));
                            }
                            Message::Heartbeat { lsn, .. } => self.set(|s| s.master_lsn = lsn),
                            Message::Error { message } => return Err(Stop::Retry(message)),
                            _ => {}
                        }
                        if run.len() < RUN_MAX {
                            next = incoming.try_recv().ok().transpose()?;
                        }
                    }
                    let Some(&(last, _)) = run.last() else { continue };
                    apply::apply_all(&mut conn, &run, &mut context).await.map_err(|(lsn, e)| match e {
                        mysql_async::Error::Server(e) => Stop::Halt(format!("LSN {lsn} failed: {e}")),
                        other => retry(other),
                    })?;
                    applied = last;
                    self.applied.send_replace(applied);
                    self.set(|s| {
                        s.applied_lsn = applied;
                        s.master_lsn = s.master_lsn.max(last);
                    });
                    channel::write_message(&mut writer, &Message::Ack { applied_lsn: applied })
                        .await
                        .map_err(retry)?;
                }
                _ = beat.tick() => {
                    let m = Message::Heartbeat { lsn: applied, unix_ms: unix_ms() };
                    channel::write_message(&mut writer, &m).await.map_err(retry)?;
                }
            }
        }
    }
}

/// Entries applied at most as one run (and read ahead at most).
const RUN_MAX: usize = 256;

/// Stops the read-ahead task when the link is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Stop {
    /// A link or backend problem: reconnect.
    Retry(String),
    /// An entry cannot be applied: stop until an operator acts.
    Halt(String),
}

fn retry(e: impl std::fmt::Display) -> Stop {
    Stop::Retry(e.to_string())
}
