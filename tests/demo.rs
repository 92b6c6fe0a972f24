//! `myrelay demo` honours its contract: one line per node, then `ready`; the school schema is
//! reachable through the master; each node's console answers; SIGTERM stops everything and
//! removes temporary data.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

#[tokio::test]
async fn demo_prints_its_contract_serves_school_and_cleans_up() {
    let port = common::free_port_block(3);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut child, lines) = common::start_demo(tmp.path(), port, 2).await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[3], "ready");
    let mut backends = Vec::new();
    for (i, (line, name)) in lines.iter().zip(["master", "slave1", "slave2"]).enumerate() {
        let role = if i == 0 { "master" } else { "slave" };
        let prefix = format!(
            "node {name} role={role} listen=127.0.0.1:{} backend=127.0.0.1:",
            port + i as u16
        );
        assert!(
            line.starts_with(&prefix),
            "{line:?} should start with {prefix:?}"
        );
        // New fields only ever come after the old ones.
        let (backend, rest) = line[prefix.len()..]
            .split_once(' ')
            .expect("fields after backend=");
        let backend: u16 = backend.parse().expect("backend port");
        backends.push(backend);
        let console = rest
            .strip_prefix("console=http://")
            .expect("console= after backend=");
        // A slave is healthy once linked to the master, a moment after `ready` at most.
        let deadline = Instant::now() + Duration::from_secs(10);
        let health = loop {
            let health = reqwest::get(format!("http://{console}/health"))
                .await
                .expect("console answers");
            if health.status() == 200 || Instant::now() > deadline {
                break health;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(health.status(), 200, "{line}");
        assert_eq!(health.text().await.expect("body").trim(), role);
    }
    let master: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut conn = common::connect(master, common::DB_USER, common::DB_PASS).await;
    let tables: Vec<String> = conn.query("SHOW TABLES FROM school").await.expect("tables");
    assert_eq!(tables, vec!["course", "student", "student_course"]);
    let pairs: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM school.student_course sc JOIN school.student s ON s.id = sc.student_id")
        .await
        .expect("join");
    assert!(pairs.unwrap_or(0) > 0);
    // The schema went through the master node to the master's backend.
    let backend: std::net::SocketAddr = format!("127.0.0.1:{}", backends[0]).parse().expect("addr");
    let mut direct = common::connect(backend, common::DB_USER, common::DB_PASS).await;
    let n: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM school.course")
        .await
        .expect("course");
    assert_eq!(n, Some(2));
    // Replication carried the schema and rows to both slaves' own backends.
    for port in &backends[1..] {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut slave = common::connect(addr, common::DB_USER, common::DB_PASS).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n: Option<i64> = slave
                .query_first("SELECT COUNT(*) FROM school.student_course")
                .await
                .unwrap_or(None);
            if n == pairs {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "slave backend {port} has {n:?} of {pairs:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(conn);
    drop(direct);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "demo did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{exit:?}");
    for port in backends {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "backend on {port} stopped"
        );
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("tmp").collect();
    assert!(left.is_empty(), "temporary data removed: {left:?}");
}
