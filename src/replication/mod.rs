//! Replication: the master logs every committed change durably and in commit order; slaves apply
//! the log exactly once.
//!
//! [`change`] is what one log entry holds; [`apply`] replays it on a backend together with the
//! applied-LSN bookkeeping.

pub mod apply;
pub mod change;
pub mod channel;
pub mod log;
pub mod master;
pub mod slave;
pub mod tls;
