//! A replicating slave sends writes to the master node, so there is one order of writes, then
//! waits until its backend has applied the master's binlog position after the write, so the
//! same client reads its own write here.
//!
//! The forward connection carries the client's session: the statements that set session state
//! on the slave (user variables, time zone, sql_mode, character sets…) run there too. An explicit
//! transaction that starts on a slave runs on the master as a whole (BEGIN to COMMIT), reads
//! included, so it sees its own uncommitted writes and takes its locks where it writes.

use std::net::SocketAddr;
use std::time::Duration;

use mysql_common::constants::StatusFlags;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use super::{End, Session, credentials};
use crate::backend::relay::{RelayError, Reply, relay};
use crate::backend::wire::{Wire, WireError};
use crate::error::{ER_UNKNOWN_ERROR, ErrorReply};
use crate::replication::gtid::Position;
use crate::sql::class::StatementClass;
use crate::sql::classify::Classified;
use crate::sql::diagnostics::assigns_user_variable;
use crate::sql::policy::{Decision, decide};
use crate::sql::quote_ident;

/// How long a forwarded write waits for this slave to apply it before answering anyway.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// Position of the `gtid` column in `SHOW MYRELAY STATUS`.
const GTID_COLUMN: usize = 8;

/// A slave session's connection to the master node, negotiated as the client's own, so that
/// the master node's replies are relayed as they are.
pub(super) struct Forward {
    wire: Wire,
    /// Status bits of the last reply (is a transaction open there?).
    status: u16,
    /// The database selected on `conn`.
    db: Option<String>,
}

/// A slave session's route to the master for writes: the forward connection once a write
/// needed it, and what it must carry of the client's session.
#[derive(Default)]
pub(super) struct Forwarding {
    conn: Option<Forward>,
    /// True when the last command was forwarded to the master, which holds its warnings.
    forwarded: bool,
    /// The statements that set session state (`SET`, `SELECT @v := …`), replayed on the
    /// forward connection when it opens, so forwarded writes run in the same session state.
    setup: Vec<String>,
}

impl Forwarding {
    /// True while a transaction is open on the master.
    pub(super) fn in_transaction(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|f| f.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0)
    }

    /// Whether the last command was forwarded; the next one asks afresh.
    pub(super) fn take_forwarded(&mut self) -> bool {
        std::mem::take(&mut self.forwarded)
    }

    /// The client's session started over: closing the forward connection rolls back what is
    /// open there, and nothing is left to replay.
    pub(super) fn reset(&mut self) {
        self.conn = None;
        self.setup.clear();
    }

    /// Keeps a statement that set session state (it ran here) to replay on a forward
    /// connection yet to open, and runs it on the one open now.
    async fn mirror(&mut self, text: &str) {
        if self.setup.len() < MAX_SESSION_SETUP {
            self.setup.push(text.to_string());
        } else {
            warn!(
                kept = MAX_SESSION_SETUP,
                "too many session statements to replay on a new forward connection; later ones \
                 reach the master only while it is connected"
            );
        }
        if let Some(fwd) = self.conn.as_mut()
            && let Err(e) = fwd.wire.query(text).await
        {
            warn!(error = %e, "could not mirror session state to the master; reconnecting");
            self.conn = None;
        }
    }
}

fn open_transaction(status: u16) -> bool {
    status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0
        || status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() == 0
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// True when this packet goes to the master: a forwarded write, the start of an explicit
    /// transaction on a following slave, or anything inside one.
    pub(super) fn forwards(&self, classified: &Classified) -> bool {
        if self.node.replica.is_none() {
            return false;
        }
        if self
            .forwarding
            .conn
            .as_ref()
            .is_some_and(|f| open_transaction(f.status))
        {
            return true;
        }
        let Some(decisive) = classified.decisive() else {
            return false;
        };
        // Statements that open a transaction move the session to the master until it ends. An
        // XA transaction lives there from XA START to its XA COMMIT or ROLLBACK, also once
        // prepared (when the session no longer shows it open).
        let opens_transaction = decisive.class == StatementClass::Transaction
            && (matches!(decisive.verb.as_str(), "BEGIN" | "START TRANSACTION" | "XA")
                || classified
                    .statements
                    .iter()
                    .any(|s| s.verb == "SET" && s.class == StatementClass::Transaction));
        let grant = self.current_grant();
        decide(&self.policy_context(&grant), decisive) == Decision::Forward || opens_transaction
    }

    async fn master_conn(&mut self) -> Result<(), ErrorReply> {
        if self.forwarding.conn.is_some() {
            return Ok(());
        }
        let config = &self.node.config;
        let addr: SocketAddr = config
            .master
            .as_deref()
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| ErrorReply::new(ER_UNKNOWN_ERROR, "this slave has no master address"))?;
        let password = self
            .node
            .users()
            .get(&self.login.user)
            .map(|u| u.password.clone())
            .unwrap_or_default();
        let what = format!("Can't forward the write to the master at {addr}");
        let unreachable = |e: WireError| e.unreachable(&what);
        let (mut wire, greeting) = Wire::open(addr).await.map_err(unreachable)?;
        let creds = credentials(
            &self.login,
            &self.login.user,
            &password,
            self.backend.db.as_deref(),
        );
        wire.login(&greeting, &creds).await.map_err(unreachable)?;
        for setup in &self.forwarding.setup {
            wire.query(setup).await.map_err(unreachable)?;
        }
        self.forwarding.conn = Some(Forward {
            wire,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(),
            db: self.backend.db.clone(),
        });
        Ok(())
    }

    /// Relays the packet through the master node, then waits for this slave to catch up.
    pub(super) async fn forward(&mut self, sql: &[u8]) -> Result<(), End> {
        if let Err(e) = self.master_conn().await {
            self.client.replies.error(&e);
            return Ok(());
        }
        let Some(fwd) = self.forwarding.conn.as_mut() else {
            return Ok(());
        };
        if fwd.db != self.backend.db
            && let Some(db) = &self.backend.db
        {
            if let Err(e) = fwd.wire.query(&format!("USE {}", quote_ident(db))).await {
                self.client.replies.error(&e.reply());
                self.forwarding.conn = None;
                return Ok(());
            }
            fwd.db = self.backend.db.clone();
        }
        self.forwarding.forwarded = true;
        let sent = fwd.wire.command(0x03, sql).await;
        let outcome = match sent {
            Err(e) => Some(Err(RelayError::Backend(e))),
            Ok(()) => tokio::select! {
                r = relay(&mut fwd.wire, &mut self.client.replies.out, Reply::Results { cursor: false }, &mut self.client.infile) => Some(r),
                () = self.client.reader.closed() => None,
            },
        };
        match outcome {
            Some(Ok(relayed)) => {
                if let Some(status) = relayed.status {
                    fwd.status = status;
                }
            }
            Some(Err(RelayError::Backend(e))) => {
                // The client may have part of a reply: it cannot go on reading this one.
                warn!(error = %e, "lost the connection to the master");
                self.forwarding.conn = None;
                self.client.replies.error(&e.reply());
                return Err(End::BackendGone);
            }
            Some(Err(RelayError::Client(_))) | None => {
                info!("client left during a forwarded statement");
                self.forwarding.conn = None; // closing it makes the master abandon the statement
                return Err(End::ClientGone);
            }
        }
        if open_transaction(fwd.status) {
            return Ok(()); // applied here once the transaction commits
        }
        let position = match fwd.wire.query("SHOW MYRELAY STATUS").await {
            Ok(rows) => rows
                .into_iter()
                .next()
                .and_then(|mut row| row.get_mut(GTID_COLUMN).and_then(Option::take)),
            Err(_) => None,
        };
        let Some(target) = position.as_deref().and_then(|p| Position::parse(p).ok()) else {
            warn!(
                "the master did not say its position after a forwarded write; reads may be stale"
            );
            return Ok(());
        };
        if let Some(replica) = &self.node.replica
            && !replica.wait_applied(&target, READ_YOUR_WRITES).await
        {
            warn!(
                %target,
                "forwarded write not applied here in time; reads may be stale"
            );
        } else {
            debug!(%target, "forwarded write applied locally");
        }
        Ok(())
    }

    /// On a slave, a statement that set session state (it ran here) runs on the forward
    /// connection too, or is kept to run there when it opens.
    pub(super) async fn mirror_session(&mut self, text: &str, classified: &Classified) {
        if self.node.replica.is_some()
            && (classified.class() == StatementClass::Session || assigns_user_variable(text))
        {
            self.forwarding.mirror(text).await;
        }
    }
}

/// Session statements a slave keeps for a forward connection not yet opened.
const MAX_SESSION_SETUP: usize = 4096;
