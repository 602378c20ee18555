//! Log compaction (Kafka's `LogCleaner`, `Cleaner.doClean`, KIP-534), made
//! safe for a log whose batches are raft entries.
//!
//! A pass keeps, for every key, only its latest record below an upper bound
//! the caller gives (the last stable offset, at most the high watermark:
//! open transactions and uncommitted entries are never touched), in sealed
//! segments only. Unlike Kafka's cleaner it **keeps every batch**: records
//! are filtered inside each batch and a batch left without records stays as
//! an empty one (Kafka's cleaner keeps those too, for producer state), so
//! offsets, raft indexes, terms and producer fields are the same after a
//! pass and every replica may clean its own log on its own schedule. Only
//! bytes shrink.
//!
//! - [`Log::dirtiness`]: Kafka's `cleanableOffsets` and `LogToClean`: the
//!   first dirty offset (from the per-partition checkpoint), the first
//!   uncleanable one, and the dirty ratio the broker compares with
//!   `min.cleanable.dirty.ratio`.
//! - [`Log::begin_clean`] (under the read lock) plans a pass; [`CleanJob::run`]
//!   (no lock) builds the key map over the dirty range and writes each
//!   segment that loses something as `.cleaned` files; [`Log::complete_clean`]
//!   (write lock, a few renames and fsyncs) swaps them in (`swap.rs`) and
//!   moves the checkpoint.
//! - Tombstones (KIP-534): a batch holding a tombstone when first cleaned
//!   gets a delete horizon (now + `delete.retention.ms`) in its baseTimestamp
//!   field, the records' timestamp deltas re-encoded against it; passes after
//!   the horizon drop the tombstone.
//! - Aborted transactions: their records are neither mapped nor kept.
//! - Control batches (transaction markers, raft's own entries) stay as they are.

mod codec;
mod filter;
mod map;
mod rewrite;
mod swap;
mod varint;

use std::path::PathBuf;

use crate::checkpoint::{self, CLEANER_OFFSET};
use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::records;
use filter::{AbortedSet, Filter};
use map::OffsetMap;
use rewrite::{Planned, Rewritten};

pub(crate) use swap::is_leftover;

/// Decompression bound while cleaning, as for the other record-level reads.
const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// One aborted transaction on this partition: its records (transactional
/// batches of `producer_id` within `[first_offset, last_offset]`, the last
/// being the ABORT marker) never count as a key's value. The broker fills
/// these from its producer states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedRange {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// The settings of one pass, from the topic's configs and the broker's.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanParams {
    /// Nothing at or above this offset is cleaned: the last stable offset,
    /// never above the high watermark.
    pub upto_offset: i64,
    pub now_ms: i64,
    /// `delete.retention.ms`: how long a tombstone outlives its first cleaning.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: a segment with a record newer than this stays dirty.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty segment older than this is cleaned
    /// whatever the ratio.
    pub max_compaction_lag_ms: i64,
    /// Bytes of keys one pass may map (`log.cleaner.dedupe.buffer.size`);
    /// a dirty range with more is cleaned over several passes.
    pub max_map_bytes: usize,
}

/// How dirty a log is (Kafka's `LogToClean`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dirtiness {
    /// Where the last pass stopped: everything before was cleaned once.
    pub first_dirty_offset: i64,
    /// Base offset of the first segment no pass may touch yet.
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments before the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the dirty segments a pass may clean.
    pub cleanable_bytes: u64,
    /// `cleanable_bytes` over all bytes up to the first uncleanable offset.
    pub ratio: f64,
    /// A dirty segment is older than `max.compaction.lag.ms`.
    pub overdue: bool,
}

impl Dirtiness {
    /// Kafka's test in `grabFilthiestCompactedLog`.
    pub fn should_clean(&self, min_cleanable_dirty_ratio: f64) -> bool {
        (self.overdue && self.cleanable_bytes > 0) || self.ratio > min_cleanable_dirty_ratio
    }
}

/// What a pass did, for the log line and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub first_dirty_offset: i64,
    /// The new checkpoint: the next pass starts here.
    pub end_offset: i64,
    pub keys_mapped: usize,
    pub segments_rewritten: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    pub batches_rewritten: u64,
    /// The checkpoint moved to `end_offset`; false when the log changed
    /// under the pass (it is then planned again from the same point).
    pub checkpoint_moved: bool,
}

/// A planned pass; owns what it needs, so it runs on any thread without the
/// log's lock. Its result goes back through [`Log::complete_clean`].
#[derive(Debug)]
pub struct CleanJob {
    dir: PathBuf,
    plans: Vec<Planned>,
    /// Index in `plans` of the segment holding the first dirty offset.
    first_dirty_plan: usize,
    first_dirty_offset: i64,
    params: CleanParams,
    aborted: Vec<AbortedRange>,
    index_interval_bytes: u64,
}

/// A pass's written files, ready to swap in.
#[derive(Debug)]
pub struct CleanDone {
    rewritten: Vec<Rewritten>,
    stats: CleanStats,
    /// A planned segment was replaced under the pass (a truncation or a
    /// reset): the checkpoint must not move.
    log_changed: bool,
}

impl Log {
    /// How dirty the log is under `params`; `None` for a log with nothing
    /// below the first uncleanable offset.
    pub fn dirtiness(&self, params: &CleanParams) -> Result<Option<Dirtiness>> {
        let first_dirty = self.first_dirty_offset()?;
        let uncleanable = self.uncleanable_offset(params, first_dirty)?;
        let end = self.segment_for_offset(uncleanable);
        let first_uncleanable_offset = self.base_of(end);
        let size = |i: usize| if i == self.sealed.len() { self.active.len() } else { self.sealed[i].bytes };
        let clean_bytes: u64 = (0..=self.sealed.len()).filter(|&i| self.base_of(i) < first_dirty).map(size).sum();
        let from = self.segment_for_offset(first_dirty.min(first_uncleanable_offset));
        let cleanable_bytes: u64 = (from..end).map(size).sum();
        let total = clean_bytes + cleanable_bytes;
        if total == 0 {
            return Ok(None);
        }
        Ok(Some(Dirtiness {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset,
            clean_bytes,
            cleanable_bytes,
            ratio: cleanable_bytes as f64 / total as f64,
            overdue: self.compaction_overdue(params, first_dirty)?,
        }))
    }

    /// Plans a pass over the dirty segments (and the clean ones before them,
    /// which lose what the dirty ones supersede); `None` when none is dirty.
    /// `aborted` lists the aborted transactions below `params.upto_offset`.
    pub fn begin_clean(&self, params: &CleanParams, aborted: Vec<AbortedRange>) -> Result<Option<CleanJob>> {
        let Some(d) = self.dirtiness(params)? else { return Ok(None) };
        let end = self.segment_for_offset(d.first_uncleanable_offset);
        let first_dirty_plan = self.segment_for_offset(d.first_dirty_offset);
        if first_dirty_plan >= end {
            return Ok(None);
        }
        let mut plans = Vec::with_capacity(end);
        for i in 0..end {
            let base = self.sealed[i].base_offset;
            let Some(file_id) = swap::file_id(&self.dir, base) else {
                return Err(StorageError::Corrupt { what: "segment", path: self.dir.clone(), detail: format!("{base} has no .log") });
            };
            plans.push(Planned { base_offset: base, next_offset: self.next_base(i), base_raft: self.slot_base_raft(i)?, file_id });
        }
        Ok(Some(CleanJob {
            dir: self.dir.clone(),
            plans,
            first_dirty_plan,
            first_dirty_offset: d.first_dirty_offset,
            params: params.clone(),
            aborted,
            index_interval_bytes: self.config.index_interval_bytes,
        }))
    }

    /// Swaps in what `done` wrote and moves the checkpoint; see `swap.rs`.
    pub fn complete_clean(&mut self, done: CleanDone) -> Result<CleanStats> {
        let (swapped, stale) = self.swap_cleaned(&done.rewritten)?;
        let mut stats = done.stats;
        if stale > 0 {
            // Only what went in counts.
            stats.segments_rewritten = swapped;
        }
        if !done.log_changed && stale == 0 {
            checkpoint::write(&self.dir, CLEANER_OFFSET, stats.end_offset)?;
            stats.checkpoint_moved = true;
        } else {
            tracing::info!(dir = %self.dir.display(), stale, "the log changed under a cleaning pass; it is planned again");
            return Ok(stats);
        }
        tracing::info!(
            dir = %self.dir.display(),
            first_dirty_offset = stats.first_dirty_offset,
            end_offset = stats.end_offset,
            segments = swapped,
            bytes_before = stats.bytes_before,
            bytes_after = stats.bytes_after,
            records_removed = stats.records_removed,
            "cleaned log"
        );
        Ok(stats)
    }

    /// A whole pass under `&mut self`: plan, run, swap. `None` when nothing
    /// was dirty. The broker runs the middle step without the lock instead.
    pub fn clean(&mut self, params: &CleanParams, aborted: Vec<AbortedRange>) -> Result<Option<CleanStats>> {
        let Some(job) = self.begin_clean(params, aborted)? else { return Ok(None) };
        let done = job.run()?;
        self.complete_clean(done).map(Some)
    }

    /// The cleaner checkpoint: where the next pass's dirty range starts.
    pub fn cleaner_checkpoint(&self) -> Result<Option<i64>> {
        checkpoint::read(&self.dir, CLEANER_OFFSET)
    }

    /// Kafka's `cleanableOffsets`: the checkpoint, unless it lies outside the
    /// log (a truncation or a deletion moved the log under it): then the log start.
    fn first_dirty_offset(&self) -> Result<i64> {
        let checkpoint = checkpoint::read(&self.dir, CLEANER_OFFSET).unwrap_or_else(|e| {
            tracing::warn!(dir = %self.dir.display(), "cleaner checkpoint unreadable, cleaning from the log start: {e}");
            None
        });
        let (start, end) = (self.log_start_offset, self.log_end_offset());
        Ok(checkpoint.filter(|c| (start..=end).contains(c)).unwrap_or(start))
    }

    /// The first offset no pass may reach: the caller's bound, the active
    /// segment, and the first dirty segment with a record younger than
    /// `min.compaction.lag.ms`.
    fn uncleanable_offset(&self, params: &CleanParams, first_dirty: i64) -> Result<i64> {
        let mut offset = params.upto_offset.min(self.active.base_offset);
        if params.min_compaction_lag_ms > 0 {
            let newest_allowed = params.now_ms.saturating_sub(params.min_compaction_lag_ms);
            for i in self.segment_for_offset(first_dirty)..self.sealed.len() {
                if self.with_segment(i, |s| s.largest_timestamp().0)? > newest_allowed {
                    offset = offset.min(self.sealed[i].base_offset);
                    break;
                }
            }
        }
        Ok(offset.max(first_dirty))
    }

    /// Kafka's `maxCompactionDelay` > 0: the first batch of some dirty sealed
    /// segment is older than `max.compaction.lag.ms`.
    fn compaction_overdue(&self, params: &CleanParams, first_dirty: i64) -> Result<bool> {
        if params.max_compaction_lag_ms <= 0 || params.max_compaction_lag_ms == i64::MAX {
            return Ok(false);
        }
        let clean_until = params.now_ms.saturating_sub(params.max_compaction_lag_ms);
        for i in self.segment_for_offset(first_dirty)..self.sealed.len() {
            let first = self.with_segment(i, |s| s.first_offset_batch().map(|h| h.max_timestamp))?;
            if first.is_some_and(|ts| ts > 0 && ts < clean_until) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Base offset of segment `i` (`sealed.len()`: the active one).
    fn base_of(&self, i: usize) -> i64 {
        self.sealed.get(i).map_or(self.active.base_offset, |s| s.base_offset)
    }
}

impl CleanJob {
    /// Maps the dirty range, then rewrites every planned segment that loses
    /// a record or gains a delete horizon. Reads only sealed segments (never
    /// written again but by a swap, which this pass's own completion does)
    /// and writes only `.cleaned` files.
    pub fn run(self) -> Result<CleanDone> {
        let aborted = AbortedSet::new(&self.aborted);
        let mut map = OffsetMap::new(self.params.max_map_bytes);
        let mut stats = CleanStats { first_dirty_offset: self.first_dirty_offset, ..Default::default() };
        let Some(map_end) = self.build_map(&aborted, &mut map)? else {
            return Ok(CleanDone { rewritten: Vec::new(), stats, log_changed: true });
        };
        stats.end_offset = map_end;
        stats.keys_mapped = map.len();
        let filter = Filter {
            map: &map,
            map_end,
            aborted: &aborted,
            now_ms: self.params.now_ms,
            delete_retention_ms: self.params.delete_retention_ms,
            max_decompressed_bytes: MAX_DECOMPRESSED_BYTES,
        };
        let mut rewritten = Vec::new();
        let mut log_changed = false;
        for p in self.plans.iter().filter(|p| p.base_offset < map_end) {
            let seg = match rewrite::open(&self.dir, p)? {
                rewrite::Opened::Segment(seg) => seg,
                // Retention took it: nothing to clean there.
                rewrite::Opened::Gone => continue,
                rewrite::Opened::Replaced => {
                    log_changed = true;
                    break;
                }
            };
            match rewrite::rewrite(&self.dir, p, &seg, &filter, self.index_interval_bytes) {
                Ok(Some(r)) => rewritten.push(r),
                Ok(None) => {}
                Err(e) => {
                    for r in &rewritten {
                        rewrite::discard(&self.dir, r.planned.base_offset)?;
                    }
                    return Err(e);
                }
            }
        }
        for r in &rewritten {
            stats.segments_rewritten += 1;
            stats.bytes_before += r.bytes_before;
            stats.bytes_after += r.bytes_after;
            stats.records_removed += r.records_removed;
            stats.batches_rewritten += r.batches_rewritten;
        }
        Ok(CleanDone { rewritten, stats, log_changed })
    }

    /// Kafka's `buildOffsetMap`: the latest offset of each key from the
    /// first dirty offset on, aborted transactions left out, until the map's
    /// budget is spent. Returns where mapping stopped (the next pass's first
    /// dirty offset), or `None` if a dirty segment changed under the pass.
    fn build_map(&self, aborted: &AbortedSet, map: &mut OffsetMap) -> Result<Option<i64>> {
        let mut map_end = self.first_dirty_offset;
        for p in &self.plans[self.first_dirty_plan..] {
            let seg = match rewrite::open(&self.dir, p)? {
                rewrite::Opened::Segment(seg) => seg,
                rewrite::Opened::Gone | rewrite::Opened::Replaced => return Ok(None),
            };
            for l in seg.batches_from(0, p.base_raft) {
                let h = l.header;
                if h.last_offset() < self.first_dirty_offset {
                    continue;
                }
                if map.is_full() {
                    return Ok(Some(map_end));
                }
                if aborted.maps(&h) {
                    let mapped = records::for_each_record(seg.batch_bytes(&l), MAX_DECOMPRESSED_BYTES, |r| {
                        if let Some(key) = r.key.filter(|_| r.offset >= self.first_dirty_offset) {
                            map.put(key, r.offset);
                        }
                        std::ops::ControlFlow::Continue(())
                    });
                    if let Err(e) = mapped {
                        tracing::warn!(segment = %seg.log_path().display(), offset = h.base_offset, "cleaner cannot map a batch's keys: {e}");
                    }
                }
                map_end = map_end.max(h.last_offset() + 1);
            }
            // Kafka's fast-forward over a gap at the segment's end.
            map_end = p.next_offset;
        }
        Ok(Some(map_end))
    }
}

#[cfg(test)]
mod tests;
