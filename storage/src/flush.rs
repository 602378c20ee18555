//! Durability: group commit and the flush policy.
//!
//! A flush makes every batch appended before it durable with one msync/fsync
//! per touched file, whatever the number of batches (group commit). It is split
//! in three so the fsync runs without the log's lock: [`Log::begin_flush`]
//! (under the lock, cheap) picks what to sync, [`FlushJob::run`] syncs it, and
//! [`Log::complete_flush`] (under the lock) publishes the new durable point.
//! Run one job at a time per log.
//!
//! Policy, as Kafka's: `flush.messages` and `flush.ms` trigger a flush from
//! `append`; both default to never, leaving durability to replication. As in
//! Kafka, a rolled segment is synced in the background right after the roll
//! and the recovery point moves past it, so a crash never rescans more than
//! the active segment and what rolled just before it, and no sealed segment
//! stays dirty (or open) waiting for a flush that the policy never asks for.

use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use crate::checkpoint;
use crate::error::Result;
use crate::log::Log;
use crate::segment::FlushParts;

/// The end of the durable prefix of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Durable {
    pub next_raft_index: u64,
    pub next_offset: i64,
}

/// The recovery point on disk and a generation bumped whenever it must go
/// back (truncation into a clean segment), so a flush job started before that
/// cannot move it forward again.
#[derive(Debug)]
pub(crate) struct RecoveryPoint {
    pub generation: u64,
    pub value: i64,
}

/// Sealed segments not yet known to be on disk; shared with the background
/// roll flusher, which removes each once synced.
type Pending = Arc<Mutex<Vec<FlushParts>>>;

#[derive(Debug, Default)]
pub(crate) struct FlushState {
    pending: Pending,
    /// (base offset of the active segment, bytes of it already handed to a job).
    active_synced: (i64, u64),
    unflushed_records: u64,
    oldest_unflushed_ms: Option<i64>,
    durable: Durable,
    dir_dirty: bool,
}

impl FlushState {
    pub fn new(durable: Durable) -> Self {
        Self { durable, ..Default::default() }
    }

    pub fn sealed_since_flush(&mut self, parts: FlushParts) {
        self.pending.lock().expect("pending lock").push(parts);
        self.dir_dirty = true;
    }

    /// Segments that were deleted need no sync (and must not be kept open).
    pub fn forget(&mut self, deleted: impl Fn(i64) -> bool) {
        self.pending.lock().expect("pending lock").retain(|p| !deleted(p.base_offset));
    }

    /// After a truncation: nothing above the new end is durable. (The cut
    /// bytes were discarded and synced by the truncation itself.)
    pub fn truncated(&mut self, end: Durable, active_base: i64, active_len: u64) {
        self.durable = self.durable.min(end);
        let synced = if self.active_synced.0 == active_base { self.active_synced.1.min(active_len) } else { 0 };
        self.active_synced = (active_base, synced);
        self.dir_dirty = true;
    }
}

/// Syncs `parts`, then drops them from `pending`; on failure they stay
/// pending and the next flush tries again.
fn sync_pending(parts: &[FlushParts], pending: &Pending) -> Result<()> {
    for p in parts {
        p.sync()?;
    }
    pending.lock().expect("pending lock").retain(|q| !parts.iter().any(|p| p.base_offset == q.base_offset));
    Ok(())
}

/// Moves the recovery point up to `clean_below` unless a truncation fenced
/// it (generation changed) or it is already there.
fn advance_recovery_point(dir: &std::path::Path, recovery: &Mutex<RecoveryPoint>, generation: u64, clean_below: i64) -> Result<()> {
    let mut rp = recovery.lock().expect("recovery point lock");
    if rp.generation == generation && rp.value < clean_below {
        checkpoint::write(dir, checkpoint::RECOVERY_POINT, clean_below)?;
        rp.value = clean_below;
    }
    Ok(())
}

/// A rolled segment to sync in the background (Kafka's flush on roll).
struct RollFlush {
    parts: FlushParts,
    dir: PathBuf,
    pending: Pending,
    recovery: Arc<Mutex<RecoveryPoint>>,
    generation: u64,
    clean_below: i64,
}

impl RollFlush {
    fn run(self) -> Result<()> {
        sync_pending(std::slice::from_ref(&self.parts), &self.pending)?;
        checkpoint::sync_dir(&self.dir)?;
        // Earlier rolls may still be pending (e.g. a failed sync); the point
        // only moves once nothing below it is.
        let all_synced = self.pending.lock().expect("pending lock").iter().all(|p| p.base_offset >= self.clean_below);
        if all_synced {
            advance_recovery_point(&self.dir, &self.recovery, self.generation, self.clean_below)?;
        }
        Ok(())
    }
}

/// One thread for the whole process, like Kafka's scheduler: rolls are rare
/// (one per `segment.bytes`), so one thread keeps up, and thousands of
/// partitions do not mean thousands of threads. The queue is bounded; a roll
/// waits if the disk is that far behind.
fn roll_flusher() -> &'static SyncSender<RollFlush> {
    static FLUSHER: OnceLock<SyncSender<RollFlush>> = OnceLock::new();
    FLUSHER.get_or_init(|| {
        let (tx, rx) = sync_channel::<RollFlush>(1024);
        std::thread::Builder::new()
            .name("fjord-roll-flush".into())
            .spawn(move || {
                for job in rx {
                    let dir = job.dir.clone();
                    if let Err(e) = job.run() {
                        tracing::error!(dir = %dir.display(), error = %e, "background sync of a rolled segment failed; the next flush retries");
                    }
                }
            })
            .expect("spawning the roll flusher thread");
        tx
    })
}

/// One flush's worth of files to sync; owns everything it needs, so it runs
/// on any thread without the log.
#[derive(Debug)]
pub struct FlushJob {
    sealed: Vec<FlushParts>,
    active: FlushParts,
    pending: Pending,
    dir: PathBuf,
    sync_dir: bool,
    target: Durable,
    recovery: Arc<Mutex<RecoveryPoint>>,
    generation: u64,
    clean_below: i64,
}

impl FlushJob {
    /// Syncs the data, then (only after the data) moves the recovery point.
    pub fn run(self) -> Result<Durable> {
        sync_pending(&self.sealed, &self.pending)?;
        self.active.sync()?;
        if self.sync_dir {
            checkpoint::sync_dir(&self.dir)?;
        }
        advance_recovery_point(&self.dir, &self.recovery, self.generation, self.clean_below)?;
        Ok(self.target)
    }

    /// What will be durable once the job has run.
    pub fn target(&self) -> Durable {
        self.target
    }
}

impl Log {
    /// The end of the prefix known to be on disk.
    pub fn durable(&self) -> Durable {
        self.flush.durable
    }

    fn end(&self) -> Durable {
        Durable { next_raft_index: self.next_raft_index(), next_offset: self.log_end_offset() }
    }

    /// Picks what a flush must sync: segments sealed since the last flush and
    /// the active segment's unsynced bytes, with index entries written out.
    pub fn begin_flush(&mut self) -> Result<FlushJob> {
        self.active.persist_indexes()?;
        let f = &mut self.flush;
        let from = if f.active_synced.0 == self.active.base_offset { f.active_synced.1 } else { 0 };
        let sealed = f.pending.lock().expect("pending lock").clone();
        // Data only: after a crash the active segment is scanned and its indexes rebuilt.
        let active = self.active.flush_parts(from, false);
        f.active_synced = (self.active.base_offset, self.active.len());
        f.unflushed_records = 0;
        f.oldest_unflushed_ms = None;
        let sync_dir = std::mem::take(&mut f.dir_dirty);
        let generation = self.recovery.lock().expect("recovery point lock").generation;
        Ok(FlushJob {
            sealed,
            active,
            pending: Arc::clone(&f.pending),
            dir: self.dir.clone(),
            sync_dir,
            target: self.end(),
            recovery: Arc::clone(&self.recovery),
            generation,
            clean_below: self.active.base_offset,
        })
    }

    /// Hands a just-sealed segment to the background flusher.
    pub(crate) fn flush_rolled(&mut self, parts: FlushParts) {
        self.flush.sealed_since_flush(parts.clone());
        let job = RollFlush {
            parts,
            dir: self.dir.clone(),
            pending: Arc::clone(&self.flush.pending),
            recovery: Arc::clone(&self.recovery),
            generation: self.recovery.lock().expect("recovery point lock").generation,
            clean_below: self.active.base_offset,
        };
        if roll_flusher().send(job).is_err() {
            tracing::error!(dir = %self.dir.display(), "roll flusher is gone; the rolled segment is synced by the next flush");
        }
    }

    /// Publishes what a job made durable (clamped to the log, which may have
    /// been truncated while the job ran).
    pub fn complete_flush(&mut self, done: Durable) {
        let d = done.min(self.end());
        self.flush.durable = self.flush.durable.max(d);
    }

    /// Makes everything appended so far durable before returning.
    pub fn flush(&mut self) -> Result<Durable> {
        let job = self.begin_flush()?;
        let done = job.run()?;
        self.complete_flush(done);
        Ok(self.durable())
    }

    /// Flushes if `flush.messages` or `flush.ms` says it is time. The broker
    /// calls this from a timer for `flush.ms`; appends call it too.
    pub fn flush_if_due(&mut self) -> Result<bool> {
        let f = &self.flush;
        let by_count = self.config.flush_messages.is_some_and(|n| f.unflushed_records >= n);
        let now = self.clock.now_ms();
        let by_time = self.config.flush_ms.zip(f.oldest_unflushed_ms).is_some_and(|(ms, t)| now - t >= ms);
        if by_count || by_time {
            self.flush()?;
        }
        Ok(by_count || by_time)
    }

    /// Bookkeeping after an append. An I/O error here is reported after the
    /// batch was written, as Kafka's inline flush reports it.
    pub(crate) fn after_append(&mut self, records: u64) -> Result<()> {
        self.flush.unflushed_records += records;
        if self.flush.oldest_unflushed_ms.is_none() {
            self.flush.oldest_unflushed_ms = Some(self.clock.now_ms());
        }
        self.flush_if_due().map(|_| ())
    }
}
