//! Replication by the master backend's own binlog.
//!
//! [`master`] reads its backend's row-based binlog and relays whole transactions over the
//! [`channel`] (framing, authentication, optionally [`tls`]); on a slave, [`feed`] serves them
//! to the slave's backend, whose replica threads apply them, and [`slave`] keeps those threads
//! running and watches what they applied. [`binlog`] is what the node reads of the events,
//! [`gtid`] the positions. [`lock_wait`] keeps clients of a slave from holding its applier back.

pub mod binlog;
pub mod channel;
pub mod feed;
pub mod gtid;
pub mod lock_wait;
pub mod master;
pub mod slave;
pub mod tls;
