//! The node's own MySQL/MariaDB server: the node's client connections to it ([`wire`]: client
//! sessions, forwarded writes, binlog dumps), relaying its replies ([`relay`]), the pool for the
//! node's own work ([`pool`]) and what its stored functions do ([`functions`]).

pub mod functions;
pub mod pool;
pub mod relay;
pub mod wire;
