//! Prepared statements: COM_STMT_PREPARE / EXECUTE / SEND_LONG_DATA / RESET / CLOSE / FETCH.
//!
//! They are the backend's own: the client's packets go to the backend as they are (its
//! statement ids, its parameter types, cursors) and the replies come back as they are. The node
//! classifies a statement when it is prepared and checks it against the policy then and at each
//! execution. On a slave, writes and DDL run as their text with the bound values inlined
//! exactly, through the same path as COM_QUERY, so that the slave can forward them to the master
//! (which does not have the statement); their long data is kept by the node for that.

use std::collections::HashMap;
use std::time::Instant;

use mysql_common::value::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::info;

use super::{End, Session};
use crate::backend::relay::Reply;
use crate::error::{
    ER_NET_PACKET_TOO_LARGE, ER_NOT_SUPPORTED_YET, ER_PARSE_ERROR, ER_WRONG_ARGUMENTS, ErrorReply,
};
use crate::frontend::prepared::{ParamType, decode_execute};
use crate::frontend::reply::OkInfo;
use crate::metrics::Outcome;
use crate::sql::class::StatementClass;
use crate::sql::classify::Classified;
use crate::sql::inline::inline;
use crate::sql::policy::{Decision, decide};

/// A statement the client prepared, by the backend's id.
pub(super) struct Prepared {
    sql: String,
    classified: Classified,
    params: usize,
    /// Runs as text with its values inlined (a slave's write), not as the backend's statement.
    as_text: bool,
    /// Returns rows, which a statement run as text cannot.
    returns_rows: bool,
    types: Option<Vec<ParamType>>,
    long_data: HashMap<u16, Vec<u8>>,
    /// Long data went past max_allowed_packet: the next execute fails, as in MySQL.
    long_data_overflow: bool,
}

/// The client's prepared statements: the binary protocol's by the backend's statement id, and
/// the SQL-level ones (`PREPARE name FROM …`) by name, with the SQL each was prepared from
/// (kept by a slave, which runs their writes as text).
#[derive(Default)]
pub(super) struct Statements {
    by_id: HashMap<u32, Prepared>,
    pub(super) by_name: HashMap<String, String>,
}

impl Statements {
    /// Forgets every statement (the backend forgot them: COM_RESET_CONNECTION, a new user).
    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.by_name.clear();
    }

    /// Keeps a chunk of long data for statement `id` when it runs as text (false: it does
    /// not, and the backend takes the chunk). Past `limit` bytes the data is dropped and the
    /// next execute fails, as in MySQL.
    fn keep_long_data(&mut self, id: u32, param: u16, chunk: &[u8], limit: usize) -> bool {
        let Some(p) = self.by_id.get_mut(&id).filter(|p| p.as_text) else {
            return false;
        };
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
        true
    }

    /// Drops the long data kept for statement `id` when it runs as text (false: it does not,
    /// and the backend resets its own statement).
    fn reset_long_data(&mut self, id: u32) -> bool {
        let Some(p) = self.by_id.get_mut(&id).filter(|p| p.as_text) else {
            return false;
        };
        p.long_data.clear();
        p.long_data_overflow = false;
        true
    }
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
        let grant = self.current_grant();
        match decide(&self.policy_context(&grant), classified.decisive()?) {
            Decision::Refuse(e) => Some(e),
            Decision::Execute | Decision::Forward => None,
        }
    }

    /// COM_STMT_PREPARE (`packet`, whose body is `sql`).
    pub(super) async fn prepare(&mut self, packet: &[u8], sql: &[u8]) -> Result<(), End> {
        let sql = String::from_utf8_lossy(sql).into_owned();
        let classified = self.classify(&sql).await;
        if let Some(refusal) = self.statement_refusal(&classified) {
            info!(user = %self.login.user, code = refusal.code, reason = %refusal.message, "refused prepare");
            self.refuse(&sql, &classified, &refusal);
            return Ok(());
        }
        if classified.statements.len() > 1 {
            self.client.replies.error(&ErrorReply::new(
                ER_PARSE_ERROR,
                "You have an error in your SQL syntax: a prepared statement holds one statement",
            ));
            return Ok(());
        }
        let relayed = self.pass(packet, Reply::Prepare).await?;
        let Some(prepared) = relayed.prepared else {
            return Ok(());
        };
        let as_text = runs_as_text(&classified, self.node.replica.is_some());
        self.statements.by_id.insert(
            prepared.id,
            Prepared {
                sql,
                classified,
                params: usize::from(prepared.params),
                as_text,
                returns_rows: prepared.columns > 0,
                types: None,
                long_data: HashMap::new(),
                long_data_overflow: false,
            },
        );
        Ok(())
    }

    /// COM_STMT_SEND_LONG_DATA: no reply, by protocol. Kept by the node for a statement that
    /// runs as text, else passed on.
    pub(super) async fn send_long_data(
        &mut self,
        packet: &[u8],
        id: u32,
        param: u16,
        chunk: &[u8],
    ) -> Result<(), End> {
        let limit = self.node.config.limits.max_allowed_packet;
        if self.statements.keep_long_data(id, param, chunk, limit) {
            return Ok(());
        }
        self.send_only(packet).await
    }

    /// Sends a command the backend does not answer.
    async fn send_only(&mut self, packet: &[u8]) -> Result<(), End> {
        if let Some((&command, body)) = packet.split_first()
            && let Err(e) = self.backend.wire.command(command, body).await
        {
            return self.client.backend_lost(&e);
        }
        Ok(())
    }

    /// COM_STMT_RESET: the backend's statement is reset, and the long data the node kept.
    pub(super) async fn reset_statement(&mut self, packet: &[u8], id: u32) -> Result<(), End> {
        if self.statements.reset_long_data(id) {
            self.client.replies.ok(&OkInfo::status(self.backend.status));
            return Ok(());
        }
        self.pass(packet, Reply::Single).await.map(drop)
    }

    /// COM_STMT_CLOSE: no reply, by protocol.
    pub(super) async fn close_statement(&mut self, packet: &[u8], id: u32) -> Result<(), End> {
        self.statements.by_id.remove(&id);
        self.send_only(packet).await
    }

    /// COM_STMT_EXECUTE (`packet`; `flags` ask for a cursor; `body` holds the values).
    pub(super) async fn execute_statement(
        &mut self,
        packet: &[u8],
        id: u32,
        flags: u8,
        body: &[u8],
    ) -> Result<(), End> {
        let Some(p) = self.statements.by_id.get(&id) else {
            // Not one of the node's: the backend answers for it (unknown statement).
            self.pass(packet, Reply::Results { cursor: flags != 0 })
                .await?;
            return Ok(());
        };
        let (classified, sql, as_text) = (p.classified.clone(), p.sql.clone(), p.as_text);
        self.backend.forget_context(&classified);
        if let Some(refusal) = self.statement_refusal(&classified) {
            self.refuse(&sql, &classified, &refusal);
            return Ok(());
        }
        if as_text {
            // Runs as a text statement, counted as one.
            return self.execute_as_text(id, body).await;
        }
        let started = Instant::now();
        self.pass(packet, Reply::Results { cursor: flags != 0 })
            .await?;
        self.count_statement(classified.class(), Outcome::Executed, started);
        Ok(())
    }

    /// Runs prepared statement `id` as its text with the values of `body` inlined.
    async fn execute_as_text(&mut self, id: u32, body: &[u8]) -> Result<(), End> {
        let Some(p) = self.statements.by_id.get_mut(&id) else {
            return Ok(());
        };
        if p.returns_rows {
            self.client.replies.error(&ErrorReply::new(
                ER_NOT_SUPPORTED_YET,
                "This version of myrelay doesn't yet support prepared writes that return rows \
                 (RETURNING) on a slave; send them as text",
            ));
            return Ok(());
        }
        if std::mem::take(&mut p.long_data_overflow) {
            self.client.replies.error(&ErrorReply::new(
                ER_NET_PACKET_TOO_LARGE,
                format!(
                    "Got a packet bigger than 'max_allowed_packet' bytes: long data of statement {id} exceeded {}",
                    self.node.config.limits.max_allowed_packet
                ),
            ));
            return Ok(());
        }
        let long: Vec<bool> = (0..p.params)
            .map(|i| p.long_data.contains_key(&(i as u16)))
            .collect();
        let decoded = match decode_execute(body, p.params, p.types.as_deref(), &long) {
            Ok(d) => d,
            Err(e) => {
                self.client
                    .replies
                    .error(&ErrorReply::new(ER_WRONG_ARGUMENTS, e.to_string()));
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
        let sql = p.sql.clone();
        let (_, charset) = self.backend.session_context().await;
        let Some(text) = inline(&sql, &values, &charset) else {
            self.client.replies.error(&ErrorReply::new(
                ER_WRONG_ARGUMENTS,
                "Incorrect arguments to mysqld_stmt_execute: the parameters do not match the statement's placeholders",
            ));
            return Ok(());
        };
        self.query(text.as_bytes()).await
    }
}
