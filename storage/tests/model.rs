//! Model test of the partition log: random sequences of appends (data and
//! offsetless control batches), epoch bumps, rolls, truncations, prefix
//! deletion, retention, flushes, clean and unclean reopens and config changes
//! run against a real [`Log`] in a temporary directory and against a plain
//! in-memory model. After every step each read path (`read`, `entries`,
//! `offset_for_timestamp`, `max_timestamp`) and every position (log start,
//! log end, raft indexes, segment bases, size) is compared with the model.
//!
//! The model knows where segments begin, because it applies the log's roll
//! rule itself (roll before a batch that does not fit or that spans
//! `segment.ms`, grow instead while the segment holds no offset), so it can
//! say exactly what retention and prefix deletion remove.
//!
//! The model states what the log should do, not what it happens to do: the
//! shrunk cases where the two differed are kept as `regression_*` tests at
//! the end of the file. `PROPTEST_CASES` raises the number of cases (default
//! 256, about 10 s in release mode).

use std::sync::Arc;

use fjord_storage::batch::{self, BatchHeader, build_offsetless_control, uncompressed_batch};
use fjord_storage::{Log, LogConfig, ManualClock, StorageError, TimestampOffset};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tempfile::TempDir;

/// Wall clock for retention by time; record timestamps of a case range around it.
const NOW_MS: i64 = 5_000;
const DEFAULT_CASES: u32 = 256;
const MAX_OPS: usize = 80;

// ---------------------------------------------------------------------------
// The model

/// One raft entry as the log must store it.
#[derive(Debug, Clone)]
struct Batch {
    raft: u64,
    /// The appended bytes with baseOffset and partitionLeaderEpoch patched.
    bytes: Vec<u8>,
    base: i64,
    /// Offsets the batch takes; 0 for the log's own control batches.
    count: i64,
    epoch: i32,
    /// Record timestamps in offset order; empty for control batches.
    timestamps: Vec<i64>,
    max_ts: i64,
}

impl Batch {
    fn last(&self) -> i64 {
        self.base + self.count - 1
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

#[derive(Debug, Clone)]
struct Seg {
    base: i64,
    base_raft: u64,
    batches: Vec<Batch>,
    /// Bytes the segment may hold before the next append rolls or grows it
    /// (only meaningful for the active segment).
    capacity_bytes: u64,
}

impl Seg {
    fn len(&self) -> u64 {
        self.batches.iter().map(Batch::len).sum()
    }

    fn end(&self) -> i64 {
        self.base + self.batches.iter().map(|b| b.count).sum::<i64>()
    }

    fn next_raft(&self) -> u64 {
        self.base_raft + self.batches.len() as u64
    }

    fn has_offsets(&self) -> bool {
        self.end() > self.base
    }

    /// maxTimestamp of the first offset-bearing batch: `segment.ms` counts from it.
    fn first_ts(&self) -> Option<i64> {
        self.batches.iter().find(|b| b.count > 0).map(|b| b.max_ts)
    }

    /// Largest maxTimestamp of the offset-bearing batches; -1 when none.
    fn largest_ts(&self) -> i64 {
        self.batches.iter().filter(|b| b.count > 0).map(|b| b.max_ts).max().unwrap_or(-1)
    }
}

#[derive(Debug)]
struct Model {
    /// Oldest first; the last one is active.
    segs: Vec<Seg>,
    log_start: i64,
    config: LogConfig,
}

impl Model {
    fn new(config: LogConfig) -> Self {
        let seg = Seg { base: 0, base_raft: 0, batches: Vec::new(), capacity_bytes: config.segment_bytes };
        Self { segs: vec![seg], log_start: 0, config }
    }

    fn active(&self) -> &Seg {
        self.segs.last().expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Seg {
        self.segs.last_mut().expect("a log always has a segment")
    }

    fn end(&self) -> i64 {
        self.active().end()
    }

    fn next_raft(&self) -> u64 {
        self.active().next_raft()
    }

    fn first_raft(&self) -> u64 {
        self.segs[0].base_raft
    }

    fn is_empty(&self) -> bool {
        self.segs.len() == 1 && self.active().batches.is_empty()
    }

    fn size_bytes(&self) -> u64 {
        self.segs.iter().map(Seg::len).sum()
    }

    fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.segs.iter().flat_map(|s| &s.batches)
    }

    fn data(&self) -> impl Iterator<Item = &Batch> {
        self.batches().filter(|b| b.count > 0)
    }

    fn bases(&self) -> Vec<i64> {
        self.segs.iter().map(|s| s.base).collect()
    }

    /// What `Log::append` must answer: (base offset, last offset, raft index,
    /// max timestamp), or `None` when it must refuse the batch and write nothing.
    fn append(&mut self, bytes: &[u8], epoch: i32, raft: u64, timestamps: Vec<i64>) -> Option<(i64, i64, u64, i64)> {
        let h = BatchHeader::parse(bytes).expect("test batches are valid");
        let size = bytes.len() as u64;
        let expected = self.next_raft();
        let raft_ok = raft == expected || (self.is_empty() && raft > expected);
        // Raft terms never go back, across segment boundaries too.
        let epoch_ok = self.batches().last().is_none_or(|b| epoch >= b.epoch);
        if size > self.config.segment_bytes || !raft_ok || !epoch_ok {
            return None;
        }
        self.make_room(size, h.max_timestamp);
        if raft != self.next_raft() {
            self.active_mut().base_raft = raft;
        }
        let base = self.end();
        let mut stored = bytes.to_vec();
        batch::patch(&mut stored, base, epoch);
        let count = h.offset_count();
        let b = Batch { raft, bytes: stored, base, count, epoch, timestamps, max_ts: h.max_timestamp };
        self.active_mut().batches.push(b);
        Some((base, base + count - 1, raft, h.max_timestamp))
    }

    /// The log's roll rule: roll before a batch that does not fit or whose
    /// timestamp is `segment.ms` past the segment's first; a segment without
    /// offsets cannot roll and grows instead.
    fn make_room(&mut self, size: u64, max_ts: i64) {
        let segment_ms = self.config.segment_ms;
        let a = self.active();
        let full = a.len() + size > a.capacity_bytes;
        let aged = a.first_ts().is_some_and(|first| first >= 0 && max_ts.saturating_sub(first) > segment_ms);
        if a.has_offsets() && (full || aged) {
            self.roll();
        } else if full {
            let a = self.active_mut();
            a.capacity_bytes = a.len() + size;
        }
    }

    fn roll(&mut self) {
        if !self.active().has_offsets() {
            return;
        }
        let seg = Seg { base: self.end(), base_raft: self.next_raft(), batches: Vec::new(), capacity_bytes: self.config.segment_bytes };
        self.segs.push(seg);
        // A segment sealed wholly below the log start (the log start reached
        // the end while it was active) goes at once, as recovery would drop it.
        self.drop_below_log_start();
    }

    fn drop_below_log_start(&mut self) -> usize {
        let n = (0..self.segs.len() - 1).take_while(|&i| self.segs[i + 1].base <= self.log_start).count();
        self.drop_oldest(n)
    }

    /// Cuts batch `pos` of segment `i` and everything after it; segment `i`
    /// becomes the active one.
    fn cut(&mut self, i: usize, pos: usize) {
        if i + 1 < self.segs.len() {
            self.segs.truncate(i + 1);
            // Reopened for writing: mapped at segment.bytes or its file's length.
            let segment_bytes = self.config.segment_bytes;
            let a = self.active_mut();
            a.capacity_bytes = segment_bytes.max(a.len());
        }
        self.active_mut().batches.truncate(pos);
        self.log_start = self.log_start.min(self.end());
    }

    fn truncate_after_raft(&mut self, raft: u64) {
        let cut = raft.saturating_add(1);
        if cut >= self.next_raft() {
            return;
        }
        assert!(cut >= self.first_raft(), "the test only truncates within the log");
        let (i, pos) = self.find(|b| b.raft == cut).expect("raft index below the end is held");
        self.cut(i, pos);
    }

    fn truncate_after(&mut self, offset: i64) {
        let cut = offset.saturating_add(1);
        if cut >= self.end() {
            return;
        }
        assert!(cut >= self.log_start, "the test only truncates within the log");
        let (i, pos) = self.find(|b| b.count > 0 && b.last() >= cut).expect("offset below the end is held");
        self.cut(i, pos);
    }

    fn find(&self, pred: impl Fn(&Batch) -> bool) -> Option<(usize, usize)> {
        self.segs.iter().enumerate().find_map(|(i, s)| s.batches.iter().position(&pred).map(|p| (i, p)))
    }

    /// Drops the `n` oldest (sealed) segments.
    fn drop_oldest(&mut self, n: usize) -> usize {
        assert!(n < self.segs.len(), "never the active segment");
        self.segs.drain(..n);
        n
    }

    fn delete_before(&mut self, offset: i64) -> usize {
        let offset = offset.min(self.end());
        if offset <= self.log_start {
            return 0;
        }
        self.log_start = offset;
        let n = (0..self.segs.len() - 1).take_while(|&i| self.segs[i + 1].base <= offset).count();
        self.drop_oldest(n)
    }

    fn apply_retention(&mut self, upto: i64) -> usize {
        let eligible = (0..self.segs.len() - 1).take_while(|&i| self.segs[i + 1].base <= upto).count();
        let mut by_time = 0;
        if let Some(ms) = self.config.retention_ms {
            // A segment without timestamps ages by its file's mtime, which
            // is wall time, far after the test's clock: it never expires here.
            while by_time < eligible && self.segs[by_time].largest_ts() >= 0 && NOW_MS - self.segs[by_time].largest_ts() > ms {
                by_time += 1;
            }
        }
        let mut by_size = 0;
        if let Some(limit) = self.config.retention_bytes {
            let mut excess = self.size_bytes() as i64 - limit as i64;
            while by_size < eligible && excess - self.segs[by_size].len() as i64 >= 0 {
                excess -= self.segs[by_size].len() as i64;
                by_size += 1;
            }
        }
        let n = by_time.max(by_size);
        if n > 0 {
            self.log_start = self.log_start.max(self.segs[n].base);
        }
        self.drop_oldest(n)
    }

    fn reset(&mut self, next_offset: i64, next_raft: u64) {
        let seg = Seg { base: next_offset, base_raft: next_raft, batches: Vec::new(), capacity_bytes: self.config.segment_bytes };
        self.segs = vec![seg];
        self.log_start = next_offset;
    }

    /// A reopen maps the active segment at segment.bytes or its file's length:
    /// its data after a clean close (which trims), its old map otherwise.
    fn reopen(&mut self, clean: bool) -> usize {
        let dropped = self.drop_below_log_start();
        let segment_bytes = self.config.segment_bytes;
        let a = self.active_mut();
        let file_bytes = if clean { a.len() } else { a.capacity_bytes };
        a.capacity_bytes = segment_bytes.max(file_bytes);
        dropped
    }

    /// Expected `read`: bytes and next offset.
    fn read(&self, offset: i64, max_bytes: usize, upto: i64) -> (Vec<u8>, i64) {
        let upto = upto.min(self.end());
        let (mut out, mut next) = (Vec::new(), offset);
        for b in self.data().filter(|b| b.last() >= offset) {
            if b.last() >= upto || (!out.is_empty() && out.len() + b.bytes.len() > max_bytes) {
                break;
            }
            out.extend_from_slice(&b.bytes);
            next = b.last() + 1;
        }
        (out, next)
    }

    /// Expected `entries`: (raft index, bytes).
    fn entries(&self, from: u64, to: u64, max_bytes: usize) -> Vec<(u64, Vec<u8>)> {
        let to = to.min(self.next_raft());
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut bytes = 0;
        for b in self.batches().filter(|b| b.raft >= from && b.raft < to) {
            if !out.is_empty() && bytes + b.bytes.len() > max_bytes {
                break;
            }
            bytes += b.bytes.len();
            out.push((b.raft, b.bytes.clone()));
        }
        out
    }

    /// Records at or after the log start: (offset, timestamp, epoch).
    fn records(&self) -> impl Iterator<Item = (i64, i64, i32)> + '_ {
        let start = self.log_start;
        self.data()
            .flat_map(|b| b.timestamps.iter().enumerate().map(move |(i, &ts)| (b.base + i as i64, ts, b.epoch)))
            .filter(move |r| r.0 >= start)
    }

    fn offset_for_timestamp(&self, t: i64) -> Option<TimestampOffset> {
        self.records().find(|r| r.1 >= t).map(|(offset, timestamp, leader_epoch)| TimestampOffset { timestamp, offset, leader_epoch })
    }

    /// Kafka's MAX_TIMESTAMP looks at whole segments from the one holding the
    /// log start (`UnifiedLog.fetchOffsetByTimestamp`), so records of that
    /// segment below the log start count too; the first record carrying the
    /// largest timestamp wins.
    fn max_timestamp(&self) -> Option<TimestampOffset> {
        let first = self.segs.iter().rposition(|s| s.base <= self.log_start).unwrap_or(0);
        let records = self.segs[first..]
            .iter()
            .flat_map(|s| &s.batches)
            .filter(|b| b.count > 0)
            .flat_map(|b| b.timestamps.iter().enumerate().map(move |(i, &ts)| (b.base + i as i64, ts, b.epoch)))
            .filter(|r| r.1 >= 0);
        let mut best: Option<(i64, i64, i32)> = None;
        for r in records {
            if best.is_none_or(|b| r.1 > b.1) {
                best = Some(r);
            }
        }
        best.map(|(offset, timestamp, leader_epoch)| TimestampOffset { timestamp, offset, leader_epoch })
    }
}

// ---------------------------------------------------------------------------
// Operations

#[derive(Debug, Clone)]
enum Op {
    /// A data batch: one record per timestamp delta (deltas mostly rise).
    /// `raft_skew` moves the raft index off the expected one (a gap, or a jump
    /// that an empty log accepts). `no_timestamps` gives every record -1
    /// (Kafka's NO_TIMESTAMP), as old clients send.
    Append {
        deltas: Vec<i64>,
        value_len: usize,
        raft_skew: i8,
        no_timestamps: bool,
    },
    /// A raft entry that takes no Kafka offset.
    Control {
        payload_len: usize,
        ts_delta: i64,
    },
    /// A data batch with a leader epoch below the last one held.
    StaleEpoch,
    BumpEpoch(i32),
    Roll,
    TruncateAfterRaft(u64),
    TruncateAfter(u64),
    DeleteBefore(u64),
    ApplyRetention(u64),
    Flush,
    /// A follower installs a snapshot: everything goes, the log restarts at
    /// an offset and raft index near the old end.
    Reset(u64),
    Reopen {
        clean: bool,
    },
    SetConfig(LogConfig),
}

fn config() -> impl Strategy<Value = LogConfig> {
    (
        prop_oneof![3 => 512u64..=1200, 1 => 1200u64..=4096],
        64u64..=512,
        prop::option::weighted(0.8, 256u64..=4000),
        prop::option::weighted(0.3, 500i64..=6000),
        prop::option::weighted(0.3, 200i64..=3000),
        1usize..=4,
        prop::option::weighted(0.2, 1u64..=8),
        prop::sample::select(vec![256u64, 4096, 1 << 16]),
    )
        .prop_map(
            |(segment_bytes, index_interval_bytes, retention_bytes, retention_ms, segment_ms, max_open_segments, flush_messages, step)| {
                LogConfig {
                    segment_bytes,
                    segment_ms: segment_ms.unwrap_or(i64::MAX),
                    index_interval_bytes,
                    retention_ms,
                    retention_bytes,
                    flush_messages,
                    flush_ms: None,
                    // The log only carries it; raft's log store acts on it.
                    write_cache: false,
                    preallocate_step_bytes: step,
                    max_open_segments,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let ts_delta = prop_oneof![6 => 0i64..100, 1 => -300i64..0];
    let raft_skew = prop_oneof![12 => Just(0i8), 1 => -1i8..=2];
    prop_oneof![
        20 => (prop::collection::vec(ts_delta, 1..=5), 0usize..=100, raft_skew, prop::bool::weighted(0.05))
            .prop_map(|(deltas, value_len, raft_skew, no_timestamps)| Op::Append { deltas, value_len, raft_skew, no_timestamps }),
        3 => (0usize..=40, -50i64..200).prop_map(|(payload_len, ts_delta)| Op::Control { payload_len, ts_delta }),
        1 => Just(Op::StaleEpoch),
        1 => (1i32..=2).prop_map(Op::BumpEpoch),
        1 => Just(Op::Roll),
        1 => any::<u64>().prop_map(Op::TruncateAfterRaft),
        1 => any::<u64>().prop_map(Op::TruncateAfter),
        1 => any::<u64>().prop_map(Op::DeleteBefore),
        2 => any::<u64>().prop_map(Op::ApplyRetention),
        1 => Just(Op::Flush),
        1 => any::<u64>().prop_map(Op::Reset),
        2 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => config().prop_map(Op::SetConfig),
    ]
}

/// `lo..=hi` picked by `pick` (shrinks towards `lo`).
fn pick_i64(pick: u64, lo: i64, hi: i64) -> i64 {
    assert!(lo <= hi);
    lo + (pick % (hi - lo + 1) as u64) as i64
}

/// `lo..=hi` picked by `pick`, near `hi` more often than not: a follower
/// usually loses a short uncommitted tail (shrinks towards `hi`, a no-op cut).
fn pick_tail(pick: u64, lo: i64, hi: i64) -> i64 {
    let back = pick_i64(pick, 0, hi - lo).min(pick_i64(pick >> 32, 0, hi - lo));
    hi - back
}

/// A small deterministic generator for the probes of one step.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let n = self.next();
        pick_i64(n, lo, hi)
    }
}

// ---------------------------------------------------------------------------
// The harness: one real log and its model

struct Harness {
    dir: TempDir,
    clock: Arc<ManualClock>,
    log: Option<Log>,
    model: Model,
    epoch: i32,
    ts_cursor: i64,
}

impl Harness {
    fn new(config: LogConfig) -> Result<Self, TestCaseError> {
        let dir = tempfile::tempdir()?;
        let clock = Arc::new(ManualClock::new(NOW_MS));
        let log = Log::open_with_clock(dir.path(), config.clone(), clock.clone())?;
        Ok(Self { dir, clock, log: Some(log), model: Model::new(config), epoch: 0, ts_cursor: NOW_MS - 3000 })
    }

    fn log(&mut self) -> &mut Log {
        self.log.as_mut().expect("the log is open between steps")
    }

    /// The raft index for the next append: 1 for a new log, else the log's
    /// next one moved by `skew`.
    fn raft_for_append(&self, skew: i8) -> u64 {
        let next = self.model.next_raft();
        if next == 0 { 1 } else { next.saturating_add_signed(skew.into()) }
    }

    fn append(&mut self, bytes: Vec<u8>, epoch: i32, raft: u64, timestamps: Vec<i64>) -> Result<(), TestCaseError> {
        let got = self.log().append(&bytes, epoch, raft);
        let want = self.model.append(&bytes, epoch, raft, timestamps);
        match (got, want) {
            (Ok(i), Some(w)) => prop_assert_eq!((i.base_offset, i.last_offset, i.raft_index, i.max_timestamp), w),
            (Err(_), None) => {}
            (got, want) => prop_assert!(false, "append(raft {raft}, epoch {epoch}, {} bytes): log {got:?}, model {want:?}", bytes.len()),
        }
        Ok(())
    }

    /// Applies `op` to both, then compares them.
    fn step(&mut self, op: &Op, rng: &mut Rng) -> Result<(), TestCaseError> {
        // Reads are zero-copy views of the maps: they must outlive rolls,
        // retention, resets, reopens and cache evictions. Only a truncation
        // may change bytes a reader holds (above the cut, which raft forbids).
        let start = self.model.log_start;
        let held = self.log().read(start, usize::MAX, i64::MAX)?;
        let held_want = self.model.read(start, usize::MAX, i64::MAX).0;
        self.apply(op)?;
        let truncated = matches!(op, Op::TruncateAfter(_) | Op::TruncateAfterRaft(_));
        prop_assert!(truncated || held.to_vec() == held_want, "a read held across the step changed");
        check(self.log.as_ref().expect("open"), &self.model, rng)
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let m = &self.model;
        match op {
            Op::Append { deltas, value_len, raft_skew, no_timestamps } => {
                let mut timestamps: Vec<i64> = deltas
                    .iter()
                    .map(|d| {
                        self.ts_cursor = (self.ts_cursor + d).max(0);
                        self.ts_cursor
                    })
                    .collect();
                if *no_timestamps {
                    timestamps.fill(-1);
                }
                let bytes = uncompressed_batch(&timestamps, *value_len);
                let raft = self.raft_for_append(*raft_skew);
                self.append(bytes, self.epoch, raft, timestamps)?;
            }
            Op::Control { payload_len, ts_delta } => {
                let ts = (self.ts_cursor + ts_delta).max(0);
                let payload: Vec<u8> = (0..*payload_len).map(|i| i as u8).collect();
                let bytes = build_offsetless_control(self.epoch, ts, &payload);
                let raft = self.raft_for_append(0);
                self.append(bytes, self.epoch, raft, Vec::new())?;
            }
            Op::StaleEpoch => {
                let Some(last) = m.batches().last().map(|b| b.epoch).filter(|e| *e > 0) else { return Ok(()) };
                let raft = self.raft_for_append(0);
                self.append(uncompressed_batch(&[self.ts_cursor], 8), last - 1, raft, vec![self.ts_cursor])?;
            }
            Op::BumpEpoch(by) => self.epoch += by,
            Op::Roll => {
                self.log().roll()?;
                self.model.roll();
            }
            Op::TruncateAfterRaft(pick) => {
                let raft = pick_tail(*pick, m.first_raft().saturating_sub(1) as i64, m.next_raft() as i64) as u64;
                self.log().truncate_after_raft(raft)?;
                self.model.truncate_after_raft(raft);
            }
            Op::TruncateAfter(pick) => {
                let offset = pick_tail(*pick, m.log_start - 1, m.end());
                self.log().truncate_after(offset)?;
                self.model.truncate_after(offset);
            }
            Op::DeleteBefore(pick) => {
                let offset = pick_i64(*pick, m.log_start - 1, m.end() + 1);
                let got = self.log().delete_before(offset)?;
                prop_assert_eq!(got, self.model.delete_before(offset), "segments deleted before {}", offset);
            }
            Op::ApplyRetention(pick) => {
                let upto = if pick % 4 == 0 { i64::MAX } else { pick_i64(*pick, m.log_start, m.end() + 1) };
                let got = self.log().apply_retention(upto)?;
                prop_assert_eq!(got, self.model.apply_retention(upto), "segments deleted by retention upto {}", upto);
            }
            Op::Flush => {
                let want = (m.next_raft(), m.end());
                let durable = self.log().flush()?;
                prop_assert_eq!((durable.next_raft_index, durable.next_offset), want);
            }
            Op::Reset(pick) => {
                let next_offset = (m.end() + pick_i64(*pick, -10, 40)).max(0);
                let next_raft = m.next_raft() + pick % 4;
                self.log().reset(next_offset, next_raft)?;
                self.model.reset(next_offset, next_raft);
            }
            Op::Reopen { clean } => {
                let log = self.log.take().expect("open");
                if *clean {
                    log.close()?;
                } else {
                    drop(log);
                }
                let log = Log::open_with_clock(self.dir.path(), self.model.config.clone(), self.clock.clone())?;
                prop_assert_eq!(log.open_report().clean, *clean);
                let dropped = log.open_report().segments_dropped;
                let durable = log.durable();
                self.log = Some(log);
                prop_assert_eq!(dropped, self.model.reopen(*clean), "segments dropped by the reopen");
                prop_assert_eq!((durable.next_raft_index, durable.next_offset), (self.model.next_raft(), self.model.end()));
            }
            Op::SetConfig(config) => {
                self.log().set_config(config.clone())?;
                self.model.config = config.clone();
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Checks

/// (base offset, epoch, size) of each batch in `bytes`: a readable diff.
fn describe(mut bytes: &[u8]) -> Vec<(i64, i32, usize)> {
    let mut out = Vec::new();
    while let Ok(h) = BatchHeader::parse(bytes) {
        let len = h.total_bytes().min(bytes.len());
        out.push((h.base_offset, h.leader_epoch, len));
        bytes = &bytes[len..];
    }
    out
}

fn check_read(log: &Log, m: &Model, offset: i64, max_bytes: usize, upto: i64) -> Result<(), TestCaseError> {
    let r = log.read(offset, max_bytes, upto)?;
    let got = r.to_vec();
    let (want, next) = m.read(offset, max_bytes, upto);
    let what = format!("read({offset}, {max_bytes}, {upto})");
    prop_assert_eq!(describe(&got), describe(&want), "{}", what);
    prop_assert!(got == want, "{}: bytes differ", what);
    prop_assert_eq!((r.bytes, r.next_offset), (want.len(), next), "{}", what);
    Ok(())
}

fn check_entries(log: &Log, m: &Model, from: u64, to: u64, max_bytes: usize) -> Result<(), TestCaseError> {
    let got: Vec<(u64, Vec<u8>)> = log.entries(from, to, max_bytes)?.into_iter().map(|e| (e.raft_index, e.bytes.to_vec())).collect();
    let want = m.entries(from, to, max_bytes);
    let what = format!("entries({from}, {to}, {max_bytes})");
    let shape = |v: &[(u64, Vec<u8>)]| v.iter().map(|(r, b)| (*r, describe(b))).collect::<Vec<_>>();
    prop_assert_eq!(shape(&got), shape(&want), "{}", what);
    prop_assert!(got == want, "{}: bytes differ", what);
    Ok(())
}

fn check(log: &Log, m: &Model, rng: &mut Rng) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        (log.log_start_offset(), log.log_end_offset(), log.first_raft_index()?, log.next_raft_index()),
        (m.log_start, m.end(), m.first_raft(), m.next_raft()),
        "(log start, log end, first raft, next raft)"
    );
    prop_assert_eq!(log.segment_base_offsets(), m.bases(), "segment bases");
    prop_assert_eq!((log.is_empty(), log.size_bytes()), (m.is_empty(), m.size_bytes()), "(empty, size)");
    prop_assert!(log.open_segments() <= m.config.max_open_segments, "{} sealed segments open", log.open_segments());
    let durable = log.durable();
    prop_assert!(durable.next_offset <= m.end() && durable.next_raft_index <= m.next_raft(), "durable {:?} beyond the end", durable);

    let end = m.end();
    check_read(log, m, m.log_start, usize::MAX, i64::MAX)?;
    for _ in 0..3 {
        let offset = rng.range(m.log_start, end);
        let max_bytes = match rng.below(3) {
            0 => 0,
            1 => rng.below(3000) as usize,
            _ => usize::MAX,
        };
        let upto = if rng.below(4) == 0 { i64::MAX } else { rng.range(offset - 1, end + 1) };
        check_read(log, m, offset, max_bytes, upto)?;
    }
    let outside = if rng.below(2) == 0 { m.log_start - 1 - rng.below(3) as i64 } else { end + 1 + rng.below(3) as i64 };
    let r = log.read(outside, 1 << 20, i64::MAX);
    prop_assert!(matches!(r, Err(StorageError::OffsetOutOfRange { .. })), "read({}) outside the log: {:?}", outside, r);

    let (first, next) = (m.first_raft(), m.next_raft());
    check_entries(log, m, first, next, usize::MAX)?;
    for _ in 0..2 {
        let from = rng.range(first as i64, next as i64) as u64;
        let to = rng.range(from as i64, next as i64 + 2) as u64;
        let max_bytes = if rng.below(2) == 0 { rng.below(2000) as usize } else { usize::MAX };
        check_entries(log, m, from, to, max_bytes)?;
    }
    let outside = if first > 0 && rng.below(2) == 0 { first - 1 } else { next + 1 };
    let e = log.entries(outside, outside + 5, usize::MAX);
    prop_assert!(matches!(e, Err(StorageError::RaftIndexOutOfRange { .. })), "entries({}) outside the log: {:?}", outside, e);

    if next > first {
        let raft = rng.range(first as i64, next as i64 - 1) as u64;
        let want = m.batches().find(|b| b.raft == raft).map(|b| BatchHeader::parse(&b.bytes).expect("valid"));
        prop_assert_eq!(Some(log.entry_header(raft)?), want, "entry_header({})", raft);
    }

    let stamps: Vec<i64> = m.records().map(|r| r.1).collect();
    for _ in 0..3 {
        let t = match stamps.len() as u64 {
            0 => rng.range(-1, NOW_MS),
            n => stamps[rng.below(n) as usize] + rng.range(-1, 1),
        };
        prop_assert_eq!(log.offset_for_timestamp(t)?, m.offset_for_timestamp(t), "offset_for_timestamp({})", t);
    }
    prop_assert_eq!(log.max_timestamp()?, m.max_timestamp(), "max_timestamp");
    Ok(())
}

fn run(initial: LogConfig, ops: &[(Op, u64)]) -> Result<(), TestCaseError> {
    let mut h = Harness::new(initial)?;
    for (step, (op, seed)) in ops.iter().enumerate() {
        let result = h.step(op, &mut Rng(*seed));
        if let Err(e) = result {
            let segs: Vec<(i64, u64, usize)> = h.model.segs.iter().map(|s| (s.base, s.base_raft, s.batches.len())).collect();
            return Err(TestCaseError::fail(format!("step {step} {op:?}: {e}\nmodel segments (base, raft, batches): {segs:?}")));
        }
    }
    h.log.take().expect("open").close()?;
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(initial in config(), ops in prop::collection::vec((op(), any::<u64>()), 1..=MAX_OPS)) {
        run(initial, &ops)?;
    }
}
