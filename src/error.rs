//! MySQL errors as the node sends them: code, SQLSTATE and message, and their server-range
//! twins for clients that refuse client-range codes from a server. A leaf: the protocol, the
//! policy and the backend all answer with these without depending on one another.

/// A MySQL error number with the SQLSTATE the server sends with it, one value, so a site
/// names the error and cannot pair its number with another's state. Only the table below
/// makes them; an error relayed from a server keeps its own (see [`ErrorReply::from_server`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    code: u16,
    state: [u8; 5],
}

impl Code {
    /// A state that is not five characters does not compile: every use is in a const.
    const fn new(code: u16, state: &str) -> Code {
        let s = state.as_bytes();
        assert!(s.len() == 5, "a SQLSTATE has five characters");
        Code {
            code,
            state: [s[0], s[1], s[2], s[3], s[4]],
        }
    }

    /// The MySQL error number.
    pub const fn code(self) -> u16 {
        self.code
    }

    /// The five-character SQLSTATE.
    pub const fn state(self) -> [u8; 5] {
        self.state
    }
}

// The errors the node sends, by MySQL's own names; numbers and states as in MariaDB's
// errmsg-utf8.txt (HY000 where it names none) and libmariadb's errmsg.h.

/// 1040: more clients than the node or its backend slots admit.
pub const ER_CON_COUNT_ERROR: Code = Code::new(1040, "08004");
/// 1044: the database is out of the user's reach (the node's bookkeeping database).
pub const ER_DBACCESS_DENIED_ERROR: Code = Code::new(1044, "42000");
/// 1045: login refused, or the user's account went away.
pub const ER_ACCESS_DENIED_ERROR: Code = Code::new(1045, "28000");
/// 1047: a command the node does not serve.
pub const ER_UNKNOWN_COM_ERROR: Code = Code::new(1047, "08S01");
/// 1053: the node is draining.
pub const ER_SERVER_SHUTDOWN: Code = Code::new(1053, "08S01");
/// 1064: what the node cannot take as one statement.
pub const ER_PARSE_ERROR: Code = Code::new(1064, "42000");
/// 1094: KILL of a connection that already ended.
pub const ER_NO_SUCH_THREAD: Code = Code::new(1094, "HY000");
/// 1105: the catch-all, also the server-range stand-in for client-range codes.
pub const ER_UNKNOWN_ERROR: Code = Code::new(1105, "HY000");
/// 1142: a write by a user whose role may only read.
pub const ER_TABLEACCESS_DENIED_ERROR: Code = Code::new(1142, "42000");
/// 1148: LOAD DATA LOCAL INFILE where it is not allowed.
pub const ER_NOT_ALLOWED_COMMAND: Code = Code::new(1148, "42000");
/// 1153: a packet over `max_allowed_packet`.
pub const ER_NET_PACKET_TOO_LARGE: Code = Code::new(1153, "08S01");
/// 1158: the server-range stand-in for a lost backend ([`CR_SERVER_LOST`]).
pub const ER_NET_READ_ERROR: Code = Code::new(1158, "08S01");
/// 1203: a user over `max_connections_per_user`.
pub const ER_TOO_MANY_USER_CONNECTIONS: Code = Code::new(1203, "42000");
/// 1210: parameters that do not fit the prepared statement.
pub const ER_WRONG_ARGUMENTS: Code = Code::new(1210, "HY000");
/// 1227: a statement that needs the admin role.
pub const ER_SPECIFIC_ACCESS_DENIED_ERROR: Code = Code::new(1227, "42000");
/// 1235: what the node does not do yet.
pub const ER_NOT_SUPPORTED_YET: Code = Code::new(1235, "42000");
/// 1243: EXECUTE of a statement never prepared.
pub const ER_UNKNOWN_STMT_HANDLER: Code = Code::new(1243, "HY000");
/// 1290: a slave refusing what must run on the master (as a read-only server does).
pub const ER_OPTION_PREVENTS_STATEMENT: Code = Code::new(1290, "HY000");
/// 1429: the server-range stand-in for an unreachable backend ([`CR_CONN_HOST_ERROR`]).
pub const ER_CONNECT_TO_FOREIGN_DATA_SOURCE: Code = Code::new(1429, "HY000");
/// 1927: the connection was killed (here: by a slave whose replication waited on its locks).
pub const ER_CONNECTION_KILLED: Code = Code::new(1927, "70100");
/// 4031: an idle client disconnected. MySQL's number (MariaDB sends nothing, and its 4031
/// means something else); clients that know it show the reason.
pub const ER_CLIENT_INTERACTION_TIMEOUT: Code = Code::new(4031, "HY000");
/// 2003: a backend the node cannot reach.
pub const CR_CONN_HOST_ERROR: Code = Code::new(2003, "HY000");
/// 2013: a backend lost mid-statement.
pub const CR_SERVER_LOST: Code = Code::new(2013, "HY000");
/// 2027: an error packet the node cannot read.
pub const CR_MALFORMED_PACKET: Code = Code::new(2027, "HY000");

/// The client-library range: codes a client makes up itself, which libmariadb refuses to
/// take from a server.
const CR_MIN_ERROR: u16 = 2000;
const CR_MAX_ERROR: u16 = 2999;

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
        let twin = match self.code {
            c if c == CR_CONN_HOST_ERROR.code => ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
            c if c == CR_SERVER_LOST.code => ER_NET_READ_ERROR,
            CR_MIN_ERROR..=CR_MAX_ERROR => return (ER_UNKNOWN_ERROR.code, self.state),
            _ => return (self.code, self.state),
        };
        (twin.code, twin.state)
    }

    /// The node's own error of kind `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ErrorReply {
            code: code.code,
            state: code.state,
            message: message.into(),
        }
    }

    /// A server's error, passed on with its own number and state; a state that is not five
    /// characters becomes HY000, as clients do.
    pub fn from_server(code: u16, state: &str, message: impl Into<String>) -> Self {
        ErrorReply {
            code,
            state: state.as_bytes().try_into().unwrap_or(*b"HY000"),
            message: message.into(),
        }
    }

    /// Whether this is an error of kind `code` (number and state).
    pub fn is(&self, code: Code) -> bool {
        self.code == code.code && self.state == code.state
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_range_codes_have_server_range_twins() {
        let lost = ErrorReply::new(CR_SERVER_LOST, "lost");
        assert_eq!(lost.server_range(), (1158, *b"08S01"));
        let unreachable = ErrorReply::new(CR_CONN_HOST_ERROR, "down");
        assert_eq!(unreachable.server_range(), (1429, *b"HY000"));
        let malformed = ErrorReply::new(CR_MALFORMED_PACKET, "bad");
        assert_eq!(malformed.server_range(), (1105, *b"HY000"));
        let refused = ErrorReply::new(ER_OPTION_PREVENTS_STATEMENT, "slave");
        assert_eq!(refused.server_range(), (1290, *b"HY000"));
    }

    #[test]
    fn a_server_state_that_is_not_five_characters_is_hy000() {
        assert_eq!(ErrorReply::from_server(1146, "42S02", "m").state, *b"42S02");
        assert_eq!(ErrorReply::from_server(1146, "", "m").state, *b"HY000");
    }
}
