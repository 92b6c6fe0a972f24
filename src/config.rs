//! Node configuration: settings from a TOML file, secrets from the environment (`.env` via dotenvy).
//!
//! The file never holds a password: each proxy user names the environment variable that carries its
//! password, so config files can be committed while `.env` stays private. Every error names the file
//! and the key it is about, so an operator can fix it without reading code.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

/// Default for `limits.max_allowed_packet`: the largest client packet a node accepts (64 MiB).
pub const DEFAULT_MAX_ALLOWED_PACKET: usize = 64 * 1024 * 1024;

/// A configuration problem, always naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The config file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or a key has the wrong type.
    #[error("{file}: {message}")]
    Parse {
        /// The config file.
        file: String,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A key is missing or its value is not acceptable.
    #[error("{file}: key `{key}`: {message}")]
    Invalid {
        /// The config file (or `environment` for a variable).
        file: String,
        /// The offending key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// What a node does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Executes DDL and writes; the source of every change.
    Master,
    /// Serves reads; refuses DDL; writes go to the master.
    Slave,
}

impl NodeRole {
    /// Lower-case name as used in config, logs and the demo's output.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Master => "master",
            NodeRole::Slave => "slave",
        }
    }
}

/// What a proxy user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Reads, plus the session and transaction statements every client sends.
    Readonly,
    /// Reads, writes, transactions, session statements.
    App,
    /// Everything, including DDL and account statements on the master.
    Admin,
}

impl UserRole {
    /// Lower-case name as used in config and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Readonly => "readonly",
            UserRole::App => "app",
            UserRole::Admin => "admin",
        }
    }
}

/// A proxy user as the node uses it: name, role, password and where admin rights hold.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Granted role.
    pub role: UserRole,
    /// Clear-text password (from the environment), needed to check the client's scramble.
    pub password: String,
    /// Networks from which an `admin` keeps admin rights; elsewhere it acts as `app`. Empty: anywhere.
    pub admin_from: Vec<IpNet>,
    /// This user may only log in over TLS.
    pub require_tls: bool,
    /// GRANT-style patterns of the databases this user's statements may touch; `None`: its
    /// role's default (everything for admins, all but the system schemas for the others).
    pub databases: Option<Arc<[String]>>,
}

/// What a user may do from where it connected: its role there and its databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The role in force.
    pub role: UserRole,
    /// The user's `databases` patterns, if it has any.
    pub databases: Option<Arc<[String]>>,
}

impl User {
    /// This user's grant when connecting from `peer`.
    pub fn grant(&self, peer: IpAddr) -> Grant {
        Grant {
            role: self.effective_role(peer),
            databases: self.databases.clone(),
        }
    }

    /// The role this user has when connecting from `peer`: critical statements are filtered by source.
    pub fn effective_role(&self, peer: IpAddr) -> UserRole {
        if self.role == UserRole::Admin
            && !self.admin_from.is_empty()
            && !self.admin_from.iter().any(|net| net.contains(&peer))
        {
            UserRole::App
        } else {
            self.role
        }
    }
}

/// Limits that protect a node from its clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest client packet accepted; larger ones get error 1153 and the connection closes.
    pub max_allowed_packet: usize,
    /// Client connections served at once; beyond it a client gets error 1040.
    pub max_connections: usize,
    /// Backend connections this node opens at most (each client session owns one while connected).
    pub backend_pool_size: usize,
    /// Largest file a client may send with `LOAD DATA LOCAL INFILE`; 0 refuses the statement.
    /// The node holds the file in memory (a replicating master also logs it), hence the bound.
    pub max_local_infile: usize,
    /// How long a shutdown (SIGTERM) waits for running statements and open transactions, and
    /// then for slaves to catch up, before it closes what is left.
    pub shutdown_timeout: Duration,
    /// Connections one proxy user may hold at once (0: no limit); beyond it error 1203.
    pub max_connections_per_user: usize,
    /// How long a client may take from connecting to being logged in; then it is dropped, so
    /// that silent sockets cannot hold connection slots.
    pub handshake_timeout: Duration,
    /// A logged-in client that sends nothing for this long is disconnected, as MySQL's
    /// `wait_timeout` does (an open transaction rolls back); `None`: never.
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_allowed_packet: DEFAULT_MAX_ALLOWED_PACKET,
            max_connections: 1000,
            backend_pool_size: 200,
            max_local_infile: 0,
            shutdown_timeout: Duration::from_secs(30),
            max_connections_per_user: 0,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(28800)),
        }
    }
}

/// Everything a node needs to run, resolved and checked.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Node name, shown in logs, errors and status.
    pub name: String,
    /// Master or slave.
    pub role: NodeRole,
    /// Address clients connect to.
    pub listen: SocketAddr,
    /// This node's own MySQL/MariaDB server.
    pub backend: SocketAddr,
    /// Backend account (`DB_USER`).
    pub backend_user: String,
    /// Backend password (`DB_PASS`).
    pub backend_password: String,
    /// The master node's client address; required for slaves (errors name it, writes go there).
    pub master: Option<String>,
    /// Shared secret of the replication channel (`CLUSTER_SECRET`), if set.
    pub cluster_secret: Option<String>,
    /// Proxy users by name.
    pub users: BTreeMap<String, User>,
    /// Limits.
    pub limits: Limits,
    /// Replication settings; `None` runs the node standalone.
    pub replication: Option<Replication>,
    /// TLS on the client port: certificate chain and private key (PEM files).
    pub tls: Option<TlsFiles>,
    /// The admin HTTP listener (console, `/health`, `/metrics`); `None` runs none.
    pub admin: Option<Admin>,
    /// Loadable UDFs (`CREATE FUNCTION … SONAME`), lower case, that the operator vouches for: a
    /// call of one is judged like a built-in. The node cannot read a UDF's native code, so a
    /// call of any other is an admin statement (`functions.safe_udfs`).
    pub safe_udfs: Vec<String>,
}

/// The admin HTTP listener of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Where the console and the monitoring endpoints listen, `ip:port`.
    pub listen: SocketAddr,
    /// Sample the node's counters every second for `/api/history` and the console's plots
    /// (`admin.history`, on by default; off only to measure what sampling costs).
    pub history: bool,
}

impl NodeConfig {
    /// The keys that differ between `self` and `other` and that only a restart applies: everything
    /// but the proxy users (which a reload swaps in place).
    pub fn restart_keys(&self, other: &NodeConfig) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut differs = |key: &'static str, changed: bool| {
            if changed {
                keys.push(key);
            }
        };
        differs("node.name", self.name != other.name);
        differs("node.role", self.role != other.role);
        differs("node.listen", self.listen != other.listen);
        differs("node.backend", self.backend != other.backend);
        differs(
            "DB_USER/DB_PASS",
            self.backend_user != other.backend_user
                || self.backend_password != other.backend_password,
        );
        differs("node.master", self.master != other.master);
        differs("limits", self.limits != other.limits);
        differs("replication", self.replication != other.replication);
        differs(
            "CLUSTER_SECRET",
            self.cluster_secret != other.cluster_secret,
        );
        differs("tls", self.tls != other.tls);
        differs("admin", self.admin != other.admin);
        differs("functions.safe_udfs", self.safe_udfs != other.safe_udfs);
        keys
    }
}

/// Where a node's TLS certificate chain and key are.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// How long a slave's applier may wait on a client's lock by default (`apply_lock_wait_ms`).
pub const DEFAULT_APPLY_LOCK_WAIT: Duration = Duration::from_secs(5);

/// How a node takes part in replication.
#[derive(Debug, Clone, PartialEq)]
pub struct Replication {
    /// Master: where slaves connect. Slave: unused.
    pub listen: Option<SocketAddr>,
    /// Slave: the master's replication address.
    pub master: Option<SocketAddr>,
    /// Shared secret both sides prove they know (`CLUSTER_SECRET`).
    pub secret: String,
    /// Mutual TLS on the channel, when configured (`tls_cert`, `tls_key`, `tls_ca`).
    pub tls: Option<ReplicationTls>,
    /// Master: how many slaves must have applied a commit before its OK goes to the client.
    pub ack: Ack,
    /// Master: how long a commit's OK waits for `ack` before it goes anyway (logged, counted).
    pub ack_timeout: Duration,
    /// Slave: where the node serves the master's binlog to its own backend, which replicates
    /// from it as from a master.
    pub feed_listen: SocketAddr,
    /// Slave: the host the backend connects to for the feed (default: `feed_listen`'s address).
    pub feed_host: String,
    /// Slave: how long the backend's applier may wait on a lock a client holds before the node
    /// kills that client's connection (`apply_lock_wait_ms`).
    pub apply_lock_wait: Duration,
}

/// How many slaves must have applied a commit before the client gets its OK
/// (`replication.ack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ack {
    /// None: the OK follows the master backend's durable commit (binlog synced).
    None,
    /// At least one connected slave (MariaDB's semi-synchronous replication).
    One,
    /// Every connected slave.
    All,
}

impl Ack {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Ack::None => "none",
            Ack::One => "one",
            Ack::All => "all",
        }
    }
}

/// The cluster's certificates for TLS on the replication channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationTls {
    /// This node's PEM certificate chain, signed by the cluster CA: the master serves it, a
    /// slave presents it as its client certificate.
    pub cert: PathBuf,
    /// Its PEM private key.
    pub key: PathBuf,
    /// The cluster CA's PEM certificate, which must have signed the other side's.
    pub ca: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    node: RawNode,
    #[serde(default)]
    limits: RawLimits,
    replication: Option<RawReplication>,
    tls: Option<RawTls>,
    admin: Option<RawAdmin>,
    #[serde(default)]
    functions: RawFunctions,
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunctions {
    #[serde(default)]
    safe_udfs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: String,
    #[serde(default = "default_true")]
    history: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    role: NodeRole,
    listen: String,
    backend: String,
    master: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplication {
    listen: Option<String>,
    master: Option<String>,
    ack: Option<Ack>,
    ack_timeout_ms: Option<u64>,
    apply_lock_wait_ms: Option<u64>,
    feed_listen: Option<String>,
    feed_host: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_allowed_packet: Option<usize>,
    max_connections: Option<usize>,
    backend_pool_size: Option<usize>,
    max_local_infile: Option<usize>,
    shutdown_timeout_secs: Option<u64>,
    max_connections_per_user: Option<usize>,
    handshake_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    role: UserRole,
    password_env: String,
    #[serde(default)]
    admin_from: Vec<String>,
    #[serde(default)]
    require_tls: bool,
    databases: Option<Vec<String>>,
}

/// Source of secrets; the process environment in production, a map in tests.
pub trait Secrets {
    /// The value of variable `key`, if set and not empty.
    fn get(&self, key: &str) -> Option<String>;
}

/// Secrets from the process environment (after `.env` was loaded into it).
pub struct EnvSecrets;

impl Secrets for EnvSecrets {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Secrets for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        BTreeMap::get(self, key).cloned().filter(|v| !v.is_empty())
    }
}

/// Loads `.env` from the current directory or a parent, if there is one. A missing file is fine:
/// the variables may come from the real environment.
pub fn load_dotenv() -> Result<Option<PathBuf>, ConfigError> {
    match dotenvy::dotenv() {
        Ok(path) => Ok(Some(path)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(ConfigError::Parse {
            file: ".env".into(),
            message: e.to_string(),
        }),
    }
}

impl NodeConfig {
    /// Reads and checks a node's TOML file, taking secrets from `secrets`.
    pub fn load(path: &Path, secrets: &dyn Secrets) -> Result<NodeConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&file, &text, secrets)
    }

    /// Parses TOML text; `file` names it in errors.
    pub fn parse(file: &str, text: &str, secrets: &dyn Secrets) -> Result<NodeConfig, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.into(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.into(),
            key: key.into(),
            message,
        };
        let env_invalid = |key: &str, message: String| ConfigError::Invalid {
            file: "environment (.env)".into(),
            key: key.into(),
            message,
        };
        let addr = |key: &str, value: &str| -> Result<SocketAddr, ConfigError> {
            value
                .parse()
                .map_err(|e| invalid(key, format!("`{value}` is not an ip:port address ({e})")))
        };
        if raw.node.name.trim().is_empty() {
            return Err(invalid("node.name", "must not be empty".into()));
        }
        let listen = addr("node.listen", &raw.node.listen)?;
        let backend = addr("node.backend", &raw.node.backend)?;
        if raw.node.role == NodeRole::Slave && raw.node.master.is_none() {
            return Err(invalid(
                "node.master",
                "a slave must name its master's address".into(),
            ));
        }
        let backend_user = secrets
            .get("DB_USER")
            .ok_or_else(|| env_invalid("DB_USER", "not set: the backend account's user".into()))?;
        let backend_password = secrets.get("DB_PASS").ok_or_else(|| {
            env_invalid("DB_PASS", "not set: the backend account's password".into())
        })?;

        let mut users = BTreeMap::new();
        for (i, u) in raw.users.into_iter().enumerate() {
            let key = |field: &str| format!("users[{i}].{field}");
            if u.name.is_empty() {
                return Err(invalid(&key("name"), "must not be empty".into()));
            }
            let password = secrets.get(&u.password_env).ok_or_else(|| {
                env_invalid(
                    &u.password_env,
                    format!("not set: password of proxy user `{}`", u.name),
                )
            })?;
            let mut admin_from = Vec::new();
            for net in &u.admin_from {
                admin_from.push(parse_net(net).ok_or_else(|| {
                    invalid(
                        &key("admin_from"),
                        format!("`{net}` is not a network like 127.0.0.1/32"),
                    )
                })?);
            }
            if u.require_tls && raw.tls.is_none() {
                return Err(invalid(
                    &key("require_tls"),
                    "needs a [tls] section with cert and key".into(),
                ));
            }
            if u.databases.iter().flatten().any(|p| p.trim().is_empty()) {
                return Err(invalid(
                    &key("databases"),
                    "a database pattern must not be empty".into(),
                ));
            }
            let user = User {
                name: u.name.clone(),
                role: u.role,
                password,
                admin_from,
                require_tls: u.require_tls,
                databases: u.databases.map(Arc::from),
            };
            if users.insert(u.name.clone(), user).is_some() {
                return Err(invalid(
                    &key("name"),
                    format!("user `{}` is defined twice", u.name),
                ));
            }
        }
        if users.is_empty() {
            return Err(invalid("users", "at least one proxy user is needed".into()));
        }
        let positive = |key: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(invalid(key, "must be greater than 0".into())),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let d = Limits::default();
        let l = &raw.limits;
        let secs = |key: &str, v: Option<u64>, default: Duration| {
            positive(key, v.map(|s| s as usize), default.as_secs() as usize)
                .map(|s| Duration::from_secs(s as u64))
        };
        let limits = Limits {
            max_allowed_packet: positive(
                "limits.max_allowed_packet",
                l.max_allowed_packet,
                d.max_allowed_packet,
            )?,
            max_connections: positive(
                "limits.max_connections",
                l.max_connections,
                d.max_connections,
            )?,
            backend_pool_size: positive(
                "limits.backend_pool_size",
                l.backend_pool_size,
                d.backend_pool_size,
            )?,
            max_local_infile: l.max_local_infile.unwrap_or(d.max_local_infile),
            shutdown_timeout: l
                .shutdown_timeout_secs
                .map_or(d.shutdown_timeout, Duration::from_secs),
            max_connections_per_user: l
                .max_connections_per_user
                .unwrap_or(d.max_connections_per_user),
            handshake_timeout: secs(
                "limits.handshake_timeout_secs",
                l.handshake_timeout_secs,
                d.handshake_timeout,
            )?,
            idle_timeout: match l.idle_timeout_secs {
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
                None => d.idle_timeout,
            },
        };
        let replication = match raw.replication {
            None => None,
            Some(r) => {
                let secret = secrets.get("CLUSTER_SECRET").ok_or_else(|| {
                    env_invalid(
                        "CLUSTER_SECRET",
                        "not set: replication needs the cluster secret".into(),
                    )
                })?;
                let listen = match &r.listen {
                    Some(v) => Some(addr("replication.listen", v)?),
                    None => None,
                };
                let master = match &r.master {
                    Some(v) => Some(addr("replication.master", v)?),
                    None => None,
                };
                match raw.node.role {
                    NodeRole::Master if listen.is_none() => {
                        return Err(invalid(
                            "replication.listen",
                            "a master needs replication.listen".into(),
                        ));
                    }
                    NodeRole::Slave if master.is_none() => {
                        return Err(invalid(
                            "replication.master",
                            "a slave needs the master's replication address".into(),
                        ));
                    }
                    _ => {}
                }
                let feed_listen = match &r.feed_listen {
                    Some(v) => addr("replication.feed_listen", v)?,
                    None => SocketAddr::from(([127, 0, 0, 1], 0)),
                };
                let feed_host = r
                    .feed_host
                    .clone()
                    .unwrap_or_else(|| feed_listen.ip().to_string());
                let tls = match (r.tls_cert, r.tls_key, r.tls_ca) {
                    (None, None, None) => None,
                    (Some(cert), Some(key), Some(ca)) => Some(ReplicationTls { cert, key, ca }),
                    _ => {
                        return Err(invalid(
                            "replication.tls_cert",
                            "TLS on the replication channel needs all of tls_cert, tls_key and \
                             tls_ca"
                                .into(),
                        ));
                    }
                };
                Some(Replication {
                    listen,
                    master,
                    secret,
                    tls,
                    ack: r.ack.unwrap_or(Ack::None),
                    ack_timeout: Duration::from_millis(r.ack_timeout_ms.unwrap_or(1000)),
                    feed_listen,
                    feed_host,
                    apply_lock_wait: r
                        .apply_lock_wait_ms
                        .map_or(DEFAULT_APPLY_LOCK_WAIT, Duration::from_millis),
                })
            }
        };
        let admin = match &raw.admin {
            Some(a) => Some(Admin {
                listen: addr("admin.listen", &a.listen)?,
                history: a.history,
            }),
            None => None,
        };
        let mut safe_udfs = Vec::with_capacity(raw.functions.safe_udfs.len());
        for name in &raw.functions.safe_udfs {
            let name = name.trim();
            if name.is_empty() || name.contains('.') {
                return Err(invalid(
                    "functions.safe_udfs",
                    format!(
                        "`{name}` is not a UDF name: a loadable function has a bare name, no \
                         schema"
                    ),
                ));
            }
            safe_udfs.push(name.to_lowercase());
        }
        Ok(NodeConfig {
            name: raw.node.name,
            role: raw.node.role,
            listen,
            backend,
            backend_user,
            backend_password,
            master: raw.node.master,
            cluster_secret: secrets.get("CLUSTER_SECRET"),
            users,
            limits,
            replication,
            tls: raw.tls.map(|t| TlsFiles {
                cert: t.cert,
                key: t.key,
            }),
            admin,
            safe_udfs,
        })
    }
}

/// Parses `10.0.0.0/8` or a bare address (a /32 or /128).
fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> BTreeMap<String, String> {
        [
            ("DB_USER", "root"),
            ("DB_PASS", "rootroot"),
            ("APP_PASS", "apppass"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const GOOD: &str = r#"
        [node]
        name = "s1"
        role = "slave"
        listen = "127.0.0.1:3308"
        backend = "127.0.0.1:3317"
        master = "127.0.0.1:3307"
        [[users]]
        name = "root"
        role = "admin"
        password_env = "DB_PASS"
        admin_from = ["127.0.0.1/32", "::1"]
        [[users]]
        name = "app"
        role = "app"
        password_env = "APP_PASS"
    "#;

    #[test]
    fn parses_a_good_file() {
        let c = NodeConfig::parse("s.toml", GOOD, &secrets()).expect("valid config");
        assert_eq!(c.role, NodeRole::Slave);
        assert_eq!(c.users["app"].password, "apppass");
        assert_eq!(c.limits.max_allowed_packet, DEFAULT_MAX_ALLOWED_PACKET);
        let root = &c.users["root"];
        assert_eq!(
            root.effective_role("127.0.0.1".parse().expect("ip")),
            UserRole::Admin
        );
        assert_eq!(
            root.effective_role("10.1.2.3".parse().expect("ip")),
            UserRole::App
        );
    }

    #[test]
    fn shipped_config_files_are_valid() {
        let mut env = secrets();
        env.insert("READER_PASS".into(), "r".into());
        env.insert("CLUSTER_SECRET".into(), "s3cret".into());
        for (file, text) in [
            ("config/master.toml", include_str!("../config/master.toml")),
            ("config/slave.toml", include_str!("../config/slave.toml")),
        ] {
            NodeConfig::parse(file, text, &env).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn admin_listener_and_what_needs_a_restart() {
        let c = NodeConfig::parse("s.toml", GOOD, &secrets()).expect("valid config");
        assert_eq!(c.admin, None);
        let with_admin = format!("{GOOD}\n[admin]\nlisten = \"127.0.0.1:8407\"\n");
        let a = NodeConfig::parse("s.toml", &with_admin, &secrets()).expect("valid config");
        assert_eq!(
            a.admin.as_ref().map(|a| a.listen.to_string()),
            Some("127.0.0.1:8407".to_string())
        );
        assert_eq!(c.restart_keys(&a), ["admin"]);
        // Users alone are reloadable.
        let promoted = GOOD.replace("role = \"app\"", "role = \"readonly\"");
        let p = NodeConfig::parse("s.toml", &promoted, &secrets()).expect("valid config");
        assert!(c.restart_keys(&p).is_empty());
        assert_ne!(c.users, p.users);
        let safe = format!("{GOOD}\n[functions]\nsafe_udfs = [\"My_Answer\"]\n");
        let f = NodeConfig::parse("s.toml", &safe, &secrets()).expect("valid config");
        assert_eq!(f.safe_udfs, ["my_answer"]);
        assert_eq!(c.restart_keys(&f), ["functions.safe_udfs"]);
        let bad = format!("{GOOD}\n[admin]\nlisten = \"nowhere\"\n");
        let err = NodeConfig::parse("s.toml", &bad, &secrets()).expect_err("bad address");
        assert!(err.to_string().contains("admin.listen"), "{err}");
    }

    #[test]
    fn errors_name_file_and_key() {
        let cases = [
            (GOOD.replace("127.0.0.1:3317", "nowhere"), "node.backend"),
            (
                GOOD.replace("master = \"127.0.0.1:3307\"", ""),
                "node.master",
            ),
            (
                GOOD.replace("\"::1\"", "\"::1/999\""),
                "users[0].admin_from",
            ),
            (GOOD.replace("APP_PASS", "MISSING_PASS"), "MISSING_PASS"),
            (GOOD.replace("role = \"app\"", "role = \"god\""), "role"),
            (
                format!("{GOOD}\n[functions]\nsafe_udfs = [\"db.f\"]\n"),
                "functions.safe_udfs",
            ),
            (
                format!("{GOOD}\n[functions]\nsafe_udf = [\"f\"]\n"),
                "safe_udf",
            ),
        ];
        for (text, key) in cases {
            let err = NodeConfig::parse("s.toml", &text, &secrets())
                .expect_err("must be rejected")
                .to_string();
            assert!(err.contains(key), "`{err}` should name `{key}`");
        }
        let mut no_db = secrets();
        no_db.remove("DB_PASS");
        let err = NodeConfig::parse("s.toml", GOOD, &no_db)
            .expect_err("no DB_PASS")
            .to_string();
        assert!(err.contains("DB_PASS"), "{err}");
    }
}
