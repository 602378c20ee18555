//! Sealed segments as whole files, for tiered storage's uploader: which
//! segment comes next, its extent and its files. A sealed segment of a
//! tiered topic never changes again (only retention deletes it; the log
//! cleaner, which rewrites sealed segments, never runs on one, as tiered
//! storage and compaction exclude each other), so its files can be read
//! without the log's lock.

use std::path::PathBuf;

use crate::error::Result;
use crate::log::Log;
use crate::segment::{INDEX_EXT, LOG_EXT, TIME_INDEX_EXT, file_name};

/// A sealed segment's extent and files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSegment {
    pub base_offset: i64,
    /// The offset after its last record: the next segment's base offset.
    pub next_offset: i64,
    /// Size of its `.log`.
    pub bytes: u64,
    /// Its largest batch timestamp; -1 when no batch has one.
    pub max_timestamp: i64,
    pub log: PathBuf,
    pub index: PathBuf,
    pub time_index: PathBuf,
}

impl Log {
    /// The oldest sealed segment that holds an offset at or above `from`
    /// and whose records all lie below `upto` (the high watermark: only
    /// committed data leaves the broker). `None` if there is none yet; the
    /// active segment never qualifies.
    pub fn sealed_segment_from(&self, from: i64, upto: i64) -> Result<Option<SealedSegment>> {
        let i = (0..self.sealed.len()).find(|&i| self.next_base(i) > from);
        let Some(i) = i.filter(|&i| self.next_base(i) <= upto) else { return Ok(None) };
        let slot = &self.sealed[i];
        let (max_timestamp, _) = self.with_segment(i, |s| s.largest_timestamp())?;
        let path = |ext| self.dir.join(file_name(slot.base_offset, ext));
        Ok(Some(SealedSegment {
            base_offset: slot.base_offset,
            next_offset: self.next_base(i),
            bytes: slot.bytes,
            max_timestamp,
            log: path(LOG_EXT),
            index: path(INDEX_EXT),
            time_index: path(TIME_INDEX_EXT),
        }))
    }

    /// Bytes of the segments that hold offsets at or above `offset`, the
    /// active one included (retention's view of what is only local).
    pub fn bytes_from(&self, offset: i64) -> u64 {
        let sealed: u64 = (0..self.sealed.len()).filter(|&i| self.next_base(i) > offset).map(|i| self.sealed[i].bytes).sum();
        sealed + self.active.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::{build_offsetless_control, uncompressed_batch};
    use crate::config::LogConfig;
    use crate::log::Log;

    #[test]
    fn the_next_sealed_segment_below_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 1024, index_interval_bytes: 128, preallocate_step_bytes: 512, ..Default::default() };
        let mut log = Log::open(dir.path(), config).unwrap();
        for i in 0..30u64 {
            if i % 5 == 4 {
                log.append(&build_offsetless_control(1, -1, b"raft"), 1, i + 1).unwrap();
            } else {
                log.append(&uncompressed_batch(&[1_700_000_000_000 + i as i64, 1_700_000_000_001 + i as i64], 100), 1, i + 1).unwrap();
            }
        }
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3, "{bases:?}");
        let end = log.log_end_offset();
        let first = log.sealed_segment_from(0, end).unwrap().unwrap();
        assert_eq!((first.base_offset, first.next_offset), (bases[0], bases[1]));
        assert_eq!(std::fs::metadata(&first.log).unwrap().len(), first.bytes, "sealed files are trimmed");
        assert!(first.max_timestamp >= 1_700_000_000_001);
        // From inside the first segment: still the first; from its end: the second.
        assert_eq!(log.sealed_segment_from(bases[1] - 1, end).unwrap().unwrap().base_offset, bases[0]);
        assert_eq!(log.sealed_segment_from(bases[1], end).unwrap().unwrap().base_offset, bases[1]);
        // Not committed yet: nothing.
        assert!(log.sealed_segment_from(0, bases[1] - 1).unwrap().is_none());
        assert_eq!(log.bytes_from(i64::MIN), log.size_bytes());
        assert_eq!(log.bytes_from(bases[1]), log.size_bytes() - first.bytes);
        // The active segment never.
        assert!(log.sealed_segment_from(*bases.last().unwrap(), i64::MAX).unwrap().is_none());
    }
}
