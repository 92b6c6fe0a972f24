//! Prepared statements through a node equal prepared statements against the backend, and
//! prepared writes go through the policy, the replication log (with their bound values) and
//! forwarding like any other write.

mod common;

use std::time::Duration;

use common::{ADMIN, APP, Cluster, READER, TestNode, fingerprint};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Params, Row, Value};

async fn exec_result(
    conn: &mut Conn,
    sql: &str,
    params: Params,
) -> (Vec<Column>, Vec<Vec<Option<Value>>>) {
    let mut result = conn.exec_iter(sql, params).await.expect("exec");
    let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    let rows: Vec<Row> = result.collect().await.expect("rows");
    (columns, rows.into_iter().map(Row::unwrap_raw).collect())
}

fn params() -> Params {
    Params::Positional(vec![
        Value::Int(-42),
        Value::UInt(u64::MAX),
        Value::Double(std::f64::consts::PI),
        Value::Float(1.5),
        Value::Bytes("héllo 😀".as_bytes().to_vec()),
        Value::Bytes(vec![0, 0xFF, 0x27, 0x5C]),
        Value::NULL,
        Value::Date(2024, 2, 29, 13, 14, 15, 123456),
        Value::Time(true, 1, 2, 3, 4, 500000),
    ])
}

const TYPES: &str = r#"CREATE DATABASE ps;
CREATE TABLE ps.types (id INT AUTO_INCREMENT PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED,
  mi MEDIUMINT, i INT, bu BIGINT UNSIGNED, de DECIMAL(20,6), f FLOAT, d DOUBLE, bi BIT(8),
  vc VARCHAR(50) CHARACTER SET utf8mb4, vb VARBINARY(16), bl BLOB, e ENUM('a','b'), dt DATE,
  tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR, j JSON);
INSERT INTO ps.types VALUES (NULL, -128, 65535, -8388608, -2147483648, 18446744073709551615,
  -12345678901234.123456, 1.5, 2.5e-300, b'10100101', 'héllo 😀', 0x00FF00, 0x0001FF, 'b',
  '2024-02-29', '-838:59:59.000', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.654321',
  2024, '{"a": [1, null]}');
INSERT INTO ps.types (id) VALUES (NULL)"#;

#[tokio::test]
async fn prepared_results_and_parameters_equal_the_backend() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut direct = node.direct().await;
    for stmt in TYPES.split(";\n") {
        direct.query_drop(stmt).await.expect("setup");
    }
    let mut conn = node.connect(ADMIN).await;
    for (sql, p) in [
        (
            "SELECT * FROM ps.types WHERE id >= ? ORDER BY id",
            Params::Positional(vec![Value::Int(1)]),
        ),
        ("SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?", params()),
        ("SELECT COUNT(*) FROM ps.types", Params::Empty),
    ] {
        let want = exec_result(&mut direct, sql, p.clone()).await;
        let got = exec_result(&mut conn, sql, p).await;
        assert!(!want.1.is_empty());
        assert_eq!(got.0, want.0, "column definitions of {sql}");
        assert_eq!(got.1, want.1, "values of {sql}");
    }
    // Errors pass through; the session goes on.
    let err = conn
        .exec_drop("SELECT * FROM ps.nope WHERE id = ?", (1,))
        .await
        .expect_err("1146");
    assert!(err.to_string().contains("1146"), "{err}");
    let v: Option<i64> = conn.exec_first("SELECT ? + 1", (41,)).await.expect("works");
    assert_eq!(v, Some(42));
    // Statements are closed and prepared again without trouble.
    for i in 0..50 {
        let stmt = conn.prep("SELECT ? * 2").await.expect("prep");
        let v: Option<i64> = conn.exec_first(&stmt, (i,)).await.expect("exec");
        assert_eq!(v, Some(i * 2));
        conn.close(stmt).await.expect("close");
    }
}

#[tokio::test]
async fn prepared_statements_obey_the_policy() {
    let node = TestNode::start("s1", NodeRole::Slave).await;
    let mut admin = node.connect(ADMIN).await;
    let err = admin
        .prep("DROP TABLE t")
        .await
        .expect_err("DDL on a slave");
    assert!(err.to_string().contains("1290"), "{err}");
    let mut reader = node.connect(READER).await;
    let err = reader
        .prep("INSERT INTO t VALUES (?)")
        .await
        .expect_err("readonly write");
    assert!(err.to_string().contains("1142"), "{err}");
    let v: Option<i64> = reader
        .exec_first("SELECT ?", (7,))
        .await
        .expect("reads are fine");
    assert_eq!(v, Some(7));
}

#[tokio::test]
async fn prepared_writes_replicate_with_their_values_and_forward_from_slaves() {
    let cluster = Cluster::start(1).await;
    let mut admin = cluster.master.connect(ADMIN).await;
    admin.query_drop("CREATE DATABASE pw").await.expect("db");
    admin
        .query_drop(
            "CREATE TABLE pw.t (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(40) CHARACTER SET utf8mb4, \
             b VARBINARY(8), d DOUBLE, f FLOAT, at DATETIME(6), n INT)",
        )
        .await
        .expect("table");
    let insert = "INSERT INTO pw.t (s, b, d, f, at, n) VALUES (?, ?, ?, ?, ?, ?)";
    let rows = [
        (
            "it's 😀 \\ \"q\"",
            vec![0u8, 0xFF, b'\'', b'\\'],
            0.1f64,
            0.1f32,
            Value::Date(2024, 1, 2, 3, 4, 5, 6),
            Value::NULL,
        ),
        ("plain", vec![], -1e300, 3.5, Value::NULL, Value::Int(-5)),
    ];
    for (s, b, d, f, at, n) in rows {
        let p = Params::Positional(vec![
            Value::Bytes(s.as_bytes().to_vec()),
            Value::Bytes(b),
            Value::Double(d),
            Value::Float(f),
            at,
            n,
        ]);
        admin.exec_drop(insert, p).await.expect("prepared insert");
    }
    assert_eq!(admin.last_insert_id(), Some(2));
    admin
        .exec_drop("UPDATE pw.t SET n = ? WHERE id = ?", (99, 1))
        .await
        .expect("prepared update");
    assert_eq!(admin.affected_rows(), 1);
    // A prepared write through the slave goes to the master and is read back at once. The
    // slave prepares it against its own backend, so the table must have reached it first.
    cluster.converge(Duration::from_secs(10)).await;
    let slave = &cluster.slaves[0];
    let mut app = slave.connect(APP).await;
    app.exec_drop(
        insert,
        ("from slave", vec![1u8, 2], 2.0, 2.0f32, Value::NULL, 3),
    )
    .await
    .expect("forwarded prepared insert");
    let s: Option<String> = app
        .exec_first("SELECT s FROM pw.t WHERE n = ?", (3,))
        .await
        .expect("read back");
    assert_eq!(s.as_deref(), Some("from slave"));
    cluster.converge(Duration::from_secs(20)).await;
    assert_eq!(
        fingerprint(slave, "pw").await,
        fingerprint(&cluster.master, "pw").await
    );
    let master_rows: Vec<Row> = cluster
        .master
        .direct()
        .await
        .query("SELECT * FROM pw.t ORDER BY id")
        .await
        .expect("rows");
    let slave_rows: Vec<Row> = slave
        .direct()
        .await
        .query("SELECT * FROM pw.t ORDER BY id")
        .await
        .expect("rows");
    let raw = |rows: Vec<Row>| rows.into_iter().map(Row::unwrap_raw).collect::<Vec<_>>();
    assert_eq!(raw(slave_rows), raw(master_rows));
}

#[tokio::test]
async fn prepared_metadata_follows_alter_table() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut conn = node.connect(ADMIN).await;
    conn.query_drop(
        "CREATE DATABASE al; CREATE TABLE al.t (id INT PRIMARY KEY); INSERT INTO al.t VALUES (1)",
    )
    .await
    .expect("setup");
    let stmt = conn
        .prep("SELECT * FROM al.t WHERE id = ?")
        .await
        .expect("prep");
    let before = exec_result(
        &mut conn,
        "SELECT * FROM al.t WHERE id = ?",
        Params::Positional(vec![Value::Int(1)]),
    )
    .await;
    assert_eq!(before.0.len(), 1);
    conn.query_drop("ALTER TABLE al.t ADD COLUMN extra VARCHAR(10) DEFAULT 'new'")
        .await
        .expect("alter");
    let mut result = conn.exec_iter(&stmt, (1,)).await.expect("exec after alter");
    let columns: Vec<String> = result
        .columns()
        .map(|c| c.iter().map(|c| c.name_str().into_owned()).collect())
        .unwrap_or_default();
    let rows: Vec<Row> = result.collect().await.expect("rows");
    assert_eq!(columns, vec!["id", "extra"]);
    assert_eq!(
        rows[0].clone().unwrap_raw()[1],
        Some(Value::Bytes(b"new".to_vec()))
    );
}

/// SQL-level `PREPARE` / `EXECUTE … USING @vars` / `EXECUTE IMMEDIATE`: the values live in the
/// client's own session, so a write replicates (from the master) and forwards (from a slave) as
/// its text with those values, never as an `EXECUTE` that another server cannot resolve.
#[tokio::test]
async fn sql_level_prepared_writes_replicate_and_forward_with_their_values() {
    let cluster = Cluster::start(1).await;
    let mut master = cluster.master.connect(ADMIN).await;
    for sql in [
        "CREATE DATABASE sp",
        "CREATE TABLE sp.t (id INT PRIMARY KEY, v VARCHAR(20), b VARBINARY(4))",
        "USE sp",
        "PREPARE ins FROM 'INSERT INTO t VALUES (?, ?, ?)'",
        "SET @id = 1, @v = 'from master', @b = X'00FF'",
        "EXECUTE ins USING @id, @v, @b",
        "SET @id = 2",
        "EXECUTE ins USING @id, CONCAT(@v, '!'), NULL",
        "DEALLOCATE PREPARE ins",
        "EXECUTE IMMEDIATE 'UPDATE t SET v = ? WHERE id = ?' USING 'updated', 2",
        "PREPARE sel FROM 'SELECT COUNT(*) FROM t WHERE id >= ?'",
        "SET @zero = 0",
    ] {
        master
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let n: Option<i64> = master
        .query_first("EXECUTE sel USING @zero")
        .await
        .expect("read");
    assert_eq!(n, Some(2));
    let (code, _, message) =
        common::expect_error(&mut master, "EXECUTE ins USING @id, @v, @b").await;
    assert_eq!(code, 1243, "{message}");
    let (code, _, _) = common::expect_error(
        &mut master,
        "EXECUTE IMMEDIATE 'DELETE FROM t WHERE id = ?' USING 1, 2",
    )
    .await;
    assert_eq!(code, 1210, "more values than placeholders");
    // What a prepared statement runs is judged like any statement, for each way of naming it.
    let mut reader = cluster.master.connect(READER).await;
    reader
        .query_drop("SET @q = 'DELETE FROM sp.t'")
        .await
        .expect("a user variable");
    for sql in [
        "PREPARE d FROM 'DELETE FROM sp.t'",
        "PREPARE d FROM @q",
        "EXECUTE IMMEDIATE 'DELETE FROM sp.t WHERE id = ?' USING 1",
    ] {
        let (code, _, _) = common::expect_error(&mut reader, sql).await;
        assert_eq!(code, 1142, "{sql}");
    }

    // `USE sp` on the slave needs the database there.
    cluster.converge(Duration::from_secs(20)).await;
    let slave = &cluster.slaves[0];
    let mut on_slave = slave.connect(APP).await;
    for sql in [
        "USE sp",
        "PREPARE ins FROM 'INSERT INTO t VALUES (?, ?, ?)'",
        "SET @id = 3, @v = 'from slave', @b = X'01'",
        "EXECUTE ins USING @id, @v, @b",
    ] {
        on_slave
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let row: Option<(String, Vec<u8>)> = on_slave
        .query_first("SELECT v, b FROM t WHERE id = 3")
        .await
        .expect("read own write");
    assert_eq!(row, Some(("from slave".into(), vec![1])));

    cluster.converge(Duration::from_secs(20)).await;
    let rows: Vec<(i64, Option<String>, Option<Vec<u8>>)> = slave
        .direct()
        .await
        .query("SELECT id, v, b FROM sp.t ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(
        rows,
        vec![
            (1, Some("from master".into()), Some(vec![0, 0xFF])),
            (2, Some("updated".into()), None),
            (3, Some("from slave".into()), Some(vec![1])),
        ]
    );
    assert_eq!(
        fingerprint(&cluster.master, "sp").await,
        fingerprint(slave, "sp").await
    );
}
