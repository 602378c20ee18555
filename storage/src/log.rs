//! The partition log: an ordered run of segments, the last one active.
//!
//! Ownership: one writer (the partition's raft log store) calls the `&mut self`
//! methods; readers (fetches, replication) call the `&self` ones. The caller
//! serialises the two, e.g. with an `RwLock`; appends are memcpys, and the slow
//! part of a flush (fsync) runs outside any lock through [`FlushJob`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::batch::{self, BatchHeader};
use crate::cache::SegmentCache;
use crate::checkpoint;
use crate::config::{Clock, LogConfig, SystemClock};
use crate::error::{BatchError, Result, StorageError};
use crate::flush::{FlushState, RecoveryPoint};
use crate::segment::{EXTENSIONS, Segment, file_name};

/// A sealed segment as the log remembers it while it is not open: a few
/// numbers, no file handle, no map, no index.
#[derive(Debug)]
pub(crate) struct Slot {
    pub base_offset: i64,
    pub bytes: u64,
    pub base_raft: OnceLock<u64>,
}

/// What a successful append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// First offset of the batch; for a batch that takes no offset, the offset
    /// the next record will get.
    pub base_offset: i64,
    /// Last offset of the batch (`base_offset - 1` when it takes none).
    pub last_offset: i64,
    pub raft_index: u64,
    pub max_timestamp: i64,
}

/// What opening the log found and repaired; also logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub clean: bool,
    pub segments: usize,
    pub segments_scanned: usize,
    pub truncated_bytes: u64,
    pub segments_dropped: usize,
}

/// One partition's log. See the module doc for who may call what.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sealed: Vec<Slot>,
    pub(crate) active: Segment,
    /// When the active segment was created or opened: `segment.ms` for batches without timestamps.
    pub(crate) active_created_ms: i64,
    pub(crate) cache: Mutex<SegmentCache>,
    pub(crate) log_start_offset: i64,
    pub(crate) recovery: Arc<Mutex<RecoveryPoint>>,
    pub(crate) flush: FlushState,
    pub(crate) report: OpenReport,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering it if it was not closed
    /// cleanly. See `recovery.rs`.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        Self::open_with_clock(dir, config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(dir: impl AsRef<Path>, config: LogConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate()?;
        crate::recovery::open(dir.as_ref(), config, clock)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Takes a new config (a topic's configs were altered). Segments already
    /// written keep their size; the next roll uses the new one.
    pub fn set_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.cache.lock().expect("cache lock").set_capacity(config.max_open_segments);
        self.config = config;
        Ok(())
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The first offset a reader may ask for.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next record will get (Kafka's log end offset).
    pub fn log_end_offset(&self) -> i64 {
        self.active.tail.next_offset
    }

    /// The raft index of the first entry still held.
    pub fn first_raft_index(&self) -> Result<u64> {
        match self.sealed.first() {
            Some(_) => self.slot_base_raft(0),
            None => Ok(self.active.base_raft),
        }
    }

    /// The raft index the next append must carry.
    pub fn next_raft_index(&self) -> u64 {
        self.active.tail.next_raft
    }

    /// Whether the log holds no batch at all.
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.active.tail.batches == 0
    }

    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Bytes of all segments on disk.
    pub fn size_bytes(&self) -> u64 {
        self.sealed.iter().map(|s| s.bytes).sum::<u64>() + self.active.len()
    }

    /// How many sealed segments are open (mapped, indexes loaded) right now.
    pub fn open_segments(&self) -> usize {
        self.cache.lock().expect("cache lock").len()
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.sealed.iter().map(|s| s.base_offset).chain([self.active.base_offset]).collect()
    }

    /// Validates `batch`, gives it the next offsets and `leader_epoch`, and
    /// appends it as raft entry `raft_index`. Nothing is written if any check
    /// fails. The bytes are readable when this returns; durability follows the
    /// flush policy or an explicit [`Log::flush`].
    pub fn append(&mut self, batch: &[u8], leader_epoch: i32, raft_index: u64) -> Result<AppendInfo> {
        let header = batch::validate(batch)?;
        if leader_epoch < 0 {
            return Err(StorageError::BadLeaderEpoch { epoch: leader_epoch, reason: "negative" });
        }
        let size = batch.len() as u64;
        if size > self.config.segment_bytes {
            return Err(BatchError::TooLarge { len: batch.len(), segment_bytes: self.config.segment_bytes }.into());
        }
        let expected = self.next_raft_index();
        if raft_index != expected && !(self.is_empty() && raft_index > expected) {
            return Err(StorageError::RaftIndexGap { got: raft_index, expected });
        }
        if self.last_epoch()?.is_some_and(|last| leader_epoch < last) {
            return Err(StorageError::BadLeaderEpoch { epoch: leader_epoch, reason: "older than the last batch's" });
        }
        self.maybe_roll(size, &header)?;
        if raft_index != self.next_raft_index() {
            self.active.rebase_raft(raft_index)?;
        }
        let patched = BatchHeader { base_offset: self.log_end_offset(), leader_epoch, ..header };
        self.active.append(batch, &patched, &self.config)?;
        debug_assert_eq!(self.next_raft_index(), raft_index + 1);
        let info = AppendInfo {
            base_offset: patched.base_offset,
            last_offset: patched.last_offset(),
            raft_index,
            max_timestamp: header.max_timestamp,
        };
        self.after_append(header.record_count.max(0) as u64)?;
        Ok(info)
    }

    /// The epoch of the last batch, wherever it is (an active segment may be
    /// empty right after a roll or a truncation).
    fn last_epoch(&self) -> Result<Option<i32>> {
        if self.active.tail.batches > 0 {
            return Ok(Some(self.active.tail.last_epoch));
        }
        if self.sealed.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.entry_header(self.next_raft_index() - 1)?.leader_epoch))
    }

    /// Rolls before an append that would not fit, or once the data spans
    /// `segment.ms`. A segment that holds no Kafka
    /// offset yet cannot roll (the next would take its name); it grows instead.
    fn maybe_roll(&mut self, size: u64, header: &BatchHeader) -> Result<()> {
        let tail = self.active.tail;
        let has_offsets = tail.next_offset > self.active.base_offset;
        // Kafka's `LogSegment.timeWaitedForRoll`: the span of the data's own
        // timestamps, or wall time since creation when batches carry none.
        let waited_ms = match tail.first_timestamp {
            Some(first) if first >= 0 => header.max_timestamp.saturating_sub(first),
            _ => self.clock.now_ms().saturating_sub(self.active_created_ms),
        };
        let aged = waited_ms > self.config.segment_ms;
        // Relative offsets and positions are 32-bit in the index files.
        let relative_overflow = header.last_offset_delta as i64 + tail.next_offset - self.active.base_offset > i32::MAX as i64;
        let full = !self.active.has_room(size);
        if has_offsets && (full || aged || relative_overflow) {
            return self.roll();
        }
        if full {
            self.active.grow(size, self.config.preallocate_step_bytes)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end. A no-op
    /// when the active segment holds no offset yet.
    pub fn roll(&mut self) -> Result<()> {
        if self.active.tail.next_offset == self.active.base_offset {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let (next_offset, next_raft) = (self.active.tail.next_offset, self.active.tail.next_raft);
        let fresh = Segment::create(&self.dir, next_offset, next_raft, &self.config)?;
        let mut old = std::mem::replace(&mut self.active, fresh);
        self.active_created_ms = self.clock.now_ms();
        old.seal()?;
        // Kafka logs each roll at INFO ("Rolled new log segment at offset …").
        tracing::info!(
            dir = %self.dir.display(),
            sealed_base_offset = old.base_offset,
            sealed_bytes = old.len(),
            new_base_offset = next_offset,
            took_us = started.elapsed().as_micros() as u64,
            "rolled segment"
        );
        self.flush_rolled(old.flush_parts(0, true));
        let slot = Slot { base_offset: old.base_offset, bytes: old.len(), base_raft: OnceLock::from(old.base_raft) };
        self.sealed.push(slot);
        self.cache.lock().expect("cache lock").insert(old.base_offset, Arc::new(old));
        self.delete_below_log_start().map(|_| ())
    }

    /// The sealed segment at `i`, opened and mapped on first use and kept in a
    /// bounded cache.
    pub(crate) fn sealed_segment(&self, i: usize) -> Result<Arc<Segment>> {
        let base = self.sealed[i].base_offset;
        if let Some(seg) = self.cache.lock().expect("cache lock").get(base) {
            return Ok(seg);
        }
        let base_raft = self.slot_base_raft(i)?;
        let seg = Arc::new(Segment::open_sealed(&self.dir, base, base_raft, self.config.index_interval_bytes)?);
        self.cache.lock().expect("cache lock").insert(base, Arc::clone(&seg));
        Ok(seg)
    }

    /// First raft index of sealed segment `i`, from its `.raftindex` header.
    /// A damaged header is derived from the next segment: its first raft index
    /// minus the batches this one holds.
    pub(crate) fn slot_base_raft(&self, i: usize) -> Result<u64> {
        if let Some(b) = self.sealed[i].base_raft.get() {
            return Ok(*b);
        }
        let base = self.sealed[i].base_offset;
        let path = self.dir.join(file_name(base, crate::segment::RAFT_INDEX_EXT));
        let value = match crate::index::read_raft_header(&path) {
            Some(b) => b,
            None => {
                let next = if i + 1 < self.sealed.len() { self.slot_base_raft(i + 1)? } else { self.active.base_raft };
                let batches = Segment::count_batches(&self.dir, base)?;
                tracing::warn!(segment = %path.display(), "raft index header damaged; derived from the next segment");
                next.checked_sub(batches).ok_or_else(|| StorageError::Corrupt {
                    what: "raft index header",
                    path,
                    detail: format!("next segment starts at raft index {next} but this one holds {batches} batches"),
                })?
            }
        };
        Ok(*self.sealed[i].base_raft.get_or_init(|| value))
    }

    /// Which segment holds `offset`: the last whose base is not above it.
    /// `sealed.len()` stands for the active segment.
    pub(crate) fn segment_for_offset(&self, offset: i64) -> usize {
        if offset >= self.active.base_offset {
            return self.sealed.len();
        }
        self.sealed.partition_point(|s| s.base_offset <= offset).saturating_sub(1)
    }

    /// Which segment holds raft index `raft` (`sealed.len()` for the active one).
    pub(crate) fn segment_for_raft(&self, raft: u64) -> Result<usize> {
        if raft >= self.active.base_raft {
            return Ok(self.sealed.len());
        }
        // Binary search, reading only the headers it touches.
        let (mut lo, mut hi) = (0usize, self.sealed.len());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.slot_base_raft(mid)? <= raft { lo = mid } else { hi = mid }
        }
        Ok(lo)
    }

    /// Runs `f` on segment `i` (`sealed.len()` for the active one).
    pub(crate) fn with_segment<T>(&self, i: usize, f: impl FnOnce(&Segment) -> T) -> Result<T> {
        if i == self.sealed.len() {
            return Ok(f(&self.active));
        }
        let seg = self.sealed_segment(i)?;
        Ok(f(&seg))
    }

    /// Removes the files of a segment, index files first so that a crash
    /// leaves no index without its log.
    pub(crate) fn remove_segment_files(dir: &Path, base: i64) -> Result<()> {
        for ext in EXTENSIONS.iter().rev() {
            let p = dir.join(file_name(base, ext));
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::Io { context: "deleting segment file", path: p, source: e }),
            }
        }
        Ok(())
    }

    /// Flushes and records a clean close, so the next open scans nothing.
    pub fn close(mut self) -> Result<()> {
        self.active.close_indexes()?;
        self.flush()?;
        // A clean close trusts the active segment's indexes on the next open.
        self.active.flush_parts(self.active.len(), true).sync()?;
        self.active.trim()?;
        let mut rp = self.recovery.lock().expect("recovery point lock");
        rp.generation += 1;
        checkpoint::write(&self.dir, checkpoint::RECOVERY_POINT, i64::MAX)?;
        rp.value = i64::MAX;
        Ok(())
    }
}

impl Drop for Log {
    /// Fences background roll flushes: once the log is gone, nothing of it
    /// moves the recovery point under whoever opens the directory next.
    fn drop(&mut self) {
        if let Ok(mut rp) = self.recovery.lock() {
            rp.generation += 1;
        }
    }
}

/// The raft layer shares a log between its writer and many readers.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Log>();
};

#[cfg(test)]
mod tests;
