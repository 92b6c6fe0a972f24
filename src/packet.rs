//! MySQL packet framing, on client sockets and on the node's own backend connections: 3-byte
//! length, 1-byte sequence id, payloads of 16 MiB - 1 and more split across packets.
//!
//! Reading is cancellation-safe (bytes go into a buffer first), so a session can wait for the
//! client to hang up while a backend query runs without losing a pipelined packet.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload of one physical packet; a payload this long continues in the next packet.
pub const MAX_CHUNK: usize = 0xFF_FFFF;

/// Why a client's byte stream cannot be read as packets.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The client closed the connection in the middle of a packet.
    #[error("connection closed in the middle of a packet")]
    Truncated,
    /// The sequence id is not the one the protocol expects here.
    #[error("packet out of order: sequence id {got}, expected {expected}")]
    OutOfOrder {
        /// Received id.
        got: u8,
        /// Expected id.
        expected: u8,
    },
    /// The logical packet is larger than `max_allowed_packet`.
    #[error("packet of at least {size} bytes exceeds max_allowed_packet ({limit})")]
    TooLarge {
        /// Size seen so far.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

/// Reads logical packets (continuations joined) from the client.
pub struct PacketReader<R> {
    inner: R,
    buf: BytesMut,
    max_packet: usize,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    /// Wraps a reader; packets larger than `max_packet` are refused with [`PacketError::TooLarge`].
    pub fn new(inner: R, max_packet: usize) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(16 * 1024),
            max_packet,
        }
    }

    /// Reads the next logical packet whose first sequence id must be `expected_seq`. Returns the
    /// payload and the sequence id of its last physical packet; `Ok(None)` on a clean EOF between
    /// packets.
    pub async fn read(&mut self, expected_seq: u8) -> Result<Option<(Vec<u8>, u8)>, PacketError> {
        let mut payload = Vec::new();
        let mut seq = expected_seq;
        loop {
            if !self.fill(4).await? {
                if payload.is_empty() && self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(PacketError::Truncated);
            }
            let len = usize::from(self.buf[0])
                | usize::from(self.buf[1]) << 8
                | usize::from(self.buf[2]) << 16;
            let got = self.buf[3];
            if got != seq {
                return Err(PacketError::OutOfOrder { got, expected: seq });
            }
            if payload.len() + len > self.max_packet {
                return Err(PacketError::TooLarge {
                    size: payload.len() + len,
                    limit: self.max_packet,
                });
            }
            if !self.fill(4 + len).await? {
                return Err(PacketError::Truncated);
            }
            // Copied out and advanced past, not split off: splitting would make the buffer
            // shared and cost an allocation per packet.
            payload.extend_from_slice(&self.buf[4..4 + len]);
            self.buf.advance(4 + len);
            if len < MAX_CHUNK {
                return Ok(Some((payload, seq)));
            }
            seq = seq.wrapping_add(1);
        }
    }

    /// Waits until the client closes its side (or the socket fails). Data that arrives meanwhile is
    /// kept for the next [`read`](Self::read). Cancellation-safe: meant for `select!` against a
    /// running backend query.
    pub async fn closed(&mut self) {
        loop {
            if self.buf.len() > self.max_packet.saturating_add(8) {
                // A client flooding us while a query runs: stop reading; the next read judges it.
                std::future::pending::<()>().await;
            }
            match self.inner.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Ensures at least `n` bytes are buffered; false if EOF came first.
    async fn fill(&mut self, n: usize) -> Result<bool, PacketError> {
        while self.buf.len() < n {
            self.buf.reserve(n - self.buf.len());
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Buffers outgoing packets and numbers them; `flush` sends what was buffered in one write.
pub struct PacketWriter<W> {
    inner: W,
    buf: Vec<u8>,
    seq: u8,
}

/// Buffered bytes beyond which rows are flushed to the socket while a result is still streaming.
const FLUSH_AT: usize = 64 * 1024;

impl<W: AsyncWrite + Unpin> PacketWriter<W> {
    /// Wraps a writer.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(16 * 1024),
            seq: 0,
        }
    }

    /// Sets the sequence id of the next packet written (the reply to a packet with id `n` is `n + 1`).
    pub fn set_seq(&mut self, seq: u8) {
        self.seq = seq;
    }

    /// The sequence id the next packet will carry.
    pub fn seq(&self) -> u8 {
        self.seq
    }

    /// Queues one logical packet built by `build`, splitting it if needed.
    pub fn packet(&mut self, build: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        build(&mut self.buf);
        let len = self.buf.len() - start - 4;
        if len < MAX_CHUNK {
            self.buf[start..start + 3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
            self.buf[start + 3] = self.seq;
            self.seq = self.seq.wrapping_add(1);
        } else {
            let payload = self.buf.split_off(start + 4);
            self.buf.truncate(start);
            self.chunks(&payload);
        }
    }

    fn chunks(&mut self, payload: &[u8]) {
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_CHUNK);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            self.buf.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < MAX_CHUNK {
                return;
            }
        }
    }

    /// Flushes if enough is buffered; lets large results stream with bounded memory.
    pub async fn flush_if_full(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        // Sent bytes leave the buffer as they go: a flush given up midway (a session that stops
        // relaying) leaves exactly the unsent rest, so packets queued after it still follow
        // whole ones.
        while !self.buf.is_empty() {
            let n = self.inner.write(&self.buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.buf.drain(..n);
        }
        self.inner.flush().await
    }

    /// Drops anything queued but not sent (used when a reply is abandoned for an error).
    pub fn discard(&mut self) {
        self.buf.clear();
    }

    /// Flushes and shuts the socket down.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        self.inner.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_small_and_split_packets() {
        let mut w = PacketWriter::new(Vec::new());
        w.packet(|b| b.extend_from_slice(b"hello"));
        let big = vec![7u8; MAX_CHUNK + 10];
        w.packet(|b| b.extend_from_slice(&big));
        let exact = vec![9u8; MAX_CHUNK];
        w.packet(|b| b.extend_from_slice(&exact));
        w.flush().await.expect("flush to vec");
        let bytes = w.inner;
        let mut r = PacketReader::new(&bytes[..], 64 << 20);
        let (p, seq) = r.read(0).await.expect("read").expect("packet");
        assert_eq!((p.as_slice(), seq), (&b"hello"[..], 0));
        let (p, seq) = r.read(1).await.expect("read").expect("packet");
        assert_eq!((p.len(), seq), (MAX_CHUNK + 10, 2));
        // A payload of exactly MAX_CHUNK is followed by an empty packet.
        let (p, seq) = r.read(3).await.expect("read").expect("packet");
        assert_eq!((p.len(), seq), (MAX_CHUNK, 4));
        assert!(r.read(5).await.expect("clean eof").is_none());
    }

    #[tokio::test]
    async fn refuses_bad_sequence_oversize_and_truncation() {
        let pkt = [3u8, 0, 0, 5, 1, 2, 3];
        let mut r = PacketReader::new(&pkt[..], 1024);
        assert!(matches!(
            r.read(0).await,
            Err(PacketError::OutOfOrder {
                got: 5,
                expected: 0
            })
        ));
        let mut r = PacketReader::new(&pkt[..], 2);
        assert!(matches!(r.read(5).await, Err(PacketError::TooLarge { .. })));
        let mut r = PacketReader::new(&pkt[..5], 1024);
        assert!(matches!(r.read(5).await, Err(PacketError::Truncated)));
    }
}
