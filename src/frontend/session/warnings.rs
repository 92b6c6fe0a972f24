//! The client's warnings, kept across the node's own bookkeeping.
//!
//! On a replicating master the node runs statements of its own after a client's write (the LSN
//! record, COMMIT), and those clear the backend session's diagnostics. So when the client's
//! statement left warnings (or failed), the node reads them with `SHOW WARNINGS` first — which
//! clears nothing — and answers the client's next `SHOW WARNINGS` / `SHOW ERRORS` from that copy,
//! with the server's own column definitions. Any other command discards the copy, as the server
//! would discard its diagnostics.

use mysql_async::prelude::Queryable;
use mysql_async::{Column, Row};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::frontend::reply::ErrorReply;
use tracing::warn;

/// The result of `SHOW WARNINGS` as the backend gave it.
pub(super) struct Kept {
    columns: Vec<Column>,
    rows: Vec<Row>,
    /// Set when the copy would have passed `limits.max_buffered_result` (its size so far): the
    /// rows were not kept, and the client's `SHOW WARNINGS` is told why.
    too_large: Option<usize>,
}

/// Roughly what a row costs to hold: its values' bytes.
fn row_bytes(row: &Row) -> usize {
    (0..row.len())
        .map(|i| match row.as_ref(i) {
            Some(mysql_async::Value::Bytes(b)) => b.len() + 8,
            _ => 8,
        })
        .sum()
}

/// Which diagnostics statement `sql` is, if it is one the node can answer from a kept copy.
pub(super) fn diagnostics(sql: &[u8]) -> Option<Diagnostics> {
    let words = crate::sql::words(sql);
    if words == ["SHOW", "WARNINGS"] {
        Some(Diagnostics::Warnings)
    } else if words == ["SHOW", "ERRORS"] {
        Some(Diagnostics::Errors)
    } else {
        None
    }
}

/// `SHOW WARNINGS` (every level) or `SHOW ERRORS` (level Error only).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Diagnostics {
    /// `SHOW WARNINGS`.
    Warnings,
    /// `SHOW ERRORS`.
    Errors,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// Copies the backend session's diagnostics if the statement just run left any (`failed`:
    /// it ended in an error), before the node's own statements clear them.
    pub(super) async fn keep_warnings(&mut self, failed: bool) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if !failed && conn.get_warnings() == 0 {
            return;
        }
        let Ok(mut result) = conn.query_iter("SHOW WARNINGS").await else {
            return;
        };
        let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
        let limit = self.node.config.limits.max_buffered_result;
        let (mut rows, mut bytes) = (Vec::new(), 0);
        loop {
            match result.next().await {
                Ok(Some(row)) => {
                    bytes += row_bytes(&row);
                    if bytes <= limit {
                        rows.push(row);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        let too_large = (bytes > limit).then(|| {
            warn!(
                bytes,
                limit, "warnings not kept: larger than limits.max_buffered_result"
            );
            rows.clear();
            bytes
        });
        self.warnings = Some(Kept {
            columns,
            rows,
            too_large,
        });
    }

    /// Answers `which` from the kept copy.
    pub(super) fn show_kept(&mut self, kept: Kept, which: Diagnostics) {
        if let Some(bytes) = kept.too_large {
            self.replies.error(&ErrorReply::new(
                1041,
                "HY000",
                format!(
                    "Out of resources: node '{}' did not keep the last statement's diagnostics \
                     ({bytes} bytes or more), which it must hold in memory past its own bookkeeping \
                     statements; limits.max_buffered_result is {} bytes",
                    self.node.config.name, self.node.config.limits.max_buffered_result
                ),
            ));
            return;
        }
        self.replies.columns(&kept.columns, self.status);
        for row in &kept.rows {
            let values: Vec<_> = (0..row.len()).map(|i| row.as_ref(i).cloned()).collect();
            let is_error = matches!(
                values.first(),
                Some(Some(mysql_async::Value::Bytes(level))) if level.as_slice() == b"Error"
            );
            if which == Diagnostics::Warnings || is_error {
                self.replies.text_row(&values);
            }
        }
        self.replies.end_of_rows(0, self.status);
    }
}
