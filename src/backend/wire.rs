//! A MySQL client connection of the node's own, on mysql_common packets, for what a client
//! library does not offer: reading a binlog dump packet by packet, as the bytes the server sent.
//!
//! It logs in with `mysql_native_password` (the backend account's plugin; an auth switch to it
//! is followed), runs plain statements and sends commands whose replies the caller reads.

use std::net::SocketAddr;
use std::time::Duration;

use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, ErrPacket, HandshakePacket, HandshakeResponse,
};
use mysql_common::proto::MySerialize;
use mysql_common::scramble::scramble_native;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::frontend::packet::{PacketError, PacketReader, PacketWriter};

/// Largest packet read from the backend: a binlog event can be as large as the server's
/// `max_allowed_packet` (1 GiB at most).
const MAX_PACKET: usize = 1 << 30;

/// Why a backend exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or the server closed it.
    #[error("backend {addr}: {source}")]
    Io {
        /// The backend.
        addr: SocketAddr,
        /// What failed.
        source: PacketError,
    },
    /// The server answered with an error packet.
    #[error("backend error {code} ({state}): {message}")]
    Server {
        /// MySQL error code.
        code: u16,
        /// SQLSTATE.
        state: String,
        /// The server's message.
        message: String,
    },
    /// The server said something this client does not understand here.
    #[error("backend {addr}: unexpected reply: {what}")]
    Protocol {
        /// The backend.
        addr: SocketAddr,
        /// What was wrong.
        what: String,
    },
}

/// A logged-in connection to a backend.
pub struct Wire {
    addr: SocketAddr,
    reader: PacketReader<OwnedReadHalf>,
    writer: PacketWriter<OwnedWriteHalf>,
    caps: CapabilityFlags,
    /// Sequence id the next packet read must carry.
    seq: u8,
}

/// What this client asks for: protocol 4.1 with plugin auth, nothing that changes how replies
/// look (no deprecate-EOF, no session tracking), so that replies are the classic ones.
fn client_caps() -> CapabilityFlags {
    CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_MULTI_RESULTS
}

impl Wire {
    /// Connects and logs in as `user`, within `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Wire, WireError> {
        tokio::time::timeout(timeout, Wire::login(addr, user, password))
            .await
            .map_err(|_| WireError::Io {
                addr,
                source: PacketError::Io(std::io::ErrorKind::TimedOut.into()),
            })?
    }

    async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Wire, WireError> {
        let socket = TcpStream::connect(addr).await.map_err(|e| WireError::Io {
            addr,
            source: e.into(),
        })?;
        let _ = socket.set_nodelay(true);
        let (read, write) = socket.into_split();
        let mut wire = Wire {
            addr,
            reader: PacketReader::new(read, MAX_PACKET),
            writer: PacketWriter::new(write),
            caps: client_caps(),
            seq: 0,
        };
        let greeting = wire.read().await?;
        if greeting.first() == Some(&0xff) {
            return Err(server_error(&greeting, wire.caps));
        }
        let hello: HandshakePacket<'_> = ParseBuf(&greeting)
            .parse(())
            .map_err(|e| wire.protocol(format!("greeting: {e}")))?;
        wire.caps &= hello.capabilities();
        let nonce = hello.nonce();
        let scramble = scramble_native(&nonce, password.as_bytes()).map(|s| s.to_vec());
        let version = hello.server_version_parsed().unwrap_or((5, 5, 5));
        let response = HandshakeResponse::new(
            scramble.as_deref(),
            version,
            Some(user.as_bytes()),
            None::<&[u8]>,
            Some(AuthPlugin::MysqlNativePassword),
            wire.caps,
            None,
            MAX_PACKET as u32,
        );
        let mut body = Vec::new();
        response.serialize(&mut body);
        wire.send(&body).await?;
        loop {
            let reply = wire.read().await?;
            match reply.first() {
                Some(0x00) => return Ok(wire),
                Some(0xff) => return Err(server_error(&reply, wire.caps)),
                Some(0xfe) => {
                    let switch: AuthSwitchRequest<'_> = ParseBuf(&reply)
                        .parse(())
                        .map_err(|e| wire.protocol(format!("auth switch: {e}")))?;
                    if switch.auth_plugin() != AuthPlugin::MysqlNativePassword {
                        return Err(wire.protocol(format!(
                            "the backend account uses {:?}; myrelay logs in with \
                             mysql_native_password",
                            String::from_utf8_lossy(switch.auth_plugin().as_bytes())
                        )));
                    }
                    let answer = scramble_native(switch.plugin_data(), password.as_bytes())
                        .map(|s| s.to_vec())
                        .unwrap_or_default();
                    wire.send(&answer).await?;
                }
                _ => return Err(wire.protocol("login reply".into())),
            }
        }
    }

    fn protocol(&self, what: String) -> WireError {
        WireError::Protocol {
            addr: self.addr,
            what,
        }
    }

    /// The backend's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one packet continuing the current exchange.
    async fn send(&mut self, body: &[u8]) -> Result<(), WireError> {
        self.writer.set_seq(self.seq);
        self.writer.packet(|b| b.extend_from_slice(body));
        self.seq = self.writer.seq();
        self.writer.flush().await.map_err(|e| WireError::Io {
            addr: self.addr,
            source: e.into(),
        })
    }

    /// Sends a command packet (`command` byte, then `body`), starting a new exchange.
    pub async fn command(&mut self, command: u8, body: &[u8]) -> Result<(), WireError> {
        self.seq = 0;
        let mut packet = Vec::with_capacity(body.len() + 1);
        packet.push(command);
        packet.extend_from_slice(body);
        self.send(&packet).await
    }

    /// Reads the next packet of the current exchange.
    pub async fn read(&mut self) -> Result<Vec<u8>, WireError> {
        match self.reader.read(self.seq).await {
            Ok(Some((payload, last))) => {
                self.seq = last.wrapping_add(1);
                Ok(payload)
            }
            Ok(None) => Err(WireError::Io {
                addr: self.addr,
                source: PacketError::Truncated,
            }),
            Err(source) => Err(WireError::Io {
                addr: self.addr,
                source,
            }),
        }
    }

    /// The error an ERR packet `payload` carries.
    pub fn error(&self, payload: &[u8]) -> WireError {
        server_error(payload, self.caps)
    }

    /// Runs `sql` and returns its result's rows as text (NULL as `None`); a statement without a
    /// result gives no rows.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, WireError> {
        self.command(0x03, sql.as_bytes()).await?;
        let first = self.read().await?;
        match first.first() {
            Some(0x00) => return Ok(Vec::new()),
            Some(0xff) => return Err(self.error(&first)),
            _ => {}
        }
        // A result set: column definitions up to an EOF, then rows up to an EOF.
        loop {
            let p = self.read().await?;
            if is_eof(&p) {
                break;
            }
        }
        let mut rows = Vec::new();
        loop {
            let p = self.read().await?;
            if is_eof(&p) {
                return Ok(rows);
            }
            if p.first() == Some(&0xff) {
                return Err(self.error(&p));
            }
            rows.push(text_row(&p).ok_or_else(|| self.protocol("text row".into()))?);
        }
    }

    /// The first column of the first row of `sql`'s result.
    pub async fn query_value(&mut self, sql: &str) -> Result<Option<String>, WireError> {
        let rows = self.query(sql).await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten()))
    }
}

/// An EOF packet (classic protocol: 0xfe and shorter than 9 bytes).
pub fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xfe) && p.len() < 9
}

/// Decodes a text-protocol row: a length-encoded string per column, 0xfb for NULL.
fn text_row(mut p: &[u8]) -> Option<Vec<Option<String>>> {
    let mut row = Vec::new();
    while let Some(&first) = p.first() {
        if first == 0xfb {
            row.push(None);
            p = &p[1..];
            continue;
        }
        let (len, skip) = match first {
            0..=0xfa => (u64::from(first), 1),
            0xfc => (u64::from(u16::from_le_bytes([*p.get(1)?, *p.get(2)?])), 3),
            0xfd => (
                u64::from(u32::from_le_bytes([*p.get(1)?, *p.get(2)?, *p.get(3)?, 0])),
                4,
            ),
            0xfe => (u64::from_le_bytes(p.get(1..9)?.try_into().ok()?), 9),
            _ => return None,
        };
        let end = skip + usize::try_from(len).ok()?;
        row.push(Some(
            String::from_utf8_lossy(p.get(skip..end)?).into_owned(),
        ));
        p = &p[end..];
    }
    Some(row)
}

fn server_error(payload: &[u8], caps: CapabilityFlags) -> WireError {
    match ParseBuf(payload).parse::<ErrPacket<'_>>(caps) {
        Ok(ErrPacket::Error(e)) => WireError::Server {
            code: e.error_code(),
            state: e
                .sql_state_ref()
                .map(|s| s.as_str().into_owned())
                .unwrap_or_else(|| "HY000".into()),
            message: e.message_str().into_owned(),
        },
        _ => WireError::Server {
            code: 2027,
            state: "HY000".into(),
            message: "malformed error packet".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::text_row;

    #[test]
    fn text_rows_decode_nulls_and_lengths() {
        let row = text_row(b"\x05CRC32\xfb\x010").expect("row");
        assert_eq!(row, vec![Some("CRC32".into()), None, Some("0".into())]);
        assert!(text_row(b"\x05CRC").is_none());
    }
}
