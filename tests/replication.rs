//! Replication: concurrent writers on the master, every slave converges to identical data;
//! late slaves catch up from LSN 0; a wrong secret is refused; status shows it all.

mod common;

use std::time::Duration;

use common::{ADMIN, APP, Cluster, TestNode, applied_lsn, fingerprint, mariadb_cli};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;

const SCHEMA: &str = "CREATE TABLE rep.events (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
    client INT NOT NULL, n INT NOT NULL, at DATETIME(6) NOT NULL, note VARCHAR(64), KEY client_n (client, n))";

/// One client's load: autocommit inserts with AUTO_INCREMENT and NOW(6), updates, transactions
/// that commit and transactions that roll back.
async fn load(addr: std::net::SocketAddr, client: i32, rounds: i32) -> usize {
    let mut conn = common::connect(addr, ADMIN.0, ADMIN.1).await;
    let mut statements = 0;
    for n in 0..rounds {
        conn.query_drop(format!(
            "INSERT INTO rep.events (client, n, at, note) VALUES ({client}, {n}, NOW(6), 'auto')"
        ))
        .await
        .expect("insert");
        conn.query_drop(format!(
            "UPDATE rep.events SET note = CONCAT('upd-', id) WHERE client = {client} AND n = {n}"
        ))
        .await
        .expect("update");
        statements += 2;
        if n % 3 == 0 {
            conn.query_drop("BEGIN").await.expect("begin");
            conn.query_drop(format!(
                "INSERT INTO rep.events (client, n, at, note) VALUES ({client}, {n}, NOW(6), 'tx')"
            ))
            .await
            .expect("tx insert");
            conn.query_drop(format!(
                "UPDATE rep.events SET at = NOW(6) WHERE id = LAST_INSERT_ID() AND client = {client}"
            ))
            .await
            .expect("tx update");
            let last = if n % 2 == 0 { "COMMIT" } else { "ROLLBACK" };
            conn.query_drop(last).await.expect(last);
            statements += 4;
        }
    }
    statements
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_converge_on_every_slave() {
    let cluster = Cluster::start(2).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE rep").await.expect("db");
    admin.query_drop(SCHEMA).await.expect("table");
    let addr = cluster.master.addr();
    let loads = (0..4).map(|c| tokio::spawn(load(addr, c, 60)));
    let mut statements = 0;
    for l in loads {
        statements += l.await.expect("load task");
    }
    assert!(statements >= 600, "{statements} statements");
    cluster.converge(Duration::from_secs(30)).await;
    let on_master = fingerprint(&cluster.master, "rep").await;
    assert!(on_master[0].2 > 240, "{on_master:?}");
    for slave in &cluster.slaves {
        assert_eq!(
            fingerprint(slave, "rep").await,
            on_master,
            "{}",
            slave.node.shared.config.name
        );
    }
    // Rolled-back transactions left nothing anywhere.
    let tx: Option<i64> = admin
        .query_first("SELECT COUNT(*) FROM rep.events WHERE note = 'tx'")
        .await
        .expect("count");
    assert_eq!(tx, Some(4 * 10));
}

#[tokio::test]
async fn a_late_slave_catches_up_from_the_start() {
    let mut cluster = Cluster::start(0).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE rep").await.expect("db");
    admin.query_drop(SCHEMA).await.expect("table");
    load(cluster.master.addr(), 1, 10).await;
    cluster.add_slave(common::SECRET).await;
    cluster.converge(Duration::from_secs(20)).await;
    assert_eq!(
        fingerprint(&cluster.slaves[0], "rep").await,
        fingerprint(&cluster.master, "rep").await
    );
    let rows: Vec<(String, String, Option<u64>)> = admin
        .query("SHOW MYRELAY STATUS")
        .await
        .map(|rows: Vec<mysql_async::Row>| {
            rows.into_iter()
                .map(|mut r| {
                    (
                        r.take("node").unwrap_or_default(),
                        r.take("role").unwrap_or_default(),
                        r.take("applied_lsn").flatten(),
                    )
                })
                .collect()
        })
        .expect("status");
    assert_eq!(rows[0].1, "master");
    // Clients may read the bookkeeping, never change it.
    let (code, _, message) =
        common::expect_error(&mut admin, "UPDATE myrelay.applied SET lsn = 0").await;
    assert_eq!(code, 1044, "{message}");
    let lsn: Option<u64> = admin
        .query_first(myrelay::replication::apply::HIGHEST_APPLIED_SQL)
        .await
        .expect("read bookkeeping");
    assert_eq!(lsn, Some(cluster.master_lsn()));
    assert_eq!(
        rows[1],
        (
            "slave1".to_string(),
            "slave".to_string(),
            Some(cluster.master_lsn())
        )
    );
}

#[tokio::test]
async fn a_slave_with_the_wrong_secret_is_refused() {
    let mut cluster = Cluster::start(0).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE rep").await.expect("db");
    cluster.add_slave("not-the-secret").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let slave = &cluster.slaves[0];
    assert_eq!(applied_lsn(slave).await, 0);
    let mut conn = slave.connect(ADMIN).await;
    let (connected, state): (String, String) = conn
        .query_first("SHOW MYRELAY STATUS")
        .await
        .map(|r: Option<mysql_async::Row>| {
            let mut r = r.expect("row");
            (
                r.take("connected").unwrap_or_default(),
                r.take("state").unwrap_or_default(),
            )
        })
        .expect("status");
    assert_eq!((connected.as_str(), state.as_str()), ("no", "connecting"));
    let dbs: Vec<String> = slave
        .direct()
        .await
        .query("SHOW DATABASES")
        .await
        .expect("dbs");
    assert!(!dbs.contains(&"rep".to_string()));
}

#[tokio::test]
async fn unsafe_statements_are_refused_and_pinned_context_replicates() {
    let cluster = Cluster::start(1).await;
    let mut conn = cluster.master.connect(ADMIN).await;
    conn.query_drop("CREATE DATABASE u").await.expect("db");
    conn.query_drop(
        "CREATE TABLE u.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64), at DATETIME(6), ref BIGINT)",
    )
    .await
    .expect("table");
    conn.query_drop("CREATE TABLE u.src (id INT PRIMARY KEY)")
        .await
        .expect("src");
    for (sql, names) in [
        ("INSERT INTO u.t (v) VALUES (UUID())", "UUID()"),
        ("INSERT INTO u.t (v) VALUES (UUID_SHORT())", "UUID_SHORT()"),
        ("INSERT INTO u.t (at) VALUES (SYSDATE())", "SYSDATE()"),
        ("UPDATE u.t SET v = RAND()", "RAND()"),
        ("DELETE FROM u.t LIMIT 1", "LIMIT without ORDER BY"),
        ("UPDATE u.t SET v = 'x' LIMIT 2", "LIMIT without ORDER BY"),
        (
            "INSERT INTO u.t (ref) SELECT id FROM u.src",
            "INSERT … SELECT without ORDER BY",
        ),
        (
            "INSERT INTO u.t (v) VALUES (CURRENT_USER())",
            "CURRENT_USER()",
        ),
    ] {
        let (code, state, message) = common::expect_error(&mut conn, sql).await;
        assert_eq!((code, state.as_str()), (1592, "HY000"), "{sql}: {message}");
        assert!(message.contains(names), "{sql}: {message}");
    }
    // Stored functions: refused unless declared DETERMINISTIC.
    conn.query_drop(
        "CREATE FUNCTION u.dice() RETURNS INT NOT DETERMINISTIC RETURN FLOOR(1 + RAND() * 6)",
    )
    .await
    .expect("function");
    conn.query_drop("CREATE FUNCTION u.twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x")
        .await
        .expect("function");
    let (code, _, message) =
        common::expect_error(&mut conn, "INSERT INTO u.t (ref) VALUES (u.dice())").await;
    assert_eq!(code, 1592, "{message}");
    assert!(message.contains("DICE()"), "{message}");
    conn.query_drop("INSERT INTO u.t (ref) VALUES (u.twice(21))")
        .await
        .expect("deterministic function");
    // The session is fine, and what the log pins replays identically.
    conn.query_drop(
        "INSERT INTO u.t (v, at) VALUES ('now', NOW(6)), ('later', CURRENT_TIMESTAMP(6))",
    )
    .await
    .expect("pinned time");
    conn.query_drop("INSERT INTO u.t (v, ref) VALUES ('ref', LAST_INSERT_ID())")
        .await
        .expect("last insert id");
    conn.query_drop("UPDATE u.t SET v = CONCAT(v, RAND(7)) ORDER BY id LIMIT 1")
        .await
        .expect("seeded rand with order");
    conn.query_drop("INSERT INTO u.src VALUES (1), (2)")
        .await
        .expect("src rows");
    conn.query_drop("INSERT INTO u.t (ref) SELECT id FROM u.src ORDER BY id")
        .await
        .expect("ordered insert-select");
    cluster.converge(Duration::from_secs(20)).await;
    assert_eq!(
        fingerprint(&cluster.slaves[0], "u").await,
        fingerprint(&cluster.master, "u").await
    );
    let refs: Option<i64> = conn
        .query_first("SELECT ref FROM u.t WHERE v = 'ref'")
        .await
        .expect("ref");
    // LAST_INSERT_ID() is the first id of the two-row insert (ids 2 and 3).
    assert_eq!(refs, Some(2));
}

#[tokio::test]
async fn writes_through_a_slave_go_to_the_master_and_are_read_back_at_once() {
    let cluster = Cluster::start(2).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE fw").await.expect("db");
    admin
        .query_drop("CREATE TABLE fw.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))")
        .await
        .expect("table");
    cluster.converge(Duration::from_secs(20)).await;
    let slave = &cluster.slaves[0];
    let mut app = slave.connect(common::APP).await;
    app.query_drop("USE fw").await.expect("use");
    for i in 0..20 {
        app.query_drop(format!("INSERT INTO t (v) VALUES ('w{i}')"))
            .await
            .expect("forwarded insert");
        let id = app.last_insert_id().expect("insert id from the master");
        // Read your own write on the slave, on the same connection, at once.
        let v: Option<String> = app
            .query_first(format!("SELECT v FROM t WHERE id = {id}"))
            .await
            .expect("read back");
        assert_eq!(
            v,
            Some(format!("w{i}")),
            "row {id} on the slave right after the write"
        );
    }
    app.query_drop("UPDATE t SET v = 'changed' WHERE id <= 5")
        .await
        .expect("update");
    assert_eq!(app.affected_rows(), 5);
    // A whole transaction started on the slave runs on the master.
    app.query_drop("BEGIN").await.expect("begin");
    app.query_drop("INSERT INTO t (v) VALUES ('tx')")
        .await
        .expect("tx insert");
    let seen: Option<i64> = app
        .query_first("SELECT COUNT(*) FROM t WHERE v = 'tx'")
        .await
        .expect("read inside the transaction");
    assert_eq!(seen, Some(1));
    app.query_drop("COMMIT").await.expect("commit");
    let n: Option<i64> = app
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .expect("count");
    assert_eq!(n, Some(21));
    // With autocommit off, writes wait for COMMIT and a ROLLBACK undoes them.
    app.query_drop("SET autocommit = 0")
        .await
        .expect("autocommit off");
    app.query_drop("INSERT INTO t (v) VALUES ('undone')")
        .await
        .expect("insert");
    app.query_drop("ROLLBACK").await.expect("rollback");
    app.query_drop("SET autocommit = 1")
        .await
        .expect("autocommit on");
    let n: Option<i64> = app
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .expect("count");
    assert_eq!(n, Some(21));
    // DDL stays refused on the slave; readonly users cannot write through it.
    let (code, _, message) = common::expect_error(&mut app, "DROP TABLE t").await;
    assert_eq!(code, 1290, "{message}");
    let mut reader = slave.connect(common::READER).await;
    let (code, _, _) =
        common::expect_error(&mut reader, "INSERT INTO fw.t (v) VALUES ('no')").await;
    assert_eq!(code, 1142);
    cluster.converge(Duration::from_secs(20)).await;
    let master = fingerprint(&cluster.master, "fw").await;
    for s in &cluster.slaves {
        assert_eq!(fingerprint(s, "fw").await, master);
    }
}

#[tokio::test]
async fn checksum_reports_equal_nodes_and_names_a_diverged_table() {
    let cluster = Cluster::start(2).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE ck").await.expect("db");
    admin
        .query_drop("CREATE TABLE ck.a (id INT PRIMARY KEY, v INT)")
        .await
        .expect("a");
    admin
        .query_drop("CREATE TABLE ck.b (id INT PRIMARY KEY, v INT)")
        .await
        .expect("b");
    admin
        .query_drop("INSERT INTO ck.a VALUES (1, 1), (2, 2)")
        .await
        .expect("rows");
    admin
        .query_drop("INSERT INTO ck.b VALUES (1, 1)")
        .await
        .expect("rows");
    cluster.converge(Duration::from_secs(20)).await;
    let nodes: Vec<std::net::SocketAddr> = std::iter::once(cluster.master.addr())
        .chain(cluster.slaves.iter().map(|s| s.addr()))
        .collect();
    let report = myrelay::checksum::compare(&nodes, ADMIN.0, ADMIN.1)
        .await
        .expect("compare");
    assert_eq!(report.len(), 2);
    assert!(report.iter().all(|r| r.equal()), "{report:?}");
    // Someone writes to a slave's backend behind the cluster's back.
    cluster.slaves[1]
        .direct()
        .await
        .query_drop("UPDATE ck.b SET v = 99")
        .await
        .expect("diverge");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_myrelay"))
        .arg("checksum")
        .args(nodes.iter().map(|n| n.to_string()))
        .env("DB_USER", ADMIN.0)
        .env("DB_PASS", ADMIN.1)
        .output()
        .await
        .expect("run checksum");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ck.a equal"), "{stdout}");
    assert!(stdout.contains("ck.b DIFFERS"), "{stdout}");
}

#[tokio::test]
async fn an_entry_that_fails_on_a_slave_stops_its_applier_visibly() {
    let cluster = Cluster::start(1).await;
    // The slave's backend already has a table the master is about to create.
    cluster.slaves[0]
        .direct()
        .await
        .query_drop("CREATE DATABASE clash; CREATE TABLE clash.t (x INT)")
        .await
        .expect("sabotage");
    let mut admin = cluster.master.connect(ADMIN).await;
    admin
        .query_drop("CREATE DATABASE IF NOT EXISTS clash")
        .await
        .expect("db");
    admin
        .query_drop("CREATE TABLE clash.t (id INT PRIMARY KEY)")
        .await
        .expect("table");
    admin
        .query_drop("INSERT INTO clash.t VALUES (1)")
        .await
        .expect("row");
    let mut on_slave = cluster.slaves[0].connect(ADMIN).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let state = loop {
        let row: Option<mysql_async::Row> = on_slave
            .query_first("SHOW MYRELAY STATUS")
            .await
            .expect("status");
        let state: String = row.and_then(|mut r| r.take("state")).unwrap_or_default();
        if state.starts_with("applier stopped") || std::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        state.contains("applier stopped") && state.contains("1050"),
        "{state}"
    );
    // Nothing after the failed entry was applied (never skipped silently).
    assert_eq!(
        applied_lsn(&cluster.slaves[0]).await,
        cluster.master_lsn() - 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlocked_transaction_logs_nothing() {
    let cluster = Cluster::start(1).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE dl").await.expect("db");
    admin
        .query_drop("CREATE TABLE dl.t (id INT PRIMARY KEY, v INT)")
        .await
        .expect("table");
    admin
        .query_drop("INSERT INTO dl.t VALUES (1, 0), (2, 0)")
        .await
        .expect("rows");
    let mut a = cluster.master.connect(ADMIN).await;
    let mut b = cluster.master.connect(ADMIN).await;
    a.query_drop("BEGIN").await.expect("a begin");
    a.query_drop("INSERT INTO dl.t VALUES (10, 10)")
        .await
        .expect("a insert");
    a.query_drop("UPDATE dl.t SET v = 1 WHERE id = 1")
        .await
        .expect("a locks 1");
    b.query_drop("BEGIN").await.expect("b begin");
    b.query_drop("INSERT INTO dl.t VALUES (20, 20)")
        .await
        .expect("b insert");
    b.query_drop("UPDATE dl.t SET v = 2 WHERE id = 2")
        .await
        .expect("b locks 2");
    let a_task = tokio::spawn(async move {
        let r = a.query_drop("UPDATE dl.t SET v = 1 WHERE id = 2").await;
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rb = b.query_drop("UPDATE dl.t SET v = 2 WHERE id = 1").await;
    let (mut a, ra) = a_task.await.expect("task");
    let deadlocked = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Err(mysql_async::Error::Server(e)) if e.code == 1213))
        .count();
    assert_eq!(deadlocked, 1, "one victim: {ra:?} {rb:?}");
    // Both clients commit; the victim's transaction is already gone on the backend.
    a.query_drop("COMMIT").await.expect("a commit");
    b.query_drop("COMMIT").await.expect("b commit");
    cluster.converge(Duration::from_secs(20)).await;
    assert_eq!(
        fingerprint(&cluster.slaves[0], "dl").await,
        fingerprint(&cluster.master, "dl").await
    );
    let n: Option<i64> = admin
        .query_first("SELECT COUNT(*) FROM dl.t")
        .await
        .expect("count");
    assert_eq!(n, Some(3), "the survivor's insert only");
}

#[tokio::test]
async fn ddl_interrupted_by_a_crash_is_retried_once_without_stopping_the_slave() {
    let cluster = Cluster::start(1).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE cr").await.expect("db");
    cluster.converge(Duration::from_secs(20)).await;
    // As if the slave had run the next DDL entry and died before recording it.
    let next = cluster.master_lsn() + 1;
    cluster.slaves[0]
        .direct()
        .await
        .query_drop(format!(
            "CREATE TABLE cr.t (id INT PRIMARY KEY); UPDATE myrelay.applied SET ddl_pending = {next}"
        ))
        .await
        .expect("simulate");
    admin
        .query_drop("CREATE TABLE cr.t (id INT PRIMARY KEY)")
        .await
        .expect("table");
    admin
        .query_drop("INSERT INTO cr.t VALUES (1)")
        .await
        .expect("row");
    cluster.converge(Duration::from_secs(20)).await;
    assert_eq!(
        fingerprint(&cluster.slaves[0], "cr").await,
        fingerprint(&cluster.master, "cr").await
    );
}

/// `LOAD DATA LOCAL INFILE` where `limits.max_local_infile` allows it: the stock CLI sends its
/// file to the master node (logged with the statement, so slaves load the same bytes) and to a
/// slave node (forwarded with the file to the master); a file over the limit is refused and the
/// connection goes on.
#[tokio::test]
async fn local_infile_replicates_the_clients_file() {
    let cluster = Cluster::start_with(1, |c| c.limits.max_local_infile = 1024).await;
    let dir = tempfile::tempdir().expect("dir");
    let small = dir.path().join("students.csv");
    std::fs::write(&small, "1,Ada\n2,Grace \\N\n3,\"Q,uote\"\n").expect("csv");
    let large = dir.path().join("large.csv");
    std::fs::write(&large, "9,x\n".repeat(400)).expect("csv");
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE li").await.expect("db");
    admin
        .query_drop("CREATE TABLE li.t (id INT PRIMARY KEY, name VARCHAR(20))")
        .await
        .expect("table");
    let load = |file: &std::path::Path, first: u32| {
        format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE t FIELDS TERMINATED BY ',' \
             OPTIONALLY ENCLOSED BY '\"' (@id, name) SET id = @id + {first};\n\
             SELECT COUNT(*) FROM t;\n",
            file.display()
        )
    };
    let args = ["--local-infile=1", "--skip-column-names", "li"];
    let out = mariadb_cli(
        cluster.master.addr(),
        ADMIN.0,
        ADMIN.1,
        &args,
        &load(&small, 0),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    let slave = &cluster.slaves[0];
    let out = mariadb_cli(slave.addr(), APP.0, APP.1, &args, &load(&small, 10)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "6",
        "reads its own write"
    );
    let too_large = format!("{}SELECT 'still here';\n", load(&large, 100));
    let out = mariadb_cli(slave.addr(), APP.0, APP.1, &["--force", "li"], &too_large).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR 1148") && stderr.contains("max_local_infile (1024 bytes)"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("still here"));

    cluster.converge(Duration::from_secs(20)).await;
    let rows: Vec<(i64, String)> = slave
        .direct()
        .await
        .query("SELECT id, name FROM li.t ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(rows[2], (3, "Q,uote".to_string()));
    assert_eq!(
        fingerprint(&cluster.master, "li").await,
        fingerprint(slave, "li").await
    );
    // Where the limit is 0 (the default), the statement is refused before any file is asked for.
    let node = TestNode::start("plain", NodeRole::Master).await;
    let out = mariadb_cli(
        node.addr(),
        ADMIN.0,
        ADMIN.1,
        &["--local-infile=1"],
        &load(&small, 0),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR 1148") && stderr.contains("max_local_infile is 0"),
        "{stderr}"
    );
}

/// The node's own statements after a client's write (LSN record, COMMIT) would clear the
/// backend's diagnostics: the client still sees its warnings with `SHOW WARNINGS`, on the
/// master and after a write a slave forwarded, as it would on the backend itself.
#[tokio::test]
async fn warnings_of_a_replicated_write_survive_the_nodes_bookkeeping() {
    let cluster = Cluster::start(1).await;
    let mut master = cluster.master.connect(ADMIN).await;
    master.query_drop("CREATE DATABASE w").await.expect("db");
    master
        .query_drop("CREATE TABLE w.t (id INT PRIMARY KEY, v TINYINT)")
        .await
        .expect("table");
    cluster.converge(Duration::from_secs(20)).await;
    type Warning = (String, u32, String);
    let mut direct = cluster.master.direct().await;
    direct
        .query_drop("INSERT IGNORE INTO w.t VALUES (1, 1), (1, 2)")
        .await
        .expect("direct");
    let expected: Vec<Warning> = direct.query("SHOW WARNINGS").await.expect("warnings");
    assert_eq!(expected.len(), 1, "{expected:?}");
    direct.query_drop("DELETE FROM w.t").await.expect("clean");

    master
        .query_drop("INSERT IGNORE INTO w.t VALUES (1, 1), (1, 2)")
        .await
        .expect("through the master");
    assert_eq!(master.get_warnings(), 1);
    let seen: Vec<Warning> = master.query("SHOW WARNINGS").await.expect("warnings");
    assert_eq!(seen, expected);
    let errors: Vec<Warning> = master.query("SHOW ERRORS").await.expect("errors");
    assert!(errors.is_empty(), "{errors:?}");
    // Only until the next statement, as on the server.
    master.query_drop("SELECT 1").await.expect("select");
    let seen: Vec<Warning> = master.query("SHOW WARNINGS").await.expect("warnings");
    assert!(seen.is_empty(), "{seen:?}");
    // DDL, and a write forwarded by a slave.
    master
        .query_drop("DROP TABLE IF EXISTS w.missing")
        .await
        .expect("drop");
    let seen: Vec<Warning> = master.query("SHOW WARNINGS").await.expect("warnings");
    assert_eq!(seen.first().map(|w| w.1), Some(1051), "{seen:?}");
    let mut slave = cluster.slaves[0].connect(ADMIN).await;
    slave
        .query_drop("INSERT IGNORE INTO w.t VALUES (1, 3), (2, 300)")
        .await
        .expect("through the slave");
    let seen: Vec<Warning> = slave.query("SHOW WARNINGS").await.expect("warnings");
    let codes: Vec<u32> = seen.iter().map(|w| w.1).collect();
    assert_eq!(codes, vec![1062, 1264], "{seen:?}");
}

/// A slave applies what arrived together as one transaction; an entry that fails in such a run
/// is still named exactly, with every entry before it applied and none after.
#[tokio::test]
async fn a_run_of_entries_commits_together_and_a_failing_entry_is_named() {
    use myrelay::replication::apply::{self, apply_all};
    use myrelay::replication::change::{Change, LoggedStatement};
    let server = common::backend().await;
    let mut conn = common::connect(server.addr(), common::DB_USER, common::DB_PASS).await;
    apply::prepare(&mut conn).await.expect("bookkeeping");
    conn.query_drop("CREATE DATABASE run; CREATE TABLE run.t (id INT PRIMARY KEY)")
        .await
        .expect("schema");
    let insert = |id: u32| Change {
        sql_mode: "STRICT_TRANS_TABLES".into(),
        charset: "utf8mb4".into(),
        ddl: false,
        statements: vec![LoggedStatement {
            sql: format!("INSERT INTO t VALUES ({id})"),
            db: Some("run".into()),
            timestamp: "1700000000.000001".into(),
            insert_id: None,
            last_insert_id: None,
            infile: None,
        }],
    };
    let mut context = None;
    // LSN 4 repeats id 2: a duplicate key.
    let entries: Vec<(u64, Change)> = [1, 2, 3, 2, 5]
        .into_iter()
        .enumerate()
        .map(|(i, id)| (i as u64 + 1, insert(id)))
        .collect();
    let (lsn, err) = apply_all(&mut conn, &entries, &mut context)
        .await
        .expect_err("LSN 4 fails");
    assert_eq!(lsn, 4, "{err}");
    assert!(
        matches!(&err, mysql_async::Error::Server(e) if e.code == 1062),
        "{err}"
    );
    let ids = "SELECT id FROM run.t ORDER BY id";
    assert_eq!(conn.query::<u32, _>(ids).await.expect("rows"), [1, 2, 3]);
    assert_eq!(apply::applied_lsn(&mut conn).await.expect("lsn"), 3);
    // A clean run commits with its last LSN.
    let entries: Vec<(u64, Change)> = (4..=8).map(|lsn| (lsn, insert(lsn as u32 + 10))).collect();
    apply_all(&mut conn, &entries, &mut context)
        .await
        .map_err(|(lsn, e)| format!("LSN {lsn}: {e}"))
        .expect("clean run");
    assert_eq!(
        conn.query::<u32, _>(ids).await.expect("rows"),
        [1, 2, 3, 14, 15, 16, 17, 18]
    );
    assert_eq!(apply::applied_lsn(&mut conn).await.expect("lsn"), 8);
}
