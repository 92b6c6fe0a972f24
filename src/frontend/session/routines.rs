//! A `CALL` judged by the body of the procedure it calls, read from the node's own backend: a
//! procedure runs with its definer's rights, so `CALL p()` is DDL when `p` drops a table. And a
//! statement that calls a stored function judged by what the function does: `SELECT f()` is a
//! write when `f` inserts a row. A loadable UDF's native code cannot be read, so a statement that
//! runs one (itself, or in a body it calls) is admin unless the config lists the UDF safe.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use super::Session;
use crate::backend::functions::Catalog;
use crate::sql::class::StatementClass;
use crate::sql::classify::Classified;
use crate::sql::routine::{body_class, called, function_calls};

/// Procedures looked up for one statement at most (nested calls included); past that the call
/// is Admin, so that a chain of procedures cannot make the node query without end.
const MAX_LOOKUPS: usize = 16;

const BODY_SQL: &str = "SELECT ROUTINE_DEFINITION FROM information_schema.ROUTINES \
     WHERE ROUTINE_TYPE = 'PROCEDURE' AND ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ?";

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// Raises every `CALL` statement of `classified` (the packet `text`) to the class of the
    /// bodies it runs, nested calls included. A procedure the backend does not have leaves the
    /// `CALL` a write: the backend refuses it anyway.
    pub(super) async fn judge_calls(&mut self, text: &str, classified: &mut Classified) {
        if !classified.statements.iter().any(|s| s.verb == "CALL") {
            return;
        }
        let mut queue = called(text);
        let mut seen: Vec<String> = Vec::new();
        let mut class = StatementClass::Write;
        // What the bodies call as functions: a UDF among them runs for the caller too.
        let mut body_calls: Vec<String> = Vec::new();
        while let Some(name) = queue.pop() {
            if seen.contains(&name) {
                continue;
            }
            if seen.len() == MAX_LOOKUPS {
                class = StatementClass::Admin;
                break;
            }
            seen.push(name.clone());
            let Some(body) = self.procedure_body(&name).await else {
                continue;
            };
            class = class.max(body_class(&body));
            queue.extend(called(&body));
            body_calls.extend(function_calls(&body));
        }
        let udf = if body_calls.is_empty() {
            None
        } else {
            self.function_catalog()
                .await
                .unsafe_udf(&body_calls, &self.node.config.safe_udfs)
        };
        if udf.is_some() {
            class = StatementClass::Admin;
        }
        debug!(procedures = ?seen, class = class.as_str(), udf, "judged CALL by its bodies");
        for stmt in classified
            .statements
            .iter_mut()
            .filter(|s| s.verb == "CALL")
        {
            stmt.class = stmt.class.max(class);
            if stmt.unsafe_udf.is_none() {
                stmt.unsafe_udf.clone_from(&udf);
            }
        }
    }

    /// Raises the reads and session statements of `classified` (the packet `text`) to writes
    /// when it calls a stored function that changes data, and the whole packet to admin when it
    /// runs a loadable UDF the config does not list safe (directly or in a stored function).
    pub(super) async fn judge_functions(&mut self, text: &str, classified: &mut Classified) {
        // DDL is already judged as administration is (admins, on the master); not reading the
        // catalog for it spares a migration a read per statement (each DDL clears the cache).
        if classified.class() >= StatementClass::Ddl {
            return;
        }
        // A write is looked at for UDFs only: most backends have none, and then a write packet
        // is not lexed again here.
        if classified.class() >= StatementClass::Write
            && self.function_catalog().await.udfs.is_empty()
        {
            return;
        }
        let calls = function_calls(text);
        if calls.is_empty() {
            return;
        }
        let catalog = self.function_catalog().await;
        if let Some(udf) = catalog.unsafe_udf(&calls, &self.node.config.safe_udfs) {
            debug!(udf, "calls a loadable UDF not listed safe");
            for stmt in &mut classified.statements {
                stmt.class = StatementClass::Admin;
                stmt.unsafe_udf = Some(udf.clone());
            }
            return;
        }
        if classified.class() >= StatementClass::Write
            || !calls.iter().any(|name| catalog.writers.contains(name))
        {
            return;
        }
        debug!("calls a stored function that writes");
        for stmt in &mut classified.statements {
            if stmt.class < StatementClass::Transaction {
                stmt.class = StatementClass::Write;
            }
        }
    }

    /// The backend's functions as of the schema this node last saw change (a slave's replicated
    /// DDL included), read once per change.
    async fn function_catalog(&mut self) -> Arc<Catalog> {
        let replicated = self.node.replica.as_ref().map_or(0, |r| r.schema_changes());
        self.node
            .functions
            .catalog(&self.node.backend, replicated)
            .await
    }

    /// The body of procedure `name` (`p` in the current database, or `db.p`), read on a
    /// connection of the node's own.
    async fn procedure_body(&mut self, name: &str) -> Option<String> {
        let (db, proc) = match name.split_once('.') {
            Some((db, proc)) => (db.to_string(), proc.to_string()),
            None => (self.backend.db.clone()?, name.to_string()),
        };
        let mut conn = self.node.backend.acquire().await.ok()?;
        conn.exec_first::<Option<String>, _, _>(BODY_SQL, (db, proc))
            .await
            .ok()
            .flatten()
            .flatten()
    }
}
