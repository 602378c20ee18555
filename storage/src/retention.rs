//! Deleting the oldest data: retention by time and size, and prefix deletion
//! (Kafka's DeleteRecords, raft's purge). Only whole sealed segments are
//! removed; the active segment is never touched. The log start offset is made
//! durable before any file goes, so a crash in between only leaves segments
//! that the next open deletes.

use std::time::UNIX_EPOCH;

use crate::checkpoint::{self, LOG_START};
use crate::error::Result;
use crate::log::Log;
use crate::segment::{LOG_EXT, file_name};

impl Log {
    /// Advances the log start offset to `offset` (at most the log end) and
    /// deletes sealed segments that lie wholly below it. Returns how many.
    pub fn delete_before(&mut self, offset: i64) -> Result<usize> {
        let offset = offset.min(self.log_end_offset());
        if offset <= self.log_start_offset {
            return Ok(0);
        }
        checkpoint::write(&self.dir, LOG_START, offset)?;
        self.log_start_offset = offset;
        self.delete_below_log_start()
    }

    /// Raft's purge: deletes the sealed segments whose every entry has a raft
    /// index at or below `raft`, and moves the log start offset to the first
    /// kept segment (never back). Entries at or below `raft` in the first kept
    /// segment stay, since only whole segments go; the raft layer hides them.
    /// A segment holding a later entry is kept even when all its Kafka offsets
    /// are below `raft`'s, so no unpurged raft entry is lost. Returns how many went.
    pub fn delete_through_raft(&mut self, raft: u64) -> Result<usize> {
        let mut n = 0;
        while n < self.sealed.len() {
            let next_first_raft = if n + 1 < self.sealed.len() { self.slot_base_raft(n + 1)? } else { self.active.base_raft };
            if next_first_raft > raft.saturating_add(1) {
                break;
            }
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let new_start = self.next_base(n - 1);
        if new_start > self.log_start_offset {
            checkpoint::write(&self.dir, LOG_START, new_start)?;
            self.log_start_offset = new_start;
        }
        tracing::debug!(dir = %self.dir.display(), segments = n, through_raft_index = raft, "raft purge deletes segments");
        self.delete_oldest(n)
    }

    /// Deletes sealed segments that lie wholly below the log start offset;
    /// also after a roll, which can seal a segment that is already all below it.
    pub(crate) fn delete_below_log_start(&mut self) -> Result<usize> {
        let n = (0..self.sealed.len()).take_while(|&i| self.next_base(i) <= self.log_start_offset).count();
        self.delete_oldest(n)
    }

    /// Applies `retention.ms` and `retention.bytes` to sealed segments that lie
    /// wholly below `upto_offset` (the high watermark: uncommitted data is
    /// never deleted). Returns how many segments went. For a replicated log,
    /// use [`Log::retention_point_raft`] and raft's purge instead, so that raft
    /// knows the prefix is gone.
    pub fn apply_retention(&mut self, upto_offset: i64) -> Result<usize> {
        let (by_time, by_size) = self.retention_counts(upto_offset)?;
        let n = by_time.max(by_size);
        if n > 0 {
            let new_start = self.next_base(n - 1);
            tracing::info!(dir = %self.dir.display(), segments = n, by_time, by_size, log_start_offset = new_start, "retention deletes segments");
            if new_start > self.log_start_offset {
                checkpoint::write(&self.dir, LOG_START, new_start)?;
                self.log_start_offset = new_start;
            }
        }
        self.delete_oldest(n)
    }

    /// The last raft index of what `retention.ms` and `retention.bytes` allow
    /// deleting below `upto_offset`; `None` when nothing. Raft purges through
    /// it ([`Log::delete_through_raft`] then deletes the same segments).
    pub fn retention_point_raft(&self, upto_offset: i64) -> Result<Option<u64>> {
        let (by_time, by_size) = self.retention_counts(upto_offset)?;
        let n = by_time.max(by_size);
        if n == 0 {
            return Ok(None);
        }
        let next_first_raft = if n < self.sealed.len() { self.slot_base_raft(n)? } else { self.active.base_raft };
        Ok(next_first_raft.checked_sub(1))
    }

    /// How many of the oldest sealed segments retention by time and by size
    /// would delete, among those wholly below `upto_offset`.
    fn retention_counts(&self, upto_offset: i64) -> Result<(usize, usize)> {
        let eligible = (0..self.sealed.len()).take_while(|&i| self.next_base(i) <= upto_offset).count();
        let mut by_time = 0;
        if let Some(retention_ms) = self.config.retention_ms {
            let now = self.clock.now_ms();
            while by_time < eligible && now - self.largest_timestamp_or_mtime(by_time)? > retention_ms {
                by_time += 1;
            }
        }
        // Kafka's rule: delete the oldest while what remains is still at least retention.bytes.
        let mut by_size = 0;
        if let Some(limit) = self.config.retention_bytes {
            let mut excess = self.size_bytes() as i64 - limit as i64;
            while by_size < eligible && excess - self.sealed[by_size].bytes as i64 >= 0 {
                excess -= self.sealed[by_size].bytes as i64;
                by_size += 1;
            }
        }
        Ok((by_time, by_size))
    }

    /// Base offset of the segment after sealed segment `i`.
    pub(crate) fn next_base(&self, i: usize) -> i64 {
        self.sealed.get(i + 1).map_or(self.active.base_offset, |s| s.base_offset)
    }

    /// Kafka's `LogSegment.largestTimestamp`: the largest batch timestamp, or
    /// the file's modification time when no batch has one.
    fn largest_timestamp_or_mtime(&self, i: usize) -> Result<i64> {
        let (ts, _) = self.with_segment(i, |s| s.largest_timestamp())?;
        if ts >= 0 {
            return Ok(ts);
        }
        let path = self.dir.join(file_name(self.sealed[i].base_offset, LOG_EXT));
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        Ok(mtime.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as i64))
    }

    fn delete_oldest(&mut self, n: usize) -> Result<usize> {
        debug_assert!(n <= self.sealed.len(), "never the active segment");
        let first_kept = self.sealed.get(n).map_or(self.active.base_offset, |s| s.base_offset);
        self.flush.forget(|base| base < first_kept);
        for slot in self.sealed.drain(..n) {
            self.cache.lock().expect("cache lock").remove(slot.base_offset);
            Log::remove_segment_files(&self.dir, slot.base_offset)?;
        }
        debug_assert!(self.sealed.first().is_none_or(|s| s.base_offset <= self.log_start_offset) || self.sealed.is_empty());
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::{build_offsetless_control, uncompressed_batch};
    use crate::config::LogConfig;
    use crate::log::Log;

    #[test]
    fn delete_through_raft_removes_only_wholly_purged_segments() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 128,
            preallocate_step_bytes: 512,
            retention_ms: None,
            ..Default::default()
        };
        let mut log = Log::open(dir.path(), config).unwrap();
        // Raft index 5 onward; each segment holds a few batches, ending with an offsetless one now and then.
        for i in 0..40u64 {
            let raft = 5 + i;
            if i % 7 == 6 {
                log.append(&build_offsetless_control(1, -1, b"blank"), 1, raft).unwrap();
            } else {
                log.append(&uncompressed_batch(&[i as i64], 100), 1, raft).unwrap();
            }
        }
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 4, "{bases:?}");
        let second_first_raft = log.slot_base_raft(1).unwrap();
        assert_eq!(log.delete_through_raft(4).unwrap(), 0);
        assert_eq!(log.delete_through_raft(second_first_raft - 2).unwrap(), 0, "the first segment still holds an unpurged entry");
        // Through the last entry of the first segment: it goes, nothing else.
        assert_eq!(log.delete_through_raft(second_first_raft - 1).unwrap(), 1);
        assert_eq!(log.log_start_offset(), bases[1]);
        assert_eq!(log.first_raft_index().unwrap(), second_first_raft);
        // Far beyond the end: every sealed segment goes, the active one stays.
        let n = log.delete_through_raft(u64::MAX).unwrap();
        assert_eq!(n, bases.len() - 2);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_start_offset(), *bases.last().unwrap());
        drop(log);
        let log = Log::open(dir.path(), LogConfig { segment_bytes: 1024, retention_ms: None, ..Default::default() }).unwrap();
        assert_eq!(log.log_start_offset(), *bases.last().unwrap(), "the new log start is durable");
    }
}
