//! `myrelay checksum`: compares every table of every user database across the nodes of a
//! cluster, the way `CHECKSUM TABLE … EXTENDED` sees them, and names what differs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use crate::sql::quote_ident;

/// Databases that are the server's or the node's own, never compared.
const SKIP: [&str; 5] = [
    "information_schema",
    "mysql",
    "performance_schema",
    "sys",
    "myrelay",
];

/// What each node reported for one table: `None` where the table is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// `db.table`.
    pub table: String,
    /// Checksum per node, in the order the nodes were given.
    pub sums: Vec<Option<i64>>,
}

impl TableReport {
    /// True when every node has the table with the same checksum.
    pub fn equal(&self) -> bool {
        self.sums.iter().all(|s| s.is_some() && *s == self.sums[0])
    }
}

async fn sums(
    addr: SocketAddr,
    user: &str,
    pass: &str,
) -> mysql_async::Result<BTreeMap<String, i64>> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some(user))
        .pass(Some(pass))
        .prefer_socket(false);
    let mut conn = Conn::new(opts).await?;
    let mut out = BTreeMap::new();
    let dbs: Vec<String> = conn.query("SHOW DATABASES").await?;
    for db in dbs.iter().filter(|d| !SKIP.contains(&d.as_str())) {
        let tables: Vec<(String, String)> = conn
            .query(format!("SHOW FULL TABLES FROM {}", quote_ident(db)))
            .await?;
        for (table, kind) in tables {
            if kind != "BASE TABLE" {
                continue;
            }
            let name = format!("{}.{}", quote_ident(db), quote_ident(&table));
            let row: Option<(String, Option<i64>)> = conn
                .query_first(format!("CHECKSUM TABLE {name} EXTENDED"))
                .await?;
            out.insert(
                format!("{db}.{table}"),
                row.and_then(|(_, s)| s).unwrap_or(0),
            );
        }
    }
    conn.disconnect().await?;
    Ok(out)
}

/// Checksums every table on every node at `addrs` (client ports), logging in as `user`.
pub async fn compare(
    addrs: &[SocketAddr],
    user: &str,
    pass: &str,
) -> Result<Vec<TableReport>, String> {
    let mut per_node = Vec::new();
    for addr in addrs {
        per_node.push(
            sums(*addr, user, pass)
                .await
                .map_err(|e| format!("{addr}: {e}"))?,
        );
    }
    let names: BTreeSet<&String> = per_node.iter().flat_map(|m| m.keys()).collect();
    Ok(names
        .into_iter()
        .map(|name| TableReport {
            table: name.clone(),
            sums: per_node.iter().map(|m| m.get(name).copied()).collect(),
        })
        .collect())
}

/// Prints a report, one line per table; returns true when all nodes agree.
pub fn print(addrs: &[SocketAddr], reports: &[TableReport]) -> bool {
    let mut all_equal = true;
    for r in reports {
        let sums: Vec<String> = addrs
            .iter()
            .zip(&r.sums)
            .map(|(a, s)| match s {
                Some(s) => format!("{a}={s}"),
                None => format!("{a}=missing"),
            })
            .collect();
        let verdict = if r.equal() { "equal" } else { "DIFFERS" };
        all_equal &= r.equal();
        println!("{} {verdict} {}", r.table, sums.join(" "));
    }
    all_equal
}
