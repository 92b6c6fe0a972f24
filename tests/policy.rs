//! The role policy over the wire: every (node role × user role × statement class) cell, refusals
//! with the right MySQL error, and sessions that stay usable after a refusal.

mod common;

use common::{ADMIN, APP, READER, REMOTE_ADMIN, TestNode, connect, expect_error};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;

/// One statement of each class, valid on a backend that has table `pol.t`.
const CLASSES: [(&str, &str); 6] = [
    ("read", "SELECT COUNT(*) FROM pol.t"),
    ("session", "SET @policy_var = 1"),
    ("transaction", "ROLLBACK"),
    ("write", "INSERT INTO pol.t (v) VALUES (1)"),
    (
        "ddl",
        "CREATE TABLE IF NOT EXISTS pol.made_by_test (id INT)",
    ),
    ("admin", "FLUSH STATUS"),
];

/// The policy error a cell must produce, or None when the statement must run.
fn expected(node: NodeRole, user: &str, class: &str) -> Option<u16> {
    let admin = user == ADMIN.0; // REMOTE_ADMIN connects from outside its admin_from: app rights
    match (node, class) {
        (_, "read" | "session" | "transaction") => None,
        (_, "write") if user == READER.0 => Some(1142),
        (NodeRole::Master, "write") => None,
        (NodeRole::Slave, _) => Some(1290),
        (NodeRole::Master, _) if admin => None,
        (NodeRole::Master, _) => Some(1227),
    }
}

#[tokio::test]
async fn every_cell_of_the_policy_over_the_wire() {
    for role in [NodeRole::Master, NodeRole::Slave] {
        let node = TestNode::start("n", role).await;
        node.direct()
            .await
            .query_drop("CREATE DATABASE pol; CREATE TABLE pol.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
            .await
            .expect("setup");
        for user in [ADMIN, APP, READER, REMOTE_ADMIN] {
            let mut conn = node.connect(user).await;
            for (class, sql) in CLASSES {
                let outcome = conn.query_drop(sql).await;
                match (expected(role, user.0, class), outcome) {
                    (None, Ok(())) => {}
                    (Some(code), Err(mysql_async::Error::Server(e))) => {
                        assert_eq!(e.code, code, "{role:?} {} {class}: {}", user.0, e.message);
                        let state = if code == 1290 { "HY000" } else { "42000" };
                        assert_eq!(e.state, state, "{role:?} {} {class}", user.0);
                    }
                    (want, got) => panic!(
                        "{role:?} {} {class}: expected {want:?}, got {got:?}",
                        user.0
                    ),
                }
                // Whatever happened, the session goes on.
                let seven: Option<i32> = conn.query_first("SELECT 7").await.expect("usable");
                assert_eq!(seven, Some(7));
            }
        }
        // Refused writes and DDL changed nothing on the backend.
        let mut direct = node.direct().await;
        let rows: Option<i64> = direct
            .query_first("SELECT COUNT(*) FROM pol.t")
            .await
            .expect("count");
        let tables: Vec<String> = direct.query("SHOW TABLES FROM pol").await.expect("tables");
        match role {
            NodeRole::Master => {
                assert_eq!(rows, Some(3), "admin, app and remote admin inserted");
                assert!(tables.contains(&"made_by_test".to_string()));
            }
            NodeRole::Slave => {
                assert_eq!(rows, Some(0));
                assert_eq!(tables, vec!["t".to_string()]);
            }
        }
    }
}

#[tokio::test]
async fn ddl_on_a_slave_names_the_master_and_the_session_goes_on() {
    let node = TestNode::start("s1", NodeRole::Slave).await;
    let mut conn = node.connect(ADMIN).await;
    for sql in [
        "CREATE DATABASE nope",
        "/* hidden */ DROP TABLE t",
        "-- hidden\nDROP TABLE t",
        "# hidden\nDROP TABLE t",
        "/*!40101 DROP TABLE t */",
        "SELECT 1; DROP TABLE t",
    ] {
        let (code, state, message) = expect_error(&mut conn, sql).await;
        assert_eq!((code, state.as_str()), (1290, "HY000"), "{sql}: {message}");
        assert!(
            message.contains("127.0.0.1:3999"),
            "names the master: {message}"
        );
        assert!(message.contains("DDL"), "{message}");
        let seven: Option<i32> = conn.query_first("SELECT 7").await.expect("usable");
        assert_eq!(seven, Some(7));
    }
    let (code, _, message) = expect_error(&mut conn, "SELECT 1 INTO OUTFILE '/tmp/x'").await;
    assert_eq!(code, 1290, "{message}");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_1045() {
    let node = TestNode::start("m", NodeRole::Master).await;
    for (user, pass) in [(ADMIN.0, "wrong"), ("nobody", "x"), (APP.0, "")] {
        let err = mysql_async::Conn::new(common::opts(node.addr(), user, pass))
            .await
            .expect_err("must be refused");
        match err {
            mysql_async::Error::Server(e) => {
                assert_eq!((e.code, e.state.as_str()), (1045, "28000"), "{}", e.message);
                assert!(e.message.contains(user), "{}", e.message);
            }
            other => panic!("expected 1045, got {other:?}"),
        }
    }
    // The node still serves a correct login.
    let mut conn = connect(node.addr(), APP.0, APP.1).await;
    let one: Option<i32> = conn.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn non_admin_ddl_and_readonly_writes_are_refused_on_the_master() {
    let node = TestNode::start("m", NodeRole::Master).await;
    node.direct()
        .await
        .query_drop("CREATE DATABASE r; CREATE TABLE r.t (id INT)")
        .await
        .expect("setup");
    let mut app = node.connect(APP).await;
    let (code, state, message) = expect_error(&mut app, "DROP TABLE r.t").await;
    assert_eq!((code, state.as_str()), (1227, "42000"), "{message}");
    assert!(
        message.contains("DROP TABLE") && message.contains("app"),
        "{message}"
    );
    let mut reader = node.connect(READER).await;
    let (code, state, message) = expect_error(&mut reader, "INSERT INTO r.t VALUES (1)").await;
    assert_eq!((code, state.as_str()), (1142, "42000"), "{message}");
    assert!(
        message.contains("INSERT") && message.contains("r.t"),
        "{message}"
    );
    let (code, _, _) =
        expect_error(&mut reader, "LOAD DATA INFILE '/etc/passwd' INTO TABLE r.t").await;
    assert_eq!(code, 1227);
    // LOCAL INFILE would make the backend read a file from the node's host: refused for all.
    let mut admin = node.connect(ADMIN).await;
    let (code, state, message) = expect_error(
        &mut admin,
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE r.t",
    )
    .await;
    assert_eq!((code, state.as_str()), (1148, "42000"), "{message}");
    let n: Option<i64> = reader
        .query_first("SELECT COUNT(*) FROM r.t")
        .await
        .expect("read");
    assert_eq!(n, Some(0));
}

#[tokio::test]
async fn change_user_switches_role_and_a_wrong_password_ends_the_connection() {
    let node = TestNode::start("m", NodeRole::Master).await;
    node.direct()
        .await
        .query_drop("CREATE DATABASE cu; CREATE TABLE cu.t (id INT)")
        .await
        .expect("setup");
    let mut conn = node.connect(ADMIN).await;
    conn.query_drop("SET @before = 1").await.expect("set");
    let to_reader = mysql_async::ChangeUserOpts::default()
        .with_user(Some(READER.0.into()))
        .with_pass(Some(READER.1.into()))
        .with_db_name(Some("cu".into()));
    conn.change_user(to_reader).await.expect("change to reader");
    let state: Option<(Option<String>, Option<i64>)> = conn
        .query_first("SELECT DATABASE(), @before")
        .await
        .expect("state");
    assert_eq!(
        state,
        Some((Some("cu".into()), None)),
        "a fresh session in the new database"
    );
    let (code, _, message) = expect_error(&mut conn, "INSERT INTO t VALUES (1)").await;
    assert_eq!(code, 1142, "now a reader: {message}");
    let wrong = mysql_async::ChangeUserOpts::default()
        .with_user(Some(APP.0.into()))
        .with_pass(Some("not-it".into()));
    let err = conn.change_user(wrong).await.expect_err("wrong password");
    assert!(err.to_string().contains("1045"), "{err}");
}
