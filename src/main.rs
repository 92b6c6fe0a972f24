//! The `myrelay` command line: run a node, or a local demo cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use myrelay::config::{EnvSecrets, NodeConfig, load_dotenv};
use myrelay::demo::{self, DemoOptions};
use myrelay::node;

#[derive(Parser)]
#[command(
    name = "myrelay",
    version,
    about = "A MySQL front for a small replicated cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node from its TOML config (secrets from .env or the environment).
    Node {
        /// The node's config file, e.g. config/master.toml.
        #[arg(long)]
        config: PathBuf,
        /// Only validate the config and exit.
        #[arg(long)]
        check_config: bool,
    },
    /// Compare every table of every database across nodes; exits 1 naming the tables that differ.
    Checksum {
        /// Client addresses of the nodes, e.g. 127.0.0.1:3307 127.0.0.1:3308.
        #[arg(required = true)]
        nodes: Vec<std::net::SocketAddr>,
        /// Proxy user to log in as (default: DB_USER).
        #[arg(long, env = "DB_USER")]
        user: String,
        /// Its password (default: DB_PASS).
        #[arg(long, env = "DB_PASS", hide_env_values = true)]
        password: String,
    },
    /// Run a local demo cluster: a master and N slaves, each with its own throwaway MariaDB.
    Demo {
        /// Number of slaves.
        #[arg(long, default_value_t = 2)]
        slaves: usize,
        /// Client port of the master; slave i listens on PORT + i.
        #[arg(long, default_value_t = 3307)]
        port: u16,
        /// Keep the backends' data in this directory (default: a temporary one, removed on exit).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Clients each node serves at once.
        #[arg(long, default_value_t = 1000)]
        max_connections: usize,
        /// Console (admin HTTP) port of the master; slave i uses PORT + i; 0 picks free ports.
        /// Default: the client port + 1000.
        #[arg(long)]
        console_port: Option<u16>,
    },
}

fn main() -> ExitCode {
    // .env first: command-line defaults (e.g. checksum's --user) come from it.
    if let Err(e) = load_dotenv() {
        eprintln!("myrelay: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("myrelay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Node {
                config,
                check_config,
            } => {
                let path = config;
                let config = NodeConfig::load(&path, &EnvSecrets).map_err(|e| e.to_string())?;
                if check_config {
                    println!(
                        "{}: ok ({} node {})",
                        path.display(),
                        config.role.as_str(),
                        config.name
                    );
                    return Ok(());
                }
                let listen = config.listen;
                let signals = myrelay::admin::reload::Signals::install();
                let mut handle = node::start(config)
                    .await
                    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
                signals.until_stopped(&mut handle, &path).await;
                handle.drain().await;
                Ok(())
            }
            Command::Checksum {
                nodes,
                user,
                password,
            } => {
                let reports = myrelay::checksum::compare(&nodes, &user, &password).await?;
                if myrelay::checksum::print(&nodes, &reports) {
                    Ok(())
                } else {
                    Err("nodes differ".to_string())
                }
            }
            Command::Demo {
                slaves,
                port,
                data_dir,
                max_connections,
                console_port,
            } => demo::run(DemoOptions {
                slaves,
                port,
                data_dir,
                max_connections,
                console_port: console_port.unwrap_or(port.saturating_add(1000)),
            })
            .await
            .map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("myrelay: {message}");
            ExitCode::FAILURE
        }
    }
}
