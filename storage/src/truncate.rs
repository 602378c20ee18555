//! Cutting the tail: a follower whose uncommitted entries are replaced by the
//! leader's (raft's `truncate_after`), and `reset` for a follower that
//! installs a snapshot. Readers must hold nothing above the cut.

use crate::checkpoint::{self, LOG_START, RECOVERY_POINT};
use crate::error::{Result, StorageError};
use crate::flush::{Durable, FlushState};
use crate::log::Log;
use crate::segment::Segment;

impl Log {
    /// Keeps raft entries up to and including `raft` and removes the rest.
    /// `raft = first_raft_index() - 1` empties the log.
    pub fn truncate_after_raft(&mut self, raft: u64) -> Result<()> {
        let (first, next) = (self.first_raft_index()?, self.next_raft_index());
        let cut = raft.saturating_add(1);
        if cut >= next {
            return Ok(());
        }
        if cut < first {
            return Err(StorageError::RaftIndexOutOfRange { index: raft, first, next });
        }
        let i = self.segment_for_raft(cut)?;
        let position = self.with_segment(i, |s| s.locate_raft(cut).map(|l| l.position))?;
        let position = position.expect("an entry below the log end is in its segment");
        self.truncate_at(i, position)
    }

    /// Removes every batch that holds an offset above `offset` (a batch that
    /// straddles it goes whole), keeping the log's own offsetless batches before them.
    pub fn truncate_after(&mut self, offset: i64) -> Result<()> {
        let cut = offset.saturating_add(1);
        if cut >= self.log_end_offset() {
            return Ok(());
        }
        if cut < self.log_start_offset {
            return Err(StorageError::OffsetOutOfRange { offset, log_start: self.log_start_offset, log_end: self.log_end_offset() });
        }
        let i = self.segment_for_offset(cut);
        let position = self.with_segment(i, |s| s.locate_offset(cut).map(|l| l.position))?;
        let position = position.expect("an offset below the log end is in its segment");
        self.truncate_at(i, position)
    }

    fn truncate_at(&mut self, i: usize, position: u32) -> Result<()> {
        if i < self.sealed.len() {
            // The segment becomes active again and so no longer clean.
            self.lower_recovery_point(self.sealed[i].base_offset)?;
            let doomed: Vec<i64> = self.sealed[i + 1..].iter().map(|s| s.base_offset).chain([self.active.base_offset]).collect();
            let base = self.sealed[i].base_offset;
            let base_raft = self.slot_base_raft(i)?;
            self.flush.forget(|b| b >= base);
            for b in doomed.iter().rev() {
                Log::remove_segment_files(&self.dir, *b)?;
            }
            checkpoint::sync_dir(&self.dir)?;
            let mut cache = self.cache.lock().expect("cache lock");
            cache.clear();
            drop(cache);
            self.sealed.truncate(i);
            let (seg, _) = Segment::open_active(&self.dir, base, base_raft, &self.config, false)?;
            self.active = seg;
        }
        self.active.truncate(position, self.config.index_interval_bytes)?;
        if self.log_start_offset > self.log_end_offset() {
            self.log_start_offset = self.log_end_offset();
            checkpoint::write(&self.dir, LOG_START, self.log_start_offset)?;
        }
        let end = Durable { next_raft_index: self.next_raft_index(), next_offset: self.log_end_offset() };
        self.flush.truncated(end, self.active.base_offset, self.active.len());
        tracing::info!(dir = %self.dir.display(), log_end_offset = end.next_offset, next_raft_index = end.next_raft_index, "truncated log");
        Ok(())
    }

    /// Drops everything and starts an empty log whose next offset and raft
    /// index are the given ones (a follower installing a snapshot).
    pub fn reset(&mut self, next_offset: i64, next_raft_index: u64) -> Result<()> {
        self.lower_recovery_point(next_offset.min(self.active.base_offset))?;
        checkpoint::write(&self.dir, LOG_START, next_offset)?;
        let doomed: Vec<i64> = self.sealed.iter().map(|s| s.base_offset).chain([self.active.base_offset]).collect();
        for b in doomed.iter().rev() {
            Log::remove_segment_files(&self.dir, *b)?;
        }
        self.cache.lock().expect("cache lock").clear();
        self.sealed.clear();
        self.active = Segment::create(&self.dir, next_offset, next_raft_index, &self.config)?;
        self.active_created_ms = self.clock.now_ms();
        checkpoint::sync_dir(&self.dir)?;
        self.log_start_offset = next_offset;
        self.flush = FlushState::new(Durable { next_raft_index, next_offset });
        Ok(())
    }

    /// Moves the recovery point back to `base` now, durably, and fences off
    /// flush jobs begun before (they would move it forward again).
    fn lower_recovery_point(&mut self, base: i64) -> Result<()> {
        let mut rp = self.recovery.lock().expect("recovery point lock");
        rp.generation += 1;
        if base < rp.value {
            checkpoint::write(&self.dir, RECOVERY_POINT, base)?;
            rp.value = base;
        }
        Ok(())
    }
}
