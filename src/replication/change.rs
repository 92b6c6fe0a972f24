//! A replicated change: what the master committed, with the context that makes replay give the
//! same result on every slave (current database, sql_mode, charset, pinned time and insert ids).

use serde::{Deserialize, Serialize};

/// One statement as the master ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedStatement {
    /// The SQL text as the client sent it.
    pub sql: String,
    /// Database current when it ran.
    pub db: Option<String>,
    /// `SET TIMESTAMP` value (seconds with microseconds) pinned while it ran, so `NOW()` and
    /// `CURRENT_TIMESTAMP` replay to the same value.
    pub timestamp: String,
    /// First AUTO_INCREMENT value it generated, replayed with `SET INSERT_ID`.
    pub insert_id: Option<u64>,
    /// The session's `LAST_INSERT_ID()` before it ran, for statements that read it; replayed
    /// with `SET LAST_INSERT_ID`, since the applier's session has its own.
    #[serde(default)]
    pub last_insert_id: Option<u64>,
    /// The file a `LOAD DATA LOCAL INFILE` read from the client, in hex; replay hands the
    /// backend these bytes, since the client's file exists nowhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infile: Option<String>,
}

impl LoggedStatement {
    /// Logs `data` as the statement's LOCAL INFILE file.
    pub fn with_infile(mut self, data: Option<&[u8]>) -> Self {
        self.infile = data.map(|d| d.iter().map(|b| format!("{b:02x}")).collect());
        self
    }

    /// The logged LOCAL INFILE file, if any; `Err` for a damaged entry.
    pub fn infile_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(hex) = &self.infile else {
            return Ok(None);
        };
        let digits = hex.as_bytes();
        if digits.len() % 2 != 0 {
            return Err("odd-length infile data".into());
        }
        digits
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
                    .ok_or_else(|| "bad infile data".to_string())
            })
            .collect::<Result<Vec<u8>, String>>()
            .map(Some)
    }
}

/// One committed unit: a whole transaction or one autocommit statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `@@session.sql_mode` of the writing session.
    pub sql_mode: String,
    /// `@@character_set_client` of the writing session (the statements' encoding).
    pub charset: String,
    /// True for DDL, which MariaDB commits implicitly and cannot run inside a transaction.
    pub ddl: bool,
    /// The statements, in the order they ran.
    pub statements: Vec<LoggedStatement>,
}

impl Change {
    /// Encodes for the log.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a log payload.
    pub fn decode(bytes: &[u8]) -> Result<Change, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("undecodable replication entry: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let change = Change {
            sql_mode: "STRICT_TRANS_TABLES".into(),
            charset: "utf8mb4".into(),
            ddl: false,
            statements: vec![
                LoggedStatement {
                    sql: "INSERT INTO t VALUES ('😀\\0')".into(),
                    db: Some("school".into()),
                    timestamp: "1700000000.123456".into(),
                    insert_id: Some(42),
                    last_insert_id: None,
                    infile: None,
                }
                .with_infile(Some(b"1,a\n\xff")),
            ],
        };
        assert_eq!(
            change.statements[0].infile_bytes(),
            Ok(Some(b"1,a\n\xff".to_vec()))
        );
        assert_eq!(Change::decode(&change.encode()), Ok(change));
        assert!(Change::decode(b"{not json").is_err());
    }
}
