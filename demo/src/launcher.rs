//! Throwaway MariaDB servers for the demo command and the test harness.
//!
//! The proxy needs a real backend to talk to, but the machine's shared MariaDB
//! (port 3306) belongs to someone else. So every backend here is a private
//! `mariadbd` with its own datadir, socket, port and error log, started with
//! `--no-defaults` so that nothing in `/etc/mysql` can leak in.
//!
//! Layout under the base directory (a temp dir, or the caller's `data_dir`):
//!
//! ```text
//! data/       the server's datadir (install-db runs only if data/mysql is missing)
//! sock        unix socket (moved to a short temp dir if the path is too long)
//! error.log   server log; failures quote its tail
//! init.sql    account setup, re-run by the server at every start
//! init.done   written by init.sql's last statement: the setup completed
//! pid         server pid file
//! tmp/        the server's tmpdir (see `prepare_tmpdir`)
//! ```

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener as StdTcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::process::{Child, Command};

/// How long the server may take from spawn to answering with a handshake.
/// Crash recovery after `kill()` and a busy 2-core machine both fit in it.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// install-db fsyncs a fresh InnoDB system tablespace and log; it takes a few
/// seconds alone and much longer when many run at once.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Grace period for a SIGTERM shutdown before falling back to SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `Drop` blocks to reap a SIGKILLed server so the temp dir can be
/// removed without the server still writing into it.
const DROP_REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts with a fresh port when the chosen free port was taken by someone
/// else between picking it and the server binding it.
const PORT_ATTEMPTS: usize = 3;
/// Lines of the error log quoted in `Failed` / `Timeout`.
const LOG_TAIL_LINES: usize = 20;
/// Unix socket paths are limited to 108 bytes (sun_path); stay clear of it.
const MAX_SOCKET_PATH: usize = 100;
/// Written by the last statement of init.sql (see `check_init_file`).
const INIT_DONE: &str = "init.done";

const MARIADBD_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"];
const INSTALL_DB_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/local/bin",
    "/usr/local/mysql/scripts",
    "/usr/local/mysql/bin",
];

/// Small-footprint settings shared by install-db and the server: many of these
/// servers run side by side on a 2-core machine, so memory and AIO contexts
/// are kept small. Durability settings are left at their defaults on purpose
/// (tests of the proxy's fault handling rely on committed data surviving a
/// SIGKILL).
const FOOTPRINT_ARGS: &[&str] = &[
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    // io_uring/libaio contexts are a per-machine budget (aio-max-nr, memlock);
    // simulated AIO keeps dozens of servers from exhausting it.
    "--innodb-use-native-aio=0",
];

/// What to run when the MariaDB binaries are missing: the one place this advice is worded
/// (`myrelay-demo`, the tests' backends and the README all lead here). The packages are those of
/// `scripts/install-deps.sh demo`, which a unit test keeps in step.
pub const INSTALL_HINT: &str = "run `sudo bash scripts/install-deps.sh demo` in the myrelay checkout \
     (or `sudo apt-get install -y --no-install-recommends mariadb-server mariadb-client`)";

/// Why a backend could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The MariaDB server binaries are missing; the message says what to install.
    #[error("{0}")]
    NotInstalled(String),
    /// A file or process operation failed outside the server itself.
    #[error("{what}: {source}")]
    Io {
        /// What was being attempted, with the path or command involved.
        what: String,
        /// The underlying OS error.
        #[source]
        source: std::io::Error,
    },
    /// The server (or install-db) did not become ready in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The server (or install-db) failed; the message carries its log tail.
    #[error("mariadb failed: {0}")]
    Failed(String),
}

impl LaunchError {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        LaunchError::Io {
            what: what.into(),
            source,
        }
    }
}

/// How to start a backend.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    /// Account the server accepts over TCP from 127.0.0.1, with all privileges
    /// and grant option. May be `root`.
    pub user: String,
    /// Password for `user`; the root accounts install-db creates get it too,
    /// so that no password-less root remains (an empty password here is the
    /// caller's explicit choice and is applied as given).
    pub password: String,
    /// Base directory for the datadir and the server's files; it survives the
    /// `Backend` and is reused by the next start. `None` → a fresh temp dir
    /// removed on drop.
    pub data_dir: Option<PathBuf>,
    /// Fixed port, or 0 for a free one.
    pub port: u16,
    /// The server's `server_id`, unique in a replicating cluster.
    pub server_id: u32,
    /// Where the server loads plugins and UDF libraries from (`--plugin-dir`), e.g. a test's
    /// own UDF; it replaces the server's own directory, so the plugins there are not found.
    /// `None` → the server's own.
    pub plugin_dir: Option<PathBuf>,
}

/// A running (or killed/stopped) private MariaDB server.
///
/// Dropping it kills the server; a temp base dir is removed with it.
#[derive(Debug)]
pub struct ThrowawayServer {
    child: Option<Child>,
    port: u16,
    base: PathBuf,
    socket: PathBuf,
    mariadbd: PathBuf,
    as_root: bool,
    server_id: u32,
    plugin_dir: Option<PathBuf>,
    // Removed on drop. Drop::drop reaps the server before any field goes, so
    // it never writes into a directory that is being deleted.
    _socket_dir: Option<TempDir>,
    _temp: Option<TempDir>,
}

impl ThrowawayServer {
    /// Installs a datadir if needed and starts the server, returning once it
    /// answers on its TCP port with a protocol-10 handshake.
    pub async fn start(spec: BackendSpec) -> Result<ThrowawayServer, LaunchError> {
        let started = Instant::now();
        let mariadbd = find_binary("mariadbd", MARIADBD_DIRS)?;
        let install_db = find_binary("mariadb-install-db", INSTALL_DB_DIRS)?;
        let as_root = effective_uid_is_root().await;

        let (base, temp) = match &spec.data_dir {
            Some(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| LaunchError::io(format!("create {}", dir.display()), e))?;
                (dir.clone(), None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("myrelay-mariadb-")
                    .tempdir()
                    .map_err(|e| LaunchError::io("create temp dir for mariadb", e))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        // The server and install-db get absolute paths: they run with cwd=base
        // and a relative path would be resolved twice.
        let base = std::path::absolute(&base)
            .map_err(|e| LaunchError::io(format!("resolve {}", base.display()), e))?;

        let (socket, socket_dir) = socket_path(&base)?;
        let plugin_dir = match &spec.plugin_dir {
            Some(dir) => Some(
                std::path::absolute(dir)
                    .map_err(|e| LaunchError::io(format!("resolve {}", dir.display()), e))?,
            ),
            None => None,
        };

        let init_sql = init_sql(&spec.user, &spec.password, &base.join(INIT_DONE));
        write_private(&base.join("init.sql"), &init_sql).await?;

        prepare_tmpdir(&base).await?;

        let datadir = base.join("data");
        if !datadir.join("mysql").is_dir() {
            install(&install_db, &base, as_root).await?;
        } else {
            tracing::debug!(datadir = %datadir.display(), "reusing existing datadir");
        }

        let mut backend = ThrowawayServer {
            child: None,
            port: spec.port,
            base,
            socket,
            mariadbd,
            as_root,
            server_id: spec.server_id,
            plugin_dir,
            _socket_dir: socket_dir,
            _temp: temp,
        };

        let mut attempt = 0;
        loop {
            attempt += 1;
            if spec.port == 0 {
                backend.port = pick_free_port()?;
            }
            match backend.launch().await {
                Ok(()) => break,
                Err(LaunchFailure::PortTaken(msg)) if spec.port == 0 && attempt < PORT_ATTEMPTS => {
                    tracing::warn!(port = backend.port, attempt, "port taken, retrying: {msg}");
                }
                Err(LaunchFailure::PortTaken(msg)) => return Err(LaunchError::Failed(msg)),
                Err(LaunchFailure::Other(e)) => return Err(e),
            }
        }
        tracing::info!(
            port = backend.port,
            dir = %backend.base.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "mariadb backend ready"
        );
        Ok(backend)
    }

    /// TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`; the server binds nothing else.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// The base directory (the one to pass as `BackendSpec::data_dir` to reuse
    /// it); the actual MariaDB datadir is its `data/` subdirectory.
    pub fn data_dir(&self) -> &Path {
        &self.base
    }

    /// Kills the server with SIGKILL (for fault tests); the datadir stays and
    /// `restart` brings it back through crash recovery.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = child.start_kill() {
                tracing::debug!("kill mariadbd: {e}");
            }
            if let Err(e) = child.wait().await {
                tracing::warn!("wait for killed mariadbd: {e}");
            }
        }
    }

    /// Starts the server again on the same port and datadir. A server that is
    /// still running is stopped gracefully first.
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        self.stop().await;
        match self.launch().await {
            Ok(()) => Ok(()),
            Err(LaunchFailure::PortTaken(msg)) => Err(LaunchError::Failed(msg)),
            Err(LaunchFailure::Other(e)) => Err(e),
        }
    }

    /// Graceful stop: SIGTERM, wait up to 20 s, then SIGKILL.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let terminated = match child.id() {
            // No libc dependency: the `kill` utility sends the signal.
            Some(pid) => match Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
            {
                Ok(status) => status.success(),
                Err(e) => {
                    tracing::warn!("run kill -TERM {pid}: {e}");
                    false
                }
            },
            None => false,
        };
        if terminated {
            match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => tracing::warn!("wait for mariadbd: {e}"),
                Err(_) => tracing::warn!("mariadbd ignored SIGTERM for {STOP_TIMEOUT:?}; killing"),
            }
        }
        if let Err(e) = child.start_kill() {
            tracing::debug!("kill mariadbd: {e}");
        }
        if let Err(e) = child.wait().await {
            tracing::warn!("wait for killed mariadbd: {e}");
        }
    }

    /// Spawns mariadbd on `self.port` and waits until it is ready.
    async fn launch(&mut self) -> Result<(), LaunchFailure> {
        // Refuse a port someone else already listens on (e.g. the shared
        // server on 3306) instead of letting mariadbd find out; the readiness
        // probe must never end up talking to a foreign server.
        if let Err(e) = StdTcpListener::bind((Ipv4Addr::LOCALHOST, self.port)) {
            let msg = format!("port {} on 127.0.0.1 is not available: {e}", self.port);
            return Err(if e.kind() == ErrorKind::AddrInUse {
                LaunchFailure::PortTaken(msg)
            } else {
                LaunchFailure::Other(LaunchError::Failed(msg))
            });
        }

        let marker = self.base.join(INIT_DONE);
        if let Err(e) = tokio::fs::remove_file(&marker).await
            && e.kind() != ErrorKind::NotFound
        {
            return Err(LaunchFailure::Other(LaunchError::io(
                format!("remove {}", marker.display()),
                e,
            )));
        }

        let log = self.base.join("error.log");
        // Only this start's part of the (appended) log is relevant to errors.
        let log_offset = tokio::fs::metadata(&log)
            .await
            .map(|m| m.len())
            .unwrap_or(0);

        let mut cmd = Command::new(&self.mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.base.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", self.socket.display()))
            .arg("--bind-address=127.0.0.1")
            // Replication by the binlog (see `replication::master::REQUIRED_SETTINGS`): a
            // durable, ordered, row-based log with GTIDs, kept on slaves too (their binlog then
            // holds the master's GTIDs, for promotion).
            .arg("--log-bin=binlog")
            .arg("--binlog-format=ROW")
            .arg("--binlog-row-image=FULL")
            .arg("--sync-binlog=1")
            .arg("--innodb-flush-log-at-trx-commit=1")
            .arg("--log-slave-updates")
            .arg(format!("--server-id={}", self.server_id))
            .arg("--skip-name-resolve")
            .arg(format!("--pid-file={}", self.base.join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!(
                "--init-file={}",
                self.base.join("init.sql").display()
            ))
            .arg(format!("--tmpdir={}", self.base.join("tmp").display()))
            // Confines INTO OUTFILE / LOAD_FILE of a root-run server to its own
            // directory; init.sql writes its completion marker there.
            .arg(format!("--secure-file-priv={}", self.base.display()))
            .args(FOOTPRINT_ARGS)
            .arg("--skip-performance-schema")
            .arg("--max-connections=500")
            .arg("--key-buffer-size=8M")
            .arg("--aria-pagecache-buffer-size=8M")
            // Every readiness probe hangs up before authenticating, which the
            // server counts as a connect error against the host.
            .arg("--max-connect-errors=1000000");
        if let Some(dir) = &self.plugin_dir {
            cmd.arg(format!("--plugin-dir={}", dir.display()));
        }
        if self.as_root {
            cmd.arg("--user=root");
        }
        cmd.current_dir(&self.base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            LaunchFailure::Other(LaunchError::io(
                format!("spawn {}", self.mariadbd.display()),
                e,
            ))
        })?;
        tracing::debug!(pid = child.id(), port = self.port, "spawned mariadbd");
        self.child = Some(child);

        match self.wait_ready(&log, log_offset).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave nothing half-started behind; a retry or the caller
                // starts from a clean state.
                self.kill().await;
                Err(e)
            }
        }
    }

    async fn wait_ready(&mut self, log: &Path, log_offset: u64) -> Result<(), LaunchFailure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child_exit()? {
                let tail = log_tail(log, log_offset).await;
                let msg = format!(
                    "mariadbd on port {} exited with {status} before it was ready; error log {}:\n{tail}",
                    self.port,
                    log.display()
                );
                return Err(
                    if tail.contains("Address already in use")
                        || tail.contains("Bind on TCP/IP port")
                    {
                        LaunchFailure::PortTaken(msg)
                    } else {
                        LaunchFailure::Other(LaunchError::Failed(msg))
                    },
                );
            }
            let now = Instant::now();
            if now >= deadline {
                let tail = log_tail(log, log_offset).await;
                return Err(LaunchFailure::Other(LaunchError::Timeout(format!(
                    "mariadbd on port {} not ready after {READY_TIMEOUT:?}; error log {}:\n{tail}",
                    self.port,
                    log.display()
                ))));
            }
            let budget = (deadline - now).min(Duration::from_secs(2));
            // The unix socket is ours alone, so a handshake there proves that
            // *our* server is up; mariadbd binds TCP before the socket and
            // aborts if that bind fails, so the TCP probe then hits it too.
            if probe(UnixStream::connect(&self.socket), budget).await
                && probe(TcpStream::connect(self.addr()), budget).await
                && self.child_exit()?.is_none()
            {
                return self.check_init_file(log, log_offset).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server stops reading the init file at its first failing statement
    /// and starts anyway, which would silently leave the accounts
    /// unconfigured. Some failures (e.g. `ERROR: 1396`) are logged, others
    /// (parse-time ones such as a too-long user name) are not, so the file's
    /// last statement writes a marker: no marker, no complete setup. The file
    /// has run before connections are accepted, so the marker is there now.
    async fn check_init_file(&self, log: &Path, log_offset: u64) -> Result<(), LaunchFailure> {
        if tokio::fs::try_exists(self.base.join(INIT_DONE))
            .await
            .unwrap_or(false)
        {
            return Ok(());
        }
        let text = read_log_since(log, log_offset).await;
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("ERROR:")).collect();
        let detail = if errors.is_empty() {
            format!(
                "no error logged; error log {}:\n{}",
                log.display(),
                last_lines(&text, LOG_TAIL_LINES)
            )
        } else {
            errors.join("; ")
        };
        Err(LaunchFailure::Other(LaunchError::Failed(format!(
            "init file {} did not complete (check user name and password): {detail}",
            self.base.join("init.sql").display(),
        ))))
    }

    fn child_exit(&mut self) -> Result<Option<ExitStatus>, LaunchFailure> {
        match self.child.as_mut() {
            Some(child) => child
                .try_wait()
                .map_err(|e| LaunchFailure::Other(LaunchError::io("poll mariadbd", e))),
            None => Err(LaunchFailure::Other(LaunchError::Failed(
                "mariadbd is not running".into(),
            ))),
        }
    }
}

impl Drop for ThrowawayServer {
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        if let Err(e) = child.start_kill() {
            tracing::debug!("kill mariadbd on drop: {e}");
            return;
        }
        // Reap it so the temp dir is removed after the server stopped writing
        // and its pid is gone; SIGKILL takes effect within milliseconds.
        let deadline = Instant::now() + DROP_REAP_TIMEOUT;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                _ => return,
            }
        }
        tracing::warn!("mariadbd did not exit within {DROP_REAP_TIMEOUT:?} of SIGKILL");
    }
}

/// Internal outcome of one launch attempt: a taken port is retryable when the
/// port was picked by us.
enum LaunchFailure {
    PortTaken(String),
    Other(LaunchError),
}

/// Returns true when the stream yields a protocol-10 handshake within `budget`.
async fn probe<S, F>(connect: F, budget: Duration) -> bool
where
    S: AsyncRead + Unpin,
    F: Future<Output = std::io::Result<S>>,
{
    let attempt = async {
        let mut stream = connect.await.ok()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.ok()?;
        match head[4] {
            10 => Some(()),
            0xFF => {
                // Error packet (too many connections, host blocked, ...):
                // not usable yet, keep polling.
                let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
                let mut rest = vec![0u8; len.saturating_sub(1).min(512)];
                let _ = stream.read_exact(&mut rest).await;
                tracing::debug!(
                    "mariadb refused probe: {}",
                    String::from_utf8_lossy(rest.get(2..).unwrap_or_default())
                );
                None
            }
            other => {
                tracing::debug!("unexpected first handshake byte {other:#x}");
                None
            }
        }
    };
    matches!(tokio::time::timeout(budget, attempt).await, Ok(Some(())))
}

/// Runs mariadb-install-db into `<base>/data`.
async fn install(install_db: &Path, base: &Path, as_root: bool) -> Result<(), LaunchError> {
    let datadir = base.join("data");
    // A datadir without mysql/ is the remnant of an interrupted install;
    // install-db would trip over its half-written files.
    if datadir.exists() {
        tracing::warn!(datadir = %datadir.display(), "removing incomplete datadir");
        tokio::fs::remove_dir_all(&datadir)
            .await
            .map_err(|e| LaunchError::io(format!("remove {}", datadir.display()), e))?;
    }
    let mut cmd = Command::new(install_db);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", datadir.display()))
        // 'normal' gives password-less root accounts that init.sql then
        // secures; 'socket' would tie root to the OS user instead.
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        // Skips the resolveip DNS check of the hostname, which can fail or
        // hang in sandboxes; accounts still come out the same.
        .arg("--force")
        .arg(format!("--tmpdir={}", base.join("tmp").display()))
        .args(FOOTPRINT_ARGS);
    if as_root {
        cmd.arg("--user=root");
    }
    cmd.current_dir(base)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let output = match tokio::time::timeout(INSTALL_TIMEOUT, cmd.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(LaunchError::io(format!("run {}", install_db.display()), e)),
        Err(_) => {
            return Err(LaunchError::Timeout(format!(
                "{} did not finish within {INSTALL_TIMEOUT:?}",
                install_db.display()
            )));
        }
    };
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        return Err(LaunchError::Failed(format!(
            "{} exited with {}:\n{}",
            install_db.display(),
            output.status,
            last_lines(&text, LOG_TAIL_LINES * 2)
        )));
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "install-db done"
    );
    Ok(())
}

/// SQL run by the server at every start (`--init-file`), so it must be
/// idempotent and must bring a reused datadir in line with the current spec.
fn init_sql(user: &str, password: &str, marker: &Path) -> String {
    let u = sql_string(user);
    let p = sql_string(password);
    // Each server's own accounts: never written to its binlog, so never replicated.
    let mut sql = String::from("SET sql_log_bin = 0;\n");
    // install-db adds root@<hostname> (and older versions anonymous users);
    // neither is reachable with skip-name-resolve, but a password-less root
    // must not survive in the grant tables. DROP USER would need the hostname,
    // so the rows are removed directly and the ACLs reloaded.
    for table in ["mysql.global_priv", "mysql.proxies_priv"] {
        sql.push_str(&format!(
            "DELETE FROM {table} WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'));\n"
        ));
    }
    sql.push_str("FLUSH PRIVILEGES;\n");
    for host in ["localhost", "127.0.0.1", "::1"] {
        sql.push_str(&format!(
            "ALTER USER IF EXISTS 'root'@'{host}' IDENTIFIED BY {p};\n"
        ));
    }
    sql.push_str(&format!(
        "CREATE USER IF NOT EXISTS {u}@'%' IDENTIFIED BY {p};\n"
    ));
    // CREATE ... IF NOT EXISTS keeps an old password on a reused datadir.
    sql.push_str(&format!("ALTER USER {u}@'%' IDENTIFIED BY {p};\n"));
    sql.push_str(&format!(
        "GRANT ALL PRIVILEGES ON *.* TO {u}@'%' WITH GRANT OPTION;\n"
    ));
    sql.push_str(&format!(
        "SELECT 'done' INTO OUTFILE {};\n",
        sql_string(&marker.to_string_lossy())
    ));
    sql
}

/// A single-quoted SQL string literal. Backslash escapes are on (the server's
/// default sql_mode), and raw line breaks are escaped too because the init
/// file is split into statements line by line.
fn sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Every server gets its own tmpdir: mariadbd deletes all `#sql*` files in
/// its tmpdir at startup, so servers sharing /tmp remove each other's
/// on-disk temporary tables (concurrent install-db runs then fail with
/// "Unknown table 'mysql.tmp_user_sys'").
async fn prepare_tmpdir(base: &Path) -> Result<(), LaunchError> {
    let tmp = base.join("tmp");
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| LaunchError::io(format!("create {}", tmp.display()), e))
}

/// Writes a file readable only by us: init.sql holds the password.
async fn write_private(path: &Path, contents: &str) -> Result<(), LaunchError> {
    tokio::fs::write(path, contents)
        .await
        .map_err(|e| LaunchError::io(format!("write {}", path.display()), e))?;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .await
        .map_err(|e| LaunchError::io(format!("chmod {}", path.display()), e))
}

/// `<base>/sock`, or a socket in a short temp dir when a deep base would
/// exceed the unix socket path limit (mariadbd refuses to start then).
fn socket_path(base: &Path) -> Result<(PathBuf, Option<TempDir>), LaunchError> {
    let sock = base.join("sock");
    if sock.as_os_str().len() <= MAX_SOCKET_PATH {
        return Ok((sock, None));
    }
    let dir = tempfile::Builder::new()
        .prefix("myrelay-sock-")
        .tempdir_in("/tmp")
        .map_err(|e| LaunchError::io("create temp dir for mariadb socket", e))?;
    Ok((dir.path().join("sock"), Some(dir)))
}

/// Asks the kernel for a free port; the listener is dropped right away, so a
/// race with another process is possible and handled by retrying.
fn pick_free_port() -> Result<u16, LaunchError> {
    StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| LaunchError::io("pick a free port on 127.0.0.1", e))
}

/// Finds an executable in PATH or the distribution's usual directories
/// (/usr/sbin is often not in a non-root PATH).
fn find_binary(name: &str, extra_dirs: &[&str]) -> Result<PathBuf, LaunchError> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::split_paths(&path_var)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name));
    for candidate in candidates {
        if let Ok(meta) = std::fs::metadata(&candidate)
            && meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
        {
            return Ok(candidate);
        }
    }
    Err(LaunchError::NotInstalled(format!(
        "{name} not found in PATH or {}: {INSTALL_HINT}",
        extra_dirs.join(", ")
    )))
}

/// mariadbd refuses to run as root unless told `--user=root`, and install-db
/// must then match it. `$USER` lies under sudo and in containers, so the
/// effective uid is read from the kernel instead.
async fn effective_uid_is_root() -> bool {
    if let Ok(status) = tokio::fs::read_to_string("/proc/self/status").await
        && let Some(euid) = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
    {
        return euid == "0";
    }
    match Command::new("id").arg("-u").output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim() == "0",
        Err(e) => {
            tracing::warn!("cannot determine uid, assuming non-root: {e}");
            false
        }
    }
}

async fn read_log_since(log: &Path, offset: u64) -> String {
    match tokio::fs::read(log).await {
        Ok(bytes) => {
            let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("(cannot read {}: {e})", log.display()),
    }
}

async fn log_tail(log: &Path, offset: u64) -> String {
    last_lines(&read_log_since(log, offset).await, LOG_TAIL_LINES)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_string_escapes_quotes_backslashes_and_newlines() {
        assert_eq!(sql_string("s3cr'et\\x"), r"'s3cr\'et\\x'");
        assert_eq!(sql_string("a\nb;\r\0"), r"'a\nb;\r\0'");
        assert_eq!(sql_string(""), "''");
    }

    #[test]
    fn init_sql_has_no_raw_line_breaks_inside_statements() {
        let sql = init_sql("u\n", "p;\nDROP DATABASE mysql;", Path::new("/x/init.done"));
        for line in sql.lines() {
            assert!(line.ends_with(';'), "{line}");
        }
        assert!(!sql.contains("\nDROP DATABASE"));
    }

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn missing_binary_says_what_to_install() {
        let err = find_binary("definitely-not-mariadbd", &[]).unwrap_err();
        assert!(err.to_string().contains(INSTALL_HINT), "{err}");
        assert!(INSTALL_HINT.contains("sudo bash scripts/install-deps.sh demo"));
    }

    /// The hint's apt-get line names exactly the packages the script's `demo` group installs.
    #[test]
    fn install_hint_matches_the_install_script() {
        let script = include_str!("../../scripts/install-deps.sh");
        let demo = script
            .split_once("    demo)\n")
            .and_then(|(_, rest)| rest.split_once(";;"))
            .map(|(group, _)| group)
            .expect("a demo group in scripts/install-deps.sh");
        let mut packages: Vec<&str> = demo
            .split("|| add ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next())
            .collect();
        packages.sort_unstable();
        packages.dedup();
        let hinted = INSTALL_HINT
            .split_once("--no-install-recommends ")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(list, _)| list)
            .expect("an apt-get line in the hint");
        let mut hinted: Vec<&str> = hinted.split_whitespace().collect();
        hinted.sort_unstable();
        assert_eq!(packages, hinted);
    }
}
