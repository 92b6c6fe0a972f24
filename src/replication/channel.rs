//! Wire protocol of the replication channel between a master and its slaves.
//!
//! Everything that crosses the socket goes through this module, so that the
//! master and slave loops never touch raw bytes and the parser has a single,
//! fuzzable entry point ([`decode`]).
//!
//! Frame layout: `len u32 LE | tag u8 | body`, where `len` counts tag + body.
//! Integers are little-endian; byte strings are a `u32 LE` length followed by
//! the bytes.
//!
//! Before any [`Message`] is exchanged, both ends run a mutual HMAC-SHA256
//! challenge–response ([`accept_slave`] / [`connect_to_master`]) over the
//! shared cluster secret. The secret itself never crosses the wire, and each
//! side contributes a fresh nonce so that recorded frames cannot be replayed.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest accepted `len` field: room for a 1 GiB entry payload plus its
/// fixed-size header, and no more, so a hostile length cannot make us buffer
/// unbounded data.
pub const MAX_FRAME_LEN: usize = (1 << 30) + 64;

/// Handshake frames are tiny; capping them far below [`MAX_FRAME_LEN`] means
/// an unauthenticated peer can never make us buffer more than this.
const HANDSHAKE_MAX_FRAME_LEN: usize = 4096;

/// Bumped whenever the framing or handshake changes incompatibly, so mixed
/// versions refuse each other instead of misparsing.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest node name accepted in the handshake; keeps names loggable and
/// bounded.
pub const MAX_NODE_NAME_LEN: usize = 255;

/// Sent (best effort) to a peer whose authentication failed; deliberately
/// vague so it tells an attacker nothing about which check failed.
const AUTH_FAILED_MESSAGE: &str = "authentication failed";

const NONCE_LEN: usize = 32;
const PROOF_LEN: usize = 32;

/// Domain-separation labels: a slave proof can never be reused as a master
/// proof (or vice versa) because the MAC inputs differ from the first bytes.
const SLAVE_LABEL: &[u8] = b"myrelay-slave";
const MASTER_LABEL: &[u8] = b"myrelay-master";

// Tags of the post-handshake messages.
const TAG_SUBSCRIBE: u8 = 0x01;
const TAG_EVENTS: u8 = 0x02;
const TAG_HEARTBEAT: u8 = 0x03;
const TAG_ACK: u8 = 0x04;
const TAG_ERROR: u8 = 0x05;
const TAG_SOURCE: u8 = 0x06;
const TAG_TOPOLOGY: u8 = 0x07;
// Handshake-only tags, in a separate range so they can never be mistaken for
// a `Message` after authentication.
const TAG_HELLO: u8 = 0x10;
const TAG_AUTH: u8 = 0x11;
const TAG_WELCOME: u8 = 0x12;

type HmacSha256 = Hmac<Sha256>;

/// Everything that can go wrong on the channel; the caller's reaction is
/// always to drop the peer, the variant only says why (for logs and metrics).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socket itself failed (reset, broken pipe, ...).
    #[error("replication channel I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection cleanly between two frames.
    #[error("replication channel closed by peer")]
    Closed,
    /// The peer sent bytes that are not a valid frame (bad tag, truncated
    /// frame, trailing bytes, invalid UTF-8, unexpected frame, ...).
    #[error("malformed replication frame: {0}")]
    Malformed(String),
    /// A frame length above the allowed maximum; carries the declared length.
    #[error("replication frame too large: {0} bytes")]
    TooLarge(usize),
    /// The handshake did not prove knowledge of the cluster secret (on either
    /// side), or the local configuration makes authentication impossible.
    #[error("replication authentication failed: {0}")]
    AuthFailed(String),
    /// The handshake did not complete in time; names the stage.
    #[error("replication channel timed out: {0}")]
    Timeout(&'static str),
}

/// Messages exchanged after a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// master → slave, first after authentication: what the slave's backend asks of a master
    /// before it requests the binlog.
    Source {
        /// The master backend's `server_id`.
        server_id: u32,
        /// Its version string (the slave's backend reads the master's features from it).
        version: String,
        /// Its `binlog_checksum` (`CRC32` or `NONE`): events are relayed with it.
        checksum: String,
        /// Its `gtid_domain_id`.
        domain_id: u32,
    },
    /// slave → master: stream the binlog from `position` (the slave backend's
    /// `@slave_connect_state`), dumping as `server_id` (the slave backend's).
    Subscribe {
        /// Where to start: the GTID position the slave's backend has applied.
        position: String,
        /// The slave backend's `server_id`, unique among the master backend's dump threads.
        server_id: u32,
        /// Where the slave node's clients connect (as it listens), so that the cluster's views
        /// show the address a person would connect to.
        client: String,
        /// Where the slave node's console listens, empty when it has none.
        console: String,
    },
    /// master → slave: binlog events, back to back, as the master's backend wrote them.
    Events {
        /// Whole events (each one's header gives its length).
        events: Vec<u8>,
        /// The GTID of the transaction these events complete, if they complete one: the
        /// master sends whole transactions, so a slave relays one at a time.
        ends: Option<String>,
    },
    /// both ways, every second when idle: the sender's position (master: the binlog position
    /// it has read; slave: what its backend applied) and its wall clock in ms since the epoch
    Heartbeat {
        /// The sender's GTID position.
        position: String,
        /// Sender's wall clock, ms since the Unix epoch.
        unix_ms: u64,
    },
    /// slave → master: its backend applied up to this position
    Ack {
        /// The GTID position the slave's backend has applied.
        applied: String,
    },
    /// master → slave, with each heartbeat: the cluster as the master sees it, as JSON (a
    /// [`super::master::ClusterView`]), so that a slave can show its siblings.
    Topology {
        /// The list, as JSON.
        json: String,
    },
    /// either side, before closing: why
    Error {
        /// Human-readable reason, for the peer's logs.
        message: String,
    },
}

/// Handshake-only frames. Private so the post-auth code can never send or
/// accept them by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Handshake {
    Hello {
        version: u32,
        nonce_m: [u8; NONCE_LEN],
    },
    Auth {
        node: String,
        nonce_s: [u8; NONCE_LEN],
        proof_s: [u8; PROOF_LEN],
    },
    Welcome {
        proof_m: [u8; PROOF_LEN],
        last_lsn: u64,
    },
    /// A regular `Message` arriving during the handshake; only `Error` is
    /// meaningful there (the peer telling us why it gives up).
    Msg(Message),
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Saturating instead of truncating: an over-long string then yields a
    // frame that decode rejects rather than one that silently misparses.
    // write_message refuses such messages before getting here.
    put_u32(out, u32::try_from(b.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(b);
}

/// Size of `encode(m)` output, computed without copying the payload so that
/// oversized messages are refused before any allocation.
fn encoded_len(m: &Message) -> usize {
    1 + match m {
        Message::Source {
            version, checksum, ..
        } => 4 + 4 + version.len() + 4 + checksum.len() + 4,
        Message::Subscribe {
            position,
            client,
            console,
            ..
        } => 4 + position.len() + 4 + 4 + client.len() + 4 + console.len(),
        Message::Events { events, ends } => {
            4 + events.len() + 1 + ends.as_ref().map_or(0, |g| 4 + g.len())
        }
        Message::Heartbeat { position, .. } => 4 + position.len() + 8,
        Message::Ack { applied } => 4 + applied.len(),
        Message::Error { message } => 4 + message.len(),
        Message::Topology { json } => 4 + json.len(),
    }
}

/// Appends `tag | body` for `m` to `out` — i.e. exactly what the frame length
/// counts, without the length prefix — so that `decode` of the output is the
/// identity. Never fails; size limits are enforced by [`write_message`].
pub fn encode(m: &Message, out: &mut Vec<u8>) {
    out.reserve(encoded_len(m));
    match m {
        Message::Source {
            server_id,
            version,
            checksum,
            domain_id,
        } => {
            out.push(TAG_SOURCE);
            put_u32(out, *server_id);
            put_bytes(out, version.as_bytes());
            put_bytes(out, checksum.as_bytes());
            put_u32(out, *domain_id);
        }
        Message::Subscribe {
            position,
            server_id,
            client,
            console,
        } => {
            out.push(TAG_SUBSCRIBE);
            put_bytes(out, position.as_bytes());
            put_u32(out, *server_id);
            put_bytes(out, client.as_bytes());
            put_bytes(out, console.as_bytes());
        }
        Message::Events { events, ends } => {
            out.push(TAG_EVENTS);
            put_bytes(out, events);
            match ends {
                Some(gtid) => {
                    out.push(1);
                    put_bytes(out, gtid.as_bytes());
                }
                None => out.push(0),
            }
        }
        Message::Heartbeat { position, unix_ms } => {
            out.push(TAG_HEARTBEAT);
            put_bytes(out, position.as_bytes());
            put_u64(out, *unix_ms);
        }
        Message::Ack { applied } => {
            out.push(TAG_ACK);
            put_bytes(out, applied.as_bytes());
        }
        Message::Error { message } => {
            out.push(TAG_ERROR);
            put_bytes(out, message.as_bytes());
        }
        Message::Topology { json } => {
            out.push(TAG_TOPOLOGY);
            put_bytes(out, json.as_bytes());
        }
    }
}

fn encode_handshake(h: &Handshake, out: &mut Vec<u8>) {
    match h {
        Handshake::Hello { version, nonce_m } => {
            out.push(TAG_HELLO);
            put_u32(out, *version);
            out.extend_from_slice(nonce_m);
        }
        Handshake::Auth {
            node,
            nonce_s,
            proof_s,
        } => {
            out.push(TAG_AUTH);
            put_bytes(out, node.as_bytes());
            out.extend_from_slice(nonce_s);
            out.extend_from_slice(proof_s);
        }
        Handshake::Welcome { proof_m, last_lsn } => {
            out.push(TAG_WELCOME);
            out.extend_from_slice(proof_m);
            put_u64(out, *last_lsn);
        }
        Handshake::Msg(m) => encode(m, out),
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Bounds-checked reader over a frame body: every accessor fails with
/// `Malformed` instead of panicking when the input runs short.
struct Body<'a> {
    buf: &'a [u8],
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ChannelError> {
        if self.buf.len() < n {
            return Err(ChannelError::Malformed(format!(
                "truncated {what}: need {n} bytes, have {}",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ChannelError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, ChannelError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, ChannelError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], ChannelError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    fn string(&mut self, what: &str) -> Result<String, ChannelError> {
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| ChannelError::Malformed(format!("{what} is not valid UTF-8")))
    }

    /// Trailing bytes mean the peer and we disagree on the layout; refusing
    /// them catches version skew early instead of acting on half-parsed data.
    fn finish(self, what: &str) -> Result<(), ChannelError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ChannelError::Malformed(format!(
                "{} trailing bytes after {what}",
                self.buf.len()
            )))
        }
    }
}

fn decode_message_body(tag: u8, body: &mut Body<'_>) -> Result<Message, ChannelError> {
    let m = match tag {
        TAG_SOURCE => Message::Source {
            server_id: body.u32("Source.server_id")?,
            version: body.string("Source.version")?,
            checksum: body.string("Source.checksum")?,
            domain_id: body.u32("Source.domain_id")?,
        },
        TAG_SUBSCRIBE => Message::Subscribe {
            position: body.string("Subscribe.position")?,
            server_id: body.u32("Subscribe.server_id")?,
            client: body.string("Subscribe.client")?,
            console: body.string("Subscribe.console")?,
        },
        TAG_EVENTS => Message::Events {
            events: body.bytes("Events.events")?.to_vec(),
            ends: match body.take(1, "Events.ends")? {
                [0] => None,
                [1] => Some(body.string("Events.ends")?),
                _ => return Err(ChannelError::Malformed("Events.ends flag".into())),
            },
        },
        TAG_HEARTBEAT => Message::Heartbeat {
            position: body.string("Heartbeat.position")?,
            unix_ms: body.u64("Heartbeat.unix_ms")?,
        },
        TAG_ACK => Message::Ack {
            applied: body.string("Ack.applied")?,
        },
        TAG_ERROR => Message::Error {
            message: body.string("Error.message")?,
        },
        TAG_TOPOLOGY => Message::Topology {
            json: body.string("Topology.json")?,
        },
        other => {
            return Err(ChannelError::Malformed(format!(
                "unknown message tag 0x{other:02x}"
            )));
        }
    };
    Ok(m)
}

/// Parses `tag | body` (a frame without its length prefix). Handshake tags are
/// rejected as `Malformed`: after authentication they are protocol
/// violations. Total over all inputs — never panics — so it can be fuzzed.
pub fn decode(frame_body: &[u8]) -> Result<Message, ChannelError> {
    let (&tag, rest) = frame_body
        .split_first()
        .ok_or_else(|| ChannelError::Malformed("empty frame (no tag)".into()))?;
    let mut body = Body { buf: rest };
    let m = decode_message_body(tag, &mut body)?;
    body.finish("message")?;
    Ok(m)
}

fn decode_handshake(frame_body: &[u8]) -> Result<Handshake, ChannelError> {
    let (&tag, rest) = frame_body
        .split_first()
        .ok_or_else(|| ChannelError::Malformed("empty frame (no tag)".into()))?;
    let mut body = Body { buf: rest };
    let h = match tag {
        TAG_HELLO => Handshake::Hello {
            version: body.u32("Hello.version")?,
            nonce_m: body.array("Hello.nonce")?,
        },
        TAG_AUTH => {
            let raw = body.bytes("Auth.node")?;
            let node = std::str::from_utf8(raw)
                .map_err(|_| ChannelError::Malformed("Auth.node is not valid UTF-8".into()))?
                .to_owned();
            Handshake::Auth {
                node,
                nonce_s: body.array("Auth.nonce")?,
                proof_s: body.array("Auth.proof")?,
            }
        }
        TAG_WELCOME => Handshake::Welcome {
            proof_m: body.array("Welcome.proof")?,
            last_lsn: body.u64("Welcome.last_lsn")?,
        },
        other => Handshake::Msg(decode_message_body(other, &mut body)?),
    };
    body.finish("handshake frame")?;
    Ok(h)
}

// ---------------------------------------------------------------------------
// Framing over async streams
// ---------------------------------------------------------------------------

/// Reads one frame's `tag | body`, refusing lengths above `max` before
/// allocating anything.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>, ChannelError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        let n = r.read(&mut header[filled..]).await?;
        if n == 0 {
            return Err(if filled == 0 {
                ChannelError::Closed
            } else {
                ChannelError::Malformed(format!("truncated frame header ({filled} of 4 bytes)"))
            });
        }
        filled += n;
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > max {
        return Err(ChannelError::TooLarge(len));
    }
    if len == 0 {
        return Err(ChannelError::Malformed("zero-length frame (no tag)".into()));
    }
    // Grow with the data actually received rather than trusting `len` for the
    // allocation: a peer announcing 1 GiB and sending nothing costs us 64 KiB.
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    (&mut *r).take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() < len {
        return Err(ChannelError::Malformed(format!(
            "truncated frame: expected {len} bytes, got {}",
            buf.len()
        )));
    }
    Ok(buf)
}

/// Prefixes an already-encoded `tag | body` (placed after 4 reserved bytes)
/// with its length, then writes and flushes it in one go.
async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut frame: Vec<u8>,
) -> Result<(), ChannelError> {
    let len = frame.len().saturating_sub(4);
    if len > MAX_FRAME_LEN {
        return Err(ChannelError::TooLarge(len));
    }
    // `len <= MAX_FRAME_LEN < u32::MAX`, so this cannot fail.
    let len32 = u32::try_from(len).map_err(|_| ChannelError::TooLarge(len))?;
    frame[..4].copy_from_slice(&len32.to_le_bytes());
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Writes one framed message and flushes, so a message is never stuck in a
/// buffer while the peer waits for it. Refuses (`TooLarge`) a message whose
/// frame would exceed [`MAX_FRAME_LEN`], since the peer would drop us for it.
///
/// Not cancel-safe: if the future is dropped mid-write the stream is left
/// mid-frame and must be closed.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    m: &Message,
) -> Result<(), ChannelError> {
    let len = encoded_len(m);
    if len > MAX_FRAME_LEN {
        return Err(ChannelError::TooLarge(len));
    }
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&[0; 4]);
    encode(m, &mut frame);
    write_frame(w, frame).await
}

/// Reads one framed message. `Closed` only when the stream ends exactly on a
/// frame boundary (the peer hung up cleanly); EOF inside a frame is
/// `Malformed`, and an oversized length is `TooLarge` without allocating it.
///
/// Not cancel-safe: dropping the future mid-frame loses the partial frame, so
/// callers that `select!` on it must close the stream on cancellation.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Message, ChannelError> {
    let frame = read_frame(r, MAX_FRAME_LEN).await?;
    decode(&frame)
}

async fn write_handshake<W: AsyncWrite + Unpin>(
    w: &mut W,
    h: &Handshake,
) -> Result<(), ChannelError> {
    let mut frame = vec![0; 4];
    encode_handshake(h, &mut frame);
    write_frame(w, frame).await
}

async fn read_handshake<R: AsyncRead + Unpin>(r: &mut R) -> Result<Handshake, ChannelError> {
    let frame = read_frame(r, HANDSHAKE_MAX_FRAME_LEN).await?;
    decode_handshake(&frame)
}

/// Tells the peer why we are hanging up. Best effort: the connection is being
/// dropped anyway, so a failure to deliver the reason is not worth reporting
/// over the original error.
async fn send_refusal<W: AsyncWrite + Unpin>(w: &mut W, message: &str) {
    let m = Handshake::Msg(Message::Error {
        message: message.to_owned(),
    });
    if let Err(e) = write_handshake(w, &m).await {
        tracing::debug!(error = %e, "could not deliver refusal to replication peer");
    }
}

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

/// Node names end up in logs and status output, so they are restricted to
/// printable ASCII (no control characters, no homoglyphs) and bounded.
fn validate_node_name(node: &str) -> Result<(), String> {
    if node.is_empty() {
        return Err("node name is empty".into());
    }
    if node.len() > MAX_NODE_NAME_LEN {
        return Err(format!(
            "node name is {} bytes, max {MAX_NODE_NAME_LEN}",
            node.len()
        ));
    }
    if !node.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("node name must be printable ASCII".into());
    }
    Ok(())
}

fn check_secret(secret: &[u8]) -> Result<(), ChannelError> {
    if secret.is_empty() {
        return Err(ChannelError::AuthFailed("CLUSTER_SECRET is empty".into()));
    }
    Ok(())
}

/// `HMAC-SHA256(secret, label || first || second || node)`, returned as the
/// keyed MAC state so callers can either finalize or verify in constant time.
fn proof_mac(
    secret: &[u8],
    label: &[u8],
    first: &[u8; NONCE_LEN],
    second: &[u8; NONCE_LEN],
    node: &str,
) -> Result<HmacSha256, ChannelError> {
    // HMAC accepts keys of any length, so this never fails in practice; it is
    // mapped rather than unwrapped to keep the module panic-free.
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|_| ChannelError::AuthFailed("unusable CLUSTER_SECRET".into()))?;
    mac.update(label);
    mac.update(first);
    mac.update(second);
    mac.update(node.as_bytes());
    Ok(mac)
}

fn make_proof(
    secret: &[u8],
    label: &[u8],
    first: &[u8; NONCE_LEN],
    second: &[u8; NONCE_LEN],
    node: &str,
) -> Result<[u8; PROOF_LEN], ChannelError> {
    Ok(proof_mac(secret, label, first, second, node)?
        .finalize()
        .into_bytes()
        .into())
}

/// Constant-time check (via `Mac::verify_slice`, which compares with
/// `subtle`), so timing does not leak how many proof bytes were right.
fn verify_proof(
    secret: &[u8],
    label: &[u8],
    first: &[u8; NONCE_LEN],
    second: &[u8; NONCE_LEN],
    node: &str,
    proof: &[u8; PROOF_LEN],
) -> Result<bool, ChannelError> {
    Ok(proof_mac(secret, label, first, second, node)?
        .verify_slice(proof)
        .is_ok())
}

/// Fresh per-connection challenge from the thread-local CSPRNG (seeded from
/// the OS); its freshness is what defeats replay of recorded frames.
fn new_nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// Master side of the handshake. Sends a fresh challenge, checks the slave's
/// proof, then proves itself back so the slave can refuse a fake master.
/// Returns the slave's (validated) node name.
///
/// The whole exchange is bounded by `timeout` so that a peer which connects
/// and stays silent cannot hold a connection slot. On a bad proof the slave is
/// told `"authentication failed"` (best effort) and `AuthFailed` is returned;
/// the caller should close the stream on any error.
pub async fn accept_slave<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    last_lsn: u64,
    timeout: Duration,
) -> Result<String, ChannelError> {
    check_secret(secret)?;
    match tokio::time::timeout(timeout, accept_slave_inner(s, secret, last_lsn)).await {
        Ok(r) => r,
        Err(_) => Err(ChannelError::Timeout("handshake with slave")),
    }
}

async fn accept_slave_inner<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    last_lsn: u64,
) -> Result<String, ChannelError> {
    let nonce_m = new_nonce();
    write_handshake(
        s,
        &Handshake::Hello {
            version: PROTOCOL_VERSION,
            nonce_m,
        },
    )
    .await?;

    let (node, nonce_s, proof_s) = match read_handshake(s).await? {
        Handshake::Auth {
            node,
            nonce_s,
            proof_s,
        } => (node, nonce_s, proof_s),
        Handshake::Msg(Message::Error { message }) => {
            return Err(ChannelError::AuthFailed(format!(
                "slave gave up: {}",
                message.escape_debug()
            )));
        }
        other => {
            send_refusal(s, "protocol error: expected Auth").await;
            return Err(ChannelError::Malformed(format!(
                "expected Auth from slave, got {}",
                handshake_kind(&other)
            )));
        }
    };

    if let Err(why) = validate_node_name(&node) {
        send_refusal(s, "invalid node name").await;
        return Err(ChannelError::Malformed(why));
    }

    // Proofs are domain-separated, so reflecting our own nonce back gains an
    // attacker nothing; an equal nonce can only come from a broken or hostile
    // peer, so refuse it outright.
    let proof_ok = nonce_s != nonce_m
        && verify_proof(secret, SLAVE_LABEL, &nonce_m, &nonce_s, &node, &proof_s)?;
    if !proof_ok {
        tracing::warn!(node = %node, "replication slave failed authentication");
        send_refusal(s, AUTH_FAILED_MESSAGE).await;
        return Err(ChannelError::AuthFailed(format!(
            "slave '{node}' sent an invalid proof (wrong CLUSTER_SECRET?)"
        )));
    }

    let proof_m = make_proof(secret, MASTER_LABEL, &nonce_s, &nonce_m, &node)?;
    write_handshake(s, &Handshake::Welcome { proof_m, last_lsn }).await?;
    tracing::debug!(node = %node, "replication slave authenticated");
    Ok(node)
}

/// Slave side of the handshake. Answers the master's challenge with its own
/// nonce and proof, then verifies the master's proof so that a fake master
/// (one without the secret) is refused with `AuthFailed`. Returns the master's
/// last LSN as announced in `Welcome`.
///
/// `node` must be 1–255 bytes of printable ASCII; the whole exchange is
/// bounded by `timeout`.
pub async fn connect_to_master<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    node: &str,
    timeout: Duration,
) -> Result<u64, ChannelError> {
    check_secret(secret)?;
    validate_node_name(node).map_err(ChannelError::AuthFailed)?;
    match tokio::time::timeout(timeout, connect_to_master_inner(s, secret, node)).await {
        Ok(r) => r,
        Err(_) => Err(ChannelError::Timeout("handshake with master")),
    }
}

async fn connect_to_master_inner<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    node: &str,
) -> Result<u64, ChannelError> {
    let nonce_m = match read_handshake(s).await? {
        Handshake::Hello { version, nonce_m } => {
            if version != PROTOCOL_VERSION {
                send_refusal(s, "unsupported protocol version").await;
                return Err(ChannelError::AuthFailed(format!(
                    "master speaks protocol version {version}, we speak {PROTOCOL_VERSION}"
                )));
            }
            nonce_m
        }
        Handshake::Msg(Message::Error { message }) => {
            return Err(ChannelError::AuthFailed(format!(
                "master refused: {}",
                message.escape_debug()
            )));
        }
        other => {
            send_refusal(s, "protocol error: expected Hello").await;
            return Err(ChannelError::Malformed(format!(
                "expected Hello from master, got {}",
                handshake_kind(&other)
            )));
        }
    };

    let mut nonce_s = new_nonce();
    while nonce_s == nonce_m {
        // Astronomically unlikely, but the master refuses equal nonces.
        nonce_s = new_nonce();
    }
    let proof_s = make_proof(secret, SLAVE_LABEL, &nonce_m, &nonce_s, node)?;
    write_handshake(
        s,
        &Handshake::Auth {
            node: node.to_owned(),
            nonce_s,
            proof_s,
        },
    )
    .await?;

    match read_handshake(s).await? {
        Handshake::Welcome { proof_m, last_lsn } => {
            if verify_proof(secret, MASTER_LABEL, &nonce_s, &nonce_m, node, &proof_m)? {
                tracing::debug!(last_lsn, "authenticated replication master");
                Ok(last_lsn)
            } else {
                tracing::warn!("replication master failed authentication");
                send_refusal(s, AUTH_FAILED_MESSAGE).await;
                Err(ChannelError::AuthFailed(
                    "master sent an invalid proof (wrong CLUSTER_SECRET or fake master)".into(),
                ))
            }
        }
        Handshake::Msg(Message::Error { message }) => Err(ChannelError::AuthFailed(format!(
            "master refused: {}",
            message.escape_debug()
        ))),
        other => {
            send_refusal(s, "protocol error: expected Welcome").await;
            Err(ChannelError::Malformed(format!(
                "expected Welcome from master, got {}",
                handshake_kind(&other)
            )))
        }
    }
}

/// Frame name for error messages; never echoes peer-controlled contents.
fn handshake_kind(h: &Handshake) -> &'static str {
    match h {
        Handshake::Hello { .. } => "Hello",
        Handshake::Auth { .. } => "Auth",
        Handshake::Welcome { .. } => "Welcome",
        Handshake::Msg(Message::Source { .. }) => "Source",
        Handshake::Msg(Message::Subscribe { .. }) => "Subscribe",
        Handshake::Msg(Message::Events { .. }) => "Events",
        Handshake::Msg(Message::Heartbeat { .. }) => "Heartbeat",
        Handshake::Msg(Message::Ack { .. }) => "Ack",
        Handshake::Msg(Message::Error { .. }) => "Error",
        Handshake::Msg(Message::Topology { .. }) => "Topology",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use std::time::Instant;
    use tokio::io::{DuplexStream, ReadBuf, duplex};
    use tokio::net::{TcpListener, TcpStream};

    const SECRET: &[u8] = b"correct horse battery staple";
    const T: Duration = Duration::from_secs(5);

    fn samples() -> Vec<Message> {
        vec![
            Message::Source {
                server_id: 1,
                version: "10.11.19-MariaDB-log".into(),
                checksum: "CRC32".into(),
                domain_id: 0,
            },
            Message::Subscribe {
                position: String::new(),
                server_id: 2,
                client: String::new(),
                console: String::new(),
            },
            Message::Subscribe {
                position: "0-1-57,1-3-9".into(),
                server_id: u32::MAX,
                client: "0.0.0.0:3307".into(),
                console: "0.0.0.0:9307".into(),
            },
            Message::Events {
                events: vec![],
                ends: None,
            },
            Message::Events {
                events: b"\x01\x02".to_vec(),
                ends: Some("0-1-5".into()),
            },
            Message::Events {
                events: (0..1024 * 1024).map(|i| (i % 251) as u8).collect(),
                ends: None,
            },
            Message::Heartbeat {
                position: "0-1-7".into(),
                unix_ms: 1_700_000_000_000,
            },
            Message::Ack {
                applied: "0-1-99".into(),
            },
            Message::Error {
                message: String::new(),
            },
            Message::Error {
                message: "disk full — ünïcödé".into(),
            },
            Message::Topology {
                json: r#"[{"name":"slave1","address":"127.0.0.1:3307"}]"#.into(),
            },
        ]
    }

    fn frame_of(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn encode_decode_round_trip() {
        for m in samples() {
            let mut buf = Vec::new();
            encode(&m, &mut buf);
            assert_eq!(buf.len(), encoded_len(&m));
            assert_eq!(decode(&buf).expect("decode"), m);
        }
    }

    #[tokio::test]
    async fn write_read_round_trip_over_duplex() {
        let (mut a, mut b) = duplex(64 * 1024);
        let msgs = samples();
        let to_send = msgs.clone();
        let writer = tokio::spawn(async move {
            for m in &to_send {
                write_message(&mut a, m).await.expect("write");
            }
            // dropping `a` closes the stream on a frame boundary
        });
        for m in &msgs {
            assert_eq!(&read_message(&mut b).await.expect("read"), m);
        }
        writer.await.expect("writer task");
        assert!(matches!(
            read_message(&mut b).await,
            Err(ChannelError::Closed)
        ));
    }

    #[test]
    fn wire_layout_is_as_documented() {
        let mut buf = vec![0; 4];
        encode(
            &Message::Events {
                events: vec![0xaa, 0xbb],
                ends: Some("0".into()),
            },
            &mut buf,
        );
        assert_eq!(
            buf[4..],
            [TAG_EVENTS, 2, 0, 0, 0, 0xaa, 0xbb, 1, 1, 0, 0, 0, b'0']
        );
    }

    #[tokio::test]
    async fn auth_succeeds_over_loopback_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let master = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let node = accept_slave(&mut sock, SECRET, 1234, T).await?;
            // The channel is usable for messages after the handshake.
            let m = read_message(&mut sock).await?;
            Ok::<_, ChannelError>((node, m))
        });
        let mut sock = TcpStream::connect(addr).await.expect("connect");
        let last = connect_to_master(&mut sock, SECRET, "slave-1", T)
            .await
            .expect("slave auth");
        assert_eq!(last, 1234);
        let subscribe = Message::Subscribe {
            position: "0-1-1000".into(),
            server_id: 3,
            client: "127.0.0.1:3308".into(),
            console: String::new(),
        };
        write_message(&mut sock, &subscribe)
            .await
            .expect("subscribe");
        let (node, m) = master.await.expect("join").expect("master auth");
        assert_eq!(node, "slave-1");
        assert_eq!(m, subscribe);
    }

    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (c, s) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (s.expect("accept").0, c.expect("connect"))
    }

    #[tokio::test]
    async fn wrong_secret_on_slave_fails_both_sides() {
        let (mut m_sock, mut s_sock) = tcp_pair().await;
        let (m, s) = tokio::join!(
            accept_slave(&mut m_sock, SECRET, 1, T),
            connect_to_master(&mut s_sock, b"wrong secret", "slave-1", T)
        );
        assert!(matches!(m, Err(ChannelError::AuthFailed(_))), "{m:?}");
        match s {
            Err(ChannelError::AuthFailed(msg)) => assert!(msg.contains("authentication failed")),
            other => panic!("slave should fail, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn fake_master_is_refused_by_slave() {
        // Honest master code with the wrong secret: it refuses the slave first.
        let (mut m_sock, mut s_sock) = tcp_pair().await;
        let (m, s) = tokio::join!(
            accept_slave(&mut m_sock, b"not the secret", 1, T),
            connect_to_master(&mut s_sock, SECRET, "slave-1", T)
        );
        assert!(matches!(m, Err(ChannelError::AuthFailed(_))));
        assert!(matches!(s, Err(ChannelError::AuthFailed(_))));

        // A fake master that skips verifying the slave and answers with a proof
        // made from a wrong secret: the slave's own check must catch it.
        let (mut m_sock, mut s_sock) = tcp_pair().await;
        let fake = async move {
            let nonce_m = [7u8; NONCE_LEN];
            write_handshake(
                &mut m_sock,
                &Handshake::Hello {
                    version: PROTOCOL_VERSION,
                    nonce_m,
                },
            )
            .await?;
            let Handshake::Auth { node, nonce_s, .. } = read_handshake(&mut m_sock).await? else {
                panic!("expected Auth");
            };
            let proof_m = make_proof(b"guess", MASTER_LABEL, &nonce_s, &nonce_m, &node)?;
            write_handshake(
                &mut m_sock,
                &Handshake::Welcome {
                    proof_m,
                    last_lsn: 5,
                },
            )
            .await?;
            // The slave tells us it gave up.
            read_handshake(&mut m_sock).await
        };
        let (f, s) = tokio::join!(fake, connect_to_master(&mut s_sock, SECRET, "slave-1", T));
        match s {
            Err(ChannelError::AuthFailed(msg)) => assert!(msg.contains("invalid proof"), "{msg}"),
            other => panic!("slave must refuse fake master, got {other:?}"),
        }
        assert_eq!(
            f.expect("fake master"),
            Handshake::Msg(Message::Error {
                message: AUTH_FAILED_MESSAGE.into()
            })
        );
    }

    #[tokio::test]
    async fn empty_secret_is_refused_up_front() {
        let (mut a, mut b) = duplex(1024);
        let m = accept_slave(&mut a, b"", 0, T).await;
        let s = connect_to_master(&mut b, b"", "n", T).await;
        for r in [m.map(|_| ()), s.map(|_| ())] {
            match r {
                Err(ChannelError::AuthFailed(msg)) => assert_eq!(msg, "CLUSTER_SECRET is empty"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn invalid_node_names_are_refused() {
        for bad in ["", "tab\tname", "é", &"x".repeat(256)] {
            let (_a, mut b) = duplex(1024);
            let r = connect_to_master(&mut b, SECRET, bad, T).await;
            assert!(matches!(r, Err(ChannelError::AuthFailed(_))), "{bad:?}");
        }
        // A master must also refuse a bad name even with a valid proof.
        let (mut m_sock, mut s_sock) = duplex(4096);
        let slave = async move {
            let Handshake::Hello { nonce_m, .. } = read_handshake(&mut s_sock).await? else {
                panic!("expected Hello");
            };
            let node = "bad\nname";
            let nonce_s = [1u8; NONCE_LEN];
            let proof_s = make_proof(SECRET, SLAVE_LABEL, &nonce_m, &nonce_s, node)?;
            let auth = Handshake::Auth {
                node: node.into(),
                nonce_s,
                proof_s,
            };
            write_handshake(&mut s_sock, &auth).await?;
            read_handshake(&mut s_sock).await
        };
        let (m, s) = tokio::join!(accept_slave(&mut m_sock, SECRET, 0, T), slave);
        assert!(matches!(m, Err(ChannelError::Malformed(_))), "{m:?}");
        assert!(matches!(s, Ok(Handshake::Msg(Message::Error { .. }))));
    }

    #[tokio::test]
    async fn garbage_and_bad_frames_are_errors() {
        // Length 0xFFFFFFFF: refused from the header alone, nothing allocated
        // (the body is never sent, so reading it would hang the test).
        let (mut a, mut b) = duplex(1024);
        a.write_all(&[0xff; 4]).await.expect("write");
        match read_message(&mut b).await {
            Err(ChannelError::TooLarge(n)) => assert_eq!(n, 0xffff_ffff),
            other => panic!("{other:?}"),
        }

        // Just over the limit is refused, the limit itself is not.
        let (mut a, mut b) = duplex(1024);
        a.write_all(&((MAX_FRAME_LEN + 1) as u32).to_le_bytes())
            .await
            .expect("write");
        assert!(matches!(
            read_message(&mut b).await,
            Err(ChannelError::TooLarge(_))
        ));

        // Unknown tag, and handshake tags after authentication.
        for tag in [0x00, 0x06, 0x10, 0x11, 0x12, 0xff] {
            let (mut a, mut b) = duplex(1024);
            a.write_all(&frame_of(&[tag, 0, 0, 0, 0, 0, 0, 0, 0]))
                .await
                .expect("write");
            assert!(
                matches!(read_message(&mut b).await, Err(ChannelError::Malformed(_))),
                "tag {tag:#x}"
            );
        }

        // Zero-length frame.
        let (mut a, mut b) = duplex(1024);
        a.write_all(&[0, 0, 0, 0]).await.expect("write");
        assert!(matches!(
            read_message(&mut b).await,
            Err(ChannelError::Malformed(_))
        ));

        // Truncated header and truncated body, then EOF.
        for bytes in [
            vec![5u8, 0],
            frame_of(&[TAG_ACK, 1, 2, 3, 4, 5, 6, 7, 8])[..7].to_vec(),
        ] {
            let (mut a, mut b) = duplex(1024);
            a.write_all(&bytes).await.expect("write");
            drop(a);
            assert!(
                matches!(read_message(&mut b).await, Err(ChannelError::Malformed(_))),
                "{bytes:?}"
            );
        }

        // Inner length pointing past the frame, trailing bytes, bad UTF-8.
        let bad_bodies: [&[u8]; 4] = [
            &[TAG_EVENTS, 0xff, 0xff, 0xff, 0xff, 1],
            &[TAG_ACK, 1, 0, 0, 0, b'0', 0],
            &[TAG_ERROR, 2, 0, 0, 0, 0xc3, 0x28],
            &[],
        ];
        for body in bad_bodies {
            assert!(
                matches!(decode(body), Err(ChannelError::Malformed(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn decode_is_total_on_random_and_truncated_input() {
        for m in samples().into_iter().take(8) {
            let mut buf = Vec::new();
            encode(&m, &mut buf);
            for cut in 0..buf.len().min(64) {
                assert!(decode(&buf[..cut]).is_err());
            }
        }
        for _ in 0..20_000 {
            let len = rand::random_range(0..48usize);
            let mut body: Vec<u8> = (0..len).map(|_| rand::random()).collect();
            if let Some(t) = body.first_mut() {
                // Bias towards valid tags so the field parsers get exercised.
                *t %= 0x14;
            }
            let _ = decode(&body);
            let _ = decode_handshake(&body);
        }
    }

    #[tokio::test]
    async fn garbage_stream_never_panics() {
        for _ in 0..200 {
            let len = rand::random_range(0..200usize);
            let bytes: Vec<u8> = (0..len).map(|_| rand::random()).collect();
            let (mut a, mut b) = duplex(1024);
            a.write_all(&bytes).await.expect("write");
            drop(a);
            loop {
                if read_message(&mut b).await.is_err() {
                    break;
                }
            }
            // The handshake endpoints must fail cleanly on garbage too.
            let (mut a, mut b) = duplex(4096);
            a.write_all(&bytes).await.expect("write");
            drop(a);
            assert!(connect_to_master(&mut b, SECRET, "n", T).await.is_err());
        }
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let limit = Duration::from_millis(200);
        let (mut m_sock, _silent_slave) = tcp_pair().await;
        let start = Instant::now();
        let r = accept_slave(&mut m_sock, SECRET, 0, limit).await;
        assert!(matches!(r, Err(ChannelError::Timeout(_))), "{r:?}");
        assert!(start.elapsed() < limit + Duration::from_secs(1));

        let (_silent_master, mut s_sock) = duplex(1024);
        let start = Instant::now();
        let r = connect_to_master(&mut s_sock, SECRET, "slave-1", limit).await;
        assert!(matches!(r, Err(ChannelError::Timeout(_))), "{r:?}");
        assert!(start.elapsed() < limit + Duration::from_secs(1));
    }

    /// Passes everything through and keeps a copy of what was written, to
    /// capture genuine handshake frames for replay.
    struct Recorder {
        inner: DuplexStream,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = &r {
                self.written
                    .lock()
                    .expect("lock")
                    .extend_from_slice(&buf[..*n]);
            }
            r
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn replayed_auth_is_refused() {
        // 1. Record a genuine, successful handshake from the slave side.
        let (mut m_sock, s_inner) = duplex(4096);
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut s_sock = Recorder {
            inner: s_inner,
            written: written.clone(),
        };
        let (m, s) = tokio::join!(
            accept_slave(&mut m_sock, SECRET, 9, T),
            connect_to_master(&mut s_sock, SECRET, "slave-1", T)
        );
        assert_eq!(m.expect("master"), "slave-1");
        assert_eq!(s.expect("slave"), 9);
        let auth_frame = written.lock().expect("lock").clone();
        assert_eq!(auth_frame.get(4), Some(&TAG_AUTH));

        // 2. Replay it to a new master connection: its nonce_m is fresh.
        let (mut m_sock, mut attacker) = duplex(4096);
        let replay = async move {
            let hello = read_handshake(&mut attacker).await?;
            assert!(matches!(hello, Handshake::Hello { .. }));
            attacker.write_all(&auth_frame).await?;
            read_handshake(&mut attacker).await
        };
        let (m, reply) = tokio::join!(accept_slave(&mut m_sock, SECRET, 9, T), replay);
        assert!(matches!(m, Err(ChannelError::AuthFailed(_))), "{m:?}");
        assert_eq!(
            reply.expect("reply"),
            Handshake::Msg(Message::Error {
                message: AUTH_FAILED_MESSAGE.into()
            })
        );
    }

    #[tokio::test]
    async fn oversized_message_is_refused_before_writing() {
        // Build the message without a real 1 GiB payload being sent anywhere:
        // the size check happens before encoding.
        let events = vec![0u8; MAX_FRAME_LEN];
        let (mut a, _b) = duplex(16);
        let r = write_message(&mut a, &Message::Events { events, ends: None }).await;
        assert!(matches!(r, Err(ChannelError::TooLarge(_))));
    }
}
