//! Applies a logged change to a backend exactly once: the change and the new applied LSN commit
//! in one transaction, so a crash at any point neither skips nor repeats an entry.
//!
//! Used by slaves for every entry and by the master to replay entries its own backend missed
//! (logged, then the node died before COMMIT).

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::change::Change;

/// Creates the bookkeeping table on a backend if needed.
pub async fn prepare(conn: &mut Conn) -> mysql_async::Result<()> {
    conn.query_drop(
        "CREATE DATABASE IF NOT EXISTS myrelay; \
         CREATE TABLE IF NOT EXISTS myrelay.applied \
           (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, lsn BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB; \
         INSERT IGNORE INTO myrelay.applied VALUES (1, 0)",
    )
    .await
}

/// The last LSN this backend has applied.
pub async fn applied_lsn(conn: &mut Conn) -> mysql_async::Result<u64> {
    Ok(conn
        .query_first::<u64, _>("SELECT lsn FROM myrelay.applied WHERE id = 1")
        .await?
        .unwrap_or(0))
}

/// The statement that records `lsn` as applied; runs inside the change's transaction.
pub fn record_lsn(lsn: u64) -> String {
    format!("UPDATE myrelay.applied SET lsn = {lsn} WHERE id = 1")
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Applies entry `lsn` holding `change`. DDL cannot share a transaction with the LSN update in
/// MariaDB (it commits implicitly), so a DDL entry records its LSN right after it ran.
pub async fn apply(conn: &mut Conn, lsn: u64, change: &Change) -> mysql_async::Result<()> {
    // The session context the master ran with: sql_mode and the statements' encoding.
    conn.query_drop(format!(
        "SET SESSION sql_mode = {}, NAMES {}",
        quote(&change.sql_mode),
        change
            .charset
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "")
    ))
    .await?;
    if !change.ddl {
        conn.query_drop("BEGIN").await?;
    }
    let result = async {
        for stmt in &change.statements {
            if let Some(db) = &stmt.db {
                conn.query_drop(format!("USE `{}`", db.replace('`', "``")))
                    .await?;
            }
            let timestamp: String = stmt
                .timestamp
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut context = format!("SET TIMESTAMP = {timestamp}");
            if let Some(id) = stmt.insert_id {
                context.push_str(&format!(", INSERT_ID = {id}"));
            }
            if let Some(id) = stmt.last_insert_id {
                context.push_str(&format!(", LAST_INSERT_ID = {id}"));
            }
            conn.query_drop(context).await?;
            conn.query_drop(stmt.sql.as_str()).await?;
        }
        conn.query_drop(format!("SET TIMESTAMP = DEFAULT; {}", record_lsn(lsn)))
            .await?;
        if !change.ddl {
            conn.query_drop("COMMIT").await?;
        }
        Ok(())
    }
    .await;
    if result.is_err() && !change.ddl {
        let _ = conn.query_drop("ROLLBACK").await;
    }
    result
}
