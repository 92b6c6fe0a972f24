//! The statements a MariaDB replica sends to its master before it asks for the binlog: a fixed
//! vocabulary, which a slave node answers when its own backend replicates from it.

/// What a replica's statement asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaQuery {
    /// `SELECT UNIX_TIMESTAMP()`: the master's clock.
    UnixTimestamp,
    /// `SHOW VARIABLES LIKE 'SERVER_ID'` (or `SELECT @@GLOBAL.SERVER_ID`).
    ServerId,
    /// `SELECT @master_binlog_checksum`: the checksum of the events it will get.
    Checksum,
    /// `SELECT @@GLOBAL.gtid_domain_id`.
    DomainId,
    /// `SET @slave_connect_state = '…'`: where it wants the binlog from.
    ConnectState(String),
    /// Any other `SET` of the replica's session (heartbeat period, capability, strict mode…).
    Set,
    /// Anything else; a master that is not a server answers it with an error.
    Other,
}

/// Reads one statement of a replica.
pub fn replica_query(sql: &[u8]) -> ReplicaQuery {
    let words = super::words(sql);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["SELECT", "UNIX_TIMESTAMP()"] => ReplicaQuery::UnixTimestamp,
        ["SHOW", "VARIABLES", "LIKE", "'SERVER_ID'"] | ["SELECT", "@@GLOBAL.SERVER_ID"] => {
            ReplicaQuery::ServerId
        }
        ["SELECT", "@MASTER_BINLOG_CHECKSUM"] => ReplicaQuery::Checksum,
        ["SELECT", "@@GLOBAL.GTID_DOMAIN_ID"] => ReplicaQuery::DomainId,
        ["SET", rest @ ..] => {
            let text = rest.join(" ");
            match text.strip_prefix("@SLAVE_CONNECT_STATE") {
                Some(value) => {
                    let value = value.trim_start().trim_start_matches('=').trim();
                    ReplicaQuery::ConnectState(value.trim_matches('\'').to_string())
                }
                None => ReplicaQuery::Set,
            }
        }
        _ => ReplicaQuery::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_mariadb_10_11_sends() {
        assert_eq!(
            replica_query(b"SELECT UNIX_TIMESTAMP()"),
            ReplicaQuery::UnixTimestamp
        );
        assert_eq!(
            replica_query(b"SHOW VARIABLES LIKE 'SERVER_ID'"),
            ReplicaQuery::ServerId
        );
        assert_eq!(
            replica_query(b"SELECT @master_binlog_checksum"),
            ReplicaQuery::Checksum
        );
        assert_eq!(
            replica_query(b"SELECT @@GLOBAL.gtid_domain_id"),
            ReplicaQuery::DomainId
        );
        assert_eq!(
            replica_query(b"SET @slave_connect_state='0-1-5,1-2-3'"),
            ReplicaQuery::ConnectState("0-1-5,1-2-3".into())
        );
        assert_eq!(
            replica_query(b"SET @slave_connect_state=''"),
            ReplicaQuery::ConnectState(String::new())
        );
        assert_eq!(
            replica_query(b"SET @master_heartbeat_period= 30000001024"),
            ReplicaQuery::Set
        );
        assert_eq!(replica_query(b"SELECT 1"), ReplicaQuery::Other);
    }
}
