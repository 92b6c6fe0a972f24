//! The console in a real browser: Debian's chromium, driven headless by playwright-core
//! (tests/browser/console.js), against a demo cluster (`myrelay_demo`) of a master and two slaves. It
//! logs in, sees the master and both slaves with their lag, runs a SELECT of the school schema
//! on the master's console and sees its rows, and runs DDL on each slave's console and sees 1290.
//! Every console shows every node at its client address. Then, while sysbench loads the master
//! for 10 s, the master's plots have points and statements/s rises; slave1, stopped and started
//! again, leaves a gap in its lag series and two events. No script error or CSP violation.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use myrelay_demo::{Demo, DemoOptions};
use mysql_async::prelude::Queryable;

const CHROMIUM: &str = "/usr/bin/chromium";
const SELECT_SQL: &str = "SELECT s.id, s.name, c.name FROM school.student s \
     JOIN school.student_course sc ON sc.student_id = s.id \
     JOIN school.course c ON c.id = sc.course_id ORDER BY s.id, c.id";
const DDL_SQL: &str = "CREATE TABLE school.from_the_console (id INT)";
/// The load: sysbench's read/write mix on small tables, for 10 s.
const LOAD_SECS: u32 = 10;

/// sysbench's oltp_read_write against `node` (a demo node's client address), `action` being
/// `prepare` or `run`.
fn sysbench(node: std::net::SocketAddr, action: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("sysbench");
    c.args([
        "oltp_read_write",
        "--db-driver=mysql",
        "--mysql-host=127.0.0.1",
        &format!("--mysql-port={}", node.port()),
        &format!("--mysql-user={}", common::DB_USER),
        &format!("--mysql-password={}", common::DB_PASS),
        "--mysql-db=sbtest",
        "--tables=2",
        "--table-size=1000",
        "--threads=4",
        &format!("--time={LOAD_SECS}"),
        action,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    c
}

/// Answers a request of the browser script.
async fn say(answer: &mut tokio::process::ChildStdin, what: &str) {
    answer
        .write_all(format!("{what}\n").as_bytes())
        .await
        .expect("answer the script");
}

/// True when the browser and node are there; in CI their absence fails the test, elsewhere it
/// is skipped with the reason.
fn browser_available() -> bool {
    let missing: Vec<&str> = [
        (CHROMIUM, "chromium"),
        ("node", "node"),
        ("sysbench", "sysbench"),
    ]
    .into_iter()
    .filter(|(bin, _)| {
        Command::new(bin)
            .arg("--version")
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
    })
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "console browser test needs {} (sudo bash scripts/install-deps.sh browser bench; .ci/run does)",
        missing.join(" and ")
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipped: {why}");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium_shows_the_cluster_runs_a_select_and_refuses_ddl_on_slaves() {
    if !browser_available() {
        return;
    }
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let setup = Command::new("bash")
        .arg(browser_dir.join("setup.sh"))
        .status()
        .expect("run tests/browser/setup.sh");
    assert!(setup.success(), "installing playwright-core failed");

    let mut demo = Demo::start(&DemoOptions {
        slaves: 2,
        port: 0,
        data_dir: None,
        max_connections: 100,
        console_port: 0,
        db_user: common::DB_USER.into(),
        db_pass: common::DB_PASS.into(),
        app_pass: None,
        reader_pass: None,
        cluster_secret: None,
        history: true,
    })
    .await
    .expect("demo cluster");
    let consoles: Vec<String> = demo
        .nodes
        .iter()
        .filter_map(|n| n.admin_addr)
        .map(|a| format!("http://{a}"))
        .collect();
    assert_eq!(consoles.len(), 3);

    // What the page must show: the rows as the master itself returns them.
    let master = demo.nodes[0].addr;
    let mut conn = common::connect(master, common::DB_USER, common::DB_PASS).await;
    let rows: Vec<(u32, String, String)> = conn.query(SELECT_SQL).await.expect("select");
    assert!(rows.len() >= 3, "the school schema has rows: {rows:?}");
    let expected: Vec<[String; 3]> = rows
        .into_iter()
        .map(|(id, student, course)| [id.to_string(), student, course])
        .collect();
    conn.query_drop("CREATE DATABASE sbtest")
        .await
        .expect("sbtest");
    drop(conn);
    let prepared = sysbench(master, "prepare")
        .output()
        .await
        .expect("run sysbench");
    assert!(
        prepared.status.success(),
        "sysbench prepare: {}",
        String::from_utf8_lossy(&prepared.stderr)
    );
    let nodes: Vec<serde_json::Value> = demo
        .nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "name": n.shared.config.name,
                "address": n.addr.to_string(),
                "console": n.admin_addr.map(|a| a.to_string()),
            })
        })
        .collect();
    // Both slaves must be linked before the page is read (they are within moments of `ready`).
    for console in &consoles[1..] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while reqwest::get(format!("{console}/health"))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(std::time::Instant::now() < deadline, "{console} healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let script = browser_dir.join("console.js");
    let mut node = tokio::process::Command::new("node");
    node.arg(&script)
        .current_dir(&browser_dir)
        .env("CHROMIUM", CHROMIUM)
        .env("MASTER_CONSOLE", &consoles[0])
        .env("SLAVE_CONSOLES", consoles[1..].join(" "))
        .env("CONSOLE_USER", common::DB_USER)
        .env("CONSOLE_PASSWORD", common::DB_PASS)
        .env("SELECT_SQL", SELECT_SQL)
        .env(
            "EXPECT_ROWS",
            serde_json::to_string(&expected).expect("json"),
        )
        .env("DDL_SQL", DDL_SQL)
        .env("NODES", serde_json::Value::from(nodes).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Ok(dir) = std::env::var("MYRELAY_SCREENSHOTS") {
        node.env("SCREENSHOTS", dir);
    }
    let mut script = node.spawn().expect("run node");
    let mut answer = script.stdin.take().expect("stdin");
    let mut lines = BufReader::new(script.stdout.take().expect("stdout")).lines();
    let mut stdout = String::new();
    let mut load = None;
    // The script's requests, answered until it ends.
    let served = tokio::time::timeout(Duration::from_secs(150), async {
        while let Some(line) = lines.next_line().await.expect("script output") {
            stdout.push_str(&line);
            stdout.push('\n');
            match line.as_str() {
                "@load" => {
                    load = Some(sysbench(master, "run").spawn().expect("sysbench run"));
                    say(&mut answer, "loading").await;
                }
                "@kill slave1" => {
                    let down = async {
                        say(&mut answer, "killed").await;
                        // Down until the script has seen it so on the master's console.
                        while let Some(line) = lines.next_line().await.expect("script output") {
                            stdout.push_str(&line);
                            stdout.push('\n');
                            if line == "@restart" {
                                break;
                            }
                        }
                    };
                    demo.restart_node(1, down).await.expect("restart slave1");
                    say(&mut answer, "restarted").await;
                }
                _ => {}
            }
        }
    })
    .await;
    let output = tokio::time::timeout(Duration::from_secs(10), script.wait_with_output())
        .await
        .expect("browser script ended")
        .expect("node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        served.is_ok(),
        "the browser script took over 150 s:\n{stdout}\n{stderr}"
    );
    let load = load
        .expect("the script asked for the load")
        .wait_with_output()
        .await
        .expect("sysbench");
    assert!(
        load.status.success(),
        "sysbench run: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    // The refused DDL ran nowhere: the master (where it would have had to run) lacks the table.
    let mut conn = common::connect(master, common::DB_USER, common::DB_PASS).await;
    let tables: Vec<String> = conn.query("SHOW TABLES FROM school").await.expect("tables");
    drop(conn);
    demo.stop().await;
    assert!(
        output.status.success(),
        "browser script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    assert!(
        !tables.iter().any(|t| t == "from_the_console"),
        "{tables:?}"
    );
}
