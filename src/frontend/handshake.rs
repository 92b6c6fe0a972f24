//! Connection phase: greeting, `mysql_native_password` authentication against the proxy users.
//!
//! Only the node's own users are checked here; the backend account is never exposed to clients.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use mysql_common::scramble::{scramble_native, scramble_sha256};
use tokio::io::{AsyncRead, AsyncWrite};

use super::reply::Replies;
use crate::backend::wire::Greeting;
use crate::config::{User, UserRole};
use crate::error::{ER_ACCESS_DENIED_ERROR, ErrorReply};
use crate::packet::{PacketError, PacketReader};

const NATIVE_PASSWORD: &[u8] = b"mysql_native_password";

/// Capabilities a node can offer, of those its backend offers (SSL is added where TLS is
/// configured). Compression is the node's own, between client and node. LOCAL INFILE is
/// offered and then allowed or refused per statement (`limits.max_local_infile`).
pub fn server_capabilities() -> CapabilityFlags {
    CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_FOUND_ROWS
        | CapabilityFlags::CLIENT_LONG_FLAG
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_IGNORE_SPACE
        | CapabilityFlags::CLIENT_LOCAL_FILES
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_INTERACTIVE
        | CapabilityFlags::CLIENT_IGNORE_SIGPIPE
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_DEPRECATE_EOF
        | CapabilityFlags::CLIENT_SESSION_TRACK
        | CapabilityFlags::CLIENT_COMPRESS
}

/// MariaDB extended capabilities a node can offer: extended metadata changes only what a
/// column definition holds. Not progress reports, bulk execution or cached metadata, which
/// change the framing the node reads.
fn mariadb_capabilities() -> MariadbCapabilities {
    MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA
}

/// A client that passed authentication.
#[derive(Debug, Clone)]
pub struct Login {
    /// Login name.
    pub user: String,
    /// Role in force for this connection (an admin outside `admin_from` acts as `app`).
    pub role: UserRole,
    /// Database named in the handshake, to select before answering OK.
    pub db: Option<String>,
    /// Capabilities both sides support.
    pub caps: CapabilityFlags,
    /// MariaDB extended capabilities both sides support.
    pub mariadb_caps: MariadbCapabilities,
    /// Collation id the client asked for.
    pub collation: u8,
    /// Sequence id for the reply that ends the handshake.
    pub next_seq: u8,
    /// Where the client connects from (admin rights may depend on it).
    pub peer: IpAddr,
    /// The greeting's offer: its scramble answers COM_CHANGE_USER too; whether TLS is on.
    pub offer: Offer,
}

/// Why the connection phase ended without a login.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The client's packets could not be read.
    #[error(transparent)]
    Packet(#[from] PacketError),
    /// The client left before finishing.
    #[error("client closed the connection during the handshake")]
    Gone,
    /// The client sent a handshake that cannot be parsed or is not supported.
    #[error("bad handshake: {0}")]
    Malformed(String),
    /// Wrong password or unknown user (the client has been sent error 1045).
    #[error("{0}")]
    Denied(ErrorReply),
}

/// A random scramble of printable characters: some clients mishandle NUL bytes in it.
fn new_scramble() -> [u8; 20] {
    let mut s: [u8; 20] = rand::random();
    for b in &mut s {
        *b = 0x21 + *b % 94;
    }
    s
}

/// What the node offered in its greeting: what its backend connection's greeting announced,
/// with the node's own scramble and of the capabilities those the node serves.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The scramble the client must answer.
    pub scramble: [u8; 20],
    /// The capabilities the node announced.
    pub caps: CapabilityFlags,
    /// The MariaDB extended capabilities the node announced.
    pub mariadb_caps: MariadbCapabilities,
    /// True once the connection runs over TLS.
    pub tls: bool,
    /// The backend connection's id, which is the client's connection id.
    pub connection_id: u32,
    server_version: Vec<u8>,
    collation: u8,
    status: u16,
}

impl Offer {
    /// A fresh offer for a client whose backend connection greeted with `backend`; `tls`
    /// adds CLIENT_SSL to the capabilities.
    pub fn new(tls_available: bool, backend: &Greeting) -> Offer {
        // Without CLIENT_LONG_PASSWORD (CLIENT_MYSQL) a MariaDB server announces extended
        // capabilities; the node keeps the backend's choice.
        let mut caps = server_capabilities() & backend.caps | CapabilityFlags::CLIENT_COMPRESS;
        if tls_available {
            caps |= CapabilityFlags::CLIENT_SSL;
        }
        Offer {
            scramble: new_scramble(),
            caps,
            mariadb_caps: mariadb_capabilities() & backend.mariadb_caps,
            tls: false,
            connection_id: backend.connection_id,
            server_version: backend.version.clone(),
            collation: backend.collation,
            status: backend.status,
        }
    }

    /// The greeting's payload (protocol 10).
    pub fn greeting(&self) -> Vec<u8> {
        let (part1, part2) = self.scramble.split_at(8);
        let mut part1_arr = [0u8; 8];
        part1_arr.copy_from_slice(part1);
        let mut part2_nul = part2.to_vec();
        part2_nul.push(0);
        let greeting = HandshakePacket::new(
            10,
            &self.server_version[..],
            self.connection_id,
            part1_arr,
            Some(part2_nul),
            self.caps,
            self.collation,
            StatusFlags::from_bits_truncate(self.status),
            Some(NATIVE_PASSWORD),
        )
        .with_mariadb_ext_capabilities(self.mariadb_caps);
        let mut out = Vec::new();
        greeting.serialize(&mut out);
        out
    }
}

/// True for an SSLRequest: the short first packet of a client that switches to TLS.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && payload.get(..4).is_some_and(|c| {
            CapabilityFlags::from_bits_retain(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .contains(CapabilityFlags::CLIENT_SSL)
        })
}

/// Checks the client's handshake response `payload` (sequence id `seq`) against the proxy
/// users. On success nothing has been sent after the auth exchange: the caller answers OK (or an
/// error, e.g. for an unknown database).
#[allow(clippy::too_many_arguments)]
pub async fn authenticate<R, W>(
    reader: &mut PacketReader<R>,
    replies: &mut Replies<W>,
    payload: Vec<u8>,
    seq: u8,
    offer: &Offer,
    users: &BTreeMap<String, User>,
    peer: IpAddr,
) -> Result<Login, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if payload.len() < 32 {
        return Err(HandshakeError::Malformed(format!(
            "handshake response of {} bytes",
            payload.len()
        )));
    }
    let response: HandshakeResponse<'_> = ParseBuf(&payload)
        .parse(())
        .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    let client_caps = response.capabilities();
    if !client_caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        return Err(HandshakeError::Malformed(
            "clients older than protocol 4.1 are not supported".into(),
        ));
    }
    if client_caps.contains(CapabilityFlags::CLIENT_SSL) && !offer.tls {
        return Err(HandshakeError::Malformed(
            "client claims TLS but did not negotiate it".into(),
        ));
    }
    let caps = client_caps & offer.caps;
    let mariadb_caps = response.mariadb_ext_capabilities() & offer.mariadb_caps;
    replies.set_caps(caps);
    replies.set_extended_metadata(
        mariadb_caps.contains(MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA),
    );
    let client_name = response
        .connect_attributes()
        .and_then(|attrs| attrs.get("_client_name").cloned());
    replies.set_server_codes_only(client_name.as_deref() == Some("libmariadb"));
    let user = String::from_utf8_lossy(response.user()).into_owned();
    let db = response
        .db_name()
        .filter(|d| !d.is_empty())
        .map(|d| String::from_utf8_lossy(d).into_owned());
    let collation = response.collation();
    let next_seq = seq.wrapping_add(1);

    let plugin = Plugin::from(response.auth_plugin());
    let (role, next_seq) = verify(
        reader,
        replies,
        Credentials {
            user: &user,
            plugin,
            token: response.scramble_buf(),
            seq: next_seq,
        },
        offer,
        users,
        peer,
    )
    .await?;
    Ok(Login {
        user,
        role,
        db,
        caps,
        mariadb_caps,
        collation,
        next_seq,
        peer,
        offer: offer.clone(),
    })
}

/// What a client presented to log in.
struct Credentials<'a> {
    user: &'a str,
    plugin: Plugin,
    token: &'a [u8],
    /// Sequence id of the next packet the node sends.
    seq: u8,
}

/// Checks credentials against the proxy users (asking a client with an unknown plugin to switch
/// to mysql_native_password first). On success returns the role in force and the next sequence
/// id; on failure the client has been sent error 1045.
async fn verify<R, W>(
    reader: &mut PacketReader<R>,
    replies: &mut Replies<W>,
    creds: Credentials<'_>,
    offer: &Offer,
    users: &BTreeMap<String, User>,
    peer: IpAddr,
) -> Result<(UserRole, u8), HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let scramble = offer.scramble;
    let Credentials {
        user,
        plugin,
        token,
        mut seq,
    } = creds;
    // The node keeps every proxy user's password, so caching_sha2_password always takes its
    // fast path (the scramble check); other plugins are asked to use mysql_native_password.
    let token: Cow<'_, [u8]> = if plugin == Plugin::Other {
        let mut data = scramble.to_vec();
        data.push(0);
        let switch = AuthSwitchRequest::new(NATIVE_PASSWORD, data);
        replies.out.set_seq(seq);
        replies.out.packet(|b| switch.serialize(b));
        replies.out.flush().await.map_err(PacketError::from)?;
        let (answer, answer_seq) = reader.read(seq).await?.ok_or(HandshakeError::Gone)?;
        seq = answer_seq.wrapping_add(1);
        Cow::Owned(answer)
    } else {
        Cow::Borrowed(token)
    };
    let check = match plugin {
        Plugin::CachingSha2 => sha2_password_matches,
        _ => password_matches,
    };
    let granted = users
        .get(user)
        .filter(|u| check(&scramble, &u.password, &token));
    let account = match granted {
        Some(u) if offer.tls || !u.require_tls => u,
        other => {
            let message = if other.is_some() {
                format!("Access denied for user '{user}'@'{peer}': this user must connect over TLS")
            } else {
                format!(
                    "Access denied for user '{user}'@'{peer}' (using password: {})",
                    if token.is_empty() { "NO" } else { "YES" }
                )
            };
            let err = ErrorReply::new(ER_ACCESS_DENIED_ERROR, message);
            replies.out.set_seq(seq);
            replies.error(&err);
            replies.out.flush().await.map_err(PacketError::from)?;
            return Err(HandshakeError::Denied(err));
        }
    };
    if plugin == Plugin::CachingSha2 {
        // AuthMoreData "fast auth success"; the OK follows.
        replies.out.set_seq(seq);
        replies.out.packet(|b| b.extend_from_slice(&[0x01, 0x03]));
        seq = seq.wrapping_add(1);
    }
    Ok((account.effective_role(peer), seq))
}

/// COM_CHANGE_USER: logs the connection in again as another (or the same) user, answering the
/// scramble of the original greeting. Returns the new login; on failure the client has been
/// sent the error.
pub async fn change_user<R, W>(
    reader: &mut PacketReader<R>,
    replies: &mut Replies<W>,
    body: &[u8],
    seq: u8,
    current: &Login,
    users: &BTreeMap<String, User>,
) -> Result<Login, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let malformed = || HandshakeError::Malformed("bad COM_CHANGE_USER packet".into());
    let nul = |b: &[u8]| b.iter().position(|&c| c == 0);
    let end = nul(body).ok_or_else(malformed)?;
    let user = String::from_utf8_lossy(&body[..end]).into_owned();
    let rest = &body[end + 1..];
    let (&len, rest) = rest.split_first().ok_or_else(malformed)?;
    let token = rest.get(..usize::from(len)).ok_or_else(malformed)?;
    let rest = &rest[usize::from(len)..];
    let end = nul(rest).unwrap_or(rest.len());
    let db = (end > 0).then(|| String::from_utf8_lossy(&rest[..end]).into_owned());
    let rest = rest.get(end + 1..).unwrap_or_default();
    let collation = rest.first().copied().unwrap_or(current.collation);
    let plugin_name = rest.get(2..).map(|p| &p[..nul(p).unwrap_or(p.len())]);
    let plugin = Plugin::from(
        plugin_name
            .filter(|name| !name.is_empty())
            .map(AuthPlugin::from_bytes)
            .as_ref(),
    );
    let (role, next_seq) = verify(
        reader,
        replies,
        Credentials {
            user: &user,
            plugin,
            token,
            seq,
        },
        &current.offer,
        users,
        current.peer,
    )
    .await?;
    Ok(Login {
        user,
        role,
        db,
        caps: current.caps,
        mariadb_caps: current.mariadb_caps,
        collation,
        next_seq,
        peer: current.peer,
        offer: current.offer.clone(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plugin {
    Native,
    CachingSha2,
    Other,
}

impl From<Option<&AuthPlugin<'_>>> for Plugin {
    fn from(p: Option<&AuthPlugin<'_>>) -> Plugin {
        match p {
            None | Some(AuthPlugin::MysqlNativePassword) => Plugin::Native,
            Some(AuthPlugin::CachingSha2Password) => Plugin::CachingSha2,
            Some(_) => Plugin::Other,
        }
    }
}

/// Checks a `caching_sha2_password` scramble (the fast path) in constant time.
fn sha2_password_matches(scramble: &[u8], password: &str, token: &[u8]) -> bool {
    match scramble_sha256(scramble, password.as_bytes()) {
        None => token.is_empty(),
        Some(expected) => same_bytes(&expected, token),
    }
}

fn same_bytes(expected: &[u8], token: &[u8]) -> bool {
    token.len() == expected.len()
        && expected
            .iter()
            .zip(token)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Checks a `mysql_native_password` token without leaking timing about where it differs.
fn password_matches(scramble: &[u8], password: &str, token: &[u8]) -> bool {
    match scramble_native(scramble, password.as_bytes()) {
        None => token.is_empty(),
        Some(expected) => same_bytes(&expected, token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_check() {
        let scramble = new_scramble();
        assert!(scramble.iter().all(|b| (0x21..0x7f).contains(b)));
        let token = scramble_native(&scramble, b"secret").expect("non-empty password");
        assert!(password_matches(&scramble, "secret", &token));
        assert!(!password_matches(&scramble, "Secret", &token));
        assert!(!password_matches(&scramble, "secret", &token[..19]));
        assert!(password_matches(&scramble, "", b""));
        assert!(!password_matches(&scramble, "secret", b""));
        let sha = scramble_sha256(&scramble, b"secret").expect("non-empty password");
        assert!(sha2_password_matches(&scramble, "secret", &sha));
        assert!(!sha2_password_matches(&scramble, "other", &sha));
    }
}
