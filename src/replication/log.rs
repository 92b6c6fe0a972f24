//! The master's durable replication log: an append-only file of checksummed entries.
//!
//! File format: an 8-byte header (`MRL1` and format version 1, little endian), then one record
//! per entry: `len u32 | lsn u64 | crc32 u32 | payload`, where the CRC covers the LSN bytes and
//! the payload. LSNs start at 1 and are consecutive. On open, a torn or corrupt *last* record
//! (the node died mid-append) is cut off and never replayed; a bad record followed by good ones
//! is corruption, and the log refuses to open rather than guess.
//!
//! Durability: with [`Durability::Fsync`] (the default) `append` returns only after the record
//! is on disk (`sync_data`), so a client is acknowledged only for changes a crash cannot lose.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

const MAGIC: &[u8; 4] = b"MRL1";
const FORMAT: u32 = 1;
const HEADER: u64 = 8;
const RECORD_HEAD: usize = 16;
/// Largest payload of one entry.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// How appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before `append` returns (the default).
    Fsync,
    /// Leave flushing to the OS: faster, but a crash may lose acknowledged entries.
    OsBuffered,
}

/// A log failure.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file system failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A bad record that is not at the tail, or a file that is not a log.
    #[error("replication log is corrupt: {0}")]
    Corrupt(String),
    /// A payload over [`MAX_PAYLOAD`].
    #[error("entry of {0} bytes is too large for the log")]
    TooLarge(usize),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LogError {
    let what = what.into();
    move |source| LogError::Io { what, source }
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its position.
    pub lsn: u64,
    /// The encoded change.
    pub payload: Vec<u8>,
}

/// What opening the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Entries in the log.
    pub entries: u64,
    /// The last LSN (0 when empty).
    pub last_lsn: u64,
    /// Bytes of a torn or corrupt tail that were cut off.
    pub dropped_bytes: u64,
}

struct Inner {
    file: File,
    /// File offset of each entry's record; entry `lsn` is at `offsets[lsn - 1]`.
    offsets: Vec<u64>,
    end: u64,
}

/// The log; methods take `&self`, so it can be shared behind an `Arc`.
pub struct ReplicationLog {
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
    durability: Durability,
    last: watch::Sender<u64>,
}

fn crc(lsn: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&lsn.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn encode(lsn: u64, payload: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(RECORD_HEAD + payload.len());
    rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    rec.extend_from_slice(&lsn.to_le_bytes());
    rec.extend_from_slice(&crc(lsn, payload).to_le_bytes());
    rec.extend_from_slice(payload);
    rec
}

/// Parses one record at the start of `buf`: `Some((lsn, payload, size))` if whole and valid.
fn parse(buf: &[u8]) -> Option<(u64, &[u8], usize)> {
    let head = buf.get(..RECORD_HEAD)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&head[4..12]);
    let lsn = u64::from_le_bytes(lsn);
    let sum = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    if len > MAX_PAYLOAD {
        return None;
    }
    let payload = buf.get(RECORD_HEAD..RECORD_HEAD + len)?;
    (crc(lsn, payload) == sum).then_some((lsn, payload, RECORD_HEAD + len))
}

impl ReplicationLog {
    /// Opens `<dir>/replication.log`, creating it if needed, verifying every record and cutting
    /// off a torn tail.
    pub fn open(
        dir: &Path,
        durability: Durability,
    ) -> Result<(ReplicationLog, Recovery), LogError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let path = dir.join("replication.log");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(io(format!("reading {}", path.display())))?;
        let mut recovery = Recovery::default();
        if data.is_empty() {
            let mut header = MAGIC.to_vec();
            header.extend_from_slice(&FORMAT.to_le_bytes());
            file.write_all(&header)
                .map_err(io("writing the log header"))?;
            file.sync_all().map_err(io("syncing the log header"))?;
            data = header;
        }
        if data.len() < HEADER as usize || &data[..4] != MAGIC {
            return Err(LogError::Corrupt(format!(
                "{} is not a myrelay replication log",
                path.display()
            )));
        }
        let mut offsets = Vec::new();
        let mut pos = HEADER as usize;
        while pos < data.len() {
            match parse(&data[pos..]) {
                Some((lsn, _, size)) if lsn == offsets.len() as u64 + 1 => {
                    offsets.push(pos as u64);
                    pos += size;
                }
                found => {
                    // Cut only a tail: no valid record may follow the bad one.
                    let mut next = pos + found.map(|(_, _, size)| size).unwrap_or(1);
                    while next + RECORD_HEAD <= data.len() {
                        if parse(&data[next..]).is_some() {
                            return Err(LogError::Corrupt(format!(
                                "bad record at offset {pos} of {} is followed by valid ones",
                                path.display()
                            )));
                        }
                        next += 1;
                    }
                    recovery.dropped_bytes = (data.len() - pos) as u64;
                    file.set_len(pos as u64)
                        .map_err(io("cutting the torn tail"))?;
                    file.sync_all().map_err(io("syncing the cut log"))?;
                    break;
                }
            }
        }
        let end = pos as u64;
        file.seek(SeekFrom::Start(end))
            .map_err(io("seeking to the log's end"))?;
        recovery.entries = offsets.len() as u64;
        recovery.last_lsn = recovery.entries;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let log = ReplicationLog {
            path,
            inner: Arc::new(Mutex::new(Inner { file, offsets, end })),
            durability,
            last: watch::channel(recovery.last_lsn).0,
        };
        Ok((log, recovery))
    }

    /// The LSN of the last durable entry (0 when empty).
    pub fn last_lsn(&self) -> u64 {
        *self.last.borrow()
    }

    /// Appends `payload` as the next entry and returns its LSN once durable. Appends are
    /// serialized, so LSN order is append order.
    pub async fn append(&self, payload: &[u8]) -> Result<u64, LogError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(LogError::TooLarge(payload.len()));
        }
        let inner = self.inner.clone();
        let payload = payload.to_vec();
        let fsync = self.durability == Durability::Fsync;
        let lsn = tokio::task::spawn_blocking(move || -> Result<u64, LogError> {
            let mut inner = inner
                .lock()
                .map_err(|_| LogError::Corrupt("log lock poisoned".into()))?;
            let lsn = inner.offsets.len() as u64 + 1;
            let record = encode(lsn, &payload);
            let at = inner.end;
            let written = inner.file.write_all(&record).and_then(|()| {
                if fsync {
                    inner.file.sync_data()
                } else {
                    Ok(())
                }
            });
            if let Err(e) = written {
                // Leave no partial record behind for the next append to follow.
                let _ = inner.file.set_len(at);
                let _ = inner.file.seek(SeekFrom::Start(at));
                return Err(LogError::Io {
                    what: "appending to the replication log".into(),
                    source: e,
                });
            }
            inner.offsets.push(at);
            inner.end = at + record.len() as u64;
            Ok(lsn)
        })
        .await
        .map_err(|e| LogError::Corrupt(format!("append task failed: {e}")))??;
        self.last.send_replace(lsn);
        Ok(lsn)
    }

    /// Up to `max_entries` entries after `after`, in order, about `max_bytes` of payload at most
    /// (always at least one when there is one).
    pub async fn read_after(
        &self,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, LogError> {
        let last = self.last_lsn();
        if after >= last {
            return Ok(Vec::new());
        }
        let (start, stop) = {
            let inner = self
                .inner
                .lock()
                .map_err(|_| LogError::Corrupt("log lock poisoned".into()))?;
            let first = after as usize; // index of entry after+1
            let upto = (first + max_entries.max(1)).min(last as usize);
            let stop = inner.offsets.get(upto).copied().unwrap_or(inner.end);
            (inner.offsets.get(first).copied().unwrap_or(inner.end), stop)
        };
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<Entry>, LogError> {
            let mut file = File::open(&path).map_err(io("opening the log for reading"))?;
            file.seek(SeekFrom::Start(start))
                .map_err(io("seeking in the log"))?;
            let mut entries = Vec::new();
            let mut bytes = 0;
            let mut pos = start;
            while pos < stop && (entries.is_empty() || bytes < max_bytes) {
                let mut head = [0u8; RECORD_HEAD];
                file.read_exact(&mut head).map_err(io("reading the log"))?;
                let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                if len > MAX_PAYLOAD {
                    return Err(LogError::Corrupt(format!(
                        "record at {pos} claims {len} bytes"
                    )));
                }
                let mut record = head.to_vec();
                record.resize(RECORD_HEAD + len, 0);
                file.read_exact(&mut record[RECORD_HEAD..])
                    .map_err(io("reading the log"))?;
                let Some((lsn, payload, size)) = parse(&record) else {
                    return Err(LogError::Corrupt(format!(
                        "record at {pos} fails its checksum"
                    )));
                };
                bytes += payload.len();
                entries.push(Entry {
                    lsn,
                    payload: payload.to_vec(),
                });
                pos += size as u64;
            }
            Ok(entries)
        })
        .await
        .map_err(|e| LogError::Corrupt(format!("read task failed: {e}")))?
    }

    /// Watches the last durable LSN; streamers wait on it for new entries.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.last.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(i: u64) -> Vec<u8> {
        (0..(i * 37 % 5000)).map(|b| (b ^ i) as u8).collect()
    }

    #[tokio::test]
    async fn entries_survive_reopen_and_page() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let (log, rec) =
                ReplicationLog::open(dir.path(), Durability::OsBuffered).expect("open");
            assert_eq!(rec, Recovery::default());
            for i in 1..=300 {
                assert_eq!(log.append(&payload(i)).await.expect("append"), i);
            }
        }
        let (log, rec) = ReplicationLog::open(dir.path(), Durability::Fsync).expect("reopen");
        assert_eq!(
            (rec.entries, rec.last_lsn, rec.dropped_bytes),
            (300, 300, 0)
        );
        let mut after = 0;
        while after < 300 {
            let page = log.read_after(after, 64, 100_000).await.expect("read");
            assert!(!page.is_empty());
            for e in page {
                assert_eq!(e.lsn, after + 1);
                assert_eq!(e.payload, payload(e.lsn));
                after = e.lsn;
            }
        }
        assert!(log.read_after(300, 10, 10).await.expect("read").is_empty());
        let mut rx = log.subscribe();
        assert_eq!(log.append(b"x").await.expect("append"), 301);
        assert_eq!(*rx.borrow_and_update(), 301);
    }

    async fn ten(dir: &Path) -> u64 {
        let (log, _) = ReplicationLog::open(dir, Durability::Fsync).expect("open");
        for i in 1..=10 {
            log.append(&payload(i + 100)).await.expect("append");
        }
        std::fs::metadata(dir.join("replication.log"))
            .expect("meta")
            .len()
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_never_replayed() {
        for damage in ["truncate", "garbage", "flip"] {
            let dir = tempfile::tempdir().expect("dir");
            let len = ten(dir.path()).await;
            let path = dir.path().join("replication.log");
            let mut data = std::fs::read(&path).expect("read");
            match damage {
                "truncate" => data.truncate(len as usize - 3),
                "garbage" => data.extend_from_slice(&[7; 7]),
                _ => {
                    let last = data.len() - 1;
                    data[last] ^= 0xFF;
                }
            }
            std::fs::write(&path, &data).expect("write");
            let (log, rec) = ReplicationLog::open(dir.path(), Durability::Fsync).expect("reopen");
            let want = if damage == "garbage" { 10 } else { 9 };
            assert_eq!(rec.last_lsn, want, "{damage}");
            assert!(rec.dropped_bytes > 0, "{damage}");
            assert_eq!(log.append(b"next").await.expect("append"), want + 1);
            let entries = log.read_after(0, 100, usize::MAX).await.expect("read");
            assert_eq!(entries.len() as u64, want + 1);
            assert_eq!(
                entries.last().map(|e| e.payload.clone()),
                Some(b"next".to_vec())
            );
        }
    }

    #[tokio::test]
    async fn corruption_before_the_tail_refuses_to_open() {
        let dir = tempfile::tempdir().expect("dir");
        ten(dir.path()).await;
        let path = dir.path().join("replication.log");
        let mut data = std::fs::read(&path).expect("read");
        data[HEADER as usize + RECORD_HEAD + 2] ^= 0xFF; // inside the first payload
        std::fs::write(&path, &data).expect("write");
        assert!(matches!(
            ReplicationLog::open(dir.path(), Durability::Fsync),
            Err(LogError::Corrupt(_))
        ));
        std::fs::write(&path, b"not a log at all").expect("write");
        assert!(matches!(
            ReplicationLog::open(dir.path(), Durability::Fsync),
            Err(LogError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn concurrent_appends_get_each_lsn_once() {
        let dir = tempfile::tempdir().expect("dir");
        let (log, _) = ReplicationLog::open(dir.path(), Durability::OsBuffered).expect("open");
        let log = Arc::new(log);
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for i in 0..100u64 {
                        got.push(
                            log.append(&(t * 1000 + i).to_le_bytes())
                                .await
                                .expect("append"),
                        );
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        all.sort_unstable();
        assert_eq!(all, (1..=800).collect::<Vec<u64>>());
        drop(log);
        let (_, rec) = ReplicationLog::open(dir.path(), Durability::Fsync).expect("reopen");
        assert_eq!((rec.last_lsn, rec.dropped_bytes), (800, 0));
    }
}
