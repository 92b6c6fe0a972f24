//! What the node reads of binlog events: their header, the GTID that starts a transaction, and
//! where a transaction ends. Everything else is relayed as the bytes the server wrote.
//!
//! Layout (binlog v4): a 19-byte header `timestamp u32 | type u8 | server_id u32 | size u32 |
//! log_pos u32 | flags u16`, the body, and with `binlog_checksum=CRC32` a 4-byte checksum.

use super::gtid::Gtid;

/// Length of the v4 event header.
pub const HEADER_LEN: usize = 19;

/// Event type codes the node looks at.
pub mod kind {
    /// A statement (DDL, `BEGIN`, `COMMIT` of a non-transactional group, `XA COMMIT`…).
    pub const QUERY: u8 = 2;
    /// The dump names the binlog file it reads.
    pub const ROTATE: u8 = 4;
    /// Describes the events that follow; carries the checksum algorithm.
    pub const FORMAT_DESCRIPTION: u8 = 15;
    /// Commit of a transactional group.
    pub const XID: u8 = 16;
    /// The master is alive while it has nothing to send.
    pub const HEARTBEAT: u8 = 27;
    /// End of an `XA PREPARE` group.
    pub const XA_PREPARE: u8 = 38;
    /// MariaDB: start of a transaction, with its GTID.
    pub const GTID: u8 = 162;
    /// MariaDB: the position the dump starts from.
    pub const GTID_LIST: u8 = 163;
}

/// MariaDB GTID event flag: the group is one statement, without BEGIN/COMMIT (DDL).
const FL_STANDALONE: u8 = 1;

/// An event's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Seconds since the epoch when the master wrote it.
    pub timestamp: u32,
    /// Event type.
    pub kind: u8,
    /// Server that wrote it first.
    pub server_id: u32,
    /// Whole event length, header and checksum included.
    pub size: u32,
}

/// Why bytes are not a binlog event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed binlog event: {0}")]
pub struct BadEvent(pub &'static str);

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the header of `event`, checking that its size field matches its length.
pub fn header(event: &[u8]) -> Result<Header, BadEvent> {
    if event.len() < HEADER_LEN {
        return Err(BadEvent("shorter than its header"));
    }
    let size = u32_at(event, 9).ok_or(BadEvent("size"))?;
    if usize::try_from(size).ok() != Some(event.len()) {
        return Err(BadEvent("size field differs from its length"));
    }
    Ok(Header {
        timestamp: u32_at(event, 0).ok_or(BadEvent("timestamp"))?,
        kind: event[4],
        server_id: u32_at(event, 5).ok_or(BadEvent("server id"))?,
        size,
    })
}

/// Splits the first event off `events` (events back to back, as a master relays them).
pub fn next_event(events: &[u8]) -> Result<(&[u8], &[u8]), BadEvent> {
    let size = u32_at(events, 9).ok_or(BadEvent("shorter than its header"))?;
    let size = usize::try_from(size).map_err(|_| BadEvent("size"))?;
    if size < HEADER_LEN || size > events.len() {
        return Err(BadEvent("size field beyond the events"));
    }
    Ok(events.split_at(size))
}

/// True when a format description event says the events carry a CRC32 checksum: its
/// algorithm byte sits right before its own 4-byte checksum field.
pub fn checksummed(format_description: &[u8]) -> bool {
    format_description
        .len()
        .checked_sub(5)
        .and_then(|at| format_description.get(at))
        == Some(&1)
}

/// The GTID of a MariaDB GTID event (`seq u64 | domain u32 | flags u8` after the header),
/// and whether it starts a standalone group.
pub fn gtid(event: &[u8]) -> Result<(Gtid, bool), BadEvent> {
    let h = header(event)?;
    let body = event
        .get(HEADER_LEN..HEADER_LEN + 13)
        .ok_or(BadEvent("short GTID event"))?;
    let seq = u64::from_le_bytes(body[..8].try_into().map_err(|_| BadEvent("seq"))?);
    let domain = u32_at(body, 8).ok_or(BadEvent("domain"))?;
    let gtid = Gtid {
        domain,
        server: h.server_id,
        seq,
    };
    Ok((gtid, body[12] & FL_STANDALONE != 0))
}

/// The statement text of a query event (`thread u32 | exec_time u32 | db_len u8 | error u16 |
/// status_len u16 | status | db NUL | text`), without the checksum.
fn query_text(event: &[u8], checksum: bool) -> Option<&[u8]> {
    let body = event.get(HEADER_LEN..event.len() - if checksum { 4 } else { 0 })?;
    let db_len = usize::from(*body.get(8)?);
    let status_len = usize::from(u16::from_le_bytes([*body.get(11)?, *body.get(12)?]));
    body.get(13 + status_len + db_len + 1..)
}

/// Where an event leaves the transaction it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not part of a transaction (rotate, format description, GTID list, heartbeat…).
    Outside,
    /// Inside the open transaction.
    Inside,
    /// The last event of transaction `Gtid`.
    Ends(Gtid),
}

/// Follows a binlog stream and tells where each transaction (MariaDB's event group) ends, so
/// that the master relays whole transactions.
#[derive(Debug, Default)]
pub struct Groups {
    checksum: bool,
    open: Option<(Gtid, bool)>,
}

impl Groups {
    /// Places `event` (a whole event, header to checksum).
    pub fn step(&mut self, event: &[u8]) -> Result<Step, BadEvent> {
        let h = header(event)?;
        match h.kind {
            kind::FORMAT_DESCRIPTION => {
                self.checksum = checksummed(event);
                Ok(Step::Outside)
            }
            kind::GTID => {
                self.open = Some(gtid(event)?);
                Ok(Step::Inside)
            }
            _ => {
                let Some((gtid, standalone)) = self.open else {
                    return Ok(Step::Outside);
                };
                let ends = match h.kind {
                    kind::XID | kind::XA_PREPARE => true,
                    // The annotation of the rows that follow never ends a group.
                    160 => false,
                    kind::QUERY if standalone => true,
                    kind::QUERY => matches!(
                        query_text(event, self.checksum),
                        Some(b"COMMIT" | b"ROLLBACK")
                    ),
                    _ => false,
                };
                if ends {
                    self.open = None;
                    Ok(Step::Ends(gtid))
                } else {
                    Ok(Step::Inside)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind_: u8, server: u32, body: &[u8], checksum: bool) -> Vec<u8> {
        let size = HEADER_LEN + body.len() + if checksum { 4 } else { 0 };
        let mut e = Vec::new();
        e.extend_from_slice(&1u32.to_le_bytes());
        e.push(kind_);
        e.extend_from_slice(&server.to_le_bytes());
        e.extend_from_slice(&(size as u32).to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        if checksum {
            e.extend_from_slice(&[9, 9, 9, 9]);
        }
        e
    }

    fn gtid_event(seq: u64, flags: u8) -> Vec<u8> {
        let mut body = seq.to_le_bytes().to_vec();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.push(flags);
        body.extend_from_slice(&[0; 6]);
        event(kind::GTID, 7, &body, true)
    }

    fn query(text: &[u8]) -> Vec<u8> {
        let mut body = vec![0u8; 8];
        body.push(1); // db_len
        body.extend_from_slice(&[0, 0]); // error
        body.extend_from_slice(&2u16.to_le_bytes());
        body.extend_from_slice(&[0xaa, 0xbb]); // status vars
        body.extend_from_slice(b"d\0");
        body.extend_from_slice(text);
        event(kind::QUERY, 7, &body, true)
    }

    #[test]
    fn groups_end_at_xid_commit_or_after_a_standalone_statement() {
        let mut fde = event(kind::FORMAT_DESCRIPTION, 7, &[0; 60], false);
        let at = fde.len() - 5;
        fde[at] = 1;
        let mut g = Groups::default();
        assert_eq!(g.step(&fde), Ok(Step::Outside));
        assert_eq!(g.step(&gtid_event(5, 0)), Ok(Step::Inside));
        assert_eq!(g.step(&query(b"BEGIN")), Ok(Step::Inside));
        assert_eq!(g.step(&event(19, 7, &[1; 10], true)), Ok(Step::Inside));
        let five = Gtid {
            domain: 0,
            server: 7,
            seq: 5,
        };
        assert_eq!(
            g.step(&event(kind::XID, 7, &[0; 8], true)),
            Ok(Step::Ends(five))
        );
        assert_eq!(
            g.step(&event(kind::HEARTBEAT, 7, b"f", true)),
            Ok(Step::Outside)
        );
        assert_eq!(g.step(&gtid_event(6, 0)), Ok(Step::Inside));
        assert_eq!(g.step(&query(b"BEGIN")), Ok(Step::Inside));
        assert!(matches!(g.step(&query(b"COMMIT")), Ok(Step::Ends(_))));
        assert_eq!(g.step(&gtid_event(7, 1)), Ok(Step::Inside));
        assert!(matches!(
            g.step(&query(b"CREATE TABLE t (a INT)")),
            Ok(Step::Ends(_))
        ));
    }

    #[test]
    fn back_to_back_events_split_by_their_size() {
        let a = event(kind::XID, 1, &[0; 8], false);
        let b = event(kind::HEARTBEAT, 1, b"log", true);
        let both = [a.clone(), b.clone()].concat();
        let (first, rest) = next_event(&both).expect("first");
        assert_eq!((first, rest), (&a[..], &b[..]));
        assert_eq!(next_event(rest).expect("second").0, &b[..]);
        assert!(next_event(&both[..both.len() - 1][a.len()..]).is_err());
    }

    #[test]
    fn malformed_events_are_refused_not_trusted() {
        assert!(header(&[0; 10]).is_err());
        let mut e = event(kind::XID, 1, &[0; 8], false);
        e.pop();
        assert!(header(&e).is_err());
        assert!(gtid(&event(kind::GTID, 1, &[0; 3], false)).is_err());
    }
}
