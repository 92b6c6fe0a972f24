//! SQL understanding: what a statement is ([`classify`]) and whether this node runs it ([`policy`]).

pub mod classify;
pub mod determinism;
pub mod keywords;
pub mod lexer;
pub mod local_infile;
pub mod policy;
