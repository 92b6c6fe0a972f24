//! The slave node's binlog feed: its own backend replicates from it as from a master.
//!
//! The backend's replica threads connect here (the node set them up with CHANGE MASTER), ask
//! what a replica asks a master, and request the binlog from their GTID position. The feed
//! opens the replication channel to the master node for that position and writes the events
//! it relays to the backend unchanged. So the backend applies them as any MariaDB replica
//! does: exactly once, crash-safe through `mysql.gtid_slave_pos`, with every event type, and
//! with the master's GTIDs in its own binlog.

use std::sync::Arc;
use std::time::Duration;

use mysql_common::constants::{CapabilityFlags, ColumnFlags, ColumnType, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{Column, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use mysql_common::scramble::scramble_native;
use mysql_common::value::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::binlog;
use super::channel::{self, Message};
use super::gtid::{Gtid, Position};
use super::master::{DEAD_AFTER, HEARTBEAT};
use super::slave::Replica;
use crate::clock::unix_ms;
use crate::error::{
    CR_CONN_HOST_ERROR, ER_ACCESS_DENIED_ERROR, ER_PARSE_ERROR, ER_UNKNOWN_COM_ERROR, ErrorReply,
};
use crate::frontend::reply::{OkInfo, Replies};
use crate::packet::{PacketReader, PacketWriter};
use crate::sql::replica::{ReplicaQuery, replica_query};

/// The account the backend's replica threads log in with.
pub const FEED_USER: &str = "myrelay_feed";

/// Largest packet the backend's replica sends (its statements are short).
const MAX_COMMAND: usize = 1 << 20;

const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0e;
const COM_BINLOG_DUMP: u8 = 0x12;
const COM_REGISTER_SLAVE: u8 = 0x15;

/// The capabilities the feed offers: what a replica needs, classic EOF packets.
fn feed_caps() -> CapabilityFlags {
    CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
}

/// A link to the master node: TCP or TLS, authenticated.
pub trait Link: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Link for T {}

/// Serves one connection of the backend's replica threads until either side stops.
pub async fn serve(replica: Arc<Replica>, socket: TcpStream) -> Result<(), String> {
    let _ = socket.set_nodelay(true);
    let (read, write) = socket.into_split();
    let mut reader = PacketReader::new(read, MAX_COMMAND);
    let mut out = PacketWriter::new(write);
    // The master first: without it there is nothing to answer the replica with.
    let (mut link, source) = match replica.open_link().await {
        Ok(x) => x,
        Err(why) => {
            replica.link_failed(&why);
            // An error in place of the greeting: the replica logs it and retries.
            let mut replies = Replies::new(out, feed_caps());
            replies.error(&ErrorReply::new(
                CR_CONN_HOST_ERROR,
                format!("myrelay: the master node is unreachable: {why}"),
            ));
            let _ = replies.out.flush().await;
            return Err(why);
        }
    };
    let password = replica.feed_password();
    let nonce = *b"myrelayfeedscramble!";
    let greeting = HandshakePacket::new(
        10,
        greeting_version(&source.version).into_bytes(),
        1,
        nonce[..8].try_into().unwrap_or([0; 8]),
        Some([&nonce[8..], &[0]].concat()),
        feed_caps(),
        45,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(&b"mysql_native_password"[..]),
    );
    let mut body = Vec::new();
    greeting.serialize(&mut body);
    out.packet(|b| b.extend_from_slice(&body));
    out.flush().await.map_err(|e| e.to_string())?;
    let (response, seq) = match reader.read(1).await {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let login: HandshakeResponse<'_> = ParseBuf(&response)
        .parse(())
        .map_err(|e| format!("replica handshake: {e}"))?;
    let caps = login.capabilities() & feed_caps();
    let mut replies = Replies::new(out, caps);
    replies.out.set_seq(seq.wrapping_add(1));
    let expected = scramble_native(&nonce, password.as_bytes()).map(|s| s.to_vec());
    if login.user() != FEED_USER.as_bytes() || Some(login.scramble_buf()) != expected.as_deref() {
        replies.error(&ErrorReply::new(
            ER_ACCESS_DENIED_ERROR,
            "Access denied: only the node's own backend replicates from its feed",
        ));
        let _ = replies.out.flush().await;
        return Err("a replica logged in with the wrong account".into());
    }
    let status = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
    replies.ok(&OkInfo::status(status));
    replies.out.flush().await.map_err(|e| e.to_string())?;
    let mut connect_state = String::new();
    loop {
        let (packet, seq) = match reader.read(0).await {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        replies.out.set_seq(seq.wrapping_add(1));
        let Some((&command, body)) = packet.split_first() else {
            return Err("empty packet from the replica".into());
        };
        match command {
            COM_QUIT => return Ok(()),
            COM_PING | COM_REGISTER_SLAVE => replies.ok(&OkInfo::status(status)),
            COM_QUERY => {
                let query = replica_query(body);
                debug!(?query, "replica asks");
                match query {
                    ReplicaQuery::UnixTimestamp => {
                        one_value(&mut replies, "UNIX_TIMESTAMP()", unix_ms() / 1000)
                    }
                    ReplicaQuery::ServerId => {
                        let columns = [text_column("Variable_name"), text_column("Value")];
                        replies.columns(&columns, status);
                        replies.text_row(&[text("server_id"), text(source.server_id)]);
                        replies.end_of_rows(0, status);
                    }
                    ReplicaQuery::Checksum => {
                        one_value(&mut replies, "@master_binlog_checksum", &source.checksum)
                    }
                    ReplicaQuery::DomainId => {
                        one_value(&mut replies, "@@GLOBAL.gtid_domain_id", source.domain_id)
                    }
                    ReplicaQuery::ConnectState(state) => {
                        connect_state = state;
                        replies.ok(&OkInfo::status(status));
                    }
                    ReplicaQuery::Set => replies.ok(&OkInfo::status(status)),
                    ReplicaQuery::Other => replies.error(&ErrorReply::new(
                        ER_PARSE_ERROR,
                        "myrelay's binlog feed answers only what a replica asks",
                    )),
                }
            }
            COM_BINLOG_DUMP => {
                // pos u32 | flags u16 | server_id u32 | file name
                let server_id = body
                    .get(6..10)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_le_bytes)
                    .ok_or("short COM_BINLOG_DUMP")?;
                let position = Position::parse(&connect_state).map_err(|e| e.to_string())?;
                return dump(
                    &replica,
                    &mut link,
                    &mut reader,
                    &mut replies,
                    position,
                    server_id,
                )
                .await;
            }
            other => replies.error(&ErrorReply::new(
                ER_UNKNOWN_COM_ERROR,
                format!("Unknown command 0x{other:02x} on myrelay's binlog feed"),
            )),
        }
        replies.out.flush().await.map_err(|e| e.to_string())?;
    }
}

/// The version the replica sees: the master backend's, with the prefix MariaDB's own greeting
/// carries.
fn greeting_version(version: &str) -> String {
    if version.contains("MariaDB") && !version.starts_with("5.5.5-") {
        format!("5.5.5-{version}")
    } else {
        version.to_string()
    }
}

fn text(v: impl ToString) -> Option<Value> {
    Some(Value::Bytes(v.to_string().into_bytes()))
}

fn text_column(name: &str) -> Column {
    Column::new(ColumnType::MYSQL_TYPE_VAR_STRING)
        .with_name(name.as_bytes())
        .with_character_set(33)
        .with_column_length(255)
        .with_flags(ColumnFlags::empty())
}

fn one_value<W: AsyncWrite + Unpin>(replies: &mut Replies<W>, name: &str, v: impl ToString) {
    let status = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
    replies.columns(&[text_column(name)], status);
    replies.text_row(&[text(v)]);
    replies.end_of_rows(0, status);
}

/// Streams the master's binlog from `position` to the replica until either side stops,
/// reporting what the backend applies.
async fn dump<R, W>(
    replica: &Arc<Replica>,
    link: &mut Box<dyn Link>,
    reader: &mut PacketReader<R>,
    replies: &mut Replies<W>,
    position: Position,
    server_id: u32,
) -> Result<(), String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let subscribe = Message::Subscribe {
        position: position.to_string(),
        server_id,
        client: replica.client().to_string(),
        console: replica.console().map(|a| a.to_string()).unwrap_or_default(),
    };
    channel::write_message(link, &subscribe)
        .await
        .map_err(|e| e.to_string())?;
    info!(from = %position, "backend replicates from the master");
    replica.set_connected(true);
    let (mut from_master, mut to_master) = tokio::io::split(link);
    let relay = async {
        // Whether the transaction being relayed is DDL (its GTID event says so).
        let mut ddl = false;
        loop {
            let m = tokio::time::timeout(DEAD_AFTER, channel::read_message(&mut from_master))
                .await
                .map_err(|_| "the master is silent".to_string())?
                .map_err(|e| e.to_string())?;
            match m {
                Message::Events { events, ends } => {
                    let mut rest = &events[..];
                    while !rest.is_empty() {
                        let (event, tail) = binlog::next_event(rest).map_err(|e| e.to_string())?;
                        if binlog::header(event).is_ok_and(|h| h.kind == binlog::kind::GTID) {
                            ddl = binlog::gtid(event).is_ok_and(|(_, standalone)| standalone);
                        }
                        replies.out.packet(|b| {
                            b.push(0);
                            b.extend_from_slice(event);
                        });
                        replies
                            .out
                            .flush_if_full()
                            .await
                            .map_err(|e| e.to_string())?;
                        rest = tail;
                    }
                    replies.out.flush().await.map_err(|e| e.to_string())?;
                    if let Some(gtid) = ends {
                        let gtid: Gtid = gtid
                            .parse()
                            .map_err(|e: super::gtid::BadPosition| e.to_string())?;
                        replica.relayed(gtid, ddl);
                    }
                }
                Message::Heartbeat { position, .. } => {
                    if let Ok(p) = Position::parse(&position) {
                        replica.master_at(p);
                    }
                }
                Message::Topology { json } => replica.cluster_told(&json),
                Message::Error { message } => return Err(format!("master: {message}")),
                other => debug!(?other, "ignored"),
            }
        }
    };
    let report = async {
        let mut applied = replica.applied_watch();
        let mut beat = tokio::time::interval(HEARTBEAT);
        loop {
            let m = tokio::select! {
                changed = applied.changed() => {
                    if changed.is_err() {
                        return Err("replica stopped".to_string());
                    }
                    Message::Ack { applied: applied.borrow_and_update().to_string() }
                }
                _ = beat.tick() => Message::Heartbeat {
                    position: applied.borrow().to_string(),
                    unix_ms: unix_ms(),
                },
            };
            channel::write_message(&mut to_master, &m)
                .await
                .map_err(|e| e.to_string())?;
        }
    };
    let outcome = tokio::select! {
        r = relay => r,
        r = report => r,
        () = reader.closed() => Ok(()),
    };
    replica.set_connected(false);
    if let Err(why) = &outcome {
        warn!(reason = %why, "binlog feed ended");
    }
    outcome
}

/// How long the feed waits for the master node before telling the replica it is unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
