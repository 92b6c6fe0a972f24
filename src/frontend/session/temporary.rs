//! Writes to a session's temporary tables, which only this session's backend connection has.
//!
//! Logged for the slaves, `INSERT INTO tmp …` would fail there and stop the applier, or, when
//! `tmp` shadows a real table, change the real one; forwarded from a slave it would reach the
//! master's real table. So a write whose target is a temporary table runs here and is neither
//! logged nor forwarded (its data never leaves the session), and one that writes a temporary and
//! a real table at once is refused: no slave could replay it.

use mysql_async::prelude::Queryable;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use super::Session;
use crate::frontend::reply::ErrorReply;
use crate::sql::classify::{Classified, StatementClass};

/// What a write does to temporary tables.
pub(super) enum TemporaryWrite {
    /// Its target is a temporary table: run it here only.
    Local,
    /// It writes a temporary table and a real one: refused with this error.
    Refused(ErrorReply),
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// Remembers that the session may hold temporary tables from now on: only then do writes
    /// cost the lookups below.
    pub(super) fn note_temporary(&mut self, classified: &Classified) {
        if classified
            .statements
            .iter()
            .any(|s| s.verb == "CREATE TEMPORARY TABLE")
        {
            self.temporary = true;
        }
    }

    /// How the write `classified` involves this session's temporary tables, if it does.
    pub(super) async fn temporary_write(
        &mut self,
        classified: &Classified,
    ) -> Option<TemporaryWrite> {
        if !self.temporary || classified.class() != StatementClass::Write {
            return None;
        }
        let mut verdict = None;
        for stmt in &classified.statements {
            if stmt.class != StatementClass::Write || stmt.tables.is_empty() {
                continue;
            }
            let mut temporary = Vec::with_capacity(stmt.tables.len());
            for table in &stmt.tables {
                temporary.push(self.is_temporary(table).await);
            }
            // INSERT/REPLACE write their first table and only read the others.
            let target_only = matches!(stmt.verb.as_str(), "INSERT" | "REPLACE");
            let local = if target_only {
                temporary[0]
            } else {
                temporary.iter().all(|t| *t)
            };
            let mixed = !local && temporary.iter().any(|t| *t);
            if mixed {
                let name = stmt
                    .tables
                    .iter()
                    .zip(&temporary)
                    .find(|(_, t)| **t)
                    .map(|(n, _)| n.as_str())
                    .unwrap_or("?");
                return Some(TemporaryWrite::Refused(ErrorReply::new(
                    1290,
                    "HY000",
                    format!(
                        "myrelay node '{}' cannot replicate {} writing temporary table '{name}' \
                         together with tables of the database: slaves do not have this session's \
                         temporary tables",
                        self.node.config.name, stmt.verb
                    ),
                )));
            }
            match (local, &verdict) {
                (true, None) => verdict = Some(TemporaryWrite::Local),
                (false, Some(TemporaryWrite::Local)) => {
                    return Some(TemporaryWrite::Refused(ErrorReply::new(
                        1290,
                        "HY000",
                        format!(
                            "myrelay node '{}' cannot replicate a packet that writes temporary \
                             and other tables: send them as separate statements",
                            self.node.config.name
                        ),
                    )));
                }
                _ => {}
            }
        }
        debug!(
            local = verdict.is_some(),
            "write of a session with temporary tables"
        );
        verdict
    }

    /// Whether `table` (`t` or `db.t`) is one of this session's temporary tables: the backend's
    /// `SHOW CREATE TABLE` says `CREATE TEMPORARY TABLE` for those.
    async fn is_temporary(&mut self, table: &str) -> bool {
        if self.ensure_conn().await.is_err() {
            return false;
        }
        let name = match table.split_once('.') {
            Some((db, t)) => format!("{}.{}", quote_part(db), quote_part(t)),
            None => quote_part(table),
        };
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let shown: Option<(String, String)> = conn
            .query_first(format!("SHOW CREATE TABLE {name}"))
            .await
            .ok()
            .flatten();
        shown.is_some_and(|(_, create)| create.starts_with("CREATE TEMPORARY TABLE"))
    }
}

/// One part of a table name as the classifier reports it, quoted for SQL.
fn quote_part(part: &str) -> String {
    crate::sql::quote_ident(part.trim_matches('`'))
}
