//! Applies a logged change to a backend exactly once: the change and the new applied LSN commit
//! in one transaction, so a crash at any point neither skips nor repeats an entry.
//!
//! Used by slaves for every entry and by the master to replay entries its own backend missed
//! (logged, then the node died before COMMIT).
//!
//! DDL commits implicitly in MariaDB, so it cannot share that transaction. Its entry is marked
//! as in progress (`ddl_pending`) before it runs and recorded after; if the node died in between,
//! the retry tolerates the errors that mean "already done" for that entry only.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::change::Change;
use crate::backend::relay::supply_infile;
use crate::sql::quote_ident;

/// Creates the bookkeeping tables on a backend if needed: `applied` holds the low-water mark
/// (every entry up to it is applied), `committed` the entries a master committed beyond it.
pub async fn prepare(conn: &mut Conn) -> mysql_async::Result<()> {
    conn.query_drop(
        "CREATE DATABASE IF NOT EXISTS myrelay; \
         CREATE TABLE IF NOT EXISTS myrelay.applied \
           (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, lsn BIGINT UNSIGNED NOT NULL, \
            ddl_pending BIGINT UNSIGNED NULL) ENGINE=InnoDB; \
         INSERT IGNORE INTO myrelay.applied (id, lsn) VALUES (1, 0); \
         CREATE TABLE IF NOT EXISTS myrelay.committed \
           (lsn BIGINT UNSIGNED NOT NULL PRIMARY KEY) ENGINE=InnoDB",
    )
    .await
}

/// The highest LSN a backend has applied: a slave's low-water mark, or beyond it the master's
/// latest commit row (with no entry in flight, every entry up to it is applied).
pub const HIGHEST_APPLIED_SQL: &str = "SELECT GREATEST((SELECT lsn FROM myrelay.applied WHERE id = 1), \
     COALESCE((SELECT MAX(lsn) FROM myrelay.committed), 0))";

/// The low-water mark of this backend: every entry up to it is applied.
pub async fn applied_lsn(conn: &mut Conn) -> mysql_async::Result<u64> {
    Ok(conn
        .query_first::<u64, _>("SELECT lsn FROM myrelay.applied WHERE id = 1")
        .await?
        .unwrap_or(0))
}

/// The statement that records `lsn` as applied; runs inside the change's transaction.
pub fn record_lsn(lsn: u64) -> String {
    format!("UPDATE myrelay.applied SET lsn = {lsn}, ddl_pending = NULL WHERE id = 1")
}

/// Errors a DDL statement gives when it already ran: table/database/column/key/routine/trigger
/// exists, or what it drops is already gone.
const ALREADY_DONE: [u16; 12] = [
    1007, 1008, 1050, 1051, 1060, 1061, 1091, 1146, 1304, 1305, 1359, 1360,
];

fn already_done(err: &mysql_async::Error) -> bool {
    matches!(err, mysql_async::Error::Server(e) if ALREADY_DONE.contains(&e.code))
}

/// True when `stmt` can share a packet with other statements: see `apply`.
fn joinable(stmt: &super::change::LoggedStatement) -> bool {
    let sql = stmt.sql.trim_end();
    stmt.infile.is_none()
        && !sql.ends_with(';')
        && !["--", "#", "/*"].iter().any(|marker| sql.contains(marker))
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The `sql_mode` and charset an applier connection was last set to, so that a run of entries
/// from sessions alike sets them once. `None` when unknown (a new connection, or after an error).
pub type AppliedContext = Option<(String, String)>;

/// Applies entry `lsn` holding `change` on `conn`, whose context is `context`. DDL cannot share a
/// transaction with the LSN update in MariaDB (it commits implicitly), so a DDL entry records its
/// LSN right after it ran.
pub async fn apply(
    conn: &mut Conn,
    lsn: u64,
    change: &Change,
    context: &mut AppliedContext,
) -> mysql_async::Result<()> {
    let wanted = (change.sql_mode.clone(), change.charset.clone());
    let result = apply_in_context(conn, lsn, change, context.as_ref() != Some(&wanted)).await;
    *context = result.is_ok().then_some(wanted);
    result
}

async fn apply_in_context(
    conn: &mut Conn,
    lsn: u64,
    change: &Change,
    set_context: bool,
) -> mysql_async::Result<()> {
    // The session context the master ran with: sql_mode and the statements' encoding.
    if set_context {
        conn.query_drop(format!(
            "SET SESSION sql_mode = {}, NAMES {}",
            quote(&change.sql_mode),
            change
                .charset
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "")
        ))
        .await?;
    }
    // A DDL entry marked in progress was interrupted by a crash: it may have run already.
    let retry = change.ddl
        && conn
            .query_first::<Option<u64>, _>("SELECT ddl_pending FROM myrelay.applied WHERE id = 1")
            .await?
            .flatten()
            == Some(lsn);
    if change.ddl {
        conn.query_drop(format!(
            "UPDATE myrelay.applied SET ddl_pending = {lsn} WHERE id = 1"
        ))
        .await?;
    }
    // A write entry goes in one packet: BEGIN, each statement after its context, the LSN record
    // and COMMIT; the server stops at the first error. Only statements that plainly end where
    // their text ends are joined (no comment anywhere, no trailing `;`, which would leave an
    // empty statement). DDL (which tolerates "already done" per statement on a retry), LOCAL
    // INFILE (one file per statement) and the rest go a statement per round trip.
    let one_packet = !change.ddl && change.statements.iter().all(joinable);
    let mut prefix = if change.ddl { "" } else { "BEGIN;\n" }.to_string();
    let result = async {
        for stmt in &change.statements {
            if let Some(db) = &stmt.db {
                prefix.push_str(&format!("USE {};\n", quote_ident(db)));
            }
            let timestamp: String = stmt
                .timestamp
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut context = std::mem::take(&mut prefix);
            context.push_str(&format!("SET TIMESTAMP = {timestamp}"));
            if let Some(id) = stmt.insert_id {
                context.push_str(&format!(", INSERT_ID = {id}"));
            }
            if let Some(id) = stmt.last_insert_id {
                context.push_str(&format!(", LAST_INSERT_ID = {id}"));
            }
            context.push_str(";\n");
            context.push_str(&stmt.sql);
            if one_packet {
                prefix = context;
                prefix.push_str(";\n");
                continue;
            }
            if let Some(data) = stmt
                .infile_bytes()
                .map_err(|e| mysql_async::Error::Other(e.into()))?
            {
                supply_infile(conn, data.into());
            }
            match conn.query_drop(context).await {
                Err(e) if retry && already_done(&e) => {
                    tracing::warn!(lsn, error = %e, "DDL interrupted by a crash had already run");
                }
                other => other?,
            }
        }
        let commit = if change.ddl { "" } else { "; COMMIT" };
        conn.query_drop(format!(
            "{prefix}SET TIMESTAMP = DEFAULT; {}{commit}",
            record_lsn(lsn)
        ))
        .await
    }
    .await;
    if result.is_err() && !change.ddl {
        let _ = conn.query_drop("ROLLBACK").await;
    }
    result
}
