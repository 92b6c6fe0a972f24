//! `SHOW MYRELAY STATUS`: the node's role and position, and on a master one row per slave with
//! its link state, applied position and lag. Answered by the node itself, never sent to the
//! client's backend connection.
//!
//! `lsn` and `applied_lsn` are positions in the master's binlog as numbers (the GTID sequence
//! numbers summed over replication domains), `gtid` the position itself.

use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::packets::Column;
use mysql_common::value::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use mysql_async::prelude::Queryable;

use super::Session;
use crate::replication::gtid::Position;

/// Columns of the status result.
const COLUMNS: [(&str, bool); 9] = [
    ("node", false),
    ("role", false),
    ("lsn", true),
    ("connected", false),
    ("applied_lsn", true),
    ("lag_entries", true),
    ("lag_ms", true),
    ("state", false),
    ("gtid", false),
];

/// True for `SHOW MYRELAY STATUS` (any case and spacing, optional `;`).
pub(super) fn is_status_query(sql: &[u8]) -> bool {
    crate::sql::words(sql) == ["SHOW", "MYRELAY", "STATUS"]
}

fn column(name: &str, numeric: bool) -> Column {
    let column = Column::new(if numeric {
        ColumnType::MYSQL_TYPE_LONGLONG
    } else {
        ColumnType::MYSQL_TYPE_VAR_STRING
    })
    .with_name(name.as_bytes())
    .with_org_name(name.as_bytes());
    if numeric {
        column
            .with_character_set(63)
            .with_column_length(20)
            .with_flags(
                ColumnFlags::UNSIGNED_FLAG | ColumnFlags::BINARY_FLAG | ColumnFlags::NUM_FLAG,
            )
    } else {
        column.with_character_set(33).with_column_length(3 * 255)
    }
}

fn text(v: impl ToString) -> Option<Value> {
    Some(Value::Bytes(v.to_string().into_bytes()))
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// Queues the status result set.
    pub(super) async fn show_status(&mut self) {
        let config = &self.node.config;
        let mut rows: Vec<Vec<Option<Value>>> = Vec::new();
        if let Some(master) = &self.node.master {
            // The backend's binlog as it is now: a slave waits for this after a forwarded write.
            if let Ok(mut conn) = self.node.backend.acquire().await
                && let Ok(Some(pos)) = conn
                    .query_first::<String, _>("SELECT @@global.gtid_binlog_pos")
                    .await
                && let Ok(pos) = Position::parse(&pos)
            {
                master.saw(&pos);
            }
            let position = master.position();
            rows.push(vec![
                text(&config.name),
                text("master"),
                text(position.lsn()),
                None,
                None,
                None,
                None,
                text("serving"),
                text(&position),
            ]);
            for (name, slave) in master.slaves() {
                rows.push(vec![
                    text(name),
                    text("slave"),
                    None,
                    text(if slave.connected { "yes" } else { "no" }),
                    text(slave.applied.lsn()),
                    text(slave.applied.behind(&position)),
                    text(slave.lag_ms),
                    text(if slave.connected {
                        "streaming"
                    } else {
                        "disconnected"
                    }),
                    text(&slave.applied),
                ]);
            }
        } else if let Some(replica) = &self.node.replica {
            let s = replica.status();
            let state = s.state();
            rows.push(vec![
                text(&config.name),
                text("slave"),
                text(s.applied.lsn()),
                text(if s.connected { "yes" } else { "no" }),
                text(s.applied.lsn()),
                text(s.applied.behind(&s.master)),
                None,
                text(state),
                text(&s.applied),
            ]);
        } else {
            rows.push(vec![
                text(&config.name),
                text(config.role.as_str()),
                None,
                None,
                None,
                None,
                None,
                text("standalone"),
                None,
            ]);
        }
        let columns: Vec<Column> = COLUMNS
            .iter()
            .map(|(n, numeric)| column(n, *numeric))
            .collect();
        self.client.replies.columns(&columns, self.backend.status);
        for row in &rows {
            self.client.replies.text_row(row);
        }
        self.client.replies.end_of_rows(0, self.backend.status);
    }
}
