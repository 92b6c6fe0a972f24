//! Faults with real processes: nodes run as the `myrelay` binary from TOML files, and a node or
//! a backend is killed with SIGKILL under a 4-writer load. Afterwards every acknowledged commit
//! is on every slave exactly once (each write a unique tag) and the checksums are equal; with
//! `replication.ack = "one"` the slave holds every acknowledged commit when the master's node
//! and backend die together. SIGTERM drains a node; SIGHUP reloads its users without dropping
//! a connection.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{DB_PASS, DB_USER, SECRET, backend};
use myrelay_demo::launcher::ThrowawayServer;
use mysql_async::prelude::Queryable;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A node running as its own process.
struct NodeProcess {
    config: PathBuf,
    addr: SocketAddr,
    child: Option<tokio::process::Child>,
    server: ThrowawayServer,
}

impl NodeProcess {
    async fn start(
        dir: &Path,
        name: &str,
        toml: String,
        server: ThrowawayServer,
        addr: SocketAddr,
    ) -> NodeProcess {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, toml).expect("write config");
        let mut node = NodeProcess {
            config,
            addr,
            child: None,
            server,
        };
        node.spawn().await;
        node
    }

    async fn spawn(&mut self) {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_myrelay"))
            .args(["node", "--config"])
            .arg(&self.config)
            .current_dir(self.config.parent().expect("dir"))
            .env("DB_USER", DB_USER)
            .env("DB_PASS", DB_PASS)
            .env("APP_PASS", common::APP.1)
            .env("CLUSTER_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("start node process");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "node on {} did not come up",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill -9");
        }
    }

    /// Sends `signal` (e.g. `-HUP`) with the `kill` utility.
    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let pid = child.id().expect("pid").to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {signal} {pid}");
    }

    /// SIGTERM (a clean shutdown), then the exit status once the process ended.
    async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        self.signal("-TERM");
        let mut child = self.child.take().expect("running");
        tokio::time::timeout(within, child.wait())
            .await
            .expect("the node exits after SIGTERM")
            .expect("exit status")
    }

    fn as_test_node_backend(&self) -> SocketAddr {
        self.server.addr()
    }
}

fn master_toml(client: u16, repl: u16, backend: SocketAddr, ack: &str) -> String {
    format!(
        r#"
[node]
name = "master"
role = "master"
listen = "127.0.0.1:{client}"
backend = "{backend}"
[[users]]
name = "root"
role = "admin"
password_env = "DB_PASS"
[replication]
listen = "127.0.0.1:{repl}"
ack = "{ack}"
ack_timeout_ms = 30000
"#
    )
}

fn slave_toml(
    name: &str,
    client: u16,
    master_client: u16,
    repl: u16,
    backend: SocketAddr,
) -> String {
    format!(
        r#"
[node]
name = "{name}"
role = "slave"
listen = "127.0.0.1:{client}"
backend = "{backend}"
master = "127.0.0.1:{master_client}"
[[users]]
name = "root"
role = "admin"
password_env = "DB_PASS"
[replication]
master = "127.0.0.1:{repl}"
"#
    )
}

struct ProcCluster {
    /// Holds the configs until the test ends.
    _dir: tempfile::TempDir,
    master: NodeProcess,
    slaves: Vec<NodeProcess>,
}

impl ProcCluster {
    async fn start(slaves: usize, ack: &str) -> ProcCluster {
        let dir = tempfile::tempdir().expect("dir");
        let (mc, mr) = (free_port(), free_port());
        let server = backend().await;
        let toml = master_toml(mc, mr, server.addr(), ack);
        let master = NodeProcess::start(
            dir.path(),
            "master",
            toml,
            server,
            ([127, 0, 0, 1], mc).into(),
        )
        .await;
        let mut procs = Vec::new();
        for i in 1..=slaves {
            let port = free_port();
            let server = backend().await;
            let name = format!("slave{i}");
            let toml = slave_toml(&name, port, mc, mr, server.addr());
            procs.push(
                NodeProcess::start(
                    dir.path(),
                    &name,
                    toml,
                    server,
                    ([127, 0, 0, 1], port).into(),
                )
                .await,
            );
        }
        ProcCluster {
            _dir: dir,
            master,
            slaves: procs,
        }
    }

    /// Waits until every slave's backend confirms it applied what the master's backend has
    /// committed now (`MASTER_GTID_WAIT`).
    async fn converge(&self, within: Duration) {
        let mut conn = common::connect(self.master.as_test_node_backend(), DB_USER, DB_PASS).await;
        let target: String = conn
            .query_first("SELECT @@global.gtid_binlog_pos")
            .await
            .expect("position")
            .unwrap_or_default();
        for s in &self.slaves {
            let mut conn = common::connect(s.as_test_node_backend(), DB_USER, DB_PASS).await;
            let reached: Option<i64> = conn
                .query_first(format!(
                    "SELECT MASTER_GTID_WAIT('{target}', {})",
                    within.as_secs()
                ))
                .await
                .expect("wait");
            assert_eq!(reached, Some(0), "a slave did not reach {target}");
        }
    }
}

async fn counts(backend: SocketAddr) -> (i64, i64) {
    let mut conn = common::connect(backend, DB_USER, DB_PASS).await;
    conn.query_first("SELECT COUNT(*), COUNT(DISTINCT tag) FROM f.t")
        .await
        .expect("count")
        .expect("row")
}

async fn all_tags(backend: SocketAddr) -> BTreeSet<String> {
    let mut conn = common::connect(backend, DB_USER, DB_PASS).await;
    conn.query::<String, _>("SELECT tag FROM f.t")
        .await
        .expect("tags")
        .into_iter()
        .collect()
}

/// Writers that keep inserting unique tags through the master, reconnecting when it is down,
/// and remember which inserts were acknowledged.
fn start_load(
    addr: SocketAddr,
    writers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    pause: Arc<std::sync::atomic::AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..writers)
        .map(|w| {
            let stop = stop.clone();
            let pause = pause.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if pause.load(std::sync::atomic::Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    let Ok(mut conn) =
                        mysql_async::Conn::new(common::opts(addr, DB_USER, DB_PASS)).await
                    else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let tag = format!("w{w}-{n}");
                        n += 1;
                        let sql = format!("INSERT INTO f.t (tag, at) VALUES ('{tag}', NOW(6))");
                        match conn.query_drop(sql).await {
                            Ok(()) => acked.lock().expect("acked").push(tag),
                            Err(_) => break,
                        }
                    }
                }
            })
        })
        .collect()
}

async fn setup(cluster: &ProcCluster) {
    let mut conn = common::connect(cluster.master.addr, DB_USER, DB_PASS).await;
    conn.query_drop("CREATE DATABASE f").await.expect("db");
    conn.query_drop("CREATE TABLE f.t (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(32) NOT NULL, at DATETIME(6))")
        .await
        .expect("table");
}

/// Waits until the writers have `n` more acknowledged writes than now.
async fn acked_more(acked: &Mutex<Vec<String>>, n: usize) {
    let target = acked.lock().expect("acked").len() + n;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().expect("acked").len() < target {
        assert!(Instant::now() < deadline, "the writers stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a fault test kills.
#[derive(Clone, Copy, Debug)]
enum Victim {
    MasterNode,
    MasterBackend,
    SlaveNode,
    SlaveBackend,
}

/// Kills `victim` with SIGKILL three times under a 4-writer load, bringing it back each time,
/// then checks that every acknowledged write is on every node exactly once and that the
/// nodes' checksums agree.
async fn kill_during_load(victim: Victim) {
    let mut cluster = ProcCluster::start(2, "none").await;
    setup(&cluster).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let pause = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = start_load(cluster.master.addr, 4, stop.clone(), pause, acked.clone());
    for _ in 0..3 {
        acked_more(&acked, 100).await;
        match victim {
            Victim::MasterNode => {
                cluster.master.kill9().await;
                cluster.master.spawn().await;
            }
            Victim::MasterBackend => {
                cluster.master.server.kill().await;
                cluster.master.server.restart().await.expect("restart");
            }
            Victim::SlaveNode => {
                cluster.slaves[0].kill9().await;
                cluster.slaves[0].spawn().await;
            }
            Victim::SlaveBackend => {
                cluster.slaves[0].server.kill().await;
                cluster.slaves[0].server.restart().await.expect("restart");
            }
        }
    }
    acked_more(&acked, 100).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.await.expect("writer");
    }
    cluster.converge(Duration::from_secs(60)).await;
    let acked: BTreeSet<String> = acked.lock().expect("acked").iter().cloned().collect();
    let on_master = all_tags(cluster.master.as_test_node_backend()).await;
    assert!(
        acked.is_subset(&on_master),
        "{victim:?}: acknowledged writes missing on the master"
    );
    let master = counts(cluster.master.as_test_node_backend()).await;
    // Each tag is unique: a repeated transaction would add a row, a skipped one lose a row.
    assert_eq!(
        master.0, master.1,
        "{victim:?}: a write ran twice on the master"
    );
    for s in &cluster.slaves {
        assert_eq!(counts(s.as_test_node_backend()).await, master, "{victim:?}");
        assert_eq!(
            all_tags(s.as_test_node_backend()).await,
            on_master,
            "{victim:?}"
        );
    }
    let addrs: Vec<String> = std::iter::once(&cluster.master)
        .chain(&cluster.slaves)
        .map(|n| n.addr.to_string())
        .collect();
    let checksum = std::process::Command::new(env!("CARGO_BIN_EXE_myrelay"))
        .arg("checksum")
        .args(&addrs)
        .env("DB_USER", DB_USER)
        .env("DB_PASS", DB_PASS)
        .output()
        .expect("myrelay checksum");
    assert!(
        checksum.status.success(),
        "{victim:?}: {}",
        String::from_utf8_lossy(&checksum.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_of_the_master_node_under_load_loses_and_repeats_nothing() {
    kill_during_load(Victim::MasterNode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_of_the_masters_backend_under_load_loses_and_repeats_nothing() {
    kill_during_load(Victim::MasterBackend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_of_a_slave_node_under_load_loses_and_repeats_nothing() {
    kill_during_load(Victim::SlaveNode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_of_a_slaves_backend_under_load_loses_and_repeats_nothing() {
    kill_during_load(Victim::SlaveBackend).await;
}

/// `replication.ack = "one"`: the master's node and backend die together under load, and the
/// slave already holds every write whose OK a client got.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_ack_one_the_slave_holds_every_acknowledged_write_when_the_master_dies() {
    let mut cluster = ProcCluster::start(1, "one").await;
    setup(&cluster).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let pause = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = start_load(cluster.master.addr, 4, stop.clone(), pause, acked.clone());
    acked_more(&acked, 300).await;
    cluster.master.kill9().await;
    cluster.master.server.kill().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.await.expect("writer");
    }
    let acked: BTreeSet<String> = acked.lock().expect("acked").iter().cloned().collect();
    let on_slave = all_tags(cluster.slaves[0].as_test_node_backend()).await;
    let missing: Vec<&String> = acked.difference(&on_slave).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not on the slave: {missing:?}"
    );
    let (rows, distinct) = counts(cluster.slaves[0].as_test_node_backend()).await;
    assert_eq!(rows, distinct, "a write applied twice");
}

/// SIGTERM drains: new clients are turned away, an idle client is told the server is shutting
/// down, a client inside a transaction finishes it, the master waits until its slave applied
/// it, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_an_open_transaction_finish_and_replicate() {
    let mut cluster = ProcCluster::start(1, "none").await;
    setup(&cluster).await;
    let addr = cluster.master.addr;
    let mut in_tx = common::connect(addr, DB_USER, DB_PASS).await;
    let mut idle = common::connect(addr, DB_USER, DB_PASS).await;
    in_tx.query_drop("BEGIN").await.expect("begin");
    in_tx
        .query_drop("INSERT INTO f.t (tag) VALUES ('before sigterm')")
        .await
        .expect("insert");
    let exit = {
        let master = &mut cluster.master;
        let terminated = master.terminate(Duration::from_secs(20));
        let finish = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The idle client's next statement is answered with 1053.
            let refused = common::server_error(idle.query_drop("SELECT 1").await);
            assert_eq!(refused.0, 1053, "{refused:?}");
            assert!(
                mysql_async::Conn::new(common::opts(addr, DB_USER, DB_PASS))
                    .await
                    .is_err(),
                "no new clients while draining"
            );
            in_tx
                .query_drop("INSERT INTO f.t (tag) VALUES ('after sigterm')")
                .await
                .expect("the transaction goes on");
            in_tx.query_drop("COMMIT").await.expect("commit");
            drop(in_tx);
        };
        let (status, ()) = tokio::join!(terminated, finish);
        status
    };
    assert!(exit.success(), "exit status {exit:?}");
    let slave = cluster.slaves[0].as_test_node_backend();
    let mut conn = common::connect(slave, DB_USER, DB_PASS).await;
    let tags: Vec<String> = conn
        .query("SELECT tag FROM f.t ORDER BY id")
        .await
        .expect("tags");
    assert_eq!(
        tags,
        ["before sigterm", "after sigterm"],
        "replicated before the exit"
    );
}

/// Config reloads a node reports on its admin listener's `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reloads {
    applied: f64,
    failed: f64,
}

/// Reads `myrelay_config_reloads_total` from `/metrics` at `admin` (a read with no side
/// effects), waiting up to 10 s for the listener to answer.
async fn reloads(admin: SocketAddr) -> Reloads {
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        match reqwest::get(format!("http://{admin}/metrics")).await {
            Ok(response) => break response.text().await.expect("/metrics body"),
            Err(e) => {
                assert!(Instant::now() < deadline, "/metrics at {admin}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("/metrics parses");
    let count = |result: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "myrelay_config_reloads_total" && s.labels.get("result") == Some(result)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) => v,
                ref other => panic!("reloads counter is {other:?}"),
            })
            .unwrap_or_else(|| panic!("no myrelay_config_reloads_total{{result={result}}}"))
    };
    Reloads {
        applied: count("applied"),
        failed: count("failed"),
    }
}

/// Sends SIGHUP to `node` and waits until its `/metrics` (at `admin`) confirms the reload ran:
/// the `applied` count (or, with `applies == false`, the `failed` count) moved by exactly one.
/// Statements sent after this returns meet the reloaded users.
async fn sighup(node: &NodeProcess, admin: SocketAddr, applies: bool) {
    let before = reloads(admin).await;
    let expected = if applies {
        Reloads {
            applied: before.applied + 1.0,
            ..before
        }
    } else {
        Reloads {
            failed: before.failed + 1.0,
            ..before
        }
    };
    node.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = reloads(admin).await;
        if now == expected {
            return;
        }
        assert_eq!(now, before, "the reload ended otherwise than expected");
        assert!(Instant::now() < deadline, "no reload within 10 s: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn code(outcome: &mysql_async::Result<()>) -> Option<u16> {
    match outcome {
        Err(mysql_async::Error::Server(e)) => Some(e.code),
        _ => None,
    }
}

/// SIGHUP swaps in the config file's users: a connected client keeps its connection (and its
/// session) and is allowed or refused by its new role from its next statement; a user removed
/// from the file is disconnected with 1045; a file that does not load changes nothing. Each
/// step waits for the node to report the reload on `/metrics` and then sends each statement
/// once: a statement sent before the reload took effect would be a different test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_changes_a_users_role_without_disconnecting_it() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    // The admin listener reports each reload, so the test knows when one took effect.
    let admin: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let server = backend().await;
    let backend_addr = server.addr();
    let toml = |app: &str, extra: &str| {
        format!(
            r#"
[node]
name = "solo"
role = "master"
listen = "127.0.0.1:{port}"
backend = "{backend_addr}"
[admin]
listen = "{admin}"
{extra}
[[users]]
name = "root"
role = "admin"
password_env = "DB_PASS"
{app}
"#
        )
    };
    let app_as = |role: &str| {
        format!("[[users]]\nname = \"app\"\nrole = \"{role}\"\npassword_env = \"APP_PASS\"")
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let node = NodeProcess::start(dir.path(), "solo", toml(&app_as("app"), ""), server, addr).await;
    let rewrite = |text: String| std::fs::write(&node.config, text).expect("rewrite config");
    let mut root = common::connect(addr, DB_USER, DB_PASS).await;
    root.query_drop("CREATE DATABASE r").await.expect("db");
    root.query_drop("CREATE TABLE r.t (id INT)")
        .await
        .expect("table");
    let mut app = common::connect(addr, common::APP.0, common::APP.1).await;
    app.query_drop("SET @mark = 42")
        .await
        .expect("session variable");
    app.query_drop("INSERT INTO r.t VALUES (1)")
        .await
        .expect("app writes");
    assert_eq!(
        code(&app.query_drop("CREATE TABLE r.u (id INT)").await),
        Some(1227)
    );

    // Promoted to admin (and a key that needs a restart changed too: it is only logged).
    rewrite(toml(&app_as("admin"), "[limits]\nmax_connections = 7"));
    sighup(&node, admin, true).await;
    app.query_drop("CREATE TABLE r.u (id INT)")
        .await
        .expect("DDL as admin");

    // Demoted to readonly: its next write is refused, its reads go on.
    rewrite(toml(&app_as("readonly"), ""));
    sighup(&node, admin, true).await;
    let refused = app.query_drop("INSERT INTO r.t VALUES (2)").await;
    assert_eq!(code(&refused), Some(1142), "{refused:?}");
    let mark: Option<i64> = app.query_first("SELECT @mark").await.expect("same session");
    assert_eq!(
        mark,
        Some(42),
        "the connection and its session survived both reloads"
    );

    // A file that does not load leaves the users as they are.
    rewrite("[node\nbroken".to_string());
    sighup(&node, admin, false).await;
    assert_eq!(
        code(&app.query_drop("INSERT INTO r.t VALUES (3)").await),
        Some(1142)
    );

    // Removed: disconnected with 1045 at its next statement; others are untouched.
    rewrite(toml("", ""));
    sighup(&node, admin, true).await;
    let gone = app.query_drop("SELECT 1").await;
    assert_eq!(code(&gone), Some(1045), "{gone:?}");
    assert!(app.query_drop("SELECT 1").await.is_err(), "disconnected");
    assert!(
        mysql_async::Conn::new(common::opts(addr, common::APP.0, common::APP.1))
            .await
            .is_err(),
        "no new logins"
    );
    assert_eq!(
        reloads(admin).await,
        Reloads {
            applied: 3.0,
            failed: 1.0
        }
    );
    let rows: Vec<i64> = root
        .query("SELECT id FROM r.t")
        .await
        .expect("root goes on");
    assert_eq!(rows, [1]);
}
