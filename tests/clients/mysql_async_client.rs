//! The matrix scenario (README.md) written against mysql_async, the Rust driver.

use std::fmt::Write;

use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Row, TxOpts, Value};

use super::Target;

/// The matrix's shared `types` table and literal-row INSERT (`types.sql`).
const TYPES_SQL: &str = include_str!("types.sql");

/// The statements of `TYPES_SQL`: the CREATE TABLE, then the literal INSERT.
fn types_sql() -> Vec<String> {
    let text: Vec<&str> = TYPES_SQL
        .lines()
        .filter(|line| !line.starts_with("--"))
        .collect();
    text.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

const COLUMNS: &str =
    "ti, si, i, bi, ubi, f, d, dc, c, vc, tx, bn, vb, bl, dt, tm, dtm, ts, yr, bt, en, js";

/// The contract's bound row, as mysql_async binds it.
fn bound_row() -> Vec<Value> {
    let text = |s: &str| Value::Bytes(s.as_bytes().to_vec());
    vec![
        Value::Int(127),
        Value::Int(32767),
        Value::Int(2147483647),
        Value::Int(i64::MAX),
        Value::UInt(0),
        Value::Float(-0.5),
        Value::Double(std::f64::consts::PI),
        text("0.0001"),
        text("x"),
        text("quote ' \" \\ end"),
        text(""),
        Value::Bytes(vec![0, 1, 2]),
        Value::Bytes(vec![0]),
        Value::Bytes((0..=255).collect()),
        Value::Date(1999, 12, 31, 0, 0, 0, 0),
        Value::Time(false, 0, 12, 34, 56, 789_000),
        Value::Date(2000, 1, 1, 0, 0, 0, 1),
        Value::Date(2038, 1, 19, 3, 14, 7, 999_000),
        Value::Int(1999),
        Value::Bytes(vec![1]),
        text("red"),
        text("[]"),
    ]
}

fn render(v: &Value) -> String {
    match v {
        Value::Bytes(b) => format!("Bytes(0x{})", hex(b)),
        other => format!("{other:?}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn describe(out: &mut String, columns: &[Column], rows: &[Row]) {
    for c in columns {
        writeln!(
            out,
            "column {} type={:?} flags={:?} length={} decimals={} charset={} schema={} table={} org_table={} org_name={}",
            c.name_str(),
            c.column_type(),
            c.flags(),
            c.column_length(),
            c.decimals(),
            c.character_set(),
            c.schema_str(),
            c.table_str(),
            c.org_table_str(),
            c.org_name_str()
        )
        .ok();
    }
    for row in rows {
        let values: Vec<String> = (0..row.len())
            .map(|i| row.as_ref(i).map(render).unwrap_or_default())
            .collect();
        writeln!(out, "row {}", values.join(" | ")).ok();
    }
}

fn outcome(out: &mut String, step: &str, conn: &Conn, r: mysql_async::Result<()>) {
    match r {
        Ok(()) => writeln!(
            out,
            "{step}: affected={} last_insert_id={:?} warnings={}",
            conn.affected_rows(),
            conn.last_insert_id(),
            conn.get_warnings()
        ),
        Err(mysql_async::Error::Server(e)) => {
            writeln!(out, "{step}: error {} {} {}", e.code, e.state, e.message)
        }
        Err(e) => panic!("{step}: {e}"),
    }
    .ok();
}

async fn connect(target: Target, db: Option<&str>) -> Conn {
    let opts = mysql_async::OptsBuilder::from_opts(super::common::opts(
        target.addr,
        target.user,
        target.pass,
    ))
    .db_name(db);
    Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", target.addr))
}

async fn count(out: &mut String, conn: &mut Conn) {
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM types")
        .await
        .expect("count");
    writeln!(out, "count {n:?}").ok();
}

/// Runs the matrix scenario and returns its transcript.
pub async fn matrix(target: Target, db: &str) -> String {
    let mut out = String::new();
    let mut conn = connect(target, None).await;
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("time zone");
    let [types_table, literal_insert] = <[String; 2]>::try_from(types_sql()).expect("types.sql");
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
        format!("USE {db}"),
        types_table,
    ] {
        let r = conn.query_drop(&sql).await;
        outcome(&mut out, "ddl", &conn, r);
    }
    let r = conn.query_drop(literal_insert).await;
    outcome(&mut out, "insert literal", &conn, r);
    let r = conn.query_drop("INSERT INTO types () VALUES ()").await;
    outcome(&mut out, "insert nulls", &conn, r);
    let marks = vec!["?"; 22].join(", ");
    let r = conn
        .exec_drop(
            format!("INSERT INTO types ({COLUMNS}) VALUES ({marks})"),
            bound_row(),
        )
        .await;
    outcome(&mut out, "insert bound", &conn, r);

    let mut result = conn
        .query_iter("SELECT * FROM types ORDER BY id")
        .await
        .expect("text select");
    let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    let rows: Vec<Row> = result.collect().await.expect("rows");
    writeln!(out, "text select").ok();
    describe(&mut out, &columns, &rows);

    let mut result = conn
        .exec_iter("SELECT * FROM types WHERE id >= ? ORDER BY id", (0,))
        .await
        .expect("binary select");
    let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    let rows: Vec<Row> = result.collect().await.expect("rows");
    writeln!(out, "binary select").ok();
    describe(&mut out, &columns, &rows);

    let mut tx = conn
        .start_transaction(TxOpts::default())
        .await
        .expect("begin");
    tx.query_drop("INSERT INTO types (ti) VALUES (1)")
        .await
        .expect("insert in tx");
    tx.rollback().await.expect("rollback");
    count(&mut out, &mut conn).await;
    let mut tx = conn
        .start_transaction(TxOpts::default())
        .await
        .expect("begin");
    tx.exec_drop("INSERT INTO types (ti) VALUES (?)", (2,))
        .await
        .expect("insert in tx");
    tx.commit().await.expect("commit");
    count(&mut out, &mut conn).await;

    let r = conn.query_drop("INSERT INTO types (id) VALUES (1)").await;
    outcome(&mut out, "duplicate", &conn, r);
    let r = conn.query_drop("SELECT * FROM no_such_table").await;
    outcome(&mut out, "missing table", &conn, r);
    let one: Option<i64> = conn.query_first("SELECT 1").await.expect("select 1");
    writeln!(out, "after errors {one:?}").ok();
    conn.disconnect().await.ok();
    out
}

/// DDL on a slave: the refusal, then a read on the same connection.
pub async fn refusal(target: Target) -> String {
    let mut out = String::new();
    let mut conn = connect(target, Some("school")).await;
    let r = conn.query_drop("CREATE TABLE refused (a INT)").await;
    outcome(&mut out, "create on slave", &conn, r);
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM student")
        .await
        .expect("count");
    writeln!(out, "students {}", n.unwrap_or(-1)).ok();
    conn.disconnect().await.ok();
    out
}
