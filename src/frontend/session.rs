//! One client connection after the handshake: reads commands, applies the policy, relays to the
//! backend connection the session owns.
//!
//! The session's backend connection is opened when the client connects (its id is the client's
//! connection id) and logs in with what the client negotiated, so the backend's replies are
//! relayed as they are (`backend/relay.rs`). The session's state (current database, variables,
//! transaction, temporary tables, locks, prepared statements) lives on that connection alone; a
//! session whose backend connection is lost ends, as it would on the server itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mysql_async::prelude::Queryable;
use mysql_common::collations::{Collation, CollationId};
use mysql_common::constants::{CapabilityFlags, StatusFlags};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use super::command::Command;
use super::compress::Switch;
use super::handshake::{HandshakeError, Login, change_user};
use super::reply::Replies;
use crate::backend::relay::{RelayError, Relayed, Reply, relay};
use crate::backend::wire::{Credentials, Greeting, Wire, WireError, ok_status};
use crate::config::{Grant, UserRole};
use crate::error::{
    ER_CLIENT_INTERACTION_TIMEOUT, ER_CONNECTION_KILLED, ER_NET_PACKET_TOO_LARGE, ER_PARSE_ERROR,
    ER_SERVER_SHUTDOWN, ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_UNKNOWN_COM_ERROR, ErrorReply,
};
use crate::metrics::Outcome;
use crate::node::{NodeShared, Preemption};
use crate::packet::{PacketError, PacketReader};
use crate::sql::class::StatementClass;
use crate::sql::classify::{Classified, classify};
use crate::sql::client_charset::UNSAFE_CLIENT_CHARSETS;
use crate::sql::diagnostics::reads_last_statement;
use crate::sql::fast_read::plain_select;
use crate::sql::kill::kill_target;
use crate::sql::local_infile::is_local_infile;
use crate::sql::policy::{Context, Decision, database_refusal, decide};
use crate::sql::prepare;

/// The collation of a backend connection whose client asked for a charset the node does not
/// serve (utf8mb4_general_ci).
const DEFAULT_COLLATION: u8 = 45;

mod forward;
mod hidden;
mod local_infile;
mod ops;
mod prepared_sql;
mod routines;
mod statements;
mod status;

use status::is_status_query;

/// Resolves after `idle` (never when `None`): the idle timeout of a session between commands.
async fn idle_for(idle: Option<Duration>) {
    match idle {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Why a session ended.
#[derive(Debug)]
pub enum End {
    /// COM_QUIT or a clean EOF.
    Quit,
    /// The client went away (or its socket failed) in the middle of something.
    ClientGone,
    /// The client broke the protocol; the connection was closed.
    Protocol(PacketError),
    /// The backend connection was lost; the client was told.
    BackendGone,
}

/// The capabilities a session's backend connection asks for: what the client negotiated with
/// the node, but for what the node does itself (TLS, compression, connect attributes) and with
/// what the node's own login needs. LOCAL INFILE is always on: the node supplies the file it
/// took from the client, when its policy allows the statement.
pub fn backend_caps(client: CapabilityFlags) -> CapabilityFlags {
    let node_side = CapabilityFlags::CLIENT_SSL
        | CapabilityFlags::CLIENT_COMPRESS
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB;
    (client - node_side)
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_LOCAL_FILES
}

/// The collation a backend connection uses for a client that asked for `collation`: a charset
/// the node cannot lex safely is treated as the server treats one it does not support, the
/// session keeps the default (see UNSAFE_CLIENT_CHARSETS).
fn backend_collation(collation: u8) -> u8 {
    let known = Collation::from(CollationId::from(u16::from(collation)));
    if known.id() == CollationId::UNKNOWN_COLLATION_ID
        || UNSAFE_CLIENT_CHARSETS.contains(&known.charset())
    {
        if known.id() != CollationId::UNKNOWN_COLLATION_ID {
            warn!(
                charset = known.charset(),
                "client asked for a character set the node does not serve; keeping utf8mb4"
            );
        }
        return DEFAULT_COLLATION;
    }
    collation
}

/// How a connection of `login`'s session logs in as `user` (the backend account, or on a
/// slave's forward connection the client's own): negotiating what the client negotiated, into
/// `db`.
fn credentials<'a>(
    login: &Login,
    user: &'a str,
    password: &'a str,
    db: Option<&'a str>,
) -> Credentials<'a> {
    Credentials {
        user,
        password,
        caps: backend_caps(login.caps),
        mariadb_caps: login.mariadb_caps,
        collation: backend_collation(login.collation),
        db,
    }
}

/// A logged-in client: who it is, its two connections, and what the node keeps for it.
pub struct Session<R, W> {
    node: Arc<NodeShared>,
    login: Login,
    client: Client<R, W>,
    backend: BackendSession,
    /// A slave's route to the master for writes (unused on a master).
    forwarding: forward::Forwarding,
    statements: statements::Statements,
    /// Set when the statement under way was refused (for the counters).
    refused: bool,
    /// Tells the session when the node kills its backend connection.
    preemption: Arc<Preemption>,
}

/// The client's end of the connection: what it sends, how it is answered, and the file it
/// handed over for the statement under way.
struct Client<R, W> {
    reader: PacketReader<R>,
    replies: Replies<W>,
    /// Sequence id of the current command's first reply.
    reply_seq: u8,
    /// The file the client sent for the `LOAD DATA LOCAL INFILE` about to run.
    infile: Option<Bytes>,
}

/// The client's own backend connection and what the node knows of the session on it.
struct BackendSession {
    wire: Wire,
    /// Its greeting, whose scramble COM_CHANGE_USER answers again.
    greeting: Greeting,
    /// The current database, as the backend's replies left it.
    db: Option<String>,
    /// Status bits of the last reply (is a transaction open?).
    status: u16,
    /// `@@sql_mode` and `@@character_set_client` of the session, once asked.
    context: Option<(String, String)>,
}

impl<R, W: AsyncWrite + Unpin> Client<R, W> {
    /// Tells the client its backend connection is lost; the session ends.
    fn backend_lost(&mut self, err: &WireError) -> Result<(), End> {
        warn!(error = %err, "backend connection lost");
        self.replies.error(&err.reply());
        Err(End::BackendGone)
    }
}

impl BackendSession {
    /// True while the connection holds an open transaction (explicit, or autocommit off).
    fn in_transaction(&self) -> bool {
        self.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0
            || self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() == 0
    }

    /// The backend started the session over (COM_RESET_CONNECTION, a new user).
    fn reset(&mut self) {
        self.context = None;
        self.db = None;
        self.status = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
    }

    /// Remembers the database a successful packet switched to (`USE db`).
    fn track_use(&mut self, classified: &Classified) {
        if let Some(db) = classified
            .statements
            .iter()
            .rev()
            .find_map(|s| s.use_database.clone())
        {
            self.db = Some(db);
        }
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// A session for `login`, whose handshake has been read but not yet answered, on the
    /// backend connection `backend` that greeted with `greeting`.
    pub fn new(
        node: Arc<NodeShared>,
        reader: PacketReader<R>,
        replies: Replies<W>,
        login: Login,
        backend: Wire,
        greeting: Greeting,
    ) -> Self {
        Session {
            node,
            client: Client {
                reader,
                replies,
                reply_seq: 1,
                infile: None,
            },
            backend: BackendSession {
                wire: backend,
                greeting,
                db: login.db.clone(),
                status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(),
                context: None,
            },
            login,
            forwarding: Default::default(),
            statements: Default::default(),
            refused: false,
            preemption: Arc::default(),
        }
    }

    /// Logs the backend connection in (selecting the requested database) and answers the
    /// client with the backend's OK or error; then serves commands until the client leaves.
    /// `compress` is turned on after that OK when the client negotiated compression.
    pub async fn run(mut self, compress: Switch) -> End {
        self.client.replies.out.set_seq(self.login.next_seq);
        let node = self.node.clone();
        let db = self.backend.db.clone();
        // A database the user may not touch is refused at login, as a server refuses it.
        let refusal = db.as_deref().and_then(|db| self.selection_refusal(db));
        if let Some(refusal) = refusal {
            self.client.replies.error(&refusal);
            let _ = self.client.replies.out.shutdown().await;
            return End::Quit;
        }
        let config = &node.config;
        let creds = credentials(
            &self.login,
            &config.backend_user,
            &config.backend_password,
            db.as_deref(),
        );
        let login = self
            .backend
            .wire
            .login(&self.backend.greeting, &creds)
            .await;
        match login {
            Ok(ok) => {
                self.backend.status = ok_status(&ok).unwrap_or(self.backend.status);
                self.client.replies.out.packet(|b| b.extend_from_slice(&ok));
            }
            Err(e) => {
                warn!(error = %e, "backend login failed");
                self.client.replies.error(&e.reply());
                let _ = self.client.replies.out.shutdown().await;
                return End::Quit;
            }
        }
        if self.client.replies.out.flush().await.is_err() {
            return End::ClientGone;
        }
        if self.login.caps.contains(CapabilityFlags::CLIENT_COMPRESS) {
            compress.enable();
        }
        let connection_id = self.backend.wire.connection_id();
        self.node
            .sessions
            .add(connection_id, &self.login.user, self.preemption.clone());
        let end = self.serve().await;
        self.node.sessions.remove(connection_id);
        if let End::Protocol(ref e) = end {
            warn!(error = %e, "closing connection: protocol violation");
        }
        let _ = self.client.replies.out.shutdown().await;
        end
    }

    async fn serve(&mut self) -> End {
        loop {
            // A clean shutdown ends a session between statements, never inside a transaction.
            let node = self.node.clone();
            let busy = self.holds_transaction();
            let idle = self.node.config.limits.idle_timeout;
            let preemption = self.preemption.clone();
            let next = tokio::select! {
                read = self.client.reader.read(0) => read,
                why = preemption.preempted() => {
                    // The answer to the client's next command, which is awaited (as long as the
                    // client may stay idle, and not past a shutdown) so that closing does not
                    // reset the connection before the client read why.
                    info!(reason = %why, "backend connection killed between statements");
                    self.client.replies.out.set_seq(1);
                    self.client.replies.error(&self.preempted(&why));
                    let _ = self.client.replies.out.flush().await;
                    tokio::select! {
                        _ = self.client.reader.read(0) => {}
                        () = idle_for(idle) => {}
                        () = node.drained() => {}
                    }
                    return End::BackendGone;
                }
                () = idle_for(idle) => {
                    // As MySQL's wait_timeout: inside a transaction too, which then rolls back,
                    // so an abandoned client cannot hold its locks and backend connection.
                    info!(idle_secs = idle.map_or(0, |d| d.as_secs()), "disconnecting idle client");
                    self.client.replies.out.set_seq(1);
                    self.client.replies.error(&ErrorReply::new(
                        ER_CLIENT_INTERACTION_TIMEOUT,
                        format!(
                            "The client was disconnected by the server because of inactivity: node '{}' \
                             closes connections idle for {} s (limits.idle_timeout_secs)",
                            node.config.name,
                            idle.map_or(0, |d| d.as_secs())
                        ),
                    ));
                    let _ = self.client.replies.out.flush().await;
                    return End::Quit;
                }
                () = node.drained(), if !busy => {
                    // Queued as the answer to the client's next command (sequence id 1), which
                    // it then reads instead of a bare disconnect; a moment is left for that
                    // command to arrive, so that closing does not reset the connection first.
                    self.client.replies.out.set_seq(1);
                    self.client.replies.error(&ErrorReply::new(
                        ER_SERVER_SHUTDOWN,
                        format!("Server shutdown in progress: node '{}' is stopping", node.config.name),
                    ));
                    let _ = self.client.replies.out.flush().await;
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.client.reader.read(0)).await;
                    return End::Quit;
                }
            };
            let (packet, seq) = match next {
                Ok(Some(p)) => p,
                Ok(None) => return End::Quit,
                Err(PacketError::TooLarge { size, limit }) => {
                    // Same code and text as MySQL, then close: the rest of the packet is unread.
                    self.client.replies.out.set_seq(0);
                    self.client.replies.error(&ErrorReply::new(
                        ER_NET_PACKET_TOO_LARGE,
                        format!(
                            "Got a packet bigger than 'max_allowed_packet' bytes ({size} > {limit})"
                        ),
                    ));
                    let _ = self.client.replies.out.flush().await;
                    return End::Protocol(PacketError::TooLarge { size, limit });
                }
                Err(PacketError::Io(_)) => return End::ClientGone,
                Err(e) => return End::Protocol(e),
            };
            self.client.reply_seq = seq.wrapping_add(1);
            self.client.replies.out.set_seq(self.client.reply_seq);
            if let Some(end) = self.removed_by_reload().await {
                return end;
            }
            let Some(command) = Command::parse(&packet) else {
                return End::Protocol(PacketError::Truncated);
            };
            if let Err(end) = self.handle(command, &packet).await {
                if matches!(end, End::BackendGone) {
                    let _ = self.client.replies.out.flush().await;
                }
                return end;
            }
            if command.unanswered() {
                continue;
            }
            if self.client.replies.out.flush().await.is_err() {
                return End::ClientGone;
            }
        }
    }

    /// Serves one command (`packet` as the client sent it).
    async fn handle(&mut self, command: Command<'_>, packet: &[u8]) -> Result<(), End> {
        // After a write forwarded to the master, questions about it go there too; the
        // node's own status query (a slave asks it after each forwarded write) does not count.
        let status_query = matches!(command, Command::Query(body) if is_status_query(body));
        let after_forward = !status_query && self.forwarding.take_forwarded();
        self.client.infile = None;
        match command {
            Command::Quit => return Err(End::Quit),
            Command::Query(_) if status_query => self.show_status().await,
            Command::Query(body) => {
                if after_forward && reads_last_statement(&String::from_utf8_lossy(body)) {
                    self.forward(body).await?;
                } else {
                    self.query(body).await?;
                }
            }
            Command::ProcessKill(id) => {
                self.query(format!("KILL CONNECTION {id}").as_bytes())
                    .await?;
            }
            Command::InitDb(name) => {
                let db = String::from_utf8_lossy(name);
                let refusal = self.selection_refusal(&db);
                if let Some(refusal) = refusal {
                    self.refuse(
                        &format!("COM_INIT_DB {db}"),
                        &Classified::default(),
                        &refusal,
                    );
                    return Ok(());
                }
                let relayed = self.pass(packet, Reply::Single).await?;
                if !relayed.failed {
                    self.backend.db = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            Command::FieldList => {
                self.pass(packet, Reply::FieldList).await?;
            }
            Command::Statistics | Command::Ping => {
                self.pass(packet, Reply::Single).await?;
            }
            Command::Debug => {
                if self.current_role() == UserRole::Admin {
                    self.pass(packet, Reply::Single).await?;
                } else {
                    self.client.replies.error(&ErrorReply::new(
                        ER_SPECIFIC_ACCESS_DENIED_ERROR,
                        "Access denied; you need (at least one of) the SUPER privilege(s) for \
                         this operation: COM_DEBUG is for admin users of this node",
                    ));
                }
            }
            Command::SetOption(option) => {
                let relayed = self.pass(packet, Reply::Single).await?;
                if !relayed.failed {
                    let mut caps = self.client.replies.caps();
                    caps.set(CapabilityFlags::CLIENT_MULTI_STATEMENTS, option == 0);
                    self.client.replies.set_caps(caps);
                }
            }
            Command::StmtPrepare(sql) => self.prepare(packet, sql).await?,
            Command::StmtExecute { id, flags, body } => {
                self.execute_statement(packet, id, flags, body).await?
            }
            Command::StmtSendLongData { id, param, chunk } => {
                self.send_long_data(packet, id, param, chunk).await?
            }
            Command::StmtClose(id) => self.close_statement(packet, id).await?,
            Command::StmtReset(id) => self.reset_statement(packet, id).await?,
            Command::StmtFetch(_) => {
                self.pass(packet, Reply::Rows).await?;
            }
            Command::ChangeUser(body) => self.change_user(body).await?,
            Command::ResetConnection => {
                let relayed = self.pass(packet, Reply::Single).await?;
                if !relayed.failed {
                    self.reset();
                }
            }
            Command::Unknown(other) => self.client.replies.error(&ErrorReply::new(
                ER_UNKNOWN_COM_ERROR,
                format!("Unknown command 0x{other:02x}: myrelay does not support it yet"),
            )),
        }
        Ok(())
    }

    /// COM_RESET_CONNECTION (or a new user): the session starts over as if just logged in, as
    /// its backend connection did. An open forwarded transaction is rolled back with the
    /// forward connection.
    fn reset(&mut self) {
        self.forwarding.reset();
        self.statements.clear();
        self.backend.reset();
    }

    /// COM_CHANGE_USER: the user who proves their password gets the session, which the backend
    /// starts over; a refused attempt leaves the session as it was, as MySQL does.
    async fn change_user(&mut self, body: &[u8]) -> Result<(), End> {
        let users = self.node.users();
        let login = match change_user(
            &mut self.client.reader,
            &mut self.client.replies,
            body,
            self.client.reply_seq,
            &self.login,
            &users,
        )
        .await
        {
            Ok(login) => login,
            Err(HandshakeError::Denied(e)) => {
                info!(error = %e, "change user refused; the session stays");
                return Ok(());
            }
            Err(HandshakeError::Packet(PacketError::Io(_)) | HandshakeError::Gone) => {
                return Err(End::ClientGone);
            }
            Err(HandshakeError::Packet(e)) => return Err(End::Protocol(e)),
            Err(e) => {
                warn!(error = %e, "bad COM_CHANGE_USER");
                return Err(End::Protocol(PacketError::Truncated));
            }
        };
        let node = self.node.clone();
        let config = &node.config;
        let creds = credentials(
            &login,
            &config.backend_user,
            &config.backend_password,
            login.db.as_deref(),
        );
        self.client.replies.out.set_seq(login.next_seq);
        match self
            .backend
            .wire
            .change_user(&self.backend.greeting, &creds)
            .await
        {
            Ok(ok) => {
                info!(user = %login.user, role = login.role.as_str(), "changed user");
                self.reset();
                self.backend.status = ok_status(&ok).unwrap_or(self.backend.status);
                self.backend.db = login.db.clone();
                self.node.sessions.add(
                    self.backend.wire.connection_id(),
                    &login.user,
                    self.preemption.clone(),
                );
                self.login = login;
                self.client.replies.out.packet(|b| b.extend_from_slice(&ok));
                Ok(())
            }
            Err(e @ WireError::Server { .. }) => {
                self.client.replies.error(&e.reply());
                Ok(())
            }
            Err(e) => self.client.backend_lost(&e),
        }
    }

    /// Sends `packet` (a command as the client sent it) to the backend and relays the reply.
    async fn pass(&mut self, packet: &[u8], reply: Reply<'_>) -> Result<Relayed, End> {
        let Some((&command, body)) = packet.split_first() else {
            return Ok(Relayed::default());
        };
        self.send_and_relay(command, body, reply).await
    }

    /// Sends a command to the backend and relays its reply, while watching the client: a client
    /// that hangs up mid-reply gets its backend connection killed.
    async fn send_and_relay(
        &mut self,
        command: u8,
        body: &[u8],
        reply: Reply<'_>,
    ) -> Result<Relayed, End> {
        if let Err(e) = self.backend.wire.command(command, body).await {
            self.client.backend_lost(&e)?;
        }
        let preemption = self.preemption.clone();
        let outcome = tokio::select! {
            // First, so that the backend's own "Connection was killed" is never relayed instead.
            biased;
            why = preemption.preempted() => {
                // What was relayed so far stays queued and the error follows it, as a server's
                // does when it kills a statement mid-result.
                info!(reason = %why, "backend connection killed mid-statement");
                self.client.replies.error(&self.preempted(&why));
                return Err(End::BackendGone);
            }
            r = relay(&mut self.backend.wire, &mut self.client.replies.out, reply, &mut self.client.infile) => Some(r),
            () = self.client.reader.closed() => None,
        };
        match outcome {
            Some(Ok(relayed)) => {
                if let Some(status) = relayed.status {
                    self.backend.status = status;
                }
                Ok(relayed)
            }
            Some(Err(RelayError::Backend(e))) => {
                self.client.backend_lost(&e)?;
                Ok(Relayed::default())
            }
            Some(Err(RelayError::Client(_))) | None => {
                // The reply was not read to its end: the statement must not run on unattended.
                let connection_id = self.backend.wire.connection_id();
                info!(
                    connection_id,
                    "client left mid-statement; killing its backend query"
                );
                self.node.backend.kill(connection_id).await;
                Err(End::ClientGone)
            }
        }
    }

    /// The error a preempted session ends with: its backend connection was killed (`why`).
    fn preempted(&self, why: &str) -> ErrorReply {
        ErrorReply::new(
            ER_CONNECTION_KILLED,
            format!(
                "Connection was killed by node '{}': {why}; an open transaction was rolled back",
                self.node.config.name
            ),
        )
    }

    /// COM_QUERY: classify, decide, relay.
    async fn query(&mut self, sql: &[u8]) -> Result<(), End> {
        if let Some(command) = prepare::parse(&String::from_utf8_lossy(sql)) {
            return match self.prepared_sql(sql, command).await? {
                prepared_sql::Plan::Done => Ok(()),
                prepared_sql::Plan::RunInstead(text) => self.run_query(text.as_bytes()).await,
            };
        }
        self.run_query(sql).await
    }

    /// Classifies, decides and relays one packet of SQL.
    async fn run_query(&mut self, sql: &[u8]) -> Result<(), End> {
        let started = std::time::Instant::now();
        let text = String::from_utf8_lossy(sql);
        let classified = match plain_select(&text) {
            Some(read) => read,
            None => self.classify(&text).await,
        };
        if let Some(refusal) = self.refusal(&text, &classified) {
            info!(
                user = %self.login.user,
                class = classified.class().as_str(),
                code = refusal.code,
                reason = %refusal.message,
                "refused statement"
            );
            self.refuse(&text, &classified, &refusal);
            return Ok(());
        }
        debug!(class = classified.class().as_str(), "executing");
        self.backend.forget_context(&classified);
        if is_local_infile(&text)
            && !self
                .client
                .receive_infile(&text, self.node.config.limits.max_local_infile)
                .await?
        {
            return Ok(());
        }
        self.refused = false;
        let (ran, outcome) = if self.forwards(&classified) {
            (self.forward(sql).await, Outcome::Forwarded)
        } else {
            let in_transaction = self.backend.in_transaction();
            let ran = match self.hidden_rows(&classified) {
                Some(hidden) => {
                    let keep = |row: &[u8]| hidden.keeps(row);
                    self.send_and_relay(0x03, sql, Reply::Filtered(&keep))
                        .await
                        .map(|relayed| !relayed.failed)
                }
                None => self.execute(sql).await,
            };
            if classified.class() >= StatementClass::Ddl {
                // It may have created or replaced a stored function (an admin packet too: a
                // CALL whose body the node cannot judge, DDL beside a GRANT).
                self.node.functions.invalidate();
            }
            if matches!(ran, Ok(true)) {
                self.backend.track_use(&classified);
                self.mirror_session(&text, &classified).await;
                if !self.backend.in_transaction()
                    && (in_transaction || classified.class() >= StatementClass::Transaction)
                {
                    self.await_acknowledgement().await;
                }
            }
            (ran.map(drop), Outcome::Executed)
        };
        self.count_statement(classified.class(), outcome, started);
        ran
    }

    /// The refusal of making `db` the current database (at login, by COM_INIT_DB), judged as
    /// `USE db` is.
    fn selection_refusal(&self, db: &str) -> Option<ErrorReply> {
        let grant = self.current_grant();
        database_refusal(&self.policy_context(&grant), "USE", &[], &[db])
    }

    /// The full classification of `text`, each `CALL` judged by the procedure it runs, and a
    /// call of a stored function by what the function does.
    async fn classify(&mut self, text: &str) -> Classified {
        let mut classified = classify(text);
        self.judge_calls(text, &mut classified).await;
        self.judge_functions(text, &mut classified).await;
        classified
    }

    /// True while a transaction is open: on the backend connection, or forwarded to the master.
    fn holds_transaction(&self) -> bool {
        self.backend.in_transaction() || self.forwarding.in_transaction()
    }

    /// On a master with `replication.ack`, holds the OK of a statement that may have committed
    /// until enough slaves applied the backend's binlog as it is now (which holds that commit).
    async fn await_acknowledgement(&mut self) {
        let Some(master) = self.node.master.clone() else {
            return;
        };
        if master.ack() == crate::config::Ack::None {
            return;
        }
        // Asked on a connection of the node's own: the client's session is left as it is.
        let position = match self.node.backend.acquire().await {
            Ok(mut conn) => conn
                .query_first::<String, _>("SELECT @@global.gtid_binlog_pos")
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        if let Some(Ok(target)) = position.map(|p| crate::replication::gtid::Position::parse(&p)) {
            master.wait_acknowledged(&target).await;
        }
    }

    /// Who asks, on which node: the policy's input besides the statement.
    fn policy_context<'a>(&'a self, grant: &'a Grant) -> Context<'a> {
        let config = &self.node.config;
        Context {
            node: &config.name,
            node_role: config.role,
            master: config.master.as_deref(),
            user: &self.login.user,
            user_role: grant.role,
            forward_writes: self.node.replica.is_some(),
            current_db: self.backend.db.as_deref(),
            databases: grant.databases.as_deref(),
        }
    }

    /// The error to answer instead of running the packet, if any.
    fn refusal(&self, text: &str, classified: &Classified) -> Option<ErrorReply> {
        if is_local_infile(text)
            && let Some(refusal) = self.local_infile_refusal(text)
        {
            return Some(refusal);
        }
        if classified.statements.len() > 1
            && !self
                .client
                .replies
                .caps()
                .contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS)
        {
            return Some(ErrorReply::new(
                ER_PARSE_ERROR,
                "You have an error in your SQL syntax: this client did not enable multi-statements, \
                 so a packet may hold only one statement",
            ));
        }
        if classified.statements.len() > 1 && self.hidden_rows(classified).is_some() {
            // Its rows are filtered, which other statements' rows must not be.
            return Some(ErrorReply::new(
                ER_SPECIFIC_ACCESS_DENIED_ERROR,
                format!(
                    "SHOW PROCESSLIST and SHOW DATABASES must be alone in their packet for user '{}': \
                     the node leaves out the rows it may not see",
                    self.login.user
                ),
            ));
        }
        // The decisive statement speaks first (its refusal is the one a client expects), but
        // every statement is judged: a packet's strictest class says nothing about where each
        // one writes (`INSERT INTO t …; DELETE FROM myrelay.applied`), and a `USE` inside the
        // packet moves the statements after it to another database.
        let decisive = classified.decisive()?;
        if decisive.verb == "KILL"
            && kill_target(text)
                .is_some_and(|id| self.node.sessions.owner(id).as_deref() == Some(&self.login.user))
        {
            // A user may kill its own connections on this node, whatever its role.
            return None;
        }
        let mut db = self.backend.db.as_deref();
        let mut judged = Vec::with_capacity(classified.statements.len());
        for stmt in &classified.statements {
            judged.push((stmt, db));
            if let Some(next) = &stmt.use_database {
                db = Some(next.as_str());
            }
        }
        judged.sort_by_key(|(stmt, _)| !std::ptr::eq(*stmt, decisive));
        let grant = self.current_grant();
        judged.into_iter().find_map(|(stmt, db)| {
            let ctx = Context {
                current_db: db,
                ..self.policy_context(&grant)
            };
            match decide(&ctx, stmt) {
                Decision::Execute | Decision::Forward => None,
                Decision::Refuse(e) => Some(e),
            }
        })
    }

    /// Runs `sql` on the backend and relays the reply. Ok(true) when the backend accepted the
    /// whole packet.
    async fn execute(&mut self, sql: &[u8]) -> Result<bool, End> {
        let relayed = self
            .send_and_relay(0x03, sql, Reply::Results { cursor: false })
            .await?;
        Ok(!relayed.failed)
    }
}
