//! Session state tracking for clients that ask for it (`CLIENT_SESSION_TRACK`): the node's
//! backend driver cannot negotiate it, so the node runs the statements that change tracked state
//! (`USE`, a `SET` of a tracked variable) itself and reports the change in their OK packet, as
//! MariaDB does with its default settings. See `sql::session_track`.

use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};
use mysql_common::constants::CapabilityFlags;
use mysql_common::io::WriteMysqlExt;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{End, Session};
use crate::backend::relay::ok_info;
use crate::sql::classify::Classified;
use crate::sql::session_track::assigned;

/// SESSION_TRACK_SYSTEM_VARIABLES and SESSION_TRACK_SCHEMA entry types.
const SYSTEM_VARIABLE: u8 = 0x00;
const SCHEMA: u8 = 0x01;

/// The tracked state one statement changes.
pub(super) struct Tracked {
    variables: Vec<&'static str>,
    schema: Option<String>,
}

/// Appends one state-change entry: its type, then its data as a length-encoded string.
fn entry(out: &mut Vec<u8>, kind: u8, fields: &[&[u8]]) {
    let mut data = Vec::new();
    for field in fields {
        data.write_lenenc_str(field).ok();
    }
    out.push(kind);
    out.write_lenenc_str(&data).ok();
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// What `classified` (the packet `text`) changes of the tracked state, if this client tracks it.
    pub(super) fn tracked(&self, text: &str, classified: &Classified) -> Option<Tracked> {
        if !self
            .replies
            .caps()
            .contains(CapabilityFlags::CLIENT_SESSION_TRACK)
        {
            return None;
        }
        let [statement] = classified.statements.as_slice() else {
            return None;
        };
        let tracked = Tracked {
            variables: assigned(text),
            schema: statement.use_database.clone(),
        };
        (!tracked.variables.is_empty() || tracked.schema.is_some()).then_some(tracked)
    }

    /// The OK for a `USE` / `SET` (or COM_INIT_DB) that ran: its own, plus what it changed.
    pub(super) async fn execute_tracked(
        &mut self,
        sql: &[u8],
        tracked: Tracked,
    ) -> Result<bool, End> {
        if !self.conn_or_reply().await {
            return Ok(false);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        if let Err(e) = conn.query_drop(String::from_utf8_lossy(sql)).await {
            let failure = self.node.backend.failure(e);
            if failure.broken {
                self.conn = None;
            }
            self.replies.error(&failure.reply);
            return Ok(false);
        }
        let mut ok = ok_info(conn.last_ok_packet());
        self.status = ok.status;
        let mut state = Vec::new();
        if !tracked.variables.is_empty()
            && let Some(conn) = self.conn.as_mut()
        {
            let select: Vec<String> = tracked
                .variables
                .iter()
                .map(|v| format!("@@session.{v}"))
                .collect();
            if let Ok(Some(row)) = conn
                .query_first::<Row, _>(format!("SELECT {}", select.join(", ")))
                .await
            {
                for (i, name) in tracked.variables.iter().enumerate() {
                    let value = match row.as_ref(i) {
                        Some(Value::Bytes(b)) => b.clone(),
                        Some(Value::Int(n)) => n.to_string().into_bytes(),
                        Some(Value::UInt(n)) => n.to_string().into_bytes(),
                        _ => Vec::new(),
                    };
                    // Boolean variables are reported by name, not number.
                    let value = match (*name, value.as_slice()) {
                        ("autocommit", b"1") => b"ON".to_vec(),
                        ("autocommit", b"0") => b"OFF".to_vec(),
                        _ => value,
                    };
                    entry(&mut state, SYSTEM_VARIABLE, &[name.as_bytes(), &value]);
                }
            }
        }
        if let Some(db) = &tracked.schema {
            entry(&mut state, SCHEMA, &[db.as_bytes()]);
        }
        ok.session_state = state;
        self.replies.ok(&ok);
        Ok(true)
    }

    /// The OK of COM_INIT_DB to `db`, with the schema change for clients that track it.
    pub(super) fn init_db_ok(&mut self, db: &str) {
        let mut ok = crate::frontend::reply::OkInfo::status(self.status);
        if self
            .replies
            .caps()
            .contains(CapabilityFlags::CLIENT_SESSION_TRACK)
        {
            entry(&mut ok.session_state, SCHEMA, &[db.as_bytes()]);
        }
        self.replies.ok(&ok);
    }
}
