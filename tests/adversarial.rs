//! Adversarial statements: attempts to get DDL or administrative statements past a slave (as an
//! admin, whom a slave refuses them too) and past a non-admin user on the master, over the wire
//! with real clients. Every attempt is either refused with the expected error, the backend
//! unchanged afterwards (checked over a direct connection), or proven harmless: it ran and
//! changed nothing DDL or administration would.

mod common;

use common::{ADMIN, APP, Cluster, TestNode, connect, read_packet, write_packet};
use myrelay::config::NodeRole;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use mysql_common::constants::CapabilityFlags;
use tokio::net::TcpStream;

/// How one attempt is sent.
enum Send {
    /// One COM_QUERY packet (the client enables multi-statements, as mysql_async does).
    Query(Vec<u8>),
    /// Packets sent one after the other; all but the last must succeed.
    Steps(Vec<String>),
    /// A binary-protocol COM_STMT_PREPARE.
    Prepare(String),
}

/// What must come of it.
#[derive(Clone, Copy)]
enum Expect {
    /// Refused with (code on a slave, code for `app` on the master); the backend unchanged.
    Refused(u16, u16),
    /// May run (or fail on the backend): the backend unchanged either way.
    Harmless,
    /// A read of what only admins may see (the server's accounts, other clients' statements):
    /// refused to `app` with this code, an admin may run it; the backend unchanged either way.
    AdminOnly(u16),
}

/// DDL or an administrative statement: 1290 on a slave, 1227 for a non-admin on the master.
const DDL: Expect = Expect::Refused(1290, 1227);
/// A write to the node's replication bookkeeping: 1044 everywhere.
const BOOKKEEPING: Expect = Expect::Refused(1044, 1044);

struct Case {
    name: &'static str,
    send: Send,
    expect: Expect,
}

fn query(name: &'static str, sql: impl Into<String>, expect: Expect) -> Case {
    Case {
        name,
        send: Send::Query(sql.into().into_bytes()),
        expect,
    }
}

fn steps(name: &'static str, sqls: &[&str], expect: Expect) -> Case {
    Case {
        name,
        send: Send::Steps(sqls.iter().map(|s| s.to_string()).collect()),
        expect,
    }
}

/// The file an `INTO OUTFILE` attempt would create (inside the backend's own directory, where
/// `secure_file_priv` would let it write).
fn outfile(node: &TestNode) -> String {
    format!("{}/adversarial.out", node.server.data_dir().display())
}

fn cases(node: &TestNode) -> Vec<Case> {
    let mib = 1 << 20;
    let out = outfile(node);
    vec![
        // --- comments
        query(
            "block comment before DROP",
            "/* hi */ DROP TABLE adv.t",
            DDL,
        ),
        query("comment inside DROP TABLE", "DROP/**/TABLE/**/adv.t", DDL),
        query("line comment then DROP", "-- hi\nDROP TABLE adv.t", DDL),
        query("hash comment then DROP", "# hi\nDROP TABLE adv.t", DDL),
        query(
            "DROP after a comment that looks closed",
            "SELECT '*/' /* x */; DROP TABLE adv.t",
            DDL,
        ),
        query(
            "double dash without a space is minus",
            "SELECT 5--1\n; DROP TABLE adv.t",
            DDL,
        ),
        // --- executable comments
        query("executable comment", "/*! DROP TABLE adv.t */", DDL),
        query(
            "versioned executable comment",
            "/*!50000 DROP TABLE adv.t */",
            DDL,
        ),
        query(
            "MariaDB executable comment",
            "/*M!100100 DROP TABLE adv.t */",
            DDL,
        ),
        query("six-digit version", "/*!100100 TRUNCATE adv.t */", DDL),
        query(
            "future version, still refused",
            "/*!99999 DROP TABLE adv.t */",
            DDL,
        ),
        query(
            "statement split inside an executable comment",
            "SELECT 1 /*! ; DROP TABLE adv.t */",
            DDL,
        ),
        query(
            "verb from an executable comment",
            "/*!DROP*/ TABLE adv.t",
            DDL,
        ),
        query(
            "GLOBAL from an executable comment",
            "SET /*!GLOBAL*/ max_connections = 3",
            DDL,
        ),
        // --- multi-statements
        query("read then DROP", "SELECT 1; DROP TABLE adv.t", DDL),
        query(
            "write then TRUNCATE",
            "INSERT INTO adv.t VALUES (50, 'x'); TRUNCATE adv.t",
            DDL,
        ),
        query(
            "session change then GRANT",
            "SET @a = 1; GRANT ALL ON *.* TO 'app'@'%'",
            DDL,
        ),
        // --- prepared statements
        Case {
            name: "binary prepare of DROP",
            send: Send::Prepare("DROP TABLE adv.t".into()),
            expect: DDL,
        },
        Case {
            name: "binary prepare of CREATE TABLE … SELECT",
            send: Send::Prepare("CREATE TABLE adv.x SELECT * FROM adv.t".into()),
            expect: DDL,
        },
        query(
            "PREPARE from a literal",
            "PREPARE s FROM 'DROP TABLE adv.t'",
            DDL,
        ),
        query(
            "PREPARE from joined literals",
            "PREPARE s FROM 'DROP ' 'TABLE adv.t'",
            DDL,
        ),
        steps(
            "PREPARE from a variable",
            &["SET @q = 'DROP TABLE adv.t'", "PREPARE s FROM @q"],
            DDL,
        ),
        query(
            "EXECUTE IMMEDIATE a literal",
            "EXECUTE IMMEDIATE 'DROP TABLE adv.t'",
            DDL,
        ),
        query(
            "EXECUTE IMMEDIATE an expression",
            "EXECUTE IMMEDIATE CONCAT('DROP TABLE ', 'adv.t')",
            DDL,
        ),
        steps(
            "EXECUTE IMMEDIATE a variable",
            &["SET @q = 'DROP TABLE adv.t'", "EXECUTE IMMEDIATE @q"],
            DDL,
        ),
        steps(
            "re-PREPARE a harmless name as DROP",
            &[
                "PREPARE s FROM 'SELECT 1'",
                "PREPARE s FROM 'DROP TABLE adv.t'",
            ],
            DDL,
        ),
        // --- stored programs
        query(
            "CALL a procedure that drops a table",
            "CALL adv.drop_t()",
            DDL,
        ),
        steps("CALL it unqualified", &["USE adv", "CALL drop_t"], DDL),
        query("CALL a procedure that calls it", "CALL adv.nested()", DDL),
        query(
            "CALL a procedure whose handler drops",
            "CALL adv.handler_drop()",
            DDL,
        ),
        query(
            "CALL a procedure running dynamic SQL",
            "CALL adv.dynamic('DROP TABLE adv.t')",
            DDL,
        ),
        query(
            "CALL a procedure that sets a global",
            "CALL adv.set_global()",
            DDL,
        ),
        query(
            "compound statement",
            "BEGIN NOT ATOMIC DROP TABLE adv.t; END",
            DDL,
        ),
        query(
            "compound statement hiding DDL in IF",
            "BEGIN NOT ATOMIC IF 1 THEN DROP TABLE adv.t; END IF; END",
            DDL,
        ),
        query(
            "CREATE PROCEDURE",
            "CREATE PROCEDURE adv.p() DROP TABLE adv.t",
            DDL,
        ),
        query(
            "CREATE EVENT",
            "CREATE EVENT adv.e ON SCHEDULE EVERY 1 SECOND DO DROP TABLE adv.t",
            DDL,
        ),
        // --- CREATE … SELECT, temporary tables, HANDLER
        query(
            "CREATE TABLE … SELECT",
            "CREATE TABLE adv.x SELECT * FROM adv.t",
            DDL,
        ),
        query("CREATE TABLE … LIKE", "CREATE TABLE adv.x LIKE adv.t", DDL),
        steps(
            "a temporary table is the session's own",
            &[
                "CREATE TEMPORARY TABLE adv.tmp SELECT * FROM adv.t",
                "SELECT COUNT(*) FROM adv.tmp",
                "DROP TEMPORARY TABLE adv.tmp",
            ],
            Expect::Harmless,
        ),
        steps(
            "a temporary table shadowing a real one, then dropped",
            &[
                "CREATE TEMPORARY TABLE adv.t (z INT)",
                "DROP TEMPORARY TABLE adv.t",
            ],
            Expect::Harmless,
        ),
        steps(
            "writes to a temporary table stay in the session",
            &[
                "CREATE TEMPORARY TABLE adv.tmp (a INT)",
                "INSERT INTO adv.tmp VALUES (1)",
                "INSERT INTO adv.tmp SELECT id FROM adv.t",
                "UPDATE adv.tmp SET a = 2",
                "DELETE FROM adv.tmp",
                "DROP TEMPORARY TABLE adv.tmp",
            ],
            Expect::Harmless,
        ),
        steps(
            "a write to a temporary table shadowing a real one",
            &[
                "CREATE TEMPORARY TABLE adv.t (id INT, v VARCHAR(20))",
                "INSERT INTO adv.t VALUES (9, 'shadow')",
                "DROP TEMPORARY TABLE adv.t",
            ],
            Expect::Harmless,
        ),
        steps(
            "ALTER of a temporary table",
            &[
                "CREATE TEMPORARY TABLE adv.tmp (a INT)",
                "ALTER TABLE adv.tmp ADD b INT",
            ],
            DDL,
        ),
        steps(
            "HANDLER only reads",
            &[
                "HANDLER adv.t OPEN AS h",
                "HANDLER h READ FIRST",
                "HANDLER h CLOSE",
            ],
            Expect::Harmless,
        ),
        // --- SET STATEMENT, SET GLOBAL
        query(
            "SET STATEMENT … FOR DROP",
            "SET STATEMENT max_statement_time = 10 FOR DROP TABLE adv.t",
            DDL,
        ),
        query("SET GLOBAL", "SET GLOBAL max_connections = 3", DDL),
        query("SET @@global.", "SET @@global.max_connections = 3", DDL),
        query(
            "SET @@global with spaces",
            "SET @@global . max_connections = 3",
            DDL,
        ),
        query(
            "SET GLOBAL later in the list",
            "SET @a = 1, GLOBAL max_connections = 3",
            DDL,
        ),
        query("SET sql_log_bin", "SET sql_log_bin = 0", DDL),
        // --- accounts, KILL, server files
        query("GRANT", "GRANT ALL ON *.* TO 'app'@'%'", DDL),
        query(
            "CREATE USER",
            "CREATE USER 'evil'@'%' IDENTIFIED BY 'x'",
            DDL,
        ),
        query(
            "SET PASSWORD",
            "SET PASSWORD FOR 'root'@'%' = PASSWORD('x')",
            DDL,
        ),
        query("KILL", "KILL CONNECTION 1", DDL),
        query("KILL QUERY", "KILL QUERY 1", DDL),
        query("SHUTDOWN", "SHUTDOWN", DDL),
        query("FLUSH", "FLUSH PRIVILEGES", DDL),
        query("INSTALL SONAME", "INSTALL SONAME 'ha_blackhole'", DDL),
        query(
            "a UDF from a library",
            "CREATE FUNCTION f RETURNS STRING SONAME 'evil.so'",
            DDL,
        ),
        query(
            "LOAD DATA INFILE",
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE adv.t",
            DDL,
        ),
        query(
            "SELECT … INTO OUTFILE",
            format!("SELECT * FROM adv.t INTO OUTFILE '{out}'"),
            DDL,
        ),
        query(
            "SELECT … INTO DUMPFILE",
            format!("SELECT 'x' INTO DUMPFILE '{out}'"),
            DDL,
        ),
        query(
            "INTO OUTFILE before FROM",
            format!("SELECT 1 INTO OUTFILE '{out}' FROM dual"),
            DDL,
        ),
        query("LOAD_FILE()", "SELECT LOAD_FILE('/etc/passwd')", DDL),
        query(
            "LOAD_FILE with a comment before (",
            "SELECT load_file/**/('/etc/passwd')",
            DDL,
        ),
        // --- character sets and odd bytes
        query("SET NAMES gbk", "SET NAMES gbk", DDL),
        query("SET CHARACTER SET sjis", "SET CHARACTER SET sjis", DDL),
        query(
            "character_set_client from a variable",
            "SET character_set_client = @cs",
            DDL,
        ),
        query(
            "SET STATEMENT with a charset",
            "SET STATEMENT character_set_client = big5 FOR SELECT 1",
            DDL,
        ),
        Case {
            name: "NUL byte before the statement split",
            send: Send::Query(b"SELECT 1\0; DROP TABLE adv.t".to_vec()),
            expect: DDL,
        },
        Case {
            name: "NUL byte inside DROP TABLE",
            send: Send::Query(b"DROP\0TABLE adv.t".to_vec()),
            expect: DDL,
        },
        Case {
            name: "invalid UTF-8 before the split",
            send: Send::Query(b"SELECT '\xbf\xbf'; DROP TABLE adv.t".to_vec()),
            expect: DDL,
        },
        query("full-width lookalike DROP", "ＤＲＯＰ TABLE adv.t", DDL),
        query(
            "Cyrillic lookalike in SELECT",
            "SЕLECT 1; DROP TABLE adv.t",
            DDL,
        ),
        // --- quotes and backslashes
        query(
            "backslash-escaped quote",
            r"SELECT 'a\'; DROP TABLE adv.t; -- '",
            DDL,
        ),
        query(
            "the same under NO_BACKSLASH_ESCAPES",
            r"SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'a\'; DROP TABLE adv.t; -- '",
            DDL,
        ),
        query("doubled quotes", "SELECT 'it''s'; DROP TABLE adv.t", DDL),
        query(
            "DROP in a double-quoted string is data",
            "SELECT \"DROP TABLE adv.t\"",
            Expect::Harmless,
        ),
        query(
            "DROP inside an unterminated identifier is not code",
            "SELECT 1 AS `x``; DROP TABLE adv.t",
            Expect::Harmless,
        ),
        // --- very long inputs
        query(
            "DROP after 1 MiB of comment",
            format!("/*{}*/ DROP TABLE adv.t", "x".repeat(mib)),
            DDL,
        ),
        query(
            "DROP after 1 MiB of whitespace",
            format!("{}DROP TABLE adv.t", " \n\t".repeat(mib / 3)),
            DDL,
        ),
        query(
            "DROP after a 1 MiB string",
            format!("SELECT '{}'; DROP TABLE adv.t", "a".repeat(mib)),
            DDL,
        ),
        query(
            "deeply nested parentheses",
            format!(
                "SELECT {}1{}; DROP TABLE adv.t",
                "(".repeat(5000),
                ")".repeat(5000)
            ),
            DDL,
        ),
        // --- reading what only admins may see, however it is reached
        query(
            "the accounts in a subquery",
            "SELECT 1 FROM dual WHERE EXISTS (SELECT 1 FROM mysql.user)",
            Expect::AdminOnly(1142),
        ),
        query(
            "the accounts in a derived table",
            "SELECT * FROM (SELECT User, Password FROM mysql.user) AS x",
            Expect::AdminOnly(1142),
        ),
        query(
            "the accounts in a UNION",
            "SELECT 1 UNION SELECT Password FROM mysql.user",
            Expect::AdminOnly(1142),
        ),
        query(
            "the accounts in backticks and comments",
            "SELECT * FROM `mysql` /**/ . /**/ `user`",
            Expect::AdminOnly(1142),
        ),
        query(
            "the accounts after a USE in the packet",
            "USE mysql; SELECT * FROM user",
            Expect::AdminOnly(1044),
        ),
        Case {
            name: "the accounts through a prepared statement",
            send: Send::Prepare("SELECT Password FROM mysql.user WHERE User = ?".into()),
            expect: Expect::AdminOnly(1142),
        },
        query(
            "the accounts through PREPARE … FROM a string",
            "PREPARE s FROM 'SELECT Password FROM mysql.user'",
            Expect::AdminOnly(1142),
        ),
        query(
            "the accounts through a HANDLER",
            "HANDLER mysql.global_priv OPEN",
            Expect::AdminOnly(1142),
        ),
        query(
            "the accounts' columns by DESCRIBE",
            "DESCRIBE mysql.user",
            Expect::AdminOnly(1142),
        ),
        query(
            "the accounts in an EXPLAIN",
            "EXPLAIN SELECT * FROM mysql.user",
            Expect::AdminOnly(1142),
        ),
        query(
            "the accounts' tables by SHOW",
            "SHOW TABLES FROM mysql",
            Expect::AdminOnly(1044),
        ),
        query(
            "an account's definition by SHOW",
            "SHOW CREATE TABLE mysql.user",
            Expect::AdminOnly(1142),
        ),
        query(
            "every account's privileges in information_schema",
            "SELECT * FROM information_schema.USER_PRIVILEGES",
            Expect::AdminOnly(1142),
        ),
        // A CALL into a system schema is administration, whatever the body does.
        query(
            "a system schema's procedure that only reads",
            "CALL sys.adv_accounts()",
            Expect::AdminOnly(1227),
        ),
        query(
            "a sys procedure that prepares SQL",
            "CALL sys.table_exists('mysql', 'user', @exists)",
            Expect::AdminOnly(1227),
        ),
        query(
            "other clients' statements in a subquery",
            "SELECT COUNT(*) FROM (SELECT * FROM information_schema.PROCESSLIST) AS p",
            Expect::AdminOnly(1227),
        ),
        query(
            "SHOW PROCESSLIST after another statement",
            "SELECT 1; SHOW FULL PROCESSLIST",
            Expect::AdminOnly(1227),
        ),
        query(
            "SHOW DATABASES after another statement",
            "SELECT 'mysql'; SHOW DATABASES",
            Expect::AdminOnly(1227),
        ),
        // --- the node's bookkeeping
        steps(
            "USE myrelay, then write",
            &["USE myrelay", "DELETE FROM probe"],
            BOOKKEEPING,
        ),
        query(
            "USE myrelay and write in one packet",
            "USE myrelay; DELETE FROM probe",
            BOOKKEEPING,
        ),
        query(
            "a harmless write, then the bookkeeping",
            "INSERT INTO adv.t VALUES (60, 'x'); DELETE FROM myrelay.probe",
            BOOKKEEPING,
        ),
        query(
            "bookkeeping in backticks",
            "DELETE FROM `myrelay`.`probe`",
            BOOKKEEPING,
        ),
        query(
            "bookkeeping in a multi-table UPDATE",
            "UPDATE adv.t, MyRelay.probe SET probe.id = 2",
            BOOKKEEPING,
        ),
    ]
}

/// Everything a DDL or administrative statement could change, read over a direct connection.
async fn snapshot(node: &TestNode) -> Vec<String> {
    let mut conn = node.direct().await;
    let mut lines: Vec<String> = conn.query("SHOW DATABASES").await.expect("databases");
    let tables: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA IN ('adv', 'myrelay') ORDER BY 1, 2",
        )
        .await
        .expect("tables");
    for (db, t) in tables {
        let (_, sum): (String, Option<i64>) = conn
            .query_first(format!("CHECKSUM TABLE `{db}`.`{t}` EXTENDED"))
            .await
            .expect("checksum")
            .expect("row");
        let columns: Vec<String> = conn
            .query(format!("SHOW COLUMNS FROM `{db}`.`{t}`"))
            .await
            .map(|rows: Vec<mysql_async::Row>| {
                rows.into_iter()
                    .map(|r| r.get::<String, _>(0).unwrap_or_default())
                    .collect()
            })
            .expect("columns");
        lines.push(format!("{db}.{t} {sum:?} {columns:?}"));
    }
    for q in [
        "SELECT CONCAT(user, '@', host) FROM mysql.user ORDER BY 1",
        "SELECT CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME) FROM information_schema.ROUTINES ORDER BY 1",
        "SELECT CONCAT(EVENT_SCHEMA, '.', EVENT_NAME) FROM information_schema.EVENTS",
        "SELECT PLUGIN_NAME FROM information_schema.PLUGINS WHERE PLUGIN_STATUS = 'ACTIVE' ORDER BY 1",
        "SELECT name FROM mysql.func",
        "SELECT CONCAT_WS(' ', @@global.max_connections, @@global.sql_mode, \
         @@global.character_set_server, @@global.general_log)",
    ] {
        let rows: Vec<String> = conn.query(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
        lines.push(format!("{q} => {rows:?}"));
    }
    lines
}

/// Creates the schema the attempts aim at, and procedures whose bodies run DDL, directly on the
/// node's backend (as an operator would).
async fn prepare_backend(node: &TestNode) {
    let mut conn = node.direct().await;
    for sql in [
        "CREATE DATABASE adv",
        "CREATE TABLE adv.t (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO adv.t VALUES (1, 'one'), (2, 'two')",
        // Stands in for the bookkeeping tables a replicating node keeps there.
        "CREATE DATABASE IF NOT EXISTS myrelay",
        "CREATE TABLE myrelay.probe (id INT)",
        "INSERT INTO myrelay.probe VALUES (1)",
        "CREATE PROCEDURE adv.drop_t() BEGIN DROP TABLE adv.t; END",
        "CREATE PROCEDURE adv.nested() BEGIN SELECT 1; CALL adv.drop_t(); END",
        "CREATE PROCEDURE adv.handler_drop() BEGIN \
         DECLARE CONTINUE HANDLER FOR SQLEXCEPTION DROP TABLE adv.t; SIGNAL SQLSTATE '45000'; END",
        "CREATE PROCEDURE adv.dynamic(q TEXT) BEGIN \
         SET @q = q; PREPARE s FROM @q; EXECUTE s; DEALLOCATE PREPARE s; END",
        "CREATE PROCEDURE adv.set_global() SET GLOBAL max_connections = 3",
        "CREATE PROCEDURE adv.harmless() SELECT COUNT(*) FROM adv.t",
        // A read-only procedure of a system schema, run with its definer's rights.
        "CREATE PROCEDURE sys.adv_accounts() SELECT User, Password FROM mysql.user",
    ] {
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Sends one attempt; the error it ended with, if any (steps end at the first refused one: a
/// user without rights on the bookkeeping schema cannot even `USE` it).
async fn attempt(conn: &mut Conn, send: &Send, name: &str) -> Option<(u16, String, String)> {
    let result = match send {
        Send::Query(bytes) => conn.query_drop(bytes.as_slice()).await,
        Send::Prepare(sql) => conn.prep(sql.as_str()).await.map(drop),
        Send::Steps(sqls) => {
            let mut result = Ok(());
            for sql in sqls {
                result = conn.query_drop(sql.as_str()).await;
                if result.is_err() {
                    break;
                }
            }
            result
        }
    };
    match result {
        Ok(()) => None,
        Err(mysql_async::Error::Server(e)) => Some((e.code, e.state, e.message)),
        Err(other) => panic!("{name}: not a server error: {other}"),
    }
}

async fn run_cases(node: &TestNode, user: (&str, &str), on_slave: bool) {
    let before = snapshot(node).await;
    let cases = cases(node);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for case in &cases {
        // A fresh connection each: no case leaves state (a charset, a USE) for the next.
        let mut conn = node.connect(user).await;
        let got = attempt(&mut conn, &case.send, case.name).await;
        match (case.expect, got) {
            (Expect::Refused(slave, app), Some((code, state, message))) => {
                let want = if on_slave { slave } else { app };
                assert_eq!(code, want, "{}: {message}", case.name);
                let want_state = if code == 1290 { "HY000" } else { "42000" };
                assert_eq!(state, want_state, "{}", case.name);
                assert!(
                    message.contains("myrelay") || message.contains("denied"),
                    "{}: the refusal says who refused and why: {message}",
                    case.name
                );
            }
            (Expect::Refused(..), None) => panic!("{}: was not refused", case.name),
            (Expect::AdminOnly(code), got) if user.0 != ADMIN.0 => {
                let (got, _, message) =
                    got.unwrap_or_else(|| panic!("{}: was not refused", case.name));
                assert_eq!(got, code, "{}: {message}", case.name);
                assert!(
                    message.contains(user.0),
                    "{}: names the user: {message}",
                    case.name
                );
            }
            (Expect::AdminOnly(_) | Expect::Harmless, _) => {}
        }
        // The session stays usable after the refusal.
        let seven: Option<i32> = conn
            .query_first("SELECT 7")
            .await
            .unwrap_or_else(|e| panic!("{}: session unusable: {e}", case.name));
        assert_eq!(seven, Some(7), "{}", case.name);
        drop(conn);
        assert_eq!(
            snapshot(node).await,
            before,
            "{}: the backend changed",
            case.name
        );
    }
    assert!(
        !std::path::Path::new(&outfile(node)).exists(),
        "no INTO OUTFILE file was written"
    );
}

/// On a replicating cluster, so that the master's write path and the slave's forwarding are
/// the ones attacked: the slave refuses every attempt even to an admin, the master to `app`.
#[tokio::test]
async fn every_attempt_is_refused_or_harmless() {
    let cluster = Cluster::start(1).await;
    // The schema reaches the slave as any other does, by the master's binlog: a slave sends
    // writes (to temporary tables too) to the master, which must hold the tables they read.
    prepare_backend(&cluster.master).await;
    cluster.converge(std::time::Duration::from_secs(10)).await;
    run_cases(&cluster.slaves[0], ADMIN, true).await;
    run_cases(&cluster.master, APP, false).await;
    // Nothing the attempts did stopped the slave's applier (a logged write to a table only the
    // master's session had would have).
    cluster.converge(std::time::Duration::from_secs(10)).await;
    let replica = cluster.slaves[0]
        .node
        .shared
        .replica
        .clone()
        .expect("replica");
    assert_eq!(replica.status().stopped, None);
    // A procedure that only reads is still a plain CALL for `app`.
    let mut conn = cluster.master.connect(APP).await;
    let count: Option<i64> = conn
        .query_first("CALL adv.harmless()")
        .await
        .expect("a harmless CALL runs");
    assert_eq!(count, Some(2));
}

/// Connects over raw TCP as `app` asking for `collation` (28: gbk_chinese_ci) in the handshake
/// response, as a GBK client does, with multi-statements on; the login's OK is read.
async fn raw_login(node: &TestNode, collation: u8) -> TcpStream {
    let multi = CapabilityFlags::CLIENT_MULTI_STATEMENTS | CapabilityFlags::CLIENT_MULTI_RESULTS;
    common::raw_login(node.addr(), APP, multi, collation).await
}

/// The multi-byte trick: in GBK, `€` (E2 82 AC) followed by `\` reads as two characters, the
/// second one swallowing the backslash, so `'€\'` is a closed string to a GBK server while a
/// byte-wise lexer sees an escaped quote. With the literal before it fooling the node's other
/// reading (without backslash escapes), the DROP below is invisible to the node in both. So the
/// node keeps such charsets off the session: `SET NAMES gbk` is refused (above, and here on a
/// slave even to an admin), and a client that asks for GBK in its handshake gets the default
/// charset instead, so the server reads the packet as the node does: one harmless SELECT.
#[tokio::test]
async fn a_gbk_client_cannot_make_the_server_read_a_statement_differently() {
    const PAYLOAD: &str = "SELECT 'x\\'y' AS a, '€\\'; DROP TABLE adv.t; -- ' AS b";
    let node = TestNode::start("m", NodeRole::Master).await;
    prepare_backend(&node).await;
    let before = snapshot(&node).await;
    let mut gbk = raw_login(&node, 28).await;
    let mut query = vec![0x03];
    query.extend_from_slice(PAYLOAD.as_bytes());
    write_packet(&mut gbk, 0, &query).await;
    let (_, first) = read_packet(&mut gbk).await.expect("an answer");
    assert_ne!(
        first.first(),
        Some(&0xff),
        "ran: {}",
        String::from_utf8_lossy(&first)
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(snapshot(&node).await, before, "the backend changed");
    let n: Option<i64> = node
        .direct()
        .await
        .query_first("SELECT COUNT(*) FROM adv.t")
        .await
        .expect("adv.t is still there");
    assert_eq!(n, Some(2));

    let slave = TestNode::start("s1", NodeRole::Slave).await;
    prepare_backend(&slave).await;
    let before = snapshot(&slave).await;
    let mut conn = connect(slave.addr(), ADMIN.0, ADMIN.1).await;
    let (code, _, _) = common::expect_error(&mut conn, "SET NAMES gbk").await;
    assert_eq!(code, 1290);
    conn.query_drop(PAYLOAD).await.expect("one harmless SELECT");
    assert_eq!(snapshot(&slave).await, before);
}
