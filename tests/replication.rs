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
    assert_eq!(
        rows[1],
        (
            "slave1".to_string(),
            "slave".to_string(),
            Some(cluster.master_lsn().await)
        )
    );
}

#[tokio::test]
async fn a_slave_with_the_wrong_secret_is_refused() {
    let mut cluster = Cluster::start(0).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE rep").await.expect("db");
    cluster.add_slave("not-the-secret").await;
    let slave = &cluster.slaves[0];
    let mut conn = slave.connect(ADMIN).await;
    // The slave node reports the refusal; until then nothing can have been applied either.
    let mut changes = slave
        .node
        .shared
        .replica
        .as_ref()
        .expect("slave")
        .status_changes();
    let (connected, state) = loop {
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
        if state.contains("authentication failed") {
            break (connected, state);
        }
        let _ = changes.changed().await;
    };
    assert_eq!(connected, "no", "{state}");
    assert!(state.starts_with("connecting"), "{state}");
    assert_eq!(applied_lsn(slave), 0);
    let dbs: Vec<String> = slave
        .direct()
        .await
        .query("SHOW DATABASES")
        .await
        .expect("dbs");
    assert!(!dbs.contains(&"rep".to_string()));
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
async fn a_transaction_that_fails_on_a_slave_stops_its_applier_visibly() {
    let cluster = Cluster::start(1).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE clash").await.expect("db");
    admin
        .query_drop("CREATE TABLE clash.t (id INT PRIMARY KEY)")
        .await
        .expect("table");
    cluster.converge(Duration::from_secs(20)).await;
    // The slave's backend already has the row the master is about to insert.
    cluster.slaves[0]
        .direct()
        .await
        .query_drop("INSERT INTO clash.t VALUES (1)")
        .await
        .expect("sabotage");
    admin
        .query_drop("INSERT INTO clash.t VALUES (1)")
        .await
        .expect("row");
    let mut on_slave = cluster.slaves[0].connect(ADMIN).await;
    let replica = cluster.slaves[0]
        .node
        .shared
        .replica
        .clone()
        .expect("slave");
    let mut changes = replica.status_changes();
    let state = loop {
        let row: Option<mysql_async::Row> = on_slave
            .query_first("SHOW MYRELAY STATUS")
            .await
            .expect("status");
        let state: String = row.and_then(|mut r| r.take("state")).unwrap_or_default();
        if state.starts_with("applier stopped") {
            break state;
        }
        tokio::time::timeout(Duration::from_secs(20), changes.changed())
            .await
            .unwrap_or_else(|_| panic!("the slave never reported its applier stopping: {state}"))
            .expect("the slave runs");
    };
    assert!(
        state.contains("applier stopped") && state.contains("1062"),
        "{state}"
    );
    // Nothing after the failed transaction was applied (never skipped silently).
    assert_eq!(
        applied_lsn(&cluster.slaves[0]),
        cluster.master_lsn().await - 1
    );
}

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
    // The slave's CLI opens database `li`, which reaches the slave by replication.
    cluster.converge(Duration::from_secs(10)).await;
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
