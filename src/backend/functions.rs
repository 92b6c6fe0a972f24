//! The functions of the backend as the node judges a statement that calls them:
//! - the stored functions that change data, so that `SELECT f()`, `DO f()` or `SET @v = f()` is
//!   judged as the write it is: refused to read-only users, forwarded by a slave to the master
//!   (its own backend would diverge, then stop on the master's row);
//! - the loadable UDFs (`CREATE FUNCTION … SONAME`), native code the server runs with its own
//!   rights, which the node cannot read: a call of one is admin unless the config lists it safe.
//!
//! Read from `information_schema.ROUTINES` and `mysql.func` on a connection of the node's own,
//! once, then kept until the schema may have changed: the node ran DDL (`CREATE FUNCTION … SONAME`
//! and `DROP FUNCTION` among it), or (on a slave) applied a replicated one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use tracing::{debug, warn};

use super::pool::Backend;
use crate::sql::routine::{function_calls, function_writes};

const FUNCTIONS_SQL: &str = "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_DEFINITION \
     FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION'";

const UDFS_SQL: &str = "SELECT name FROM mysql.func";

/// Names (lower case, `f` and `db.f`) of the stored functions that change data.
pub type Writers = HashSet<String>;

/// What the node knows of the backend's functions, read in one go.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The stored functions that change data.
    pub writers: Writers,
    /// The loadable UDFs, lower case (a UDF has no schema: `f` only).
    pub udfs: HashSet<String>,
    /// What each stored function that calls a UDF, itself or through the stored functions it
    /// calls, reaches of them (keys `f` and `db.f`): its body runs the UDF for its caller.
    pub udf_callers: HashMap<String, BTreeSet<String>>,
}

impl Catalog {
    /// The first loadable UDF, in name order, that calling `calls` (names as
    /// [`function_calls`] lists them) runs and that `safe` (any case: UDF names are
    /// case-insensitive) does not list: directly or in the body of a stored function called.
    /// `None`: every UDF reached is safe.
    pub fn unsafe_udf(&self, calls: &[String], safe: &[String]) -> Option<String> {
        let mut reached = BTreeSet::new();
        for name in calls {
            if self.udfs.contains(name) {
                reached.insert(name.clone());
            }
            if let Some(udfs) = self.udf_callers.get(name) {
                reached.extend(udfs.iter().cloned());
            }
        }
        reached
            .into_iter()
            .find(|udf| !safe.iter().any(|s| s.eq_ignore_ascii_case(udf)))
    }
}

/// A schema generation: changes through this node, DDL applied by replication.
type Generation = (u64, u64);

/// The backend's writing stored functions and its UDFs, kept between schema changes.
#[derive(Default)]
pub struct StoredFunctions {
    /// Bumped when this node may have changed the schema.
    changes: AtomicU64,
    /// The catalog, with the schema generation (this node's, the replica's) it was read at.
    known: Mutex<Option<(Generation, Arc<Catalog>)>>,
}

impl StoredFunctions {
    /// The schema may have changed through this node: read the functions again when next asked.
    pub fn invalidate(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// The catalog as of schema generation `replicated` (a slave's count of applied DDL; 0
    /// elsewhere). Empty, and not kept, when the backend cannot be asked (then the statement
    /// fails there anyway).
    pub async fn catalog(&self, backend: &Backend, replicated: u64) -> Arc<Catalog> {
        // Read before asking: a change during the query leaves the result stale, not kept.
        let generation: Generation = (self.changes.load(Ordering::SeqCst), replicated);
        if let Ok(known) = self.known.lock()
            && let Some((at, catalog)) = known.as_ref()
            && *at == generation
        {
            return catalog.clone();
        }
        let (rows, udfs) = match backend.acquire().await {
            Ok(mut conn) => {
                let rows: Vec<(String, String, Option<String>)> =
                    match conn.query(FUNCTIONS_SQL).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            warn!(error = %e, "reading the backend's stored functions");
                            return Arc::default();
                        }
                    };
                let udfs: Vec<String> = match conn.query(UDFS_SQL).await {
                    Ok(udfs) => udfs,
                    Err(e) => {
                        warn!(error = %e, "reading the backend's loadable functions (mysql.func)");
                        return Arc::default();
                    }
                };
                (rows, udfs)
            }
            Err(_) => return Arc::default(),
        };
        let udfs: HashSet<String> = udfs.iter().map(|n| n.to_lowercase()).collect();
        let catalog = Arc::new(Catalog {
            writers: writing(&rows),
            udf_callers: udf_callers(&rows, &udfs),
            udfs,
        });
        debug!(
            functions = rows.len(),
            writing = catalog.writers.len(),
            udfs = catalog.udfs.len(),
            "backend functions read"
        );
        if let Ok(mut known) = self.known.lock() {
            *known = Some((generation, catalog.clone()));
        }
        catalog
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

/// For each function among `rows` (schema, name, body) whose body calls one of `udfs`, itself
/// or through the functions it calls, the UDFs it reaches (keyed `f` and `db.f`). A body the node
/// may not read counts as a writer (see [`writing`]), not here: it cannot be told apart from
/// one that calls no UDF.
fn udf_callers(
    rows: &[(String, String, Option<String>)],
    udfs: &HashSet<String>,
) -> HashMap<String, BTreeSet<String>> {
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    if udfs.is_empty() {
        return out;
    }
    let bodies: Vec<(usize, Vec<String>)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, body))| body.as_deref().map(|b| (i, function_calls(b))))
        .collect();
    // Spread through callers until nothing changes: each round adds a UDF to some function, and
    // there are finitely many pairs.
    loop {
        let mut grew = false;
        for (i, calls) in &bodies {
            let (schema, name, _) = &rows[*i];
            let mut reached: BTreeSet<String> = BTreeSet::new();
            for call in calls {
                // A qualified name is a stored function; only a bare one may be a UDF.
                if !call.contains('.') && udfs.contains(call) {
                    reached.insert(call.clone());
                }
                if let Some(more) = out.get(call) {
                    reached.extend(more.iter().cloned());
                }
            }
            if reached.is_empty() {
                continue;
            }
            let name = name.to_lowercase();
            for key in [format!("{}.{name}", schema.to_lowercase()), name] {
                let entry = out.entry(key).or_default();
                let before = entry.len();
                entry.extend(reached.iter().cloned());
                grew |= entry.len() > before;
            }
        }
        if !grew {
            return out;
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

    #[test]
    fn a_call_of_an_unlisted_udf_is_found_directly_or_through_stored_functions() {
        let row =
            |name: &str, body: &str| ("db".to_string(), name.to_string(), Some(body.to_string()));
        let rows = [
            row("wrap", "RETURN Risky(1) + 1"),
            row("outer", "RETURN db.wrap()"),
            row("plain", "RETURN answer()"),
            row("pure", "RETURN 1"),
        ];
        let udfs: HashSet<String> = ["risky", "answer"].map(str::to_string).into();
        let catalog = Catalog {
            writers: writing(&rows),
            udf_callers: udf_callers(&rows, &udfs),
            udfs,
        };
        let safe = ["Answer".to_string()];
        let judge = |sql: &str| catalog.unsafe_udf(&function_calls(sql), &safe);
        assert_eq!(judge("SELECT RISKY(2)"), Some("risky".into()));
        assert_eq!(judge("SELECT `risky` (2)"), Some("risky".into()));
        assert_eq!(
            judge("SELECT answer(), plain(), pure(), COUNT(*) FROM t"),
            None
        );
        assert_eq!(judge("SELECT outer()"), Some("risky".into()));
        assert_eq!(judge("SELECT db.outer() + 1"), Some("risky".into()));
        assert_eq!(judge("SELECT 'risky(1)'"), None);
        // A qualified name is a stored function of that schema, never a UDF.
        assert_eq!(judge("SELECT other.risky()"), None);
        // Listing every UDF safe leaves nothing to refuse.
        let all = ["answer".to_string(), "risky".to_string()];
        assert_eq!(
            catalog.unsafe_udf(&function_calls("SELECT outer()"), &all),
            None
        );
    }
}
