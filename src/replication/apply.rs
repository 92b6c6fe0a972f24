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

/// Sets the session context the master ran `change` with: sql_mode and the statements' encoding.
async fn set_session_context(conn: &mut Conn, change: &Change) -> mysql_async::Result<()> {
    conn.query_drop(format!(
        "SET SESSION sql_mode = {}, NAMES {}",
        quote(&change.sql_mode),
        change
            .charset
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "")
    ))
    .await
}

/// Appends `stmt` after its own context (database, pinned time and insert ids) to `out`.
fn push_statement(out: &mut String, stmt: &super::change::LoggedStatement) {
    if let Some(db) = &stmt.db {
        out.push_str(&format!("USE {};\n", quote_ident(db)));
    }
    let timestamp: String = stmt
        .timestamp
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    out.push_str(&format!("SET TIMESTAMP = {timestamp}"));
    if let Some(id) = stmt.insert_id {
        out.push_str(&format!(", INSERT_ID = {id}"));
    }
    if let Some(id) = stmt.last_insert_id {
        out.push_str(&format!(", LAST_INSERT_ID = {id}"));
    }
    out.push_str(";\n");
    out.push_str(&stmt.sql);
}

/// Entries longer than this are not joined with others into one transaction.
const MAX_JOINED_BYTES: usize = 4 << 20;

/// True when `change` is plain writes that can go in one packet, and so also share a transaction
/// with its neighbours (see [`apply_all`]).
fn joins_others(change: &Change) -> bool {
    !change.ddl && change.statements.iter().all(joinable)
}

/// Applies consecutive `entries` in order. A run of plain write entries with the same context
/// commits as one transaction whose LSN record is the run's last, so the backend flushes once
/// per run instead of once per entry: a slave keeps up with a master that commits in groups.
/// Exactly once still holds, since the run and its record commit together or not at all. A run
/// that fails is rolled back and its entries applied one by one, so the error names the entry;
/// the error comes with that entry's LSN, every entry before it being applied.
pub async fn apply_all(
    conn: &mut Conn,
    entries: &[(u64, Change)],
    context: &mut AppliedContext,
) -> Result<(), (u64, mysql_async::Error)> {
    let mut start = 0;
    while start < entries.len() {
        let first = &entries[start].1;
        let mut end = start + 1;
        if joins_others(first) {
            let mut bytes = 0;
            while let Some((_, next)) = entries.get(end) {
                bytes += next.statements.iter().map(|s| s.sql.len()).sum::<usize>();
                if !joins_others(next)
                    || bytes > MAX_JOINED_BYTES
                    || (&next.sql_mode, &next.charset) != (&first.sql_mode, &first.charset)
                {
                    break;
                }
                end += 1;
            }
        }
        let run = &entries[start..end];
        if run.len() > 1 {
            match apply_joined(conn, run, context).await {
                Ok(()) => {
                    start = end;
                    continue;
                }
                // Apply one by one: the failing entry is then known, the others applied.
                Err(mysql_async::Error::Server(_)) => {}
                Err(e) => return Err((run[0].0, e)),
            }
        }
        for (lsn, change) in run {
            apply(conn, *lsn, change, context)
                .await
                .map_err(|e| (*lsn, e))?;
        }
        start = end;
    }
    Ok(())
}

/// One transaction, one packet: BEGIN, every statement of `run` after its context, the last
/// LSN's record and COMMIT.
async fn apply_joined(
    conn: &mut Conn,
    run: &[(u64, Change)],
    context: &mut AppliedContext,
) -> mysql_async::Result<()> {
    let (Some((_, first)), Some((last, _))) = (run.first(), run.last()) else {
        return Ok(());
    };
    let wanted = (first.sql_mode.clone(), first.charset.clone());
    if context.as_ref() != Some(&wanted) {
        *context = None;
        set_session_context(conn, first).await?;
        *context = Some(wanted);
    }
    let mut packet = String::from("BEGIN;\n");
    for stmt in run.iter().flat_map(|(_, change)| &change.statements) {
        push_statement(&mut packet, stmt);
        packet.push_str(";\n");
    }
    packet.push_str(&format!(
        "SET TIMESTAMP = DEFAULT; {}; COMMIT",
        record_lsn(*last)
    ));
    let result = conn.query_drop(packet).await;
    if result.is_err() {
        let _ = conn.query_drop("ROLLBACK").await;
    }
    result
}

async fn apply_in_context(
    conn: &mut Conn,
    lsn: u64,
    change: &Change,
    set_context: bool,
) -> mysql_async::Result<()> {
    if set_context {
        set_session_context(conn, change).await?;
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
    let one_packet = joins_others(change);
    let mut prefix = if change.ddl { "" } else { "BEGIN;\n" }.to_string();
    let result = async {
        for stmt in &change.statements {
            let mut context = std::mem::take(&mut prefix);
            push_statement(&mut context, stmt);
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
