//! myrelay: a MySQL front for a small replicated cluster.
//!
//! A node speaks the MySQL wire protocol to stock clients ([`frontend`]), classifies each
//! statement and checks it against the node's role and the client's user ([`sql`]), and relays
//! what it allows to its own MySQL/MariaDB server ([`backend`]). [`config`] reads a node's TOML
//! file and secrets, [`node`] runs the accept loop, [`replication`] keeps slaves in step with
//! the master, [`checksum`] compares their data, [`admin`]
//! serves each node's web console, health, metrics and [`history`] (its last 15 minutes), and
//! [`events`] keeps what happened when.

#![warn(missing_docs)]

pub mod admin;
pub mod backend;
pub mod checksum;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod frontend;
pub mod history;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod packet;
pub mod replication;
pub mod sql;
