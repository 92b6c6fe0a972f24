//! `myrelay-demo` honours its contract: one line per node, then `ready`; the school schema is
//! reachable through the master; each node's console answers; SIGTERM stops everything and
//! removes temporary data.

use std::process::Command;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

/// The backends' account the demo is given (as `.env` would).
const DB_USER: &str = "root";
/// Its password.
const DB_PASS: &str = "rootroot";

/// A port such that it and the next `n - 1` are free (for `myrelay-demo --port`).
pub fn free_port_block(n: u16) -> u16 {
    // Ask the OS for a port, then check the next n-1 are free too.
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = l.local_addr().expect("addr").port();
        drop(l);
        if base > 60000 {
            continue;
        }
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free block of {n} ports");
}

/// Runs `myrelay-demo` with `slaves` slaves from client port `port` (consoles on free ports),
/// its temporary data under `tmp`; returns the process and the lines it printed up to `ready`.
pub async fn start_demo(
    tmp: &std::path::Path,
    port: u16,
    slaves: usize,
) -> (std::process::Child, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_myrelay-demo"))
        .args(["--slaves", &slaves.to_string(), "--port", &port.to_string()])
        .args(["--console-port", "0"])
        .current_dir(tmp)
        .env("DB_USER", DB_USER)
        .env("DB_PASS", DB_PASS)
        .env("TMPDIR", tmp)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start demo");
    let stdout = child.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let done = line == "ready";
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(std::time::Duration::from_secs(60), lines)
        .await
        .expect("demo ready within 60 s")
        .expect("reader");
    (child, lines)
}

/// A mysql_async connection to `addr` over TCP.
async fn connect(addr: std::net::SocketAddr) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some(DB_USER))
        .pass(Some(DB_PASS))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

#[tokio::test]
async fn demo_prints_its_contract_serves_school_and_cleans_up() {
    let port = free_port_block(3);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut child, lines) = start_demo(tmp.path(), port, 2).await;
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
    let mut conn = connect(master).await;
    let tables: Vec<String> = conn.query("SHOW TABLES FROM school").await.expect("tables");
    assert_eq!(tables, vec!["course", "student", "student_course"]);
    let pairs: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM school.student_course sc JOIN school.student s ON s.id = sc.student_id")
        .await
        .expect("join");
    assert!(pairs.unwrap_or(0) > 0);
    // The schema went through the master node to the master's backend.
    let backend: std::net::SocketAddr = format!("127.0.0.1:{}", backends[0]).parse().expect("addr");
    let mut direct = connect(backend).await;
    let n: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM school.course")
        .await
        .expect("course");
    assert_eq!(n, Some(2));
    // Replication carried the schema and rows to both slaves' own backends.
    for port in &backends[1..] {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut slave = connect(addr).await;
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
