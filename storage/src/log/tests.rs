//! Unit tests of the log as a whole: append, read, roll, lookups, truncation,
//! retention, flush policy and reopen. Recovery from damage is in
//! `recovery` tests; random sequences against a model in `tests/model.rs`.

use std::sync::Arc;

use crate::batch::{self, BatchHeader, build_offsetless_control, uncompressed_batch};
use crate::config::{LogConfig, ManualClock};
use crate::error::{BatchError, StorageError};
use crate::log::Log;

fn small() -> LogConfig {
    LogConfig { segment_bytes: 1024, index_interval_bytes: 128, preallocate_step_bytes: 512, retention_ms: None, ..Default::default() }
}

fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = batch::validate(&bytes[at..at + BatchHeader::parse(&bytes[at..]).unwrap().total_bytes()])
            .expect("every read batch is CRC-valid");
        at += h.total_bytes();
        out.push(h);
    }
    out
}

/// Appends `n` batches of `records` records each; raft indexes follow the log.
fn fill(log: &mut Log, n: usize, records: usize, ts0: i64) {
    for i in 0..n {
        let ts: Vec<i64> = (0..records).map(|r| ts0 + (i * records + r) as i64).collect();
        let raft = if log.is_empty() { 1 } else { log.next_raft_index() };
        log.append(&uncompressed_batch(&ts, 50), 1, raft).unwrap();
    }
}

#[test]
fn offsets_are_dense_and_headers_patched() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let a = log.append(&uncompressed_batch(&[1, 2, 3], 10), 4, 1).unwrap();
    let b = log.append(&uncompressed_batch(&[4], 10), 5, 2).unwrap();
    assert_eq!((a.base_offset, a.last_offset, b.base_offset, b.last_offset), (0, 2, 3, 3));
    assert_eq!(log.log_end_offset(), 4);
    let r = log.read(0, 1 << 20, i64::MAX).unwrap();
    let hs = headers(&r.to_vec());
    assert_eq!(hs.iter().map(|h| (h.base_offset, h.leader_epoch)).collect::<Vec<_>>(), vec![(0, 4), (3, 5)]);
    assert_eq!(r.next_offset, 4);
    // Reading from the middle of a batch returns the whole batch, as Kafka does.
    let r = log.read(1, 1 << 20, i64::MAX).unwrap();
    assert_eq!(headers(&r.to_vec())[0].base_offset, 0);
}

#[test]
fn offsetless_batches_are_stepped_over_but_replicated() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    log.append(&build_offsetless_control(1, 0, b"blank"), 1, 1).unwrap();
    log.append(&uncompressed_batch(&[1, 2], 10), 1, 2).unwrap();
    log.append(&build_offsetless_control(2, 0, b"membership"), 2, 3).unwrap();
    log.append(&uncompressed_batch(&[3], 10), 2, 4).unwrap();
    assert_eq!(log.log_end_offset(), 3, "raft's own entries take no offset");
    let r = log.read(0, 1 << 20, i64::MAX).unwrap();
    assert_eq!(r.slices.len(), 2, "one slice either side of the control batch");
    assert_eq!(headers(&r.to_vec()).iter().map(|h| h.base_offset).collect::<Vec<_>>(), vec![0, 2]);
    let e = log.entries(1, 5, 1 << 20).unwrap();
    assert_eq!(e.iter().map(|e| e.raft_index).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(BatchHeader::parse(&e[2].bytes).unwrap().is_control());
    assert_eq!(log.entry_header(3).unwrap().leader_epoch, 2);
}

#[test]
fn max_bytes_and_upto_limit_reads_but_first_batch_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { segment_bytes: 1 << 20, ..small() }).unwrap();
    fill(&mut log, 10, 2, 0);
    let one = log.read(0, 1, i64::MAX).unwrap();
    assert_eq!(headers(&one.to_vec()).len(), 1);
    let size = one.bytes;
    let three = log.read(0, size * 3 + size / 2, i64::MAX).unwrap();
    assert_eq!(headers(&three.to_vec()).len(), 3);
    let upto = log.read(0, 1 << 20, 8).unwrap();
    assert_eq!(upto.next_offset, 8);
    assert!(log.read(8, 1 << 20, 8).unwrap().is_empty());
    assert!(log.read(20, 10, i64::MAX).unwrap().is_empty(), "the log end is a valid, empty position");
    assert!(matches!(log.read(21, 10, i64::MAX), Err(StorageError::OffsetOutOfRange { .. })));
}

#[test]
fn rolls_on_size_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    fill(&mut log, 60, 3, 1000);
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    let names: Vec<String> = log.segment_base_offsets().iter().map(|b| format!("{b:020}.log")).collect();
    for n in &names {
        assert!(dir.path().join(n).exists(), "{n}");
    }
    let all = log.read(0, 1 << 30, i64::MAX).unwrap();
    let hs = headers(&all.to_vec());
    assert_eq!(hs.len(), 60);
    assert!(hs.windows(2).all(|w| w[1].base_offset == w[0].last_offset() + 1));
    for off in [0, 7, 61, 179] {
        let r = log.read(off, 1, i64::MAX).unwrap();
        let h = headers(&r.to_vec())[0];
        assert!(h.base_offset <= off && off <= h.last_offset(), "offset {off} in {h:?}");
    }
    let e = log.entries(1, 61, usize::MAX).unwrap();
    assert_eq!(e.len(), 60);
    for (i, e) in e.iter().enumerate() {
        assert_eq!(BatchHeader::parse(&e.bytes).unwrap().base_offset, 3 * i as i64);
    }
}

#[test]
fn rolls_on_segment_ms_from_the_first_batch_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(10_000));
    let cfg = LogConfig { segment_ms: 1000, segment_bytes: 1 << 20, ..small() };
    let mut log = Log::open_with_clock(dir.path(), cfg, clock.clone()).unwrap();
    log.append(&uncompressed_batch(&[10_000], 10), 0, 1).unwrap();
    clock.advance(500);
    log.append(&uncompressed_batch(&[10_500], 10), 0, 2).unwrap();
    assert_eq!(log.segment_count(), 1);
    clock.advance(600);
    log.append(&uncompressed_batch(&[11_100], 10), 0, 3).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    // Batches without timestamps roll by wall time since the segment was made.
    log.append(&uncompressed_batch(&[-1], 10), 0, 4).unwrap();
    log.roll().unwrap();
    log.append(&uncompressed_batch(&[-1], 10), 0, 5).unwrap();
    clock.advance(999);
    log.append(&uncompressed_batch(&[-1], 10), 0, 6).unwrap();
    assert_eq!(log.segment_count(), 3);
    clock.advance(2);
    log.append(&uncompressed_batch(&[-1], 10), 0, 7).unwrap();
    assert_eq!(log.segment_count(), 4);
}

#[test]
fn invalid_batches_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    fill(&mut log, 1, 1, 0);
    let before = (log.log_end_offset(), log.next_raft_index(), log.size_bytes());
    let good = uncompressed_batch(&[5, 6], 20);
    let mut v1 = good.clone();
    v1[16] = 1;
    let mut crc = good.clone();
    *crc.last_mut().unwrap() ^= 1;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (v1, "magic"),
        (crc, "crc32c"),
        (good[..30].to_vec(), "shorter"),
        (uncompressed_batch(&vec![0; 100], 100), "exceeds the segment"),
    ];
    for (bytes, needle) in cases {
        let err = log.append(&bytes, 1, 2).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    assert!(matches!(log.append(&good, 1, 7), Err(StorageError::RaftIndexGap { got: 7, expected: 2 })));
    assert!(matches!(log.append(&good, 0, 2), Err(StorageError::BadLeaderEpoch { .. })), "epochs never go back");
    assert!(matches!(log.append(&good, -1, 2), Err(StorageError::BadLeaderEpoch { .. })));
    assert_eq!(before, (log.log_end_offset(), log.next_raft_index(), log.size_bytes()));
    assert!(matches!(batch::validate(&good[..30]), Err(BatchError::TooShort { .. })));
}

#[test]
fn a_new_log_starts_at_any_raft_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    log.append(&uncompressed_batch(&[1], 1), 0, 2).unwrap();
    assert_eq!((log.first_raft_index().unwrap(), log.next_raft_index()), (2, 3));
    drop(log);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!((log.first_raft_index().unwrap(), log.next_raft_index()), (2, 3));
}

#[test]
fn timestamp_lookups_follow_list_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    // Batches of three records; timestamps rise but not strictly within a batch.
    for i in 0..40i64 {
        let t = 1000 + i * 10;
        log.append(&uncompressed_batch(&[t, t + 5, t + 2], 30), 1, i as u64 + 1).unwrap();
    }
    log.append(&uncompressed_batch(&[5000, 99_999, 5000], 30), 1, 41).unwrap();
    log.append(&uncompressed_batch(&[6000], 30), 2, 42).unwrap();
    assert!(log.segment_count() > 3);
    let at = |t| log.offset_for_timestamp(t).unwrap().map(|x| (x.offset, x.timestamp));
    assert_eq!(at(0), Some((0, 1000)));
    assert_eq!(at(1003), Some((1, 1005)), "first record at or after, not the batch start");
    assert_eq!(at(1006), Some((3, 1010)));
    assert_eq!(at(1395), Some((118, 1395)));
    assert_eq!(at(5001), Some((121, 99_999)));
    assert_eq!(at(100_000), None);
    let max = log.max_timestamp().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp, max.leader_epoch), (121, 99_999, 1));
}

#[test]
fn truncation_within_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    fill(&mut log, 60, 2, 0);
    let segments = log.segment_count();
    log.truncate_after_raft(55).unwrap();
    assert_eq!((log.next_raft_index(), log.log_end_offset()), (56, 110));
    log.truncate_after_raft(10).unwrap();
    assert!(log.segment_count() < segments);
    assert_eq!((log.next_raft_index(), log.log_end_offset()), (11, 20));
    let hs = headers(&log.read(0, 1 << 30, i64::MAX).unwrap().to_vec());
    assert_eq!(hs.len(), 10);
    // The log goes on from the cut, with a newer epoch.
    log.append(&uncompressed_batch(&[7, 8, 9], 10), 3, 11).unwrap();
    assert_eq!(log.log_end_offset(), 23);
    log.truncate_after(20).unwrap();
    assert_eq!(log.log_end_offset(), 20, "the straddling batch goes whole");
    drop(log);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!((log.next_raft_index(), log.log_end_offset()), (11, 20));
    assert_eq!(headers(&log.read(0, 1 << 30, i64::MAX).unwrap().to_vec()).len(), 10);
}

#[test]
fn delete_before_moves_the_log_start_durably() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    fill(&mut log, 60, 2, 0);
    let bases = log.segment_base_offsets();
    let deleted = log.delete_before(bases[2] + 1).unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(log.log_start_offset(), bases[2] + 1);
    assert!(matches!(log.read(bases[2], 10, i64::MAX), Err(StorageError::OffsetOutOfRange { .. })));
    assert!(!dir.path().join(format!("{:020}.log", bases[0])).exists());
    drop(log);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.log_start_offset(), bases[2] + 1);
    assert_eq!(log.first_raft_index().unwrap(), (bases[2] / 2 + 1) as u64);
}

#[test]
fn retention_by_time_and_size_keeps_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let cfg = LogConfig { retention_ms: Some(1000), ..small() };
    let mut log = Log::open_with_clock(dir.path(), cfg.clone(), clock.clone()).unwrap();
    fill(&mut log, 30, 2, 0);
    clock.set(500);
    assert_eq!(log.apply_retention(i64::MAX).unwrap(), 0);
    let old_segments = log.segment_count();
    fill(&mut log, 30, 2, 5000);
    clock.set(5500);
    let deleted = log.apply_retention(i64::MAX).unwrap();
    assert!(deleted >= old_segments - 1, "deleted {deleted} of {old_segments}");
    assert!(log.read(log.log_start_offset(), 10, i64::MAX).is_ok());
    // Below the high watermark only.
    let mut log2 = Log::open_with_clock(
        tempfile::tempdir().unwrap().keep(),
        LogConfig { retention_bytes: Some(0), retention_ms: None, ..small() },
        clock.clone(),
    )
    .unwrap();
    fill(&mut log2, 60, 2, 0);
    let bases = log2.segment_base_offsets();
    // The raft form names the last entry of the last deletable segment, and
    // purging through it deletes exactly what retention would.
    assert_eq!(log2.retention_point_raft(bases[0]).unwrap(), None);
    let point = log2.retention_point_raft(bases[3]).unwrap().unwrap();
    assert_eq!(point, (bases[3] / 2) as u64, "batches of two records from raft index 1: segment 3 starts at raft {}", bases[3] / 2 + 1);
    assert_eq!(log2.delete_through_raft(point).unwrap(), 3);
    assert_eq!(log2.apply_retention(bases[3]).unwrap(), 0, "already gone");
    assert_eq!(log2.apply_retention(i64::MAX).unwrap(), bases.len() - 4);
    assert_eq!(log2.segment_count(), 1, "the active segment stays");
    assert_eq!(log2.log_start_offset(), *bases.last().unwrap());
}

#[test]
fn flush_policy_counts_messages_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let cfg = LogConfig { flush_messages: Some(5), flush_ms: Some(100), ..small() };
    let mut log = Log::open_with_clock(dir.path(), cfg, clock.clone()).unwrap();
    fill(&mut log, 2, 2, 0);
    assert_eq!(log.durable().next_offset, 0);
    fill(&mut log, 1, 2, 0);
    assert_eq!(log.durable().next_offset, 6, "six records passed flush.messages=5");
    fill(&mut log, 1, 1, 0);
    assert!(!log.flush_if_due().unwrap());
    clock.advance(100);
    assert!(log.flush_if_due().unwrap());
    assert_eq!(log.durable().next_offset, 7);
    // Kafka's default: never flush on its own.
    let mut lazy = Log::open(tempfile::tempdir().unwrap().keep(), small()).unwrap();
    fill(&mut lazy, 20, 2, 0);
    assert_eq!(lazy.durable().next_offset, 0);
    assert_eq!(lazy.flush().unwrap().next_offset, 40);
}

#[test]
fn clean_close_reopens_without_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    fill(&mut log, 50, 2, 0);
    let before = log.read(0, 1 << 30, i64::MAX).unwrap().to_vec();
    let active = log.segment_base_offsets().pop().unwrap();
    log.close().unwrap();
    let active_bytes = std::fs::read(dir.path().join(format!("{active:020}.log"))).unwrap();
    let file_len = active_bytes.len() as u64;
    assert!(!headers(&active_bytes).is_empty(), "the file holds whole batches only, as kafka-dump-log expects");
    let log = Log::open(dir.path(), small()).unwrap();
    assert!(log.open_report().clean);
    assert_eq!(log.open_report().segments_scanned, 0);
    assert_eq!(log.open_segments(), 0, "opening maps no sealed segment");
    assert!(file_len < 1024, "a closed active segment is trimmed to its batches");
    assert_eq!(log.read(0, 1 << 30, i64::MAX).unwrap().to_vec(), before);
    assert_eq!(log.max_timestamp().unwrap().unwrap().timestamp, 99);
}
