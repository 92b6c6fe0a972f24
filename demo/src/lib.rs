//! A local myrelay cluster for trying the proxy and for its tests: throwaway MariaDB servers
//! ([`launcher`]) and a master with N slaves on them, the `school` schema loaded ([`cluster`]).
//!
//! Kept out of the `myrelay` crate so that production nodes carry neither the launcher nor its
//! temporary-directory handling; the `myrelay` tests take their backends from here.

#![warn(missing_docs)]

pub mod cluster;
pub mod launcher;

pub use cluster::{Demo, DemoError, DemoOptions, SCHOOL_SQL};
