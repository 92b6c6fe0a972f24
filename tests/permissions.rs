//! Who may see and do what: the system schemas (the server's accounts, the node's bookkeeping)
//! are for admin users, a user's `databases` confine its statements, writing a system schema is
//! administration, and a slave takes no table locks. Over the wire, as `app` and `reader`,
//! through a master and a slave.

mod common;

use std::time::Duration;

use common::{ADMIN, APP, Cluster, READER, TestNode, expect_error, mariadb_cli};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;

/// Statements a non-admin user is refused, with the error a server gives a user without rights
/// on the `mysql` schema (1142 for a table, 1044 for the schema).
const SYSTEM_READS: [(&str, u16); 7] = [
    ("SELECT User, Password FROM mysql.user", 1142),
    ("SELECT * FROM mysql.global_priv", 1142),
    ("SHOW GRANTS FOR root@localhost", 1044),
    ("SHOW CREATE USER root@localhost", 1044),
    ("USE mysql", 1044),
    ("SELECT * FROM performance_schema.threads", 1142),
    ("SELECT * FROM myrelay.applied", 1142),
];

/// What drivers and tools read at connect and for metadata: these must keep answering.
const METADATA_READS: [&str; 5] = [
    "SHOW DATABASES",
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'perm'",
    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'perm'",
    "SELECT CONSTRAINT_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = 'perm'",
    "SELECT id FROM perm.t",
];

#[tokio::test]
async fn non_admin_users_see_application_data_only_on_master_and_slave() {
    let cluster = Cluster::start(1).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin
        .query_drop("CREATE DATABASE perm")
        .await
        .expect("create database");
    admin
        .query_drop("CREATE TABLE perm.t (id INT PRIMARY KEY)")
        .await
        .expect("create table");
    cluster.converge(Duration::from_secs(30)).await;
    for node in [&cluster.master, &cluster.slaves[0]] {
        for user in [APP, READER] {
            let mut conn = node.connect(user).await;
            for (sql, code) in SYSTEM_READS {
                let (got, state, message) = expect_error(&mut conn, sql).await;
                assert_eq!(
                    (got, state.as_str()),
                    (code, "42000"),
                    "{} {sql}: {message}",
                    user.0
                );
                assert!(message.contains(user.0), "names the user: {message}");
            }
            for sql in METADATA_READS {
                conn.query_drop(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{} {sql}: {e}", user.0));
            }
            // The database selected by the protocol (the CLI's `use`) and at login is judged too.
            let out = mariadb_cli(node.addr(), user.0, user.1, &[], "use mysql\nSELECT 1;\n").await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("ERROR 1044"), "COM_INIT_DB: {stderr}");
            let out =
                mariadb_cli(node.addr(), user.0, user.1, &["-D", "mysql"], "SELECT 1;\n").await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("ERROR 1044"), "login database: {stderr}");
        }
        // Admins still see everything.
        let mut conn = node.connect(ADMIN).await;
        let users: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM mysql.user")
            .await
            .expect("admin reads mysql.user");
        assert!(users.unwrap_or(0) > 0);
        conn.query_drop("SHOW GRANTS FOR root@localhost")
            .await
            .expect("admin shows grants");
    }
}

#[tokio::test]
async fn writes_to_system_schemas_are_administration_and_slaves_take_no_table_locks() {
    let cluster = Cluster::start(1).await;
    let slave = &cluster.slaves[0];
    let mut admin = cluster.master.connect(ADMIN).await;
    admin
        .query_drop("CREATE DATABASE locks")
        .await
        .expect("create database");
    admin
        .query_drop("CREATE TABLE locks.t (id INT PRIMARY KEY)")
        .await
        .expect("create table");
    cluster.converge(Duration::from_secs(30)).await;

    // Through a slave, even an admin's write to the accounts is not forwarded: it is
    // administration, which runs on the master only.
    let mut conn = slave.connect(ADMIN).await;
    let (code, state, message) =
        expect_error(&mut conn, "DELETE FROM mysql.user WHERE User = 'nobody'").await;
    assert_eq!((code, state.as_str()), (1290, "HY000"), "{message}");
    // On the master a non-admin gets 1227, as for any administrative statement.
    let mut app = cluster.master.connect(APP).await;
    let (code, _, message) = expect_error(
        &mut app,
        "UPDATE mysql.user SET Host = '%' WHERE User = 'x'",
    )
    .await;
    assert_eq!(code, 1227, "{message}");

    for user in [ADMIN, APP, READER] {
        let mut conn = slave.connect(user).await;
        let (code, state, message) = expect_error(&mut conn, "LOCK TABLES locks.t READ").await;
        assert_eq!(
            (code, state.as_str()),
            (1290, "HY000"),
            "{}: {message}",
            user.0
        );
        assert!(message.contains("master"), "{message}");
        conn.query_drop("SELECT 1")
            .await
            .expect("usable after refusal");
    }
    // The master takes them, as a server does.
    admin
        .query_drop("LOCK TABLES locks.t READ")
        .await
        .expect("lock on master");
    admin.query_drop("UNLOCK TABLES").await.expect("unlock");
}

#[tokio::test]
async fn a_users_databases_confine_it_and_a_reload_changes_them() {
    let node = TestNode::start_with("m", NodeRole::Master, |c| {
        if let Some(app) = c.users.get_mut(APP.0) {
            app.databases = Some(vec!["school".to_string(), "shop\\_%".to_string()].into());
        }
    })
    .await;
    let mut direct = node.direct().await;
    for db in ["school", "shop_eu", "shopx", "hr"] {
        direct
            .query_drop(format!(
                "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY)"
            ))
            .await
            .expect("setup");
    }
    let mut app = node.connect(APP).await;
    for db in ["school", "shop_eu"] {
        app.query_drop(format!("INSERT INTO {db}.t VALUES (1)"))
            .await
            .unwrap_or_else(|e| panic!("{db}: {e}"));
    }
    for (sql, code, names) in [
        ("SELECT * FROM hr.t", 1142, "hr.t"),
        ("INSERT INTO shopx.t VALUES (1)", 1142, "shopx.t"),
        ("SELECT * FROM school.t JOIN hr.t USING (id)", 1142, "hr.t"),
        ("USE hr", 1044, "'hr'"),
    ] {
        let (got, _, message) = expect_error(&mut app, sql).await;
        assert_eq!(got, code, "{sql}: {message}");
        assert!(message.contains(names), "{sql}: {message}");
        assert!(message.contains("school, shop\\_%"), "says why: {message}");
    }
    // Unqualified tables are judged in the current database.
    app.query_drop("USE school").await.expect("use school");
    app.query_drop("SELECT * FROM t").await.expect("school.t");

    // A reload (what SIGHUP does after reading the file) moves the fence for the same session.
    let mut config = node.node.shared.config.clone();
    if let Some(user) = config.users.get_mut(APP.0) {
        user.databases = Some(vec!["hr".to_string()].into());
    }
    node.node.reload(&config);
    app.query_drop("SELECT * FROM hr.t")
        .await
        .expect("hr after reload");
    let (code, _, message) = expect_error(&mut app, "SELECT * FROM school.t").await;
    assert_eq!(code, 1142, "{message}");
}

#[tokio::test]
async fn the_process_list_shows_a_non_admin_its_own_connections_only() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut admin = node.connect(ADMIN).await;
    for user in [APP, READER] {
        let mut first = node.connect(user).await;
        let mut second = node.connect(user).await;
        let mut own = Vec::new();
        for conn in [&mut first, &mut second] {
            let id: Option<u64> = conn
                .query_first("SELECT CONNECTION_ID()")
                .await
                .expect("id");
            own.extend(id);
        }
        own.sort_unstable();
        for sql in ["SHOW PROCESSLIST", "SHOW FULL PROCESSLIST"] {
            let rows: Vec<mysql_async::Row> = first.query(sql).await.expect(sql);
            let mut ids: Vec<u64> = rows.iter().filter_map(|r| r.get(0)).collect();
            ids.sort_unstable();
            assert_eq!(
                ids, own,
                "{} {sql}: its own connections, no one else's",
                user.0
            );
        }
        let (code, _, message) =
            expect_error(&mut first, "SELECT * FROM information_schema.PROCESSLIST").await;
        assert_eq!(code, 1227, "{message}");
        let (code, _, message) = expect_error(&mut first, "SELECT 1; SHOW PROCESSLIST").await;
        assert_eq!(code, 1227, "{message}");
    }
    // An admin sees every client's connection.
    let mut reader = node.connect(READER).await;
    let id: Option<u64> = reader
        .query_first("SELECT CONNECTION_ID()")
        .await
        .expect("id");
    let rows: Vec<mysql_async::Row> = admin.query("SHOW PROCESSLIST").await.expect("admin");
    let ids: Vec<u64> = rows.iter().filter_map(|r| r.get(0)).collect();
    assert!(id.is_some_and(|id| ids.contains(&id)), "{ids:?} has {id:?}");
    let n: Option<i64> = admin
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {}",
            id.unwrap_or(0)
        ))
        .await
        .expect("admin reads the process list table");
    assert_eq!(n, Some(1));
}
