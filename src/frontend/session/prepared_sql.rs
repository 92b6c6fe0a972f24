//! SQL-level prepared statements (`PREPARE` / `EXECUTE … USING` / `EXECUTE IMMEDIATE` /
//! `DEALLOCATE PREPARE`): every node judges the statement a `PREPARE` or `EXECUTE IMMEDIATE`
//! names, also when a user variable holds it; a slave, which forwards writes, also rewrites them.
//!
//! The slave's backend keeps the prepared statement, and the master does not have it: an
//! `EXECUTE` that changes data is therefore run as the text it was prepared from, with its
//! values inlined, so that the master gets one self-contained statement — the same rule as for
//! binary-protocol prepared writes. `PREPARE` itself stays on the node's own backend
//! (it is session state), after the policy has judged the statement it prepares.

use mysql_common::value::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{BackendSession, End, Session};
use crate::backend::wire::{ColumnKind, WireError};
use crate::error::{ER_UNKNOWN_STMT_HANDLER, ER_WRONG_ARGUMENTS, ErrorReply};
use crate::sql::class::StatementClass;
use crate::sql::classify::{Classified, classify};
use crate::sql::inline::{inline, placeholders};
use crate::sql::prepare::{PreparedSql, Source};

/// A text row's values typed by their columns: integers and floating-point numbers as numbers,
/// everything else as its bytes, NULL as NULL.
fn typed_values(kinds: &[ColumnKind], row: Vec<Option<String>>) -> Vec<Value> {
    use mysql_common::constants::{ColumnFlags, ColumnType::*};
    kinds
        .iter()
        .zip(row)
        .map(|((ty, flags), value)| {
            let Some(text) = value else {
                return Value::NULL;
            };
            let number = match ty {
                MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_INT24
                | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => {
                    if flags.contains(ColumnFlags::UNSIGNED_FLAG) {
                        text.parse().ok().map(Value::UInt)
                    } else {
                        text.parse().ok().map(Value::Int)
                    }
                }
                MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => text.parse().ok().map(Value::Double),
                _ => None,
            };
            number.unwrap_or_else(|| Value::Bytes(text.into_bytes()))
        })
        .collect()
}

/// What the session does with a prepared-statement command.
pub(super) enum Plan {
    /// Answered already.
    Done,
    /// Run this text instead, as if the client had sent it.
    RunInstead(String),
}

impl BackendSession {
    /// Forgets the remembered `sql_mode` and client charset when `classified` may change them.
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

    /// The session's `sql_mode` and client charset, which inlining values into text needs:
    /// asked of the backend once, then remembered until a statement that may change them runs
    /// (see `forget_context`). Only a slave inlines (to forward a prepared write).
    pub(super) async fn session_context(&mut self) -> (String, String) {
        if let Some(known) = &self.context {
            return known.clone();
        }
        let asked = self
            .wire
            .query("SELECT @@session.sql_mode, @@session.character_set_client")
            .await;
        match asked.ok().and_then(|rows| rows.into_iter().next()) {
            Some(row) => {
                let mut row = row.into_iter().map(Option::unwrap_or_default);
                let context = (
                    row.next().unwrap_or_default(),
                    row.next().unwrap_or_else(|| "utf8mb4".into()),
                );
                self.context = Some(context.clone());
                context
            }
            None => (String::new(), "utf8mb4".into()),
        }
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// True when the node sends changes somewhere else (a slave forwards them to the master):
    /// only then must an `EXECUTE` name what it runs.
    fn relays_changes(&self) -> bool {
        self.node.replica.is_some()
    }

    /// Handles `command` (the packet `sql`): judged on every node, inlined on a slave.
    pub(super) async fn prepared_sql(
        &mut self,
        sql: &[u8],
        command: PreparedSql,
    ) -> Result<Plan, End> {
        self.backend.context = None;
        // Whatever is not resolved here runs as sent, through classification and policy.
        let as_sent = || Ok(Plan::RunInstead(String::from_utf8_lossy(sql).into_owned()));
        // A master runs them as sent, once it judged the statement prepared as it judges any:
        // what it reads, not only its class (a statement held in a user variable is read first,
        // unobservably: PREPARE resets the diagnostics that SELECT would touch).
        let prepares = matches!(
            &command,
            PreparedSql::Prepare { .. } | PreparedSql::Immediate { .. }
        );
        if !self.relays_changes() && !prepares {
            return as_sent();
        }
        match command {
            PreparedSql::Prepare { name, source } => {
                // The server drops the old statement of that name whatever happens next.
                self.statements.by_name.remove(&name);
                let Some(text) = self.source_text(&source).await else {
                    return as_sent();
                };
                let classified = self.classify(&text).await;
                if let Some(refusal) = self.refusal(&text, &classified) {
                    self.refuse(&text, &classified, &refusal);
                    return Ok(Plan::Done);
                }
                if self.execute(sql).await? && self.relays_changes() {
                    self.statements.by_name.insert(name, text);
                }
                Ok(Plan::Done)
            }
            PreparedSql::Execute { name, using } => {
                let known = self.statements.by_name.get(&name).cloned();
                let Some(text) = known else {
                    self.client.replies.error(&ErrorReply::new(
                        ER_UNKNOWN_STMT_HANDLER,
                        format!(
                            "Unknown prepared statement handler ({name}) given to EXECUTE: \
                             myrelay knows the statements prepared in a packet of their own on \
                             this connection"
                        ),
                    ));
                    return Ok(Plan::Done);
                };
                self.inline_execute(sql, &text, &using).await
            }
            PreparedSql::Immediate { source, using } => {
                let Some(text) = self.source_text(&source).await else {
                    return as_sent();
                };
                let classified = self.classify(&text).await;
                if let Some(refusal) = self.refusal(&text, &classified) {
                    self.refuse(&text, &classified, &refusal);
                    return Ok(Plan::Done);
                }
                if !self.relays_changes() {
                    self.execute(sql).await?;
                    return Ok(Plan::Done);
                }
                self.inline_execute(sql, &text, &using).await
            }
            PreparedSql::Deallocate { name } => {
                if self.execute(sql).await? {
                    self.statements.by_name.remove(&name);
                }
                Ok(Plan::Done)
            }
        }
    }

    /// The SQL a `PREPARE` or `EXECUTE IMMEDIATE` names: the literal, or the variable's value.
    async fn source_text(&mut self, source: &Source) -> Option<String> {
        match source {
            Source::Literal(text) => Some(text.clone()),
            Source::Variable(var) => self
                .backend
                .wire
                .query_value(&format!("SELECT {var}"))
                .await
                .ok()
                .flatten(),
        }
    }

    /// `EXECUTE` of `text` with `using`: a statement that runs here (a read or session change)
    /// runs as sent; anything else becomes `text` with the values inlined.
    async fn inline_execute(
        &mut self,
        sql: &[u8],
        text: &str,
        using: &[String],
    ) -> Result<Plan, End> {
        let classified = classify(text);
        if classified.class() <= StatementClass::Session && !self.forwards(&classified) {
            self.execute(sql).await?;
            return Ok(Plan::Done);
        }
        if placeholders(text) != using.len() {
            // What the server answers, without sending it something that might run unlogged.
            self.client.replies.error(&ErrorReply::new(
                ER_WRONG_ARGUMENTS,
                "Incorrect arguments to EXECUTE",
            ));
            return Ok(Plan::Done);
        }
        let values: Vec<Value> = if using.is_empty() {
            Vec::new()
        } else {
            // Each value with the type its column reports, as EXECUTE would bind it.
            match self
                .backend
                .wire
                .query_typed(&format!("SELECT {}", using.join(", ")))
                .await
            {
                Ok((kinds, rows)) => rows
                    .into_iter()
                    .next()
                    .map(|row| typed_values(&kinds, row))
                    .unwrap_or_default(),
                Err(e @ WireError::Server { .. }) => {
                    self.client.replies.error(&e.reply());
                    return Ok(Plan::Done);
                }
                Err(e) => {
                    self.client.backend_lost(&e)?;
                    return Ok(Plan::Done);
                }
            }
        };
        let (_, charset) = self.backend.session_context().await;
        match inline(text, &values, &charset) {
            Some(inlined) => Ok(Plan::RunInstead(inlined)),
            None => {
                self.client.replies.error(&ErrorReply::new(
                    ER_WRONG_ARGUMENTS,
                    "Incorrect arguments to EXECUTE",
                ));
                Ok(Plan::Done)
            }
        }
    }
}
