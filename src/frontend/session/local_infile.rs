//! `LOAD DATA LOCAL INFILE` where the config allows it (`limits.max_local_infile`): the node asks
//! the client for the file, as a server would, and holds it until the statement runs. Whoever
//! runs the statement — the node's backend, the master a slave forwards to, the log a slave
//! replays — gets exactly those bytes, never a file of the node's own.

use bytes::Bytes;
use mysql_common::constants::CapabilityFlags;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Client, End, Session};
use crate::error::{ER_NOT_ALLOWED_COMMAND, ErrorReply};
use crate::packet::PacketError;
use crate::sql::local_infile::local_infile_name;

fn refused(why: &str) -> ErrorReply {
    ErrorReply::new(
        ER_NOT_ALLOWED_COMMAND,
        format!("LOAD DATA LOCAL INFILE is not allowed through myrelay {why}"),
    )
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// Why this node will not run the `LOAD … LOCAL INFILE` in `text`, if it will not.
    pub(super) fn local_infile_refusal(&self, text: &str) -> Option<ErrorReply> {
        let limit = self.node.config.limits.max_local_infile;
        if limit == 0 {
            return Some(refused(
                "here: this node's limits.max_local_infile is 0 (the backend would read the file \
                 from the node, not from your client)",
            ));
        }
        if !self
            .client
            .replies
            .caps()
            .contains(CapabilityFlags::CLIENT_LOCAL_FILES)
        {
            return Some(refused("for a client that did not enable local infile"));
        }
        if local_infile_name(text).is_none() {
            return Some(refused(
                "unless it is a statement of its own that names the file in a string literal",
            ));
        }
        None
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Client<R, W> {
    /// Asks the client for the file of `text` and keeps it for the statement. Ok(false) when the
    /// client was answered with an error instead (the file was over `limit` bytes).
    pub(super) async fn receive_infile(&mut self, text: &str, limit: usize) -> Result<bool, End> {
        let name = local_infile_name(text).unwrap_or_default();
        self.replies.out.packet(|b| {
            b.push(0xFB);
            b.extend_from_slice(name.as_bytes());
        });
        self.replies
            .out
            .flush()
            .await
            .map_err(|_| End::ClientGone)?;
        let mut seq = self.replies.out.seq();
        let mut data = Vec::new();
        let mut too_large = false;
        loop {
            let (chunk, got) = match self.reader.read(seq).await {
                Ok(Some(p)) => p,
                Ok(None) | Err(PacketError::Io(_)) => return Err(End::ClientGone),
                Err(e) => return Err(End::Protocol(e)),
            };
            seq = got.wrapping_add(1);
            if chunk.is_empty() {
                break;
            }
            // Read the rest even when over the limit: the client sends it all before listening.
            too_large |= data.len() + chunk.len() > limit;
            if too_large {
                data = Vec::new();
            } else {
                data.extend_from_slice(&chunk);
            }
        }
        self.reply_seq = seq;
        self.replies.out.set_seq(seq);
        if too_large {
            self.replies.error(&refused(&format!(
                "for files over this node's limits.max_local_infile ({limit} bytes)"
            )));
            return Ok(false);
        }
        self.infile = Some(Bytes::from(data));
        Ok(true)
    }
}
