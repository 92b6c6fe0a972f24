//! A slave's replication is never held back by a client for long: when the backend's applier
//! has waited `replication.apply_lock_wait_ms` for a table's metadata lock that a client session
//! of this node holds, the node kills that session's backend connection, which releases its
//! locks, and tells the client why.
//!
//! Metadata locks are the ones a slave's client can hold: a statement under way (a long
//! `SELECT`), an open `HANDLER`. Row locks it cannot: its transactions run on the master (see
//! `frontend/session/forward.rs`) and a locking read in autocommit takes none.
//!
//! The backend says who holds which metadata lock through the `metadata_lock_info` plugin
//! (shipped with MariaDB; the node installs it when it is missing). It is asked only while the
//! backend has relayed transactions left to apply, so an idle or caught-up slave pays nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::slave::Replica;
use crate::sql::classify::classify;
use crate::sql::schemas::{placed, unquoted};

/// The backend's replication applier threads (the SQL thread, parallel workers).
const APPLIERS_SQL: &str = "SELECT ID, STATE, DB, INFO FROM information_schema.PROCESSLIST \
     WHERE COMMAND IN ('Slave_SQL', 'Slave_worker')";

/// Granted metadata locks on tables, by connection.
const TABLE_MDL_SQL: &str = "SELECT THREAD_ID, TABLE_SCHEMA, TABLE_NAME \
     FROM information_schema.METADATA_LOCK_INFO WHERE TABLE_NAME <> ''";

const MDL_PLUGIN_SQL: &str = "SELECT COUNT(*) FROM information_schema.PLUGINS \
     WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'";

/// A backend connection holding a lock an applier waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Blocker {
    /// Its connection id on the backend.
    thread: u32,
    /// The lock, as told to the client: "the metadata lock on `db`.`t`".
    lock: String,
}

/// An applier thread as the process list shows it.
struct Applier {
    id: u32,
    state: String,
    db: Option<String>,
    info: Option<String>,
}

impl Applier {
    fn waits_on_metadata(&self) -> bool {
        self.state.starts_with("Waiting for") && self.state.ends_with("metadata lock")
    }

    /// The tables (database, name) the statement it runs touches; empty when it names none
    /// (then any table's metadata lock may be the one).
    fn tables(&self) -> Vec<(String, String)> {
        let Some(info) = &self.info else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for stmt in classify(info).statements {
            for table in &stmt.tables {
                if let (Some(db), name) = placed(self.db.as_deref(), table) {
                    out.push((db.to_string(), name.to_string()));
                }
            }
            for db in &stmt.databases {
                out.push((unquoted(db).to_string(), String::new()));
            }
        }
        out
    }
}

/// Watches the backend's appliers of `replica` until `shutdown` fires. A session found holding
/// a lock an applier has waited on for `bound` is given to `preempt` (its connection id and why),
/// which tells the session and answers whether it is one of this node's; if so its backend
/// connection is killed. Connections that are not the node's sessions are left alone (logged).
pub async fn guard(
    replica: Arc<Replica>,
    bound: Duration,
    preempt: impl Fn(u32, &str) -> bool,
    mut shutdown: watch::Receiver<bool>,
) {
    let tick = (bound / 10).clamp(Duration::from_millis(20), Duration::from_millis(500));
    let mut waiting_since: HashMap<u32, Instant> = HashMap::new();
    let mut foreign_logged: HashSet<u32> = HashSet::new();
    let mut conn: Option<Conn> = None;
    // Whether the backend tells metadata lock holders; asked once.
    let mut mdl_visible: Option<bool> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        if !replica.behind() {
            waiting_since.clear();
            continue;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match replica.pool().get_conn().await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    debug!(error = %e, "lock watch: backend unreachable");
                    continue;
                }
            },
        };
        let visible = match mdl_visible {
            Some(visible) => visible,
            None => *mdl_visible.insert(metadata_locks_visible(c).await),
        };
        if !visible {
            continue;
        }
        let blockers = match blockers(c).await {
            Ok(b) => b,
            Err(e) => {
                debug!(error = %e, "lock watch: asking the backend");
                conn = None;
                continue;
            }
        };
        let now = Instant::now();
        waiting_since.retain(|thread, _| blockers.iter().any(|b| b.thread == *thread));
        foreign_logged.retain(|thread| blockers.iter().any(|b| b.thread == *thread));
        for b in blockers {
            let since = *waiting_since.entry(b.thread).or_insert(now);
            if now - since < bound {
                continue;
            }
            let why = format!(
                "replication needed {} that this connection held for over {} ms \
                 (replication.apply_lock_wait_ms)",
                b.lock,
                bound.as_millis()
            );
            if preempt(b.thread, &why) {
                warn!(connection_id = b.thread, lock = %b.lock, "killing a client connection that held back replication");
                kill(c, b.thread).await;
                replica.count_lock_kill(format!(
                    "killed client connection {}: replication waited {} ms for {}",
                    b.thread,
                    bound.as_millis(),
                    b.lock
                ));
                waiting_since.remove(&b.thread);
            } else if foreign_logged.insert(b.thread) {
                warn!(connection_id = b.thread, lock = %b.lock,
                    "replication waits on a backend connection that is not a client of this node; left alone");
            }
        }
    }
}

/// True when the backend tells metadata lock holders, after installing `metadata_lock_info`
/// if it was not (not written to the backend's binlog: it is this server's own business).
async fn metadata_locks_visible(conn: &mut Conn) -> bool {
    if let Ok(Some(1u64)) = conn.query_first(MDL_PLUGIN_SQL).await {
        return true;
    }
    let installed = async {
        conn.query_drop("SET SESSION sql_log_bin = 0").await?;
        let r = conn.query_drop("INSTALL SONAME 'metadata_lock_info'").await;
        conn.query_drop("SET SESSION sql_log_bin = 1").await?;
        r
    }
    .await;
    match installed {
        Ok(()) => {
            info!("installed metadata_lock_info: replication's metadata lock waits can be told");
            true
        }
        Err(e) => {
            warn!(error = %e, "no metadata_lock_info plugin: clients holding a metadata lock \
                replication waits on cannot be found");
            false
        }
    }
}

/// The connections holding metadata locks that an applier waits on now.
async fn blockers(conn: &mut Conn) -> mysql_async::Result<Vec<Blocker>> {
    let appliers: Vec<Applier> = conn
        .query_map(
            APPLIERS_SQL,
            |(id, state, db, info): (u64, Option<String>, Option<String>, Option<String>)| {
                Applier {
                    id: u32::try_from(id).unwrap_or(u32::MAX),
                    state: state.unwrap_or_default(),
                    db,
                    info,
                }
            },
        )
        .await?;
    let mut out: Vec<Blocker> = Vec::new();
    let waiting: Vec<&Applier> = appliers.iter().filter(|a| a.waits_on_metadata()).collect();
    if waiting.is_empty() {
        return Ok(out);
    }
    let held: Vec<(u64, String, String)> = conn.query(TABLE_MDL_SQL).await?;
    for applier in waiting {
        let wanted = applier.tables();
        for (thread, db, table) in &held {
            let Ok(thread) = u32::try_from(*thread) else {
                continue;
            };
            let hit = wanted.is_empty()
                || wanted.iter().any(|(w_db, w_table)| {
                    w_db.eq_ignore_ascii_case(db)
                        && (w_table.is_empty() || w_table.eq_ignore_ascii_case(table))
                });
            let applier_thread = appliers.iter().any(|a| a.id == thread);
            if hit && !applier_thread && !out.iter().any(|b| b.thread == thread) {
                out.push(Blocker {
                    thread,
                    lock: format!("the metadata lock on `{db}`.`{table}`"),
                });
            }
        }
    }
    Ok(out)
}

/// Kills backend connection `thread`, ending its statement and rolling its transaction back.
async fn kill(conn: &mut Conn, thread: u32) {
    if let Err(e) = conn.query_drop(format!("KILL CONNECTION {thread}")).await {
        // Most likely it ended by itself meanwhile.
        debug!(connection_id = thread, error = %e, "killing a connection that held back replication");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applier(state: &str, db: Option<&str>, info: Option<&str>) -> Applier {
        Applier {
            id: 7,
            state: state.into(),
            db: db.map(str::to_string),
            info: info.map(str::to_string),
        }
    }

    #[test]
    fn tells_a_metadata_wait_and_the_tables_it_is_for() {
        let a = applier(
            "Waiting for table metadata lock",
            Some("school"),
            Some("ALTER TABLE student ADD COLUMN nick VARCHAR(20)"),
        );
        assert!(a.waits_on_metadata());
        assert_eq!(a.tables(), [("school".into(), "student".into())]);
        let a = applier(
            "Waiting for schema metadata lock",
            None,
            Some("DROP DATABASE `shop`"),
        );
        assert!(a.waits_on_metadata());
        assert_eq!(a.tables(), [("shop".into(), String::new())]);
        let a = applier(
            "Slave has read all relay log; waiting for more updates",
            None,
            None,
        );
        assert!(!a.waits_on_metadata());
        assert!(a.tables().is_empty());
    }
}
