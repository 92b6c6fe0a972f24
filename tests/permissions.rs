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
const SYSTEM_READS: [(&str, u16); 14] = [
    ("SELECT User, Password FROM mysql.user", 1142),
    ("SELECT * FROM mysql.global_priv", 1142),
    ("SHOW GRANTS FOR root@localhost", 1044),
    ("SHOW CREATE USER root@localhost", 1044),
    ("USE mysql", 1044),
    ("SELECT * FROM performance_schema.threads", 1142),
    ("SELECT * FROM myrelay.applied", 1142),
    ("SHOW TABLES FROM mysql", 1044),
    ("SHOW TABLE STATUS FROM mysql", 1044),
    ("SHOW CREATE TABLE mysql.user", 1142),
    ("SHOW INDEX FROM mysql.user", 1142),
    ("SHOW COLUMNS FROM user FROM mysql", 1142),
    // Every account's privileges: a server shows a user its own rows only.
    ("SELECT * FROM information_schema.USER_PRIVILEGES", 1142),
    ("SELECT * FROM information_schema.TABLE_PRIVILEGES", 1142),
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
            // SHOW DATABASES lists what the user may touch, as a server lists a user's.
            for sql in ["SHOW DATABASES", "SHOW SCHEMAS LIKE '%'"] {
                let dbs: Vec<String> = conn.query(sql).await.expect(sql);
                assert!(
                    dbs.iter().any(|d| d == "perm")
                        && dbs.iter().any(|d| d == "information_schema"),
                    "{} {sql}: {dbs:?}",
                    user.0
                );
                for system in ["mysql", "performance_schema", "sys", "myrelay"] {
                    assert!(
                        !dbs.iter().any(|d| d == system),
                        "{} {sql}: {dbs:?}",
                        user.0
                    );
                }
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
        let dbs: Vec<String> = conn.query("SHOW DATABASES").await.expect("databases");
        assert!(dbs.iter().any(|d| d == "mysql"), "{dbs:?}");
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

/// A client of a slave cannot hold back its replication for longer than
/// `replication.apply_lock_wait_ms`. A slave's clients run their transactions on the master, so
/// what holds a slave's locks is a statement under way (a long `SELECT … SLEEP()` on the table)
/// or an open `HANDLER`. Holding a table's metadata lock while the master alters the table gets
/// the connection killed with an error that says replication needed the lock; the slave has the
/// change within the bound plus 1 s. Row locks are never held there by a client.
#[tokio::test]
async fn a_client_of_a_slave_cannot_hold_back_its_replication() {
    const BOUND: Duration = Duration::from_millis(1000);
    let cluster = Cluster::start_with(1, |c| {
        if let Some(r) = c.replication.as_mut() {
            r.apply_lock_wait = BOUND;
        }
    })
    .await;
    let slave = &cluster.slaves[0];
    let mut admin = cluster.master.connect(ADMIN).await;
    admin
        .query_drop(
            "CREATE DATABASE held; CREATE TABLE held.t (id INT PRIMARY KEY, v INT); \
             INSERT INTO held.t VALUES (1, 0), (2, 0)",
        )
        .await
        .expect("setup");
    cluster.converge(Duration::from_secs(30)).await;
    let mut slave_backend = slave.direct().await;

    // An open HANDLER holds the table's metadata lock between statements.
    let mut handler = slave.connect(APP).await;
    handler
        .query_drop("HANDLER held.t OPEN")
        .await
        .expect("open");
    handler
        .query_drop("HANDLER t READ FIRST")
        .await
        .expect("read");
    admin
        .query_drop("ALTER TABLE held.t ADD COLUMN a1 INT")
        .await
        .expect("alter");
    replicated(&cluster, BOUND, "ALTER behind an open HANDLER").await;
    killed(
        handler.query_drop("HANDLER t READ NEXT").await,
        "the metadata lock on `held`.`t`",
    );

    // A long SELECT … SLEEP() on the table holds it for the statement.
    let (_, sleeping) = sleep_on(
        slave,
        &mut slave_backend,
        READER,
        "SELECT SLEEP(60) FROM held.t LIMIT 1",
    )
    .await;
    admin
        .query_drop("ALTER TABLE held.t ADD COLUMN a2 INT")
        .await
        .expect("alter");
    replicated(&cluster, BOUND, "ALTER behind a sleeping SELECT").await;
    killed(
        sleeping.await.expect("join"),
        "the metadata lock on `held`.`t`",
    );

    // Row locks: in autocommit a locking read takes none (and a slave's client runs its
    // transactions on the master), so the master's change to that row applies at once.
    let (id, locking) = sleep_on(
        slave,
        &mut slave_backend,
        APP,
        "SELECT id, SLEEP(60) FROM held.t WHERE id = 1 FOR UPDATE",
    )
    .await;
    admin
        .query_drop("UPDATE held.t SET v = 1 WHERE id = 1")
        .await
        .expect("update");
    let started = std::time::Instant::now();
    cluster.converge(BOUND).await;
    println!(
        "UPDATE beside a locking read: applied in {:?}",
        started.elapsed()
    );
    assert!(!locking.is_finished(), "the locking read was left alone");
    let mut own = slave.connect(APP).await;
    own.query_drop(format!("KILL QUERY {id}"))
        .await
        .expect("a user kills its own statement");
    let (code, _, message) = common::server_error(locking.await.expect("join"));
    assert_eq!(code, 1317, "{message}");

    let replica = slave.node.shared.replica.as_ref().expect("a slave");
    assert_eq!(replica.lock_kills(), 2, "counted in the metrics");
    assert_eq!(
        common::fingerprint(&cluster.master, "held").await,
        common::fingerprint(slave, "held").await,
        "the slave equals the master"
    );
    // The node's other clients were not disturbed.
    let mut other = slave.connect(APP).await;
    let v: Option<i64> = other
        .query_first("SELECT v FROM held.t WHERE id = 1")
        .await
        .expect("read");
    assert_eq!(v, Some(1));
}

/// Waits until every slave of `cluster` applied what the master committed, for at most `bound`
/// plus 1 s, and says how long it took.
async fn replicated(cluster: &Cluster, bound: Duration, what: &str) {
    let started = std::time::Instant::now();
    cluster.converge(bound + Duration::from_secs(1)).await;
    println!(
        "{what}: the slave applied it {:?} after the master's OK",
        started.elapsed()
    );
}

/// Runs `sql` as `user` on `node` in a task, once the backend shows it sleeping: the connection
/// id and the task.
async fn sleep_on(
    node: &TestNode,
    backend: &mut mysql_async::Conn,
    user: (&str, &str),
    sql: &'static str,
) -> (u64, tokio::task::JoinHandle<mysql_async::Result<()>>) {
    let mut conn = node.connect(user).await;
    let id: u64 = conn
        .query_first("SELECT CONNECTION_ID()")
        .await
        .expect("id")
        .unwrap_or(0);
    let task = tokio::spawn(async move { conn.query_drop(sql).await });
    common::wait_processlist(
        backend,
        &format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id} AND STATE = 'User sleep'"
        ),
        1,
        "the statement sleeps",
    )
    .await;
    (id, task)
}

/// Asserts that `result` is the error of a connection killed for replication's sake.
fn killed(result: mysql_async::Result<()>, lock: &str) {
    let (code, state, message) = common::server_error(result);
    assert_eq!((code, state.as_str()), (1927, "70100"), "{message}");
    assert!(
        message.contains(&format!("replication needed {lock}")),
        "says why: {message}"
    );
    assert!(message.contains("apply_lock_wait_ms"), "{message}");
}

/// A statement is judged by what the stored functions it calls do: `SELECT f()` of a function
/// that writes is refused to a readonly user (nothing written), and through a slave it is
/// forwarded to the master like any write, so master and slave stay equal.
#[tokio::test]
async fn a_read_that_calls_a_writing_function_is_a_write() {
    let cluster = Cluster::start(1).await;
    let slave = &cluster.slaves[0];
    let mut admin = cluster.master.connect(ADMIN).await;
    for sql in [
        "CREATE DATABASE fx",
        "CREATE TABLE fx.log (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(20))",
        "CREATE FUNCTION fx.f_log(n VARCHAR(20)) RETURNS INT DETERMINISTIC MODIFIES SQL DATA \
         BEGIN INSERT INTO fx.log (note) VALUES (n); RETURN LAST_INSERT_ID(); END",
        "CREATE FUNCTION fx.f_outer() RETURNS INT DETERMINISTIC RETURN fx.f_log('nested') + 1",
    ] {
        admin.query_drop(sql).await.expect(sql);
    }
    cluster.converge(Duration::from_secs(30)).await;
    for node in [&cluster.master, slave] {
        let mut reader = node.connect(READER).await;
        for sql in [
            "SELECT fx.f_log('reader')",
            "SELECT fx.f_outer()",
            "DO fx.f_log('reader')",
            "SET @v = fx.f_log('reader')",
        ] {
            let (code, state, message) = expect_error(&mut reader, sql).await;
            assert_eq!((code, state.as_str()), (1142, "42000"), "{sql}: {message}");
            assert!(message.contains("readonly"), "says why: {message}");
        }
        // A function that only reads stays a read.
        reader
            .query_drop("SELECT COUNT(*) FROM fx.log")
            .await
            .expect("a read");
    }
    assert_eq!(
        log_rows(&cluster.master).await,
        0,
        "the reader wrote nothing"
    );
    assert_eq!(log_rows(slave).await, 0, "nor on the slave");

    let mut app = slave.connect(APP).await;
    let id: Option<i64> = app
        .query_first("SELECT fx.f_log('through the slave')")
        .await
        .expect("forwarded");
    assert_eq!(id, Some(1), "the master's answer");
    app.query_drop("SELECT fx.f_outer()")
        .await
        .expect("nested, forwarded");
    assert_eq!(log_rows(&cluster.master).await, 2, "both ran on the master");
    cluster.converge(Duration::from_secs(30)).await;
    assert_eq!(
        common::fingerprint(&cluster.master, "fx").await,
        common::fingerprint(slave, "fx").await,
        "the slave equals the master"
    );
}

/// Rows of `fx.log` on `node`'s backend.
async fn log_rows(node: &TestNode) -> i64 {
    let mut conn = node.direct().await;
    conn.query_first::<i64, _>("SELECT COUNT(*) FROM fx.log")
        .await
        .expect("count")
        .unwrap_or(-1)
}

/// A loadable UDF (native code in a shared library) answering 42, one answering 7, each with the
/// `_init` symbol MariaDB requires of a UDF.
const UDF_SOURCE: &str = r#"
char myrelay_answer_init(void *initid, void *args, char *message) { return 0; }
long long myrelay_answer(void *initid, void *args, char *is_null, char *error) { return 42; }
char myrelay_other_init(void *initid, void *args, char *message) { return 0; }
long long myrelay_other(void *initid, void *args, char *is_null, char *error) { return 7; }
"#;

#[tokio::test]
async fn a_loadable_udf_is_admin_unless_the_config_lists_it_safe() {
    // Build the UDF library into a directory of its own, the backends' plugin directory.
    let plugins = tempfile::tempdir().expect("temp dir");
    let source = plugins.path().join("myrelay_udf.c");
    std::fs::write(&source, UDF_SOURCE).expect("write the UDF source");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(plugins.path().join("libmyrelay_udf.so"))
        .arg(&source)
        .output()
        .expect("run cc");
    assert!(
        built.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    // Listed in another case than the function's: UDF names are case-insensitive.
    let safe = |c: &mut myrelay::config::NodeConfig| c.safe_udfs = vec!["MyRelay_Answer".into()];
    let node = TestNode::start_with_plugins("m", NodeRole::Master, plugins.path(), safe).await;
    let mut admin = node.connect(ADMIN).await;
    for udf in ["myrelay_answer", "myrelay_other"] {
        admin
            .query_drop(format!(
                "CREATE FUNCTION {udf} RETURNS INTEGER SONAME 'libmyrelay_udf.so'"
            ))
            .await
            .unwrap_or_else(|e| panic!("create {udf}: {e}"));
    }
    admin
        .query_drop(
            "CREATE DATABASE udf; CREATE TABLE udf.t (a INT); \
             CREATE FUNCTION udf.wrapped() RETURNS INT DETERMINISTIC RETURN myrelay_other() + 1",
        )
        .await
        .expect("a stored function that calls a UDF");

    for login in [APP, READER] {
        let mut conn = node.connect(login).await;
        // A listed UDF is judged like a built-in: a read.
        let answer: Option<i64> = conn
            .query_first("SELECT myrelay_answer()")
            .await
            .expect("the safe UDF answers");
        assert_eq!(answer, Some(42), "{}", login.0);
        // Any other is admin: in a read, a write, through a stored function, prepared.
        for sql in [
            "SELECT myrelay_other()",
            "SELECT MyRelay_Other() + myrelay_answer()",
            "SELECT udf.wrapped()",
            "SET @v = myrelay_other()",
        ] {
            let (code, _, message) = expect_error(&mut conn, sql).await;
            assert_eq!(code, 1227, "{} {sql}: {message}", login.0);
            for part in ["loadable UDF myrelay_other()", "safe_udfs", "[functions]"] {
                assert!(message.contains(part), "{} {sql}: {message}", login.0);
            }
        }
        let prepared = common::server_error(conn.exec_drop("SELECT myrelay_other()", ()).await);
        assert_eq!(prepared.0, 1227, "{} prepared: {}", login.0, prepared.2);
        // The session goes on.
        let one: Option<i64> = conn.query_first("SELECT 1").await.expect("usable");
        assert_eq!(one, Some(1));
    }
    let mut app = node.connect(APP).await;
    let (code, _, message) =
        expect_error(&mut app, "INSERT INTO udf.t VALUES (myrelay_other())").await;
    assert_eq!(code, 1227, "a write that calls it too: {message}");
    assert!(
        message.contains("loadable UDF myrelay_other()"),
        "{message}"
    );

    // An admin on the master runs it.
    let other: Option<i64> = admin
        .query_first("SELECT myrelay_other(), udf.wrapped()")
        .await
        .map(|row: Option<(i64, i64)>| row.map(|(o, _)| o))
        .expect("admin calls the UDF");
    assert_eq!(other, Some(7));

    // DROP FUNCTION through the node is a schema change: the node reads the UDFs again, and a
    // call of the dropped one is the backend's to answer.
    admin
        .query_drop("DROP FUNCTION myrelay_other")
        .await
        .expect("drop the UDF");
    let (code, _, message) = expect_error(&mut app, "SELECT myrelay_other()").await;
    assert_eq!(code, 1305, "the backend's 'does not exist': {message}");

    // A slave refuses an unlisted UDF to everyone (1290), and serves a listed one. Standalone:
    // the UDFs are created on its backend directly.
    let slave = TestNode::start_with_plugins("s", NodeRole::Slave, plugins.path(), safe).await;
    let mut direct = slave.direct().await;
    for udf in ["myrelay_answer", "myrelay_other"] {
        direct
            .query_drop(format!(
                "CREATE FUNCTION {udf} RETURNS INTEGER SONAME 'libmyrelay_udf.so'"
            ))
            .await
            .unwrap_or_else(|e| panic!("create {udf} on the slave's backend: {e}"));
    }
    for login in [ADMIN, READER] {
        let mut conn = slave.connect(login).await;
        let (code, _, message) = expect_error(&mut conn, "SELECT myrelay_other()").await;
        assert_eq!(code, 1290, "{}: {message}", login.0);
        assert!(message.contains("safe_udfs"), "{message}");
        let answer: Option<i64> = conn
            .query_first("SELECT myrelay_answer()")
            .await
            .expect("the safe UDF answers on the slave");
        assert_eq!(answer, Some(42));
    }
}
