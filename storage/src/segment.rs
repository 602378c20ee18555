//! One segment: a `.log` file of record batches plus its three sparse indexes.
//!
//! The active segment is preallocated to `segment.bytes`, mapped writable, and
//! grows by copying batches into the map. Sealing trims the file to its real
//! length, writes the indexes and drops the writable map; a sealed segment is
//! mapped read-only again only when someone reads it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::index::{self, Index, PosEntry, RAFT_HEADER_BYTES, TimeEntry};
use crate::mmap::{self, Region};

pub fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

pub const LOG_EXT: &str = "log";
pub const INDEX_EXT: &str = "index";
pub const TIME_INDEX_EXT: &str = "timeindex";
pub const RAFT_INDEX_EXT: &str = "raftindex";
pub const EXTENSIONS: [&str; 4] = [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT, RAFT_INDEX_EXT];

/// The first reservation of an active segment's blocks.
const MIN_RESERVE_STEP: u64 = 1 << 20;
/// Where a batch sits and what its header says.
#[derive(Debug, Clone, Copy)]
pub struct Located {
    pub position: u32,
    pub raft_index: u64,
    pub header: BatchHeader,
}

/// What appending needs to know about the end of a segment. Rebuilt by a scan
/// when a segment is opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    pub next_offset: i64,
    pub next_raft: u64,
    pub batches: u64,
    pub last_epoch: i32,
    /// Largest batch maxTimestamp so far and the last offset of the first batch
    /// that reached it (Kafka's `maxTimestampAndOffsetSoFar`); -1 when none.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// maxTimestamp of the first offset-bearing batch: `segment.ms` counts
    /// from it, as Kafka's `rollingBasedTimestamp` does, so it survives restarts.
    pub first_timestamp: Option<i64>,
    since_offset_entry: u64,
    since_raft_entry: u64,
}

/// A segment and its indexes. The active one is owned by the log; sealed ones
/// are shared read-only through the log's segment cache.
#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    pub base_raft: u64,
    log_path: PathBuf,
    file: Arc<File>,
    region: Option<Arc<Region>>,
    len: u64,
    /// Disk blocks reserved up to here (active segment only).
    reserved: u64,
    writable: bool,
    pub tail: Tail,
    offsets: Index<PosEntry>,
    times: Index<TimeEntry>,
    rafts: Index<PosEntry>,
}

fn paths(dir: &Path, base: i64) -> [PathBuf; 4] {
    paths_with(dir, base, "")
}

/// The four files of a segment, each name followed by `suffix` (the log
/// cleaner writes `<base>.log.cleaned` and its indexes beside the live ones).
pub(crate) fn paths_with(dir: &Path, base: i64, suffix: &str) -> [PathBuf; 4] {
    EXTENSIONS.map(|ext| dir.join(format!("{}{suffix}", file_name(base, ext))))
}

impl Tail {
    fn empty(base_offset: i64, base_raft: u64) -> Self {
        Self {
            next_offset: base_offset,
            next_raft: base_raft,
            batches: 0,
            last_epoch: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_timestamp: None,
            since_offset_entry: 0,
            since_raft_entry: 0,
        }
    }
}

impl Segment {
    /// Creates an empty active segment. The raft header is made durable at once:
    /// it is the one fact about a segment that cannot be rebuilt from its log.
    pub fn create(dir: &Path, base_offset: i64, base_raft: u64, config: &LogConfig) -> Result<Self> {
        let [log_path, index_path, time_path, raft_path] = paths(dir, base_offset);
        // The header first: whenever a `.log` exists, so does its raft header
        // (an orphan header left by a crash here is removed on open).
        let mut rafts = Index::new(raft_path, index::raft_header(base_raft));
        rafts.persist()?;
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&log_path).ctx("creating segment", &log_path)?;
        let mut seg = Self {
            base_offset,
            base_raft,
            log_path,
            file: Arc::new(file),
            region: None,
            len: 0,
            reserved: 0,
            writable: false,
            tail: Tail::empty(base_offset, base_raft),
            offsets: Index::new(index_path, Vec::new()),
            times: Index::new(time_path, Vec::new()),
            rafts,
        };
        seg.map_writable(config)?;
        Ok(seg)
    }

    /// Opens a sealed segment for reading, loading its indexes; indexes that are
    /// missing or fail their checks are rebuilt from the log and rewritten.
    pub fn open_sealed(dir: &Path, base_offset: i64, base_raft: u64, index_interval_bytes: u64) -> Result<Self> {
        let mut seg = Self::open_files(dir, base_offset, base_raft, false)?;
        if seg.len > 0 {
            let region = Region::read_only(&seg.file, seg.len as usize).ctx("mapping segment", &seg.log_path)?;
            seg.region = Some(Arc::new(region));
        }
        if !seg.load_indexes() {
            let valid = seg.rebuild_indexes(index_interval_bytes);
            if valid < seg.len {
                tracing::warn!(segment = %seg.log_path.display(), valid, len = seg.len, "sealed segment has an invalid batch; reads stop there");
            }
            seg.close_indexes()?;
        }
        Ok(seg)
    }

    /// Opens a segment for appending. With `scan_all`, every batch is checked
    /// (CRC, continuity) and the log is cut at the first bad one; otherwise the
    /// indexes are trusted and only the bytes after their last entries are read.
    /// Returns the segment and how many bytes of data were cut off (the
    /// zero-filled preallocated space after the last batch does not count).
    pub fn open_active(dir: &Path, base_offset: i64, base_raft: u64, config: &LogConfig, scan_all: bool) -> Result<(Self, u64)> {
        let mut seg = Self::open_files(dir, base_offset, base_raft, true)?;
        let file_len = seg.len;
        seg.map_writable(config)?;
        // The valid length is unknown until scanned; let the scan see the whole file.
        seg.len = file_len;
        let valid = if !scan_all && seg.load_indexes() {
            seg.scan_tail(config.index_interval_bytes)
        } else {
            seg.rebuild_indexes(config.index_interval_bytes)
        };
        let cut = seg.nonzero_extent(valid, file_len);
        if valid < file_len {
            seg.cut_tail(valid)?;
        }
        seg.len = valid;
        seg.persist_indexes()?;
        Ok((seg, cut))
    }

    fn open_files(dir: &Path, base_offset: i64, base_raft: u64, write: bool) -> Result<Self> {
        Self::open_paths(paths(dir, base_offset), base_offset, base_raft, write)
    }

    fn open_paths(paths: [PathBuf; 4], base_offset: i64, base_raft: u64, write: bool) -> Result<Self> {
        let [log_path, index_path, time_path, raft_path] = paths;
        let file = OpenOptions::new().read(true).write(write).open(&log_path).ctx("opening segment", &log_path)?;
        let len = file.metadata().ctx("reading segment size", &log_path)?.len();
        Ok(Self {
            base_offset,
            base_raft,
            log_path,
            file: Arc::new(file),
            region: None,
            len,
            reserved: 0,
            writable: false,
            tail: Tail::empty(base_offset, base_raft),
            offsets: Index::new(index_path, Vec::new()),
            times: Index::new(time_path, Vec::new()),
            rafts: Index::new(raft_path, index::raft_header(base_raft)),
        })
    }

    /// Extends the file to `segment.bytes` (sparse), maps all of it and reserves
    /// the first step of blocks.
    fn map_writable(&mut self, config: &LogConfig) -> Result<()> {
        self.map_writable_with(config.segment_bytes.max(self.len), config.preallocate_step_bytes)
    }

    /// Maps `capacity` bytes writable. Readers keep the previous map alive
    /// through their `Bytes`; both maps show the same file pages.
    fn map_writable_with(&mut self, capacity: u64, step: u64) -> Result<()> {
        self.file.set_len(capacity).ctx("extending segment", &self.log_path)?;
        let region = Region::writable(&self.file, capacity as usize).ctx("mapping segment", &self.log_path)?;
        self.region = Some(Arc::new(region));
        self.writable = true;
        self.reserved = self.len;
        self.reserve(self.len, step)
    }

    /// Makes room for `bytes` more without a roll. Only for a segment that holds
    /// no Kafka offset yet and so cannot roll (two segments would share a name).
    pub fn grow(&mut self, bytes: u64, step: u64) -> Result<()> {
        assert!(self.writable, "growing a sealed segment");
        self.map_writable_with(self.len + bytes, step)
    }

    /// Sets the first raft index of a segment that holds no batch yet; the
    /// first entry of a new log may start anywhere (a raft log starts at 1, a
    /// follower's after a snapshot).
    pub fn rebase_raft(&mut self, base_raft: u64) -> Result<()> {
        assert_eq!(self.tail.batches, 0, "rebasing a segment that holds batches");
        self.base_raft = base_raft;
        self.tail.next_raft = base_raft;
        self.rafts.set_header(index::raft_header(base_raft));
        self.rafts.persist()
    }

    /// Reserves blocks through `upto` and a step beyond. The step grows with
    /// what the segment holds (doubling from [`MIN_RESERVE_STEP`] up to
    /// `step`), so an idle partition (the 50 of `__consumer_offsets`, the
    /// 50 of `__transaction_state`) costs 1 MiB of disk, not a full step.
    fn reserve(&mut self, upto: u64, step: u64) -> Result<()> {
        if upto <= self.reserved && upto != 0 {
            return Ok(());
        }
        let step = step.min(upto.max(MIN_RESERVE_STEP));
        let capacity = self.capacity();
        let end = upto.max(self.reserved).saturating_add(step).min(capacity);
        mmap::reserve(&self.file, self.reserved, end - self.reserved).ctx("reserving disk space", &self.log_path)?;
        self.reserved = end;
        Ok(())
    }

    fn load_indexes(&mut self) -> bool {
        let len = self.len as u32;
        let offsets = Index::load(self.offsets.path().to_path_buf(), 0, len.max(1), |e: &PosEntry| Some(e.position));
        let times = Index::load(self.times.path().to_path_buf(), 0, u32::MAX, |_: &TimeEntry| None);
        let rafts = Index::load(self.rafts.path().to_path_buf(), RAFT_HEADER_BYTES, len.max(1), |e: &PosEntry| Some(e.position));
        match (offsets, times, rafts) {
            (Ok(o), Ok(t), Ok(r)) if index::parse_raft_header(r.header()) == Some(self.base_raft) => {
                (self.offsets, self.times, self.rafts) = (o, t, r);
                true
            }
            (o, t, r) => {
                let why = [o.err(), t.err(), r.err()].into_iter().flatten().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
                // An empty segment (a new log) has nothing worth reporting.
                if self.len > 0 {
                    tracing::info!(segment = %self.log_path.display(), %why, "rebuilding segment indexes");
                }
                false
            }
        }
    }

    pub fn capacity(&self) -> u64 {
        self.region.as_ref().map_or(0, |r| r.len() as u64)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Whether a batch of `bytes` fits without a roll.
    pub fn has_room(&self, bytes: u64) -> bool {
        self.len + bytes <= self.capacity()
    }

    /// Copies one validated, patched batch to the end of the segment and
    /// indexes it. Readers see it as soon as this returns.
    /// `header` is the batch's header with baseOffset and partitionLeaderEpoch
    /// already set to what is written over the copy in the map.
    pub fn append(&mut self, bytes: &[u8], header: &BatchHeader, config: &LogConfig) -> Result<u32> {
        assert!(self.writable, "append to a sealed segment");
        assert!(self.has_room(bytes.len() as u64), "append past the segment's capacity");
        assert_eq!(header.base_offset, self.tail.next_offset, "offsets must be dense");
        debug_assert!(self.tail.batches == 0 || header.leader_epoch >= self.tail.last_epoch, "epochs never go back");
        let position = self.len;
        self.reserve(position + bytes.len() as u64, config.preallocate_step_bytes)?;
        let region = self.region.as_ref().expect("writable segment is mapped");
        region.write(position as usize, bytes);
        // Not yet published (len is below), so patching the copy is invisible to readers.
        let mut patch = [0u8; 16];
        patch[..8].copy_from_slice(&header.base_offset.to_be_bytes());
        patch[8..12].copy_from_slice(&bytes[8..12]);
        patch[12..16].copy_from_slice(&header.leader_epoch.to_be_bytes());
        region.write(position as usize, &patch);
        self.len += bytes.len() as u64;
        self.track(position as u32, header, config.index_interval_bytes);
        Ok(position as u32)
    }

    /// Index bookkeeping for a batch at `position`, shared by append and by the
    /// recovery scan so both build the same indexes. Follows Kafka's
    /// `LogSegment.append`: an entry when more than `index.interval.bytes` were
    /// written since the last one, the time entry beside the offset entry.
    fn track(&mut self, position: u32, h: &BatchHeader, interval: u64) {
        let t = &mut self.tail;
        let size = h.total_bytes() as u64;
        // Entries already present (a restart point after a clean open) are kept.
        if t.since_raft_entry > interval {
            let relative = u32::try_from(t.next_raft - self.base_raft).expect("raft index within a segment fits u32");
            if self.rafts.last().is_none_or(|e| e.relative < relative) {
                self.rafts.push(PosEntry { relative, position });
            }
            t.since_raft_entry = 0;
        }
        t.since_raft_entry += size;
        if h.offset_count() > 0 {
            if t.first_timestamp.is_none() {
                t.first_timestamp = Some(h.max_timestamp);
            }
            if h.max_timestamp > t.max_timestamp {
                t.max_timestamp = h.max_timestamp;
                t.offset_of_max_timestamp = h.last_offset();
            }
            if t.since_offset_entry > interval {
                let relative = relative_to(self.base_offset, h.last_offset());
                if self.offsets.last().is_none_or(|e| e.relative < relative) {
                    self.offsets.push(PosEntry { relative, position });
                }
                if t.max_timestamp > self.times.last().map_or(-1, |e| e.timestamp) {
                    let relative = relative_to(self.base_offset, t.offset_of_max_timestamp);
                    self.times.push(TimeEntry { timestamp: t.max_timestamp, relative });
                }
                t.since_offset_entry = 0;
            }
            t.since_offset_entry += size;
            t.next_offset = h.last_offset() + 1;
        }
        t.next_raft += 1;
        t.batches += 1;
        t.last_epoch = h.leader_epoch;
    }

    fn relative(&self, offset: i64) -> u32 {
        relative_to(self.base_offset, offset)
    }

    /// Clears the indexes and re-tracks every valid batch from the start.
    /// Returns the length of the valid prefix.
    fn rebuild_indexes(&mut self, interval: u64) -> u64 {
        self.offsets.clear();
        self.times.clear();
        self.rafts.clear();
        self.rafts.set_header(index::raft_header(self.base_raft));
        self.tail = Tail::empty(self.base_offset, self.base_raft);
        self.scan_and_track(0, interval)
    }

    /// Rebuilds the tail of a cleanly closed segment: its indexes are trusted
    /// (close wrote the final time entry, so the last one holds the segment's
    /// largest timestamp) and only batches after the last raft entry are read.
    /// Returns the valid length.
    fn scan_tail(&mut self, interval: u64) -> u64 {
        let (start, start_raft) = self.rafts.last().map_or((0, self.base_raft), |e| (e.position, self.base_raft + u64::from(e.relative)));
        let Some(h) = self.header_at(start) else { return self.rebuild_indexes(interval) };
        let last_time = self.times.last().copied();
        let last_offset_entry = self.offsets.last().map_or(0, |e| e.position);
        self.tail = Tail {
            next_offset: h.base_offset,
            next_raft: start_raft,
            batches: start_raft - self.base_raft,
            last_epoch: h.leader_epoch,
            max_timestamp: last_time.map_or(-1, |e| e.timestamp),
            offset_of_max_timestamp: last_time.map_or(-1, |e| e.relative as i64 + self.base_offset),
            first_timestamp: self.first_offset_batch().map(|h| h.max_timestamp),
            since_offset_entry: u64::from(start.saturating_sub(last_offset_entry)),
            since_raft_entry: 0,
        };
        self.scan_and_track(start as u64, interval)
    }

    /// Reads batches from `position`, checking each (bounds, CRC, dense offsets,
    /// non-decreasing epochs), and tracks the good ones. Stops at the first bad
    /// one and returns where the good ones end.
    fn scan_and_track(&mut self, mut position: u64, interval: u64) -> u64 {
        while let Some(h) = self.checked_batch_at(position) {
            self.track(position as u32, &h, interval);
            position += h.total_bytes() as u64;
        }
        position
    }

    fn checked_batch_at(&self, position: u64) -> Option<BatchHeader> {
        let region = self.region.as_ref()?;
        let end = self.len.min(region.len() as u64);
        if position + HEADER_BYTES as u64 > end {
            return None;
        }
        let h = BatchHeader::parse(region.bytes(position as usize, HEADER_BYTES)).ok()?;
        let total = h.total_bytes() as u64;
        if h.batch_length <= 0 || position + total > end {
            return None;
        }
        let h = batch::validate(region.bytes(position as usize, total as usize)).ok()?;
        let continuous = h.base_offset == self.tail.next_offset && (self.tail.batches == 0 || h.leader_epoch >= self.tail.last_epoch);
        continuous.then_some(h)
    }

    /// The header at a position known to start a batch; `None` past the end or
    /// if the bytes there cannot be a batch (never panics on a damaged file).
    pub fn header_at(&self, position: u32) -> Option<BatchHeader> {
        let region = self.region.as_ref()?;
        let p = position as u64;
        if p + HEADER_BYTES as u64 > self.len {
            return None;
        }
        let h = BatchHeader::parse(region.bytes(p as usize, HEADER_BYTES)).ok()?;
        (h.batch_length > 0 && p + h.total_bytes() as u64 <= self.len).then_some(h)
    }

    pub(crate) fn first_offset_batch(&self) -> Option<BatchHeader> {
        self.batches_from(0, self.base_raft).map(|l| l.header).find(|h| h.offset_count() > 0)
    }

    /// Batches from `position`, which must start one, counting raft indexes from `raft`.
    pub fn batches_from(&self, position: u32, raft: u64) -> impl Iterator<Item = Located> + '_ {
        let mut next = Some((position, raft));
        std::iter::from_fn(move || {
            let (position, raft_index) = next?;
            let header = self.header_at(position)?;
            next = u32::try_from(position as u64 + header.total_bytes() as u64).ok().map(|p| (p, raft_index + 1));
            Some(Located { position, raft_index, header })
        })
    }

    /// The offset and raft index after the segment's last batch, read from its
    /// last raft index entry on.
    pub fn end(&self) -> (i64, u64) {
        let (start, raft) = self.rafts.last().map_or((0, self.base_raft), |e| (e.position, self.base_raft + u64::from(e.relative)));
        self.batches_from(start, raft).fold((self.base_offset, self.base_raft), |_, l| (l.header.last_offset() + 1, l.raft_index + 1))
    }

    /// The first offset-bearing batch whose last offset is at least `offset`.
    pub fn locate_offset(&self, offset: i64) -> Option<Located> {
        // Index entries hold last offsets; the floor entry of `offset - 1` ends
        // before `offset`, so the batch holding `offset` starts at or after it.
        let start = self.offsets.floor(offset - 1 - self.base_offset).map_or(0, |e| e.position);
        let raft = self.raft_at_position(start)?;
        self.batches_from(start, raft).find(|l| l.header.offset_count() > 0 && l.header.last_offset() >= offset)
    }

    /// The batch holding raft index `raft`.
    pub fn locate_raft(&self, raft: u64) -> Option<Located> {
        let relative = i64::try_from(raft.checked_sub(self.base_raft)?).ok()?;
        let (start, start_raft) =
            self.rafts.floor(relative).map_or((0, self.base_raft), |e| (e.position, self.base_raft + u64::from(e.relative)));
        self.batches_from(start, start_raft).find(|l| l.raft_index == raft)
    }

    /// Raft index of the batch at `position`, which is an offset index entry
    /// or 0: found from the raft index's floor entry by position.
    fn raft_at_position(&self, position: u32) -> Option<u64> {
        let entries = self.rafts.entries();
        let n = entries.partition_point(|e| e.position <= position);
        let (start, raft) =
            n.checked_sub(1).map_or((0, self.base_raft), |i| (entries[i].position, self.base_raft + u64::from(entries[i].relative)));
        self.batches_from(start, raft).find(|l| l.position == position).map(|l| l.raft_index)
    }

    /// Where a time lookup may start scanning: at or before the first batch
    /// whose maxTimestamp is at least `timestamp` (Kafka's `LogSegment.findOffsetByTimestamp`).
    pub fn time_lookup_start(&self, timestamp: i64) -> Option<Located> {
        let from_offset = self.times.floor(timestamp).map_or(self.base_offset, |e| e.relative as i64 + self.base_offset);
        self.locate_offset(from_offset)
    }

    /// Largest maxTimestamp in the segment and the last offset of the first
    /// batch that has it; (-1, -1) when no batch carries a timestamp.
    pub fn largest_timestamp(&self) -> (i64, i64) {
        if self.writable {
            return (self.tail.max_timestamp, self.tail.offset_of_max_timestamp);
        }
        self.times.last().map_or((-1, -1), |e| (e.timestamp, e.relative as i64 + self.base_offset))
    }

    /// A zero-copy view of `len` bytes at `position`.
    pub fn slice(&self, position: u32, len: usize) -> Bytes {
        let region = self.region.as_ref().expect("a segment with batches is mapped");
        assert!(position as u64 + len as u64 <= self.len, "slice past the segment's data");
        region.slice(position as usize, len)
    }

    /// Borrowed bytes of one batch, for record-level lookups.
    pub fn batch_bytes(&self, l: &Located) -> &[u8] {
        self.region.as_ref().expect("mapped").bytes(l.position as usize, l.header.total_bytes())
    }

    /// Seals the active segment: the final time index entry, indexes written,
    /// file trimmed to its data, writable map dropped (readers keep theirs).
    pub fn seal(&mut self) -> Result<()> {
        assert!(self.writable, "sealing a sealed segment");
        self.close_indexes()?;
        self.file.set_len(self.len).ctx("trimming segment", &self.log_path)?;
        self.region = None;
        if self.len > 0 {
            let region = Region::read_only(&self.file, self.len as usize).ctx("mapping segment", &self.log_path)?;
            self.region = Some(Arc::new(region));
        }
        self.writable = false;
        Ok(())
    }

    /// Cuts the segment at `position`, a batch boundary, zeroing the cut bytes
    /// so that a crash cannot bring them back. Readers must hold nothing above
    /// `position` (the caller truncates only uncommitted data).
    pub fn truncate(&mut self, position: u32, interval: u64) -> Result<()> {
        assert!(self.writable, "truncating a sealed segment");
        assert!(position as u64 <= self.len, "truncation point beyond the end");
        self.cut_tail(position as u64)?;
        // Synced now, so that a power loss cannot bring the cut batches back
        // behind newer ones written over their start.
        self.file.sync_all().ctx("syncing truncation", &self.log_path)?;
        self.len = position as u64;
        // Truncation is rare (a follower losing its uncommitted tail); a full
        // rescan gives exact indexes and the exact largest timestamp.
        let valid = self.rebuild_indexes(interval);
        assert_eq!(valid, self.len, "truncation left a partial batch");
        self.persist_indexes()
    }

    /// Cuts the preallocated tail off the file (clean close), so tools that
    /// read segments, like `kafka-dump-log`, see only batches.
    pub fn trim(&mut self) -> Result<()> {
        self.file.set_len(self.len).ctx("trimming segment", &self.log_path)?;
        self.file.sync_all().ctx("syncing segment", &self.log_path)
    }

    /// How many batches a sealed segment holds, without its indexes.
    pub fn count_batches(dir: &Path, base_offset: i64) -> Result<u64> {
        let seg = Self::open_unindexed(dir, base_offset, 0)?;
        Ok(seg.batches_from(0, 0).count() as u64)
    }

    /// A sealed segment mapped for a front-to-back scan, its indexes neither
    /// loaded nor rebuilt (so nothing is written): the log cleaner's reader,
    /// which runs without the log's lock beside the log's own opens.
    pub(crate) fn open_unindexed(dir: &Path, base_offset: i64, base_raft: u64) -> Result<Self> {
        let mut seg = Self::open_files(dir, base_offset, base_raft, false)?;
        seg.map_read_only()?;
        Ok(seg)
    }

    fn map_read_only(&mut self) -> Result<()> {
        if self.len > 0 {
            let region = Region::read_only(&self.file, self.len as usize).ctx("mapping segment", &self.log_path)?;
            self.region = Some(Arc::new(region));
        }
        Ok(())
    }

    /// Which file this segment reads: (device, inode). The cleaner swaps a
    /// rewritten segment in only if the file it read is still the one there.
    pub(crate) fn file_id(&self) -> Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = self.file.metadata().ctx("reading segment metadata", &self.log_path)?;
        Ok((m.dev(), m.ino()))
    }

    /// Indexes a segment the cleaner wrote (`<base>.log` + `suffix`): every
    /// batch is checked as recovery checks it, the three index files are
    /// written beside it with the same suffix, and all four are synced.
    /// Returns the valid length and the file's length, equal for a good rewrite.
    pub(crate) fn index_rewritten(dir: &Path, base_offset: i64, base_raft: u64, suffix: &str, interval: u64) -> Result<(u64, u64)> {
        let mut seg = Self::open_paths(paths_with(dir, base_offset, suffix), base_offset, base_raft, false)?;
        seg.map_read_only()?;
        let valid = seg.rebuild_indexes(interval);
        seg.close_indexes()?;
        seg.flush_parts(0, true).sync()?;
        Ok((valid, seg.len))
    }

    /// Discards everything from `position` on: the file is cut there (which
    /// frees the blocks and zeroes the rest of the last page, so nothing old
    /// can be scanned back) and extended again, sparse, to its capacity. The
    /// map stays valid; the cut pages read as zeros. Costs nothing per byte
    /// cut, unlike writing zeros over up to `segment.bytes` of preallocation.
    fn cut_tail(&mut self, position: u64) -> Result<()> {
        let capacity = self.capacity().max(position);
        self.file.set_len(position).ctx("cutting segment", &self.log_path)?;
        self.file.set_len(capacity).ctx("extending segment", &self.log_path)?;
        self.reserved = position;
        Ok(())
    }

    /// Bytes from `from` to the last non-zero byte within a 1 MiB window:
    /// how much of a torn or damaged tail was real data, for the recovery
    /// report. A clean end of preallocated space reads as 0.
    fn nonzero_extent(&self, from: u64, end: u64) -> u64 {
        let Some(region) = self.region.as_ref() else { return 0 };
        let to = end.min(from.saturating_add(1 << 20)).min(region.len() as u64);
        if from >= to {
            return 0;
        }
        let window = region.bytes(from as usize, (to - from) as usize);
        window.iter().rposition(|&b| b != 0).map_or(0, |i| i as u64 + 1)
    }

    /// Adds the final time entry (Kafka's `onBecomeInactiveSegment`) so the
    /// last entry holds the segment's largest timestamp, and writes the indexes.
    pub fn close_indexes(&mut self) -> Result<()> {
        let t = self.tail;
        if t.max_timestamp > self.times.last().map_or(-1, |e| e.timestamp) {
            let relative = self.relative(t.offset_of_max_timestamp);
            self.times.push(TimeEntry { timestamp: t.max_timestamp, relative });
        }
        self.persist_indexes()
    }

    pub fn persist_indexes(&mut self) -> Result<()> {
        self.offsets.persist()?;
        self.times.persist()?;
        self.rafts.persist()
    }

    /// What a flush must sync for this segment; taken under the log's lock,
    /// run without it. `indexes`: also fsync the three index files, which a
    /// sealed segment needs (recovery trusts it) and the active one does not
    /// (recovery rebuilds its indexes by a scan; its raft header was synced
    /// when written).
    pub fn flush_parts(&self, from: u64, indexes: bool) -> FlushParts {
        FlushParts {
            base_offset: self.base_offset,
            file: Arc::clone(&self.file),
            region: self.region.clone().filter(|_| self.writable),
            range: (from.min(self.len), self.len),
            index_paths: if indexes {
                vec![self.offsets.path().into(), self.times.path().into(), self.rafts.path().into()]
            } else {
                Vec::new()
            },
            log_path: self.log_path.clone(),
        }
    }
}

fn relative_to(base_offset: i64, offset: i64) -> u32 {
    u32::try_from(offset - base_offset).expect("offset within a segment fits u32")
}

/// The files and byte range of one segment that a flush makes durable.
#[derive(Debug, Clone)]
pub struct FlushParts {
    pub base_offset: i64,
    file: Arc<File>,
    region: Option<Arc<Region>>,
    range: (u64, u64),
    index_paths: Vec<PathBuf>,
    log_path: PathBuf,
}

impl FlushParts {
    pub fn sync(&self) -> Result<()> {
        let (from, to) = self.range;
        // msync covers the mapped pages; fdatasync then covers the size and blocks.
        if let Some(region) = &self.region {
            region.flush_range(from as usize, (to - from) as usize).ctx("syncing segment", &self.log_path)?;
        }
        self.file.sync_data().ctx("syncing segment", &self.log_path)?;
        for p in &self.index_paths {
            match File::open(p) {
                Ok(f) => f.sync_all().ctx("syncing index", p)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::Io { context: "opening index", path: p.clone(), source: e }),
            }
        }
        Ok(())
    }
}
