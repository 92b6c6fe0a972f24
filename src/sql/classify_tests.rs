use super::StatementClass::{Admin, Ddl, Read, Session, Transaction, Write};
use super::*;

/// (sql, expected class of the whole packet)
pub(crate) const CASES: &[(&str, StatementClass)] = &[
    // --- Read
    ("SELECT 1", Read),
    ("select * from t where a = 1", Read),
    ("  \n\t SELECT 1", Read),
    ("(SELECT 1)", Read),
    ("((SELECT a FROM t) UNION (SELECT b FROM u))", Read),
    ("SELECT * FROM t FOR UPDATE", Read),
    ("SELECT * FROM t LOCK IN SHARE MODE", Read),
    ("SELECT a INTO @v FROM t", Read),
    ("SELECT 'DROP TABLE t'", Read),
    ("SELECT \"DELETE FROM t\"", Read),
    ("SELECT `drop` FROM t", Read),
    ("SELECT `insert`, `grant` FROM `update`", Read),
    ("SELECT REPLACE(name, 'a', 'b') FROM t", Read),
    ("SELECT INSERT('abc', 1, 1, 'x'), TRUNCATE(1.5, 0)", Read),
    ("SELECT PREVIOUS VALUE FOR s", Read),
    ("SHOW TABLES", Read),
    ("SHOW CREATE TABLE t", Read),
    ("SHOW BINLOG EVENTS", Read),
    ("SHOW GRANTS FOR CURRENT_USER", Read),
    ("SHOW FULL PROCESSLIST", Read),
    ("DESCRIBE t", Read),
    ("DESC t", Read),
    ("EXPLAIN SELECT * FROM t", Read),
    ("EXPLAIN FORMAT=JSON SELECT 1", Read),
    ("HELP 'select'", Read),
    ("DO SLEEP(1)", Read),
    ("CHECK TABLE t", Read),
    ("CHECKSUM TABLE t", Read),
    ("HANDLER t OPEN", Read),
    ("HANDLER t READ FIRST", Read),
    ("HANDLER t CLOSE", Read),
    ("VALUES ROW(1, 2)", Read),
    ("TABLE t", Read),
    ("WITH x AS (SELECT 1) SELECT * FROM x", Read),
    (
        "WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
        Read,
    ),
    ("ANALYZE SELECT * FROM t", Read),
    ("SeLeCt 1", Read),
    ("SELECT 1 /*!, (SELECT 2) */", Read),
    ("SELECT '/*' , 1", Read),
    ("SELECT 1 -- DROP TABLE t", Read),
    ("SELECT 1 # DROP TABLE t", Read),
    ("SELECT 1 /* DROP TABLE t */", Read),
    ("SELECT 'it''s', 'a\\'b', \"q\"\"q\"", Read),
    ("SELECT 5--1", Read),
    ("SELECT 1;", Read),
    ("", Read),
    // --- Session
    ("USE db", Session),
    ("use `my db`", Session),
    ("SET NAMES utf8mb4", Session),
    ("SET NAMES utf8mb4 COLLATE utf8mb4_bin", Session),
    ("SET NAMES 'latin1'", Session),
    ("SET character_set_client = utf8mb4", Session),
    ("SET @@session.character_set_client := DEFAULT", Session),
    ("SET CHARACTER SET utf8", Session),
    ("SET @a = 1", Session),
    ("SET @a := (SELECT COUNT(*) FROM t)", Session),
    ("SET SESSION sql_mode = 'ANSI'", Session),
    ("SET LOCAL wait_timeout = 10", Session),
    ("SET @@session.wait_timeout = 10", Session),
    ("SET @@wait_timeout = 10", Session),
    ("SET wait_timeout = 10", Session),
    ("SET sql_mode = 'GLOBAL'", Session),
    ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", Session),
    ("SET SESSION TRANSACTION READ ONLY", Session),
    ("CREATE TEMPORARY TABLE tmp (a INT)", Session),
    ("CREATE TEMPORARY TABLE tmp SELECT * FROM t", Session),
    ("DROP TEMPORARY TABLE tmp", Session),
    ("DROP TEMPORARY TABLE IF EXISTS tmp", Session),
    ("LOCK TABLES t READ, u WRITE", Session),
    ("UNLOCK TABLES", Session),
    ("DEALLOCATE PREPARE s", Session),
    ("DROP PREPARE s", Session),
    ("SET STATEMENT max_statement_time=1 FOR SELECT 1", Session),
    ("PREPARE s FROM 'SET @a = 1'", Session),
    // --- Transaction
    ("BEGIN", Transaction),
    ("BEGIN WORK", Transaction),
    ("START TRANSACTION", Transaction),
    ("START TRANSACTION READ ONLY", Transaction),
    ("START TRANSACTION WITH CONSISTENT SNAPSHOT", Transaction),
    ("COMMIT", Transaction),
    ("ROLLBACK", Transaction),
    ("ROLLBACK TO SAVEPOINT sp", Transaction),
    ("SAVEPOINT sp", Transaction),
    ("RELEASE SAVEPOINT sp", Transaction),
    ("XA START 'x'", Transaction),
    ("XA COMMIT 'x'", Transaction),
    ("SET autocommit = 0", Transaction),
    ("SET @@autocommit = 1", Transaction),
    ("SET SESSION autocommit = 1", Transaction),
    ("SET @@session.autocommit = 1, @a = 2", Transaction),
    // --- Write
    ("INSERT INTO t VALUES (1)", Write),
    ("INSERT INTO t (a) SELECT a FROM u", Write),
    (
        "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2",
        Write,
    ),
    ("INSERT INTO t VALUES (1) RETURNING id", Write),
    ("REPLACE INTO t VALUES (1)", Write),
    ("REPLACE INTO t VALUES (1) RETURNING *", Write),
    ("UPDATE t SET a = 1 WHERE b = 2", Write),
    ("UPDATE a, b SET a.x = b.x WHERE a.id = b.id", Write),
    ("DELETE FROM t WHERE a = 1", Write),
    ("DELETE FROM t WHERE a = 1 RETURNING id", Write),
    ("DELETE a FROM a JOIN b ON a.id = b.id", Write),
    ("DELETE FROM a USING a JOIN b ON a.id = b.id", Write),
    ("WITH x AS (SELECT 1) DELETE FROM t", Write),
    ("WITH x AS (SELECT 1 AS a) UPDATE t, x SET t.a = x.a", Write),
    ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", Write),
    ("INSERT INTO t WITH x AS (SELECT 1) SELECT * FROM x", Write),
    ("CALL p(1)", Write),
    ("EXECUTE s", Write),
    ("EXECUTE s USING @a", Write),
    ("EXPLAIN ANALYZE SELECT * FROM t WHERE 1", Read),
    ("ANALYZE DELETE FROM t", Write),
    ("EXPLAIN ANALYZE UPDATE t SET a = 1", Write),
    ("EXPLAIN DELETE FROM t", Write),
    ("SELECT NEXTVAL(s)", Write),
    ("SELECT NEXT VALUE FOR s", Write),
    ("SELECT SETVAL(s, 10)", Write),
    ("SELECT * FROM t WHERE id = (SELECT NEXTVAL(s))", Write),
    (
        "SET STATEMENT max_statement_time=1 FOR UPDATE t SET a = 1",
        Write,
    ),
    ("PREPARE s FROM 'INSERT INTO t VALUES (1)'", Write),
    ("EXECUTE IMMEDIATE 'DELETE FROM t'", Write),
    // --- Ddl
    ("CREATE TABLE t (a INT)", Ddl),
    ("CREATE TABLE IF NOT EXISTS db.t (a INT PRIMARY KEY)", Ddl),
    ("CREATE OR REPLACE TABLE t (a INT)", Ddl),
    ("CREATE TABLE t2 LIKE t", Ddl),
    ("CREATE TABLE t2 SELECT * FROM t", Ddl),
    (
        "CREATE TABLE t (a INT, ts TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
        Ddl,
    ),
    ("DROP TABLE t", Ddl),
    ("DROP TABLE IF EXISTS a, b", Ddl),
    ("ALTER TABLE db.t ADD COLUMN c INT", Ddl),
    ("RENAME TABLE a TO b", Ddl),
    ("TRUNCATE TABLE t", Ddl),
    ("TRUNCATE t", Ddl),
    ("CREATE DATABASE d", Ddl),
    ("CREATE SCHEMA IF NOT EXISTS d", Ddl),
    ("DROP DATABASE d", Ddl),
    ("DROP SCHEMA d", Ddl),
    ("ALTER DATABASE d CHARACTER SET utf8mb4", Ddl),
    ("CREATE INDEX i ON t (a)", Ddl),
    ("CREATE UNIQUE INDEX i ON t (a)", Ddl),
    ("DROP INDEX i ON t", Ddl),
    ("CREATE VIEW v AS SELECT 1", Ddl),
    ("CREATE OR REPLACE ALGORITHM=MERGE VIEW v AS SELECT 1", Ddl),
    ("DROP VIEW v", Ddl),
    (
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
        Ddl,
    ),
    ("DROP TRIGGER tr", Ddl),
    ("CREATE PROCEDURE p() SELECT 1", Ddl),
    (
        "CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
        Ddl,
    ),
    (
        "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; SELECT CASE WHEN 1 THEN 2 END; END",
        Ddl,
    ),
    ("DROP PROCEDURE IF EXISTS p", Ddl),
    ("CREATE FUNCTION f() RETURNS INT RETURN 1", Ddl),
    ("DROP FUNCTION f", Ddl),
    (
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t",
        Ddl,
    ),
    ("ALTER EVENT e DISABLE", Ddl),
    ("CREATE SEQUENCE s", Ddl),
    ("CREATE SEQUENCE s START WITH 1 INCREMENT BY 1", Ddl),
    ("ALTER SEQUENCE s RESTART 1", Ddl),
    ("DROP SEQUENCE s", Ddl),
    ("OPTIMIZE TABLE t", Ddl),
    ("REPAIR TABLE t", Ddl),
    ("ANALYZE TABLE t", Ddl),
    ("BEGIN NOT ATOMIC SELECT 1; END", Ddl),
    (
        "BEGIN NOT ATOMIC DECLARE x INT; SET x = 1; SELECT x; END",
        Ddl,
    ),
    ("PREPARE s FROM 'DROP TABLE t'", Ddl),
    ("/* x */ DROP TABLE t", Ddl),
    ("-- x\nDROP TABLE t", Ddl),
    ("# x\nDROP TABLE t", Ddl),
    ("/*!40101 DROP TABLE t */", Ddl),
    ("/*! DROP TABLE t */", Ddl),
    ("/*M!100100 DROP TABLE t*/", Ddl),
    ("/*M! DROP TABLE t */", Ddl),
    ("SELECT 1 /*!, (SELECT 1) */; /*!50000 DROP */ TABLE t", Ddl),
    ("SELECT '/*' , 1 -- */ DROP\n; DROP TABLE t", Ddl),
    ("SELECT 1; DROP TABLE t", Ddl),
    ("SELECT 1; DROP TABLE t;", Ddl),
    ("dRoP tAbLe T", Ddl),
    ("SELECT 1 /*!99999 ; DROP TABLE t */", Ddl),
    ("SELECT 'a\\'; DROP TABLE t; -- '", Ddl),
    (
        "SELECT * FROM t WHERE a = 1 UNION SELECT 1 FROM dual; ALTER TABLE t ENGINE=InnoDB",
        Ddl,
    ),
    ("CREATE VIEW v AS SELECT 1 AS begin; DROP TABLE t", Ddl),
    ("SET STATEMENT max_statement_time=1 FOR DROP TABLE t", Ddl),
    // --- Admin
    ("GRANT SELECT ON db.* TO u", Admin),
    ("REVOKE SELECT ON db.* FROM u", Admin),
    ("CREATE USER u IDENTIFIED BY 'x'", Admin),
    ("CREATE USER IF NOT EXISTS 'u'@'%'", Admin),
    ("DROP USER u", Admin),
    ("ALTER USER u IDENTIFIED BY 'x'", Admin),
    ("RENAME USER a TO b", Admin),
    ("CREATE ROLE r", Admin),
    ("DROP ROLE r", Admin),
    ("SET ROLE r", Admin),
    ("SET DEFAULT ROLE r FOR u", Admin),
    ("SET PASSWORD = 'x'", Admin),
    ("SET PASSWORD FOR u = PASSWORD('x')", Admin),
    ("SET GLOBAL max_connections = 10", Admin),
    // A client charset whose multi-byte characters can end in `\\` or `` ` ``, or one the node
    // cannot see: the server would read the following text differently from the node.
    ("SET @@global . max_connections = 1", Admin),
    ("SET @@session . sql_log_bin = 0", Admin),
    ("SET @@session . character_set_client = gbk", Admin),
    ("SET NAMES gbk", Admin),
    ("SET NAMES 'SJIS' COLLATE sjis_bin", Admin),
    ("SET CHARACTER SET big5", Admin),
    ("SET CHARSET cp932", Admin),
    ("SET character_set_client = gbk", Admin),
    ("SET @@character_set_client := 'gbk'", Admin),
    ("SET SESSION `character_set_client` = 'gbk'", Admin),
    ("SET @@session.`character_set_client` = 'gbk'", Admin),
    ("SET character_set_client = @cs", Admin),
    ("SET character_set_client = 28", Admin),
    ("SET character_set_client = (SELECT 'gbk')", Admin),
    ("SET sql_mode = '', NAMES gbk", Admin),
    ("/*!40101 SET NAMES gbk */", Admin),
    (
        "SET STATEMENT character_set_client = gbk FOR SELECT 1",
        Admin,
    ),
    ("SET @@global.max_connections = 10", Admin),
    ("SET @@GLOBAL.max_connections = 10", Admin),
    ("SET PERSIST max_connections = 10", Admin),
    ("SET PERSIST_ONLY max_connections = 10", Admin),
    ("SET @@persist.max_connections = 10", Admin),
    ("SET wait_timeout = 1, GLOBAL max_connections = 10", Admin),
    (
        "SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED",
        Admin,
    ),
    ("SET sql_log_bin = 0", Admin),
    ("SET SESSION sql_log_bin = 0", Admin),
    ("SET @@session.sql_log_bin = 0", Admin),
    (
        "SET STATEMENT sql_log_bin = 0 FOR INSERT INTO t VALUES (1)",
        Admin,
    ),
    ("KILL 5", Admin),
    ("KILL QUERY 5", Admin),
    ("SHUTDOWN", Admin),
    ("FLUSH PRIVILEGES", Admin),
    ("FLUSH TABLES WITH READ LOCK", Admin),
    ("RESET MASTER", Admin),
    ("RESET QUERY CACHE", Admin),
    ("PURGE BINARY LOGS TO 'mysql-bin.000010'", Admin),
    ("CHANGE MASTER TO MASTER_HOST='h'", Admin),
    ("START SLAVE", Admin),
    ("STOP REPLICA", Admin),
    ("INSTALL PLUGIN x SONAME 'y.so'", Admin),
    ("UNINSTALL PLUGIN x", Admin),
    ("INSTALL SONAME 'auth_ed25519'", Admin),
    ("SELECT * FROM t INTO OUTFILE '/tmp/x'", Admin),
    ("SELECT * INTO OUTFILE '/tmp/x' FROM t", Admin),
    ("SELECT * FROM t INTO DUMPFILE '/tmp/x'", Admin),
    ("SELECT LOAD_FILE('/etc/passwd')", Admin),
    ("LOAD DATA INFILE 'x' INTO TABLE t", Admin),
    ("LOAD DATA LOCAL INFILE 'x' INTO TABLE t", Write),
    (
        "LOAD DATA LOW_PRIORITY LOCAL INFILE 'x' INTO TABLE t",
        Write,
    ),
    ("LOAD XML LOCAL INFILE 'x' INTO TABLE t", Write),
    ("LOAD XML INFILE 'x' INTO TABLE t", Admin),
    ("BINLOG 'abc'", Admin),
    ("CACHE INDEX t IN k", Admin),
    ("LOAD INDEX INTO CACHE t", Admin),
    ("PREPARE s FROM @q", Admin),
    ("PREPARE s FROM 'GRANT ALL ON *.* TO u'", Admin),
    ("EXECUTE IMMEDIATE @q", Admin),
    ("EXECUTE IMMEDIATE 'SELECT ?' USING 1", Read),
    (
        "PREPARE s FROM 'SELECT * FROM t' ' INTO OUTFILE ''/tmp/x'''",
        Admin,
    ),
    ("PREPARE s FROM X'44524F50205441424C452074'", Admin),
    ("PREPARE s FROM _utf8'SELECT 1'", Admin),
    ("PREPARE s FROM \"SELECT 1\"", Read),
    ("SET @@session.`sql_log_bin` = 0", Admin),
    ("SET @@`sql_log_bin` = 0", Admin),
    ("SET @`sql_log_bin` = 0", Session),
    ("SET @@ global.max_connections = 1", Admin),
    ("CREATE VIEW v AS SELECT 1 AS begin; USE other", Admin),
    (
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SET GLOBAL max_connections = 1",
        Admin,
    ),
    ("LOCK INSTANCE FOR BACKUP", Admin),
    ("CREATE FUNCTION f RETURNS STRING SONAME 'udf.so'", Admin),
    (
        "CREATE PROCEDURE p() BEGIN SET GLOBAL max_connections = 1; END",
        Admin,
    ),
    ("SELECT 1; GRANT ALL ON *.* TO u", Admin),
    ("/*!40101 SET GLOBAL max_connections = 10 */", Admin),
    ("FROBNICATE the database", Admin),
    ("lbl: BEGIN NOT ATOMIC SELECT 1; END", Admin),
    ("SELECT * FROM t /*! INTO OUTFILE '/tmp/x' */", Admin),
];

#[test]
fn class_table() {
    assert!(CASES.len() >= 100, "only {} rows", CASES.len());
    let mut failures = Vec::new();
    for (sql, expected) in CASES {
        let got = classify(sql);
        if got.class() != *expected {
            failures.push(format!(
                "{sql:?}: expected {}, got {} ({:?})",
                expected.as_str(),
                got.class().as_str(),
                got.statements
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn one(sql: &str) -> Statement {
    let c = classify(sql);
    assert_eq!(c.statements.len(), 1, "{sql:?} gave {:?}", c.statements);
    c.statements
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!())
}

#[test]
fn tables_and_databases() {
    let s = one("SELECT * FROM db.t JOIN u ON db.t.id = u.id JOIN u AS u2");
    assert_eq!(s.tables, ["db.t", "u"]);
    assert_eq!(s.databases, ["db"]);
    assert_eq!(s.verb, "SELECT");
    assert_eq!(s.fallback_reason, None);

    let s = one("INSERT INTO `db`.`t` (a) SELECT a FROM src");
    assert_eq!(s.tables, ["db.t", "src"]);
    assert_eq!(s.databases, ["db"]);

    let s = one("DROP TABLE IF EXISTS a, db2.b");
    assert_eq!(s.verb, "DROP TABLE");
    assert_eq!(s.tables, ["a", "db2.b"]);
    assert_eq!(s.databases, ["db2"]);

    let s = one("CREATE DATABASE shop");
    assert_eq!(s.verb, "CREATE DATABASE");
    assert!(s.tables.is_empty(), "{:?}", s.tables);
    assert_eq!(s.databases, ["shop"]);

    let s = one("DROP DATABASE IF EXISTS shop");
    assert_eq!(s.verb, "DROP DATABASE");
    assert!(s.tables.is_empty(), "{:?}", s.tables);
    assert_eq!(s.databases, ["shop"]);

    let s = one("USE `Shop`");
    assert_eq!(s.verb, "USE");
    assert_eq!(s.use_database.as_deref(), Some("Shop"));
    assert_eq!(s.databases, ["Shop"]);
    assert_eq!(s.class, Session);

    let s = one("use shop");
    assert_eq!(s.use_database.as_deref(), Some("shop"));

    let s = one("ALTER TABLE Shop.Orders ADD COLUMN c INT");
    assert_eq!(s.verb, "ALTER TABLE");
    assert_eq!(s.tables, ["Shop.Orders"]);
    assert_eq!(s.databases, ["Shop"]);

    let s = one("CREATE TEMPORARY TABLE tmp (a INT)");
    assert_eq!(s.verb, "CREATE TEMPORARY TABLE");
    assert_eq!(s.tables, ["tmp"]);

    // What a SHOW looks into.
    for (sql, tables, dbs) in [
        ("SHOW TABLES FROM mysql", &[][..], &["mysql"][..]),
        ("SHOW FULL TABLES IN `sys` LIKE 'x%'", &[], &["sys"]),
        (
            "SHOW TABLE STATUS FROM mysql WHERE Name = 'user'",
            &[],
            &["mysql"],
        ),
        ("SHOW CREATE TABLE mysql.user", &["mysql.user"], &["mysql"]),
        ("SHOW CREATE VIEW t", &["t"], &[]),
        ("SHOW CREATE DATABASE mysql", &[], &["mysql"]),
        ("SHOW CREATE DATABASE IF NOT EXISTS mysql", &[], &["mysql"]),
        ("SHOW CREATE PROCEDURE sys.p", &[], &["sys"]),
        ("SHOW INDEX FROM mysql.user", &["mysql.user"], &["mysql"]),
        (
            "SHOW KEYS FROM user FROM mysql",
            &["mysql.user"],
            &["mysql"],
        ),
        (
            "SHOW FULL COLUMNS FROM user IN mysql",
            &["mysql.user"],
            &["mysql"],
        ),
        ("SHOW TRIGGERS FROM school", &[], &["school"]),
        ("SHOW DATABASES LIKE 'mysql'", &[], &[]),
        ("SHOW GRANTS FOR root@localhost", &[], &["mysql"]),
        ("CALL sys.table_exists('mysql', 'user', @e)", &[], &["sys"]),
        ("CALL `my db`.p", &[], &["my db"]),
        ("CALL p()", &[], &[]),
    ] {
        let s = one(sql);
        assert_eq!(s.tables, tables, "{sql}");
        assert_eq!(s.databases, dbs, "{sql}");
    }

    // Fallback path: names from keyword patterns.
    let s = one("OPTIMIZE TABLE db.t1, t2");
    assert!(s.fallback_reason.is_some());
    assert_eq!(s.verb, "OPTIMIZE TABLE");
    assert_eq!(s.tables, ["db.t1", "t2"]);
    assert_eq!(s.databases, ["db"]);

    let s = one("LOAD DATA INFILE '/tmp/x' INTO TABLE db.t");
    assert_eq!(s.tables, ["db.t"]);
    assert_eq!(s.class, Admin);
}

#[test]
fn verbs() {
    for (sql, verb) in [
        ("create or replace table t (a int)", "CREATE TABLE"),
        (
            "CREATE DEFINER=CURRENT_USER TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
            "CREATE TRIGGER",
        ),
        ("drop schema d", "DROP SCHEMA"),
        ("SET NAMES utf8", "SET"),
        ("SET PASSWORD = 'x'", "SET PASSWORD"),
        ("WITH x AS (SELECT 1) DELETE FROM t", "DELETE"),
        ("(SELECT 1)", "SELECT"),
        ("start transaction", "START TRANSACTION"),
        ("/*!40101 DROP TABLE t */", "DROP TABLE"),
        ("LOCK TABLES t READ", "LOCK TABLES"),
    ] {
        assert_eq!(one(sql).verb, verb, "{sql:?}");
    }
}

#[test]
fn decisive_statement() {
    let c = classify("SELECT 1; USE db; DROP TABLE a; DROP TABLE b; INSERT INTO t VALUES (1)");
    assert_eq!(c.statements.len(), 5);
    assert_eq!(c.class(), Ddl);
    let d = c.decisive().map(|s| s.tables.clone());
    assert_eq!(d, Some(vec!["a".to_string()]));
    let classes: Vec<_> = c.statements.iter().map(|s| s.class).collect();
    assert_eq!(classes, [Read, Session, Ddl, Ddl, Write]);

    let empty = classify("  ;; -- nothing\n");
    assert!(empty.statements.is_empty());
    assert_eq!(empty.class(), Read);
    assert!(empty.decisive().is_none());
}

#[test]
fn fallback_reason_is_set_only_for_fallback() {
    assert_eq!(one("SELECT 1").fallback_reason, None);
    let s = one("SHUTDOWN");
    let reason = s.fallback_reason.unwrap_or_default();
    assert!(reason.contains("SHUTDOWN"), "{reason}");
    assert!(
        one("SELECT * FROM t INTO OUTFILE '/x'")
            .fallback_reason
            .is_some()
    );
}

#[test]
fn class_names() {
    let all = [Read, Session, Transaction, Write, Ddl, Admin];
    let names: Vec<_> = all.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        ["read", "session", "transaction", "write", "ddl", "admin"]
    );
    assert!(all.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn odd_inputs_never_panic() {
    let deep_parens = format!("{}SELECT 1{}", "(".repeat(5000), ")".repeat(5000));
    let deep_expr = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let deep_drop = format!("{}DROP TABLE t{}", "(".repeat(5000), ")".repeat(5000));
    let long = "SELECT 1, ".repeat(20_000) + "1";
    let nested_prepare = (0..12).fold("DROP TABLE t".to_string(), |acc, _| {
        format!("PREPARE s FROM '{}'", acc.replace('\'', "''"))
    });
    let nested_set = "SET STATEMENT a=1 FOR ".repeat(5000) + "SELECT 1";
    let lossy =
        String::from_utf8_lossy(b"SELECT '\xff\xfe' \xc3\x28 FROM t\x00; DROP \xe2\x82 TABLE")
            .into_owned();
    let odd: Vec<(String, Option<StatementClass>)> = vec![
        (String::new(), Some(Read)),
        ("-- only a comment".into(), Some(Read)),
        ("/* only a comment */".into(), Some(Read)),
        ("# x".into(), Some(Read)),
        (";;;".into(), Some(Read)),
        ("'unterminated".into(), Some(Admin)),
        ("SELECT 'unterminated".into(), None),
        ("SELECT `unterminated".into(), None),
        ("SELECT 1 /* unterminated".into(), Some(Read)),
        ("/*! DROP TABLE t".into(), Some(Ddl)),
        ("/*!".into(), Some(Read)),
        ("/*M!1".into(), Some(Admin)),
        ("*/ DROP TABLE t".into(), Some(Admin)),
        ("\\".into(), None),
        ("@".into(), None),
        ("@@".into(), None),
        ("SELECT @".into(), None),
        ("😀 DROP TABLE t".into(), Some(Admin)),
        ("SELECT 'é', `ü` FROM ñ".into(), Some(Read)),
        (deep_parens, Some(Read)),
        (deep_expr, Some(Read)),
        (deep_drop, Some(Ddl)),
        (long, Some(Read)),
        (nested_prepare, Some(Admin)),
        (nested_set, Some(Admin)),
        (lossy, Some(Ddl)),
    ];
    for (sql, expected) in odd {
        let got = classify(&sql).class();
        if let Some(expected) = expected {
            let shown: String = sql.chars().take(60).collect();
            assert_eq!(
                got,
                expected,
                "{shown:?}: expected {}, got {}",
                expected.as_str(),
                got.as_str()
            );
        }
    }
}

#[test]
fn deep_nesting_uses_fallback() {
    let sql = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
    let s = one(&sql);
    assert!(
        s.fallback_reason.is_some(),
        "expected parser recursion limit"
    );
    assert_eq!(s.class, Read);
}

#[test]
fn every_prefix_is_safe() {
    // Truncated packets must not panic and must never be lower than Read.
    let sql = "SELECT 'a;b' /*!40101 , `c` */ FROM t -- x\n; DROP TABLE `d`; # y\n";
    for i in 0..=sql.len() {
        if let Some(prefix) = sql.get(..i) {
            let _ = classify(prefix);
        }
    }
}
