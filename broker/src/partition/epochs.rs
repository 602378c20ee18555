//! Kafka's leader-epoch cache (`LeaderEpochFileCache`), read from the log
//! itself instead of kept in a `leader-epoch-checkpoint` file.
//!
//! Kafka records `(epoch, start offset)` when a batch of a new epoch is
//! appended, and when a replica becomes leader (at its log end offset, before
//! anything is written in the epoch). Here every raft entry is a batch whose
//! partitionLeaderEpoch is its raft term, terms never go down along the log,
//! and a new leader's first entry is raft's blank entry — an offsetless
//! control batch carrying the new term at the log end offset. So the cache is
//! a function of the entries: an epoch starts at the base offset of its first
//! entry. Kafka drops an entry when a later epoch starts at the same offset
//! (`maybeTruncateNonMonotonicEntries`) and, when the log start moves, the
//! entries before it but the one covering it (`truncateFromStart`); both are
//! applied as the lookups below read the entries. Every lookup is one or two
//! binary searches over raft indexes, each probe one batch header.
//!
//! Also here: Kafka's `Partition.getLocalLog` check of a request's
//! `current_leader_epoch` and of leadership, shared by Fetch, ListOffsets
//! and OffsetForLeaderEpoch.

use fjord_storage::batch::BatchHeader;
use fjord_storage::{Log, StorageError};

use super::Partition;

/// Kafka's `UNDEFINED_EPOCH`: "no epoch", in requests and answers.
pub const UNDEFINED_EPOCH: i32 = -1;

/// An answer of [`end_offset_for`]: the largest known epoch at or below the
/// one asked for, and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    pub epoch: i32,
    pub end_offset: i64,
}

/// Kafka's `LeaderEpochFileCache.endOffsetFor(requested, logEndOffset)`:
/// - the latest epoch: itself and the log end offset;
/// - an older one: the largest epoch at or below it and the start offset of
///   the first epoch above it (if the requested epoch is older than every
///   known one: itself and that start offset);
/// - `UNDEFINED_EPOCH`, a newer epoch, or an empty log: `None`, which Kafka
///   answers as `(-1, -1)`.
pub fn end_offset_for(log: &Log, requested_epoch: i32) -> Result<Option<EpochEnd>, StorageError> {
    let Some(entries) = Entries::of(log)? else { return Ok(None) };
    if requested_epoch == UNDEFINED_EPOCH {
        return Ok(None);
    }
    let latest = entries.header(entries.next - 1)?.leader_epoch;
    if requested_epoch == latest {
        return Ok(Some(EpochEnd { epoch: requested_epoch, end_offset: log.log_end_offset() }));
    }
    // The first entry of the first epoch above the requested one.
    let higher = entries.partition_point(entries.first, entries.next, |h| h.leader_epoch > requested_epoch)?;
    if higher == entries.next {
        return Ok(None);
    }
    let higher_start = entries.header(higher)?.base_offset;
    let log_start = log.log_start_offset();
    if higher_start <= log_start {
        // Every epoch up to the requested one lies below the log start: the
        // cache's first entry (the epoch covering the log start) is above it.
        return Ok(Some(EpochEnd { epoch: requested_epoch, end_offset: log_start }));
    }
    // Epochs between the one holding offset `higher_start - 1` and `higher`
    // took no offset, so they start where `higher` does and Kafka dropped them.
    let floor = entries.last_at_or_below(entries.first, higher, higher_start - 1)?;
    let epoch = match floor {
        Some(raft) => entries.header(raft)?.leader_epoch,
        None => requested_epoch,
    };
    debug_assert!(epoch <= requested_epoch);
    Ok(Some(EpochEnd { epoch, end_offset: higher_start }))
}

/// Kafka's `LeaderEpochFileCache.epochForOffset`: the epoch of the last cache
/// entry starting at or before `offset`; `None` below the log start or for an
/// empty log.
pub fn epoch_for_offset(log: &Log, offset: i64) -> Result<Option<i32>, StorageError> {
    let Some(entries) = Entries::of(log)? else { return Ok(None) };
    if offset < log.log_start_offset() {
        return Ok(None);
    }
    match entries.last_at_or_below(entries.first, entries.next, offset)? {
        Some(raft) => Ok(Some(entries.header(raft)?.leader_epoch)),
        None => Ok(None),
    }
}

/// The offset `epoch` started at: where its first entry (raft's blank entry,
/// for a leader's own term) went, or the log end offset if the log holds no
/// entry of it or a later epoch yet. Kafka's `leaderEpochStartOffsetOpt`, the
/// log end offset when the replica became leader.
pub fn epoch_start_offset(log: &Log, epoch: i32) -> Result<i64, StorageError> {
    let Some(entries) = Entries::of(log)? else { return Ok(log.log_end_offset()) };
    let first = entries.partition_point(entries.first, entries.next, |h| h.leader_epoch >= epoch)?;
    if first == entries.next {
        return Ok(log.log_end_offset());
    }
    Ok(entries.header(first)?.base_offset)
}

/// The raft entries a log holds, `[first, next)`, non-empty.
struct Entries<'a> {
    log: &'a Log,
    first: u64,
    next: u64,
}

impl<'a> Entries<'a> {
    fn of(log: &'a Log) -> Result<Option<Self>, StorageError> {
        if log.is_empty() {
            return Ok(None);
        }
        let (first, next) = (log.first_raft_index()?, log.next_raft_index());
        Ok((first < next).then_some(Self { log, first, next }))
    }

    fn header(&self, raft: u64) -> Result<BatchHeader, StorageError> {
        debug_assert!((self.first..self.next).contains(&raft));
        self.log.entry_header(raft)
    }

    /// The first raft index in `[lo, hi)` whose header satisfies `pred`, or
    /// `hi`; `pred` must be false then true along the log.
    fn partition_point(&self, mut lo: u64, mut hi: u64, pred: impl Fn(&BatchHeader) -> bool) -> Result<u64, StorageError> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self.header(mid)?) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// The last raft index in `[lo, hi)` whose batch starts at or before
    /// `offset` (base offsets never go down along the log).
    fn last_at_or_below(&self, lo: u64, hi: u64, offset: i64) -> Result<Option<u64>, StorageError> {
        let after = self.partition_point(lo, hi, |h| h.base_offset > offset)?;
        Ok((after > lo).then(|| after - 1))
    }
}

/// Why a replica may not answer a request for a partition: Kafka's
/// `Partition.getLocalLog` errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeaderError {
    /// The request's `current_leader_epoch` is older than this replica's.
    #[error("fenced leader epoch")]
    FencedLeaderEpoch,
    /// The request's `current_leader_epoch` is newer than this replica's.
    #[error("unknown leader epoch")]
    UnknownLeaderEpoch,
    /// The request needs the leader and this replica is not it.
    #[error("not the leader")]
    NotLeader,
}

/// The Kafka error code of a [`LeaderError`].
pub fn error_code(e: LeaderError) -> i16 {
    use kafka_protocol::ResponseError as E;
    match e {
        LeaderError::FencedLeaderEpoch => E::FencedLeaderEpoch.code(),
        LeaderError::UnknownLeaderEpoch => E::UnknownLeaderEpoch.code(),
        LeaderError::NotLeader => E::NotLeaderOrFollower.code(),
    }
}

/// Kafka's `Partition.checkCurrentLeaderEpoch`: `None` skips the check.
pub fn check_current_leader_epoch(local_epoch: i32, requested: Option<i32>) -> Result<(), LeaderError> {
    match requested {
        Some(r) if local_epoch > r => Err(LeaderError::FencedLeaderEpoch),
        Some(r) if local_epoch < r => Err(LeaderError::UnknownLeaderEpoch),
        _ => Ok(()),
    }
}

impl Partition {
    /// Kafka's `Partition.getLocalLog(currentLeaderEpoch, requireLeader)`:
    /// the epoch check first, then leadership. Returns the leader epoch it
    /// checked against. One look at raft's metrics, so both checks see the
    /// same term.
    pub fn check_leader(&self, current_leader_epoch: Option<i32>, require_leader: bool) -> Result<i32, LeaderError> {
        let (term, leader) = self.with_metrics(|m| (m.current_term, m.current_leader));
        let epoch = i32::try_from(term).unwrap_or(i32::MAX);
        check_current_leader_epoch(epoch, current_leader_epoch)?;
        if require_leader && leader != Some(self.node_id) {
            return Err(LeaderError::NotLeader);
        }
        Ok(epoch)
    }

    /// [`end_offset_for`] on this partition's log.
    pub fn end_offset_for_epoch(&self, requested_epoch: i32) -> Result<Option<EpochEnd>, StorageError> {
        self.group().with_log(|log| end_offset_for(log, requested_epoch))
    }
}

#[cfg(test)]
mod tests {
    use fjord_storage::LogConfig;
    use fjord_storage::batch::{build_offsetless_control, uncompressed_batch};

    use super::*;

    /// One raft entry: a term and how many records (0 = an offsetless blank).
    type Step = (i32, usize);

    fn log_of(dir: &std::path::Path, steps: &[Step], segment_bytes: u64) -> Log {
        let config =
            LogConfig { segment_bytes, index_interval_bytes: 64, preallocate_step_bytes: 512, retention_ms: None, ..Default::default() };
        let mut log = Log::open(dir, config).unwrap();
        for (i, &(term, records)) in steps.iter().enumerate() {
            let batch =
                if records == 0 { build_offsetless_control(term, 0, b"blank") } else { uncompressed_batch(&vec![1_000; records], 20) };
            log.append(&batch, term, i as u64 + 1).unwrap();
        }
        log
    }

    /// Kafka's cache for the same entries, built the way Kafka builds it
    /// (`assign` at each batch, then `truncateFromStart`), answering
    /// `endOffsetFor` the way Kafka does: the model the lookups must match.
    fn kafka_model(steps: &[Step], log_start: i64, requested: i32) -> Option<EpochEnd> {
        let mut cache: Vec<(i32, i64)> = Vec::new();
        let mut offset = 0i64;
        for &(term, records) in steps {
            if cache.last().is_none_or(|&(e, _)| e != term) {
                cache.retain(|&(e, s)| e < term && s < offset);
                cache.push((term, offset));
            }
            offset += records as i64;
        }
        let removed = cache.iter().take_while(|&&(_, s)| s <= log_start).count();
        if removed > 0 {
            let (epoch, _) = cache[removed - 1];
            cache.drain(..removed);
            cache.insert(0, (epoch, log_start));
        }
        let log_end = offset;
        if requested == UNDEFINED_EPOCH {
            return None;
        }
        if cache.last().is_some_and(|&(e, _)| e == requested) {
            return Some(EpochEnd { epoch: requested, end_offset: log_end });
        }
        let higher = cache.iter().find(|&&(e, _)| e > requested)?;
        let floor = cache.iter().rev().find(|&&(e, _)| e <= requested);
        Some(EpochEnd { epoch: floor.map_or(requested, |f| f.0), end_offset: higher.1 })
    }

    fn ends(log: &Log, steps: &[Step], log_start: i64) {
        let max_term = steps.iter().map(|s| s.0).max().unwrap_or(0);
        for requested in -1..=max_term + 2 {
            assert_eq!(end_offset_for(log, requested).unwrap(), kafka_model(steps, log_start, requested), "epoch {requested}");
        }
    }

    const HISTORY: &[Step] = &[
        (1, 0),
        (1, 3),
        (1, 2),
        (2, 0),
        (2, 4),
        // Terms 3 and 4 only elected a leader; 5 starts at the same offset.
        (3, 0),
        (4, 0),
        (5, 0),
        (5, 1),
        (5, 2),
        (7, 0),
        (7, 5),
        (7, 1),
        // A leader of term 9 wrote only its blank entry so far.
        (9, 0),
    ];

    #[test]
    fn end_offsets_match_kafkas_cache() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_of(dir.path(), HISTORY, 1 << 20);
        ends(&log, HISTORY, 0);
        // Spot checks, written out: (epoch asked) -> (epoch, end offset).
        let at = |e| end_offset_for(&log, e).unwrap().map(|x| (x.epoch, x.end_offset));
        assert_eq!(at(0), Some((0, 0)));
        assert_eq!(at(1), Some((1, 5)));
        assert_eq!(at(2), Some((2, 9)));
        assert_eq!(at(3), Some((2, 9)));
        assert_eq!(at(4), Some((2, 9)));
        assert_eq!(at(5), Some((5, 12)));
        assert_eq!(at(6), Some((5, 12)));
        assert_eq!(at(8), Some((7, 18)));
        assert_eq!(at(9), Some((9, 18)));
        assert_eq!(at(10), None);
        assert_eq!(at(-1), None);
    }

    #[test]
    fn end_offsets_across_segments_and_after_the_log_start_moves() {
        let dir = tempfile::tempdir().unwrap();
        // Small segments: the binary searches cross many of them.
        let mut log = log_of(dir.path(), HISTORY, 300);
        assert!(log.segment_count() > 3, "{} segments", log.segment_count());
        ends(&log, HISTORY, 0);
        for start in [1, 5, 7, 9, 12, 15, 18] {
            log.delete_before(start).unwrap();
            assert_eq!(log.log_start_offset(), start);
            ends(&log, HISTORY, start);
        }
    }

    #[test]
    fn empty_and_blank_only_logs() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_of(dir.path(), &[], 1 << 20);
        assert_eq!(end_offset_for(&log, 0).unwrap(), None);
        assert_eq!(epoch_for_offset(&log, 0).unwrap(), None);
        assert_eq!(epoch_start_offset(&log, 3).unwrap(), 0);
        drop(log);
        let dir = tempfile::tempdir().unwrap();
        let steps = [(3, 0)];
        let log = log_of(dir.path(), &steps, 1 << 20);
        ends(&log, &steps, 0);
        assert_eq!(end_offset_for(&log, 3).unwrap(), Some(EpochEnd { epoch: 3, end_offset: 0 }));
        assert_eq!(epoch_for_offset(&log, 0).unwrap(), Some(3));
    }

    #[test]
    fn epoch_for_offset_and_epoch_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_of(dir.path(), HISTORY, 1 << 20);
        let table = [
            (0, Some(1)),
            (4, Some(1)),
            (5, Some(2)),
            (8, Some(2)),
            (9, Some(5)),
            (11, Some(5)),
            (12, Some(7)),
            (17, Some(7)),
            (18, Some(9)),
        ];
        for (offset, epoch) in table {
            assert_eq!(epoch_for_offset(&log, offset).unwrap(), epoch, "offset {offset}");
        }
        for (epoch, start) in [(1, 0), (2, 5), (3, 9), (5, 9), (6, 12), (7, 12), (9, 18), (10, 18)] {
            assert_eq!(epoch_start_offset(&log, epoch).unwrap(), start, "epoch {epoch}");
        }
        log.delete_before(6).unwrap();
        assert_eq!(epoch_for_offset(&log, 5).unwrap(), None);
        assert_eq!(epoch_for_offset(&log, 6).unwrap(), Some(2));
    }

    fn arb_history() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
        use proptest::prelude::*;
        // Term steps of 0 (same term), 1 or 3 (skipped elections); 0 records is a blank entry.
        prop::collection::vec((prop_oneof![Just(0), Just(1), Just(3)], 0usize..4), 1..40).prop_map(|steps| {
            let mut term = 0;
            steps
                .into_iter()
                .enumerate()
                .map(|(i, (step, records))| {
                    // A new term begins with its blank entry, as a raft leader's does.
                    if i == 0 || step > 0 {
                        term += step.max(1);
                        return (term, 0);
                    }
                    (term, records)
                })
                .collect()
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn random_histories_match_kafkas_cache(steps in arb_history(), start_fraction in 0.0f64..1.0) {
            let dir = tempfile::tempdir().unwrap();
            let mut log = log_of(dir.path(), &steps, 300);
            ends(&log, &steps, 0);
            let start = (log.log_end_offset() as f64 * start_fraction) as i64;
            log.delete_before(start).unwrap();
            ends(&log, &steps, log.log_start_offset());
        }
    }

    #[test]
    fn current_leader_epoch_checks() {
        let table = [
            (5, None, Ok(())),
            (5, Some(5), Ok(())),
            (5, Some(4), Err(LeaderError::FencedLeaderEpoch)),
            (5, Some(6), Err(LeaderError::UnknownLeaderEpoch)),
        ];
        for (local, requested, expected) in table {
            assert_eq!(check_current_leader_epoch(local, requested), expected, "{local} vs {requested:?}");
        }
    }
}
