//! The replicating master's write path: every change a client commits is logged durably, in
//! commit order, with the context that makes its replay deterministic, before the client sees OK.
//!
//! An autocommit write runs inside a transaction of the node's own (hidden from the client) so
//! that logging and committing happen together under the master's commit turn. Writes inside a
//! client's transaction are collected and logged as one change at its COMMIT; a ROLLBACK logs
//! nothing.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_common::constants::StatusFlags;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{error, info, warn};

use super::{End, Session};
use crate::frontend::reply::{ErrorReply, OkInfo};
use crate::replication::change::{Change, LoggedStatement};
use crate::replication::master::{Master, timestamp_now};
use crate::sql::classify::{Classified, StatementClass};
use crate::sql::determinism::unsafe_reason;

const IN_TRANS: u16 = StatusFlags::SERVER_STATUS_IN_TRANS.bits();

fn not_supported(what: &str) -> ErrorReply {
    ErrorReply::new(
        1235,
        "42000",
        format!("This version of myrelay doesn't yet support '{what}' on a replicating master"),
    )
}

/// `COMMIT` with nothing that changes what follows it (no `AND CHAIN`, no `RELEASE`).
fn is_plain_commit(sql: &[u8]) -> bool {
    let words = crate::sql::words(sql);
    words == ["COMMIT"] || words == ["COMMIT", "WORK"]
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// True while the client has a transaction started here or, forwarded, on the master (under
    /// autocommit off, from its first statement to COMMIT/ROLLBACK).
    pub(super) fn holds_transaction(&self) -> bool {
        self.status & IN_TRANS != 0
            || !self.pending.is_empty()
            || self.forward.as_ref().is_some_and(|f| f.in_transaction())
    }

    /// True while the backend connection holds an open transaction (explicit, or autocommit off).
    fn in_transaction(&self) -> bool {
        self.status & IN_TRANS != 0
            || self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() == 0
    }

    /// Runs an allowed packet on a replicating master.
    pub(super) async fn query_on_master(
        &mut self,
        sql: &[u8],
        text: &str,
        classified: &Classified,
        master: &Arc<Master>,
    ) -> Result<(), End> {
        let Some(decisive) = classified.decisive() else {
            self.execute(sql).await?;
            return Ok(());
        };
        let class = classified.class();
        let verb = decisive.verb.as_str();
        let upper = text.trim().to_ascii_uppercase();
        if matches!(class, StatementClass::Write | StatementClass::Ddl)
            && classified.statements.len() > 1
        {
            self.replies.error(&not_supported(
                "several statements with a write in one packet",
            ));
            return Ok(());
        }
        // A stored function's body runs only where it is called, and calls are checked.
        let defines_function = class == StatementClass::Ddl
            && upper.starts_with("CREATE")
            && upper.split_whitespace().take(6).any(|w| w == "FUNCTION");
        if matches!(class, StatementClass::Write | StatementClass::Ddl)
            && !defines_function
            && let Some(reason) = self.unsafe_reason(text, master).await
        {
            info!(user = %self.login.user, %reason, "refused unsafe statement");
            let refusal = ErrorReply::new(
                1592,
                "HY000",
                format!("Unsafe statement refused on a replicating master: {reason}"),
            );
            self.refuse(text, classified, &refusal);
            return Ok(());
        }
        // Statements that commit implicitly end the open transaction: log it first.
        let commits_implicitly = matches!(class, StatementClass::Ddl | StatementClass::Admin)
            || matches!(
                verb,
                "BEGIN" | "START TRANSACTION" | "LOCK TABLES" | "UNLOCK TABLES"
            )
            || (verb == "SET" && upper.contains("AUTOCOMMIT"));
        if commits_implicitly && !self.pending.is_empty() {
            self.commit_pending(master, None).await?;
        }
        match (class, verb) {
            (StatementClass::Write, _) => self.replicated_write(sql, text, master).await,
            (StatementClass::Ddl, _) => self.replicated_ddl(sql, text, master).await,
            (StatementClass::Transaction, "COMMIT") => self.commit_pending(master, Some(sql)).await,
            (StatementClass::Transaction, "ROLLBACK") if upper.contains(" TO ") => {
                if self.pending.is_empty() {
                    self.execute(sql).await.map(drop)
                } else {
                    self.replies
                        .error(&not_supported("ROLLBACK TO SAVEPOINT after a write"));
                    Ok(())
                }
            }
            (StatementClass::Transaction, "ROLLBACK") => {
                self.pending.clear();
                self.execute(sql).await.map(drop)
            }
            _ => {
                if self.execute(sql).await? {
                    self.track_use(classified);
                }
                if !self.pending.is_empty() && !self.in_transaction() {
                    // Something committed the transaction behind our back: log it now rather
                    // than lose it.
                    warn!("transaction committed implicitly; logging it late");
                    self.log_committed(master).await;
                }
                Ok(())
            }
        }
    }

    /// A write: pinned time, captured insert id, logged now (autocommit) or at COMMIT.
    async fn replicated_write(
        &mut self,
        sql: &[u8],
        text: &str,
        master: &Arc<Master>,
    ) -> Result<(), End> {
        if !self.conn_or_reply().await {
            return Ok(());
        }
        if let Some(refusal) = self.transaction_log_full(text) {
            self.replies.error(&refusal);
            return Ok(());
        }
        let wrap = !self.in_transaction();
        let timestamp = timestamp_now();
        let last_insert_id = if text.to_ascii_uppercase().contains("LAST_INSERT_ID") {
            match self.conn.as_mut() {
                Some(conn) => conn
                    .query_first::<u64, _>("SELECT LAST_INSERT_ID()")
                    .await
                    .ok()
                    .flatten(),
                None => None,
            }
        } else {
            None
        };
        // `SET STATEMENT timestamp = … FOR` pins the clock for this statement alone, in the same
        // round trip; a statement that is itself a SET STATEMENT cannot be wrapped again.
        let per_statement = !text
            .trim_start()
            .get(..13)
            .is_some_and(|head| head.eq_ignore_ascii_case("SET STATEMENT"));
        // The node's own BEGIN / SET TIMESTAMP lead the statement in one packet.
        let set_timestamp = (!per_statement).then(|| format!("SET TIMESTAMP = {timestamp}"));
        let mut own = Vec::new();
        if wrap {
            own.push("BEGIN");
        }
        own.extend(set_timestamp.as_deref());
        if wrap {
            self.replies.hide_status(IN_TRANS);
        }
        let infile = self.infile.clone();
        let ran = if per_statement {
            let mut pinned = format!("SET STATEMENT timestamp = {timestamp} FOR ").into_bytes();
            pinned.extend_from_slice(sql);
            self.execute_after(&own, &pinned).await
        } else {
            self.execute_after(&own, sql).await
        };
        self.replies.hide_status(0);
        let ran = ran?;
        self.keep_warnings(!ran).await;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(()); // lost: the backend rolled the transaction back
        };
        let insert_id = conn.last_insert_id();
        let mut reset = Vec::new();
        if !ran && wrap {
            reset.push("ROLLBACK");
        }
        if !per_statement {
            reset.push("SET TIMESTAMP = DEFAULT");
        }
        if !reset.is_empty()
            && let Err(e) = conn.query_drop(reset.join("; ")).await
        {
            warn!(error = %e, "could not reset the pinned timestamp");
        }
        if !ran {
            if wrap {
                self.status &= !IN_TRANS;
            } else if let Some(conn) = self.conn.as_mut() {
                // Some errors (a deadlock) roll the whole transaction back, not just the
                // statement: then its earlier writes must not be logged at COMMIT either.
                let open = conn
                    .query_first::<i64, _>("SELECT @@in_transaction")
                    .await
                    .ok()
                    .flatten();
                if open == Some(0) {
                    warn!("the backend rolled the transaction back; its writes are dropped");
                    self.pending.clear();
                    self.status &= !IN_TRANS;
                }
            }
            return Ok(());
        }
        self.pending.push(
            LoggedStatement {
                sql: text.to_string(),
                db: self.db.clone(),
                timestamp,
                insert_id,
                last_insert_id,
                infile: None,
            }
            .with_infile(infile.as_deref()),
        );
        if wrap {
            self.commit_pending(master, None).await?;
            self.status &= !IN_TRANS;
        }
        Ok(())
    }

    /// The error for a write that would take the open transaction's log past
    /// `limits.max_transaction_log`: the node holds it in memory until COMMIT. Checked before
    /// the write runs, so that nothing runs that is not logged.
    fn transaction_log_full(&self, text: &str) -> Option<ErrorReply> {
        let held: usize = self
            .pending
            .iter()
            .map(|s| s.sql.len() + s.infile.as_ref().map_or(0, String::len))
            .sum();
        // A LOCAL INFILE file is logged in hex.
        let adding = text.len() + self.infile.as_ref().map_or(0, |f| 2 * f.len());
        let limit = self.node.config.limits.max_transaction_log;
        (held + adding > limit).then(|| {
            ErrorReply::new(
                1197,
                "HY000",
                format!(
                    "Multi-statement transaction required more than 'max_binlog_cache_size' bytes \
                     of storage: node '{}' holds a transaction's writes in memory until COMMIT, at \
                     most {limit} bytes (limits.max_transaction_log), and this one would need {}; \
                     the statement did not run",
                    self.node.config.name,
                    held + adding
                ),
            )
        })
    }

    /// DDL: runs under the commit turn and is logged once it succeeded. MariaDB's DDL is not
    /// transactional, so a crash between running it and logging it is a known window.
    async fn replicated_ddl(
        &mut self,
        sql: &[u8],
        text: &str,
        master: &Arc<Master>,
    ) -> Result<(), End> {
        if !self.conn_or_reply().await {
            return Ok(());
        }
        let context = self.session_context().await;
        let turn = match master.exclusive_turn(&self.node.backend).await {
            Ok(turn) => turn,
            Err(e) => {
                self.replies.error(&ErrorReply::new(1180, "HY000", e));
                return Ok(());
            }
        };
        if !self.execute(sql).await? {
            return Ok(());
        }
        self.keep_warnings(false).await;
        master.functions_changed();
        let (sql_mode, charset) = context;
        let change = Change {
            sql_mode,
            charset,
            ddl: true,
            statements: vec![LoggedStatement {
                sql: text.to_string(),
                db: self.db.clone(),
                timestamp: timestamp_now(),
                insert_id: None,
                last_insert_id: None,
                infile: None,
            }],
        };
        match master.log(&turn, &change).await {
            Ok(lsn) => {
                if let Some(conn) = self.conn.as_mut()
                    && let Err(e) = master.record(&turn, conn, lsn).await
                {
                    warn!(error = %e, "could not record the DDL's LSN on the master's backend");
                }
            }
            Err(e) => {
                error!(error = %e, "DDL ran but could not be logged: slaves will miss it");
                self.withdraw_reply(&ErrorReply::new(1180, "HY000", e.to_string()));
            }
        }
        Ok(())
    }

    /// Why `text` would replay differently on a slave, if it would.
    async fn unsafe_reason(&mut self, text: &str, master: &Arc<Master>) -> Option<String> {
        let functions = match self.conn.as_mut() {
            Some(conn) => master.user_functions(conn).await,
            None => match self.node.backend.acquire(false).await {
                Ok(mut conn) => master.user_functions(&mut conn).await,
                Err(_) => Default::default(),
            },
        };
        unsafe_reason(text, &functions)
    }

    /// `@@sql_mode` and `@@character_set_client` of this session, for deterministic replay.
    /// Forgets the remembered `session_context` before `classified` runs if it may change it:
    /// anything but reads, transaction control and plain writes (a CALLed routine may SET it).
    pub(super) fn forget_context(&mut self, classified: &Classified) {
        let keeps = classified.statements.iter().all(|s| match s.class {
            StatementClass::Read | StatementClass::Transaction => true,
            StatementClass::Write => s.verb != "CALL",
            _ => false,
        });
        if !keeps {
            self.context = None;
        }
    }

    /// Asked of the backend once and then remembered until a statement that may change them
    /// runs (see `forget_context`).
    pub(super) async fn session_context(&mut self) -> (String, String) {
        if let Some(known) = &self.context {
            return known.clone();
        }
        let Some(conn) = self.conn.as_mut() else {
            return (String::new(), "utf8mb4".into());
        };
        match conn
            .query_first::<(String, String), _>(
                "SELECT @@session.sql_mode, @@session.character_set_client",
            )
            .await
        {
            Ok(Some(context)) => {
                self.context = Some(context.clone());
                context
            }
            _ => (String::new(), "utf8mb4".into()),
        }
    }

    /// Logs the pending writes durably and commits them, in log order. `client_commit` is the
    /// client's own COMMIT (its OK is relayed); `None` commits for the client.
    async fn commit_pending(
        &mut self,
        master: &Arc<Master>,
        client_commit: Option<&[u8]>,
    ) -> Result<(), End> {
        if self.pending.is_empty() {
            if let Some(sql) = client_commit {
                self.execute(sql).await?;
            }
            return Ok(());
        }
        let change = self.take_pending().await;
        let turn = match master.commit_turn(&self.node.backend).await {
            Ok(turn) => turn,
            Err(e) => {
                self.rollback_withdrawn(ErrorReply::new(1180, "HY000", e))
                    .await;
                return Ok(());
            }
        };
        let lsn = match master.log(&turn, &change).await {
            Ok(lsn) => lsn,
            Err(e) => {
                error!(error = %e, "could not log a change; rolled back");
                self.rollback_withdrawn(ErrorReply::new(1180, "HY000", e.to_string()))
                    .await;
                return Ok(());
            }
        };
        let Some(conn) = self.conn.as_mut() else {
            drop(turn);
            master.replay_now(&self.node.backend).await;
            return Ok(());
        };
        // The usual case (the node's own commit, or a plain COMMIT) records and commits in one
        // round trip; a COMMIT AND CHAIN / RELEASE is relayed after the record.
        let plain = client_commit.is_none_or(is_plain_commit);
        let recorded = if plain {
            master.record_and_commit(&turn, conn, lsn).await
        } else {
            master.record(&turn, conn, lsn).await
        };
        if let Err(e) = &recorded {
            // Committing without the LSN would apply the change twice once it is replayed:
            // drop this transaction and let the replay apply it, exactly once.
            error!(error = %e, lsn, "logged change not committed here; replaying it");
            let _ = conn.query_drop("ROLLBACK").await;
            drop(turn);
            master.replay_now(&self.node.backend).await;
        } else if let Some(sql) = client_commit.filter(|_| !plain) {
            // A client that vanished here still gets its logged change: it is replayed.
            let committed = self.execute(sql).await;
            drop(turn);
            if !matches!(committed, Ok(true)) {
                error!(lsn, "logged change not committed; replaying it");
                master.replay_now(&self.node.backend).await;
            }
            committed?;
            return Ok(());
        }
        // The change is in the log, so the client's COMMIT is answered either way.
        self.status &= !IN_TRANS;
        if client_commit.is_some() {
            self.replies.ok(&OkInfo::status(self.status));
        }
        Ok(())
    }

    /// The backend committed pending writes on its own (an implicit commit we did not foresee).
    async fn log_committed(&mut self, master: &Arc<Master>) {
        let change = self.take_pending().await;
        let turn = match master.commit_turn(&self.node.backend).await {
            Ok(turn) => turn,
            Err(e) => {
                error!(error = %e, "committed change could not be logged: slaves will miss it");
                return;
            }
        };
        match master.log(&turn, &change).await {
            // Already committed on the backend: its commit row goes in on its own.
            Ok(lsn) => {
                if let Some(conn) = self.conn.as_mut()
                    && let Err(e) = master.record(&turn, conn, lsn).await
                {
                    warn!(error = %e, lsn, "could not record a late-logged change");
                }
            }
            Err(e) => {
                error!(error = %e, "committed change could not be logged: slaves will miss it")
            }
        }
    }

    /// The pending writes as one change, with this session's context.
    async fn take_pending(&mut self) -> Change {
        let (sql_mode, charset) = self.session_context().await;
        Change {
            sql_mode,
            charset,
            ddl: false,
            statements: std::mem::take(&mut self.pending),
        }
    }

    /// Rolls the open transaction back and replaces the queued reply with `err`.
    async fn rollback_withdrawn(&mut self, err: ErrorReply) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = conn.query_drop("ROLLBACK").await;
        }
        self.status &= !IN_TRANS;
        self.withdraw_reply(&err);
    }

    /// Drops the reply queued for this command and answers `err` instead.
    fn withdraw_reply(&mut self, err: &ErrorReply) {
        self.replies.out.discard();
        self.replies.out.set_seq(self.reply_seq);
        self.replies.error(err);
    }
}
