//! The client matrix (see `README.md` here): every stock client runs the same scenario against a
//! master node and, in the same run, directly against that node's backend, and must see the same
//! transcript; against a slave it must get DDL refused and keep its connection.

#[path = "../common/mod.rs"]
mod common;
mod mysql_async_client;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{ADMIN, Cluster, DB_PASS, DB_USER};
use mysql_async::prelude::Queryable;

/// Where a client connects, and as whom.
#[derive(Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    pub user: &'static str,
    pub pass: &'static str,
}

/// A master with one slave, both in front of their own backends, with the school schema loaded
/// through the master (so the slave has it too).
struct Fixture {
    cluster: Cluster,
}

impl Fixture {
    async fn start() -> Fixture {
        let cluster = Cluster::start(1).await;
        let mut conn = cluster.master.connect(ADMIN).await;
        for statement in myrelay_demo::SCHOOL_SQL
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            conn.query_drop(statement).await.expect("school schema");
        }
        drop(conn);
        cluster.converge(Duration::from_secs(20)).await;
        Fixture { cluster }
    }

    /// Drops `db` on the master's backend, so that every run of a scenario starts alike.
    async fn forget(&self, db: &str) {
        let mut conn = self.cluster.master.direct().await;
        conn.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .expect("drop database");
    }

    /// Requires the slave's copy of `db` to equal the master's once it caught up: whatever a
    /// client wrote through the master, prepared or not, was replicated.
    async fn assert_replicated(&self, db: &str) {
        self.cluster.converge(Duration::from_secs(20)).await;
        let master = common::fingerprint(&self.cluster.master, db).await;
        let slave = common::fingerprint(&self.cluster.slaves[0], db).await;
        assert!(!master.is_empty(), "{db} has tables on the master");
        assert_eq!(master, slave, "{db} on the slave equals the master's");
    }

    fn node(&self) -> Target {
        Target {
            addr: self.cluster.master.addr(),
            user: ADMIN.0,
            pass: ADMIN.1,
        }
    }

    fn direct(&self) -> Target {
        Target {
            addr: self.cluster.master.server.addr(),
            user: DB_USER,
            pass: DB_PASS,
        }
    }

    fn slave(&self) -> Target {
        Target {
            addr: self.cluster.slaves[0].addr(),
            user: ADMIN.0,
            pass: ADMIN.1,
        }
    }
}

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs `setup.sh` once per test binary: it installs what is missing and is quick otherwise.
fn install_clients() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let out = std::process::Command::new("bash")
            .arg(here().join("setup.sh"))
            .output()
            .map_err(|e| format!("run setup.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tests/clients/setup.sh failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A client program that follows the contract in `README.md`.
struct Program {
    argv: Vec<String>,
}

impl Program {
    fn python(driver: &str) -> Program {
        install_clients();
        let dir = here().join("python");
        Program {
            argv: vec![
                dir.join(".venv/bin/python").display().to_string(),
                dir.join("matrix.py").display().to_string(),
                format!("--driver={driver}"),
            ],
        }
    }

    /// `python/metadata.py`: SQLAlchemy's reflection and mycli's completion refresh.
    fn python_metadata() -> Program {
        install_clients();
        let dir = here().join("python");
        Program {
            argv: vec![
                dir.join(".venv/bin/python").display().to_string(),
                dir.join("metadata.py").display().to_string(),
            ],
        }
    }

    fn node() -> Program {
        install_clients();
        Program {
            argv: vec![
                "node".into(),
                here().join("node/matrix.js").display().to_string(),
            ],
        }
    }

    fn java() -> Program {
        install_clients();
        Program {
            argv: vec![
                "java".into(),
                "-cp".into(),
                "/usr/share/java/mariadb-java-client.jar".into(),
                here().join("java/Matrix.java").display().to_string(),
            ],
        }
    }

    /// Runs the program in `mode` against `target` and returns its transcript.
    async fn run(&self, target: Target, db: &str, mode: &str) -> String {
        let mut command = tokio::process::Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .arg(format!("--host={}", target.addr.ip()))
            .arg(format!("--port={}", target.addr.port()))
            .arg(format!("--user={}", target.user))
            .arg(format!("--password={}", target.pass))
            .arg(format!("--db={db}"))
            .arg(format!("--mode={mode}"))
            .arg(format!(
                "--types-sql={}",
                here().join("types.sql").display()
            ))
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(180), command.output())
            .await
            .unwrap_or_else(|_| panic!("{:?} --mode={mode} timed out", self.argv))
            .unwrap_or_else(|e| panic!("run {:?}: {e}", self.argv));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{:?} --mode={mode} against {} failed ({}):\n{stdout}\n{}",
            self.argv,
            target.addr,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// Panics with the first differing lines when the node's transcript is not the direct one.
pub fn assert_same(client: &str, direct: &str, node: &str) {
    if direct == node {
        return;
    }
    let (d, n): (Vec<&str>, Vec<&str>) = (direct.lines().collect(), node.lines().collect());
    let first = d
        .iter()
        .zip(&n)
        .position(|(a, b)| a != b)
        .unwrap_or(d.len().min(n.len()));
    let window = |lines: &[&str]| lines[first..lines.len().min(first + 8)].join("\n");
    panic!(
        "{client}: the node's transcript differs from the backend's at line {}\n\
         --- direct\n{}\n--- node\n{}",
        first + 1,
        window(&d),
        window(&n)
    );
}

/// Runs `program`'s matrix against the backend and then the node, and its refusal on the slave.
async fn matrix(client: &str, program: Program) {
    let fixture = Fixture::start().await;
    let db = format!("matrix_{client}");
    fixture.forget(&db).await;
    let direct = program.run(fixture.direct(), &db, "matrix").await;
    fixture.forget(&db).await;
    let node = program.run(fixture.node(), &db, "matrix").await;
    fixture.assert_replicated(&db).await;
    assert!(
        direct.lines().count() > 50,
        "{client}: a full transcript:\n{direct}"
    );
    assert_same(client, &direct, &node);
    let refusal = program.run(fixture.slave(), "school", "refusal").await;
    assert_refused(client, &refusal);
}

/// A refusal transcript names error 1290 with SQLSTATE HY000 (where the client shows SQLSTATEs)
/// and the master, then the count.
fn assert_refused(client: &str, transcript: &str) {
    // PyMySQL reads the SQLSTATE off the error packet but does not expose it.
    let state_shown = client != "pymysql";
    assert!(
        transcript.contains("1290")
            && (transcript.contains("HY000") || !state_shown)
            && transcript.contains("must run on the master"),
        "{client}: DDL on a slave is refused with 1290:\n{transcript}"
    );
    assert!(
        transcript.trim_end().ends_with('3'),
        "{client}: the connection stays usable (3 students):\n{transcript}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql() {
    matrix("pymysql", Program::python("pymysql")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_connector_python() {
    matrix("connector_python", Program::python("connector")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_mysql2() {
    // mysql2 shows the extended metadata, and parses a JSON column's values when it says JSON:
    // the transcript holds `extendedFormat=json` and JSON objects, through the node as direct.
    matrix("mysql2", Program::node()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_connector_j() {
    matrix("connector_j", Program::java()).await;
}

/// DBeaver's connect-time metadata calls and a cell edit through an updatable result set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbeaver_metadata_and_row_edit() {
    let fixture = Fixture::start().await;
    let mut java = Program::java();
    let school = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/school.sql");
    java.argv.push(format!("--school-sql={}", school.display()));
    fixture.forget("dbeaver").await;
    let direct = java.run(fixture.direct(), "dbeaver", "dbeaver").await;
    fixture.forget("dbeaver").await;
    let node = java.run(fixture.node(), "dbeaver", "dbeaver").await;
    fixture.assert_replicated("dbeaver").await;
    assert!(
        node.contains("student_course") && node.contains("Alan M. Turing"),
        "imported keys and the edited row are in the transcript:\n{node}"
    );
    assert_same("dbeaver", &direct, &node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async() {
    let fixture = Fixture::start().await;
    let db = "matrix_mysql_async";
    fixture.forget(db).await;
    let direct = mysql_async_client::matrix(fixture.direct(), db).await;
    fixture.forget(db).await;
    let node = mysql_async_client::matrix(fixture.node(), db).await;
    fixture.assert_replicated(db).await;
    assert_same("mysql_async", &direct, &node);
    let refusal = mysql_async_client::refusal(fixture.slave()).await;
    assert_refused("mysql_async", &refusal);
}

/// The stock `mariadb` CLI: `-vvv --force` echoes every statement, its result with
/// `--column-type-info`, and every error, so the transcript is the session a user would see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli() {
    let fixture = Fixture::start().await;
    let script = std::fs::read_to_string(here().join("cli/matrix.sql")).expect("cli/matrix.sql");
    let types = std::fs::read_to_string(here().join("types.sql")).expect("types.sql");
    let marker = "-- @types.sql: the harness puts ../types.sql here\n";
    assert!(
        script.contains(marker),
        "cli/matrix.sql marks where types.sql goes"
    );
    let script = script.replace(marker, &types);
    let run = |target: Target| {
        let script = script.clone();
        async move {
            let args = ["-vvv", "--force", "--column-type-info", "--binary-as-hex"];
            let out =
                common::mariadb_cli(target.addr, target.user, target.pass, &args, &script).await;
            let transcript = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            mask_timings(&transcript)
        }
    };
    fixture.forget("matrix_cli").await;
    let direct = run(fixture.direct()).await;
    fixture.forget("matrix_cli").await;
    let node = run(fixture.node()).await;
    fixture.assert_replicated("matrix_cli").await;
    // `--column-type-info` prints the extended metadata of the JSON column.
    assert!(
        direct.contains("BLOB (format=json)")
            && direct.contains("ERROR 1062 (23000)")
            && direct.contains("ERROR 1146 (42S02)"),
        "{direct}"
    );
    assert_same("mariadb CLI", &direct, &node);
    let out = common::mariadb_cli(
        fixture.slave().addr,
        ADMIN.0,
        ADMIN.1,
        &["--force", "--skip-column-names", "school"],
        "CREATE TABLE refused (a INT);\nSELECT COUNT(*) FROM student;\n",
    )
    .await;
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_refused("mariadb CLI", &transcript);
}

/// Replaces the CLI's `(0.001 sec)` timings, the only part of its output that varies by run.
fn mask_timings(transcript: &str) -> String {
    transcript
        .lines()
        .map(|line| match line.rfind(" (") {
            Some(at) if line.ends_with(" sec)") => format!("{} (T sec)", &line[..at]),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// caching_sha2_password (what MySQL 8 clients default to) and TLS, each with a real client:
/// mysql-connector-python answering with caching_sha2_password, over TLS that verifies the
/// node's certificate and without; PyMySQL over TLS; a user whose config requires TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_password_and_tls_with_python_clients() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = common::self_signed_tls(dir.path());
    let ca = format!("--ssl-ca={}", tls.cert.display());
    let node = common::TestNode::start_with("tls", myrelay::config::NodeRole::Master, |c| {
        c.tls = Some(tls);
        c.users.insert(
            "secure".into(),
            common::tls_only_user("secure", "securepass"),
        );
    })
    .await;
    let target = |user, pass| Target {
        addr: node.addr(),
        user,
        pass,
    };
    let login = |driver: &str, extra: &[&str]| {
        let mut program = Program::python(driver);
        program.argv.extend(extra.iter().map(|s| s.to_string()));
        program
    };
    let sha2 = "--auth-plugin=caching_sha2_password";
    let seen = login("connector", &[sha2, &ca])
        .run(target(ADMIN.0, ADMIN.1), "x", "login")
        .await;
    assert!(
        seen.contains("tls TLSv1.3") && seen.contains("plugin caching_sha2_password"),
        "{seen}"
    );
    assert!(seen.contains("answer 42"), "{seen}");
    let seen = login("connector", &[sha2])
        .run(target(ADMIN.0, ADMIN.1), "x", "login")
        .await;
    assert!(
        seen.contains("tls None")
            && seen.contains("plugin caching_sha2_password")
            && seen.contains("answer 42"),
        "{seen}"
    );
    let seen = login("connector", &[sha2])
        .run(target(ADMIN.0, "wrong"), "x", "login")
        .await;
    assert!(seen.contains("login failed: 1045"), "{seen}");
    let seen = login("pymysql", &[&ca])
        .run(target("secure", "securepass"), "x", "login")
        .await;
    assert!(
        seen.contains("tls TLSv1.3") && seen.contains("answer 42"),
        "{seen}"
    );
    let seen = login("pymysql", &[])
        .run(target("secure", "securepass"), "x", "login")
        .await;
    assert!(
        seen.contains("login failed: 1045") && seen.contains("TLS"),
        "{seen}"
    );
}

/// What the school database gets besides the demo's tables, so that the tools have a view, a
/// function and a procedure to read (SQLAlchemy's views, mycli's functions and procedures).
/// Last, ANALYZE (replicated, as a server's binlog carries it): index cardinalities are each
/// backend's own estimate, which a slave's backend makes at other times than the master's; made
/// now, on every table's final rows, they are exact on both.
const SCHOOL_EXTRAS: [&str; 4] = [
    "CREATE VIEW school.enrolment AS SELECT s.name AS student, c.name AS course \
     FROM school.student_course sc JOIN school.student s ON s.id = sc.student_id \
     JOIN school.course c ON c.id = sc.course_id",
    "CREATE FUNCTION school.course_count(sid INT UNSIGNED) RETURNS INT READS SQL DATA \
     RETURN (SELECT COUNT(*) FROM school.student_course WHERE student_id = sid)",
    "CREATE PROCEDURE school.enrol(sid INT UNSIGNED, cid INT UNSIGNED) MODIFIES SQL DATA \
     INSERT INTO school.student_course (student_id, course_id) VALUES (sid, cid)",
    "ANALYZE TABLE school.student, school.course, school.student_course",
];

/// The backend accounts the metadata test compares a node's users with: (node user, backend
/// account, its password, what its role stands for as grants on the school database). `app`
/// reads and changes rows, calls routines and keeps temporary tables; `readonly` reads and calls
/// routines (the node lets it call those whose bodies only read). Both see views' definitions
/// (SHOW VIEW), as a node's users do. EXECUTE also decides which routines information_schema
/// lists to an account, which is what the tools read.
const ROLE_ACCOUNTS: [((&str, &str), &str, &str, &str); 2] = [
    (
        common::APP,
        "direct_app",
        "direct_app_pass",
        "SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, SHOW VIEW",
    ),
    (
        common::READER,
        "direct_reader",
        "direct_reader_pass",
        "SELECT, EXECUTE, SHOW VIEW",
    ),
];

/// A transcript's compared lines and its `unscoped ` lines (see `python/metadata.py`): what a
/// node user and a backend account with grants on one database cannot list alike.
fn scoped(transcript: &str) -> (String, Vec<&str>) {
    let (unscoped, compared): (Vec<&str>, Vec<&str>) = transcript
        .lines()
        .partition(|line| line.starts_with("unscoped "));
    (compared.join("\n"), unscoped)
}

/// What drivers and tools read at connect and for metadata answers a node's `app` and `reader`
/// users as the server answers an account with the grants their role stands for: DBeaver's JDBC
/// metadata calls (Connector/J), SQLAlchemy's reflection and mycli's completion refresh (each
/// over PyMySQL, run by the tool's own code), through the master and the slave, each compared
/// with the same tool run directly against the master's backend as that account.
///
/// Compared: everything each tool reads of the school database (tables, views, columns, keys,
/// indexes and their cardinalities, routines, the view's definition) and of the server
/// (character sets, collations), and every error a tool reports or swallows, by its code
/// (mycli's user list reads `mysql.user` and its SHOW candidates `mysql.help_topic`: refused
/// with 1142 directly, so through the node too).
///
/// Not compared: the list of databases (SHOW DATABASES, JDBC catalogs, SQLAlchemy's schema
/// names), the transcripts' `unscoped ` lines. A node's user may touch every application
/// database, which no grant on the school database alone expresses, so the account lists fewer;
/// the transcripts compare that the school database and information_schema are listed, and the
/// whole lists are printed (`--nocapture`). They differ beyond that too: `SHOW DATABASES`
/// through the node leaves out the system schemas as a server does, but
/// `information_schema.SCHEMATA` (JDBC's catalogs) still lists them, which the node then
/// refuses these users (1044).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_tools_answer_app_and_reader_as_direct() {
    let fixture = Fixture::start().await;
    let mut admin = fixture.cluster.master.connect(ADMIN).await;
    for statement in SCHOOL_EXTRAS {
        admin.query_drop(statement).await.expect(statement);
    }
    drop(admin);
    fixture.cluster.converge(Duration::from_secs(20)).await;
    // The accounts live on the master's backend only: out of its binlog, so not replicated.
    let mut direct = fixture.cluster.master.direct().await;
    direct
        .query_drop("SET SESSION sql_log_bin = 0")
        .await
        .expect("sql_log_bin");
    for (_, account, password, grants) in ROLE_ACCOUNTS {
        direct
            .query_drop(format!(
                "CREATE USER '{account}'@'127.0.0.1' IDENTIFIED BY '{password}'"
            ))
            .await
            .expect("create account");
        direct
            .query_drop(format!(
                "GRANT {grants} ON school.* TO '{account}'@'127.0.0.1'"
            ))
            .await
            .expect("grant");
    }
    drop(direct);

    let java = Program::java();
    let python = Program::python_metadata();
    // (tool, program, mode, what its transcript holds when it read the schema at all)
    let tools: [(&str, &Program, &str, &[&str]); 3] = [
        (
            "dbeaver",
            &java,
            "dbeaver-metadata",
            &["student_course_student", "FUNCTION_NAME=\"course_count\""],
        ),
        (
            "sqlalchemy",
            &python,
            "sqlalchemy",
            &[
                "'referred_table': 'student'",
                "enrolment definition: 'CREATE",
            ],
        ),
        (
            "mycli",
            &python,
            "mycli",
            &[
                "'course_count'",
                "No user completions: error OperationalError 1142",
                "No show completions: error OperationalError 1142",
            ],
        ),
    ];
    let nodes = [
        ("master", fixture.cluster.master.addr()),
        ("slave", fixture.cluster.slaves[0].addr()),
    ];
    for (tool, program, mode, evidence) in tools {
        for ((user, pass), account, password, _) in ROLE_ACCOUNTS {
            let server = fixture.cluster.master.server.addr();
            let target = |addr, user, pass| Target { addr, user, pass };
            let direct = program
                .run(target(server, account, password), "school", mode)
                .await;
            let (expected, direct_unscoped) = scoped(&direct);
            for fact in evidence {
                assert!(
                    expected.contains(fact),
                    "{tool} as {account}: {fact} in a full transcript:\n{direct}"
                );
            }
            eprintln!("{tool} directly as {account}: {direct_unscoped:?}");
            for (node, addr) in nodes {
                let through = program.run(target(addr, user, pass), "school", mode).await;
                let (seen, unscoped) = scoped(&through);
                eprintln!("{tool} through the {node} as {user}: {unscoped:?}");
                assert_same(
                    &format!("{tool} as {user} through the {node} (direct: {account})"),
                    &expected,
                    &seen,
                );
            }
        }
    }
}
