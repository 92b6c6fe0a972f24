//! The benchmark's regression guard: sysbench `oltp_point_select` straight to a backend and
//! through a node in front of it, in the same run. It fails only if the node falls below half
//! the direct rate — a floor against noise; the real targets live in `bench/run`.
//!
//! One client: the rate is then set by per-statement latency, which is what a regression in
//! the node's per-statement work changes, and it does not depend on how many cores the machine
//! has to share between sysbench, the backend and the node.

mod common;

use std::net::SocketAddr;

use common::{DB_PASS, DB_USER, TestNode};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;

const SYSBENCH_TABLE: [&str; 3] = ["--tables=1", "--table-size=1000", "--mysql-db=sbtest"];

async fn sysbench(addr: SocketAddr, command: &str) -> String {
    let out = tokio::process::Command::new("sysbench")
        .arg("oltp_point_select")
        .args(SYSBENCH_TABLE)
        .arg("--db-driver=mysql")
        .arg(format!("--mysql-host={}", addr.ip()))
        .arg(format!("--mysql-port={}", addr.port()))
        .arg(format!("--mysql-user={DB_USER}"))
        .arg(format!("--mysql-password={DB_PASS}"))
        .args(["--threads=1", "--time=3", "--rand-seed=1", command])
        .output()
        .await
        .expect("sysbench is installed (Debian package sysbench; .ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sysbench {command} against {addr}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Queries per second from a sysbench report (`queries: N (Q per sec.)`).
fn qps(report: &str) -> f64 {
    report
        .lines()
        .find(|l| l.trim_start().starts_with("queries:"))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no queries line in:\n{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_select_through_a_node_keeps_at_least_half_the_direct_rate() {
    let node = TestNode::start("bench", NodeRole::Master).await;
    node.direct()
        .await
        .query_drop("CREATE DATABASE sbtest")
        .await
        .expect("database");
    sysbench(node.server.addr(), "prepare").await;
    // Alternate, so that a disturbance of the machine hits both sides alike.
    let (mut direct, mut through) = (0.0, 0.0);
    for _ in 0..2 {
        direct += qps(&sysbench(node.server.addr(), "run").await);
        through += qps(&sysbench(node.addr(), "run").await);
    }
    let ratio = through / direct;
    eprintln!(
        "point select, 1 client, queries/s summed over two runs: direct {direct:.0}, node {through:.0}: {ratio:.2}×"
    );
    assert!(
        ratio >= 0.5,
        "the node's point-select rate fell to {ratio:.2}× direct ({through:.0} vs {direct:.0} queries/s)"
    );
}
