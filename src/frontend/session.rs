//! One client connection after the handshake: reads commands, applies the policy, relays to the
//! backend connection the session owns.
//!
//! The session's state (current database, variables, transaction, temporary tables, locks) lives
//! on that one backend connection, so nothing leaks between clients. The node only remembers the
//! current database and charset, to restore them if the backend connection is lost.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use mysql_common::collations::{Collation, CollationId};
use mysql_common::constants::{CapabilityFlags, StatusFlags};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use super::handshake::{HandshakeError, Login, change_user};
use super::packet::{PacketError, PacketReader};
use super::reply::{ErrorReply, OkInfo, Replies};
use crate::admin::metrics::Outcome;
use crate::backend::relay::{RelayError, relay_query, supply_infile, use_database};
use crate::node::NodeShared;
use crate::sql::classify::{Classified, StatementClass, classify};
use crate::sql::diagnostics::reads_last_statement;
use crate::sql::fast_read::plain_select;
use crate::sql::local_infile::is_local_infile;
use crate::sql::policy::{Context, Decision, decide};
use crate::sql::prepare;
use crate::sql::quote_ident;
use crate::sql::session_track::UNSAFE_CLIENT_CHARSETS;

/// Command bytes of the client/server protocol handled here.
mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const RESET_CONNECTION: u8 = 0x1f;
}

/// The collation mysql_async's handshake sets on backend connections (utf8mb4_general_ci).
const BACKEND_COLLATION: u8 = 45;

mod forward;
mod local_infile;
mod ops;
mod prepared_sql;
mod routines;
mod session_track;
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
}

/// A logged-in client.
pub struct Session<R, W> {
    node: Arc<NodeShared>,
    reader: PacketReader<R>,
    replies: Replies<W>,
    login: Login,
    conn: Option<Conn>,
    db: Option<String>,
    status: u16,
    /// Sequence id of the current command's first reply, to restart a reply that is withdrawn.
    reply_seq: u8,
    /// A slave's connection to the master node for forwarded writes, and its status bits.
    forward: Option<forward::Forward>,
    /// Prepared statements of this client.
    statements: statements::Statements,
    /// SQL-level prepared statements of this client (`PREPARE name FROM …`).
    sql_statements: prepared_sql::Registry,
    /// The file the client sent for the `LOAD DATA LOCAL INFILE` about to run.
    infile: Option<bytes::Bytes>,
    /// `@@sql_mode` and `@@character_set_client` of the backend session, once asked.
    context: Option<(String, String)>,
    /// True when the last command was forwarded to the master, which holds its warnings.
    forwarded: bool,
    /// The tracked session state the statement about to run changes (`CLIENT_SESSION_TRACK`).
    tracked: Option<session_track::Tracked>,
    /// Counts backend connections this session has had; a prepared statement belongs to one.
    conn_epoch: u64,
    /// Set when the statement under way was refused (for the counters).
    refused: bool,
    /// A slave's statements that set session state (`SET`, `SELECT @v := …`), replayed on the
    /// forward connection when it opens, so forwarded writes run in the same session state.
    session_setup: Vec<String>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// A session for `login`, whose handshake has been read but not yet answered.
    pub fn new(
        node: Arc<NodeShared>,
        reader: PacketReader<R>,
        replies: Replies<W>,
        login: Login,
    ) -> Self {
        Session {
            node,
            reader,
            replies,
            db: login.db.clone(),
            login,
            conn: None,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(),
            reply_seq: 1,
            forward: None,
            statements: Default::default(),
            sql_statements: Default::default(),
            infile: None,
            context: None,
            forwarded: false,
            tracked: None,
            conn_epoch: 0,
            refused: false,
            session_setup: Vec::new(),
        }
    }

    /// Finishes the handshake (selecting the requested database) and serves commands until the
    /// client leaves.
    pub async fn run(mut self) -> End {
        self.replies.out.set_seq(self.login.next_seq);
        if let Some(db) = self.db.take()
            && let Err(err) = self.select_db(&db).await
        {
            self.replies.error(&err);
            let _ = self.replies.out.shutdown().await;
            return End::Quit;
        }
        self.replies.ok(&OkInfo::status(self.status));
        if self.replies.out.flush().await.is_err() {
            return End::ClientGone;
        }
        let end = self.serve().await;
        if let End::Protocol(ref e) = end {
            warn!(error = %e, "closing connection: protocol violation");
        }
        let _ = self.replies.out.shutdown().await;
        end
    }

    async fn serve(&mut self) -> End {
        loop {
            // A clean shutdown ends a session between statements, never inside a transaction.
            let node = self.node.clone();
            let busy = self.holds_transaction();
            let idle = self.node.config.limits.idle_timeout;
            let next = tokio::select! {
                read = self.reader.read(0) => read,
                () = idle_for(idle) => {
                    // As MySQL's wait_timeout: inside a transaction too, which then rolls back,
                    // so an abandoned client cannot hold its locks and backend connection.
                    info!(idle_secs = idle.map_or(0, |d| d.as_secs()), "disconnecting idle client");
                    self.replies.out.set_seq(1);
                    self.replies.error(&ErrorReply::new(
                        4031,
                        "HY000",
                        format!(
                            "The client was disconnected by the server because of inactivity: node '{}' \
                             closes connections idle for {} s (limits.idle_timeout_secs)",
                            node.config.name,
                            idle.map_or(0, |d| d.as_secs())
                        ),
                    ));
                    let _ = self.replies.out.flush().await;
                    return End::Quit;
                }
                () = node.drained(), if !busy => {
                    // Queued as the answer to the client's next command (sequence id 1), which
                    // it then reads instead of a bare disconnect; a moment is left for that
                    // command to arrive, so that closing does not reset the connection first.
                    self.replies.out.set_seq(1);
                    self.replies.error(&ErrorReply::new(
                        1053,
                        "08S01",
                        format!("Server shutdown in progress: node '{}' is stopping", node.config.name),
                    ));
                    let _ = self.replies.out.flush().await;
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.reader.read(0)).await;
                    return End::Quit;
                }
            };
            let (packet, seq) = match next {
                Ok(Some(p)) => p,
                Ok(None) => return End::Quit,
                Err(PacketError::TooLarge { size, limit }) => {
                    // Same code and text as MySQL, then close: the rest of the packet is unread.
                    self.replies.out.set_seq(0);
                    self.replies.error(&ErrorReply::new(
                        1153,
                        "08S01",
                        format!(
                            "Got a packet bigger than 'max_allowed_packet' bytes ({size} > {limit})"
                        ),
                    ));
                    let _ = self.replies.out.flush().await;
                    return End::Protocol(PacketError::TooLarge { size, limit });
                }
                Err(PacketError::Io(_)) => return End::ClientGone,
                Err(e) => return End::Protocol(e),
            };
            self.node.count_question();
            self.reply_seq = seq.wrapping_add(1);
            self.replies.out.set_seq(self.reply_seq);
            if let Some(end) = self.removed_by_reload().await {
                return end;
            }
            let Some((&command, body)) = packet.split_first() else {
                return End::Protocol(PacketError::Truncated);
            };
            // After a write forwarded to the master, questions about it go there too; the
            // node's own status query (a slave asks it after each forwarded write) does not count.
            let status_query = command == com::QUERY && is_status_query(body);
            let after_forward = !status_query && std::mem::take(&mut self.forwarded);
            self.tracked = None;
            self.infile = None;
            match command {
                com::QUIT => return End::Quit,
                com::QUERY if status_query => self.show_status().await,
                com::QUERY => {
                    let about_forwarded =
                        after_forward && reads_last_statement(&String::from_utf8_lossy(body));
                    let answered = if about_forwarded {
                        self.forward(body).await
                    } else {
                        self.query(body).await
                    };
                    if let Err(end) = answered {
                        return end;
                    }
                }
                com::INIT_DB => {
                    let db = String::from_utf8_lossy(body).into_owned();
                    match self.select_db(&db).await {
                        Ok(()) => self.init_db_ok(&db),
                        Err(e) => self.replies.error(&e),
                    }
                }
                com::PING => self.replies.ok(&OkInfo::status(self.status)),
                com::STATISTICS => {
                    let stats = self.node.statistics();
                    self.replies
                        .out
                        .packet(|b| b.extend_from_slice(stats.as_bytes()));
                }
                com::SET_OPTION => match body {
                    // MYSQL_OPTION_MULTI_STATEMENTS_ON / _OFF; the server answers with an EOF.
                    [0, 0] | [1, 0] => {
                        let mut caps = self.replies.caps();
                        caps.set(CapabilityFlags::CLIENT_MULTI_STATEMENTS, body[0] == 0);
                        self.replies.set_caps(caps);
                        self.replies.end_of_rows(0, self.status);
                    }
                    _ => self.replies.error(&ErrorReply::new(
                        1047,
                        "08S01",
                        "Unknown COM_SET_OPTION value",
                    )),
                },
                com::STMT_PREPARE => {
                    if let Err(end) = self.prepare(body).await {
                        return end;
                    }
                }
                com::STMT_EXECUTE => {
                    if let Err(end) = self.execute_statement(body).await {
                        return end;
                    }
                }
                com::STMT_SEND_LONG_DATA => {
                    self.send_long_data(body);
                    continue; // no reply
                }
                com::STMT_CLOSE => {
                    self.close_statement(body).await;
                    continue; // no reply
                }
                com::STMT_RESET => self.reset_statement(body),
                com::FIELD_LIST => {
                    if let Err(end) = self.field_list(body).await {
                        return end;
                    }
                }
                com::CHANGE_USER => {
                    if let Err(end) = self.change_user(body).await {
                        return end;
                    }
                }
                com::RESET_CONNECTION => {
                    self.reset();
                    self.replies.ok(&OkInfo::status(self.status));
                }
                other => self.replies.error(&ErrorReply::new(
                    1047,
                    "08S01",
                    format!("Unknown command 0x{other:02x}: myrelay does not support it yet"),
                )),
            }
            if self.replies.out.flush().await.is_err() {
                return End::ClientGone;
            }
        }
    }

    /// COM_RESET_CONNECTION: the session starts over as if just logged in. Its backend
    /// connection goes back to the pool (which resets it) and an open transaction is rolled back
    /// there, so nothing of it is logged or forwarded.
    fn reset(&mut self) {
        self.conn = None;
        self.forward = None;
        self.session_setup.clear();
        self.statements.clear();
        self.sql_statements.clear();
        self.context = None;
        self.db = None;
        self.status = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
    }

    /// COM_CHANGE_USER: a fresh session for the user who proves their password; a refused
    /// attempt ends the connection, as MySQL does.
    async fn change_user(&mut self, body: &[u8]) -> Result<(), End> {
        let users = self.node.users();
        match change_user(
            &mut self.reader,
            &mut self.replies,
            body,
            self.reply_seq,
            &self.login,
            &users,
        )
        .await
        {
            Ok(login) => {
                info!(user = %login.user, role = login.role.as_str(), "changed user");
                self.reset();
                self.replies.out.set_seq(login.next_seq);
                self.db = login.db.clone();
                self.login = login;
                if let Some(db) = self.db.take()
                    && let Err(e) = self.select_db(&db).await
                {
                    self.replies.error(&e);
                    return Ok(());
                }
                self.replies.ok(&OkInfo::status(self.status));
                Ok(())
            }
            Err(HandshakeError::Denied(e)) => {
                info!(error = %e, "change user refused");
                let _ = self.replies.out.flush().await;
                Err(End::Quit)
            }
            Err(HandshakeError::Packet(e)) => Err(End::Protocol(e)),
            Err(e) => {
                warn!(error = %e, "bad COM_CHANGE_USER");
                Err(End::Protocol(PacketError::Truncated))
            }
        }
    }

    /// COM_FIELD_LIST (the CLI's tab completion): the table's column definitions, read from an
    /// empty `SELECT` on the backend, which also enforces the backend's own privileges.
    async fn field_list(&mut self, body: &[u8]) -> Result<(), End> {
        let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
        let table = quote_ident(&String::from_utf8_lossy(&body[..end]));
        if !self.conn_or_reply().await {
            return Ok(());
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let columns = match conn
            .query_iter(format!("SELECT * FROM {table} LIMIT 0"))
            .await
        {
            Ok(result) => {
                let columns = result.columns();
                let drained = result.drop_result().await;
                drained.map(|()| columns)
            }
            Err(e) => Err(e),
        };
        match columns {
            Ok(columns) => {
                let columns = columns.map(|c| c.to_vec()).unwrap_or_default();
                self.replies.field_list(&columns, self.status);
            }
            Err(e) => {
                let failure = self.node.backend.failure(e);
                if failure.broken {
                    self.conn = None;
                }
                self.replies.error(&failure.reply);
            }
        }
        Ok(())
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
        self.forget_context(&classified);
        self.tracked = self.tracked(&text, &classified);
        if is_local_infile(&text) && !self.receive_infile(&text).await? {
            return Ok(());
        }
        self.refused = false;
        let (ran, outcome) = if self.forwards(&classified) {
            (self.forward(sql).await, Outcome::Forwarded)
        } else {
            let in_transaction = self.in_transaction();
            let ran = self.execute(sql).await;
            if classified.class() >= StatementClass::Ddl {
                // It may have created or replaced a stored function (an admin packet too: a
                // CALL whose body the node cannot judge, DDL beside a GRANT).
                self.node.functions.invalidate();
            }
            if matches!(ran, Ok(true)) {
                self.track_use(&classified);
                self.mirror_session(&text, &classified).await;
                if !self.in_transaction()
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
        self.in_transaction() || self.forward.as_ref().is_some_and(|f| f.in_transaction())
    }

    /// True while the backend connection holds an open transaction (explicit, or autocommit off).
    fn in_transaction(&self) -> bool {
        self.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0
            || self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() == 0
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
        let position = match self.node.backend.acquire(false).await {
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
    fn policy_context(&self) -> Context<'_> {
        let config = &self.node.config;
        Context {
            node: &config.name,
            node_role: config.role,
            master: config.master.as_deref(),
            user: &self.login.user,
            user_role: self.current_role(),
            forward_writes: self.node.replica.is_some(),
            current_db: self.db.as_deref(),
        }
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

    /// Makes sure there is a backend connection; if not, queues the error and returns false.
    async fn conn_or_reply(&mut self) -> bool {
        match self.ensure_conn().await {
            Ok(()) => true,
            Err(e) => {
                self.replies.error(&e);
                false
            }
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
                .replies
                .caps()
                .contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS)
        {
            return Some(ErrorReply::new(
                1064,
                "42000",
                "You have an error in your SQL syntax: this client did not enable multi-statements, \
                 so a packet may hold only one statement",
            ));
        }
        // The decisive statement speaks first (its refusal is the one a client expects), but
        // every statement is judged: a packet's strictest class says nothing about where each
        // one writes (`INSERT INTO t …; DELETE FROM myrelay.applied`), and a `USE` inside the
        // packet moves the statements after it to another database.
        let decisive = classified.decisive()?;
        let mut db = self.db.as_deref();
        let mut judged = Vec::with_capacity(classified.statements.len());
        for stmt in &classified.statements {
            judged.push((stmt, db));
            if let Some(next) = &stmt.use_database {
                db = Some(next.as_str());
            }
        }
        judged.sort_by_key(|(stmt, _)| !std::ptr::eq(*stmt, decisive));
        judged.into_iter().find_map(|(stmt, db)| {
            let ctx = Context {
                current_db: db,
                ..self.policy_context()
            };
            match decide(&ctx, stmt) {
                Decision::Execute | Decision::Forward => None,
                Decision::Refuse(e) => Some(e),
            }
        })
    }

    /// Relays `sql` to the backend while watching the client: a client that hangs up mid-query gets
    /// its backend connection killed. Ok(true) when the backend accepted the whole packet.
    async fn execute(&mut self, sql: &[u8]) -> Result<bool, End> {
        if let Some(tracked) = self.tracked.take() {
            return self.execute_tracked(sql, tracked).await;
        }
        self.execute_after(&[], sql).await
    }

    /// [`execute`](Self::execute) with statements of the node's own (each answered by an OK
    /// packet, which the client does not see) sent ahead of `sql` in the same packet.
    async fn execute_after(&mut self, own: &[&str], sql: &[u8]) -> Result<bool, End> {
        if !self.conn_or_reply().await {
            return Ok(false);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        if let Some(file) = self.infile.take() {
            supply_infile(conn, file);
        }
        let connection_id = conn.id();
        let server = self.node.backend.addr();
        let packet = match own {
            [] => std::borrow::Cow::Borrowed(sql),
            own => {
                let mut packet = own.join(";\n").into_bytes();
                packet.extend_from_slice(b";\n");
                packet.extend_from_slice(sql);
                std::borrow::Cow::Owned(packet)
            }
        };
        let outcome = tokio::select! {
            r = relay_query(server, conn, &packet, own.len(), &mut self.replies, self.status) => Some(r),
            () = self.reader.closed() => None,
        };
        self.finish(outcome, connection_id).await
    }

    /// Settles a relayed statement: new status, a lost backend connection dropped, or a client
    /// that left mid-reply (`None`) with its backend connection killed. Ok(true) on success.
    async fn finish(
        &mut self,
        outcome: Option<Result<u16, RelayError>>,
        connection_id: u32,
    ) -> Result<bool, End> {
        match outcome {
            Some(Ok(status)) => {
                self.status = status;
                Ok(true)
            }
            Some(Err(RelayError::Backend(failure))) => {
                if failure.broken {
                    warn!(error = %failure.reply, "backend connection lost");
                    self.conn = None;
                }
                Ok(false)
            }
            Some(Err(RelayError::Client(_))) | None => {
                // The reply was not read to its end: the connection must not serve anyone else.
                info!(
                    connection_id,
                    "client left mid-statement; killing its backend query"
                );
                let abandoned = self.conn.take();
                self.node.backend.kill(connection_id).await;
                drop(abandoned);
                Err(End::ClientGone)
            }
        }
    }

    /// Makes sure the session has a backend connection with its database and charset.
    async fn ensure_conn(&mut self) -> Result<(), ErrorReply> {
        if self.conn.is_some() {
            return Ok(());
        }
        let found_rows = self
            .replies
            .caps()
            .contains(CapabilityFlags::CLIENT_FOUND_ROWS);
        let backend = &self.node.backend;
        let mut conn = backend.acquire(found_rows).await?;
        if self.login.collation != BACKEND_COLLATION {
            let collation = Collation::from(CollationId::from(u16::from(self.login.collation)));
            // A client charset the node cannot lex safely is treated as the server treats one
            // it does not support: the session keeps the default (see UNSAFE_CLIENT_CHARSETS).
            let unsafe_charset = UNSAFE_CLIENT_CHARSETS.contains(&collation.charset());
            if unsafe_charset {
                warn!(
                    charset = collation.charset(),
                    "client asked for a character set the node does not serve; keeping utf8mb4"
                );
            }
            if collation.id() != CollationId::UNKNOWN_COLLATION_ID && !unsafe_charset {
                let set = format!(
                    "SET NAMES {} COLLATE {}",
                    collation.charset(),
                    collation.collation()
                );
                if let Err(e) = conn.query_drop(set).await {
                    return Err(backend.failure(e).reply);
                }
            }
        }
        if let Some(db) = &self.db
            && let Err(failure) = use_database(backend, &mut conn, db).await
        {
            if failure.broken {
                return Err(failure.reply);
            }
            // The database is gone (dropped meanwhile): continue without one, as MySQL does.
            warn!(db = %db, error = %failure.reply, "could not restore current database");
            self.db = None;
        }
        self.conn = Some(conn);
        self.conn_epoch += 1;
        self.context = None;
        Ok(())
    }

    /// COM_INIT_DB and the handshake's database: the backend's own USE decides.
    async fn select_db(&mut self, db: &str) -> Result<(), ErrorReply> {
        self.ensure_conn().await?;
        let backend = &self.node.backend;
        let Some(conn) = self.conn.as_mut() else {
            return Err(ErrorReply::new(2013, "HY000", "backend connection lost"));
        };
        match use_database(backend, conn, db).await {
            Ok(()) => {
                self.db = Some(db.to_string());
                Ok(())
            }
            Err(failure) => {
                if failure.broken {
                    self.conn = None;
                }
                Err(failure.reply)
            }
        }
    }
}
