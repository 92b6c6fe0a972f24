//! Prepared statements: COM_STMT_PREPARE / EXECUTE / SEND_LONG_DATA / RESET / CLOSE.
//!
//! A statement is classified and checked by the policy when it is prepared and again when it is
//! executed. They run as real prepared statements on the backend, their rows relayed in the
//! binary protocol; except on a slave, where writes and DDL are executed as their text with the
//! bound values inlined exactly, through the same path as COM_QUERY, so that the slave can
//! forward them to the master (which does not have the statement); their reply is an OK packet
//! either way.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Column, Params, Statement};
use mysql_common::value::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::info;

use super::{End, Session};
use crate::backend::relay::relay_execute;
use crate::frontend::prepared::{ParamType, decode_execute, inline, stmt_id};
use crate::frontend::reply::{ErrorReply, OkInfo};
use crate::sql::classify::{Classified, StatementClass};
use crate::sql::policy::{Decision, decide};

/// A statement the client prepared.
pub(super) struct Prepared {
    sql: String,
    classified: Classified,
    params: Vec<Column>,
    /// The backend's statement and the backend connection it belongs to (by epoch).
    backend: Option<(Statement, u64)>,
    types: Option<Vec<ParamType>>,
    long_data: HashMap<u16, Vec<u8>>,
    /// Long data went past max_allowed_packet: the next execute fails, as in MySQL.
    long_data_overflow: bool,
}

/// The client's prepared statements, by the id the node gave them.
#[derive(Default)]
pub(super) struct Statements {
    by_id: HashMap<u32, Prepared>,
    next_id: u32,
}

impl Statements {
    /// Forgets every statement (COM_RESET_CONNECTION, or the backend connection was lost).
    pub(super) fn clear(&mut self) {
        self.by_id.clear();
    }
}

fn unknown(id: u32, command: &str) -> ErrorReply {
    ErrorReply::new(
        1243,
        "HY000",
        format!("Unknown prepared statement handler ({id}) given to {command}"),
    )
}

fn runs_as_text(classified: &Classified, forwards: bool) -> bool {
    forwards
        && matches!(
            classified.class(),
            StatementClass::Write
                | StatementClass::Ddl
                | StatementClass::Admin
                | StatementClass::Transaction
        )
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// The policy's verdict on a prepared statement, as an error if refused.
    fn statement_refusal(&self, classified: &Classified) -> Option<ErrorReply> {
        match decide(&self.policy_context(), classified.decisive()?) {
            Decision::Refuse(e) => Some(e),
            Decision::Execute | Decision::Forward => None,
        }
    }

    /// COM_STMT_PREPARE.
    pub(super) async fn prepare(&mut self, sql: &[u8]) -> Result<(), End> {
        let sql = String::from_utf8_lossy(sql).into_owned();
        let classified = self.classify(&sql).await;
        if let Some(refusal) = self.statement_refusal(&classified) {
            info!(user = %self.login.user, code = refusal.code, reason = %refusal.message, "refused prepare");
            self.refuse(&sql, &classified, &refusal);
            return Ok(());
        }
        if classified.statements.len() > 1 {
            self.replies.error(&ErrorReply::new(
                1064,
                "42000",
                "You have an error in your SQL syntax: a prepared statement holds one statement",
            ));
            return Ok(());
        }
        if !self.conn_or_reply().await {
            return Ok(());
        }
        let epoch = self.conn_epoch;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let stmt = match conn.prep(sql.as_str()).await {
            Ok(stmt) => stmt,
            Err(e) => {
                let failure = self.node.backend.failure(e);
                if failure.broken {
                    self.conn = None;
                }
                self.replies.error(&failure.reply);
                return Ok(());
            }
        };
        let returns_rows = !stmt.columns().is_empty();
        if runs_as_text(&classified, self.node.replica.is_some()) && returns_rows {
            let _ = conn.close(stmt).await;
            self.replies.error(&ErrorReply::new(
                1235,
                "42000",
                "This version of myrelay doesn't yet support prepared writes that return rows (RETURNING); send them as text",
            ));
            return Ok(());
        }
        self.statements.next_id = self.statements.next_id.wrapping_add(1).max(1);
        let id = self.statements.next_id;
        let params = stmt.params().to_vec();
        let columns = stmt.columns().to_vec();
        self.replies
            .prepare_ok(id, &params, &columns, conn.get_warnings(), self.status);
        self.statements.by_id.insert(
            id,
            Prepared {
                sql,
                classified,
                params,
                backend: Some((stmt, epoch)),
                types: None,
                long_data: HashMap::new(),
                long_data_overflow: false,
            },
        );
        Ok(())
    }

    /// COM_STMT_SEND_LONG_DATA: no reply, by protocol.
    pub(super) fn send_long_data(&mut self, body: &[u8]) {
        let (Some(id), Some(param)) = (stmt_id(body), body.get(4..6)) else {
            return;
        };
        let param = u16::from_le_bytes([param[0], param[1]]);
        let limit = self.node.config.limits.max_allowed_packet;
        if let Some(p) = self.statements.by_id.get_mut(&id) {
            let chunk = body.get(6..).unwrap_or_default();
            let held: usize = p.long_data.values().map(Vec::len).sum();
            if held + chunk.len() > limit {
                p.long_data.clear();
                p.long_data_overflow = true;
            } else if !p.long_data_overflow {
                p.long_data
                    .entry(param)
                    .or_default()
                    .extend_from_slice(chunk);
            }
        }
    }

    /// COM_STMT_RESET: forgets long data; OK.
    pub(super) fn reset_statement(&mut self, body: &[u8]) {
        let id = stmt_id(body).unwrap_or(0);
        match self.statements.by_id.get_mut(&id) {
            Some(p) => {
                p.long_data.clear();
                p.long_data_overflow = false;
                self.replies.ok(&OkInfo::status(self.status));
            }
            None => self.replies.error(&unknown(id, "mysqld_stmt_reset")),
        }
    }

    /// COM_STMT_CLOSE: no reply, by protocol.
    pub(super) async fn close_statement(&mut self, body: &[u8]) {
        let Some(p) = stmt_id(body).and_then(|id| self.statements.by_id.remove(&id)) else {
            return;
        };
        if let (Some((stmt, epoch)), Some(conn)) = (p.backend, self.conn.as_mut())
            && epoch == self.conn_epoch
        {
            let _ = conn.close(stmt).await;
        }
    }

    /// COM_STMT_EXECUTE.
    pub(super) async fn execute_statement(&mut self, body: &[u8]) -> Result<(), End> {
        let id = stmt_id(body).unwrap_or(0);
        let Some(p) = self.statements.by_id.get_mut(&id) else {
            self.replies.error(&unknown(id, "mysqld_stmt_execute"));
            return Ok(());
        };
        if std::mem::take(&mut p.long_data_overflow) {
            self.replies.error(&ErrorReply::new(
                1153,
                "08S01",
                format!(
                    "Got a packet bigger than 'max_allowed_packet' bytes: long data of statement {id} exceeded {}",
                    self.node.config.limits.max_allowed_packet
                ),
            ));
            return Ok(());
        }
        if body.get(4).is_some_and(|flags| *flags != 0) {
            self.replies.error(&ErrorReply::new(
                1235,
                "42000",
                "This version of myrelay doesn't yet support cursors on prepared statements",
            ));
            return Ok(());
        }
        let long: Vec<bool> = (0..p.params.len())
            .map(|i| p.long_data.contains_key(&(i as u16)))
            .collect();
        let decoded = match decode_execute(body, p.params.len(), p.types.as_deref(), &long) {
            Ok(d) => d,
            Err(e) => {
                self.replies
                    .error(&ErrorReply::new(1210, "HY000", e.to_string()));
                return Ok(());
            }
        };
        if decoded.new_types.is_some() {
            p.types = decoded.new_types;
        }
        let values: Vec<Value> = decoded
            .values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                v.unwrap_or_else(|| {
                    Value::Bytes(p.long_data.remove(&(i as u16)).unwrap_or_default())
                })
            })
            .collect();
        p.long_data.clear();
        let classified = p.classified.clone();
        let sql = p.sql.clone();
        self.forget_context(&classified);
        if let Some(refusal) = self.statement_refusal(&classified) {
            self.refuse(&sql, &classified, &refusal);
            return Ok(());
        }
        if runs_as_text(&classified, self.node.replica.is_some()) {
            if !self.conn_or_reply().await {
                return Ok(());
            }
            let (_, charset) = self.session_context().await;
            let Some(text) = inline(&sql, &values, &charset) else {
                self.replies.error(&ErrorReply::new(
                    1210,
                    "HY000",
                    "Incorrect arguments to mysqld_stmt_execute: the parameters do not match the statement's placeholders",
                ));
                return Ok(());
            };
            return self.query(text.as_bytes()).await;
        }
        self.execute_prepared(id, values).await
    }

    /// Runs a prepared read on the backend (re-preparing it if the connection changed since).
    async fn execute_prepared(&mut self, id: u32, values: Vec<Value>) -> Result<(), End> {
        if !self.conn_or_reply().await {
            return Ok(());
        }
        let epoch = self.conn_epoch;
        let (Some(p), Some(conn)) = (self.statements.by_id.get_mut(&id), self.conn.as_mut()) else {
            return Ok(());
        };
        let stmt = match &p.backend {
            Some((stmt, e)) if *e == epoch => stmt.clone(),
            _ => match conn.prep(p.sql.as_str()).await {
                Ok(stmt) => {
                    p.backend = Some((stmt.clone(), epoch));
                    stmt
                }
                Err(e) => {
                    let failure = self.node.backend.failure(e);
                    self.replies.error(&failure.reply);
                    if failure.broken {
                        self.conn = None;
                    }
                    return Ok(());
                }
            },
        };
        let params = if values.is_empty() {
            Params::Empty
        } else {
            Params::Positional(values)
        };
        let server = self.node.backend.addr();
        let connection_id = conn.id();
        let outcome = tokio::select! {
            r = relay_execute(server, conn, &stmt, params, &mut self.replies, self.status) => Some(r),
            () = self.reader.closed() => None,
        };
        self.finish(outcome, connection_id).await.map(drop)
    }
}
