//! Reading raft entries from the partition log, for replication and for
//! openraft's own lookups. A reader never waits for an fsync: it takes the
//! log's read lock, which flushes do not hold while they sync.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::RaftLogReader;

use crate::entry::Entry;
use crate::error::Result;
use crate::log_store::Shared;
use crate::types::{TypeConfig, Vote};

/// Bytes one replication read returns at most (at least one entry, whatever
/// its size), so a follower far behind is caught up in bounded steps.
pub const REPLICATION_READ_MAX_BYTES: usize = 1 << 20;

/// A reader of one group's log. Cheap to clone; lives as long as any holder.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Runs `f` on the log under the read lock (fetches, tests), as
    /// `LogStore::with_log` does for the store openraft now owns.
    pub fn with_log<T>(&self, f: impl FnOnce(&fjord_storage::Log) -> T) -> T {
        f(&self.shared.read_log())
    }

    /// Runs `f` on the log under the write lock: for upkeep that keeps
    /// every entry, offset and term as it is (the log cleaner swapping in a
    /// compacted segment). Appends, truncation and purges are raft's own.
    pub fn with_log_mut<T>(&self, f: impl FnOnce(&mut fjord_storage::Log) -> T) -> T {
        f(&mut self.shared.write_log())
    }

    /// Replaces the log's settings under the write lock.
    pub fn set_config(&self, config: fjord_storage::LogConfig) -> Result<()> {
        self.shared.write_log().set_config(config)?;
        Ok(())
    }

    /// Entries `[from, to)` that are held and not purged, up to `max_bytes`
    /// (at least one).
    fn read(&self, from: u64, to: u64, max_bytes: usize) -> Result<Vec<Entry>> {
        let visible_from = self.shared.meta().last_purged.map_or(0, |p| p.index() + 1);
        let log = self.shared.read_log();
        if log.is_empty() {
            return Ok(Vec::new());
        }
        let from = from.max(visible_from).max(log.first_raft_index()?);
        let to = to.min(log.next_raft_index());
        if from >= to {
            return Ok(Vec::new());
        }
        let stored = log.entries(from, to, max_bytes)?;
        drop(log);
        debug_assert!(stored.first().is_some_and(|e| e.raft_index == from));
        stored.into_iter().map(|e| Entry::from_stored(e.raft_index, e.bytes)).collect()
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(&mut self, range: RB) -> io::Result<Vec<Entry>> {
        let (from, to) = bounds(&range);
        let entries = self.read(from, to, usize::MAX)?;
        Ok(entries)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(self.shared.meta().vote)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        Ok(self.read(start, end, REPLICATION_READ_MAX_BYTES)?)
    }
}
