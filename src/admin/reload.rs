//! A node process's signals: SIGTERM (or SIGINT) ends [`Signals::until_stopped`] so that the
//! caller drains the node; SIGHUP re-reads the config file and swaps in its users and their roles
//! without dropping a connection, and counts the reload (`myrelay_config_reloads_total`).

use std::collections::BTreeMap;
use std::path::Path;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{info, warn};

use crate::config::{EnvSecrets, NodeConfig, Secrets};
use crate::node::NodeHandle;

/// Secrets for a reload: the process environment, then `.env` as it is now, so that a user
/// added with a new password variable in `.env` can log in without a restart. A variable that
/// was set when the node started keeps that value.
struct ReloadSecrets(BTreeMap<String, String>);

impl ReloadSecrets {
    fn read() -> ReloadSecrets {
        let file = dotenvy::dotenv_iter()
            .map(|entries| entries.filter_map(Result::ok).collect())
            .unwrap_or_default();
        ReloadSecrets(file)
    }
}

impl Secrets for ReloadSecrets {
    fn get(&self, key: &str) -> Option<String> {
        EnvSecrets.get(key).or_else(|| self.0.get(key).cloned())
    }
}

/// Re-reads `path` and applies what a reload may change; a config that does not load changes
/// nothing (and is counted as a failed reload). Returns what changed, or the error.
pub fn reload(handle: &NodeHandle, path: &Path) -> Result<crate::node::Reloaded, String> {
    match NodeConfig::load(path, &ReloadSecrets::read()) {
        Ok(config) => Ok(handle.reload(&config)),
        Err(e) => {
            let why = e.to_string();
            handle.shared.reload_failed(&why);
            Err(why)
        }
    }
}

/// The process's signal handlers, installed before the node listens: a SIGHUP sent as soon as
/// the client port answers is then a reload, never the default action (ending the process).
pub struct Signals(Option<(Signal, Signal, Signal)>);

impl Signals {
    /// Installs the SIGTERM, SIGINT and SIGHUP handlers (logged if the OS refuses).
    pub fn install() -> Signals {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Signals(Some((term, int, hup))),
            _ => {
                warn!("cannot install signal handlers; stopping on Ctrl-C only");
                Signals(None)
            }
        }
    }

    /// Serves until SIGTERM or SIGINT (or until the node stops by itself), reloading users from
    /// `path` on every SIGHUP.
    pub async fn until_stopped(self, handle: &mut NodeHandle, path: &Path) {
        let Some((mut term, mut int, mut hup)) = self.0 else {
            tokio::select! {
                _ = handle.wait() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        };
        loop {
            tokio::select! {
                _ = handle.wait() => return,
                _ = term.recv() => return,
                _ = int.recv() => return,
                _ = hup.recv() => match reload(handle, path) {
                    Ok(done) => {
                        info!(
                            file = %path.display(),
                            generation = done.generation,
                            users_changed = done.users_changed,
                            "reloaded users and roles"
                        );
                        if !done.needs_restart.is_empty() {
                            warn!(
                                keys = ?done.needs_restart,
                                "config changes that need a restart were not applied"
                            );
                        }
                    }
                    Err(e) => warn!(
                        error = %e,
                        failed = handle.shared.reloads().failed,
                        "reload failed; the node keeps its users"
                    ),
                },
            }
        }
    }
}
