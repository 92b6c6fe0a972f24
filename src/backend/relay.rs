//! Relays a backend's reply (to a query, or to a prepared statement's execution) to the client,
//! one result set after another, row by row: columns go out with every field the backend sent,
//! values as the backend sent them (text, or re-encoded binary), OK packets with their affected
//! rows, insert id, status, warnings and info text.
//!
//! Rows are streamed (flushed every 64 KiB), never collected, so a large result costs bounded
//! memory.

use std::net::SocketAddr;
use std::sync::Arc;

use mysql_async::prelude::{Protocol, Queryable};
use mysql_async::{BinaryProtocol, Conn, Params, QueryResult, Statement, TextProtocol};
use mysql_common::constants::StatusFlags;
use mysql_common::packets::OkPacket;
use tokio::io::AsyncWrite;

use super::pool::{Backend, BackendFailure, failure};
use crate::frontend::reply::{OkInfo, Replies};
use crate::sql::quote_ident;

/// Why a relay ended early.
#[derive(Debug)]
pub enum RelayError {
    /// The backend reported an error or was lost; the client has been sent the error packet.
    Backend(BackendFailure),
    /// Writing to the client failed: the client is gone, the backend reply was not drained.
    Client(std::io::Error),
}

/// Status bits that describe the session rather than one packet; carried into replies whose own
/// status the driver does not expose.
const SESSION_BITS: u16 = StatusFlags::SERVER_STATUS_IN_TRANS.bits()
    | StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits()
    | StatusFlags::SERVER_STATUS_IN_TRANS_READONLY.bits();

/// The client-facing fields of a backend OK packet (a default OK when there is none).
pub fn ok_info(ok: Option<&OkPacket<'_>>) -> OkInfo {
    match ok {
        Some(ok) => OkInfo {
            affected_rows: ok.affected_rows(),
            last_insert_id: ok.last_insert_id().unwrap_or(0),
            status: ok.status_flags().bits(),
            warnings: ok.warnings(),
            info: ok.info_ref().map(<[u8]>::to_vec).unwrap_or_default(),
            session_state: Vec::new(),
        },
        None => OkInfo::default(),
    }
}

/// Moves to the result set the connection is positioned on: its columns (empty for an OK packet),
/// or `None` when all sets are read. The driver defers a later statement's error until asked, so
/// this asks: the error surfaces here, after the previous set was relayed in full.
async fn next_set<P: Protocol>(
    conn: &mut Conn,
) -> mysql_async::Result<Option<Arc<[mysql_async::Column]>>> {
    let mut result = QueryResult::<P>::new(&mut *conn);
    match result.columns() {
        Some(columns) => Ok(Some(columns)),
        None => result.next().await.map(|_| None),
    }
}

/// Makes `data` the file `conn`'s next `LOAD DATA LOCAL INFILE` sends: a backend never reads a
/// file of the node's own, only the bytes a client sent (or the log recorded).
pub fn supply_infile(conn: &mut Conn, data: bytes::Bytes) {
    conn.set_infile_handler(async move {
        let file: mysql_async::InfileData = Box::pin(futures_util::stream::iter([Ok(data)]));
        Ok(file)
    });
}

/// Runs `sql` on `conn` (a connection to `server`) and writes the complete reply to the client
/// (not flushed). The first `hidden` results answer statements of the node's own that lead the
/// packet (saving their round trips) and must be OK packets; they are not relayed. Returns the
/// session status bits of the last packet relayed.
pub async fn relay_query<W: AsyncWrite + Unpin>(
    server: SocketAddr,
    conn: &mut Conn,
    sql: &[u8],
    hidden: usize,
    replies: &mut Replies<W>,
    status: u16,
) -> Result<u16, RelayError> {
    match conn.query_iter(sql).await {
        Ok(result) => drop(result),
        Err(e) => return Err(fail(server, replies, e)),
    }
    relay_sets::<TextProtocol, W>(server, conn, replies, status, hidden, false).await
}

/// Executes prepared `stmt` with `params` and writes the reply in the binary protocol.
pub async fn relay_execute<W: AsyncWrite + Unpin>(
    server: SocketAddr,
    conn: &mut Conn,
    stmt: &Statement,
    params: Params,
    replies: &mut Replies<W>,
    status: u16,
) -> Result<u16, RelayError> {
    match conn.exec_iter(stmt, params).await {
        Ok(result) => drop(result),
        Err(e) => return Err(fail(server, replies, e)),
    }
    relay_sets::<BinaryProtocol, W>(server, conn, replies, status, 0, true).await
}

fn fail<W: AsyncWrite + Unpin>(
    server: SocketAddr,
    replies: &mut Replies<W>,
    err: mysql_async::Error,
) -> RelayError {
    let failure = failure(server, err);
    replies.error(&failure.reply);
    RelayError::Backend(failure)
}

/// Writes every result set the connection has pending, read as protocol `P`, but for the first
/// `hidden` (OK packets of the node's own statements); rows go to the client in the binary
/// encoding when `binary` (prepared statements), else as text.
async fn relay_sets<P: Protocol, W: AsyncWrite + Unpin>(
    server: SocketAddr,
    conn: &mut Conn,
    replies: &mut Replies<W>,
    mut status: u16,
    mut hidden: usize,
    binary: bool,
) -> Result<u16, RelayError> {
    let fail = |replies: &mut Replies<W>, err: mysql_async::Error| fail(server, replies, err);
    let mut next = next_set::<P>(conn).await;
    loop {
        let columns = match next {
            Ok(Some(columns)) => columns,
            Ok(None) => return Ok(status),
            Err(e) => return Err(fail(replies, e)),
        };
        if columns.is_empty() {
            let ok = ok_info(conn.last_ok_packet());
            if hidden > 0 {
                hidden -= 1;
            } else {
                status = ok.status;
                replies.ok(&ok);
            }
            // Consumes this OK so the connection moves on to the next set, if any.
            if let Err(e) = QueryResult::<P>::new(&mut *conn).next().await {
                return Err(fail(replies, e));
            }
            next = next_set::<P>(conn).await;
            continue;
        }
        replies.columns(&columns, status & SESSION_BITS);
        let mut result = QueryResult::<P>::new(&mut *conn);
        loop {
            match result.next().await {
                Ok(Some(row)) => {
                    if binary {
                        replies.binary_row(&columns, &row.unwrap_raw());
                    } else {
                        replies.text_row(&row.unwrap_raw());
                    }
                    replies
                        .out
                        .flush_if_full()
                        .await
                        .map_err(RelayError::Client)?;
                }
                Ok(None) => break,
                // An error instead of the end of the rows (e.g. the query was killed): the client
                // must not take the rows it got for a complete result.
                Err(e) => return Err(fail(replies, e)),
            }
        }
        drop(result);
        // Reading the end of the rows also read the next set's header. If that set is an OK
        // packet, it has replaced the terminator's; the terminator's warning count is then lost.
        next = next_set::<P>(conn).await;
        let more = !matches!(next, Ok(None));
        let next_is_ok = matches!(&next, Ok(Some(c)) if c.is_empty());
        let end = ok_info(conn.last_ok_packet());
        let mut end_status = if next_is_ok || next.is_err() {
            status & SESSION_BITS
        } else {
            end.status
        };
        if more {
            end_status |= StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits();
        }
        let warnings = if next_is_ok || next.is_err() {
            0
        } else {
            end.warnings
        };
        replies.end_of_rows(warnings, end_status);
        status = end_status;
    }
}

/// Selects `db` on `conn` (the backend's own `USE`, so its error, e.g. 1049, passes through).
pub async fn use_database(
    backend: &Backend,
    conn: &mut Conn,
    db: &str,
) -> Result<(), BackendFailure> {
    let sql = format!("USE {}", quote_ident(db));
    conn.query_drop(sql).await.map_err(|e| backend.failure(e))
}
