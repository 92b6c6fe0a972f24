//! A MySQL client connection of the node's own, on mysql_common packets, for what a client
//! library does not offer: a client session's backend connection, whose replies are relayed as
//! the server wrote them (`relay.rs`), and reading a binlog dump packet by packet.
//!
//! It logs in with `mysql_native_password` (the backend account's plugin; an auth switch to it
//! is followed), negotiating what its caller asks (for a session: what the client negotiated
//! with the node), runs plain statements and sends commands whose replies the caller reads.

use std::net::SocketAddr;
use std::time::Duration;

use mysql_common::constants::{
    CapabilityFlags, ColumnFlags, ColumnType, MariadbCapabilities, StatusFlags,
};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, ErrPacket, HandshakePacket, HandshakeResponse,
};
use mysql_common::proto::MySerialize;
use mysql_common::scramble::scramble_native;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::error::{CR_CONN_HOST_ERROR, CR_MALFORMED_PACKET, CR_SERVER_LOST, ErrorReply};
use crate::packet::{PacketError, PacketReader, PacketWriter};

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

impl WireError {
    /// The error a client gets when this failed while reaching a server (`what`, e.g. "Can't
    /// connect to backend MySQL server at …"): the server's own error as it is, else 2003.
    pub fn unreachable(&self, what: &str) -> ErrorReply {
        match self {
            WireError::Server { .. } => self.reply(),
            other => ErrorReply::new(CR_CONN_HOST_ERROR, format!("{what}: {other}")),
        }
    }

    /// The error a client gets for it: the server's own error as it is; a lost connection as
    /// 2013 naming the backend.
    pub fn reply(&self) -> ErrorReply {
        match self {
            WireError::Server {
                code,
                state,
                message,
            } => ErrorReply::from_server(*code, state, message.clone()),
            WireError::Io { addr, source } => ErrorReply::new(
                CR_SERVER_LOST,
                format!("Lost connection to backend MySQL server at {addr} during query: {source}"),
            ),
            WireError::Protocol { addr, what } => ErrorReply::new(
                CR_SERVER_LOST,
                format!(
                    "Lost connection to backend MySQL server at {addr}: unexpected reply: {what}"
                ),
            ),
        }
    }
}

/// A connection to a backend (logged in once [`Wire::login`] succeeded).
pub struct Wire {
    addr: SocketAddr,
    reader: PacketReader<Box<dyn AsyncRead + Send + Unpin>>,
    writer: PacketWriter<Box<dyn AsyncWrite + Send + Unpin>>,
    caps: CapabilityFlags,
    /// Sequence id the next packet read must carry.
    seq: u8,
    /// The server's connection (thread) id.
    id: u32,
    /// MariaDB's extended capabilities in force (extended metadata lengthens column definitions).
    mariadb_caps: MariadbCapabilities,
}

/// What a backend's greeting announced.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// The connection (thread) id the server gave this connection.
    pub connection_id: u32,
    /// The server's version string, as the server wrote it.
    pub version: Vec<u8>,
    /// The server's capabilities.
    pub caps: CapabilityFlags,
    /// MariaDB's extended capabilities (empty for MySQL).
    pub mariadb_caps: MariadbCapabilities,
    /// The server's default collation.
    pub collation: u8,
    /// The server's status flags.
    pub status: u16,
    nonce: Vec<u8>,
    version_parsed: (u16, u16, u16),
}

impl Default for Greeting {
    /// A greeting of no server in particular: what an offer made without a backend (as in the
    /// fuzz targets) is based on.
    fn default() -> Greeting {
        Greeting {
            connection_id: 0,
            version: b"5.5.5-10.11.0-MariaDB".to_vec(),
            caps: CapabilityFlags::all(),
            mariadb_caps: MariadbCapabilities::all(),
            collation: DEFAULT_COLLATION,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(),
            nonce: Vec::new(),
            version_parsed: (10, 11, 0),
        }
    }
}

/// How to log in: the account, and what the connection negotiates.
#[derive(Debug, Clone)]
pub struct Credentials<'a> {
    /// Account name.
    pub user: &'a str,
    /// Its password.
    pub password: &'a str,
    /// Capabilities asked for (reduced to those the server offers).
    pub caps: CapabilityFlags,
    /// MariaDB extended capabilities asked for (reduced likewise).
    pub mariadb_caps: MariadbCapabilities,
    /// Collation of the connection.
    pub collation: u8,
    /// Database to select at login.
    pub db: Option<&'a str>,
}

/// What this client asks for by default: protocol 4.1 with plugin auth, nothing that changes how
/// replies look (no deprecate-EOF, no session tracking), so that replies are the classic ones.
pub fn classic_caps() -> CapabilityFlags {
    CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_MULTI_RESULTS
}

/// utf8mb4_general_ci, the collation of the node's own connections.
const DEFAULT_COLLATION: u8 = 45;

impl Wire {
    /// Connects and logs in as `user` with [`classic_caps`], within `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Wire, WireError> {
        let login = async {
            let (mut wire, greeting) = Wire::open(addr).await?;
            let creds = Credentials {
                user,
                password,
                caps: classic_caps(),
                mariadb_caps: MariadbCapabilities::empty(),
                collation: DEFAULT_COLLATION,
                db: None,
            };
            wire.login(&greeting, &creds).await?;
            Ok::<_, WireError>(wire)
        };
        tokio::time::timeout(timeout, login)
            .await
            .map_err(|_| WireError::Io {
                addr,
                source: PacketError::Io(std::io::ErrorKind::TimedOut.into()),
            })?
    }

    /// Connects over TCP and reads the server's greeting; [`Wire::login`] continues.
    pub async fn open(addr: SocketAddr) -> Result<(Wire, Greeting), WireError> {
        let socket = TcpStream::connect(addr).await.map_err(|e| WireError::Io {
            addr,
            source: e.into(),
        })?;
        let _ = socket.set_nodelay(true);
        let (read, write) = socket.into_split();
        Wire::greeted(addr, Box::new(read), Box::new(write)).await
    }

    /// Connects to the server at `addr` through its Unix socket `path` (a local server: no TCP
    /// stack in between) and reads its greeting.
    pub async fn open_unix(
        addr: SocketAddr,
        path: &std::path::Path,
    ) -> Result<(Wire, Greeting), WireError> {
        let socket = UnixStream::connect(path).await.map_err(|e| WireError::Io {
            addr,
            source: e.into(),
        })?;
        let (read, write) = socket.into_split();
        Wire::greeted(addr, Box::new(read), Box::new(write)).await
    }

    async fn greeted(
        addr: SocketAddr,
        read: Box<dyn AsyncRead + Send + Unpin>,
        write: Box<dyn AsyncWrite + Send + Unpin>,
    ) -> Result<(Wire, Greeting), WireError> {
        let mut wire = Wire {
            addr,
            reader: PacketReader::new(read, MAX_PACKET),
            writer: PacketWriter::new(write),
            caps: classic_caps(),
            seq: 0,
            id: 0,
            mariadb_caps: MariadbCapabilities::empty(),
        };
        let payload = wire.read().await?;
        if payload.first() == Some(&0xff) {
            return Err(server_error(&payload, wire.caps));
        }
        let hello: HandshakePacket<'_> = ParseBuf(&payload)
            .parse(())
            .map_err(|e| wire.protocol(format!("greeting: {e}")))?;
        let greeting = Greeting {
            connection_id: hello.connection_id(),
            version: hello.server_version_ref().to_vec(),
            caps: hello.capabilities(),
            mariadb_caps: hello.mariadb_ext_capabilities(),
            collation: hello.default_collation(),
            status: hello.status_flags().bits(),
            nonce: hello.nonce(),
            version_parsed: hello.server_version_parsed().unwrap_or((5, 5, 5)),
        };
        wire.id = greeting.connection_id;
        Ok((wire, greeting))
    }

    /// Logs in as `creds` say (`mysql_native_password`, following an auth switch to it).
    /// Returns the server's OK packet.
    pub async fn login(
        &mut self,
        greeting: &Greeting,
        creds: &Credentials<'_>,
    ) -> Result<Vec<u8>, WireError> {
        self.caps = creds.caps & greeting.caps;
        self.mariadb_caps = creds.mariadb_caps & greeting.mariadb_caps;
        let scramble =
            scramble_native(&greeting.nonce, creds.password.as_bytes()).map(|s| s.to_vec());
        let response = HandshakeResponse::new(
            scramble.as_deref(),
            greeting.version_parsed,
            Some(creds.user.as_bytes()),
            creds.db.map(str::as_bytes),
            Some(AuthPlugin::MysqlNativePassword),
            self.caps,
            None,
            MAX_PACKET as u32,
        )
        .with_mariadb_ext_capabilities(self.mariadb_caps);
        let mut body = Vec::new();
        response.serialize(&mut body);
        // The collation byte follows the capabilities and the maximum packet size.
        if let Some(collation) = body.get_mut(8) {
            *collation = creds.collation;
        }
        if creds.db.is_some() {
            self.caps |= CapabilityFlags::CLIENT_CONNECT_WITH_DB;
        }
        self.send(&body).await?;
        self.authenticated(creds.password).await
    }

    /// Reads the end of an authentication exchange: the OK (returned), an error, or an auth
    /// switch to `mysql_native_password`, which is answered.
    async fn authenticated(&mut self, password: &str) -> Result<Vec<u8>, WireError> {
        loop {
            let reply = self.read().await?;
            match reply.first() {
                Some(0x00) => return Ok(reply),
                Some(0xff) => return Err(server_error(&reply, self.caps)),
                Some(0xfe) => {
                    let switch: AuthSwitchRequest<'_> = ParseBuf(&reply)
                        .parse(())
                        .map_err(|e| self.protocol(format!("auth switch: {e}")))?;
                    if switch.auth_plugin() != AuthPlugin::MysqlNativePassword {
                        return Err(self.protocol(format!(
                            "the backend account uses {:?}; myrelay logs in with \
                             mysql_native_password",
                            String::from_utf8_lossy(switch.auth_plugin().as_bytes())
                        )));
                    }
                    let answer = scramble_native(switch.plugin_data(), password.as_bytes())
                        .map(|s| s.to_vec())
                        .unwrap_or_default();
                    self.send(&answer).await?;
                }
                _ => return Err(self.protocol("login reply".into())),
            }
        }
    }

    /// COM_CHANGE_USER: the server starts the session over (as `creds` say), as it would for
    /// the client. Returns the server's OK packet.
    pub async fn change_user(
        &mut self,
        greeting: &Greeting,
        creds: &Credentials<'_>,
    ) -> Result<Vec<u8>, WireError> {
        let scramble = scramble_native(&greeting.nonce, creds.password.as_bytes())
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let mut body = Vec::new();
        body.extend_from_slice(creds.user.as_bytes());
        body.push(0);
        body.push(scramble.len() as u8);
        body.extend_from_slice(&scramble);
        body.extend_from_slice(creds.db.unwrap_or_default().as_bytes());
        body.push(0);
        body.extend_from_slice(&u16::from(creds.collation).to_le_bytes());
        body.extend_from_slice(b"mysql_native_password\0");
        self.command(0x11, &body).await?;
        self.authenticated(creds.password).await
    }

    /// The server's id of this connection (what `CONNECTION_ID()` returns on it).
    pub fn connection_id(&self) -> u32 {
        self.id
    }

    /// The capabilities in force on this connection.
    pub fn caps(&self) -> CapabilityFlags {
        self.caps
    }

    /// The error for a reply from this server that the node cannot read.
    pub fn protocol(&self, what: String) -> WireError {
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
    pub async fn send(&mut self, body: &[u8]) -> Result<(), WireError> {
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

    /// Runs `sql` and returns its first result's rows as text (NULL as `None`); a statement
    /// without a result gives no rows. Reads every result of the packet, whatever the
    /// connection negotiated (deprecate-EOF, session tracking).
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, WireError> {
        Ok(self.query_typed(sql).await?.1)
    }

    /// [`query`](Self::query) with the type and flags of each column of the first result.
    pub async fn query_typed(&mut self, sql: &str) -> Result<(Vec<ColumnKind>, Rows), WireError> {
        self.command(0x03, sql.as_bytes()).await?;
        let mut first: Option<(Vec<ColumnKind>, Rows)> = None;
        loop {
            let head = self.read().await?;
            let status = match head.first() {
                Some(0x00) => ok_status(&head).unwrap_or(0),
                Some(0xff) => return Err(self.error(&head)),
                Some(0xfb) => {
                    // LOCAL INFILE: the node never sends a file of its own.
                    self.send(&[]).await?;
                    continue;
                }
                _ => {
                    let deprecate_eof = self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
                    let columns =
                        column_count(&head).ok_or_else(|| self.protocol("column count".into()))?;
                    let extended = self
                        .mariadb_caps
                        .contains(MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA);
                    let mut kinds = Vec::new();
                    for _ in 0..columns {
                        let p = self.read().await?;
                        kinds.push(
                            column_kind(&p, extended)
                                .ok_or_else(|| self.protocol("column definition".into()))?,
                        );
                    }
                    if !deprecate_eof {
                        self.read().await?;
                    }
                    let mut rows = Vec::new();
                    let status = loop {
                        let p = self.read().await?;
                        if p.first() == Some(&0xff) {
                            return Err(self.error(&p));
                        }
                        if let Some(status) = end_of_rows(&p) {
                            break status;
                        }
                        rows.push(text_row(&p).ok_or_else(|| self.protocol("text row".into()))?);
                    };
                    first.get_or_insert((kinds, rows));
                    status
                }
            };
            if status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() == 0 {
                return Ok(first.unwrap_or_default());
            }
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

/// Rows of a text result, NULL as `None`.
pub type Rows = Vec<Vec<Option<String>>>;

/// A column's type and flags, read from its definition.
pub type ColumnKind = (ColumnType, ColumnFlags);

/// The type and flags of a column definition: six length-encoded strings (catalog to
/// org_name), MariaDB's extended metadata when negotiated, then the fixed-length fields.
fn column_kind(p: &[u8], extended: bool) -> Option<ColumnKind> {
    let mut rest = p;
    for _ in 0..(6 + usize::from(extended)) {
        rest = skip_lenenc_str(rest)?;
    }
    // 0x0c, charset (2), length (4), type (1), flags (2).
    let ty = ColumnType::try_from(*rest.get(7)?).ok()?;
    let flags = ColumnFlags::from_bits_truncate(u16::from_le_bytes([*rest.get(8)?, *rest.get(9)?]));
    Some((ty, flags))
}

/// An EOF packet (classic protocol: 0xfe and shorter than 9 bytes).
pub fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xfe) && p.len() < 9
}

/// The status flags of the packet that ends a result set's rows, `None` for a row: an EOF
/// packet, or (deprecate-EOF) an OK packet with the 0xfe header. A row can start with 0xfe only
/// as the prefix of a value of 16 MiB or more, so its packet is never that short.
pub fn end_of_rows(p: &[u8]) -> Option<u16> {
    if p.first() != Some(&0xfe) || p.len() >= 0xff_ffff {
        return None;
    }
    if is_eof(p) {
        return Some(p.get(3..5).map_or(0, |s| u16::from_le_bytes([s[0], s[1]])));
    }
    ok_status(p)
}

/// The status flags of an OK packet (0x00 or 0xfe header): after the header come the affected
/// rows and the last insert id, each a length-encoded integer, then the status.
pub fn ok_status(p: &[u8]) -> Option<u16> {
    let mut rest = p.get(1..)?;
    for _ in 0..2 {
        rest = rest.get(lenenc_int(rest)?.1..)?;
    }
    Some(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]))
}

/// The number of columns a result set's first packet announces (a length-encoded integer).
pub fn column_count(p: &[u8]) -> Option<u64> {
    lenenc_int(p).map(|(n, _)| n)
}

/// A length-encoded integer at the start of `p`, and the bytes it takes.
pub fn lenenc_int(p: &[u8]) -> Option<(u64, usize)> {
    let first = *p.first()?;
    let width = match first {
        0..=0xfa => return Some((u64::from(first), 1)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = p.get(1..1 + width)?;
    let n = bytes
        .iter()
        .rev()
        .fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    Some((n, 1 + width))
}

/// `p` past the length-encoded string at its start.
fn skip_lenenc_str(p: &[u8]) -> Option<&[u8]> {
    let (len, width) = lenenc_int(p)?;
    p.get(width + usize::try_from(len).ok()?..)
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
        let (len, skip) = lenenc_int(p)?;
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
            code: CR_MALFORMED_PACKET.code(),
            state: String::from_utf8_lossy(&CR_MALFORMED_PACKET.state()).into_owned(),
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
        // Two- and three-byte lengths.
        assert_eq!(text_row(b"\xfc\x03\x00abc"), Some(vec![Some("abc".into())]));
        assert_eq!(text_row(b"\xfd\x01\x00\x00z"), Some(vec![Some("z".into())]));
        assert!(text_row(b"\xfc\x03").is_none());
    }
}
