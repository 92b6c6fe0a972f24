//! The `myrelay` command line: run a node, or compare nodes' data.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use myrelay::config::{EnvSecrets, NodeConfig, load_dotenv};
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
}

fn main() -> ExitCode {
    // .env first: command-line defaults (e.g. checksum's --user) come from it.
    if let Err(e) = load_dotenv() {
        eprintln!("myrelay: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    myrelay::logging::init();
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
