//! What a client sees through a node equals what it sees straight from the backend: column
//! definitions field by field, values and NULLs, OK packets, errors, session behaviour.

mod common;

use common::{ADMIN, TestNode, expect_error, mariadb_cli};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Row};

/// A table with every common column type, one row of edge values and one of NULLs.
const TYPES_SQL: &str = r#"
CREATE DATABASE IF NOT EXISTS pt;
CREATE TABLE pt.types (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  c_tinyint TINYINT, c_smallint_u SMALLINT UNSIGNED, c_mediumint MEDIUMINT, c_int INT,
  c_bigint_u BIGINT UNSIGNED, c_decimal DECIMAL(20,6), c_float FLOAT, c_double DOUBLE,
  c_bit BIT(8), c_char CHAR(10), c_varchar VARCHAR(100) CHARACTER SET utf8mb4,
  c_varbinary VARBINARY(16), c_binary BINARY(4), c_text TEXT, c_blob BLOB,
  c_enum ENUM('a','b','c'), c_set SET('x','y','z'), c_date DATE, c_time TIME(3),
  c_datetime DATETIME(6), c_timestamp TIMESTAMP(6) NULL, c_year YEAR, c_json JSON,
  c_null_int INT
) DEFAULT CHARSET=utf8mb4;
INSERT INTO pt.types VALUES (NULL, -128, 65535, -8388608, -2147483648, 18446744073709551615,
  -12345678901234.123456, 1.5, 3.141592653589793, b'10100101', 'char', 'héllo 😀 wörld',
  0x00FF00FF, 0x00FF, 'some text', 0x000102FF, 'b', 'x,z', '2024-02-29', '-838:59:59.000',
  '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.654321', 2024, '{"a": [1, 2, null]}', NULL);
INSERT INTO pt.types (id) VALUES (NULL);
"#;

const TYPES_QUERY: &str =
    "SELECT *, c_bigint_u + 0 AS expr, NULL AS nothing FROM pt.types ORDER BY id";

/// Columns and rows of a text query, exactly as mysql_async decoded them.
async fn result(conn: &mut Conn, sql: &str) -> (Vec<Column>, Vec<Vec<Option<mysql_async::Value>>>) {
    let mut result = conn.query_iter(sql).await.expect("query");
    let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    let rows: Vec<Row> = result.collect().await.expect("rows");
    (columns, rows.into_iter().map(Row::unwrap_raw).collect())
}

fn describe(c: &Column) -> String {
    format!(
        "schema={} table={} org_table={} name={} org_name={} charset={} length={} type={:?} flags={:?} decimals={}",
        c.schema_str(),
        c.table_str(),
        c.org_table_str(),
        c.name_str(),
        c.org_name_str(),
        c.character_set(),
        c.column_length(),
        c.column_type(),
        c.flags(),
        c.decimals()
    )
}

async fn setup_types(node: &TestNode) {
    let mut direct = node.direct().await;
    for stmt in TYPES_SQL
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        direct.query_drop(stmt).await.expect("create types table");
    }
}

#[tokio::test]
async fn column_definitions_and_values_are_passed_through_field_by_field() {
    let node = TestNode::start("m", NodeRole::Master).await;
    setup_types(&node).await;
    let (direct_cols, direct_rows) = result(&mut node.direct().await, TYPES_QUERY).await;
    let (cols, rows) = result(&mut node.connect(ADMIN).await, TYPES_QUERY).await;
    assert!(direct_cols.len() >= 26, "{} columns", direct_cols.len());
    assert_eq!(cols.len(), direct_cols.len());
    for (through, direct) in cols.iter().zip(&direct_cols) {
        assert_eq!(describe(through), describe(direct));
        assert_eq!(
            through, direct,
            "every field, including the catalog and filler"
        );
    }
    assert_eq!(rows.len(), 2);
    assert_eq!(rows, direct_rows, "values and NULLs byte for byte");
    // A sanity check that the comparison saw real data.
    let varbinary = &rows[0][12];
    assert_eq!(
        varbinary,
        &Some(mysql_async::Value::Bytes(vec![0, 0xFF, 0, 0xFF]))
    );
}

#[tokio::test]
async fn mariadb_cli_column_type_info_is_byte_identical() {
    let node = TestNode::start("m", NodeRole::Master).await;
    setup_types(&node).await;
    let sql = format!("{TYPES_QUERY};\nSELECT 1 AS one, 'x' AS two;\n");
    // The CLI prints column metadata in table mode only.
    for args in [
        &["--column-type-info", "--table", "--binary-as-hex"][..],
        &["--table"][..],
    ] {
        let direct = mariadb_cli(node.server.addr(), ADMIN.0, ADMIN.1, args, &sql).await;
        let through = mariadb_cli(node.addr(), ADMIN.0, ADMIN.1, args, &sql).await;
        assert!(
            direct.status.success(),
            "{}",
            String::from_utf8_lossy(&direct.stderr)
        );
        assert!(
            through.status.success(),
            "{}",
            String::from_utf8_lossy(&through.stderr)
        );
        let text = String::from_utf8_lossy(&through.stdout);
        if args.contains(&"--column-type-info") {
            assert!(text.contains("Org_table:  `types`"), "{text}");
        }
        // MariaDB's extended metadata ("format=json" for JSON columns) included.
        assert!(
            !args.contains(&"--column-type-info")
                || text.contains("Type:       BLOB (format=json)"),
            "{text}"
        );
        assert_eq!(through.stdout, direct.stdout, "byte-identical output");
    }
}

#[tokio::test]
async fn mariadb_cli_runs_ddl_and_dml_through_the_master() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let sql = "CREATE DATABASE cli; USE cli; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));\n\
               INSERT INTO t VALUES (1, 'one'), (2, 'two');\n\
               UPDATE t SET v = CONCAT(v, '!');\n\
               DELETE FROM t WHERE id = 1;\n\
               SELECT id, v FROM t;\n\
               ALTER TABLE t ADD COLUMN n INT DEFAULT 7;\n\
               SELECT * FROM t;\n";
    let out = mariadb_cli(node.addr(), ADMIN.0, ADMIN.1, &["--batch"], sql).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "id\tv\n2\ttwo!\nid\tv\tn\n2\ttwo!\t7\n"
    );
    let mut direct = node.direct().await;
    let n: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM cli.t")
        .await
        .expect("count");
    assert_eq!(n, Some(1));
}

#[tokio::test]
async fn errors_pass_through_with_code_state_and_message() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut direct = node.direct().await;
    let mut conn = node.connect(ADMIN).await;
    direct
        .query_drop("CREATE DATABASE e; CREATE TABLE e.t (id INT PRIMARY KEY)")
        .await
        .expect("setup");
    direct
        .query_drop("INSERT INTO e.t VALUES (1)")
        .await
        .expect("row");
    for sql in [
        "INSERT INTO e.t VALUES (1)",
        "SELECT * FROM e.missing",
        "SELEKT 1",
        "SELECT 1 FROM",
    ] {
        let want = expect_error(&mut direct, sql).await;
        let got = expect_error(&mut conn, sql).await;
        assert_eq!(got, want, "{sql}");
    }
    assert_eq!(
        expect_error(&mut conn, "INSERT INTO e.t VALUES (1)")
            .await
            .0,
        1062
    );
    assert_eq!(
        expect_error(&mut conn, "SELECT * FROM e.missing").await.0,
        1146
    );
    assert_eq!(expect_error(&mut conn, "SELEKT 1").await.0, 1064);
    // The session is still usable.
    let one: Option<i32> = conn.query_first("SELECT 1").await.expect("still usable");
    assert_eq!(one, Some(1));
}

/// The OK packet's fields of the last statement: affected rows, insert id, info, warnings.
fn ok_fields(conn: &Conn) -> (u64, Option<u64>, String, u16) {
    (
        conn.affected_rows(),
        conn.last_insert_id(),
        conn.info().into_owned(),
        conn.get_warnings(),
    )
}

#[tokio::test]
async fn ok_packets_session_state_and_transactions_behave_as_on_the_backend() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut direct = node.direct().await;
    let mut conn = node.connect(ADMIN).await;
    direct
        .query_drop("CREATE DATABASE s; CREATE TABLE s.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, tiny TINYINT)")
        .await
        .expect("setup");
    let script = [
        "USE s",
        "INSERT INTO t (v) VALUES (1), (2), (3)",
        "UPDATE t SET v = v + 10 WHERE v >= 2",
        "INSERT IGNORE INTO t (v, tiny) VALUES (4, 1000)",
        "SET @x = 41",
        "DELETE FROM t WHERE v = 1",
    ];
    // Node and backend run the same script on twin tables; the OK packets must match.
    direct
        .query_drop("CREATE DATABASE s2; CREATE TABLE s2.t LIKE s.t")
        .await
        .expect("twin");
    for sql in script {
        conn.query_drop(sql).await.expect(sql);
        direct
            .query_drop(sql.replace("USE s", "USE s2"))
            .await
            .expect(sql);
        assert_eq!(ok_fields(&conn), ok_fields(&direct), "{sql}");
    }
    // SHOW WARNINGS shows the previous statement's warnings (the out-of-range TINYINT).
    conn.query_drop("INSERT IGNORE INTO t (v, tiny) VALUES (5, 1000)")
        .await
        .expect("warn");
    assert_eq!(conn.get_warnings(), 1);
    let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await.expect("warnings");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].1, 1264, "{warnings:?}");
    // LAST_INSERT_ID(), DATABASE() and user variables live in the session.
    let row: Option<(u64, String, i64)> = conn
        .query_first("SELECT LAST_INSERT_ID(), DATABASE(), @x + 1")
        .await
        .expect("session");
    assert_eq!(row, Some((5, "s".to_string(), 42)));
    // ROLLBACK undoes; COMMIT keeps.
    conn.query_drop("BEGIN").await.expect("begin");
    conn.query_drop("INSERT INTO t (v) VALUES (100)")
        .await
        .expect("insert");
    conn.query_drop("ROLLBACK").await.expect("rollback");
    conn.query_drop("START TRANSACTION").await.expect("begin");
    conn.query_drop("INSERT INTO t (v) VALUES (200)")
        .await
        .expect("insert");
    conn.query_drop("COMMIT").await.expect("commit");
    let vs: Vec<i32> = direct
        .query("SELECT v FROM s.t ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(vs, vec![12, 13, 4, 5, 200]);
}

#[tokio::test]
async fn info_text_and_multiple_result_sets() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut conn = node.connect(ADMIN).await;
    conn.query_drop("CREATE DATABASE mr; CREATE TABLE mr.t (id INT PRIMARY KEY, v INT); INSERT INTO mr.t VALUES (1, 1), (2, 2), (3, 3)")
        .await
        .expect("setup");
    conn.query_drop("UPDATE mr.t SET v = v * 10 WHERE id <= 2")
        .await
        .expect("update");
    assert_eq!(conn.info(), "Rows matched: 2  Changed: 2  Warnings: 0");
    assert_eq!(conn.affected_rows(), 2);
    // Several statements in one packet: every result set arrives, in order.
    let mut result = conn
        .query_iter("SELECT id FROM mr.t ORDER BY id; UPDATE mr.t SET v = 0 WHERE id = 3; SELECT 'x' AS a, NULL AS b")
        .await
        .expect("multi");
    let first: Vec<i32> = result.collect().await.expect("first set");
    assert_eq!(first, vec![1, 2, 3]);
    let second: Vec<Row> = result.collect().await.expect("update set");
    assert!(second.is_empty());
    assert_eq!(result.affected_rows(), 1);
    let third: Vec<(String, Option<i32>)> = result.collect().await.expect("third set");
    assert_eq!(third, vec![("x".to_string(), None)]);
    drop(result);
    // An error in a later statement reaches the client after the earlier result, as it does
    // straight from the backend, and the session goes on.
    let mut direct = node.direct().await;
    let mut traces = Vec::new();
    for c in [&mut direct, &mut conn] {
        let mut trace = Vec::new();
        match c.query_iter("SELECT 1; SELECT * FROM mr.nope").await {
            Ok(mut result) => {
                trace.push(format!("{:?}", result.collect::<i32>().await));
                trace.push(format!("{:?}", result.collect::<Row>().await));
            }
            Err(e) => trace.push(e.to_string()),
        }
        trace.push(format!("{:?}", c.query_first::<i32, _>("SELECT 2").await));
        traces.push(trace);
    }
    assert_eq!(traces[1], traces[0]);
    assert!(format!("{:?}", traces[1]).contains("1146"), "{traces:?}");
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM mr.t")
        .await
        .expect("usable");
    assert_eq!(n, Some(3));
}

#[tokio::test]
async fn call_returns_every_result_set_as_the_backend_does() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut direct = node.direct().await;
    direct.query_drop("CREATE DATABASE pr").await.expect("db");
    direct
        .query_drop(
            "CREATE PROCEDURE pr.two() BEGIN SELECT 1 AS a; SELECT 'x' AS b, NULL AS c; END",
        )
        .await
        .expect("procedure");
    let mut conn = node.connect(ADMIN).await;
    let mut traces = Vec::new();
    for c in [&mut direct, &mut conn] {
        let mut result = c.query_iter("CALL pr.two()").await.expect("call");
        let mut sets = Vec::new();
        while !result.is_empty() {
            let rows: Vec<Row> = result.collect().await.expect("set");
            sets.push(rows.into_iter().map(Row::unwrap_raw).collect::<Vec<_>>());
        }
        drop(result);
        traces.push(sets);
    }
    assert_eq!(traces[1], traces[0]);
    assert!(traces[0].len() >= 2, "{:?}", traces[0]);
}
