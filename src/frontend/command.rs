//! A client's command packet, parsed once into what it asks for.

/// Command bytes of the client/server protocol.
mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const DEBUG: u8 = 0x0d;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
}

/// What a client's packet asks for. Commands that name a prepared statement carry its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// COM_QUIT.
    Quit,
    /// COM_INIT_DB with the database name.
    InitDb(&'a [u8]),
    /// COM_QUERY with the SQL text.
    Query(&'a [u8]),
    /// COM_FIELD_LIST (the table name and wildcard).
    FieldList,
    /// COM_STATISTICS.
    Statistics,
    /// COM_PROCESS_KILL with the connection id (what old `mysql_kill` sends).
    ProcessKill(u32),
    /// COM_DEBUG.
    Debug,
    /// COM_PING.
    Ping,
    /// COM_CHANGE_USER with its body.
    ChangeUser(&'a [u8]),
    /// COM_STMT_PREPARE with the SQL text.
    StmtPrepare(&'a [u8]),
    /// COM_STMT_EXECUTE: statement id, flags (a cursor when non-zero), the whole body.
    StmtExecute {
        /// The statement.
        id: u32,
        /// Cursor flags.
        flags: u8,
        /// The body, for decoding parameters.
        body: &'a [u8],
    },
    /// COM_STMT_SEND_LONG_DATA: statement id, parameter, chunk; never answered.
    StmtSendLongData {
        /// The statement.
        id: u32,
        /// The parameter's index.
        param: u16,
        /// The data.
        chunk: &'a [u8],
    },
    /// COM_STMT_CLOSE with the statement id; never answered.
    StmtClose(u32),
    /// COM_STMT_RESET with the statement id.
    StmtReset(u32),
    /// COM_STMT_FETCH with the statement id.
    StmtFetch(u32),
    /// COM_SET_OPTION: multi-statements on (0) or off (1).
    SetOption(u16),
    /// COM_RESET_CONNECTION.
    ResetConnection,
    /// A command the node does not serve, or one too short for its fields.
    Unknown(u8),
}

impl<'a> Command<'a> {
    /// Parses a command packet (command byte, then body).
    pub fn parse(packet: &'a [u8]) -> Option<Command<'a>> {
        let (&command, body) = packet.split_first()?;
        let id = || {
            body.get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let with_id = |make: fn(u32) -> Command<'a>| id().map_or(Command::Unknown(command), make);
        Some(match command {
            com::QUIT => Command::Quit,
            com::INIT_DB => Command::InitDb(body),
            com::QUERY => Command::Query(body),
            com::FIELD_LIST => Command::FieldList,
            com::STATISTICS => Command::Statistics,
            com::PROCESS_KILL => with_id(Command::ProcessKill),
            com::DEBUG => Command::Debug,
            com::PING => Command::Ping,
            com::CHANGE_USER => Command::ChangeUser(body),
            com::STMT_PREPARE => Command::StmtPrepare(body),
            com::STMT_EXECUTE => match (id(), body.get(4)) {
                (Some(id), Some(&flags)) => Command::StmtExecute { id, flags, body },
                _ => Command::Unknown(command),
            },
            com::STMT_SEND_LONG_DATA => match (id(), body.get(4..6)) {
                (Some(id), Some(p)) => Command::StmtSendLongData {
                    id,
                    param: u16::from_le_bytes([p[0], p[1]]),
                    chunk: &body[6..],
                },
                _ => Command::Unknown(command),
            },
            com::STMT_CLOSE => with_id(Command::StmtClose),
            com::STMT_RESET => with_id(Command::StmtReset),
            com::STMT_FETCH => with_id(Command::StmtFetch),
            com::SET_OPTION => match body {
                [a, b] => Command::SetOption(u16::from_le_bytes([*a, *b])),
                _ => Command::Unknown(command),
            },
            com::RESET_CONNECTION => Command::ResetConnection,
            other => Command::Unknown(other),
        })
    }

    /// True for the commands the protocol never answers.
    pub fn unanswered(&self) -> bool {
        matches!(
            self,
            Command::StmtSendLongData { .. } | Command::StmtClose(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Command;

    #[test]
    fn parses_commands_and_refuses_short_ones() {
        assert_eq!(
            Command::parse(b"\x03SELECT 1"),
            Some(Command::Query(b"SELECT 1"))
        );
        assert_eq!(
            Command::parse(b"\x17\x05\0\0\0\x01\x01\0\0\0"),
            Some(Command::StmtExecute {
                id: 5,
                flags: 1,
                body: b"\x05\0\0\0\x01\x01\0\0\0"
            })
        );
        assert_eq!(Command::parse(b"\x19\x05\0"), Some(Command::Unknown(0x19)));
        assert_eq!(
            Command::parse(b"\x0c\x07\0\0\0"),
            Some(Command::ProcessKill(7))
        );
        assert_eq!(Command::parse(b""), None);
    }
}
