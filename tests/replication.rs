//! Replication: concurrent writers on the master, every slave converges to identical data;
//! late slaves catch up from LSN 0; a wrong secret is refused; status shows it all.

mod common;

use std::time::Duration;

use common::{ADMIN, Cluster, applied_lsn, fingerprint};
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
                "UPDATE rep.events SET at = NOW(6) WHERE client = {client} AND note = 'tx'"
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
