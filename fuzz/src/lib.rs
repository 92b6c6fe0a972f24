//! What each fuzz target checks, over arbitrary bytes: that myrelay's parsers of untrusted input
//! never panic and keep their promises. Shared by the libFuzzer targets (`fuzz_targets/`) and the
//! corpus replay of the main crate's `cargo test` (`tests/fuzz_corpus.rs`, which includes this
//! file), so CI checks the same properties without a nightly toolchain.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;

use myrelay::config::{User, UserRole};
use myrelay::frontend::handshake::{Login, Offer, authenticate, change_user};
use myrelay::frontend::reply::Replies;
use myrelay::packet::{PacketReader, PacketWriter};
use myrelay::replication::binlog::{Groups, header, next_event};
use myrelay::replication::channel;
use myrelay::replication::gtid::Position;
use myrelay::sql::class::StatementClass;
use myrelay::sql::classify::classify as classify_sql;
use myrelay::sql::fast_read::plain_select;

/// Runs `f` to completion on a runtime of this thread: the readers below work on in-memory
/// bytes, so nothing waits on I/O.
fn block_on<F: Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| rt.block_on(f))
}

/// `packet::PacketReader` over a client byte stream (after one byte choosing the
/// packet size limit): no panic, no packet above the limit, at most as much payload as bytes in.
pub fn packet(data: &[u8]) {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let max = 1usize << (size % 26);
    block_on(async {
        let mut reader = PacketReader::new(stream, max);
        let (mut seq, mut total) = (0u8, 0usize);
        while let Ok(Some((payload, last))) = reader.read(seq).await {
            assert!(payload.len() <= max, "{} > {max}", payload.len());
            total += payload.len();
            assert!(total <= stream.len(), "more payload than input");
            seq = last.wrapping_add(1);
        }
    });
}

/// The proxy users of the handshake target; no empty password, so that no input can log in.
fn users() -> BTreeMap<String, User> {
    let user = |name: &str, role| {
        (
            name.to_string(),
            User {
                name: name.into(),
                role,
                password: "fuzz-password".into(),
                admin_from: Vec::new(),
                require_tls: false,
                databases: None,
            },
        )
    };
    [user("root", UserRole::Admin), user("app", UserRole::App)]
        .into_iter()
        .collect()
}

/// The handshake response parser and the auth exchange behind it (`authenticate`), then
/// COM_CHANGE_USER (`change_user`), over arbitrary bytes: the first two bytes say how many of
/// the rest are the response; what follows is the client's later packets (auth switch answers).
/// No panic, and no login without the password.
pub fn handshake(data: &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (response, later) = rest.split_at(len);
    let users = users();
    let offer = Offer::new(false, &Default::default());
    let peer = IpAddr::from([127, 0, 0, 1]);
    block_on(async {
        let mut reader = PacketReader::new(later, 1 << 24);
        let mut replies = Replies::new(PacketWriter::new(tokio::io::sink()), Default::default());
        let login = authenticate(
            &mut reader,
            &mut replies,
            response.to_vec(),
            1,
            &offer,
            &users,
            peer,
        )
        .await;
        assert!(login.is_err(), "logged in without the password: {login:?}");
        let current = Login {
            user: "app".into(),
            role: UserRole::App,
            db: None,
            caps: Default::default(),
            mariadb_caps: Default::default(),
            collation: 45,
            next_seq: 2,
            peer,
            offer: offer.clone(),
        };
        let mut reader = PacketReader::new(later, 1 << 24);
        let changed = change_user(&mut reader, &mut replies, response, 1, &current, &users).await;
        assert!(
            changed.is_err(),
            "changed user without the password: {changed:?}"
        );
    });
}

/// `sql::classify::classify` and the fast path `sql::fast_read::plain_select` over arbitrary
/// text: no panic, and the fast path never says Read where the classifier says otherwise.
pub fn classify(data: &[u8]) {
    let sql = String::from_utf8_lossy(data);
    let full = classify_sql(&sql);
    if let Some(fast) = plain_select(&sql) {
        assert_eq!(fast.class(), StatementClass::Read);
        assert_eq!(
            full.class(),
            StatementClass::Read,
            "the fast path reads {sql:?} as a plain SELECT, the classifier as {:?}",
            full.class()
        );
    }
    let _ = myrelay::sql::prepare::parse(&sql);
    let _ = myrelay::sql::routine::body_class(&sql);
    let _ = myrelay::sql::kill::kill_target(&sql);
}

/// What the node reads of binlog events a master relays (`replication::binlog`) and the GTID
/// positions it parses (`replication::gtid`), over arbitrary bytes: no panic; events split off
/// a stream are whole (their size field is their length); a position prints back to itself.
pub fn binlog(data: &[u8]) {
    let mut groups = Groups::default();
    let mut rest = data;
    while let Ok((event, tail)) = next_event(rest) {
        assert_eq!(header(event).map(|h| h.size as usize), Ok(event.len()));
        let _ = groups.step(event);
        rest = tail;
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(position) = Position::parse(text)
    {
        assert_eq!(Position::parse(&position.to_string()), Ok(position.clone()));
        assert!(position.covers(&position));
    }
}

/// The replication channel's message decoding, a frame body (`channel::decode`) and a framed
/// stream (`channel::read_message`): no panic, and a decoded message encodes back to itself.
/// Then both sides of the authentication handshake against a peer sending `data`: refused, as
/// no input can answer a fresh random challenge without the secret.
pub fn channel(data: &[u8]) {
    let secret = b"a cluster secret long enough for the channel";
    let timeout = std::time::Duration::from_secs(1);
    block_on(async {
        let mut peer = tokio::io::join(data, tokio::io::sink());
        let accepted = channel::accept_slave(&mut peer, secret, 7, timeout).await;
        assert!(accepted.is_err(), "a slave got in without the secret");
        let mut peer = tokio::io::join(data, tokio::io::sink());
        let connected = channel::connect_to_master(&mut peer, secret, "fuzz", timeout).await;
        assert!(
            connected.is_err(),
            "a master was trusted without the secret"
        );
    });
    if let Ok(message) = channel::decode(data) {
        let mut out = Vec::new();
        channel::encode(&message, &mut out);
        assert_eq!(channel::decode(&out).ok().as_ref(), Some(&message));
    }
    block_on(async {
        let mut stream = data;
        while let Ok(message) = channel::read_message(&mut stream).await {
            let mut out = Vec::new();
            channel::encode(&message, &mut out);
            assert_eq!(channel::decode(&out).ok().as_ref(), Some(&message));
        }
    });
}
