//! The replication channel's wire format and its mutual authentication.
//!
//! Frames are `len u32 LE | tag u8 | body`; `len` counts tag and body and is bounded, so a peer
//! cannot make us allocate without limit. Both sides prove they know the cluster secret with an
//! HMAC-SHA256 over fresh nonces from both ends: the secret never crosses the wire, a recorded
//! handshake cannot be replayed, and a slave refuses a master that cannot prove it either.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted: an entry may carry statements up to max_allowed_packet and more.
pub const MAX_FRAME: usize = (1 << 30) + 64;

/// A channel failure.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection between frames.
    #[error("peer closed the connection")]
    Closed,
    /// The peer sent something that is not a frame of this protocol.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame over [`MAX_FRAME`].
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    /// The peer does not know the cluster secret (or we don't).
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// The peer took too long.
    #[error("timed out during {0}")]
    Timeout(&'static str),
}

/// A message after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Slave → master: send the entries after this LSN, then follow.
    Subscribe {
        /// Last LSN the slave applied.
        after_lsn: u64,
    },
    /// Master → slave: one log entry.
    Entry {
        /// Its position.
        lsn: u64,
        /// The encoded change.
        payload: Vec<u8>,
    },
    /// Both ways when idle: the sender's LSN (master: logged; slave: applied) and clock.
    Heartbeat {
        /// The sender's LSN.
        lsn: u64,
        /// Milliseconds since the epoch.
        unix_ms: u64,
    },
    /// Slave → master: applied up to this LSN.
    Ack {
        /// Applied LSN.
        applied_lsn: u64,
    },
    /// Either side, before closing: why.
    Error {
        /// The reason.
        message: String,
    },
}

const SUBSCRIBE: u8 = 1;
const ENTRY: u8 = 2;
const HEARTBEAT: u8 = 3;
const ACK: u8 = 4;
const ERROR: u8 = 5;
const HELLO: u8 = 16;
const AUTH: u8 = 17;
const WELCOME: u8 = 18;

const VERSION: u32 = 1;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Encodes `m` as a frame body (tag and fields).
pub fn encode(m: &Message, out: &mut Vec<u8>) {
    match m {
        Message::Subscribe { after_lsn } => {
            out.push(SUBSCRIBE);
            out.extend_from_slice(&after_lsn.to_le_bytes());
        }
        Message::Entry { lsn, payload } => {
            out.push(ENTRY);
            out.extend_from_slice(&lsn.to_le_bytes());
            put_bytes(out, payload);
        }
        Message::Heartbeat { lsn, unix_ms } => {
            out.push(HEARTBEAT);
            out.extend_from_slice(&lsn.to_le_bytes());
            out.extend_from_slice(&unix_ms.to_le_bytes());
        }
        Message::Ack { applied_lsn } => {
            out.push(ACK);
            out.extend_from_slice(&applied_lsn.to_le_bytes());
        }
        Message::Error { message } => {
            out.push(ERROR);
            put_bytes(out, message.as_bytes());
        }
    }
}

/// Reads fields of a frame body without ever panicking on short input.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ChannelError> {
        if self.0.len() < n {
            return Err(ChannelError::Malformed("frame ends early".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, ChannelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ChannelError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], ChannelError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn array32(&mut self) -> Result<[u8; 32], ChannelError> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    fn end(self) -> Result<(), ChannelError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ChannelError::Malformed("trailing bytes".into()))
        }
    }
}

/// Decodes a frame body (tag and fields).
pub fn decode(frame: &[u8]) -> Result<Message, ChannelError> {
    let Some((&tag, rest)) = frame.split_first() else {
        return Err(ChannelError::Malformed("empty frame".into()));
    };
    let mut b = Body(rest);
    let m = match tag {
        SUBSCRIBE => Message::Subscribe {
            after_lsn: b.u64()?,
        },
        ENTRY => Message::Entry {
            lsn: b.u64()?,
            payload: b.bytes()?.to_vec(),
        },
        HEARTBEAT => Message::Heartbeat {
            lsn: b.u64()?,
            unix_ms: b.u64()?,
        },
        ACK => Message::Ack {
            applied_lsn: b.u64()?,
        },
        ERROR => Message::Error {
            message: String::from_utf8_lossy(b.bytes()?).into_owned(),
        },
        other => return Err(ChannelError::Malformed(format!("unknown tag {other}"))),
    };
    b.end()?;
    Ok(m)
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<(), ChannelError> {
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, ChannelError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return Err(if got == 0 {
                ChannelError::Closed
            } else {
                ChannelError::Malformed("connection closed inside a frame header".into())
            });
        }
        got += n;
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ChannelError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ChannelError::Malformed("connection closed inside a frame".into())
        } else {
            ChannelError::Io(e)
        }
    })?;
    Ok(body)
}

/// Writes one message and flushes.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    m: &Message,
) -> Result<(), ChannelError> {
    let mut body = Vec::new();
    encode(m, &mut body);
    write_frame(w, &body).await
}

/// Reads one message; [`ChannelError::Closed`] on a clean EOF between frames.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Message, ChannelError> {
    decode(&read_frame(r).await?)
}

fn proof(secret: &[u8], role: &[u8], a: &[u8; 32], b: &[u8; 32], node: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(role);
    mac.update(a);
    mac.update(b);
    mac.update(node);
    mac.finalize().into_bytes().into()
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_secret(secret: &[u8]) -> Result<(), ChannelError> {
    if secret.is_empty() {
        return Err(ChannelError::AuthFailed("CLUSTER_SECRET is empty".into()));
    }
    Ok(())
}

/// Master side: challenges a connecting slave and returns its node name once it proved it knows
/// `secret`. A wrong proof gets an error frame and the connection is to be dropped.
pub async fn accept_slave<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    last_lsn: u64,
    timeout: Duration,
) -> Result<String, ChannelError> {
    check_secret(secret)?;
    let work = async {
        let nonce_m: [u8; 32] = rand::random();
        let mut hello = vec![HELLO];
        hello.extend_from_slice(&VERSION.to_le_bytes());
        hello.extend_from_slice(&nonce_m);
        write_frame(s, &hello).await?;
        let frame = read_frame(s).await?;
        let Some((&AUTH, rest)) = frame.split_first() else {
            return Err(ChannelError::Malformed(
                "expected an authentication frame".into(),
            ));
        };
        let mut b = Body(rest);
        let node = b.bytes()?.to_vec();
        let nonce_s = b.array32()?;
        let proof_s = b.array32()?;
        b.end()?;
        if node.is_empty() || node.len() > 255 {
            return Err(ChannelError::Malformed("bad node name".into()));
        }
        if !same(
            &proof_s,
            &proof(secret, b"myrelay-slave", &nonce_m, &nonce_s, &node),
        ) {
            let _ = write_message(
                s,
                &Message::Error {
                    message: "authentication failed".into(),
                },
            )
            .await;
            return Err(ChannelError::AuthFailed(format!(
                "slave `{}` does not know the cluster secret",
                String::from_utf8_lossy(&node)
            )));
        }
        let mut welcome = vec![WELCOME];
        welcome.extend_from_slice(&proof(secret, b"myrelay-master", &nonce_s, &nonce_m, &node));
        welcome.extend_from_slice(&last_lsn.to_le_bytes());
        write_frame(s, &welcome).await?;
        Ok(String::from_utf8_lossy(&node).into_owned())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ChannelError::Timeout("authentication"))?
}

/// Slave side: answers the master's challenge as `node` and checks the master's proof. Returns
/// the master's last LSN.
pub async fn connect_to_master<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &[u8],
    node: &str,
    timeout: Duration,
) -> Result<u64, ChannelError> {
    check_secret(secret)?;
    let work = async {
        let frame = read_frame(s).await?;
        let Some((&HELLO, rest)) = frame.split_first() else {
            return Err(ChannelError::Malformed(
                "expected the master's hello".into(),
            ));
        };
        let mut b = Body(rest);
        let version = b.u32()?;
        let nonce_m = b.array32()?;
        b.end()?;
        if version != VERSION {
            return Err(ChannelError::Malformed(format!(
                "protocol version {version}"
            )));
        }
        let nonce_s: [u8; 32] = rand::random();
        let mut auth = vec![AUTH];
        put_bytes(&mut auth, node.as_bytes());
        auth.extend_from_slice(&nonce_s);
        auth.extend_from_slice(&proof(
            secret,
            b"myrelay-slave",
            &nonce_m,
            &nonce_s,
            node.as_bytes(),
        ));
        write_frame(s, &auth).await?;
        let frame = read_frame(s).await?;
        match frame.split_first() {
            Some((&WELCOME, rest)) => {
                let mut b = Body(rest);
                let proof_m = b.array32()?;
                let lsn = b.u64()?;
                b.end()?;
                let expected = proof(
                    secret,
                    b"myrelay-master",
                    &nonce_s,
                    &nonce_m,
                    node.as_bytes(),
                );
                if !same(&proof_m, &expected) {
                    return Err(ChannelError::AuthFailed(
                        "the master does not know the cluster secret".into(),
                    ));
                }
                Ok(lsn)
            }
            Some((&ERROR, _)) => Err(ChannelError::AuthFailed(
                "the master refused our proof: CLUSTER_SECRET differs".into(),
            )),
            _ => Err(ChannelError::Malformed(
                "expected the master's welcome".into(),
            )),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ChannelError::Timeout("authentication"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip() {
        let all = [
            Message::Subscribe { after_lsn: 7 },
            Message::Entry {
                lsn: 1,
                payload: vec![],
            },
            Message::Entry {
                lsn: u64::MAX,
                payload: vec![0xAB; 1 << 20],
            },
            Message::Heartbeat {
                lsn: 3,
                unix_ms: 1_700_000_000_000,
            },
            Message::Ack { applied_lsn: 9 },
            Message::Error {
                message: "bye 😀".into(),
            },
        ];
        let (mut a, mut b) = tokio::io::duplex(4 << 20);
        for m in &all {
            write_message(&mut a, m).await.expect("write");
            assert_eq!(&read_message(&mut b).await.expect("read"), m);
        }
        drop(a);
        assert!(matches!(
            read_message(&mut b).await,
            Err(ChannelError::Closed)
        ));
    }

    #[tokio::test]
    async fn bad_frames_are_errors_not_panics() {
        for body in [
            &[][..],
            &[99u8][..],
            &[ENTRY, 1, 2][..],
            &[ACK, 0, 0, 0, 0, 0, 0, 0, 0, 1][..],
        ] {
            assert!(decode(body).is_err(), "{body:?}");
        }
        let huge = 0xFFFF_FFFFu32.to_le_bytes();
        let mut r = &huge[..];
        assert!(matches!(
            read_message(&mut r).await,
            Err(ChannelError::TooLarge(_))
        ));
        let truncated = [10u8, 0, 0, 0, SUBSCRIBE, 1];
        let mut r = &truncated[..];
        assert!(matches!(
            read_message(&mut r).await,
            Err(ChannelError::Malformed(_))
        ));
    }

    async fn handshake(
        master_secret: &'static str,
        slave_secret: &'static str,
    ) -> (Result<String, ChannelError>, Result<u64, ChannelError>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let master = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            accept_slave(&mut s, master_secret.as_bytes(), 42, Duration::from_secs(2)).await
        });
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let slave = connect_to_master(
            &mut s,
            slave_secret.as_bytes(),
            "s1",
            Duration::from_secs(2),
        )
        .await;
        (master.await.expect("join"), slave)
    }

    #[tokio::test]
    async fn mutual_authentication() {
        let (m, s) = handshake("secret", "secret").await;
        assert_eq!(m.expect("master accepts"), "s1");
        assert_eq!(s.expect("slave accepts"), 42);
        let (m, s) = handshake("secret", "wrong").await;
        assert!(matches!(m, Err(ChannelError::AuthFailed(_))));
        assert!(matches!(s, Err(ChannelError::AuthFailed(_))));
        let (_, s) = handshake("fake-master", "secret").await;
        assert!(matches!(s, Err(ChannelError::AuthFailed(_))));
    }

    #[tokio::test]
    async fn silent_peers_and_replays_are_refused() {
        let (mut a, _b) = tokio::io::duplex(1024);
        let r = accept_slave(&mut a, b"s", 0, Duration::from_millis(200)).await;
        assert!(matches!(r, Err(ChannelError::Timeout(_))));
        // A recorded Auth frame answers an old nonce: a new challenge rejects it.
        let (mut m, mut s) = tokio::io::duplex(1 << 16);
        let master =
            tokio::spawn(
                async move { accept_slave(&mut m, b"k", 0, Duration::from_secs(1)).await },
            );
        let _hello = read_frame(&mut s).await.expect("hello");
        let mut auth = vec![AUTH];
        put_bytes(&mut auth, b"s1");
        auth.extend_from_slice(&[1u8; 32]);
        auth.extend_from_slice(&proof(
            b"k",
            b"myrelay-slave",
            &[0u8; 32],
            &[1u8; 32],
            b"s1",
        ));
        write_frame(&mut s, &auth).await.expect("send");
        assert!(matches!(
            master.await.expect("join"),
            Err(ChannelError::AuthFailed(_))
        ));
        let (mut x, _y) = tokio::io::duplex(64);
        let r = connect_to_master(&mut x, b"", "x", Duration::from_secs(1)).await;
        assert!(
            matches!(r, Err(ChannelError::AuthFailed(_))),
            "empty secret refused"
        );
    }
}
