//! The MySQL compressed protocol on the client connection (CLIENT_COMPRESS).
//!
//! Once the login OK has been sent, every byte in both directions travels inside compressed
//! packets. Each has a 7-byte header: the payload's length as sent (3 bytes, little-endian), a
//! compressed sequence id (1 byte), and the payload's length before compression (3 bytes; 0 when
//! the payload is sent as is). A compressed payload is one zlib stream. Inflated payloads
//! concatenate into the ordinary packet stream, whose packets may straddle compressed packets.
//!
//! The compressed sequence id is its own counter: the client restarts it at 0 with each command
//! and the server's replies carry on from the client's last id + 1, which is why the two halves
//! share it through [`Switch`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes in a compressed packet's header.
const HEADER: usize = 7;
/// The largest payload one compressed packet can carry (either length field is 3 bytes).
const MAX_PAYLOAD: usize = 0xFF_FFFF;
/// Payloads shorter than this are sent uncompressed, as servers do: zlib would not pay.
const MIN_COMPRESS_LENGTH: usize = 50;
/// How much the reader asks of the socket at once, at least.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers that grew past this for one large packet are given back once drained, so an idle
/// connection does not keep 16 MiB.
const KEEP_CAPACITY: usize = 1 << 20;

struct Shared {
    on: AtomicBool,
    /// The compressed sequence id of the next packet the server sends.
    next_seq: AtomicU8,
}

/// Turns compression on for both halves after the login OK has been flushed.
#[derive(Clone)]
pub struct Switch {
    shared: Arc<Shared>,
}

impl Switch {
    /// Turns compression on for both halves; there is no way back, as in the protocol.
    pub fn enable(&self) {
        self.shared.on.store(true, Ordering::Release);
    }

    /// Whether compression has been turned on.
    pub fn is_on(&self) -> bool {
        self.shared.on.load(Ordering::Acquire)
    }

    fn set_next_seq(&self, seq: u8) {
        self.shared.next_seq.store(seq, Ordering::Release);
    }

    fn take_seq(&self) -> u8 {
        self.shared.next_seq.fetch_add(1, Ordering::AcqRel)
    }
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch")
            .field("on", &self.is_on())
            .finish_non_exhaustive()
    }
}

/// Wraps the two halves of a client connection; both pass bytes through unchanged until
/// [`Switch::enable`].
pub fn wrap<R, W>(read: R, write: W) -> (Decompressing<R>, Compressing<W>, Switch) {
    let switch = Switch {
        shared: Arc::new(Shared {
            on: AtomicBool::new(false),
            next_seq: AtomicU8::new(0),
        }),
    };
    let reader = Decompressing {
        inner: read,
        switch: switch.clone(),
        raw: Vec::new(),
        plain: Vec::new(),
        plain_pos: 0,
    };
    let writer = Compressing {
        inner: write,
        switch: switch.clone(),
        pending: Vec::new(),
        pending_pos: 0,
        frame: Vec::new(),
        frame_pos: 0,
        compress: None,
    };
    (reader, writer, switch)
}

/// The client-to-server half: yields the plain packet stream out of compressed packets.
pub struct Decompressing<R> {
    inner: R,
    switch: Switch,
    /// Bytes read from the socket and not yet decoded: a partial compressed packet, or more.
    /// Kept here, not on the stack, so that a poll cancelled by `select!` loses nothing.
    raw: Vec<u8>,
    /// The decoded payload of the last compressed packet, yielded from `plain_pos` on.
    plain: Vec<u8>,
    plain_pos: usize,
}

/// The server-to-client half: buffers writes and sends them as compressed packets on flush.
pub struct Compressing<W> {
    inner: W,
    switch: Switch,
    /// Plain bytes written since the last flush, framed from `pending_pos` on.
    pending: Vec<u8>,
    pending_pos: usize,
    /// One framed compressed packet, written to the socket from `frame_pos` on; kept across
    /// `Pending` so a packet is never cut or sent twice.
    frame: Vec<u8>,
    frame_pos: usize,
    /// Reused across packets: a zlib compressor's state is large to set up.
    compress: Option<Compress>,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("compressed protocol: {msg}"),
    )
}

fn u24(b: &[u8]) -> usize {
    usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16
}

fn put_u24(b: &mut [u8], n: usize) {
    b[..3].copy_from_slice(&(n as u32).to_le_bytes()[..3]);
}

/// Inflates one compressed payload that must come to exactly `declared` bytes.
fn inflate(payload: &[u8], declared: usize) -> io::Result<Vec<u8>> {
    if declared > MAX_PAYLOAD {
        return Err(invalid("uncompressed length over 16 MiB"));
    }
    // `declared` is at most 16 MiB, and a few bytes of zlib could legitimately inflate to that
    // much anyway, so sizing the buffer from it exposes nothing more.
    let mut out = Vec::with_capacity(declared);
    let mut z = Decompress::new(true);
    let status = z
        .decompress_vec(payload, &mut out, FlushDecompress::Finish)
        .map_err(|e| invalid(&format!("corrupt zlib data: {e}")))?;
    if status != Status::StreamEnd {
        return Err(invalid("zlib data longer than declared or cut short"));
    }
    if out.len() != declared {
        return Err(invalid(&format!(
            "inflated to {} bytes, {declared} declared",
            out.len()
        )));
    }
    if z.total_in() != payload.len() as u64 {
        return Err(invalid("bytes after the end of the zlib data"));
    }
    Ok(out)
}

impl<R> Decompressing<R> {
    /// Decodes the compressed packet at the front of `raw` if it is all there; `Ok(false)` when
    /// more bytes are needed.
    fn decode_one(&mut self) -> io::Result<bool> {
        if self.raw.len() < HEADER {
            return Ok(false);
        }
        let len = u24(&self.raw[0..3]);
        let seq = self.raw[3];
        let declared = u24(&self.raw[4..7]);
        if self.raw.len() < HEADER + len {
            // The length field is 3 bytes, so the wait is bounded by 16 MiB + header.
            return Ok(false);
        }
        let payload = &self.raw[HEADER..HEADER + len];
        let plain = if declared == 0 {
            payload.to_vec()
        } else {
            inflate(payload, declared)?
        };
        self.raw.drain(..HEADER + len);
        if self.raw.capacity() > KEEP_CAPACITY && self.raw.len() < READ_CHUNK {
            self.raw.shrink_to(READ_CHUNK);
        }
        self.plain = plain;
        self.plain_pos = 0;
        self.switch.set_next_seq(seq.wrapping_add(1));
        Ok(true)
    }

    /// Copies decoded bytes to `buf`; false when there were none.
    fn yield_plain(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let rest = &self.plain[self.plain_pos..];
        if rest.is_empty() {
            return false;
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.plain_pos += n;
        if self.plain_pos == self.plain.len() {
            if self.plain.capacity() > KEEP_CAPACITY {
                self.plain = Vec::new();
            } else {
                self.plain.clear();
            }
            self.plain_pos = 0;
        }
        true
    }
}

impl<R: AsyncRead + Unpin> Decompressing<R> {
    /// Reads more socket bytes onto `raw`; `Ok(0)` at end of stream.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let want = if self.raw.len() < HEADER {
            HEADER - self.raw.len()
        } else {
            HEADER + u24(&self.raw[0..3]) - self.raw.len()
        };
        let start = self.raw.len();
        self.raw
            .resize(start + want.clamp(READ_CHUNK, 4 * READ_CHUNK), 0);
        let mut rb = ReadBuf::new(&mut self.raw[start..]);
        let res = Pin::new(&mut self.inner).poll_read(cx, &mut rb);
        let n = rb.filled().len();
        // Drop the unfilled tail whatever happened, so `raw` holds only received bytes.
        self.raw
            .truncate(start + if res.is_ready() { n } else { 0 });
        match res {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(n)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Decompressing<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.yield_plain(buf) {
            return Poll::Ready(Ok(()));
        }
        if !this.switch.is_on() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.decode_one()? {
                // An empty compressed packet yields nothing; returning no bytes would read as
                // end of stream, so go on to the next one.
                if this.yield_plain(buf) {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if ready!(this.fill(cx))? == 0 {
                if this.raw.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "compressed protocol: connection closed inside a compressed packet",
                )));
            }
        }
    }
}

impl<W> Compressing<W> {
    /// Frames the next chunk of `pending` into `frame` with the next compressed sequence id.
    fn frame_next(&mut self) {
        let end = self.pending.len().min(self.pending_pos + MAX_PAYLOAD);
        let chunk = &self.pending[self.pending_pos..end];
        self.frame.clear();
        self.frame_pos = 0;
        self.frame.reserve(HEADER + chunk.len());
        self.frame.extend_from_slice(&[0; HEADER]);
        let mut declared = 0;
        if chunk.len() >= MIN_COMPRESS_LENGTH {
            let z = self
                .compress
                .get_or_insert_with(|| Compress::new(Compression::default(), true));
            z.reset();
            // A payload that does not shrink is sent as is, as servers do, which also keeps a
            // full chunk within the 3-byte length field; so is one zlib fails on (not expected).
            let status = z.compress_vec(chunk, &mut self.frame, FlushCompress::Finish);
            if matches!(status, Ok(Status::StreamEnd)) && self.frame.len() - HEADER < chunk.len() {
                declared = chunk.len();
            } else {
                self.frame.truncate(HEADER);
            }
        }
        if declared == 0 {
            self.frame.extend_from_slice(chunk);
        }
        let len = self.frame.len() - HEADER;
        put_u24(&mut self.frame[0..3], len);
        self.frame[3] = self.switch.take_seq();
        put_u24(&mut self.frame[4..7], declared);
        self.pending_pos = end;
        if self.pending_pos == self.pending.len() {
            self.release_pending();
        }
    }

    fn release_pending(&mut self) {
        if self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
        self.pending_pos = 0;
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Compressing<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.switch.is_on() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            while this.frame_pos < this.frame.len() {
                let n = ready!(
                    Pin::new(&mut this.inner).poll_write(cx, &this.frame[this.frame_pos..])
                )?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                this.frame_pos += n;
            }
            if this.pending_pos == this.pending.len() {
                break;
            }
            this.frame_next();
        }
        if this.frame.capacity() > KEEP_CAPACITY {
            this.frame = Vec::new();
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    /// Deterministic bytes with no structure zlib can use (xorshift64).
    fn random(len: usize, mut state: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(&state.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A compressed packet header: payload length, sequence id, length before compression.
    fn header(len: usize, seq: u8, declared: usize) -> Vec<u8> {
        let mut h = vec![0; HEADER];
        put_u24(&mut h[0..3], len);
        h[3] = seq;
        put_u24(&mut h[4..7], declared);
        h
    }

    /// Splits a byte stream into its compressed packets' (seq, declared, payload).
    fn frames(mut raw: &[u8]) -> Vec<(u8, usize, Vec<u8>)> {
        let mut out = Vec::new();
        while !raw.is_empty() {
            let len = u24(&raw[0..3]);
            out.push((raw[3], u24(&raw[4..7]), raw[HEADER..HEADER + len].to_vec()));
            raw = &raw[HEADER + len..];
        }
        out
    }

    /// Sends `data` through a Compressing writer, then the compressed bytes through a duplex
    /// into a Decompressing reader; returns the compressed bytes and what the reader yielded.
    async fn round_trip(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (_, mut w, on) = wrap(tokio::io::empty(), Vec::new());
        on.enable();
        w.write_all(data).await.expect("write");
        w.flush().await.expect("flush");
        let raw = std::mem::take(&mut w.inner);

        let (mut tx, rx) = duplex(64 * 1024);
        let (mut r, _, on) = wrap(rx, tokio::io::sink());
        on.enable();
        let sent = raw.clone();
        let feeder = tokio::spawn(async move {
            tx.write_all(&sent).await.expect("feed");
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.expect("read");
        feeder.await.expect("feeder");
        (raw, got)
    }

    #[tokio::test]
    async fn small_payload_is_sent_uncompressed_and_round_trips() {
        let data = b"\x05\x00\x00\x01\xfe\x00\x00\x02\x00".to_vec();
        let (raw, got) = round_trip(&data).await;
        assert_eq!(got, data);
        // Short payloads go out as is with length field 0, byte for byte.
        let mut expected = header(data.len(), 0, 0);
        expected.extend_from_slice(&data);
        assert_eq!(raw, expected);
    }

    #[tokio::test]
    async fn large_payload_spans_compressed_packets_and_round_trips() {
        let data: Vec<u8> = random(MAX_PAYLOAD + 100_000, 7)
            .into_iter()
            .map(|b| b"abcdefgh"[usize::from(b & 7)])
            .collect();
        let (raw, got) = round_trip(&data).await;
        assert!(got == data, "large payload came back different");
        let f = frames(&raw);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].0, f[0].1), (0, MAX_PAYLOAD));
        assert_eq!((f[1].0, f[1].1), (1, 100_000));
        assert!(raw.len() < data.len() / 2, "data was not compressed");
    }

    #[tokio::test]
    async fn incompressible_payload_is_sent_as_is_and_round_trips() {
        // Over one packet's worth: zlib output of a full random chunk would not fit the 3-byte
        // length field, so it must fall back to sending the chunk uncompressed.
        let data = random(MAX_PAYLOAD + 1000, 11);
        let (raw, got) = round_trip(&data).await;
        assert!(got == data, "random payload came back different");
        let f = frames(&raw);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].0, f[0].1, f[0].2.len()), (0, 0, MAX_PAYLOAD));
        assert_eq!((f[1].0, f[1].1, f[1].2.len()), (1, 0, 1000));
    }

    #[tokio::test]
    async fn compressed_frames_from_the_writer_are_zlib() {
        let data = vec![b'x'; 300];
        let (raw, _) = round_trip(&data).await;
        let f = frames(&raw);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].0, f[0].1), (0, 300));
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(&f[0].2[..])
            .read_to_end(&mut inflated)
            .expect("zlib");
        assert_eq!(inflated, data);
    }

    /// Two compressed packets built by hand per the format, with zlib bytes from another
    /// implementation (Python's zlib): an uncompressed COM_QUERY "SELECT 1", then a compressed
    /// COM_QUERY "SELECT 'aaa…'" (74 bytes as a packet).
    fn hand_built() -> (Vec<u8>, Vec<u8>) {
        let select1 = [
            9, 0, 0, 0, 3, b'S', b'E', b'L', b'E', b'C', b'T', b' ', b'1',
        ];
        let zlib = [
            0x78, 0x9c, 0x73, 0x63, 0x60, 0x60, 0x60, 0x0e, 0x76, 0xf5, 0x71, 0x75, 0x0e, 0x51,
            0x50, 0x4f, 0xa4, 0x00, 0xa8, 0x03, 0x00, 0x67, 0x84, 0x19, 0x34,
        ];
        let mut wire = vec![13, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(&select1);
        wire.extend_from_slice(&[25, 0, 0, 1, 74, 0, 0]);
        wire.extend_from_slice(&zlib);

        let mut plain = select1.to_vec();
        plain.extend_from_slice(&[70, 0, 0, 0, 3]);
        plain.extend_from_slice(b"SELECT '");
        plain.extend_from_slice(&[b'a'; 60]);
        plain.push(b'\'');
        (wire, plain)
    }

    #[tokio::test]
    async fn decodes_hand_built_frames() {
        let (wire, plain) = hand_built();
        let (mut r, _, on) = wrap(&wire[..], tokio::io::sink());
        on.enable();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, plain);
        assert_eq!(on.shared.next_seq.load(Ordering::Acquire), 2);
    }

    #[tokio::test]
    async fn reads_frames_delivered_one_byte_at_a_time_across_cancelled_polls() {
        let (wire, plain) = hand_built();
        // A one-byte pipe: every read sees at most one byte.
        let (mut tx, rx) = duplex(1);
        let (mut r, _, on) = wrap(rx, tokio::io::sink());
        on.enable();
        let feeder = tokio::spawn(async move {
            for b in wire {
                tx.write_all(&[b]).await.expect("feed");
                tokio::task::yield_now().await;
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            // Drop the read whenever it is not ready at once, as `select!` does.
            tokio::select! {
                biased;
                n = r.read(&mut buf) => {
                    let n = n.expect("read");
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                _ = tokio::task::yield_now() => {}
            }
        }
        feeder.await.expect("feeder");
        assert_eq!(got, plain);
    }

    #[tokio::test]
    async fn reply_sequence_id_follows_the_clients() {
        let (mut client, server) = duplex(64 * 1024);
        let (sr, sw) = tokio::io::split(server);
        let (mut r, mut w, on) = wrap(sr, sw);
        on.enable();
        let mut buf = [0u8; 64];

        // A command in one compressed packet (id 0): the reply starts at 1 and counts up by
        // compressed packet, across flushes.
        let (wire, _) = hand_built();
        client.write_all(&wire[..HEADER + 13]).await.expect("send");
        r.read_exact(&mut buf[..13]).await.expect("read");
        for expected in [1, 2] {
            w.write_all(b"\x01\x00\x00\x01\x01").await.expect("write");
            w.flush().await.expect("flush");
            let mut reply = [0u8; HEADER + 5];
            client.read_exact(&mut reply).await.expect("reply");
            assert_eq!(reply[..HEADER], header(5, expected, 0)[..]);
            assert_eq!(&reply[HEADER..], b"\x01\x00\x00\x01\x01");
        }

        // The next command restarts at 0; one spread over packets 0 and 1 gets its reply at 2.
        client.write_all(&header(2, 0, 0)).await.expect("send");
        client.write_all(b"\x01\x00").await.expect("send");
        client.write_all(&header(3, 1, 0)).await.expect("send");
        client.write_all(b"\x00\x00\x0e").await.expect("send");
        r.read_exact(&mut buf[..5]).await.expect("read");
        assert_eq!(&buf[..5], b"\x01\x00\x00\x00\x0e");
        w.write_all(b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00")
            .await
            .expect("write");
        w.flush().await.expect("flush");
        let mut reply = [0u8; HEADER + 11];
        client.read_exact(&mut reply).await.expect("reply");
        assert_eq!(reply[..HEADER], header(11, 2, 0)[..]);
    }

    #[tokio::test]
    async fn passes_bytes_through_until_enabled() {
        let (mut client, server) = duplex(64 * 1024);
        let (sr, sw) = tokio::io::split(server);
        let (mut r, mut w, on) = wrap(sr, sw);
        assert!(!on.is_on());

        client
            .write_all(b"\x03\x00\x00\x01abc")
            .await
            .expect("send");
        let mut got = [0u8; 7];
        r.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"\x03\x00\x00\x01abc");
        w.write_all(b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00")
            .await
            .expect("write");
        w.flush().await.expect("flush");
        let mut ok = [0u8; 11];
        client.read_exact(&mut ok).await.expect("ok");
        assert_eq!(&ok, b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00");

        // After the login OK, both directions are framed.
        on.enable();
        client.write_all(&header(5, 0, 0)).await.expect("send");
        client
            .write_all(b"\x01\x00\x00\x00\x0e")
            .await
            .expect("send");
        let mut cmd = [0u8; 5];
        r.read_exact(&mut cmd).await.expect("read");
        assert_eq!(&cmd, b"\x01\x00\x00\x00\x0e");
        w.write_all(b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00")
            .await
            .expect("write");
        w.flush().await.expect("flush");
        let mut reply = [0u8; HEADER + 11];
        client.read_exact(&mut reply).await.expect("reply");
        assert_eq!(reply[..HEADER], header(11, 1, 0)[..]);
    }

    #[tokio::test]
    async fn flush_resumes_after_cancelled_polls_on_a_slow_socket() {
        // A three-byte pipe makes every flush return Pending many times mid-frame.
        let (tx, rx) = duplex(3);
        let (_, mut w, on) = wrap(tokio::io::empty(), tx);
        on.enable();
        let (mut r, _, on_r) = wrap(rx, tokio::io::sink());
        on_r.enable();
        let mut data = random(5000, 3);
        data.extend_from_slice(&[b'z'; 5000]);
        data.extend_from_slice(b"tail");
        let expected = data.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.expect("read");
            got
        });
        w.write_all(&data[..6000]).await.expect("write");
        let mut cancelled = 0;
        loop {
            tokio::select! {
                biased;
                res = w.flush() => { res.expect("flush"); break; }
                _ = tokio::task::yield_now() => cancelled += 1,
            }
        }
        w.write_all(&data[6000..]).await.expect("write");
        w.shutdown().await.expect("shutdown");
        drop(w);
        assert!(cancelled > 0, "flush never returned Pending");
        assert_eq!(reader.await.expect("reader"), expected);
    }

    async fn read_error(wire: Vec<u8>) -> io::ErrorKind {
        let (mut r, _, on) = wrap(&wire[..], tokio::io::sink());
        on.enable();
        let mut got = Vec::new();
        r.read_to_end(&mut got)
            .await
            .expect_err("bad frame accepted")
            .kind()
    }

    #[tokio::test]
    async fn corrupt_frames_are_invalid_data() {
        // Not zlib at all.
        let mut wire = header(8, 0, 20);
        wire.extend_from_slice(b"not zlib");
        assert_eq!(read_error(wire).await, io::ErrorKind::InvalidData);

        // Valid zlib ("hello", from Python) whose size differs from the declared one, either way.
        let hello = [
            0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x06, 0x2c, 0x02, 0x15,
        ];
        for declared in [4, 6] {
            let mut wire = header(hello.len(), 0, declared);
            wire.extend_from_slice(&hello);
            assert_eq!(read_error(wire).await, io::ErrorKind::InvalidData);
        }

        // Cut short (no checksum), and with bytes after the stream.
        let mut wire = header(hello.len() - 4, 0, 5);
        wire.extend_from_slice(&hello[..hello.len() - 4]);
        assert_eq!(read_error(wire).await, io::ErrorKind::InvalidData);
        let mut wire = header(hello.len() + 1, 0, 5);
        wire.extend_from_slice(&hello);
        wire.push(0);
        assert_eq!(read_error(wire).await, io::ErrorKind::InvalidData);

        // The connection closing inside a packet is not a clean end of stream.
        let mut wire = header(10, 0, 0);
        wire.extend_from_slice(b"short");
        assert_eq!(read_error(wire).await, io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn hello_from_another_zlib_inflates() {
        let hello = [
            0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x06, 0x2c, 0x02, 0x15,
        ];
        assert_eq!(inflate(&hello, 5).expect("inflate"), b"hello");
    }
}
