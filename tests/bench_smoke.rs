//! The benchmark's regression guard: sysbench `oltp_point_select`, 16 clients, in one run straight
//! to a backend, through haproxy relaying TCP to it, and through a node in front of it.
//!
//! The guard is the node against the relay. On the 2-core machines CI runs on, sysbench, the
//! backend and the proxy share the cores, and any proxy hop costs about as much CPU per point
//! select as MariaDB's own work: haproxy itself holds 0.4–0.6× direct here (bench/results). A floor
//! against direct would measure the machine; against the relay it measures what the node adds to
//! a hop, which is what a regression changes (a debug-speed build, an extra round trip, a parse
//! per statement). The node has held 0.9–1.1× the relay; the floor is 0.75×. A floor of 0.33×
//! direct stays as a sanity check of the relay itself.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::{DB_PASS, DB_USER, TestNode};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;

/// The floor, as a fraction of the relay's rate in the same run.
const FLOOR_VS_RELAY: f64 = 0.75;
/// The sanity floor, as a fraction of the direct rate.
const FLOOR_VS_DIRECT: f64 = 0.33;

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
        .args(["--threads=16", "--time=3", "--rand-seed=1", command])
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

/// haproxy in TCP mode in front of `backend`, killed on drop.
struct Relay {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Relay {
    fn start(backend: SocketAddr) -> Relay {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n  maxconn 1000\n  nbthread 2\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
                 timeout client 1m\n  timeout server 1m\nlisten mysql\n  bind 127.0.0.1:{port}\n  \
                 server backend {backend}\n"
            ),
        )
        .expect("write haproxy.cfg");
        let binary = ["/usr/sbin/haproxy", "haproxy"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").output().is_ok())
            .expect("haproxy is installed (Debian package haproxy; .ci/run installs it)");
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Relay {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_select_through_a_node_costs_no_more_than_a_tcp_relay() {
    let node = TestNode::start("bench", NodeRole::Master).await;
    let relay = Relay::start(node.server.addr());
    node.direct()
        .await
        .query_drop("CREATE DATABASE sbtest")
        .await
        .expect("database");
    sysbench(node.server.addr(), "prepare").await;
    // Alternate, so that a disturbance of the machine hits all three alike.
    let (mut direct, mut relayed, mut through) = (0.0, 0.0, 0.0);
    for _ in 0..2 {
        direct += qps(&sysbench(node.server.addr(), "run").await);
        relayed += qps(&sysbench(relay.addr, "run").await);
        through += qps(&sysbench(node.addr(), "run").await);
    }
    let (vs_relay, vs_direct) = (through / relayed, through / direct);
    eprintln!(
        "point select, 16 clients, queries/s summed over two runs: direct {direct:.0}, \
         haproxy {relayed:.0} ({:.2}x direct), node {through:.0}: {vs_relay:.2}x the relay, \
         {vs_direct:.2}x direct",
        relayed / direct
    );
    assert!(
        vs_relay >= FLOOR_VS_RELAY,
        "the node's point-select rate fell to {vs_relay:.2}x a TCP relay's ({through:.0} vs {relayed:.0} queries/s)"
    );
    assert!(
        vs_direct >= FLOOR_VS_DIRECT,
        "the node's point-select rate fell to {vs_direct:.2}x direct ({through:.0} vs {direct:.0} queries/s)"
    );
}
