//! Bad input and failures: malformed and oversized packets over raw TCP, a backend that dies and
//! comes back, a client that dies mid-query. The node keeps serving everyone else throughout.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN, DB_PASS, DB_USER, TestNode, connect, read_packet, write_packet};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;
use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use mysql_common::scramble::scramble_native;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// True when the node closes the connection within a few seconds (after any final packets).
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// Connects and answers the greeting as the admin user with `password` through `plugin`
/// (the token computed the way that plugin does); the node's reply is still unread.
async fn send_login(node: &TestNode, plugin: AuthPlugin<'static>, password: &str) -> TcpStream {
    send_login_to(node.addr(), plugin, password).await
}

/// Logs in as ADMIN (whose name and password are the backend's too) at `addr`: a node, or
/// the backend directly.
async fn send_login_to(
    addr: std::net::SocketAddr,
    plugin: AuthPlugin<'static>,
    password: &str,
) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let (_, greeting) = read_packet(&mut s).await.expect("greeting");
    let hs: HandshakePacket<'_> = ParseBuf(&greeting).parse(()).expect("parse greeting");
    let nonce = hs.nonce();
    let token = match plugin {
        AuthPlugin::CachingSha2Password => {
            mysql_common::scramble::scramble_sha256(&nonce, password.as_bytes())
                .expect("token")
                .to_vec()
        }
        _ => scramble_native(&nonce, password.as_bytes())
            .expect("token")
            .to_vec(),
    };
    let caps = CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_LONG_PASSWORD;
    let response = HandshakeResponse::new(
        Some(&token[..]),
        (10, 11, 0),
        Some(ADMIN.0.as_bytes()),
        None::<&[u8]>,
        Some(plugin),
        caps,
        None,
        16 * 1024 * 1024,
    );
    let mut payload = Vec::new();
    response.serialize(&mut payload);
    write_packet(&mut s, 1, &payload).await;
    s
}

/// A raw client logged in as the admin user, ready for the command phase.
async fn raw_login(node: &TestNode) -> TcpStream {
    raw_login_to(node.addr()).await
}

async fn raw_login_to(addr: std::net::SocketAddr) -> TcpStream {
    common::raw_login(addr, ADMIN, CapabilityFlags::empty(), 45).await
}

async fn still_serves(node: &TestNode) {
    let mut conn = node.connect(ADMIN).await;
    let v: Option<i32> = conn
        .query_first("SELECT 42")
        .await
        .expect("node still serves");
    assert_eq!(v, Some(42));
}

#[tokio::test]
async fn malformed_packets_close_only_that_connection() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let mut bystander = node.connect(ADMIN).await;

    // Garbage instead of a handshake response.
    let mut s = TcpStream::connect(node.addr()).await.expect("connect");
    read_packet(&mut s).await.expect("greeting");
    write_packet(&mut s, 1, b"\x01\x02garbage").await;
    assert!(
        closed(&mut s).await,
        "garbage handshake closes the connection"
    );

    // A command with an out-of-order sequence id.
    let mut s = raw_login(&node).await;
    write_packet(&mut s, 7, b"\x03SELECT 1").await;
    assert!(
        closed(&mut s).await,
        "out-of-order sequence id closes the connection"
    );

    // An empty packet (no command byte).
    let mut s = raw_login(&node).await;
    write_packet(&mut s, 0, b"").await;
    assert!(closed(&mut s).await, "empty packet closes the connection");

    // A header that promises more than is sent, then the client gives up.
    let mut s = raw_login(&node).await;
    s.write_all(&[0x20, 0, 0, 0, 0x03, b'S'])
        .await
        .expect("partial");
    drop(s);

    // An unknown command gets an error, and the connection stays usable.
    let mut s = raw_login(&node).await;
    write_packet(&mut s, 0, b"\x7f").await;
    let (_, err) = read_packet(&mut s).await.expect("error reply");
    assert_eq!(err[0], 0xFF);
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1047);
    write_packet(&mut s, 0, b"\x03SELECT 1").await;
    let (_, count) = read_packet(&mut s).await.expect("result");
    assert_eq!(count, vec![1]);

    let v: Option<i32> = bystander
        .query_first("SELECT 5")
        .await
        .expect("bystander unaffected");
    assert_eq!(v, Some(5));
    still_serves(&node).await;
}

#[tokio::test]
async fn oversized_packet_gets_1153_and_the_connection_closes() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let limit = node.node.shared.config.limits.max_allowed_packet;
    let mut s = raw_login(&node).await;
    // A logical packet larger than the limit, sent as max-size chunks.
    let mut query = vec![0x03];
    query.extend(std::iter::repeat_n(b' ', limit + 10));
    let chunk = 0xFF_FFFF;
    let mut seq = 0u8;
    let mut rest = &query[..];
    let writer = async {
        loop {
            let n = rest.len().min(chunk);
            let mut buf = (n as u32).to_le_bytes()[..3].to_vec();
            buf.push(seq);
            buf.extend_from_slice(&rest[..n]);
            if s.write_all(&buf).await.is_err() {
                break;
            }
            seq = seq.wrapping_add(1);
            rest = &rest[n..];
            if n < chunk {
                break;
            }
        }
    };
    writer.await;
    let (_, err) = read_packet(&mut s).await.expect("error packet");
    assert_eq!(err[0], 0xFF);
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1153);
    assert_eq!(&err[3..9], b"#08S01");
    assert!(closed(&mut s).await);
    still_serves(&node).await;

    // A query just under the limit still works.
    let mut conn = node.connect(ADMIN).await;
    let long = format!("SELECT '{}' AS s", "x".repeat(limit / 2));
    let s: Option<String> = conn.query_first(long).await.expect("large query");
    assert_eq!(s.map(|s| s.len()), Some(limit / 2));
}

#[tokio::test]
async fn a_backend_that_dies_gives_errors_and_the_node_recovers_when_it_returns() {
    let mut node = TestNode::start("m", NodeRole::Master).await;
    let backend_addr = node.server.addr().to_string();
    let mut conn = node.connect(ADMIN).await;
    conn.query_drop("SELECT 1").await.expect("works");
    node.server.kill().await;
    // The statement under way gets an error naming the backend; the session, whose state was
    // on the backend connection, ends with it, as a session on the server itself would.
    match conn.query_drop("SELECT 1").await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 2013, "{}", e.message);
            assert!(
                e.message.contains(&backend_addr),
                "names the backend: {}",
                e.message
            );
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(
        conn.query_drop("SELECT 1").await.is_err(),
        "the session ended"
    );
    // New clients are refused at connect with a clear error.
    let out = common::mariadb_cli(node.addr(), ADMIN.0, ADMIN.1, &[], "SELECT 1;").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // libmariadb refuses client-range codes from a server, so it gets the server-range twin
    // (which it reports inside its own 2002 when it asked for TLS first).
    assert!(
        stderr.contains("1429") && stderr.contains(&backend_addr),
        "{stderr}"
    );
    node.server.restart().await.expect("restart backend");
    let mut conn = node.connect(ADMIN).await;
    let v: Option<i32> = conn
        .query_first("SELECT 3")
        .await
        .expect("recovered without restart");
    assert_eq!(v, Some(3));
    still_serves(&node).await;
}

#[tokio::test]
async fn a_client_killed_mid_query_does_not_leave_the_query_running() {
    let node = TestNode::start("m", NodeRole::Master).await;
    let addr = node.addr();
    let mut cli = common::mariadb_command(addr, ADMIN.0, ADMIN.1)
        .args(["-e", "SELECT SLEEP(30) AS myrelay_probe"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mariadb");
    let mut direct = connect(node.server.addr(), DB_USER, DB_PASS).await;
    let running = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(30) AS myrelay_probe%'";
    common::wait_processlist(
        &mut direct,
        running,
        1,
        "the query never started on the backend",
    )
    .await;
    cli.kill().await.expect("kill -9 the client");
    common::wait_processlist(
        &mut direct,
        running,
        0,
        "the abandoned query is still running",
    )
    .await;
    still_serves(&node).await;
}

#[tokio::test]
async fn session_state_never_leaks_to_the_next_client() {
    let node = TestNode::start("m", NodeRole::Master).await;
    node.direct()
        .await
        .query_drop("CREATE DATABASE leak; CREATE TABLE leak.t (id INT)")
        .await
        .expect("setup");
    for round in 0..20 {
        let mut conn = node.connect(ADMIN).await;
        let state: Option<(Option<String>, Option<i64>, i64)> = conn
            .query_first("SELECT DATABASE(), @leak, @@session.sql_select_limit < 1000")
            .await
            .expect("state");
        assert_eq!(state, Some((None, None, 0)), "round {round}: fresh session");
        let temp: Result<Vec<i32>, _> = conn.query("SELECT * FROM leak.tmp").await;
        assert!(
            temp.is_err(),
            "round {round}: no temporary table from an earlier client"
        );
        conn.query_drop("USE leak").await.expect("use");
        conn.query_drop("SET @leak = 1, SESSION sql_select_limit = 5")
            .await
            .expect("set");
        conn.query_drop("CREATE TEMPORARY TABLE leak.tmp (id INT)")
            .await
            .expect("temp");
        conn.query_drop("BEGIN").await.expect("begin");
        conn.query_drop("INSERT INTO leak.t VALUES (1)")
            .await
            .expect("insert");
        // Leave without COMMIT: the transaction must not survive into another session.
        drop(conn);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n: Option<i64> = node
        .direct()
        .await
        .query_first("SELECT COUNT(*) FROM leak.t")
        .await
        .expect("count");
    assert_eq!(n, Some(0), "uncommitted inserts were rolled back");
}

#[tokio::test]
async fn set_option_statistics_and_reset_connection() {
    let node = TestNode::start("m", NodeRole::Master).await;
    // This raw client logged in without CLIENT_MULTI_STATEMENTS.
    let mut s = raw_login(&node).await;
    write_packet(&mut s, 0, b"\x03SELECT 1; SELECT 2").await;
    let (_, err) = read_packet(&mut s).await.expect("reply");
    assert_eq!((err[0], u16::from_le_bytes([err[1], err[2]])), (0xFF, 1064));
    // COM_SET_OPTION turns multi-statements on; the server answers with an EOF packet.
    write_packet(&mut s, 0, b"\x1b\x00\x00").await;
    let (_, eof) = read_packet(&mut s).await.expect("eof");
    assert_eq!(eof[0], 0xFE);
    write_packet(&mut s, 0, b"\x03SELECT 1; SELECT 2").await;
    let (_, count) = read_packet(&mut s).await.expect("first result");
    assert_eq!(count, vec![1]);
    drop(s);
    // COM_STATISTICS: the backend's status line.
    for addr in [node.addr(), node.server.addr()] {
        let mut s = raw_login_to(addr).await;
        write_packet(&mut s, 0, b"\x09").await;
        let (_, stats) = read_packet(&mut s).await.expect("statistics");
        let stats = String::from_utf8_lossy(&stats);
        assert!(
            stats.starts_with("Uptime: ")
                && stats.contains("Questions: ")
                && stats.contains("Open tables: "),
            "{stats}"
        );
    }
    // COM_RESET_CONNECTION: variables and an open transaction are gone, as on the server
    // (which keeps the current database).
    node.direct()
        .await
        .query_drop("CREATE DATABASE rc; CREATE TABLE rc.t (id INT)")
        .await
        .expect("setup");
    let mut states = Vec::new();
    for mut conn in [
        node.connect(ADMIN).await,
        connect(node.server.addr(), DB_USER, DB_PASS).await,
    ] {
        conn.query_drop("USE rc").await.expect("use");
        conn.query_drop("SET @kept = 1").await.expect("set");
        conn.query_drop("BEGIN").await.expect("begin");
        conn.query_drop("INSERT INTO t VALUES (1)")
            .await
            .expect("insert");
        conn.reset().await.expect("COM_RESET_CONNECTION");
        let state: Option<(Option<String>, Option<i64>)> = conn
            .query_first("SELECT DATABASE(), @kept")
            .await
            .expect("state");
        let n: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM rc.t")
            .await
            .expect("count");
        assert_eq!(n, Some(0), "the open transaction was rolled back");
        states.push(state);
    }
    assert_eq!(states[0], states[1], "through the node as direct");
    assert_eq!(states[0], Some((Some("rc".into()), None)));
}

#[tokio::test]
async fn caching_sha2_password_clients_take_the_fast_path() {
    let node = TestNode::start("m", NodeRole::Master).await;
    for (password, accepted) in [(ADMIN.1, true), ("wrong", false)] {
        let mut s = send_login(&node, AuthPlugin::CachingSha2Password, password).await;
        let (seq, reply) = read_packet(&mut s).await.expect("reply");
        if accepted {
            assert_eq!(
                (seq, reply.as_slice()),
                (2, &[0x01, 0x03][..]),
                "fast auth success"
            );
            let (seq, ok) = read_packet(&mut s).await.expect("ok");
            assert_eq!((seq, ok[0]), (3, 0x00));
            write_packet(&mut s, 0, b"\x03SELECT 1").await;
            let (_, count) = read_packet(&mut s).await.expect("result");
            assert_eq!(count, vec![1]);
        } else {
            assert_eq!(reply[0], 0xFF);
            assert_eq!(u16::from_le_bytes([reply[1], reply[2]]), 1045);
        }
    }
}

#[tokio::test]
async fn field_list_answers_the_tables_columns() {
    let node = TestNode::start("m", NodeRole::Master).await;
    node.direct()
        .await
        .query_drop("CREATE DATABASE fl; CREATE TABLE fl.t (id INT PRIMARY KEY, name VARCHAR(20))")
        .await
        .expect("setup");
    // The backend's own answer, packet for packet.
    let mut answers = Vec::new();
    for addr in [node.addr(), node.server.addr()] {
        let mut s = raw_login_to(addr).await;
        write_packet(&mut s, 0, b"\x02fl").await;
        let (_, ok) = read_packet(&mut s).await.expect("init db");
        assert_eq!(ok[0], 0x00);
        write_packet(&mut s, 0, b"\x04t\x00").await;
        let mut packets = Vec::new();
        loop {
            let (_, p) = read_packet(&mut s).await.expect("field");
            if p[0] == 0xFE && p.len() < 9 {
                break;
            }
            packets.push(p);
        }
        write_packet(&mut s, 0, b"\x04missing\x00").await;
        let (_, err) = read_packet(&mut s).await.expect("error");
        assert_eq!((err[0], u16::from_le_bytes([err[1], err[2]])), (0xFF, 1146));
        answers.push(packets);
    }
    assert_eq!(answers[0], answers[1], "through the node as direct");
    let names: Vec<String> = answers[0]
        .iter()
        .map(|p| {
            let column: mysql_async::Column = ParseBuf(p).parse(()).expect("column definition");
            assert_eq!(column.org_table_str(), "t");
            column.name_str().into_owned()
        })
        .collect();
    assert_eq!(names, vec!["id", "name"]);
}

/// Prepares `SELECT LENGTH(?)` at `addr`, sends it long data twice (`n` bytes in three chunks,
/// then 1000 bytes), executing it after each; returns every reply.
async fn long_data_replies(addr: std::net::SocketAddr, n: usize) -> Vec<Vec<u8>> {
    let mut s = raw_login_to(addr).await;
    write_packet(&mut s, 0, b"\x16SELECT LENGTH(?)").await;
    let (_, ok) = read_packet(&mut s).await.expect("prepare ok");
    assert_eq!(ok[0], 0x00);
    let id = [ok[1], ok[2], ok[3], ok[4]];
    // One parameter definition and one column definition follow, each with an EOF.
    for _ in 0..4 {
        read_packet(&mut s).await.expect("definitions");
    }
    let mut execute = vec![0x17];
    execute.extend_from_slice(&id);
    execute.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 0xfc, 0]);
    let long_data = |byte: u8, n: usize| {
        let mut chunk = vec![0x18];
        chunk.extend_from_slice(&id);
        chunk.extend_from_slice(&[0, 0]);
        chunk.extend(std::iter::repeat_n(byte, n));
        chunk
    };
    let mut replies = Vec::new();
    // Without CLIENT_DEPRECATE_EOF: column count, definition, EOF, row, EOF.
    write_packet(&mut s, 0, &long_data(b'a', 1000)).await;
    write_packet(&mut s, 0, &execute).await;
    for _ in 0..5 {
        replies.push(read_packet(&mut s).await.expect("result").1);
    }
    for _ in 0..3 {
        write_packet(&mut s, 0, &long_data(b'b', n / 3)).await;
    }
    write_packet(&mut s, 0, &execute).await;
    for _ in 0..5 {
        replies.push(read_packet(&mut s).await.expect("large result").1);
    }
    write_packet(&mut s, 0, &long_data(b'a', 1000)).await;
    write_packet(&mut s, 0, &execute).await;
    for _ in 0..5 {
        replies.push(read_packet(&mut s).await.expect("result again").1);
    }
    replies
}

#[tokio::test]
async fn long_data_reaches_the_backend_as_sent() {
    let node = TestNode::start("m", NodeRole::Master).await;
    // Long data accumulates on the backend (the node holds none of it), as direct.
    let n = 3 << 20;
    let through = long_data_replies(node.addr(), n).await;
    let direct = long_data_replies(node.server.addr(), n).await;
    assert_eq!(through, direct, "through the node as direct");
    // The row: 0x00, NULL bitmap, then LENGTH(?) as a 4-byte LONG.
    assert_eq!(through[3].as_slice(), &[0, 0, 0xE8, 0x03, 0, 0]);
    let large = u32::try_from(n).expect("fits").to_le_bytes();
    assert_eq!(through[8].as_slice(), &[&[0, 0][..], &large].concat());
    assert_eq!(
        through[13].as_slice(),
        &[0, 0, 0xE8, 0x03, 0, 0],
        "long data starts over"
    );
}
