//! openraft's log storage over one partition's `fjord_storage::Log`.
//!
//! Ownership: a [`LogStore`] is the only writer of its log (openraft's core
//! task holds it); any number of [`LogReader`]s (replication tasks) read the
//! same log. They share it as `RwLock<Log>`: appends are memcpys into the
//! segment map and hold the write lock only for that; fsyncs run off the lock
//! (see `flusher.rs`), truncation and purge run on the blocking pool.
//!
//! Raft state that is not in the log lives beside the segments (see
//! `meta.rs`): vote and last purged durably in `raft-meta.json`, the
//! committed hint in `raft-committed.json`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use fjord_storage::{Log, LogConfig};
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};

use crate::entry::Entry;
use crate::error::{RaftError, Result};
use crate::log_reader::LogReader;
use crate::meta::Meta;
use crate::types::{LogId, TypeConfig, Vote, epoch_of, log_id};

/// What a log store and its readers share. Lock order: `log`, then `waiting`;
/// `meta` is never held with either.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub log: RwLock<Log>,
    /// Callbacks of appends not yet covered by a flush.
    pub waiting: Mutex<Vec<IOFlushed<TypeConfig>>>,
    /// The in-memory copy of `raft-meta.json`, published after each durable write.
    pub meta: Mutex<Meta>,
    /// Wakes the flusher; capacity 1, a full channel already means "flush soon".
    pub kick: tokio::sync::mpsc::Sender<()>,
    /// The next raft index not yet durable, published by the flusher after
    /// each group commit; acks=1 receipts wait on it.
    pub durable: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub fn read_log(&self) -> RwLockReadGuard<'_, Log> {
        self.log.read().expect("log lock")
    }

    pub fn write_log(&self) -> RwLockWriteGuard<'_, Log> {
        self.log.write().expect("log lock")
    }

    pub fn meta(&self) -> Meta {
        self.meta.lock().expect("meta lock").clone()
    }
}

/// The log storage of one raft group. See the module doc.
pub struct LogStore {
    shared: Arc<Shared>,
    /// The offset the next batch must get: the previous batch's last offset
    /// plus one. Checked against what the log assigns on every append.
    next_offset: i64,
    /// When the committed checkpoint was last written.
    committed_written_at: Option<std::time::Instant>,
}

impl LogStore {
    /// Opens (recovering if needed) the partition log in `dir` and its raft
    /// metadata, and starts its flusher. Must run inside a Tokio runtime; it
    /// does blocking I/O, so an async caller wraps it in `spawn_blocking`.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| RaftError::NoRuntime)?;
        let dir = dir.as_ref().to_path_buf();
        let mut log = Log::open(&dir, config)?;
        let meta = Meta::read(&dir)?;
        if let Some(purged) = &meta.last_purged {
            // A crash may have come between recording a purge and deleting.
            apply_purge(&mut log, purged.index())?;
        }
        let next_offset = log.log_end_offset();
        let (kick, kicked) = tokio::sync::mpsc::channel(1);
        let durable = tokio::sync::watch::channel(log.durable().next_raft_index).0;
        let shared =
            Arc::new(Shared { dir, log: RwLock::new(log), waiting: Mutex::new(Vec::new()), meta: Mutex::new(meta), kick, durable });
        handle.spawn(crate::flusher::run(Arc::downgrade(&shared), kicked));
        Ok(Self { shared, next_offset, committed_written_at: None })
    }

    /// A reader of this log; it sees every entry appended later too.
    pub fn reader(&self) -> LogReader {
        LogReader::new(Arc::clone(&self.shared))
    }

    /// What the log store shares with its readers; the partition's state
    /// machine holds it too, to keep the log consistent with an installed
    /// snapshot (`StateMachine::open`).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs `f` on the log under the read lock (fetches, tests).
    pub fn with_log<T>(&self, f: impl FnOnce(&Log) -> T) -> T {
        f(&self.shared.read_log())
    }

    /// Writes `meta` durably, then publishes it to readers.
    async fn persist(&self, meta: Meta) -> io::Result<()> {
        let dir = self.shared.dir.clone();
        let written = meta.clone();
        blocking(move || written.write(&dir)).await?;
        *self.shared.meta.lock().expect("meta lock") = meta;
        Ok(())
    }

    /// Runs `f` on the log under the write lock on the blocking pool (it fsyncs).
    async fn with_log_blocking(&mut self, f: impl FnOnce(&mut Log) -> Result<()> + Send + 'static) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let next_offset = blocking(move || {
            let mut log = shared.write_log();
            f(&mut log)?;
            Ok(log.log_end_offset())
        })
        .await?;
        self.next_offset = next_offset;
        Ok(())
    }
}

/// Appends one entry and checks the offsets the log gave it.
fn append_one(log: &mut Log, next_offset: &mut i64, e: &Entry, durable: &tokio::sync::watch::Sender<u64>) -> Result<()> {
    use openraft::entry::RaftEntry;
    let info = log.append(e.batch(), epoch_of(e.term())?, e.index())?;
    // Every replica must assign the same offsets, so they must be exactly
    // those the previous batch implies; anything else would fork the log.
    assert_eq!(info.base_offset, *next_offset, "raft entry {} got an offset the previous batch does not imply", e.index());
    assert_eq!(info.last_offset, info.base_offset + e.offset_count() - 1, "raft entry {} took the wrong number of offsets", e.index());
    assert_eq!(info.raft_index, e.index());
    *next_offset = info.last_offset + 1;
    if let Some(receipt) = e.receipt() {
        let at = crate::receipt::Appended { raft_index: info.raft_index, base_offset: info.base_offset, last_offset: info.last_offset };
        receipt.appended(at, durable.subscribe());
    }
    Ok(())
}

/// Deletes what a purge through raft index `through` allows: whole segments;
/// or everything, when the purge point lies beyond the log (a snapshot was
/// installed), so the next append may come at `through + 1`.
fn apply_purge(log: &mut Log, through: u64) -> Result<()> {
    if !log.is_empty() && through >= log.next_raft_index() {
        log.reset(log.log_end_offset(), through + 1)?;
    } else if !log.is_empty() {
        log.delete_through_raft(through)?;
    }
    Ok(())
}

/// The log id of the last entry the log holds, term from its batch header.
pub(crate) fn last_stored_log_id(log: &Log) -> Result<Option<LogId>> {
    if log.is_empty() {
        return Ok(None);
    }
    let index = log.next_raft_index() - 1;
    let h = log.entry_header(index)?;
    let term = u64::try_from(h.leader_epoch)
        .map_err(|_| RaftError::CorruptEntry { index, detail: format!("negative leader epoch {}", h.leader_epoch) })?;
    Ok(Some(log_id(term, index)))
}

/// Runs blocking work on Tokio's blocking pool (the state machine's file and log work too).
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> io::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(io::Error::from),
        Err(join) => Err(io::Error::other(format!("blocking log task failed: {join}"))),
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let purged = self.shared.meta().last_purged;
        let stored = last_stored_log_id(&self.shared.read_log())?;
        let last = match (stored, purged) {
            (Some(s), Some(p)) if s.index() <= p.index() => Some(p),
            (Some(s), _) => Some(s),
            (None, p) => p,
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let meta = Meta { vote: Some(*vote), ..self.shared.meta() };
        self.persist(meta).await
    }

    /// A hint, checkpointed at most once per interval without fsync (see
    /// `meta.rs`): an fsync per commit per replica was the costliest part of
    /// a replicated append.
    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        self.shared.meta.lock().expect("meta lock").committed = committed;
        let due = self.committed_written_at.is_none_or(|t| t.elapsed() >= crate::meta::COMMITTED_CHECKPOINT_INTERVAL);
        if due {
            self.committed_written_at = Some(std::time::Instant::now());
            crate::meta::write_committed(&self.shared.dir, committed)?;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.shared.meta().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        {
            let mut log = self.shared.write_log();
            if log.is_empty() {
                // Installing a snapshot may have reset the log to start at the
                // snapshot's offset (`StateMachine::install_snapshot`); an empty
                // log's end offset is then the one the next batch must get.
                self.next_offset = log.log_end_offset();
            }
            for e in entries {
                append_one(&mut log, &mut self.next_offset, &e, &self.shared.durable)?;
            }
            if log.config().write_cache {
                // Kafka's model: in the page cache is durable enough (it
                // survives the process); the log's flush policy and rolls
                // sync it later. Acknowledged at once, no fsync waited for.
                self.shared.durable.send_replace(log.next_raft_index());
                drop(log);
                callback.io_completed(Ok(()));
                return Ok(());
            }
            // Queued under the log lock, so the next flush to begin covers these entries.
            self.shared.waiting.lock().expect("waiting lock").push(callback);
        }
        // Full means a kick is already pending; closed cannot happen while we hold `shared`.
        let _ = self.shared.kick.try_send(());
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogId>) -> io::Result<()> {
        self.with_log_blocking(move |log| {
            if log.is_empty() {
                return Ok(());
            }
            match last {
                Some(keep) => log.truncate_after_raft(keep.index())?,
                None => {
                    let first = log.first_raft_index()?;
                    if first > 0 {
                        log.truncate_after_raft(first - 1)?;
                    } else {
                        // Index 0 has no "index before it"; start over where it began.
                        let h = log.entry_header(first)?;
                        log.reset(h.base_offset, first)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, purged: LogId) -> io::Result<()> {
        let meta = self.shared.meta();
        if meta.last_purged.is_some_and(|p| p.index() >= purged.index()) {
            return Ok(());
        }
        // Recorded first: readers stop seeing the prefix, and a crash before
        // the deletion below is finished by the next open.
        self.persist(Meta { last_purged: Some(purged), ..meta }).await?;
        self.with_log_blocking(move |log| apply_purge(log, purged.index())).await
    }
}
