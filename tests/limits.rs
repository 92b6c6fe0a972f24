//! `[limits]` that protect a node from its clients: connections per node (1040) and per user
//! (1203), the handshake and idle timeouts.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN, APP, TestNode};
use myrelay::config::NodeRole;
use mysql_async::prelude::Queryable;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The server error of a failed login: (code, state).
async fn login_error(node: &TestNode, (user, pass): (&str, &str)) -> (u16, String, String) {
    match mysql_async::Conn::new(common::opts(node.addr(), user, pass)).await {
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        Err(other) => panic!("expected a server error, got {other}"),
        Ok(_) => panic!("{user} was let in"),
    }
}

/// Waits until the node counts `n` logged-in clients.
async fn clients_become(node: &TestNode, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while node.node.shared.clients() != n {
        assert!(
            Instant::now() < deadline,
            "{} clients, expected {n}",
            node.node.shared.clients()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn node_wide_max_connections_answers_1040() {
    let node = TestNode::start_with("m", NodeRole::Master, |c| c.limits.max_connections = 2).await;
    let first = node.connect(APP).await;
    let _second = node.connect(ADMIN).await;
    // Sent in place of the greeting, before any capabilities are agreed, so clients read the
    // SQLSTATE (08004) as part of the message, as with MySQL's own 1040.
    let (code, _, message) = login_error(&node, ADMIN).await;
    assert_eq!(code, 1040, "{message}");
    assert!(
        message.contains("Too many connections") && message.contains("at most 2"),
        "{message}"
    );
    // A slot given back is a slot to take.
    drop(first);
    clients_become(&node, 1, Duration::from_secs(5)).await;
    let mut again = node.connect(APP).await;
    let one: Option<i32> = again.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn max_connections_per_user_answers_1203_and_spares_other_users() {
    let node = TestNode::start_with("m", NodeRole::Master, |c| {
        c.limits.max_connections_per_user = 2
    })
    .await;
    let first = node.connect(APP).await;
    let _second = node.connect(APP).await;
    let (code, state, message) = login_error(&node, APP).await;
    assert_eq!((code, state.as_str()), (1203, "42000"), "{message}");
    assert!(
        message.contains("app") && message.contains("max_connections_per_user"),
        "{message}"
    );
    // Other users have slots of their own.
    let mut admin = node.connect(ADMIN).await;
    let _admin2 = node.connect(ADMIN).await;
    let one: Option<i32> = admin.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
    // A failed login does not hold a slot, a closed connection gives its slot back.
    drop(first);
    clients_become(&node, 3, Duration::from_secs(5)).await;
    let mut again = node.connect(APP).await;
    let one: Option<i32> = again.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_dropped_after_the_handshake_timeout() {
    let node = TestNode::start_with("m", NodeRole::Master, |c| {
        c.limits.handshake_timeout = Duration::from_secs(1)
    })
    .await;
    let mut silent = TcpStream::connect(node.addr()).await.expect("connect");
    let started = Instant::now();
    // The greeting arrives, then the node waits for a handshake response that never comes.
    let mut buf = vec![0u8; 4096];
    let n = silent.read(&mut buf).await.expect("greeting");
    assert!(n > 4, "greeting");
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match silent.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    let waited = started.elapsed();
    assert!(end.is_ok(), "the node kept a silent client for 10 s");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "dropped after {waited:?}"
    );
    // A client that does not even read the greeting is dropped as well; a real one gets in.
    let mut mute = TcpStream::connect(node.addr()).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), mute.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "mute client still connected");
    let mut conn = node.connect(APP).await;
    let one: Option<i32> = conn.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn an_idle_client_is_disconnected_and_its_transaction_rolls_back() {
    let node = TestNode::start_with("m", NodeRole::Master, |c| {
        c.limits.idle_timeout = Some(Duration::from_secs(1))
    })
    .await;
    node.direct()
        .await
        .query_drop("CREATE DATABASE idle; CREATE TABLE idle.t (id INT)")
        .await
        .expect("setup");
    // A busy client is not idle: commands more often than the timeout keep it.
    let mut busy = node.connect(APP).await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        busy.query_drop("SELECT 1")
            .await
            .expect("busy client served");
    }
    drop(busy);
    clients_become(&node, 0, Duration::from_secs(5)).await;
    // An idle one is dropped, inside a transaction too, which rolls back.
    let mut idle = node.connect(APP).await;
    idle.query_drop("BEGIN").await.expect("begin");
    idle.query_drop("INSERT INTO idle.t VALUES (1)")
        .await
        .expect("insert");
    clients_become(&node, 1, Duration::from_secs(1)).await;
    clients_become(&node, 0, Duration::from_secs(5)).await;
    match idle.query_drop("COMMIT").await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 4031, "{}", e.message);
            assert!(e.message.contains("idle_timeout_secs"), "{}", e.message);
        }
        Err(_) => {} // the connection was gone before the error could be read
        Ok(()) => panic!("an idle client's COMMIT went through"),
    }
    let n: Option<i64> = node
        .direct()
        .await
        .query_first("SELECT COUNT(*) FROM idle.t")
        .await
        .expect("count");
    assert_eq!(n, Some(0), "the idle client's transaction rolled back");
}
