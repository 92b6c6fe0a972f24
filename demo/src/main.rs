//! `myrelay-demo`: a local replicating cluster, a master and N slaves each with its own
//! throwaway MariaDB, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use myrelay_demo::DemoOptions;

/// Run a local demo cluster: a master and N slaves, each with its own throwaway MariaDB.
#[derive(Parser)]
#[command(name = "myrelay-demo", version)]
struct Cli {
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
    /// Do not sample the nodes' counters for the consoles' plots (bench/run measures the cost).
    #[arg(long)]
    no_history: bool,
}

/// A variable from `.env` or the environment; empty counts as unset.
fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn main() -> ExitCode {
    if let Err(e) = myrelay::config::load_dotenv() {
        eprintln!("myrelay-demo: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    myrelay::logging::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("myrelay-demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (Some(db_user), Some(db_pass)) = (env("DB_USER"), env("DB_PASS")) else {
        eprintln!(
            "myrelay-demo: DB_USER and DB_PASS must be set: copy .env.example to .env (or export them)"
        );
        return ExitCode::FAILURE;
    };
    let options = DemoOptions {
        slaves: cli.slaves,
        port: cli.port,
        data_dir: cli.data_dir,
        max_connections: cli.max_connections,
        console_port: cli.console_port.unwrap_or(cli.port.saturating_add(1000)),
        db_user,
        db_pass,
        app_pass: env("APP_PASS"),
        reader_pass: env("READER_PASS"),
        cluster_secret: env("CLUSTER_SECRET"),
        history: !cli.no_history,
    };
    match runtime.block_on(myrelay_demo::cluster::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("myrelay-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
