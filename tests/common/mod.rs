//! Test harness: real throwaway MariaDB backends (never the shared server on 3306) and in-process
//! nodes on free ports, plus helpers to reach them with mysql_async and the `mariadb` CLI.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Output;

use myrelay::config::{Limits, NodeConfig, NodeRole, User, UserRole};
use myrelay::node::{self, NodeHandle};
use myrelay::replication::gtid::Position;
use myrelay_demo::launcher::{BackendSpec, ThrowawayServer};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

/// Backend account of every test server.
pub const DB_USER: &str = "root";
/// Its password.
pub const DB_PASS: &str = "rootroot";
/// Proxy users: (name, password, role).
pub const ADMIN: (&str, &str) = ("root", "rootroot");
pub const APP: (&str, &str) = ("app", "apppass");
pub const READER: (&str, &str) = ("reader", "readpass");
/// An admin whose admin rights hold only from 10.0.0.0/8, so from the tests it acts as `app`.
pub const REMOTE_ADMIN: (&str, &str) = ("ops", "opspass");

/// Server ids of this test process's backends: unique, as replication needs.
static NEXT_SERVER_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Starts a throwaway backend (binlog on, a server id of its own).
pub async fn backend() -> ThrowawayServer {
    backend_with_plugins(None).await
}

/// Starts a throwaway backend that loads plugins and UDF libraries from `plugin_dir` (`None`:
/// the server's own directory).
pub async fn backend_with_plugins(plugin_dir: Option<std::path::PathBuf>) -> ThrowawayServer {
    ThrowawayServer::start(BackendSpec {
        user: DB_USER.into(),
        password: DB_PASS.into(),
        data_dir: None,
        port: 0,
        server_id: NEXT_SERVER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        plugin_dir,
    })
    .await
    .expect("start throwaway mariadbd")
}

fn user(name: &str, password: &str, role: UserRole, admin_from: &[&str]) -> (String, User) {
    (
        name.to_string(),
        User {
            name: name.to_string(),
            role,
            password: password.to_string(),
            admin_from: admin_from
                .iter()
                .map(|n| n.parse().expect("network"))
                .collect(),
            require_tls: false,
            databases: None,
        },
    )
}

/// A node config on a free port in front of `backend`.
pub fn node_config(name: &str, role: NodeRole, backend: SocketAddr) -> NodeConfig {
    let users: BTreeMap<String, User> = [
        user(ADMIN.0, ADMIN.1, UserRole::Admin, &[]),
        user(APP.0, APP.1, UserRole::App, &[]),
        user(READER.0, READER.1, UserRole::Readonly, &[]),
        user(
            REMOTE_ADMIN.0,
            REMOTE_ADMIN.1,
            UserRole::Admin,
            &["10.0.0.0/8"],
        ),
    ]
    .into_iter()
    .collect();
    NodeConfig {
        name: name.into(),
        role,
        listen: "127.0.0.1:0".parse().expect("addr"),
        backend,
        backend_user: DB_USER.into(),
        backend_password: DB_PASS.into(),
        master: (role == NodeRole::Slave).then(|| "127.0.0.1:3999".to_string()),
        cluster_secret: None,
        users,
        limits: Limits {
            max_allowed_packet: 4 * 1024 * 1024,
            max_connections: 100,
            backend_pool_size: 50,
            max_local_infile: 0,
            shutdown_timeout: std::time::Duration::from_secs(30),
            ..Limits::default()
        },
        replication: None,
        tls: None,
        admin: None,
        safe_udfs: Vec::new(),
    }
}

/// A node and its own backend.
pub struct TestNode {
    pub node: NodeHandle,
    pub server: ThrowawayServer,
}

impl TestNode {
    /// A backend plus a node of `role` in front of it.
    pub async fn start(name: &str, role: NodeRole) -> TestNode {
        TestNode::start_with(name, role, |_| {}).await
    }

    /// Like `start`, with the node's config passed through `configure` first.
    pub async fn start_with(
        name: &str,
        role: NodeRole,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> TestNode {
        TestNode::start_on(backend().await, name, role, configure).await
    }

    /// Like `start_with`, its backend loading plugins and UDF libraries from `plugin_dir`.
    pub async fn start_with_plugins(
        name: &str,
        role: NodeRole,
        plugin_dir: &std::path::Path,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> TestNode {
        let server = backend_with_plugins(Some(plugin_dir.to_path_buf())).await;
        TestNode::start_on(server, name, role, configure).await
    }

    /// A node of `role` in front of `server`, its config passed through `configure` first.
    async fn start_on(
        server: ThrowawayServer,
        name: &str,
        role: NodeRole,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> TestNode {
        let mut config = node_config(name, role, server.addr());
        configure(&mut config);
        let node = node::start(config).await.expect("start node");
        TestNode { node, server }
    }

    /// The node's client address.
    pub fn addr(&self) -> SocketAddr {
        self.node.addr
    }

    /// A connection through the node.
    pub async fn connect(&self, (user, pass): (&str, &str)) -> Conn {
        connect(self.addr(), user, pass).await
    }

    /// A connection straight to the backend, bypassing the node.
    pub async fn direct(&self) -> Conn {
        connect(self.server.addr(), DB_USER, DB_PASS).await
    }
}

/// mysql_async options for `addr` (TCP only, never a socket).
pub fn opts(addr: SocketAddr, user: &str, pass: &str) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some(user))
        .pass(Some(pass))
        .prefer_socket(false)
        .into()
}

/// Connects with mysql_async, panicking with the error if it fails.
pub async fn connect(addr: SocketAddr, user: &str, pass: &str) -> Conn {
    Conn::new(opts(addr, user, pass))
        .await
        .unwrap_or_else(|e| panic!("connect to {addr} as {user}: {e}"))
}

/// The server error of a failed statement: (code, state, message).
pub fn server_error(r: mysql_async::Result<()>) -> (u16, String, String) {
    match r {
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Runs a statement and returns its server error.
pub async fn expect_error(conn: &mut Conn, sql: &str) -> (u16, String, String) {
    server_error(conn.query_drop(sql).await)
}

/// Runs the stock `mariadb` CLI against `addr` with `sql` on stdin. Async, because the node under
/// test runs on the same runtime and must keep serving while the CLI waits for it.
pub async fn mariadb_cli(
    addr: SocketAddr,
    user: &str,
    pass: &str,
    args: &[&str],
    sql: &str,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = mariadb_command(addr, user, pass)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run the mariadb CLI");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(sql.as_bytes())
            .await
            .expect("write sql to mariadb");
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("mariadb finishes within 60 s")
        .expect("mariadb output")
}

/// The `mariadb` CLI connecting to `addr` over TCP as `user`, without option files.
pub fn mariadb_command(addr: SocketAddr, user: &str, pass: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("mariadb");
    command
        .arg("--no-defaults")
        .arg("--protocol=TCP")
        .arg(format!("--host={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .arg(format!("--user={user}"))
        .arg(format!("--password={pass}"));
    command
}

/// Waits (10 s at most) until `count_sql` (a `SELECT COUNT(*)` of the backend's process list)
/// on `direct` answers `n`.
pub async fn wait_processlist(direct: &mut Conn, count_sql: &str, n: i64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while direct
        .query_first::<i64, _>(count_sql)
        .await
        .expect("processlist")
        != Some(n)
    {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Logs in over raw TCP at `addr` as `user` with `mysql_native_password`, with the basic
/// protocol-4.1 capabilities and `extra`, asking for `collation`; the login's OK is read.
pub async fn raw_login(
    addr: SocketAddr,
    (user, pass): (&str, &str),
    extra: mysql_common::constants::CapabilityFlags,
    collation: u8,
) -> tokio::net::TcpStream {
    use mysql_common::constants::CapabilityFlags;
    use mysql_common::io::ParseBuf;
    use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
    use mysql_common::proto::MySerialize;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (_, greeting) = read_packet(&mut s).await.expect("greeting");
    let hs: HandshakePacket<'_> = ParseBuf(&greeting).parse(()).expect("parse greeting");
    let token =
        mysql_common::scramble::scramble_native(&hs.nonce(), pass.as_bytes()).expect("token");
    let caps = CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | extra;
    let response = HandshakeResponse::new(
        Some(&token[..]),
        (10, 11, 0),
        Some(user.as_bytes()),
        None::<&[u8]>,
        Some(AuthPlugin::MysqlNativePassword),
        caps,
        None,
        16 * 1024 * 1024,
    );
    let mut payload = Vec::new();
    response.serialize(&mut payload);
    // capability flags (4), max packet size (4), then the collation byte.
    payload[8] = collation;
    write_packet(&mut s, 1, &payload).await;
    let (_, ok) = read_packet(&mut s).await.expect("login answer");
    assert_eq!(ok.first(), Some(&0x00), "logged in: {ok:?}");
    s
}

/// A self-signed certificate for `localhost` / 127.0.0.1 and its key, written into `dir`.
pub fn self_signed_tls(dir: &std::path::Path) -> myrelay::config::TlsFiles {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let files = myrelay::config::TlsFiles {
        cert: dir.join("node.crt"),
        key: dir.join("node.key"),
    };
    std::fs::write(&files.cert, cert.cert.pem()).expect("cert");
    std::fs::write(&files.key, cert.signing_key.serialize_pem()).expect("key");
    files
}

/// A proxy user of role `app` that must connect over TLS.
pub fn tls_only_user(name: &str, password: &str) -> User {
    User {
        name: name.into(),
        role: UserRole::App,
        password: password.into(),
        admin_from: Vec::new(),
        require_tls: true,
        databases: None,
    }
}

/// The cluster secret of test clusters.
pub const SECRET: &str = "test-cluster-secret";

/// A replicating master and its slaves, each with its own backend.
pub struct Cluster {
    pub master: TestNode,
    pub slaves: Vec<TestNode>,
    /// Applied to every node's config before it starts.
    configure: fn(&mut NodeConfig),
}

/// Replication settings for a master.
pub fn master_replication() -> myrelay::config::Replication {
    myrelay::config::Replication {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        master: None,
        secret: SECRET.into(),
        tls: None,
        ack: myrelay::config::Ack::None,
        ack_timeout: std::time::Duration::from_secs(1),
        feed_listen: "127.0.0.1:0".parse().expect("addr"),
        feed_host: "127.0.0.1".into(),
        apply_lock_wait: myrelay::config::DEFAULT_APPLY_LOCK_WAIT,
    }
}

/// Replication settings for a slave of `master` (its replication address) with `secret`.
pub fn slave_replication(master: SocketAddr, secret: &str) -> myrelay::config::Replication {
    myrelay::config::Replication {
        listen: None,
        master: Some(master),
        secret: secret.into(),
        ..master_replication()
    }
}

impl Cluster {
    /// A master and `slaves` slaves.
    pub async fn start(slaves: usize) -> Cluster {
        Cluster::start_with(slaves, |_| {}).await
    }

    /// A master and `slaves` slaves, each node's config passed through `configure` first.
    pub async fn start_with(slaves: usize, configure: fn(&mut NodeConfig)) -> Cluster {
        let server = backend().await;
        let mut config = node_config("master", NodeRole::Master, server.addr());
        config.replication = Some(master_replication());
        configure(&mut config);
        let node = node::start(config).await.expect("start master");
        let master = TestNode { node, server };
        let mut cluster = Cluster {
            master,
            slaves: Vec::new(),
            configure,
        };
        for _ in 0..slaves {
            cluster.add_slave(SECRET).await;
        }
        cluster
    }

    /// The master's replication address.
    pub fn replication_addr(&self) -> SocketAddr {
        self.master
            .node
            .replication_addr
            .expect("replicating master")
    }

    /// Adds a slave that uses `secret`.
    pub async fn add_slave(&mut self, secret: &str) -> &TestNode {
        let server = backend().await;
        let name = format!("slave{}", self.slaves.len() + 1);
        let mut config = node_config(&name, NodeRole::Slave, server.addr());
        config.master = Some(self.master.addr().to_string());
        config.replication = Some(slave_replication(self.replication_addr(), secret));
        (self.configure)(&mut config);
        let node = node::start(config).await.expect("start slave");
        self.slaves.push(TestNode { node, server });
        self.slaves.last().expect("just pushed")
    }

    /// What the master's backend has committed now, as its binlog position.
    pub async fn master_position(&self) -> Position {
        master_position(&self.master).await
    }

    /// The master's binlog position now, as a number (`lsn` in `SHOW MYRELAY STATUS`).
    pub async fn master_lsn(&self) -> u64 {
        self.master_position().await.lsn()
    }

    /// Waits until every slave node reports that its backend applied everything the master's
    /// backend has committed now.
    pub async fn converge(&self, within: std::time::Duration) {
        let target = self.master_position().await;
        for slave in &self.slaves {
            let replica = slave.node.shared.replica.as_ref().expect("a slave");
            assert!(
                replica.wait_applied(&target, within).await,
                "{} applied {} of {target}",
                slave.node.shared.config.name,
                replica.status().applied
            );
        }
    }
}

/// A backend's binlog position, asked directly.
pub async fn master_position(node: &TestNode) -> Position {
    let mut conn = node.direct().await;
    let pos: String = conn
        .query_first("SELECT @@global.gtid_binlog_pos")
        .await
        .expect("gtid_binlog_pos")
        .unwrap_or_default();
    Position::parse(&pos).expect("position")
}

/// The position a slave node reports its backend applied, as a number.
pub fn applied_lsn(node: &TestNode) -> u64 {
    node.node
        .shared
        .replica
        .as_ref()
        .map(|r| r.status().applied.lsn())
        .unwrap_or(0)
}

/// Per-table `CHECKSUM TABLE … EXTENDED` and row counts of database `db` on a backend.
pub async fn fingerprint(node: &TestNode, db: &str) -> Vec<(String, Option<i64>, i64)> {
    let mut conn = node.direct().await;
    let tables: Vec<String> = conn
        .query(format!("SHOW TABLES FROM `{db}`"))
        .await
        .expect("tables");
    let mut out = Vec::new();
    for t in tables {
        let (_, sum): (String, Option<i64>) = conn
            .query_first(format!("CHECKSUM TABLE `{db}`.`{t}` EXTENDED"))
            .await
            .expect("checksum")
            .expect("row");
        let n: i64 = conn
            .query_first(format!("SELECT COUNT(*) FROM `{db}`.`{t}`"))
            .await
            .expect("count")
            .expect("row");
        out.push((t, sum, n));
    }
    out
}

/// Reads one raw MySQL packet from `s`: (sequence id, payload); None on EOF.
pub async fn read_packet(s: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 4];
    s.read_exact(&mut header).await.ok()?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.ok()?;
    Some((header[3], payload))
}

/// Writes one raw MySQL packet with sequence id `seq`.
pub async fn write_packet(s: &mut tokio::net::TcpStream, seq: u8, payload: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let mut buf = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    buf.push(seq);
    buf.extend_from_slice(payload);
    s.write_all(&buf).await.expect("write");
}
