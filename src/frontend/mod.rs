//! The client-facing side: MySQL wire protocol framing, handshake, replies, and the per-client
//! session that applies the policy and relays to the backend.

pub mod command;
pub mod compress;
pub mod handshake;
pub mod prepared;
pub mod reply;
pub mod session;
pub mod tls;
