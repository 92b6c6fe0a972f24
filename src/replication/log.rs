//! The master's durable replication log.
//!
//! The master appends every change here (and waits for it to be durable)
//! *before* it commits the change on its backend and acknowledges the client,
//! so a change a client saw succeed can always be replayed to the slaves, even
//! after a crash. Slaves stream the entries after their last applied LSN —
//! including entries written while they were away — and then follow new
//! appends live through [`ReplicationLog::subscribe`].
//!
//! # File format
//!
//! One file, `<dir>/replication.log`, all integers little-endian:
//!
//! ```text
//! header (once, 8 bytes):  magic "MRL1" (4 bytes) | format version u32 (= 1)
//! record (repeated):       len u32 | lsn u64 | crc32 u32 | payload (len bytes)
//! ```
//!
//! * `len` is the payload length, at most [`MAX_PAYLOAD`] (1 GiB).
//! * `lsn` starts at 1 and every record's LSN is exactly one more than the
//!   previous one, so the LSN of a record is also its position in the file;
//!   that is what lets the in-memory index be a plain `Vec` of offsets.
//! * `crc32` (crc32fast) covers the 8 `lsn` bytes followed by the payload, so a
//!   record that was written for another position cannot pass as this one.
//!
//! # Recovery rules
//!
//! A crash can leave the last record partially written (or, on some
//! filesystems, the file extended with zeros). Such a *torn tail* was never
//! acknowledged to anyone, so [`ReplicationLog::open`] cuts it off and reports
//! the cut in [`Recovery::dropped_bytes`]. A bad record is only treated as a
//! torn tail when no valid record follows it anywhere in the file; if one does,
//! the damage is in acknowledged history and opening fails with
//! [`LogError::Corrupt`] rather than silently discarding committed changes.
//!
//! Only one [`ReplicationLog`] may have a file open at a time: `open` takes an
//! exclusive advisory lock, because two writers would interleave records.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::{Mutex, oneshot, watch};

/// Name of the log file inside the directory given to [`ReplicationLog::open`].
pub const FILE_NAME: &str = "replication.log";

/// Largest payload one entry may carry; bounds what a corrupt length field can
/// make us allocate while scanning.
pub const MAX_PAYLOAD: usize = 1 << 30;

const MAGIC: [u8; 4] = *b"MRL1";
const FORMAT_VERSION: u32 = 1;
const FILE_HEADER_LEN: u64 = 8;
const RECORD_HEADER_LEN: usize = 16;

/// How appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync (`sync_data`) before `append` returns — the default, because the
    /// master acknowledges clients on the strength of the log.
    #[default]
    Fsync,
    /// No fsync (tests / throwaway demos only); the OS flushes eventually and
    /// a machine crash can lose acknowledged entries.
    OsBuffered,
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The operating system refused an operation; `what` names the step so
    /// the operator knows which file/action to look at.
    #[error("replication log: {what}: {source}")]
    Io {
        /// The step that failed, with the path or offset involved.
        what: String,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },
    /// The file holds damage that is not a torn tail (or is not a log file at
    /// all); opening refuses so that committed history is never discarded.
    #[error("replication log is corrupt: {0}")]
    Corrupt(String),
    /// A payload larger than [`MAX_PAYLOAD`] was offered to `append`.
    #[error("replication log payload of {0} bytes exceeds the 1 GiB limit")]
    TooLarge(usize),
}

impl LogError {
    fn io(what: impl Into<String>, source: io::Error) -> Self {
        LogError::Io {
            what: what.into(),
            source,
        }
    }
}

/// One replicated change: its position in the log and the caller's encoding
/// of the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, starting at 1, without gaps.
    pub lsn: u64,
    /// Opaque bytes; the log never interprets them.
    pub payload: Vec<u8>,
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Valid entries kept in the log.
    pub entries: u64,
    /// LSN of the last kept entry (0 when empty).
    pub last_lsn: u64,
    /// Bytes of a torn or corrupt tail that were cut off.
    pub dropped_bytes: u64,
}

/// Where each entry lives in the file; only complete (and, with
/// [`Durability::Fsync`], durable) records are ever in here, so readers never
/// see a record that is still being written.
#[derive(Debug)]
struct Index {
    /// `offsets[i]` is the file offset of the record with LSN `i + 1`.
    offsets: Vec<u64>,
    /// File offset just past the last complete record.
    end: u64,
}

/// State shared between the handle, the blocking append jobs and readers.
struct Shared {
    path: PathBuf,
    /// One descriptor for both: appends go through `O_APPEND`, reads use
    /// positioned reads, so neither disturbs the other's file cursor.
    file: File,
    durability: Durability,
    index: RwLock<Index>,
    tx: watch::Sender<u64>,
    /// Groups written so far (each one write and, with `Fsync`, one fsync).
    groups: std::sync::atomic::AtomicU64,
}

/// Writer-side state; holding its lock is what serializes appends.
#[derive(Debug, Default)]
struct Writer {
    /// Set when an append failed in a way that leaves the file's contents or
    /// durability unknown; further appends are refused until the log is
    /// reopened (and recovered) rather than risk a hole in the history.
    poisoned: Option<String>,
}

/// The master's append-only replication log.
///
/// Cheap to share: every method takes `&self` and the type is `Send + Sync`,
/// so callers wrap it in an `Arc`.
pub struct ReplicationLog {
    shared: Arc<Shared>,
    /// A tokio mutex so that appends waiting their turn park as tasks instead
    /// of each pinning a blocking-pool thread.
    writer: Arc<Mutex<Writer>>,
    /// Records waiting for the next group write. Whoever takes the writer lock writes all of
    /// them with one fsync, so concurrent commits share the cost of making the log durable.
    queue: Arc<std::sync::Mutex<Vec<Waiting>>>,
}

/// A record queued for a group write, and where its LSN (or the failure) is reported.
type Waiting = (Vec<u8>, oneshot::Sender<Result<u64, LogError>>);

impl std::fmt::Debug for ReplicationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationLog")
            .field("path", &self.shared.path)
            .field("durability", &self.shared.durability)
            .field("last_lsn", &self.last_lsn())
            .finish()
    }
}

impl ReplicationLog {
    /// Opens (creating dir and file if needed) `<dir>/replication.log`, scans
    /// it, verifies every record's checksum, and truncates a torn/corrupt TAIL
    /// (a partial last record, or a last record whose checksum fails) — that is
    /// dropped, never replayed; returns what it found. A corrupt record
    /// followed by valid ones is `Corrupt` (refuse: not a torn tail).
    ///
    /// This does blocking file I/O (a full scan of the file); call it at
    /// startup or from `spawn_blocking`.
    pub fn open(
        dir: &Path,
        durability: Durability,
    ) -> Result<(ReplicationLog, Recovery), LogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LogError::io(format!("creating directory {}", dir.display()), e))?;
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| LogError::io(format!("opening {}", path.display()), e))?;
        file.try_lock().map_err(|e| {
            let source = match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another ReplicationLog has this file open",
                ),
            };
            LogError::io(format!("locking {}", path.display()), source)
        })?;

        let mut recovery = Recovery::default();
        let file_len = file_len(&file, &path)?;
        let header = header_bytes();
        let mut header_written = false;
        if file_len < FILE_HEADER_LEN {
            // Empty, or a header torn by a crash right after creation; anything
            // else this short is not ours and must not be overwritten.
            let mut existing = vec![0u8; to_usize(file_len)?];
            file.read_exact_at(&mut existing, 0)
                .map_err(|e| LogError::io(format!("reading header of {}", path.display()), e))?;
            if !header.starts_with(&existing) {
                return Err(LogError::Corrupt(format!(
                    "{} is {file_len} bytes and does not start with the MRL1 header",
                    path.display()
                )));
            }
            if file_len > 0 {
                file.set_len(0)
                    .map_err(|e| LogError::io(format!("truncating {}", path.display()), e))?;
                recovery.dropped_bytes = file_len;
            }
            (&file)
                .write_all(&header)
                .map_err(|e| LogError::io(format!("writing header of {}", path.display()), e))?;
            header_written = true;
        } else {
            let mut existing = [0u8; FILE_HEADER_LEN as usize];
            file.read_exact_at(&mut existing, 0)
                .map_err(|e| LogError::io(format!("reading header of {}", path.display()), e))?;
            if existing[..4] != MAGIC {
                return Err(LogError::Corrupt(format!(
                    "{} does not start with the MRL1 magic (found {:02x?})",
                    path.display(),
                    &existing[..4]
                )));
            }
            let version = u32::from_le_bytes([existing[4], existing[5], existing[6], existing[7]]);
            if version != FORMAT_VERSION {
                return Err(LogError::Corrupt(format!(
                    "{} has format version {version}; this build reads version {FORMAT_VERSION}",
                    path.display()
                )));
            }
        }

        let scan = scan(&file, &path)?;
        if let Some(cut) = scan.torn_at {
            let eof = file_len.max(FILE_HEADER_LEN);
            tracing::warn!(
                path = %path.display(),
                offset = cut,
                bytes = eof - cut,
                last_lsn = scan.offsets.len(),
                "replication log: cutting torn tail (never acknowledged)"
            );
            file.set_len(cut).map_err(|e| {
                LogError::io(format!("truncating torn tail of {}", path.display()), e)
            })?;
            recovery.dropped_bytes += eof - cut;
        }
        if header_written || scan.torn_at.is_some() {
            file.sync_all()
                .map_err(|e| LogError::io(format!("syncing {}", path.display()), e))?;
        }
        if !existed || header_written || scan.torn_at.is_some() {
            // The new file's directory entry (or its new size) must survive a
            // crash too, or a "durable" append could vanish with the file.
            sync_dir(dir)?;
        }

        let last_lsn = scan.offsets.len() as u64;
        recovery.entries = last_lsn;
        recovery.last_lsn = last_lsn;
        tracing::info!(
            path = %path.display(),
            entries = last_lsn,
            dropped_bytes = recovery.dropped_bytes,
            "replication log opened"
        );
        let (tx, _) = watch::channel(last_lsn);
        let shared = Shared {
            path,
            file,
            durability,
            index: RwLock::new(Index {
                offsets: scan.offsets,
                end: scan.end,
            }),
            tx,
            groups: Default::default(),
        };
        Ok((
            ReplicationLog {
                shared: Arc::new(shared),
                writer: Arc::new(Mutex::new(Writer::default())),
                queue: Arc::default(),
            },
            recovery,
        ))
    }

    /// The LSN of the last durable entry (0 when empty).
    pub fn last_lsn(&self) -> u64 {
        self.shared.read_index().offsets.len() as u64
    }

    /// Appends `payload` as the next entry; returns its LSN once it is durable per
    /// `Durability`. LSN order is the order in which appends reach the queue, so callers that
    /// need a particular order among themselves must append in that order.
    ///
    /// Group commit: concurrent appends queue up while one group is being written, and the next
    /// writer takes the whole queue and makes it durable with a single fsync.
    ///
    /// A group's write runs to completion on the blocking pool even if this future is dropped,
    /// so a cancelled append may still end up in the log (and be replicated); callers must not
    /// drop it between "append" and "commit". After an fsync failure the log refuses further
    /// appends until reopened, because the kernel may have discarded the unsynced data.
    pub async fn append(&self, payload: &[u8]) -> Result<u64, LogError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(LogError::TooLarge(payload.len()));
        }
        // Build the record outside any lock; only the LSN and CRC wait for the writer.
        let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&[0u8; 12]);
        record.extend_from_slice(payload);
        let (done, mut result) = oneshot::channel();
        lock_queue(&self.queue).push((record, done));

        let guard = Arc::clone(&self.writer).lock_owned().await;
        match result.try_recv() {
            // The group written while this append waited for the lock carried it.
            Ok(outcome) => return outcome,
            Err(oneshot::error::TryRecvError::Closed) => return Err(abandoned()),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let group = std::mem::take(&mut *lock_queue(&self.queue));
        let shared = Arc::clone(&self.shared);
        // The guard moves into the blocking job so the lock is held until the group really is
        // written, even if this future is dropped meanwhile.
        // Awaiting the job (not just the result) means its handle on the file is gone too by
        // the time this returns; dropping a blocking job's handle does not cancel it.
        let job = tokio::task::spawn_blocking(move || {
            let mut writer = guard;
            shared.append_group(&mut writer, group);
        });
        let _ = job.await;
        result.await.unwrap_or_else(|_| Err(abandoned()))
    }

    /// Makes every appended entry durable (a no-op when each append already was): for a clean
    /// shutdown under `durability = "os"`.
    pub async fn sync(&self) -> Result<(), LogError> {
        let _guard = Arc::clone(&self.writer).lock_owned().await;
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.file.sync_data())
            .await
            .map_err(|e| LogError::io("sync task failed", io::Error::other(e)))?
            .map_err(|e| LogError::io("sync", e))
    }

    /// Up to `max_entries` entries with lsn > `after`, in order, and at most
    /// ~`max_bytes` of payload (always at least one entry if any exists and
    /// `max_entries > 0`). Reads from the file through the in-memory index, so
    /// it seeks directly; every record's LSN and checksum is verified again
    /// because the disk may have rotted since open.
    pub async fn read_after(
        &self,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, LogError> {
        let (start_offset, end_offset, count) = {
            let index = self.shared.read_index();
            let total = index.offsets.len() as u64;
            if after >= total || max_entries == 0 {
                return Ok(Vec::new());
            }
            // `after < total <= usize::MAX` here, so the cast is lossless.
            let first = after as usize;
            let next_offset = |i: usize| index.offsets.get(i + 1).copied().unwrap_or(index.end);
            let mut count = 0usize;
            let mut bytes = 0u64;
            let mut i = first;
            while i < index.offsets.len() && count < max_entries {
                let size = next_offset(i) - index.offsets[i] - RECORD_HEADER_LEN as u64;
                if count > 0 && bytes.saturating_add(size) > max_bytes as u64 {
                    break;
                }
                bytes += size;
                count += 1;
                i += 1;
            }
            (index.offsets[first], next_offset(first + count - 1), count)
        };
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            shared.read_range(after + 1, count, start_offset, end_offset)
        })
        .await
        .map_err(|e| LogError::io("read task failed", io::Error::other(e)))?
    }

    /// How many group writes (and so fsyncs, under `Durability::Fsync`) the appends so far took.
    pub fn groups(&self) -> u64 {
        self.shared
            .groups
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A watch channel of last_lsn, updated after each durable append —
    /// slaves' streamers wait on it for new entries.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.tx.subscribe()
    }
}

/// The queue's lock; a panic while it was held cannot leave the vector half-updated.
fn lock_queue(queue: &std::sync::Mutex<Vec<Waiting>>) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// The error of an append whose group write ended without reporting (its task panicked).
fn abandoned() -> LogError {
    LogError::io(
        "append task failed",
        io::Error::other("the group write ended early"),
    )
}

impl Shared {
    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        // The index is only mutated by a single push + assignment, so a panic
        // elsewhere cannot leave it half-updated; ignore poisoning.
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `group` in order with one fsync and reports each record's LSN (or the failure,
    /// to all of them: a group is durable as a whole or not at all).
    fn append_group(&self, writer: &mut Writer, group: Vec<Waiting>) {
        if group.is_empty() {
            return;
        }
        let (records, done): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        match self.write_group(writer, records) {
            Ok(first) => {
                for (lsn, done) in (first..).zip(done) {
                    let _ = done.send(Ok(lsn));
                }
            }
            Err(e) => {
                for done in done {
                    let _ = done.send(Err(LogError::io(
                        format!("appending to {}", self.path.display()),
                        io::Error::other(e.to_string()),
                    )));
                }
            }
        }
    }

    /// Writes `records` as consecutive entries and makes them durable; returns the first LSN.
    fn write_group(&self, writer: &mut Writer, records: Vec<Vec<u8>>) -> Result<u64, LogError> {
        if let Some(reason) = &writer.poisoned {
            return Err(LogError::io(
                format!("{} refuses appends until reopened", self.path.display()),
                io::Error::other(reason.clone()),
            ));
        }
        let (first, offset) = {
            let index = self.read_index();
            (index.offsets.len() as u64 + 1, index.end)
        };
        let mut bytes = Vec::with_capacity(records.iter().map(Vec::len).sum());
        let mut offsets = Vec::with_capacity(records.len());
        for (lsn, mut record) in (first..).zip(records) {
            let lsn_bytes = lsn.to_le_bytes();
            record[4..12].copy_from_slice(&lsn_bytes);
            let crc = record_crc(lsn, &record[RECORD_HEADER_LEN..]);
            record[12..16].copy_from_slice(&crc.to_le_bytes());
            offsets.push(offset + bytes.len() as u64);
            bytes.extend_from_slice(&record);
        }
        let last = first + offsets.len() as u64 - 1;
        if let Err(e) = (&self.file).write_all(&bytes) {
            // Undo a partial write so the next record lands where the index
            // says; if even that fails the file's end is unknown.
            if let Err(t) = self.file.set_len(offset) {
                writer.poisoned = Some(format!(
                    "write of lsn {first}..={last} failed ({e}) and truncating it back failed ({t})"
                ));
            }
            return Err(LogError::io(
                format!("appending lsn {first}..={last} to {}", self.path.display()),
                e,
            ));
        }
        if self.durability == Durability::Fsync
            && let Err(e) = self.file.sync_data()
        {
            // After a failed fsync the kernel may have dropped dirty pages and
            // a retry can "succeed" without them ever reaching disk.
            let _ = self.file.set_len(offset);
            writer.poisoned = Some(format!("fsync of lsn {first}..={last} failed: {e}"));
            return Err(LogError::io(
                format!("syncing lsn {first}..={last} in {}", self.path.display()),
                e,
            ));
        }
        {
            let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
            index.offsets.extend_from_slice(&offsets);
            index.end = offset + bytes.len() as u64;
        }
        self.tx.send_replace(last);
        self.groups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(first)
    }

    fn read_range(
        &self,
        first_lsn: u64,
        count: usize,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, LogError> {
        let mut buf = vec![0u8; to_usize(end - start)?];
        self.file.read_exact_at(&mut buf, start).map_err(|e| {
            LogError::io(
                format!("reading {} at offset {start}", self.path.display()),
                e,
            )
        })?;
        let mut entries = Vec::with_capacity(count);
        let mut pos = 0usize;
        for lsn in first_lsn..first_lsn + count as u64 {
            let offset = start + pos as u64;
            let bad = |why: &str| {
                LogError::Corrupt(format!(
                    "record lsn {lsn} at offset {offset} of {} {why} since open",
                    self.path.display()
                ))
            };
            let Some(header) = buf.get(pos..pos + RECORD_HEADER_LEN) else {
                return Err(bad("was truncated"));
            };
            let (len, stored_lsn, crc) = parse_header(header);
            let body_start = pos + RECORD_HEADER_LEN;
            let Some(payload) = buf.get(body_start..body_start + len as usize) else {
                return Err(bad("changed length"));
            };
            if stored_lsn != lsn || record_crc(stored_lsn, payload) != crc {
                return Err(bad("fails its checksum"));
            }
            entries.push(Entry {
                lsn,
                payload: payload.to_vec(),
            });
            pos = body_start + len as usize;
        }
        Ok(entries)
    }
}

/// Result of scanning the records after the file header.
struct Scan {
    offsets: Vec<u64>,
    /// Offset just past the last valid record.
    end: u64,
    /// Where a torn tail starts, if there is one.
    torn_at: Option<u64>,
}

fn scan(file: &File, path: &Path) -> Result<Scan, LogError> {
    let eof = file_len(file, path)?;
    let io_err = |e| LogError::io(format!("scanning {}", path.display()), e);
    // Positioned reads: the shared descriptor's cursor is moved by O_APPEND
    // writes (the header may just have been written), so don't rely on it.
    let mut reader = BufReader::with_capacity(
        1 << 20,
        PositionedReader {
            file,
            pos: FILE_HEADER_LEN,
        },
    );
    let mut offsets = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    let mut payload = Vec::new();
    while pos < eof {
        let expected = offsets.len() as u64 + 1;
        let problem = match read_record(&mut reader, pos, eof, expected, &mut payload) {
            Ok(Ok(len)) => {
                offsets.push(pos);
                pos += RECORD_HEADER_LEN as u64 + len;
                continue;
            }
            Ok(Err(problem)) => problem,
            Err(e) => return Err(io_err(e)),
        };
        if let Some((at, lsn)) = find_valid_record(file, pos + 1, eof, expected).map_err(io_err)? {
            return Err(LogError::Corrupt(format!(
                "{}: record at offset {pos} (expected lsn {expected}) {problem}, \
                 but a valid record (lsn {lsn}) follows at offset {at}; not a torn tail",
                path.display()
            )));
        }
        tracing::debug!(offset = pos, expected, %problem, "replication log: torn tail");
        return Ok(Scan {
            offsets,
            end: pos,
            torn_at: Some(pos),
        });
    }
    Ok(Scan {
        offsets,
        end: pos,
        torn_at: None,
    })
}

/// Sequential `Read` over a file that uses `pread`, independent of the
/// descriptor's own cursor.
struct PositionedReader<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads the record at `pos` from a reader positioned there. The outer result
/// is an I/O failure; the inner one says whether the record is valid (its
/// payload length) or why not. On an invalid record the reader's position is
/// unspecified — the caller stops scanning.
fn read_record(
    reader: &mut impl Read,
    pos: u64,
    eof: u64,
    expected: u64,
    payload: &mut Vec<u8>,
) -> io::Result<Result<u64, String>> {
    if eof - pos < RECORD_HEADER_LEN as u64 {
        return Ok(Err(format!("is a partial header ({} bytes)", eof - pos)));
    }
    let mut header = [0u8; RECORD_HEADER_LEN];
    reader.read_exact(&mut header)?;
    let (len, lsn, crc) = parse_header(&header);
    if len as usize > MAX_PAYLOAD {
        return Ok(Err(format!(
            "declares a {len}-byte payload (over the limit)"
        )));
    }
    let body = pos + RECORD_HEADER_LEN as u64;
    if u64::from(len) > eof - body {
        return Ok(Err(format!(
            "declares {len} payload bytes but only {} remain",
            eof - body
        )));
    }
    payload.clear();
    payload.resize(len as usize, 0);
    reader.read_exact(payload)?;
    if lsn != expected {
        return Ok(Err(format!("has lsn {lsn}")));
    }
    if record_crc(lsn, payload) != crc {
        return Ok(Err("fails its checksum".to_string()));
    }
    Ok(Ok(u64::from(len)))
}

/// Looks for any valid record (checksum passes, LSN at or after `expected`) at
/// any byte offset in `[from, eof)`. Finding one means the bad record before it
/// is damage inside acknowledged history, not a torn tail. Only runs on the
/// failure path, so a byte-by-byte search is affordable; it is what lets us
/// tell the two apart even when the bad record's length field is itself
/// damaged.
fn find_valid_record(
    file: &File,
    from: u64,
    eof: u64,
    expected: u64,
) -> io::Result<Option<(u64, u64)>> {
    const CHUNK: u64 = 1 << 20;
    let header_len = RECORD_HEADER_LEN as u64;
    // Every record takes at least 16 bytes, so later LSNs are bounded too.
    let max_lsn = expected.saturating_add(eof.saturating_sub(from) / header_len + 1);
    let mut chunk_start = from;
    let mut buf = Vec::new();
    while chunk_start.saturating_add(header_len) <= eof {
        // Overlap chunks by a header so no candidate straddles a boundary.
        let chunk_end = (chunk_start + CHUNK + header_len - 1).min(eof);
        buf.resize(to_io_usize(chunk_end - chunk_start)?, 0);
        file.read_exact_at(&mut buf, chunk_start)?;
        for i in 0..=(buf.len() - RECORD_HEADER_LEN) {
            let at = chunk_start + i as u64;
            let (len, lsn, crc) = parse_header(&buf[i..i + RECORD_HEADER_LEN]);
            if lsn < expected || lsn > max_lsn || len as usize > MAX_PAYLOAD {
                continue;
            }
            let body = at + header_len;
            if u64::from(len) > eof - body {
                continue;
            }
            let in_buf = i + RECORD_HEADER_LEN..i + RECORD_HEADER_LEN + len as usize;
            let ok = match buf.get(in_buf) {
                Some(payload) => record_crc(lsn, payload) == crc,
                None => {
                    let mut payload = vec![0u8; len as usize];
                    file.read_exact_at(&mut payload, body)?;
                    record_crc(lsn, &payload) == crc
                }
            };
            if ok {
                return Ok(Some((at, lsn)));
            }
        }
        chunk_start += CHUNK;
    }
    Ok(None)
}

fn parse_header(h: &[u8]) -> (u32, u64, u32) {
    let mut len = [0u8; 4];
    let mut lsn = [0u8; 8];
    let mut crc = [0u8; 4];
    len.copy_from_slice(&h[0..4]);
    lsn.copy_from_slice(&h[4..12]);
    crc.copy_from_slice(&h[12..16]);
    (
        u32::from_le_bytes(len),
        u64::from_le_bytes(lsn),
        u32::from_le_bytes(crc),
    )
}

fn record_crc(lsn: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&lsn.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn header_bytes() -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[..4].copy_from_slice(&MAGIC);
    h[4..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

fn file_len(file: &File, path: &Path) -> Result<u64, LogError> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| LogError::io(format!("reading size of {}", path.display()), e))
}

fn to_io_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::other(format!("{n} bytes do not fit in memory")))
}

fn to_usize(n: u64) -> Result<usize, LogError> {
    to_io_usize(n).map_err(|e| LogError::io("sizing a read buffer", e))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(format!("syncing directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn log_path(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// Deterministic payload so reads can be checked without keeping copies.
    fn payload_for(lsn: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (lsn.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
            .collect()
    }

    fn size_for(lsn: u64) -> usize {
        match lsn {
            1 => 0,
            2 => 100 * 1024,
            _ => ((lsn * 7919) % (100 * 1024 + 1)) as usize,
        }
    }

    fn open(dir: &Path) -> (ReplicationLog, Recovery) {
        ReplicationLog::open(dir, Durability::OsBuffered).unwrap()
    }

    /// File offset of the record with `lsn`, given the payload sizes so far.
    fn offset_of(sizes: &[usize], lsn: u64) -> u64 {
        FILE_HEADER_LEN
            + sizes[..(lsn - 1) as usize]
                .iter()
                .map(|s| (RECORD_HEADER_LEN + s) as u64)
                .sum::<u64>()
    }

    fn encode(lsn: u64, payload: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        r.extend_from_slice(&lsn.to_le_bytes());
        r.extend_from_slice(&record_crc(lsn, payload).to_le_bytes());
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn log_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<ReplicationLog>();
    }

    #[tokio::test]
    async fn thousand_entries_survive_reopen_and_page() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, rec) = ReplicationLog::open(dir.path(), Durability::Fsync).unwrap();
            assert_eq!(rec, Recovery::default());
            for lsn in 1..=1000u64 {
                let got = log.append(&payload_for(lsn, size_for(lsn))).await.unwrap();
                assert_eq!(got, lsn);
            }
            assert_eq!(log.last_lsn(), 1000);
        }
        let (log, rec) = open(dir.path());
        assert_eq!(
            rec,
            Recovery {
                entries: 1000,
                last_lsn: 1000,
                dropped_bytes: 0
            }
        );
        assert_eq!(log.last_lsn(), 1000);

        // Page through everything with a byte budget.
        let budget = 1 << 20;
        let mut after = 0;
        while after < 1000 {
            let page = log.read_after(after, 64, budget).await.unwrap();
            assert!(!page.is_empty() && page.len() <= 64);
            let bytes: usize = page.iter().map(|e| e.payload.len()).sum();
            assert!(page.len() == 1 || bytes <= budget, "page over budget");
            for e in &page {
                after += 1;
                assert_eq!(e.lsn, after);
                assert_eq!(e.payload, payload_for(e.lsn, size_for(e.lsn)));
            }
        }

        let first = log.read_after(0, 10, usize::MAX).await.unwrap();
        assert_eq!(
            first.iter().map(|e| e.lsn).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        let mid = log.read_after(500, 1000, usize::MAX).await.unwrap();
        assert_eq!(mid.len(), 500);
        assert_eq!(mid[0].lsn, 501);
        assert_eq!(mid[499].lsn, 1000);
        assert!(
            log.read_after(1000, 10, usize::MAX)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            log.read_after(5000, 10, usize::MAX)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(log.read_after(0, 0, usize::MAX).await.unwrap().is_empty());
        // A tiny byte budget still yields one entry, so a big entry can't stall a slave.
        let one = log.read_after(1, 10, 1).await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].payload.len(), 100 * 1024);
    }

    async fn ten_entries(dir: &Path) -> Vec<usize> {
        let (log, _) = open(dir);
        let sizes: Vec<usize> = (1..=10).map(|l| 10 + l * 3).collect();
        for (i, s) in sizes.iter().enumerate() {
            log.append(&payload_for(i as u64 + 1, *s)).await.unwrap();
        }
        sizes
    }

    async fn assert_recovered(dir: &Path, entries: u64, dropped: u64) {
        let (log, rec) = open(dir);
        assert_eq!(rec.entries, entries);
        assert_eq!(rec.last_lsn, entries);
        assert_eq!(rec.dropped_bytes, dropped);
        assert!(dropped > 0);
        let lsn = log.append(b"after recovery").await.unwrap();
        assert_eq!(lsn, entries + 1);
        let all = log.read_after(0, usize::MAX, usize::MAX).await.unwrap();
        assert_eq!(all.len() as u64, entries + 1);
        for e in &all[..entries as usize] {
            assert_eq!(e.payload, payload_for(e.lsn, 10 + e.lsn as usize * 3));
        }
        assert_eq!(all[entries as usize].payload, b"after recovery");
        drop(log);
        // The repaired file must reopen clean.
        let (_, rec) = open(dir);
        assert_eq!(rec.dropped_bytes, 0);
        assert_eq!(rec.last_lsn, entries + 1);
    }

    #[tokio::test]
    async fn torn_tail_partial_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = ten_entries(dir.path()).await;
        let len = std::fs::metadata(log_path(dir.path())).unwrap().len();
        let last = offset_of(&sizes, 10);
        let cut = last + 20; // past the header, inside the payload
        File::options()
            .write(true)
            .open(log_path(dir.path()))
            .unwrap()
            .set_len(cut)
            .unwrap();
        assert!(cut < len);
        assert_recovered(dir.path(), 9, cut - last).await;
    }

    #[tokio::test]
    async fn torn_tail_partial_header_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = ten_entries(dir.path()).await;
        let last = offset_of(&sizes, 10);
        File::options()
            .write(true)
            .open(log_path(dir.path()))
            .unwrap()
            .set_len(last + 5)
            .unwrap();
        assert_recovered(dir.path(), 9, 5).await;
    }

    #[tokio::test]
    async fn garbage_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        ten_entries(dir.path()).await;
        let mut f = File::options()
            .append(true)
            .open(log_path(dir.path()))
            .unwrap();
        f.write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]).unwrap();
        drop(f);
        assert_recovered(dir.path(), 10, 7).await;
    }

    #[tokio::test]
    async fn zero_filled_tail_is_cut() {
        // Some filesystems extend the file with zeros when a crash loses data.
        let dir = tempfile::tempdir().unwrap();
        ten_entries(dir.path()).await;
        let mut f = File::options()
            .append(true)
            .open(log_path(dir.path()))
            .unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        drop(f);
        assert_recovered(dir.path(), 10, 4096).await;
    }

    #[tokio::test]
    async fn flipped_byte_in_last_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = ten_entries(dir.path()).await;
        let last = offset_of(&sizes, 10);
        flip(dir.path(), last + RECORD_HEADER_LEN as u64 + 3);
        let len = std::fs::metadata(log_path(dir.path())).unwrap().len();
        assert_recovered(dir.path(), 9, len - last).await;
    }

    fn flip(dir: &Path, at: u64) {
        let f = File::options()
            .read(true)
            .write(true)
            .open(log_path(dir))
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        b[0] ^= 0x40;
        f.write_all_at(&b, at).unwrap();
    }

    #[tokio::test]
    async fn corruption_in_the_middle_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = ten_entries(dir.path()).await;
        let before = std::fs::read(log_path(dir.path())).unwrap();
        flip(
            dir.path(),
            offset_of(&sizes, 5) + RECORD_HEADER_LEN as u64 + 2,
        );
        let err = ReplicationLog::open(dir.path(), Durability::Fsync).unwrap_err();
        assert!(matches!(err, LogError::Corrupt(_)), "{err}");
        // Nothing was cut: the file is still there for an operator to inspect.
        assert_eq!(
            std::fs::metadata(log_path(dir.path())).unwrap().len(),
            before.len() as u64
        );
    }

    #[tokio::test]
    async fn damaged_length_in_the_middle_refuses_to_open() {
        // With the length field damaged the next record can't be found by
        // following lengths; the forward search must still find it.
        let dir = tempfile::tempdir().unwrap();
        let sizes = ten_entries(dir.path()).await;
        flip(dir.path(), offset_of(&sizes, 5) + 3); // high byte of len
        let err = ReplicationLog::open(dir.path(), Durability::Fsync).unwrap_err();
        assert!(matches!(err, LogError::Corrupt(_)), "{err}");
    }

    #[tokio::test]
    async fn lsn_gap_or_repeat_in_the_middle_is_corrupt_but_cut_at_tail() {
        let write = |records: &[(u64, &[u8])]| {
            let dir = tempfile::tempdir().unwrap();
            let mut bytes = header_bytes().to_vec();
            for (lsn, p) in records {
                bytes.extend(encode(*lsn, p));
            }
            std::fs::write(log_path(dir.path()), bytes).unwrap();
            dir
        };
        let gap = write(&[(1, b"a"), (2, b"b"), (4, b"d"), (5, b"e")]);
        assert!(matches!(
            ReplicationLog::open(gap.path(), Durability::OsBuffered),
            Err(LogError::Corrupt(_))
        ));
        let repeat = write(&[(1, b"a"), (2, b"b"), (2, b"b"), (3, b"c")]);
        assert!(matches!(
            ReplicationLog::open(repeat.path(), Durability::OsBuffered),
            Err(LogError::Corrupt(_))
        ));
        let tail = write(&[(1, b"a"), (2, b"b"), (7, b"x")]);
        let (log, rec) = open(tail.path());
        assert_eq!(rec.last_lsn, 2);
        assert_eq!(rec.dropped_bytes, 17);
        assert_eq!(log.append(b"c").await.unwrap(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_get_unique_consecutive_lsns() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = ReplicationLog::open(dir.path(), Durability::Fsync).unwrap();
        let log = Arc::new(log);
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..200u64 {
                    let payload = format!("task {t} item {i}").into_bytes();
                    let lsn = log.append(&payload).await.unwrap();
                    mine.push((lsn, payload));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        assert_eq!(
            all.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            (1..=1600).collect::<Vec<_>>()
        );
        // Appends that overlap share a group write: fewer fsyncs than entries.
        assert!(
            log.groups() < 1600,
            "{} groups for 1600 appends",
            log.groups()
        );
        let read = log.read_after(0, usize::MAX, usize::MAX).await.unwrap();
        for (e, (lsn, p)) in read.iter().zip(&all) {
            assert_eq!((e.lsn, &e.payload), (*lsn, p));
        }
        drop(read);
        drop(log);
        let (_, rec) = open(dir.path());
        assert_eq!(
            rec,
            Recovery {
                entries: 1600,
                last_lsn: 1600,
                dropped_bytes: 0
            }
        );
    }

    #[tokio::test]
    async fn subscribers_see_appends() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path());
        let log = Arc::new(log);
        let mut rx = log.subscribe();
        assert_eq!(*rx.borrow_and_update(), 0);
        let writer = Arc::clone(&log);
        let handle = tokio::spawn(async move { writer.append(b"x").await.unwrap() });
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), 1);
        assert_eq!(handle.await.unwrap(), 1);
        // The entry is readable as soon as the notification is seen.
        assert_eq!(log.read_after(0, 10, 10).await.unwrap()[0].payload, b"x");
    }

    #[tokio::test]
    async fn foreign_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = b"GIF89a not a log at all".to_vec();
        std::fs::write(log_path(dir.path()), &foreign).unwrap();
        let err = ReplicationLog::open(dir.path(), Durability::Fsync).unwrap_err();
        assert!(matches!(err, LogError::Corrupt(_)), "{err}");
        assert_eq!(std::fs::read(log_path(dir.path())).unwrap(), foreign);

        // Short, and not a prefix of our header: also someone else's.
        std::fs::write(log_path(dir.path()), b"xyz").unwrap();
        assert!(matches!(
            ReplicationLog::open(dir.path(), Durability::Fsync),
            Err(LogError::Corrupt(_))
        ));

        // Our magic but a future version: refuse rather than misread.
        let mut v2 = header_bytes();
        v2[4] = 2;
        std::fs::write(log_path(dir.path()), v2).unwrap();
        assert!(matches!(
            ReplicationLog::open(dir.path(), Durability::Fsync),
            Err(LogError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn empty_or_torn_header_file_gets_a_header() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(log_path(dir.path()), b"").unwrap();
        let (log, rec) = open(dir.path());
        assert_eq!(rec, Recovery::default());
        assert_eq!(
            std::fs::read(log_path(dir.path())).unwrap(),
            header_bytes().to_vec()
        );
        assert_eq!(log.append(b"one").await.unwrap(), 1);
        drop(log);

        // A crash during creation can leave a prefix of the header.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(log_path(dir.path()), b"MRL").unwrap();
        let (_, rec) = open(dir.path());
        assert_eq!(rec.dropped_bytes, 3);
        assert_eq!(
            std::fs::read(log_path(dir.path())).unwrap(),
            header_bytes().to_vec()
        );
    }

    #[tokio::test]
    async fn creates_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a").join("b");
        let (log, _) = ReplicationLog::open(&nested, Durability::Fsync).unwrap();
        assert_eq!(log.append(b"x").await.unwrap(), 1);
        assert!(log_path(&nested).exists());
    }

    #[tokio::test]
    async fn second_open_while_first_is_live_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path());
        let err = ReplicationLog::open(dir.path(), Durability::Fsync).unwrap_err();
        assert!(matches!(err, LogError::Io { .. }), "{err}");
        drop(log);
        open(dir.path());
    }

    #[tokio::test]
    async fn oversized_payload_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path());
        // calloc'd and never touched, so this costs no real memory.
        let huge = vec![0u8; MAX_PAYLOAD + 1];
        assert!(matches!(
            log.append(&huge).await,
            Err(LogError::TooLarge(n)) if n == MAX_PAYLOAD + 1
        ));
        assert_eq!(log.last_lsn(), 0);
        assert_eq!(log.append(b"ok").await.unwrap(), 1);
    }

    /// `cargo test --release -- --ignored --nocapture append_throughput`
    #[tokio::test]
    #[ignore]
    async fn append_throughput() {
        for (durability, n) in [
            (Durability::Fsync, 2000u64),
            (Durability::OsBuffered, 50_000),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (log, _) = ReplicationLog::open(dir.path(), durability).unwrap();
            let payload = vec![7u8; 256];
            let start = Instant::now();
            for _ in 0..n {
                log.append(&payload).await.unwrap();
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{durability:?}: {n} appends of 256 B in {secs:.3}s = {:.0} appends/s ({:.1} us each)",
                n as f64 / secs,
                secs * 1e6 / n as f64
            );
        }
    }
}
