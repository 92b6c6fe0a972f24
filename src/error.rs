//! MySQL errors as the node sends them: code, SQLSTATE and message, and their server-range
//! twins for clients that refuse client-range codes from a server. A leaf: the protocol, the
//! policy and the backend all answer with these without depending on one another.

/// A MySQL error as sent to the client: code, SQLSTATE, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// MySQL error number.
    pub code: u16,
    /// Five-character SQLSTATE.
    pub state: [u8; 5],
    /// Message shown to the user.
    pub message: String,
}

impl ErrorReply {
    /// The server-range twin of a client-range error, for clients that refuse the latter: a
    /// backend that cannot be reached is a data source the node cannot connect to (1429, as
    /// FEDERATED reports it); a backend lost mid-statement is a communication error (1158).
    pub fn server_range(&self) -> (u16, [u8; 5]) {
        match self.code {
            2003 => (1429, *b"HY000"),
            2013 => (1158, *b"08S01"),
            2000..=2999 => (1105, self.state),
            _ => (self.code, self.state),
        }
    }

    /// Builds an error; `state` must be five ASCII characters.
    pub fn new(code: u16, state: &str, message: impl Into<String>) -> Self {
        let mut s = *b"HY000";
        if state.len() == 5 {
            s.copy_from_slice(state.as_bytes());
        }
        ErrorReply {
            code,
            state: s,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code,
            String::from_utf8_lossy(&self.state),
            self.message
        )
    }
}
