//! The node as a faithful relay: what a client sees through a node is what it sees directly,
//! also outside plain result sets. Each test runs the same exchange against the node and
//! against its backend directly, in the same test, and compares.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{ADMIN, APP, DB_PASS, DB_USER, READER, TestNode, connect, read_packet, write_packet};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;
use mysql_common::constants::{CapabilityFlags, ColumnType};
use mysql_common::io::ParseBuf;
use tokio::net::TcpStream;

/// Logs in as ADMIN (the backend's account too) at `addr` with `extra` capabilities.
async fn login(addr: SocketAddr, extra: CapabilityFlags) -> TcpStream {
    common::raw_login(addr, ADMIN, extra, 45).await
}

/// Reads one packet, failing the test after 10 s instead of hanging.
async fn next(s: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(Duration::from_secs(10), read_packet(s))
        .await
        .expect("a reply within 10 s")
        .expect("a packet")
        .1
}

/// Reads a result set through its end (EOF or OK-style end after the rows), or an error.
async fn result_set(s: &mut TcpStream, deprecate_eof: bool) -> Vec<Vec<u8>> {
    let mut packets = vec![next(s).await];
    if matches!(packets[0][0], 0x00 | 0xff) {
        return packets;
    }
    let columns = usize::from(packets[0][0]);
    for _ in 0..columns + usize::from(!deprecate_eof) {
        packets.push(next(s).await);
    }
    if packets
        .last()
        .is_some_and(|p| p[0] == 0xfe && p.len() < 9 && p[3] & 0x40 != 0)
    {
        return packets; // a cursor is open: no rows yet
    }
    loop {
        let p = next(s).await;
        let end = matches!(p[0], 0xfe | 0xff);
        packets.push(p);
        if end {
            return packets;
        }
    }
}

/// COM_STMT_PREPARE of `sql`; returns the statement id and every packet of the reply.
async fn prepare(s: &mut TcpStream, sql: &str, deprecate_eof: bool) -> ([u8; 4], Vec<Vec<u8>>) {
    write_packet(s, 0, &[&[0x16][..], sql.as_bytes()].concat()).await;
    let ok = next(s).await;
    assert_eq!(ok[0], 0x00, "prepared: {ok:?}");
    let columns = usize::from(u16::from_le_bytes([ok[5], ok[6]]));
    let params = usize::from(u16::from_le_bytes([ok[7], ok[8]]));
    let id = [ok[1], ok[2], ok[3], ok[4]];
    let mut packets = vec![ok];
    for n in [params, columns] {
        for _ in 0..n + usize::from(n > 0 && !deprecate_eof) {
            packets.push(next(s).await);
        }
    }
    // The statement id is the backend's; it differs between two connections only by number.
    packets[0][1..5].fill(0);
    (id, packets)
}

#[tokio::test]
async fn prepared_statements_keep_the_clients_parameter_types() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut seen = Vec::new();
    for addr in [node.addr(), node.server.addr()] {
        let mut s = login(addr, CapabilityFlags::empty()).await;
        let (id, mut packets) = prepare(&mut s, "SELECT ?, ?", false).await;
        // TINYINT 5 and CHAR 'ab', typed as go-sql-driver types them.
        let mut execute = vec![0x17];
        execute.extend_from_slice(&id);
        execute.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1]);
        execute.extend_from_slice(&[ColumnType::MYSQL_TYPE_TINY as u8, 0]);
        execute.extend_from_slice(&[ColumnType::MYSQL_TYPE_STRING as u8, 0]);
        execute.extend_from_slice(&[5, 2, b'a', b'b']);
        write_packet(&mut s, 0, &execute).await;
        packets.extend(result_set(&mut s, false).await);
        seen.push(packets);
    }
    assert_eq!(seen[0], seen[1], "through the node as direct");
    // The prepare's 7 packets (OK, two parameters, EOF, two columns, EOF), then the result's
    // column count and first definition.
    let first: mysql_async::Column = ParseBuf(&seen[0][8]).parse(()).expect("definition");
    assert_eq!(first.column_type(), ColumnType::MYSQL_TYPE_TINY);
}

#[tokio::test]
async fn cursors_fetch_rows_as_direct() {
    let node = TestNode::start("m", NodeRole::Master).await;
    for deprecate_eof in [false, true] {
        let extra = if deprecate_eof {
            CapabilityFlags::CLIENT_DEPRECATE_EOF
        } else {
            CapabilityFlags::empty()
        };
        let mut seen = Vec::new();
        for addr in [node.addr(), node.server.addr()] {
            let mut s = login(addr, extra).await;
            write_packet(&mut s, 0, b"\x02mysql").await;
            assert_eq!(next(&mut s).await[0], 0x00, "database selected");
            let (id, mut packets) =
                prepare(&mut s, "SELECT seq FROM seq_1_to_10", deprecate_eof).await;
            // CURSOR_TYPE_READ_ONLY, then fetches of 4 rows until the last.
            write_packet(&mut s, 0, &[&[0x17][..], &id, &[1, 1, 0, 0, 0]].concat()).await;
            packets.extend(result_set(&mut s, deprecate_eof).await);
            for _ in 0..3 {
                write_packet(&mut s, 0, &[&[0x1c][..], &id, &[4, 0, 0, 0]].concat()).await;
                loop {
                    let p = next(&mut s).await;
                    let end = matches!(p[0], 0xfe | 0xff);
                    packets.push(p);
                    if end {
                        break;
                    }
                }
            }
            seen.push(packets);
        }
        assert_eq!(
            seen[0], seen[1],
            "deprecate_eof={deprecate_eof}: through the node as direct"
        );
        let rows = seen[0]
            .iter()
            .filter(|p| p[0] == 0x00 && p.len() == 10)
            .count();
        assert_eq!(rows, 10, "every row fetched once");
    }
}

/// `SELECT CONNECTION_ID()` on `conn`.
async fn connection_id(conn: &mut mysql_async::Conn) -> u32 {
    conn.query_first("SELECT CONNECTION_ID()")
        .await
        .expect("id")
        .expect("row")
}

#[tokio::test]
async fn kill_by_the_handshake_id() {
    let node = TestNode::start("m", NodeRole::Master).await;
    // The id a client gets at handshake is its CONNECTION_ID(), as direct.
    for (addr, user) in [(node.addr(), APP), (node.server.addr(), (DB_USER, DB_PASS))] {
        let mut victim = connect(addr, user.0, user.1).await;
        let id = victim.id();
        assert_eq!(connection_id(&mut victim).await, id, "{addr}");
        let mut killer = connect(addr, user.0, user.1).await;
        killer
            .query_drop(format!("KILL {id}"))
            .await
            .expect("a user kills its own connection");
        assert!(
            victim.query_drop("SELECT 1").await.is_err(),
            "{addr}: killed"
        );
    }
    // Through a node, another user's connection is not a non-admin's to kill.
    let mut victim = node.connect(APP).await;
    let id = victim.id();
    let mut other = node.connect(READER).await;
    let (code, _, message) = common::expect_error(&mut other, &format!("KILL {id}")).await;
    assert!(code != 0, "{message}");
    victim.query_drop("SELECT 1").await.expect("still alive");
    // COM_PROCESS_KILL (old mysql_kill) by the handshake id, and an admin may kill anyone's.
    let mut s = login(node.addr(), CapabilityFlags::empty()).await;
    write_packet(&mut s, 0, &[&[0x0c][..], &id.to_le_bytes()].concat()).await;
    assert_eq!(next(&mut s).await[0], 0x00, "COM_PROCESS_KILL answered OK");
    assert!(
        victim.query_drop("SELECT 1").await.is_err(),
        "killed by admin"
    );
}

/// Runs `mariadb -e "SELECT SLEEP(8)"` at `addr`, sends it SIGINT once the backend runs the
/// query, and returns how long it took to exit after that and what it printed.
async fn interrupted_cli(addr: SocketAddr, backend: SocketAddr) -> (Duration, String) {
    let cli = common::mariadb_command(addr, ADMIN.0, ADMIN.1)
        .args(["--skip-ssl", "-e", "SELECT SLEEP(8)"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mariadb CLI");
    let mut direct = connect(backend, DB_USER, DB_PASS).await;
    let running = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                   WHERE INFO = 'SELECT SLEEP(8)'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while direct
        .query_first::<i64, _>(running)
        .await
        .expect("processlist")
        != Some(1)
    {
        assert!(Instant::now() < deadline, "the query never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = cli.id().expect("pid").to_string();
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(5), cli.wait_with_output())
        .await
        .expect("the CLI exits")
        .expect("output");
    let took = sent.elapsed();
    assert_eq!(
        direct
            .query_first::<i64, _>(running)
            .await
            .expect("processlist"),
        Some(0),
        "the query is gone from the backend"
    );
    (took, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn ctrl_c_in_the_cli_stops_the_running_query() {
    let node = TestNode::start("m", NodeRole::Master).await;
    for addr in [node.addr(), node.server.addr()] {
        let (took, stderr) = interrupted_cli(addr, node.server.addr()).await;
        assert!(
            took < Duration::from_secs(2),
            "{addr}: exited after {took:?}"
        );
        assert!(stderr.contains("ERROR 1317"), "{addr}: {stderr}");
    }
}

#[tokio::test]
async fn a_failed_change_user_keeps_the_connection_and_its_user() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut users = Vec::new();
    for addr in [node.addr(), node.server.addr()] {
        let mut conn = connect(addr, ADMIN.0, ADMIN.1).await;
        let wrong = mysql_async::ChangeUserOpts::default()
            .with_user(Some(APP.0.into()))
            .with_pass(Some("wrong".into()));
        let refused = conn.change_user(wrong).await;
        assert!(
            matches!(&refused, Err(mysql_async::Error::Server(e)) if e.code == 1045),
            "{addr}: {refused:?}"
        );
        // Still connected, still the old user: an admin statement runs.
        conn.query_drop("CREATE DATABASE IF NOT EXISTS kept")
            .await
            .expect("still the admin user");
        // The account's name: its host part is the backend's view of the node (a socket).
        let user: Option<String> = conn
            .query_first("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
            .await
            .expect("usable");
        users.push(user);
    }
    assert_eq!(users[0], users[1], "through the node as direct");
}

#[tokio::test]
async fn the_cli_compresses_through_the_node() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let sql = "status\nSELECT LENGTH(REPEAT('x', 300000)) AS n, MD5(REPEAT('ab', 200000)) AS m;\n";
    let mut transcripts = Vec::new();
    for addr in [node.addr(), node.server.addr()] {
        let out =
            common::mariadb_cli(addr, ADMIN.0, ADMIN.1, &["--compress", "--skip-ssl"], sql).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("Protocol:\t\tCompressed"), "{addr}: {text}");
        transcripts.push(
            text.lines()
                .filter(|l| l.starts_with("n\t") || l.starts_with("300000\t"))
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(transcripts[0], transcripts[1]);
    assert_eq!(transcripts[0].len(), 2, "{:?}", transcripts[0]);
}

#[tokio::test]
async fn statistics_come_from_the_backend() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut s = login(node.addr(), CapabilityFlags::empty()).await;
    write_packet(&mut s, 0, b"\x09").await;
    let through = String::from_utf8_lossy(&next(&mut s).await).into_owned();
    let mut s = login(node.server.addr(), CapabilityFlags::empty()).await;
    write_packet(&mut s, 0, b"\x09").await;
    let direct = String::from_utf8_lossy(&next(&mut s).await).into_owned();
    let fields = |line: &str| {
        line.split("  ")
            .map(|f| f.split(':').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(fields(&through), fields(&direct), "{through} / {direct}");
    // The backend's uptime (the two lines are read moments apart).
    let uptime = |line: &str| -> u64 {
        line.strip_prefix("Uptime: ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no uptime in {line:?}"))
    };
    assert!(
        uptime(&through).abs_diff(uptime(&direct)) <= 1,
        "{through} / {direct}"
    );
}

#[tokio::test]
async fn row_count_found_rows_and_warnings_as_direct() {
    let node = TestNode::start("m", NodeRole::Master).await;
    node.direct()
        .await
        .query_drop("CREATE DATABASE rc; CREATE TABLE rc.t (id INT)")
        .await
        .expect("setup");
    let script = [
        "DROP TABLE IF EXISTS rc.t",
        "CREATE TABLE rc.t (id INT PRIMARY KEY, v TINYINT)",
        "INSERT INTO rc.t VALUES (1, 1), (2, 2), (3, 3)",
        "SELECT ROW_COUNT()",
        "UPDATE rc.t SET v = v WHERE id < 3",
        "SELECT ROW_COUNT()",
        "SELECT SQL_CALC_FOUND_ROWS id FROM rc.t LIMIT 1",
        "SELECT FOUND_ROWS()",
        "INSERT IGNORE INTO rc.t VALUES (4, 1000)",
        "SHOW WARNINGS",
        "SELECT @@warning_count",
        "DELETE FROM rc.t WHERE id > 3",
    ];
    let mut transcripts = Vec::new();
    for (addr, found_rows) in [
        (node.addr(), false),
        (node.server.addr(), false),
        (node.addr(), true),
        (node.server.addr(), true),
    ] {
        let opts = mysql_async::OptsBuilder::from_opts(common::opts(addr, ADMIN.0, ADMIN.1))
            .client_found_rows(found_rows);
        let mut conn = mysql_async::Conn::new(opts).await.expect("connect");
        let mut lines = Vec::new();
        for sql in script {
            let rows: Vec<mysql_async::Row> = conn.query(sql).await.expect(sql);
            let values: Vec<Vec<mysql_async::Value>> =
                rows.into_iter().map(|r| r.unwrap()).collect();
            lines.push(format!(
                "{sql}: {values:?} affected={} warnings={}",
                conn.affected_rows(),
                conn.get_warnings()
            ));
        }
        transcripts.push(lines);
    }
    assert_eq!(transcripts[0], transcripts[1], "through the node as direct");
    assert_eq!(transcripts[2], transcripts[3], "with CLIENT_FOUND_ROWS too");
    assert_ne!(
        transcripts[0], transcripts[2],
        "CLIENT_FOUND_ROWS changes affected rows"
    );
}

#[tokio::test]
async fn the_nodes_own_results_follow_the_clients_metadata_format() {
    let node = TestNode::start("m", NodeRole::Master).await;
    // The CLI negotiates MariaDB's extended metadata; SHOW MYRELAY STATUS is the node's own.
    let out = common::mariadb_cli(
        node.addr(),
        ADMIN.0,
        ADMIN.1,
        &["--column-type-info", "--table"],
        "SHOW MYRELAY STATUS;\n",
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Field   1:  `node`") && stdout.contains("standalone"),
        "{stdout}"
    );
}
