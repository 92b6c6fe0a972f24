//! The classes a statement can be in, which the policy judges.

/// Ordered from least to most restrictive, so `max()` picks the class a multi-statement packet is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatementClass {
    /// Reads data and changes nothing on the server.
    Read,
    /// Changes only the connection's own state (variables, current database,
    /// temporary tables, table locks, prepared statements).
    Session,
    /// Starts, ends or shapes a transaction.
    Transaction,
    /// Changes rows (or may: CALL, EXECUTE, sequence advances).
    Write,
    /// Changes schema objects, or runs a compound statement that might.
    Ddl,
    /// Server administration, privileges, server files, or anything the
    /// classifier does not understand.
    Admin,
}

impl StatementClass {
    /// Stable lower-case name, for configuration and error messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            StatementClass::Read => "read",
            StatementClass::Session => "session",
            StatementClass::Transaction => "transaction",
            StatementClass::Write => "write",
            StatementClass::Ddl => "ddl",
            StatementClass::Admin => "admin",
        }
    }
}
