//! Relays a backend's reply to the client as the server wrote it: every packet goes out
//! byte for byte, renumbered into the client's sequence. The backend connection negotiated what
//! the client negotiated with the node (`session.rs`), so its packets are already in the form the
//! client expects: column definitions with MariaDB's extended metadata, binary rows in the
//! client's parameter types, OK packets with session tracking, warnings and info.
//!
//! The node reads only the headers that say where a reply ends and what state it leaves:
//! OK/EOF status flags (more results, transaction, cursor), the column count, a prepared
//! statement's id. Rows are streamed (flushed every 64 KiB), never collected.

use bytes::Bytes;
use mysql_common::constants::{CapabilityFlags, StatusFlags};
use tokio::io::AsyncWrite;

use super::wire::{Wire, WireError, column_count, end_of_rows, lenenc_int, ok_status};
use crate::packet::PacketWriter;

/// The shape of the reply a command gets, which says where it ends.
#[derive(Clone, Copy)]
pub enum Reply<'a> {
    /// COM_QUERY and COM_STMT_EXECUTE: result sets and OK packets, while "more results" is set.
    /// `cursor`: an execute that asked for a cursor, whose result set ends after its columns.
    Results {
        /// The execute asked for a read-only cursor.
        cursor: bool,
    },
    /// COM_STMT_PREPARE: the statement's OK, then its parameter and column definitions.
    Prepare,
    /// COM_STMT_FETCH: rows up to the end-of-rows packet.
    Rows,
    /// COM_FIELD_LIST: column definitions up to the end marker.
    FieldList,
    /// One packet: OK, ERR, EOF, or COM_STATISTICS's text.
    Single,
    /// COM_QUERY of a result the user may see only some rows of (a non-admin's `SHOW
    /// PROCESSLIST`, `SHOW DATABASES`): text rows `keep` says no to are left out.
    Filtered(Keep<'a>),
}

/// What a relayed reply left behind.
#[derive(Debug, Default)]
pub struct Relayed {
    /// Status flags of the last OK or EOF packet (before an error that ended the reply).
    pub status: Option<u16>,
    /// True when the reply ended with an error packet.
    pub failed: bool,
    /// COM_STMT_PREPARE: the statement the backend prepared.
    pub prepared: Option<PreparedReply>,
}

/// A prepared statement as the backend described it.
#[derive(Debug, Clone)]
pub struct PreparedReply {
    /// The backend's statement id (the client uses it as is).
    pub id: u32,
    /// How many parameters it has.
    pub params: u16,
    /// How many columns its result has.
    pub columns: u16,
}

/// Why a relay ended early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The backend connection failed; the client got part of a reply at most.
    #[error(transparent)]
    Backend(#[from] WireError),
    /// Writing to the client failed: the client is gone, the backend reply was not drained.
    #[error("client gone: {0}")]
    Client(#[from] std::io::Error),
}

/// Which text rows of a result go to the client.
pub type Keep<'k> = &'k (dyn Fn(&[u8]) -> bool + Sync);

/// Every row.
fn all(_: &[u8]) -> bool {
    true
}

/// The first column of a text row as text (`None` for NULL or a malformed row).
pub fn first_column(row: &[u8]) -> Option<&str> {
    let (len, at) = lenenc_int(row)?;
    let value = row.get(at..at.checked_add(usize::try_from(len).ok()?)?)?;
    std::str::from_utf8(value).ok()
}

/// Relays one packet from `wire` to `out` and returns it.
async fn pass<W: AsyncWrite + Unpin>(
    wire: &mut Wire,
    out: &mut PacketWriter<W>,
) -> Result<Vec<u8>, RelayError> {
    let p = wire.read().await?;
    out.packet(|b| b.extend_from_slice(&p));
    out.flush_if_full().await?;
    Ok(p)
}

/// Relays the reply to the command just sent on `wire` to the client's `out` (not flushed).
/// A `LOCAL INFILE` request is answered with `infile` (the file the node took from the client
/// beforehand), or with an empty file.
pub async fn relay<W: AsyncWrite + Unpin>(
    wire: &mut Wire,
    out: &mut PacketWriter<W>,
    reply: Reply<'_>,
    infile: &mut Option<Bytes>,
) -> Result<Relayed, RelayError> {
    match reply {
        Reply::Results { cursor } => results(wire, out, cursor, infile, &all).await,
        Reply::Filtered(keep) => results(wire, out, false, infile, keep).await,
        Reply::Prepare => prepare(wire, out).await,
        Reply::Rows => rows(wire, out, &all).await,
        Reply::FieldList => loop {
            let p = pass(wire, out).await?;
            match p.first() {
                Some(0xff) => return Ok(failed()),
                Some(0xfe) => return Ok(ended(end_of_rows(&p))),
                _ => {}
            }
        },
        Reply::Single => {
            let p = pass(wire, out).await?;
            Ok(match p.first() {
                Some(0xff) => failed(),
                Some(0x00) => ended(ok_status(&p)),
                Some(0xfe) => ended(end_of_rows(&p)),
                _ => Relayed::default(),
            })
        }
    }
}

/// The reply ended with an error packet.
fn failed() -> Relayed {
    Relayed {
        failed: true,
        ..Relayed::default()
    }
}

fn ended(status: Option<u16>) -> Relayed {
    Relayed {
        status,
        ..Relayed::default()
    }
}

fn more(status: u16) -> bool {
    status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() != 0
}

async fn results<W: AsyncWrite + Unpin>(
    wire: &mut Wire,
    out: &mut PacketWriter<W>,
    cursor: bool,
    infile: &mut Option<Bytes>,
    keep: Keep<'_>,
) -> Result<Relayed, RelayError> {
    let deprecate_eof = wire.caps().contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    let mut last = None;
    loop {
        let head = wire.read().await?;
        match head.first() {
            Some(0xfb) => {
                send_file(wire, infile.take()).await?;
                continue;
            }
            _ => out.packet(|b| b.extend_from_slice(&head)),
        }
        let status = match head.first() {
            Some(0x00) => ok_status(&head).unwrap_or(0),
            Some(0xff) => {
                return Ok(Relayed {
                    status: last,
                    ..failed()
                });
            }
            _ => {
                let columns =
                    column_count(&head).ok_or_else(|| wire.protocol("result set header".into()))?;
                for _ in 0..columns {
                    pass(wire, out).await?;
                }
                if !deprecate_eof {
                    let eof = pass(wire, out).await?;
                    let status = end_of_rows(&eof).unwrap_or(0);
                    if cursor && status & StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits() != 0 {
                        return Ok(ended(Some(status)));
                    }
                } else if cursor {
                    // With deprecate-EOF the server still ends a cursor's columns with an EOF
                    // packet, whose status says the cursor is open.
                    let eof = pass(wire, out).await?;
                    return Ok(ended(end_of_rows(&eof)));
                }
                match rows(wire, out, keep).await? {
                    Relayed {
                        status: Some(status),
                        ..
                    } => status,
                    failed => {
                        return Ok(Relayed {
                            status: last,
                            ..failed
                        });
                    }
                }
            }
        };
        last = Some(status);
        if !more(status) {
            return Ok(ended(Some(status)));
        }
    }
}

/// Rows up to their end marker (or an error, e.g. the query was killed); those `keep` refuses
/// are read and dropped.
async fn rows<W: AsyncWrite + Unpin>(
    wire: &mut Wire,
    out: &mut PacketWriter<W>,
    keep: Keep<'_>,
) -> Result<Relayed, RelayError> {
    loop {
        let p = wire.read().await?;
        let end = if p.first() == Some(&0xff) {
            Some(failed())
        } else {
            end_of_rows(&p).map(|status| ended(Some(status)))
        };
        if end.is_some() || keep(&p) {
            out.packet(|b| b.extend_from_slice(&p));
            out.flush_if_full().await?;
        }
        if let Some(end) = end {
            return Ok(end);
        }
    }
}

async fn prepare<W: AsyncWrite + Unpin>(
    wire: &mut Wire,
    out: &mut PacketWriter<W>,
) -> Result<Relayed, RelayError> {
    let head = pass(wire, out).await?;
    if head.first() != Some(&0x00) {
        return Ok(failed());
    }
    let field = |at: usize| {
        head.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let (Some(id), Some(columns), Some(params)) = (
        head.get(1..5)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        field(5),
        field(7),
    ) else {
        return Err(wire.protocol("prepare reply".into()).into());
    };
    let deprecate_eof = wire.caps().contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    for defs in [params, columns] {
        for _ in 0..defs {
            pass(wire, out).await?;
        }
        if defs > 0 && !deprecate_eof {
            pass(wire, out).await?;
        }
    }
    Ok(Relayed {
        status: None,
        failed: false,
        prepared: Some(PreparedReply {
            id,
            params,
            columns,
        }),
    })
}

/// Answers the server's request for a local file with `file` (in packets of at most 64 KiB),
/// then the empty packet that ends it.
async fn send_file(wire: &mut Wire, file: Option<Bytes>) -> Result<(), WireError> {
    if let Some(file) = file {
        for chunk in file.chunks(64 * 1024) {
            wire.send(chunk).await?;
        }
    }
    wire.send(&[]).await
}
