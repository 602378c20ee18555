//! Opening large and damaged logs. Damage from real crashes is tested with a
//! killed child process in `tests/crash.rs`.

use crate::batch::{self, uncompressed_batch};
use crate::checkpoint::{self, RECOVERY_POINT};
use crate::config::LogConfig;
use crate::index::raft_header;
use crate::log::Log;
use crate::segment::file_name;

/// Writes a log of `n` one-batch segments straight to disk, as a broker that
/// ran for a long time would have left it, with the recovery point at the last.
fn write_many_segments(dir: &std::path::Path, n: i64) {
    for i in 0..n {
        let mut b = uncompressed_batch(&[1_000 + i], 10);
        batch::patch(&mut b, i, 0);
        std::fs::write(dir.join(file_name(i, "log")), &b).unwrap();
        std::fs::write(dir.join(file_name(i, "raftindex")), raft_header(i as u64 + 1)).unwrap();
        std::fs::write(dir.join(file_name(i, "index")), []).unwrap();
        let mut t = (1_000 + i).to_be_bytes().to_vec();
        t.extend_from_slice(&0u32.to_be_bytes());
        std::fs::write(dir.join(file_name(i, "timeindex")), t).unwrap();
    }
    checkpoint::write(dir, RECOVERY_POINT, n - 1).unwrap();
}

#[test]
fn ten_thousand_segments_open_lazily() {
    let dir = tempfile::tempdir().unwrap();
    write_many_segments(dir.path(), 10_000);
    let cfg = LogConfig { max_open_segments: 8, ..Default::default() };
    let log = Log::open(dir.path(), cfg).unwrap();
    let report = log.open_report();
    assert_eq!((report.segments, report.segments_scanned, report.truncated_bytes), (10_000, 1, 0));
    assert_eq!(log.open_segments(), 0, "no sealed segment is mapped or indexed at open");
    assert_eq!((log.log_end_offset(), log.next_raft_index()), (10_000, 10_001));
    assert_eq!(log.first_raft_index().unwrap(), 1);

    let r = log.read(5_000, 1, i64::MAX).unwrap();
    assert_eq!(batch::validate(&r.to_vec()).unwrap().base_offset, 5_000);
    assert_eq!(log.open_segments(), 1);
    let e = log.entries(7_001, 7_002, 1).unwrap();
    assert_eq!(batch::validate(&e[0].bytes).unwrap().base_offset, 7_000);
    for o in (0..10_000).step_by(97) {
        assert_eq!(batch::validate(&log.read(o, 1, i64::MAX).unwrap().to_vec()).unwrap().base_offset, o);
    }
    assert!(log.open_segments() <= 8, "the open-segment cache is bounded");
    assert_eq!(log.offset_for_timestamp(1_000 + 8_765).unwrap().unwrap().offset, 8_765);
}

#[test]
fn a_missing_recovery_point_scans_everything() {
    let dir = tempfile::tempdir().unwrap();
    write_many_segments(dir.path(), 20);
    std::fs::remove_file(dir.path().join(RECOVERY_POINT)).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.open_report().segments_scanned, 20);
    assert_eq!(log.log_end_offset(), 20);
    // The scan leaves a recovery point behind: the next open trusts what it checked.
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.open_report().segments_scanned, 1);
}

#[test]
fn a_damaged_raft_header_is_derived_from_its_neighbour() {
    let dir = tempfile::tempdir().unwrap();
    write_many_segments(dir.path(), 30);
    std::fs::write(dir.path().join(file_name(10, "raftindex")), [0u8; 3]).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let e = log.entries(11, 12, 1).unwrap();
    assert_eq!(batch::validate(&e[0].bytes).unwrap().base_offset, 10);
    assert_eq!(log.read(10, 1, i64::MAX).unwrap().next_offset, 11);
}

#[test]
fn a_bad_config_is_refused_before_touching_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let err = Log::open(&path, LogConfig { segment_bytes: 3, ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("segment.bytes"), "{err}");
    assert!(!path.exists());
}

#[test]
fn an_unclean_reopen_cuts_only_the_zeroed_preallocation_and_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig { segment_bytes: 1 << 20, ..Default::default() }).unwrap();
    for i in 0..50 {
        log.append(&uncompressed_batch(&[i], 100), 0, i as u64 + 1).unwrap();
    }
    drop(log);
    let log = Log::open(dir.path(), LogConfig { segment_bytes: 1 << 20, ..Default::default() }).unwrap();
    let r = log.open_report();
    assert!(!r.clean);
    assert_eq!((r.segments_scanned, r.truncated_bytes, r.segments_dropped), (1, 0, 0));
    assert_eq!(log.log_end_offset(), 50);
}
