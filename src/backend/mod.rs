//! The node's own MySQL/MariaDB server: connection pools, relaying results to clients, a raw
//! client connection for binlog dumps ([`wire`]), and (for the demo and tests) launching
//! throwaway servers.

pub mod functions;
pub mod launcher;
pub mod pool;
pub mod relay;
pub mod wire;
