//! The stored functions of the backend that change data, so that `SELECT f()`, `DO f()` or
//! `SET @v = f()` is judged as the write it is: refused to read-only users, forwarded by a slave
//! to the master (its own backend would diverge, then stop on the master's row).
//!
//! Read from `information_schema.ROUTINES` on a connection of the node's own, once, then kept
//! until the schema may have changed: the node ran DDL, or (on a slave) applied a replicated one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use tracing::{debug, warn};

use super::pool::Backend;
use crate::sql::routine::{function_calls, function_writes};

const FUNCTIONS_SQL: &str = "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_DEFINITION \
     FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION'";

/// Names (lower case, `f` and `db.f`) of the stored functions that change data.
pub type Writers = HashSet<String>;

/// A schema generation: changes through this node, DDL applied by replication.
type Generation = (u64, u64);

/// The backend's writing stored functions, kept between schema changes.
#[derive(Default)]
pub struct StoredFunctions {
    /// Bumped when this node may have changed the schema.
    changes: AtomicU64,
    /// The set, with the schema generation (this node's, the replica's) it was read at.
    known: Mutex<Option<(Generation, Arc<Writers>)>>,
}

impl StoredFunctions {
    /// The schema may have changed through this node: read the functions again when next asked.
    pub fn invalidate(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// The writing functions as of schema generation `replicated` (a slave's count of applied
    /// DDL; 0 elsewhere). Empty when the backend cannot be asked (then the statement fails there
    /// anyway).
    pub async fn writers(&self, backend: &Backend, replicated: u64) -> Arc<Writers> {
        // Read before asking: a change during the query leaves the result stale, not kept.
        let generation: Generation = (self.changes.load(Ordering::SeqCst), replicated);
        if let Ok(known) = self.known.lock()
            && let Some((at, writers)) = known.as_ref()
            && *at == generation
        {
            return writers.clone();
        }
        let rows: Vec<(String, String, Option<String>)> = match backend.acquire().await {
            Ok(mut conn) => match conn.query(FUNCTIONS_SQL).await {
                Ok(rows) => rows,
                Err(e) => {
                    warn!(error = %e, "reading the backend's stored functions");
                    return Arc::default();
                }
            },
            Err(_) => return Arc::default(),
        };
        let writers = Arc::new(writing(&rows));
        debug!(
            functions = rows.len(),
            writing = writers.len(),
            "stored functions read"
        );
        if let Ok(mut known) = self.known.lock() {
            *known = Some((generation, writers.clone()));
        }
        writers
    }
}

/// The functions among `rows` (schema, name, body) that change data, themselves or through the
/// functions they call. A body the node may not read (NULL) counts as writing.
fn writing(rows: &[(String, String, Option<String>)]) -> Writers {
    let names = |schema: &str, name: &str| {
        let name = name.to_lowercase();
        [format!("{}.{name}", schema.to_lowercase()), name]
    };
    let mut calls: HashMap<usize, Vec<String>> = HashMap::new();
    let mut out = Writers::new();
    for (i, (schema, name, body)) in rows.iter().enumerate() {
        match body {
            Some(body) if !function_writes(body) => {
                calls.insert(i, function_calls(body));
            }
            _ => out.extend(names(schema, name)),
        }
    }
    // A function that calls a writing one writes: spread until nothing changes.
    loop {
        let newly: Vec<usize> = calls
            .iter()
            .filter(|(_, called)| called.iter().any(|c| out.contains(c)))
            .map(|(i, _)| *i)
            .collect();
        if newly.is_empty() {
            return out;
        }
        for i in newly {
            calls.remove(&i);
            let (schema, name, _) = &rows[i];
            out.extend(names(schema, name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_writes_by_its_body_or_through_one_it_calls() {
        let row = |schema: &str, name: &str, body: Option<&str>| {
            (
                schema.to_string(),
                name.to_string(),
                body.map(str::to_string),
            )
        };
        let rows = [
            row(
                "db",
                "Logs",
                Some("BEGIN INSERT INTO log VALUES (1); RETURN 1; END"),
            ),
            row("db", "pure", Some("RETURN 1 + 1")),
            row("db", "outer", Some("RETURN pure() + db.inner()")),
            row("db", "inner", Some("RETURN logs()")),
            row("other", "hidden", None),
        ];
        let mut got: Vec<String> = writing(&rows).into_iter().collect();
        got.sort();
        assert_eq!(
            got,
            [
                "db.inner",
                "db.logs",
                "db.outer",
                "hidden",
                "inner",
                "logs",
                "other.hidden",
                "outer"
            ]
        );
    }
}
